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
    /// line in a row, none at the start or end. One pass over the UTF-8 bytes (a no-break
    /// space, C2 A0, counts as a space).
    static func normalizeWhitespace(_ text: String) -> String {
        var out: [UInt8] = []
        var utf8 = Array(text.utf8)
        utf8.append(0x0A)
        out.reserveCapacity(utf8.count)
        var pendingSpace = false, newlines = 0, i = 0
        while i < utf8.count {
            let b = utf8[i]
            if b == 0x20 || b == 0x09 || (b == 0xC2 && i + 1 < utf8.count && utf8[i + 1] == 0xA0) {
                pendingSpace = true
                i += b == 0xC2 ? 2 : 1
                continue
            }
            if b == 0x0A { newlines += 1; pendingSpace = false; i += 1; continue }
            if !out.isEmpty && newlines > 0 { out.append(0x0A); if newlines > 1 { out.append(0x0A) } }
            else if pendingSpace && !out.isEmpty { out.append(0x20) }
            newlines = 0; pendingSpace = false
            out.append(b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Project Gutenberg's licence header and footer: everything up to the "*** START OF" line
    /// and from the "*** END OF" line on (older "END OF THE PROJECT GUTENBERG" forms too).
    static func stripGutenberg(_ text: String) -> String {
        guard containsASCII(text, "Project Gutenberg") || containsASCII(text, "PROJECT GUTENBERG") else { return text }
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

    /// A byte search for an ASCII needle (Foundation's `contains` goes through CFString).
    static func containsASCII(_ text: String, _ needle: StaticString) -> Bool {
        var text = text
        text.makeContiguousUTF8()
        return needle.withUTF8Buffer { n in
            text.utf8.withContiguousStorageIfAvailable { h in
                guard h.count >= n.count, let first = n.first else { return false }
                var i = 0
                while i <= h.count - n.count {
                    if h[i] == first, (1..<n.count).allSatisfy({ h[i + $0] == n[$0] }) { return true }
                    i += 1
                }
                return false
            } ?? false
        }
    }

    /// URLs, e-mail addresses and phone numbers removed, or masked as <URL>, <EMAIL>, <PHONE>.
    static func replaceContacts(_ text: String, mask: Bool) -> String {
        var out = String.UnicodeScalarView()
        let s = Array(text.unicodeScalars)
        var i = 0
        func isWordChar(_ c: Unicode.Scalar) -> Bool {
            if c.isASCII { let v = c.value | 0x20; return (v >= 0x61 && v <= 0x7A) || (c.value >= 0x30 && c.value <= 0x39) || c == "_" }
            return c.properties.isAlphabetic
        }
        func isURLChar(_ c: Unicode.Scalar) -> Bool {
            c.value > 0x20 && c.value < 0x7F && !"<>\"'`{}|\\^".unicodeScalars.contains(c)
        }
        /// ASCII `prefix` (lowercase) at p, case-insensitively.
        func matches(_ prefix: StaticString, at p: Int) -> Bool {
            let count = prefix.utf8CodeUnitCount
            guard p + count <= s.count else { return false }
            return prefix.withUTF8Buffer { pre in
                (0..<count).allSatisfy { k in
                    let v = s[p + k].value
                    return (v >= 0x41 && v <= 0x5A ? v | 0x20 : v) == UInt32(pre[k])
                }
            }
        }
        while i < s.count {
            let atWordStart = i == 0 || !isWordChar(s[i - 1])
            let lower = s[i].value | 0x20
            // URL: scheme:// or www.
            if atWordStart, lower == 0x68 || lower == 0x66 || lower == 0x77,   // h, f, w
               matches("http://", at: i) || matches("https://", at: i) || matches("ftp://", at: i) || matches("www.", at: i) {
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
