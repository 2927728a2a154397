import Crypto
import Foundation
import QuillTokenizers
import QuillCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Downloads model repositories from the Hugging Face Hub into `HubCache`, the way
/// huggingface_hub's `snapshot_download` does: the revision resolved to a commit by the API, each
/// file's ETag and size read by a HEAD request on `/{repo}/resolve/{commit}/{path}` (LFS files
/// redirect to their storage; `X-Linked-Etag` is their sha256), the bytes streamed into
/// `blobs/ETAG.incomplete`, resumed with a Range request where an earlier run stopped, checked
/// against the ETag (sha256 for LFS files, git's blob sha1 otherwise) and renamed into place, then
/// linked from the snapshot. `refs/REVISION` moves to the new commit only when every file is in
/// place, so an interrupted pull leaves the previous complete snapshot as the one the revision
/// names, and a second run completes the new one.
///
/// ```swift
/// let hub = HubClient()
/// let pulled = try await hub.pull("HuggingFaceTB/SmolLM2-135M-Instruct", include: ["*.json", "*.safetensors"])
/// print(pulled.snapshot.path)
/// ```
public final class HubClient: Sendable {
    public struct Configuration: Sendable {
        /// `HF_ENDPOINT`, else https://huggingface.co.
        public var endpoint: URL
        /// `HF_TOKEN`, else the token file huggingface_hub's login writes (`$HF_HOME/token`).
        public var token: String?
        /// `HF_HUB_OFFLINE`: the cache only; nothing is sent.
        public var offline: Bool
        public var cache: HubCache
        /// Files downloaded at once.
        public var parallelFiles = 4

        public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
            endpoint = URL(string: environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co")
                ?? URL(string: "https://huggingface.co")!
            cache = HubCache(environment: environment)
            let home = environment["HF_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
                ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/huggingface")
            token = environment["HF_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
                ?? (try? String(contentsOf: home.appendingPathComponent("token"), encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            offline = ["1", "on", "yes", "true"].contains((environment["HF_HUB_OFFLINE"] ?? "").lowercased())
        }
    }

    /// What a pull did, file by file.
    public struct Pulled: Sendable {
        public let repo: String
        public let commit: String
        public let snapshot: URL
        public let files: [File]
        /// Set when the network failed and the cache's copy was used.
        public let fromCacheBecause: String?

        public struct File: Sendable {
            public let path: String
            public let size: Int
            /// Bytes fetched this time (0: already in the cache; less than size: resumed).
            public let downloaded: Int
        }
    }

    public enum Event: Sendable {
        case listed(commit: String, files: Int, bytes: Int)
        case progress(path: String, done: Int, size: Int)
        case finished(path: String, size: Int, downloaded: Int)
    }

    public let configuration: Configuration

    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    /// Splits `ORG/NAME@REVISION` (the revision defaults to main).
    public static func parse(_ reference: String) throws(HubError) -> (repo: String, revision: String?) {
        let parts = reference.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let repo = parts.first ?? ""
        let pieces = repo.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        guard pieces.count == 2, pieces.allSatisfy({ !$0.isEmpty && $0.allSatisfy(allowed.contains) && $0 != "." && $0 != ".." }),
              parts.count == 1 || !(parts[1].isEmpty) else { throw .badRepository(reference) }
        return (repo, parts.count == 2 ? parts[1] : nil)
    }

    /// Brings `repo` at `revision` into the cache: the files matching any of `include` (all when
    /// empty) and none of `exclude` (fnmatch patterns on the path, as huggingface_hub's
    /// allow_patterns / ignore_patterns).
    public func pull(_ repo: String, revision: String = "main", include: [String] = [], exclude: [String] = [],
                     onEvent: @escaping @Sendable (Event) -> Void = { _ in }) async throws -> Pulled {
        let cache = configuration.cache
        if configuration.offline { return try cached(repo, revision: revision, include: include, exclude: exclude, reason: "offline") }
        let info: (commit: String, files: [String])
        do {
            info = try await revisionInfo(repo, revision: revision)
        } catch HubError.network(let url, let reason) {
            // as huggingface_hub does: no network, the cache's copy if it has one
            if cache.commit(repo, revision: revision) != nil {
                return try cached(repo, revision: revision, include: include, exclude: exclude, reason: "\(url): \(reason)")
            }
            throw HubError.network(url: url, reason: reason)
        }
        let wanted = info.files.filter { Self.selected($0, include: include, exclude: exclude) }.sorted()
        var metadata: [String: FileMetadata] = [:]
        try await withThrowingTaskGroup(of: (String, FileMetadata).self) { group in
            var next = wanted.makeIterator()
            func add() { if let path = next.next() { group.addTask { (path, try await self.fileMetadata(repo, commit: info.commit, path: path)) } } }
            for _ in 0..<configuration.parallelFiles { add() }
            while let (path, file) = try await group.next() { metadata[path] = file; add() }
        }
        let missing = wanted.compactMap { metadata[$0] }.filter { !FileManager.default.fileExists(atPath: cache.blob(repo, etag: $0.etag).path) }
        let needed = missing.reduce(0) { $0 + $1.size - Self.partialSize(cache.blob(repo, etag: $1.etag)) }
        try FileManager.default.createDirectory(at: cache.repository(repo).appendingPathComponent("blobs"), withIntermediateDirectories: true)
        try FileWriteError.requireRoom(needed, at: cache.repository(repo).path)
        onEvent(.listed(commit: info.commit, files: wanted.count, bytes: wanted.reduce(0) { $0 + (metadata[$1]?.size ?? 0) }))

        var files: [Pulled.File] = []
        try await withThrowingTaskGroup(of: Pulled.File.self) { group in
            var next = wanted.makeIterator()
            func add() {
                guard let path = next.next(), let file = metadata[path] else { return }
                group.addTask {
                    let downloaded = try await self.fetchBlob(repo, file: file, onEvent: onEvent)
                    try cache.link(repo, commit: info.commit, path: path, etag: file.etag)
                    onEvent(.finished(path: path, size: file.size, downloaded: downloaded))
                    return Pulled.File(path: path, size: file.size, downloaded: downloaded)
                }
            }
            for _ in 0..<configuration.parallelFiles { add() }
            while let file = try await group.next() { files.append(file); add() }
        }
        // only now does the revision name the new commit
        try cache.setRef(repo, revision: revision, commit: info.commit)
        return Pulled(repo: repo, commit: info.commit, snapshot: cache.snapshot(repo, commit: info.commit),
                      files: files.sorted { $0.path < $1.path }, fromCacheBecause: nil)
    }

    /// The cache's snapshot of `repo` at `revision`, without the network.
    func cached(_ repo: String, revision: String, include: [String], exclude: [String], reason: String) throws -> Pulled {
        let cache = configuration.cache
        guard let commit = cache.commit(repo, revision: revision) else { throw HubError.offline(repo: repo, revision: revision) }
        let snapshot = cache.snapshot(repo, commit: commit)
        var files: [Pulled.File] = []
        if let walker = FileManager.default.enumerator(atPath: snapshot.path) {
            while let path = walker.nextObject() as? String {
                let full = snapshot.appendingPathComponent(path)
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: full.resolvingSymlinksInPath().path),
                      attributes[.type] as? FileAttributeType == .typeRegular, Self.selected(path, include: include, exclude: exclude) else { continue }
                files.append(Pulled.File(path: path, size: (attributes[.size] as? Int) ?? 0, downloaded: 0))
            }
        }
        return Pulled(repo: repo, commit: commit, snapshot: snapshot, files: files.sorted { $0.path < $1.path }, fromCacheBecause: reason)
    }

    static func selected(_ path: String, include: [String], exclude: [String]) -> Bool {
        func matches(_ pattern: String) -> Bool { fnmatch(pattern, path, 0) == 0 }
        return (include.isEmpty || include.contains(where: matches)) && !exclude.contains(where: matches)
    }

    static func partialSize(_ blob: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: blob.path + ".incomplete"))?[.size] as? Int) ?? 0
    }

    // MARK: The Hub's routes

    /// `GET /api/models/{repo}/revision/{revision}`: the commit and the file list.
    func revisionInfo(_ repo: String, revision: String) async throws -> (commit: String, files: [String]) {
        let encoded = revision.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? revision
        let url = configuration.endpoint.appendingPathComponent("api/models/\(repo)/revision/\(encoded)")
        let (data, response) = try await send(request(url, method: "GET"), session: Sessions.following)
        try check(response, url: url, repo: repo, revision: revision, body: data)
        return try Self.revision(from: data, url: url.absoluteString)
    }

    /// The revision route's answer: the commit and the file paths (a path that would leave the
    /// snapshot, absolute or with `..`, is dropped).
    public static func revision(from data: Data, url: String) throws(HubError) -> (commit: String, files: [String]) {
        guard let json = try? JSONText.object(data) as? [String: Any], let sha = json["sha"] as? String,
              HubCache.isCommitHash(sha) else {
            throw HubError.malformed(url: url, reason: "the answer has no commit hash (\"sha\")")
        }
        let siblings = (json["siblings"] as? [[String: Any]]) ?? []
        let files = siblings.compactMap { $0["rfilename"] as? String }.filter { path in
            !path.isEmpty && !path.hasPrefix("/") && !path.contains("\0")
                && !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
        }
        return (sha, files)
    }

    /// One file of a commit: its ETag (which names its blob), its size, and where its bytes are.
    public struct FileMetadata: Sendable {
        public let path: String
        public let etag: String
        public let size: Int
        public let url: URL
    }

    /// `HEAD /{repo}/resolve/{commit}/{path}` without following the redirect: ETag, size, where the bytes are.
    func fileMetadata(_ repo: String, commit: String, path: String) async throws -> FileMetadata {
        let url = configuration.endpoint.appendingPathComponent("\(repo)/resolve/\(commit)/\(path)")
        var head = request(url, method: "HEAD")
        head.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        let (_, response) = try await send(head, session: Sessions.notFollowing)
        guard let http = response as? HTTPURLResponse else { throw HubError.malformed(url: url.absoluteString, reason: "not an HTTP answer") }
        if !(200..<400).contains(http.statusCode) { try check(response, url: url, repo: repo, revision: commit, body: Data()) }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
        }
        return try Self.fileMetadata(path: path, url: url, status: http.statusCode, headers: headers)
    }

    /// A HEAD answer read as huggingface_hub reads it: `X-Linked-Etag` (LFS) or `ETag`, quotes and
    /// `W/` removed; `X-Linked-Size` or `Content-Length`; on a redirect, `Location` is where the
    /// bytes are. `headers` are keyed in lower case.
    public static func fileMetadata(path: String, url: URL, status: Int, headers: [String: String]) throws(HubError) -> FileMetadata {
        guard let rawTag = headers["x-linked-etag"] ?? headers["etag"] else {
            throw HubError.malformed(url: url.absoluteString, reason: "no ETag: the file cannot be checked")
        }
        let etag = rawTag.replacingOccurrences(of: "W/", with: "").trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        // it names a file in blobs/: hex digits only (sha256 or git's sha1)
        guard [40, 64].contains(etag.utf8.count), etag.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw HubError.malformed(url: url.absoluteString, reason: "ETag \(rawTag.prefix(80)) is not a sha1 or sha256 in hex")
        }
        guard let size = (headers["x-linked-size"] ?? headers["content-length"]).flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }),
              size >= 0 else {
            throw HubError.malformed(url: url.absoluteString, reason: "no size (X-Linked-Size or Content-Length)")
        }
        var source = url
        if (300..<400).contains(status), let location = headers["location"], let target = URL(string: location, relativeTo: url),
           ["http", "https"].contains(target.absoluteURL.scheme?.lowercased() ?? "") {
            source = target.absoluteURL
        }
        return FileMetadata(path: path, etag: etag, size: size, url: source)
    }

    /// Brings one blob into the cache (under its lock): resumed from `.incomplete`, checked, renamed.
    /// Returns the bytes fetched.
    func fetchBlob(_ repo: String, file: FileMetadata, onEvent: @escaping @Sendable (Event) -> Void) async throws -> Int {
        let cache = configuration.cache
        let blob = cache.blob(repo, etag: file.etag)
        return try await FileLock.withLock(cache.lock(repo, etag: file.etag)) {
            if FileManager.default.fileExists(atPath: blob.path) { return 0 }
            let partial = URL(fileURLWithPath: blob.path + ".incomplete")
            if !FileManager.default.fileExists(atPath: partial.path), !FileManager.default.createFile(atPath: partial.path, contents: nil) {
                throw HubError.cache(path: partial.path, reason: "cannot create the file (permissions?)")
            }
            let download = try BlobDownload(file: file, partial: partial, onEvent: onEvent)
            var get = request(file.url, method: "GET")
            get.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
            if download.resumeFrom > 0 { get.setValue("bytes=\(download.resumeFrom)-", forHTTPHeaderField: "Range") }
            try await download.run(get)
            guard rename(partial.path, blob.path) == 0 else {
                throw HubError.cache(path: blob.path, reason: String(cString: strerror(errno)))
            }
            return download.received
        }
    }

    func request(_ url: URL, method: String) -> URLRequest {
        var request = URLRequest(url: url, timeoutInterval: 60)
        request.httpMethod = method
        request.setValue("quill/1 (huggingface_hub-compatible cache)", forHTTPHeaderField: "User-Agent")
        // the token goes to the Hub only, never to the storage its LFS files redirect to
        if let token = configuration.token, url.host == configuration.endpoint.host, url.port == configuration.endpoint.port {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        return request
    }

    func send(_ request: URLRequest, session: URLSession) async throws -> (Data, URLResponse) {
        do { return try await session.data(for: request) } catch {
            throw HubError.network(url: request.url?.absoluteString ?? "?", reason: (error as NSError).localizedDescription)
        }
    }

    /// Turns the Hub's error answers into what the user should do.
    func check(_ response: URLResponse, url: URL, repo: String, revision: String, body: Data) throws {
        guard let http = response as? HTTPURLResponse else { throw HubError.malformed(url: url.absoluteString, reason: "not an HTTP answer") }
        guard !(200..<300).contains(http.statusCode) else { return }
        let code = http.value(forHTTPHeaderField: "X-Error-Code") ?? ""
        let message = http.value(forHTTPHeaderField: "X-Error-Message")
            ?? ((try? JSONText.object(body) as? [String: Any])?["error"] as? String) ?? ""
        switch (http.statusCode, code) {
        case (_, "RevisionNotFound"): throw HubError.revisionNotFound(repo: repo, revision: revision)
        case (_, "GatedRepo"), (403, _): throw HubError.unauthorized(repo: repo, status: http.statusCode)
        case (401, _) where configuration.token != nil: throw HubError.unauthorized(repo: repo, status: 401)
        case (401, _), (404, "RepoNotFound"): throw HubError.repositoryNotFound(repo: repo, status: http.statusCode)
        default: throw HubError.http(url: url.absoluteString, status: http.statusCode, message: message)
        }
    }
}

/// The two sessions: one that follows redirects (the API, LFS storage), one that reports them (HEAD).
enum Sessions {
    static let following = URLSession(configuration: .ephemeral)
    static let notFollowing = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)

    final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            completionHandler(nil)
        }
    }
}

/// One file's bytes streamed onto the end of its `.incomplete` file while they are hashed; the
/// hash covers what an earlier run left there, so a resumed file is checked whole.
final class BlobDownload: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // @unchecked: the delegate's callbacks arrive one at a time on the session's serial queue
    let file: HubClient.FileMetadata
    let partial: URL
    let onEvent: @Sendable (HubClient.Event) -> Void
    private(set) var resumeFrom: Int
    private(set) var received = 0
    private var handle: FileHandle
    private var sha256 = SHA256()
    private var sha1 = Insecure.SHA1()
    private var failure: Error?
    private var continuation: CheckedContinuation<Void, Never>?
    private var lastReport = 0

    /// LFS files are named by their sha256; git files by the sha1 of "blob SIZE\0" + the bytes.
    var isSHA256: Bool { file.etag.utf8.count == 64 }

    init(file: HubClient.FileMetadata, partial: URL, onEvent: @escaping @Sendable (HubClient.Event) -> Void) throws {
        self.file = file
        self.partial = partial
        self.onEvent = onEvent
        handle = try FileHandle(forUpdating: partial)
        resumeFrom = Int(try handle.seekToEnd())
        super.init()
        if resumeFrom > file.size { try restart() }
        sha1.update(data: Data("blob \(file.size)\u{0}".utf8))
        try hashExisting()
    }

    private func hashExisting() throws {
        try handle.seek(toOffset: 0)
        var left = resumeFrom
        while left > 0, let chunk = try handle.read(upToCount: min(left, 1 << 22)), !chunk.isEmpty {
            update(chunk)
            left -= chunk.count
        }
        try handle.seekToEnd()
    }

    private func update(_ data: Data) {
        if isSHA256 { sha256.update(data: data) } else { sha1.update(data: data) }
    }

    private func restart() throws {
        try handle.truncate(atOffset: 0)
        resumeFrom = 0
        sha256 = SHA256()
        sha1 = Insecure.SHA1()
        sha1.update(data: Data("blob \(file.size)\u{0}".utf8))
    }

    func run(_ request: URLRequest) async throws {
        defer { try? handle.close() }
        if resumeFrom < file.size || file.size == 0 {
            let session = URLSession(configuration: .ephemeral, delegate: self, delegateQueue: nil)
            await withCheckedContinuation { continuation in
                self.continuation = continuation
                session.dataTask(with: request).resume()
            }
            session.finishTasksAndInvalidate()
            if let failure { throw failure }
        }
        try handle.synchronize()
        let size = Int(try handle.seekToEnd())
        guard size == file.size else {
            throw HubError.malformed(url: file.url.absoluteString, reason: "received \(size) bytes of \(file.size); run again to resume")
        }
        let digest = isSHA256 ? sha256.finalize().map { String(format: "%02x", $0) }.joined()
                              : sha1.finalize().map { String(format: "%02x", $0) }.joined()
        guard digest == file.etag else {
            try? FileManager.default.removeItem(at: partial)
            throw HubError.mismatch(file: file.path, expected: file.etag, found: digest)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        do {
            switch status {
            case 206 where resumeFrom > 0: break
            case 200: if resumeFrom > 0 { try restart() }   // the server ignored the Range: start over
            case 416 where resumeFrom == file.size: break
            default: throw HubError.http(url: file.url.absoluteString, status: status, message: "downloading \(file.path)")
            }
            completionHandler(.allow)
        } catch {
            failure = error
            completionHandler(.cancel)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard failure == nil else { return }
        do {
            try handle.write(contentsOf: data)
            update(data)
            received += data.count
            if received - lastReport >= 1 << 20 {
                lastReport = received
                onEvent(.progress(path: file.path, done: resumeFrom + received, size: file.size))
            }
        } catch {
            failure = HubError.cache(path: partial.path, reason: "\(error)")
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error, failure == nil {
            failure = HubError.network(url: file.url.absoluteString, reason: (error as NSError).localizedDescription)
        }
        continuation?.resume()
        continuation = nil
    }
}
