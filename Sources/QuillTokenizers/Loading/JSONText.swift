import Foundation

/// Parses JSON into Foundation values (`[String: Any]`, `[Any]`, `String`, `NSNumber`, `NSNull`):
/// the one way Quill reads untyped JSON. It is `JSONSerialization`, except that a U+FEFF starting a
/// string is kept: swift-corelibs-foundation takes it for a byte order mark and drops it, which
/// loses vocabulary entries (Gemma's tokenizer.json has "\u{FEFF}\u{FEFF}") and the first character
/// of text that starts with one. Raw U+FEFF bytes inside the document are rewritten as the escape
/// `\uFEFF` (which the parser keeps) before parsing; one leading the whole document is a byte order
/// mark and is dropped, as RFC 8259 allows.
public enum JSONText {
    private static let byteOrderMark = Data([0xEF, 0xBB, 0xBF])

    public static func object(_ data: Data, options: JSONSerialization.ReadingOptions = []) throws -> Any {
        var data = data
        if data.starts(with: byteOrderMark) { data.removeFirst(3) }
        guard data.firstRange(of: byteOrderMark) != nil else { return try JSONSerialization.jsonObject(with: data, options: options) }
        var escaped = Data(capacity: data.count + 16)
        var rest = data[...]
        while let mark = rest.firstRange(of: byteOrderMark) {
            escaped.append(rest[rest.startIndex..<mark.lowerBound])
            escaped.append(contentsOf: Array(#"\uFEFF"#.utf8))
            rest = rest[mark.upperBound...]
        }
        escaped.append(rest)
        return try JSONSerialization.jsonObject(with: escaped, options: options)
    }
}
