/// Everything that can go wrong while loading a tokenizer or reading text for it.
///
/// Each case says what was wrong and where, so a user can fix the file instead of guessing:
/// ```swift
/// do { _ = try Tokenizer(contentsOf: url) }
/// catch let error as TokenizerError { print(error) }   // "tokenizer.json: pre_tokenizer.type: unknown ..."
/// ```
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// The file is not what its format requires (bad JSON, a missing key, a wrong value type).
    case malformed(source: String, at: String, problem: String)
    /// A component `type` we do not implement; `supported` lists the ones we do.
    case unknownComponent(source: String, at: String, found: String, supported: [String])
    /// Input text is not valid UTF-8.
    case invalidUTF8(source: String, byteOffset: Int)
    /// A file could not be read.
    case unreadable(path: String, reason: String)
    /// A token id outside the vocabulary.
    case unknownTokenId(Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case let .malformed(source, at, problem):
            return "\(source): \(at.isEmpty ? "" : "\(at): ")\(problem)"
        case let .unknownComponent(source, at, found, supported):
            return "\(source): \(at): unknown type \"\(found)\"; supported: \(supported.joined(separator: ", "))"
        case let .invalidUTF8(source, offset):
            return "\(source): invalid UTF-8 at byte \(offset)"
        case let .unreadable(path, reason):
            return "\(path): \(reason)"
        case let .unknownTokenId(id, size):
            return "token id \(id) is outside the vocabulary (size \(size))"
        }
    }
}

/// Validates UTF-8 and reports the offset of the first bad byte.
public func validateUTF8(_ bytes: some Collection<UInt8>, source: String) throws(TokenizerError) -> String {
    var offset = 0
    var iterator = bytes.makeIterator()
    var decoder = UTF8()
    loop: while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let s): offset += UTF8.width(s)
        case .emptyInput: break loop
        case .error: throw .invalidUTF8(source: source, byteOffset: offset)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
