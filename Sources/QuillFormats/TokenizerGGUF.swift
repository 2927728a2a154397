import Foundation
import QuillTokenizers

extension Tokenizer {
    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`): byte-level BPE
    /// (`gpt2`), SentencePiece BPE (`llama`) or WordPiece (`bert`), with the pre-tokenizer named
    /// by `tokenizer.ggml.pre`.
    public init(gguf file: GGUFFile) throws {
        try self.init(ggufMetadata: file.metadata, path: file.path)
    }

    /// The same from metadata alone (a file's, or metadata about to be written); `path` names its source.
    public init(ggufMetadata metadata: [String: GGUFValue], path: String) throws {
        let kind = try metadata.string("tokenizer.ggml.model", in: path)
        let tokens = try metadata.strings("tokenizer.ggml.tokens", in: path)
        let types = metadata["tokenizer.ggml.token_type"] != nil
            ? try metadata.ints("tokenizer.ggml.token_type", in: path) : [Int](repeating: 1, count: tokens.count)
        let source = URL(fileURLWithPath: path).lastPathComponent
        guard types.count == tokens.count else {
            throw TokenizerError.malformed(source: source, at: "tokenizer.ggml.token_type",
                                           problem: "\(types.count) token types for \(tokens.count) tokens")
        }
        func id(_ key: String) -> Int? { metadata["tokenizer.ggml.\(key)"]?.int }
        /// A special token's id when it names a token of this vocabulary (files write -1 for none).
        func token(_ key: String) -> Int32? { id(key).flatMap { tokens.indices.contains($0) ? Int32($0) : nil } }
        func flag(_ key: String) -> Bool? { metadata["tokenizer.ggml.\(key)"]?.bool }
        switch kind {
        case "gpt2":
            let pre = metadata["tokenizer.ggml.pre"]?.string ?? "default"
            guard let preTokenizer = try PreTokenizerPresets.byteLevel(pre) else {
                throw TokenizerError.unknownComponent(source: source, at: "tokenizer.ggml.pre", found: pre,
                                                      supported: PreTokenizerPresets.supported)
            }
            let merges = try metadata.strings("tokenizer.ggml.merges", in: path).map { m -> (String, String) in
                let parts = m.split(separator: " ", maxSplits: 1)
                return parts.count == 2 ? (String(parts[0]), String(parts[1])) : (m, "")
            }
            var vocab: [String: Int32] = [:]
            for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = Int32(i) }
            let model = try BPEModel(vocab: vocab, merges: merges,
                                     ignoreMerges: PreTokenizerPresets.ignoreMergesNames.contains(pre), tokens: tokens, source: source)
            let added = tokens.enumerated().compactMap { i, t -> AddedToken? in
                types[i] == 3 || types[i] == 4 ? AddedToken(content: t, id: Int32(i), special: types[i] == 3) : nil
            }
            let bos = token("bos_token_id")
            let addBos = flag("add_bos_token") ?? false
            var post: PostProcessor = .byteLevel(trimOffsets: false)
            if addBos, let bos {
                let text = tokens[Int(bos)]
                post = .template(single: [.special(text, typeId: 0), .sequence(second: false, typeId: 0)],
                                 pair: [.special(text, typeId: 0), .sequence(second: false, typeId: 0),
                                        .special(text, typeId: 1), .sequence(second: true, typeId: 1)],
                                 specialTokens: [text: [bos]])
            }
            let normalizer: Normalizer? = PreTokenizerPresets.qwen2Names.contains(pre) ? .nfc : nil
            self.init(normalizer: normalizer, preTokenizer: preTokenizer, model: .bpe(model), postProcessor: post,
                      decoder: .byteLevel, addedTokens: added)
            bosTokenId = bos
        case "llama":
            let scores = metadata["tokenizer.ggml.scores"] != nil
                ? try metadata.floats("tokenizer.ggml.scores", in: path) : tokens.indices.map { -Float($0) }
            guard scores.count == tokens.count else {
                throw TokenizerError.malformed(source: source, at: "tokenizer.ggml.scores", problem: "\(scores.count) scores for \(tokens.count) tokens")
            }
            try self.init(scoredPieces: tokens.indices.map { (tokens[$0], scores[$0], types[$0]) },
                          unkId: id("unknown_token_id") ?? 0, bosId: id("bos_token_id") ?? 1,
                          eosId: id("eos_token_id") ?? 2, padId: id("padding_token_id") ?? -1,
                          addSpacePrefix: flag("add_space_prefix") ?? true, addBos: flag("add_bos_token") ?? true,
                          addEos: flag("add_eos_token") ?? false, byteFallback: true, source: source)
        case "bert":
            // llama.cpp stores word-initial pieces with "▁" and continuations bare; undo that.
            var vocab: [String: Int32] = [:]
            for (i, t) in tokens.enumerated() {
                let hf = t.hasPrefix("▁") ? String(t.dropFirst()) : (t.hasPrefix("[") && t.hasSuffix("]")) ? t : "##" + t
                if vocab[hf] == nil { vocab[hf] = Int32(i) }
            }
            try self.init(bertVocabulary: vocab, lowercase: true, source: source)
        default:
            throw TokenizerError.unknownComponent(source: source, at: "tokenizer.ggml.model", found: kind,
                                                  supported: ["gpt2", "llama", "bert"])
        }
        if let e = token("eos_token_id") { eosTokenId = e }
        if let u = token("unknown_token_id") { unkTokenId = u }
        if let p = token("padding_token_id") { padTokenId = p }
        chatTemplate = metadata["tokenizer.chat_template"]?.string
    }

    /// Loads a GGUF file's tokenizer from a path.
    public init(ggufPath path: String) throws {
        try self.init(gguf: try GGUFFile(path: path))
    }
}
