import Foundation
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
    public static func resolveModel(_ nameOrPath: String) throws -> String {
        if FileManager.default.fileExists(atPath: nameOrPath) { return nameOrPath }
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
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return true }
        return json["do_lower_case"] as? Bool ?? true
    }

    private static func isGGUF(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data("GGUF".utf8)
    }
}
