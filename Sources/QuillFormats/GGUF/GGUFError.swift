/// What can be wrong with a GGUF file; every case names the file and the byte offset.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case notGGUF(path: String, magic: String)
    case unsupportedVersion(path: String, version: UInt32)
    case truncated(path: String, offset: Int, reading: String)
    case malformed(path: String, offset: Int, problem: String)
    case missingKey(path: String, key: String)
    case wrongType(path: String, key: String, expected: String, found: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): \(reason)"
        case let .notGGUF(path, magic): return "\(path): not a GGUF file (magic \"\(magic)\", expected \"GGUF\")"
        case let .unsupportedVersion(path, v): return "\(path): GGUF version \(v) is not supported (2 and 3 are)"
        case let .truncated(path, offset, reading):
            return "\(path): file ends at byte \(offset) while reading \(reading); the file is truncated (re-download it)"
        case let .malformed(path, offset, problem): return "\(path): byte \(offset): \(problem)"
        case let .missingKey(path, key): return "\(path): metadata key \(key) is missing"
        case let .wrongType(path, key, expected, found): return "\(path): metadata \(key) is \(found), expected \(expected)"
        }
    }
}
