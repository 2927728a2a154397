import Foundation

extension Tokenizer {
    /// This tokenizer as a Hugging Face `tokenizer.json` (which HF `tokenizers` loads and encodes
    /// identically). Keys are sorted so the same tokenizer always gives the same bytes.
    public func tokenizerJSON() throws -> Data {
        var root: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(),
            "padding": NSNull(),
            "added_tokens": addedTokens.map {
                ["id": Int($0.id), "content": $0.content, "single_word": $0.singleWord, "lstrip": $0.lstrip,
                 "rstrip": $0.rstrip, "normalized": $0.normalized, "special": $0.special] as [String: Any]
            },
            "normalizer": normalizer.map(TokenizerJSONWriter.normalizer) ?? NSNull(),
            "pre_tokenizer": preTokenizer.map(TokenizerJSONWriter.preTokenizer) ?? NSNull(),
            "post_processor": postProcessor.map { TokenizerJSONWriter.postProcessor($0, tokens: model.tokens) } ?? NSNull(),
            "decoder": decoder.map(TokenizerJSONWriter.decoder) ?? NSNull(),
        ]
        switch model {
        case .bpe(let bpe):
            root["model"] = [
                "type": "BPE", "dropout": NSNull(),
                "unk_token": bpe.unkId.map { bpe.tokens[Int($0)] } ?? NSNull(),
                "continuing_subword_prefix": bpe.continuingSubwordPrefix ?? NSNull(),
                "end_of_word_suffix": bpe.endOfWordSuffix ?? NSNull(),
                "fuse_unk": bpe.fuseUnk, "byte_fallback": bpe.byteFallback, "ignore_merges": bpe.ignoreMerges,
                "vocab": bpe.vocab.mapValues { Int($0) },
                "merges": bpe.mergeList.map { [$0.0, $0.1] },
            ] as [String: Any]
        case .wordPiece(let wp):
            root["model"] = [
                "type": "WordPiece", "unk_token": wp.tokens[Int(wp.unkId)],
                "continuing_subword_prefix": wp.prefix, "max_input_chars_per_word": wp.maxInputCharsPerWord,
                "vocab": wp.vocab.mapValues { Int($0) },
            ] as [String: Any]
        }
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// Writes `tokenizer.json` atomically (a crash never leaves a half-written file).
    public func save(to url: URL) throws {
        try tokenizerJSON().write(to: url, options: .atomic)
    }

    /// `tokenizer_config.json` as transformers writes it for a fast tokenizer: the special tokens
    /// by content, every added token by id, the chat template, the model's context length.
    public func tokenizerConfigJSON(modelMaxLength: Int?) throws -> Data {
        var config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": false,
            "added_tokens_decoder": Dictionary(uniqueKeysWithValues: addedTokens.map {
                (String($0.id), ["content": $0.content, "lstrip": $0.lstrip, "rstrip": $0.rstrip, "normalized": $0.normalized,
                                 "single_word": $0.singleWord, "special": $0.special] as [String: Any])
            }),
        ]
        for (key, id) in specialTokenIds { config[key] = id.flatMap { token(for: $0) } ?? NSNull() }
        if let chatTemplate { config["chat_template"] = chatTemplate }
        if let modelMaxLength { config["model_max_length"] = modelMaxLength }
        return try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// `special_tokens_map.json`: the special tokens by role.
    public func specialTokensMapJSON() throws -> Data {
        let map = specialTokenIds.reduce(into: [String: String]()) { map, pair in
            if let id = pair.id, let token = token(for: id) { map[pair.key] = token }
        }
        return try JSONSerialization.data(withJSONObject: map, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// Writes `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into a
    /// Hugging Face model directory, so `AutoTokenizer.from_pretrained` loads it.
    public func saveHuggingFace(to directory: URL, modelMaxLength: Int?) throws {
        try save(to: directory.appendingPathComponent("tokenizer.json"))
        try tokenizerConfigJSON(modelMaxLength: modelMaxLength).write(to: directory.appendingPathComponent("tokenizer_config.json"), options: .atomic)
        try specialTokensMapJSON().write(to: directory.appendingPathComponent("special_tokens_map.json"), options: .atomic)
    }

    private var specialTokenIds: [(key: String, id: Int32?)] {
        [("bos_token", bosTokenId), ("eos_token", eosTokenId), ("unk_token", unkTokenId), ("pad_token", padTokenId)]
    }
}

enum TokenizerJSONWriter {
    static func pattern(_ p: PatternMatcher) -> [String: Any] {
        switch p.pattern {
        case .string(let s): ["String": s]
        case .regex(let r): ["Regex": r]
        }
    }

    static func normalizer(_ n: Normalizer) -> [String: Any] {
        switch n {
        case .nfc: ["type": "NFC"]
        case .nfd: ["type": "NFD"]
        case .nfkc: ["type": "NFKC"]
        case .nfkd: ["type": "NFKD"]
        case .lowercase: ["type": "Lowercase"]
        case .stripAccents: ["type": "StripAccents"]
        case let .strip(left, right): ["type": "Strip", "strip_left": left, "strip_right": right]
        case let .replace(p, content): ["type": "Replace", "pattern": pattern(p), "content": content]
        case let .prepend(s): ["type": "Prepend", "prepend": s]
        case let .bert(clean, chinese, strip, lower):
            ["type": "BertNormalizer", "clean_text": clean, "handle_chinese_chars": chinese,
             "strip_accents": strip.map { $0 as Any } ?? NSNull(), "lowercase": lower]
        case let .sequence(steps): ["type": "Sequence", "normalizers": steps.map(normalizer)]
        }
    }

    static func preTokenizer(_ p: PreTokenizer) -> [String: Any] {
        switch p {
        case let .byteLevel(prefix, regex):
            ["type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": true, "use_regex": regex]
        case let .split(m, behavior, invert):
            ["type": "Split", "pattern": pattern(m), "behavior": behavior.rawValue, "invert": invert]
        case let .metaspace(replacement, scheme, split):
            ["type": "Metaspace", "replacement": replacement, "prepend_scheme": scheme.rawValue, "split": split]
        case .whitespace: ["type": "Whitespace"]
        case .whitespaceSplit: ["type": "WhitespaceSplit"]
        case .bert: ["type": "BertPreTokenizer"]
        case .punctuation(let b): ["type": "Punctuation", "behavior": b.rawValue]
        case .digits(let individual): ["type": "Digits", "individual_digits": individual]
        case .charDelimiterSplit(let d): ["type": "CharDelimiterSplit", "delimiter": String(Character(Unicode.Scalar(d)!))]
        case .sequence(let steps): ["type": "Sequence", "pretokenizers": steps.map(preTokenizer)]
        }
    }

    static func postProcessor(_ p: PostProcessor, tokens: [String]) -> [String: Any] {
        func name(_ id: Int32) -> String { Int(id) < tokens.count ? tokens[Int(id)] : "" }
        switch p {
        case let .template(single, pair, specials):
            func pieces(_ t: [PostProcessor.TemplatePiece]) -> [[String: Any]] {
                t.map {
                    switch $0 {
                    case let .sequence(second, typeId): ["Sequence": ["id": second ? "B" : "A", "type_id": Int(typeId)]]
                    case let .special(id, typeId): ["SpecialToken": ["id": id, "type_id": Int(typeId)]]
                    }
                }
            }
            var st: [String: Any] = [:]
            for (k, ids) in specials { st[k] = ["id": k, "ids": ids.map { Int($0) }, "tokens": ids.map(name)] }
            return ["type": "TemplateProcessing", "single": pieces(single), "pair": pieces(pair), "special_tokens": st]
        case let .bert(sep, cls):
            return ["type": "BertProcessing", "sep": [name(sep), Int(sep)], "cls": [name(cls), Int(cls)]]
        case let .roberta(sep, cls, trim):
            return ["type": "RobertaProcessing", "sep": [name(sep), Int(sep)], "cls": [name(cls), Int(cls)],
                    "trim_offsets": trim, "add_prefix_space": true]
        case let .byteLevel(trim, prefixSpace):
            return ["type": "ByteLevel", "add_prefix_space": prefixSpace, "trim_offsets": trim, "use_regex": true]
        case .sequence(let steps):
            return ["type": "Sequence", "processors": steps.map { postProcessor($0, tokens: tokens) }]
        }
    }

    static func decoder(_ d: Decoder) -> [String: Any] {
        switch d {
        case .byteLevel: ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true]
        case let .metaspace(r, scheme): ["type": "Metaspace", "replacement": r, "prepend_scheme": scheme.rawValue, "split": true]
        case .byteFallback: ["type": "ByteFallback"]
        case .fuse: ["type": "Fuse"]
        case let .strip(content, start, stop): ["type": "Strip", "content": content, "start": start, "stop": stop]
        case let .replace(p, content): ["type": "Replace", "pattern": ["String": p], "content": content]
        case let .wordPiece(prefix, cleanup): ["type": "WordPiece", "prefix": prefix, "cleanup": cleanup]
        case .bpe(let suffix): ["type": "BPEDecoder", "suffix": suffix]
        case .sequence(let steps): ["type": "Sequence", "decoders": steps.map(decoder)]
        }
    }
}
