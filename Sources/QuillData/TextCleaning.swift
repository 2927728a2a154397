import Foundation

/// The text-level cleaning steps, each switchable: Unicode normalization, full-width ASCII to
/// half-width, control characters and ANSI escape codes, links / e-mail addresses / phone
/// numbers (removed or masked), Project Gutenberg headers and footers, whitespace.
public struct TextCleaning: Sendable {
    public enum Normalization: String, Sendable, Codable { case none, nfc, nfkc }
    public enum Contacts: String, Sendable, Codable { case keep, remove, mask }

    public var normalization = Normalization.nfc
    public var halfWidthASCII = true
    public var removeControlCharacters = true
    public var contacts = Contacts.remove
    public var stripGutenberg = true

    public init() {}

    public func clean(_ text: String) -> String {
        var t = text
        if stripGutenberg { t = Self.stripGutenberg(t) }
        if removeControlCharacters { t = Self.removeControlCharacters(t) }
        switch normalization {
        case .none: break
        case .nfc: t = t.precomposedStringWithCanonicalMapping
        case .nfkc: t = t.precomposedStringWithCompatibilityMapping
        }
        if halfWidthASCII { t = Self.halfWidthASCII(t) }
        if contacts != .keep { t = Self.replaceContacts(t, mask: contacts == .mask) }
        return Self.normalizeWhitespace(t)
    }

    /// ANSI escape sequences (ESC [ ... final byte, and other ESC sequences) and control
    /// characters other than tab and newline removed; CR LF and lone CR become LF.
    static func removeControlCharacters(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            let s = scalars[i]
            if s == "\u{1B}" {   // ESC: CSI "[" params final(0x40-0x7E), or a two-byte sequence
                i += 1
                if i < scalars.count, scalars[i] == "[" {
                    i += 1
                    while i < scalars.count, !(0x40...0x7E).contains(scalars[i].value) { i += 1 }
                }
                i += 1
                continue
            }
            if s == "\r" {
                if i + 1 >= scalars.count || scalars[i + 1] != "\n" { out.append("\n") }
            } else if s == "\n" || s == "\t" || !(s.value < 0x20 || (0x7F...0x9F).contains(s.value) || s == "\u{FEFF}" || s == "\u{200B}") {
                out.append(s)
            }
            i += 1
        }
        return String(out)
    }

    /// Full-width ASCII letters, digits and punctuation (U+FF01-FF5E) and the ideographic space
    /// to their ASCII forms. Chinese punctuation (，。！？) is left as it is.
    static func halfWidthASCII(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if (0xFF10...0xFF19).contains(s.value) || (0xFF21...0xFF3A).contains(s.value) || (0xFF41...0xFF5A).contains(s.value) {
                out.append(Unicode.Scalar(s.value - 0xFEE0)!)
            } else if s == "\u{3000}" {
                out.append(" ")
            } else {
                out.append(s)
            }
        }
        return String(out)
    }

    /// Spaces and tabs within a line collapsed to one space, lines trimmed, at most one blank
    /// line in a row, none at the start or end.
    static func normalizeWhitespace(_ text: String) -> String {
        var lines: [String] = []
        var blank = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\u{00A0}" }).joined(separator: " ")
            if line.isEmpty { blank = !lines.isEmpty; continue }
            if blank { lines.append("") }
            blank = false
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Project Gutenberg's licence header and footer: everything up to the "*** START OF" line
    /// and from the "*** END OF" line on (older "END OF THE PROJECT GUTENBERG" forms too).
    static func stripGutenberg(_ text: String) -> String {
        guard text.contains("Project Gutenberg") || text.contains("PROJECT GUTENBERG") else { return text }
        var lines = text.components(separatedBy: "\n")
        if let start = lines.firstIndex(where: { $0.hasPrefix("*** START OF") || $0.hasPrefix("***START OF") || $0.hasPrefix("*END*THE SMALL PRINT") }) {
            lines.removeSubrange(0...start)
        }
        if let end = lines.firstIndex(where: { $0.hasPrefix("*** END OF") || $0.hasPrefix("***END OF") || $0.hasPrefix("End of the Project Gutenberg")
            || $0.hasPrefix("End of Project Gutenberg") }) {
            lines.removeSubrange(end...)
        }
        return lines.joined(separator: "\n")
    }

    /// URLs, e-mail addresses and phone numbers removed, or masked as <URL>, <EMAIL>, <PHONE>.
    static func replaceContacts(_ text: String, mask: Bool) -> String {
        var out = String.UnicodeScalarView()
        let s = Array(text.unicodeScalars)
        var i = 0
        func isWordChar(_ c: Unicode.Scalar) -> Bool { c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" }
        func isURLChar(_ c: Unicode.Scalar) -> Bool {
            c.value > 0x20 && c.value < 0x7F && !"<>\"'`{}|\\^".unicodeScalars.contains(c)
        }
        func matches(_ prefix: String, at p: Int) -> Bool {
            let pre = Array(prefix.unicodeScalars)
            guard p + pre.count <= s.count else { return false }
            return (0..<pre.count).allSatisfy { Character(s[p + $0]).lowercased() == String(pre[$0]) }
        }
        while i < s.count {
            let atWordStart = i == 0 || !isWordChar(s[i - 1])
            // URL: scheme:// or www.
            if atWordStart, matches("http://", at: i) || matches("https://", at: i) || matches("ftp://", at: i) || matches("www.", at: i) {
                var j = i
                while j < s.count, isURLChar(s[j]) { j += 1 }
                while j > i, ".,;:!?)]".unicodeScalars.contains(s[j - 1]) { j -= 1 }   // sentence punctuation after a link
                if mask { out.append(contentsOf: "<URL>".unicodeScalars) }
                i = j; continue
            }
            // e-mail: local@domain.tld
            if s[i] == "@", let last = out.last, isWordChar(last) || last == "." || last == "-" || last == "+" {
                var j = i + 1, dot = false
                while j < s.count, s[j].isASCII, isWordChar(s[j]) || s[j] == "-" || (s[j] == "." && j + 1 < s.count && isWordChar(s[j + 1])) {
                    if s[j] == "." { dot = true }
                    j += 1
                }
                if dot {
                    while let c = out.last, c.isASCII, isWordChar(c) || c == "." || c == "-" || c == "+" { out.removeLast() }
                    if mask { out.append(contentsOf: "<EMAIL>".unicodeScalars) }
                    i = j; continue
                }
            }
            // phone: 9-15 digits, written as a phone number is: with a leading +, parentheses or
            // dashes ("+86 138 0013 8000", "(555) 123-4567", "010-12345678"), or as one run of
            // 10-11 digits (a mobile number); "1990 1991 1992" is not one
            if atWordStart, s[i] == "+" || s[i] == "(" || ("0"..."9").contains(s[i]) {
                var j = i, digits = 0, lastDigit = i, separators = 0, marked = s[i] == "+" || s[i] == "("
                if s[j] == "+" { j += 1 }
                while j < s.count {
                    if ("0"..."9").contains(s[j]) { digits += 1; lastDigit = j; j += 1 }
                    else if " -.()".unicodeScalars.contains(s[j]), j + 1 < s.count, ("0"..."9").contains(s[j + 1]) || s[j + 1] == "(" {
                        separators += 1
                        if s[j] == "-" || s[j] == "(" { marked = true }
                        j += 1
                    }
                    else if s[j] == ")" { marked = true; j += 1 }
                    else { break }
                }
                let end = lastDigit + 1
                let shaped = marked || (separators == 0 && digits >= 10 && digits <= 11)
                if shaped && digits >= 9 && digits <= 15 && (end >= s.count || !isWordChar(s[end])) {
                    if mask { out.append(contentsOf: "<PHONE>".unicodeScalars) }
                    i = end; continue
                }
            }
            out.append(s[i]); i += 1
        }
        return String(out)
    }
}
