/// What can go wrong talking to the Hub or writing its cache; each case says what to do.
public enum HubError: Error, Equatable, CustomStringConvertible {
    case badRepository(String)
    case repositoryNotFound(repo: String, status: Int)
    case revisionNotFound(repo: String, revision: String)
    case unauthorized(repo: String, status: Int)
    case offline(repo: String, revision: String)
    case http(url: String, status: Int, message: String)
    case network(url: String, reason: String)
    case mismatch(file: String, expected: String, found: String)
    case malformed(url: String, reason: String)
    case cache(path: String, reason: String)

    public var description: String {
        switch self {
        case .badRepository(let s):
            return "\(s): not a repository name; give ORG/NAME, optionally @REVISION (a branch, tag or commit)"
        case let .repositoryNotFound(repo, status):
            return "\(repo): no such model on the Hub (HTTP \(status)); check the name, or set HF_TOKEN if it is private or gated"
        case let .revisionNotFound(repo, revision):
            return "\(repo)@\(revision): the repository has no such branch, tag or commit"
        case let .unauthorized(repo, status):
            return "\(repo): the Hub refused access (HTTP \(status)); set HF_TOKEN to a token that may read it (and accept its license on the Hub if it is gated)"
        case let .offline(repo, revision):
            return "\(repo)@\(revision): HF_HUB_OFFLINE is set and the cache has no complete copy; pull it once with the network"
        case let .http(url, status, message):
            return "\(url): HTTP \(status)\(message.isEmpty ? "" : ": \(message)")"
        case let .network(url, reason):
            return "\(url): \(reason) (is HF_ENDPOINT right, and the network up?)"
        case let .mismatch(file, expected, found):
            return "\(file): the bytes received hash to \(found), the Hub's ETag says \(expected); nothing was kept (run again to download it anew)"
        case let .malformed(url, reason):
            return "\(url): \(reason)"
        case let .cache(path, reason):
            return "\(path): \(reason)"
        }
    }
}
