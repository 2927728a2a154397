import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Hugging Face Hub's cache, laid out as huggingface_hub lays it out, so that it, transformers
/// and Quill share one copy of each file:
///
///     $HF_HUB_CACHE (else $HF_HOME/hub, else ~/.cache/huggingface/hub)
///       models--ORG--NAME/
///         blobs/ETAG                      the file's bytes, named by its ETag (sha256 for LFS files, git's sha1 otherwise)
///         blobs/ETAG.incomplete           a download under way (resumed with a Range request)
///         refs/REVISION                   the commit a branch or tag pointed to when last pulled
///         snapshots/COMMIT/PATH           a relative symlink to ../../blobs/ETAG
///         .no_exist/COMMIT/PATH           huggingface_hub's note of a file a commit does not have
///       .locks/models--ORG--NAME/ETAG.lock
public struct HubCache: Sendable {
    public let root: URL

    public init(root: URL? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let root { self.root = root; return }
        if let hub = environment["HF_HUB_CACHE"], !hub.isEmpty { self.root = URL(fileURLWithPath: hub); return }
        let home = environment["HF_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/huggingface")
        self.root = home.appendingPathComponent("hub")
    }

    /// `models--ORG--NAME`.
    public static func folderName(_ repo: String) -> String { "models--" + repo.replacingOccurrences(of: "/", with: "--") }

    public func repository(_ repo: String) -> URL { root.appendingPathComponent(Self.folderName(repo)) }
    public func blob(_ repo: String, etag: String) -> URL { repository(repo).appendingPathComponent("blobs/\(etag)") }
    public func snapshot(_ repo: String, commit: String) -> URL { repository(repo).appendingPathComponent("snapshots/\(commit)") }
    public func lock(_ repo: String, etag: String) -> URL {
        root.appendingPathComponent(".locks/\(Self.folderName(repo))/\(etag).lock")
    }

    /// The commit `revision` names in the cache: itself when it is a commit hash with a snapshot,
    /// else what `refs/REVISION` says; nil when the cache has neither.
    public func commit(_ repo: String, revision: String) -> String? {
        if Self.isCommitHash(revision), FileManager.default.fileExists(atPath: snapshot(repo, commit: revision).path) { return revision }
        let ref = repository(repo).appendingPathComponent("refs/\(revision)")
        guard let data = FileManager.default.contents(atPath: ref.path) else { return nil }
        let commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Self.isCommitHash(commit) ? commit : nil
    }

    /// The snapshot directory of `repo` at `revision`, if the cache has it.
    public func snapshot(_ repo: String, revision: String) -> URL? {
        commit(repo, revision: revision).map { snapshot(repo, commit: $0) }
    }

    /// Records that `revision` points to `commit` (written beside and renamed: never half a hash).
    public func setRef(_ repo: String, revision: String, commit: String) throws {
        guard revision != commit else { return }
        let ref = repository(repo).appendingPathComponent("refs/\(revision)")
        try FileManager.default.createDirectory(at: ref.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = ref.deletingLastPathComponent().appendingPathComponent(".\(ref.lastPathComponent).\(getpid())")
        try Data(commit.utf8).write(to: temporary)
        guard rename(temporary.path, ref.path) == 0 else {
            throw HubError.cache(path: ref.path, reason: String(cString: strerror(errno)))
        }
    }

    /// Points `snapshots/COMMIT/PATH` at the blob with a relative link, as huggingface_hub does.
    public func link(_ repo: String, commit: String, path: String, etag: String) throws {
        let pointer = snapshot(repo, commit: commit).appendingPathComponent(path)
        let directory = pointer.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // from snapshots/COMMIT/a/b/ up to the repository folder, then down to the blob
        let depth = path.split(separator: "/").count + 1
        let target = String(repeating: "../", count: depth) + "blobs/\(etag)"
        if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: pointer.path), existing == target { return }
        try? FileManager.default.removeItem(at: pointer)
        guard symlink(target, pointer.path) == 0 else {
            throw HubError.cache(path: pointer.path, reason: "cannot link to \(target): \(String(cString: strerror(errno)))")
        }
    }

    public static func isCommitHash(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// An exclusive lock on a file (flock, as huggingface_hub's FileLock takes it), held for a closure.
enum FileLock {
    static func withLock<T>(_ url: URL, _ body: () async throws -> T) async throws -> T {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(url.path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw HubError.cache(path: url.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw HubError.cache(path: url.path, reason: String(cString: strerror(errno))) }
        defer { flock(fd, LOCK_UN) }
        return try await body()
    }
}
