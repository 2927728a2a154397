import Foundation
import QuillHub
import QuillTokenizers

/// Where Quill keeps fetched models and assets: `$QUILL_CACHE`, else `~/.cache/quill`.
public enum QuillCache {
    public static var root: URL {
        if let dir = ProcessInfo.processInfo.environment["QUILL_CACHE"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/quill")
    }

    /// The default model: SmolLM2-135M-Instruct, Q4_1 GGUF (fetched by `scripts/setup`).
    public static var defaultModel: URL { root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf") }

    /// Models in the cache: GGUF files and Hugging Face directories under `models/`.
    public static var cachedModels: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("models").path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    /// A path as given when it exists; otherwise a cached model by name: exactly, with `.gguf`
    /// added, or the one cached name that starts with it ("SmolLM2-135M-Instruct.Q8_0").
    /// `ORG/NAME[@REVISION][/FILE]`: a model in the Hugging Face cache (`pulledModel`).
    public static func resolveModel(_ nameOrPath: String) throws -> String { try resolveModel(nameOrPath, hubCache: HubCache()) }

    /// The same, looking in `hubCache` for pulled models.
    public static func resolveModel(_ nameOrPath: String, hubCache: HubCache) throws -> String {
        if FileManager.default.fileExists(atPath: nameOrPath) { return nameOrPath }
        if let pulled = try pulledModel(nameOrPath, cache: hubCache) { return pulled }
        let models = root.appendingPathComponent("models"), cached = cachedModels
        for candidate in [nameOrPath, nameOrPath + ".gguf"] where cached.contains(candidate) {
            return models.appendingPathComponent(candidate).path
        }
        let matches = cached.filter { $0.hasPrefix(nameOrPath) }
        if matches.count == 1 { return models.appendingPathComponent(matches[0]).path }
        let reason = matches.isEmpty
            ? "no such file or directory, and no cached model of that name (cached: \(cached.isEmpty ? "none" : cached.joined(separator: ", ")))"
            : "several cached models start with that name: \(matches.joined(separator: ", "))"
        throw TokenizerError.unreadable(path: nameOrPath, reason: reason)
    }
}

extension QuillCache {
    /// A model `quill pull` (or huggingface_hub) put in the Hugging Face cache: `ORG/NAME[@REVISION]`
    /// is its snapshot directory when that holds a `config.json`, else its one GGUF file;
    /// `ORG/NAME[@REVISION]/FILE` is that file. Nil when the name is not of that shape.
    static func pulledModel(_ reference: String, cache: HubCache) throws -> String? {
        let parts = reference.split(separator: "/", maxSplits: 2).map(String.init)
        guard parts.count >= 2, !reference.hasPrefix("/"), !reference.hasPrefix("."),
              let (repo, revision) = try? HubClient.parse(parts[0] + "/" + parts[1]) else { return nil }
        guard let snapshot = cache.snapshot(repo, revision: revision ?? "main") else {
            throw TokenizerError.unreadable(path: reference, reason: "no such file, and \(repo)\(revision.map { "@" + $0 } ?? "") is not in the Hugging Face cache at \(cache.root.path); run quill pull \(repo)")
        }
        if parts.count == 3 {
            let file = snapshot.appendingPathComponent(parts[2])
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw TokenizerError.unreadable(path: reference, reason: "the pulled snapshot \(snapshot.path) has no \(parts[2])")
            }
            return file.path
        }
        if FileManager.default.fileExists(atPath: snapshot.appendingPathComponent("config.json").path) { return snapshot.path }
        let ggufs = ((try? FileManager.default.contentsOfDirectory(atPath: snapshot.path)) ?? []).filter { $0.hasSuffix(".gguf") }.sorted()
        guard ggufs.count == 1 else {
            throw TokenizerError.unreadable(path: reference, reason: ggufs.isEmpty
                ? "the pulled snapshot \(snapshot.path) has neither config.json nor a GGUF file"
                : "the pulled snapshot has several GGUF files; name one: \(ggufs.map { "\(repo)/\($0)" }.joined(separator: ", "))")
        }
        return snapshot.appendingPathComponent(ggufs[0]).path
    }
}

public enum TokenizerLoader {
    /// Loads a tokenizer from any file or directory Quill understands:
    /// a GGUF file, a Hugging Face directory or `tokenizer.json`, GPT-2 `vocab.json` (with
    /// `merges.txt` beside it), a `.tiktoken` rank file, a SentencePiece `.model`, or a BERT `vocab.txt`.
    public static func load(_ path: String) throws -> Tokenizer {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue {
            let json = url.appendingPathComponent("tokenizer.json")
            if FileManager.default.fileExists(atPath: json.path) { return try Tokenizer(contentsOf: url) }
            let vocab = url.appendingPathComponent("vocab.json"), merges = url.appendingPathComponent("merges.txt")
            if FileManager.default.fileExists(atPath: vocab.path) { return try Tokenizer(gpt2Vocab: vocab, merges: merges) }
            let spm = url.appendingPathComponent("tokenizer.model")
            if FileManager.default.fileExists(atPath: spm.path) { return try Tokenizer(sentencePieceModel: spm) }
            throw TokenizerError.unreadable(path: path, reason: "directory has no tokenizer.json, vocab.json or tokenizer.model")
        }
        let name = url.lastPathComponent
        if name.hasSuffix(".gguf") || isGGUF(path) { return try Tokenizer(ggufPath: path) }
        if name.hasSuffix(".tiktoken") { return try Tokenizer(tiktoken: url) }
        if name.hasSuffix(".txt") { return try Tokenizer(wordPieceVocab: url, lowercase: doLowerCase(besides: url)) }
        if name == "vocab.json" {
            return try Tokenizer(gpt2Vocab: url, merges: url.deletingLastPathComponent().appendingPathComponent("merges.txt"))
        }
        if name.hasSuffix(".model") || name.contains(".model.") { return try Tokenizer(sentencePieceModel: url) }
        return try Tokenizer(contentsOf: url)
    }

    /// BERT's `do_lower_case` from a `tokenizer_config.json` beside the vocabulary; true if absent.
    private static func doLowerCase(besides url: URL) -> Bool {
        let config = url.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        guard let data = FileContents.data(atPath: config.path),
              let json = try? JSONText.object(data) as? [String: Any] else { return true }
        return json["do_lower_case"] as? Bool ?? true
    }

    private static func isGGUF(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data("GGUF".utf8)
    }
}
