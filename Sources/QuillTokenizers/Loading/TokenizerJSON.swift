import Foundation

extension Tokenizer {
    /// Loads a Hugging Face `tokenizer.json`. If `url` is a directory, reads `tokenizer.json`
    /// (and `tokenizer_config.json` beside it, for BOS/EOS/PAD and the chat template) from it.
    public init(contentsOf url: URL) throws(TokenizerError) {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let file = isDirectory.boolValue ? url.appendingPathComponent("tokenizer.json") : url
        guard exists else { throw .unreadable(path: url.path, reason: "no such file or directory") }
        let data = try readFile(file)
        let configURL = file.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try readFile(configURL) : nil
        try self.init(tokenizerJSON: data, config: config, source: file.lastPathComponent)
    }

    /// Builds a tokenizer from the bytes of `tokenizer.json` (and optionally `tokenizer_config.json`).
    public init(tokenizerJSON data: Data, config: Data? = nil, source: String = "tokenizer.json") throws(TokenizerError) {
        let root = try JSONNode.parse(data, source: source)
        _ = try root.object()
        let model = try TokenizerJSONReader.model(root["model"])
        var added: [AddedToken] = []
        if !root["added_tokens"].isNull {
            for t in try root["added_tokens"].array() {
                added.append(AddedToken(
                    content: try t["content"].string(), id: try t["id"].tokenId(),
                    special: try t["special"].bool(default: false), lstrip: try t["lstrip"].bool(default: false),
                    rstrip: try t["rstrip"].bool(default: false), normalized: try t["normalized"].bool(default: false),
                    singleWord: try t["single_word"].bool(default: false)))
            }
        }
        let normalizer = try root["normalizer"].isNull ? nil : TokenizerJSONReader.normalizer(root["normalizer"])
        let preTokenizer = try root["pre_tokenizer"].isNull ? nil : TokenizerJSONReader.preTokenizer(root["pre_tokenizer"])
        let vocab = model.vocab.merging(added.map { ($0.content, $0.id) }) { a, _ in a }
        let post = try root["post_processor"].isNull ? nil
            : TokenizerJSONReader.postProcessor(root["post_processor"], vocab: vocab)
        let decoder = try root["decoder"].isNull ? nil : TokenizerJSONReader.decoder(root["decoder"])
        self.init(normalizer: normalizer, preTokenizer: preTokenizer, model: model,
                  postProcessor: post, decoder: decoder, addedTokens: added)
        if case .bpe(let bpe) = model { unkTokenId = bpe.unkId }
        if case .wordPiece(let wp) = model { unkTokenId = wp.unkId }
        if let config {
            let c = try JSONNode.parse(config, source: "tokenizer_config.json")
            func tokenId(_ key: String) -> Int32? {
                let node = c[key]
                let content = (node.value as? String) ?? (node["content"].value as? String)
                return content.flatMap { id(for: $0) }
            }
            bosTokenId = tokenId("bos_token")
            eosTokenId = tokenId("eos_token")
            padTokenId = tokenId("pad_token")
            if let u = tokenId("unk_token") { unkTokenId = u }
            if let template = c["chat_template"].value as? String { chatTemplate = template }
            else if let list = c["chat_template"].value as? [[String: Any]],
                    let d = list.first(where: { $0["name"] as? String == "default" }) ?? list.first {
                chatTemplate = d["template"] as? String
            }
        }
    }
}

func readFile(_ url: URL) throws(TokenizerError) -> Data {
    do { return try FileContents.read(url.path) }
    catch { throw .unreadable(path: url.path, reason: error.reason) }
}

/// Reads each `tokenizer.json` component; the supported lists double as the error message.
enum TokenizerJSONReader {
    /// A sequence's type id (0 for the first of a pair, 1 for the second; small in practice).
    static func typeId(_ n: JSONNode) throws(TokenizerError) -> Int32 {
        let i = try n.int(default: 0)
        guard (0...Int(UInt16.max)).contains(i) else { throw n.fail("type id \(i) is outside 0...65535") }
        return Int32(i)
    }

    static func model(_ n: JSONNode) throws(TokenizerError) -> TokenModel {
        _ = try n.object()
        let type = n["type"].isNull ? (n["merges"].isNull ? "WordPiece" : "BPE") : try n.type(["BPE", "WordPiece"])
        var vocab: [String: Int32] = [:]
        let rawVocab = try n["vocab"].object()
        vocab.reserveCapacity(rawVocab.count)
        for (token, id) in rawVocab {
            guard let i = id as? Int else { throw n["vocab"][token].fail("expected an integer id") }
            guard TokenIds.valid(i) else { throw n["vocab"][token].fail("token id \(i) is outside 0..<\(TokenIds.limit)") }
            vocab[token] = Int32(i)
        }
        switch type {
        case "BPE":
            var merges: [(String, String)] = []
            let raw = n["merges"].value as? [Any] ?? []
            merges.reserveCapacity(raw.count)
            for (i, m) in raw.enumerated() {
                if let s = m as? String {
                    // "a b": split at the first space that leaves two non-empty halves
                    guard let space = s.unicodeScalars.firstIndex(of: " ") else {
                        throw n["merges"].fail("merge \(i) \"\(s)\" has no space between its two tokens")
                    }
                    merges.append((String(s.unicodeScalars[..<space]), String(s.unicodeScalars[s.unicodeScalars.index(after: space)...])))
                } else if let pair = m as? [String], pair.count == 2 {
                    merges.append((pair[0], pair[1]))
                } else {
                    throw JSONNode(value: m, path: "\(n.path).merges[\(i)]", source: n.source)
                        .fail("expected \"a b\" or [\"a\", \"b\"]")
                }
            }
            return .bpe(try BPEModel(
                vocab: vocab, merges: merges, unkToken: try n["unk_token"].string(default: nil),
                fuseUnk: try n["fuse_unk"].bool(default: false), byteFallback: try n["byte_fallback"].bool(default: false),
                ignoreMerges: try n["ignore_merges"].bool(default: false),
                continuingSubwordPrefix: try n["continuing_subword_prefix"].string(default: nil),
                endOfWordSuffix: try n["end_of_word_suffix"].string(default: nil), source: n.source))
        default:
            return .wordPiece(try WordPieceModel(
                vocab: vocab, unkToken: try n["unk_token"].string(default: "[UNK]")!,
                prefix: try n["continuing_subword_prefix"].string(default: "##")!,
                maxInputCharsPerWord: try n["max_input_chars_per_word"].int(default: 100), source: n.source))
        }
    }

    static func pattern(_ n: JSONNode) throws(TokenizerError) -> PatternMatcher {
        if let s = n["String"].value as? String { return try PatternMatcher(.string(s)) }
        if let r = n["Regex"].value as? String {
            do { return try PatternMatcher(.regex(r)) }
            catch { throw n.fail("cannot compile regex \(r)") }
        }
        throw n.fail("expected {\"String\": ...} or {\"Regex\": ...}")
    }

    static func normalizer(_ n: JSONNode) throws(TokenizerError) -> Normalizer {
        switch try n.type(["NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "Strip", "Replace",
                           "Prepend", "BertNormalizer", "Sequence"]) {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "StripAccents": return .stripAccents
        case "Strip": return .strip(left: try n["strip_left"].bool(default: true), right: try n["strip_right"].bool(default: true))
        case "Replace": return .replace(pattern: try pattern(n["pattern"]), content: try n["content"].string())
        case "Prepend": return .prepend(try n["prepend"].string())
        case "BertNormalizer":
            let strip: Bool? = n["strip_accents"].isNull ? nil : try n["strip_accents"].bool(default: false)
            return .bert(cleanText: try n["clean_text"].bool(default: true),
                         handleChineseChars: try n["handle_chinese_chars"].bool(default: true),
                         stripAccents: strip, lowercase: try n["lowercase"].bool(default: true))
        default:
            var steps: [Normalizer] = []
            for s in try n["normalizers"].array() { steps.append(try normalizer(s)) }
            return .sequence(steps)
        }
    }

    static func behavior(_ n: JSONNode, default d: SplitBehavior) throws(TokenizerError) -> SplitBehavior {
        guard let s = try n.string(default: nil) else { return d }
        guard let b = SplitBehavior(rawValue: s) else {
            throw .unknownComponent(source: n.source, at: n.path, found: s,
                                    supported: ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"])
        }
        return b
    }

    static func prependScheme(_ n: JSONNode) throws(TokenizerError) -> PreTokenizer.PrependScheme {
        if let s = try n["prepend_scheme"].string(default: nil) {
            guard let scheme = PreTokenizer.PrependScheme(rawValue: s) else {
                throw .unknownComponent(source: n.source, at: n["prepend_scheme"].path, found: s,
                                        supported: ["first", "never", "always"])
            }
            return scheme
        }
        return try n["add_prefix_space"].bool(default: true) ? .always : .never   // older files
    }

    static func preTokenizer(_ n: JSONNode) throws(TokenizerError) -> PreTokenizer {
        switch try n.type(["ByteLevel", "Split", "Metaspace", "Whitespace", "WhitespaceSplit", "BertPreTokenizer",
                           "Punctuation", "Digits", "CharDelimiterSplit", "Sequence"]) {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: try n["add_prefix_space"].bool(default: true),
                              useRegex: try n["use_regex"].bool(default: true))
        case "Split":
            return .split(try pattern(n["pattern"]), behavior: try behavior(n["behavior"], default: .isolated),
                          invert: try n["invert"].bool(default: false))
        case "Metaspace":
            return .metaspace(replacement: try n["replacement"].string(default: "▁")!,
                              prependScheme: try prependScheme(n), split: try n["split"].bool(default: true))
        case "Whitespace": return .whitespace
        case "WhitespaceSplit": return .whitespaceSplit
        case "BertPreTokenizer": return .bert
        case "Punctuation": return .punctuation(try behavior(n["behavior"], default: .isolated))
        case "Digits": return .digits(individual: try n["individual_digits"].bool(default: false))
        case "CharDelimiterSplit":
            let d = try n["delimiter"].string()
            guard let s = d.unicodeScalars.first, d.unicodeScalars.count == 1 else { throw n["delimiter"].fail("expected one character") }
            return .charDelimiterSplit(s.value)
        default:
            var steps: [PreTokenizer] = []
            for s in try n["pretokenizers"].array() { steps.append(try preTokenizer(s)) }
            return .sequence(steps)
        }
    }

    static func postProcessor(_ n: JSONNode, vocab: [String: Int32]) throws(TokenizerError) -> PostProcessor {
        func tokenPair(_ p: JSONNode) throws(TokenizerError) -> Int32 {
            let a = try p.array()
            guard a.count == 2 else { throw p.fail("expected [token, id]") }
            return try a[1].tokenId()
        }
        switch try n.type(["TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel", "Sequence"]) {
        case "TemplateProcessing":
            func template(_ t: JSONNode) throws(TokenizerError) -> [PostProcessor.TemplatePiece] {
                var out: [PostProcessor.TemplatePiece] = []
                for piece in try t.array() {
                    if !piece["SpecialToken"].isNull {
                        out.append(.special(try piece["SpecialToken"]["id"].string(),
                                            typeId: try typeId(piece["SpecialToken"]["type_id"])))
                    } else if !piece["Sequence"].isNull {
                        let which = try piece["Sequence"]["id"].string()
                        out.append(.sequence(second: which == "B", typeId: try typeId(piece["Sequence"]["type_id"])))
                    } else { throw piece.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}") }
                }
                return out
            }
            var specials: [String: [Int32]] = [:]
            for (name, _) in (n["special_tokens"].value as? [String: Any]) ?? [:] {
                var ids: [Int32] = []
                for i in try n["special_tokens"][name]["ids"].array() { ids.append(try i.tokenId()) }
                specials[name] = ids
            }
            return .template(single: try template(n["single"]), pair: try template(n["pair"]), specialTokens: specials)
        case "BertProcessing":
            return .bert(sep: try tokenPair(n["sep"]), cls: try tokenPair(n["cls"]))
        case "RobertaProcessing":
            return .roberta(sep: try tokenPair(n["sep"]), cls: try tokenPair(n["cls"]),
                            trimOffsets: try n["trim_offsets"].bool(default: true))
        case "ByteLevel":
            return .byteLevel(trimOffsets: try n["trim_offsets"].bool(default: true),
                              addPrefixSpace: try n["add_prefix_space"].bool(default: true))
        default:
            var steps: [PostProcessor] = []
            for s in try n["processors"].array() { steps.append(try postProcessor(s, vocab: vocab)) }
            return .sequence(steps)
        }
    }

    static func decoder(_ n: JSONNode) throws(TokenizerError) -> Decoder {
        switch try n.type(["ByteLevel", "Metaspace", "ByteFallback", "Fuse", "Strip", "Replace", "WordPiece",
                           "BPEDecoder", "Sequence"]) {
        case "ByteLevel": return .byteLevel
        case "Metaspace":
            return .metaspace(replacement: try n["replacement"].string(default: "▁")!, prependScheme: try prependScheme(n))
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            return .strip(content: try n["content"].string(default: " ")!, start: try n["start"].int(default: 0),
                          stop: try n["stop"].int(default: 0))
        case "Replace":
            guard let s = n["pattern"]["String"].value as? String else {
                throw n["pattern"].fail("decoder Replace supports a String pattern")
            }
            return .replace(pattern: s, content: try n["content"].string())
        case "WordPiece":
            return .wordPiece(prefix: try n["prefix"].string(default: "##")!, cleanup: try n["cleanup"].bool(default: true))
        case "BPEDecoder": return .bpe(suffix: try n["suffix"].string(default: "</w>")!)
        default:
            var steps: [Decoder] = []
            for s in try n["decoders"].array() { steps.append(try decoder(s)) }
            return .sequence(steps)
        }
    }
}
