import Foundation
import Testing
import QuillFormats
import QuillHub

/// The Hugging Face cache as `quill pull` writes it and `-m ORG/NAME` reads it (the whole pull,
/// against a Hub on loopback and huggingface_hub itself, is Tests/HubChecks/check_pull.py).
@Suite struct HubCacheTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("quill-hub-\(getpid())-\(UUID().uuidString)")
    let commit = String(repeating: "ab", count: 20)

    func blob(_ cache: HubCache, _ repo: String, _ etag: String, _ bytes: String) throws {
        let url = cache.blob(repo, etag: etag)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes.utf8).write(to: url)
    }

    @Test func layoutAsHuggingFaceHubWritesIt() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let cache = HubCache(root: root), repo = "org/model"
        #expect(HubCache.folderName(repo) == "models--org--model")
        try blob(cache, repo, "1111111111", "{}")
        try cache.link(repo, commit: commit, path: "sub/dir/config.json", etag: "1111111111")
        let pointer = cache.snapshot(repo, commit: commit).appendingPathComponent("sub/dir/config.json")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: pointer.path) == "../../../../blobs/1111111111")
        #expect(try String(contentsOf: pointer, encoding: .utf8) == "{}")
        #expect(cache.commit(repo, revision: "main") == nil)   // no ref until the pull completes
        #expect(cache.commit(repo, revision: commit) == commit)
        try cache.setRef(repo, revision: "main", commit: commit)
        #expect(cache.commit(repo, revision: "main") == commit)
        #expect(try String(contentsOf: cache.repository(repo).appendingPathComponent("refs/main"), encoding: .utf8) == commit)
    }

    @Test func modelNamesFindPulledSnapshots() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let cache = HubCache(root: root)
        try blob(cache, "org/gguf", "2222222222", "GGUF")
        try cache.link("org/gguf", commit: commit, path: "model.Q4_K_M.gguf", etag: "2222222222")
        try cache.setRef("org/gguf", revision: "main", commit: commit)
        let snapshot = cache.snapshot("org/gguf", commit: commit)
        #expect(try QuillCache.resolveModel("org/gguf", hubCache: cache) == snapshot.appendingPathComponent("model.Q4_K_M.gguf").path)
        #expect(try QuillCache.resolveModel("org/gguf@\(commit)", hubCache: cache) == snapshot.appendingPathComponent("model.Q4_K_M.gguf").path)
        #expect(try QuillCache.resolveModel("org/gguf/model.Q4_K_M.gguf", hubCache: cache) == snapshot.appendingPathComponent("model.Q4_K_M.gguf").path)

        try cache.link("org/gguf", commit: commit, path: "model.Q8_0.gguf", etag: "2222222222")
        #expect(throws: (any Error).self) { try QuillCache.resolveModel("org/gguf", hubCache: cache) }   // which one?

        try blob(cache, "org/hf", "3333333333", "{}")
        try cache.link("org/hf", commit: commit, path: "config.json", etag: "3333333333")
        try cache.setRef("org/hf", revision: "v1", commit: commit)
        #expect(try QuillCache.resolveModel("org/hf@v1", hubCache: cache) == cache.snapshot("org/hf", commit: commit).path)
        #expect(throws: (any Error).self) { try QuillCache.resolveModel("org/hf", hubCache: cache) }   // main was never pulled
        #expect(throws: (any Error).self) { try QuillCache.resolveModel("org/absent", hubCache: cache) }
    }

    @Test func repositoryNames() throws {
        #expect(try HubClient.parse("org/name").repo == "org/name")
        #expect(try HubClient.parse("org/name@v1.0").revision == "v1.0")
        for bad in ["name", "org/name/extra", "../x", "org/..", "/abs", "org/na me", "org/name@", ""] {
            #expect(throws: HubError.self, "\(bad)") { try HubClient.parse(bad) }
        }
    }
}
