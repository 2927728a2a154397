extension HTMLText {
    /// `text` safe inside HTML content and quoted attributes: `& < > " '` as references. The one
    /// escaper of every page Quill writes (reports, plots, the review app).
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Named references → their UTF-8 bytes (`entityTable`, parsed once).
    static let entities: [String: [UInt8]] = {
        var table: [String: [UInt8]] = [:]
        for line in entityTable.split(separator: "\n") {
            let fields = line.split(separator: " ")
            let scalars = fields.dropFirst().compactMap { UInt32($0, radix: 16).flatMap(Unicode.Scalar.init) }
            table[String(fields[0])] = Array(String(String.UnicodeScalarView(scalars)).utf8)
        }
        return table
    }()

    /// Windows-1252 meanings of numeric references 0x80-0x9F, as HTML5 reads them (`&#150;` is "–").
    static let windows1252: [UInt32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
        0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ]

    /// Character references in `text` decoded: named (`&amp;`, and the legacy ones HTML allows
    /// without `;`, like `&copy`), decimal and hex. What is not a reference stays as it is.
    static func decodeEntities(_ text: ArraySlice<UInt8>) -> [UInt8] {
        guard text.contains(UInt8(ascii: "&")) else { return Array(text) }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            guard text[i] == UInt8(ascii: "&"), let (decoded, end) = reference(in: text, at: i) else {
                out.append(text[i]); i += 1; continue
            }
            out.append(contentsOf: decoded)
            i = end
        }
        return out
    }

    /// The reference starting at `start` ("&..."): its bytes and where it ends.
    private static func reference(in text: ArraySlice<UInt8>, at start: Int) -> ([UInt8], Int)? {
        var j = start + 1
        if j < text.endIndex, text[j] == UInt8(ascii: "#") {
            j += 1
            let hex = j < text.endIndex && (text[j] | 0x20) == UInt8(ascii: "x")
            if hex { j += 1 }
            let digitsStart = j
            while j < text.endIndex, j - digitsStart < 8,
                  hex ? Character(Unicode.Scalar(text[j])).isHexDigit : (text[j] >= 0x30 && text[j] <= 0x39) { j += 1 }
            guard j > digitsStart, var value = UInt32(String(decoding: text[digitsStart..<j], as: UTF8.self), radix: hex ? 16 : 10)
            else { return nil }
            if j < text.endIndex, text[j] == UInt8(ascii: ";") { j += 1 }
            if value >= 0x80 && value <= 0x9F { value = windows1252[Int(value - 0x80)] }
            let scalar = value == 0 ? nil : Unicode.Scalar(value)
            return (Array(String(Character(scalar ?? "\u{FFFD}")).utf8), j)
        }
        let nameStart = j
        while j < text.endIndex, j - nameStart < 32, Parser.isLetter(text[j]) || (text[j] >= 0x30 && text[j] <= 0x39) { j += 1 }
        guard j > nameStart else { return nil }
        let name = String(decoding: text[nameStart..<j], as: UTF8.self)
        if j < text.endIndex, text[j] == UInt8(ascii: ";"), let bytes = entities[name + ";"] { return (bytes, j + 1) }
        // legacy references without ";": the longest one that prefixes the name ("&copy2023")
        for end in stride(from: j, to: nameStart, by: -1) {
            if let bytes = entities[String(decoding: text[nameStart..<end], as: UTF8.self)] { return (bytes, end) }
        }
        return nil
    }
}
