import Foundation

extension Tokenizer {
    /// GPT-2's original files: `vocab.json` (token → id) and `merges.txt` (one merge a line).
    public init(gpt2Vocab vocabURL: URL, merges mergesURL: URL) throws(TokenizerError) {
        let vocabNode = try JSONNode.parse(try readFile(vocabURL), source: vocabURL.lastPathComponent)
        var vocab: [String: Int32] = [:]
        for (token, id) in try vocabNode.object() {
            guard let i = id as? Int else { throw vocabNode[token].fail("expected an integer id") }
            vocab[token] = Int32(i)
        }
        let text = String(decoding: try readFile(mergesURL), as: UTF8.self)
        var merges: [(String, String)] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line.isEmpty || (number == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else {
                throw .malformed(source: mergesURL.lastPathComponent, at: "line \(number + 1)",
                                 problem: "expected two tokens separated by a space, found \"\(line)\"")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        let model = try BPEModel(vocab: vocab, merges: merges, source: mergesURL.lastPathComponent)
        var added: [AddedToken] = []
        if let eot = vocab["<|endoftext|>"] { added.append(AddedToken(content: "<|endoftext|>", id: eot, special: true)) }
        self.init(normalizer: nil, preTokenizer: .byteLevel(addPrefixSpace: false, useRegex: true), model: .bpe(model),
                  postProcessor: .byteLevel(trimOffsets: false), decoder: .byteLevel, addedTokens: added)
        bosTokenId = vocab["<|endoftext|>"]
        eosTokenId = bosTokenId
    }

    /// A tiktoken rank file (`cl100k_base.tiktoken`: base64 token, space, rank, per line), with the
    /// cl100k pre-tokenizer. Merge order is the rank of the merged bytes, as tiktoken does it.
    public init(tiktoken url: URL, pattern: String? = nil,
                specialTokens: [String: Int32] = ["<|endoftext|>": 100257, "<|fim_prefix|>": 100258,
                                                  "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
                                                  "<|endofprompt|>": 100276]) throws(TokenizerError) {
        let text = String(decoding: try readFile(url), as: UTF8.self)
        var ranks: [[UInt8]: Int32] = [:]
        var vocab: [String: Int32] = [:]
        for (number, line) in text.split(separator: "\n").enumerated() {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let data = Data(base64Encoded: String(parts[0])), let rank = Int32(parts[1]) else {
                throw .malformed(source: url.lastPathComponent, at: "line \(number + 1)", problem: "expected \"BASE64 RANK\"")
            }
            ranks[Array(data)] = rank
            vocab[ByteLevelAlphabet.mapped(Array(data))] = rank
        }
        // tiktoken merges the adjacent pair whose concatenation has the lowest rank. The same
        // result from rank-ordered merges: every split of every token into two known tokens,
        // ranked by the token's own rank.
        let merges = Self.mergesFromSplits(ranks.map { (ByteLevelAlphabet.mapped($0.key), $0.value) }, known: vocab)
        let model = try BPEModel(vocab: vocab, idMerges: merges, source: url.lastPathComponent)
        let added = specialTokens.map { AddedToken(content: $0.key, id: $0.value, special: true) }.sorted { $0.id < $1.id }
        self.init(normalizer: nil,
                  preTokenizer: .sequence([.split(try PatternMatcher(.regex(pattern ?? WordScanner.cl100kPattern)), behavior: .isolated, invert: false),
                                           .byteLevel(addPrefixSpace: false, useRegex: false)]),
                  model: .bpe(model), postProcessor: nil, decoder: .byteLevel, addedTokens: added)
        eosTokenId = specialTokens["<|endoftext|>"]
    }

    /// Merges implied by a vocabulary ranked by score: every split of a token (at a scalar
    /// boundary) into two known tokens, best-ranked (lowest `rank`) token first, splits by
    /// (left id, right id). As ids: (left, right, merged).
    static func mergesFromSplits(_ ranked: [(String, Int32)], known vocab: [String: Int32]) -> [(Int32, Int32, Int32)] {
        let table = TokenBytesTable(vocab)
        var merges: [(rank: Int32, left: Int32, right: Int32, merged: Int32)] = []
        for (token, rank) in ranked {
            Array(token.utf8).withUnsafeBufferPointer { bytes in
                guard bytes.count > 1, let merged = table.id(bytes) else { return }
                for cut in 1..<bytes.count where bytes[cut] & 0xC0 != 0x80 {   // not a continuation byte
                    if let left = table.id(UnsafeBufferPointer(rebasing: bytes[..<cut])),
                       let right = table.id(UnsafeBufferPointer(rebasing: bytes[cut...])) {
                        merges.append((rank, left, right, merged))
                    }
                }
            }
        }
        merges.sort { ($0.rank, $0.left, $0.right) < ($1.rank, $1.left, $1.right) }
        return merges.map { ($0.left, $0.right, $0.merged) }
    }

    /// A BERT `vocab.txt` (one token a line, id = line number) with BERT's usual pipeline.
    public init(wordPieceVocab url: URL, lowercase: Bool = true) throws(TokenizerError) {
        let text = String(decoding: try readFile(url), as: UTF8.self)
        var vocab: [String: Int32] = [:]
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let token = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if token.isEmpty && i > 0 { continue }
            if vocab[token] == nil { vocab[token] = Int32(i) }
        }
        try self.init(bertVocabulary: vocab, lowercase: lowercase, source: url.lastPathComponent)
    }

    package init(bertVocabulary vocab: [String: Int32], lowercase: Bool, source: String) throws(TokenizerError) {
        let model = try WordPieceModel(vocab: vocab, unkToken: "[UNK]", source: source)
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].compactMap { name in
            vocab[name].map { AddedToken(content: name, id: $0, special: true) }
        }
        guard let cls = vocab["[CLS]"], let sep = vocab["[SEP]"] else {
            throw .malformed(source: source, at: "", problem: "a BERT vocabulary needs [CLS] and [SEP]")
        }
        self.init(normalizer: .bert(cleanText: true, handleChineseChars: true, stripAccents: nil, lowercase: lowercase),
                  preTokenizer: .bert, model: .wordPiece(model), postProcessor: .bert(sep: sep, cls: cls),
                  decoder: .wordPiece(prefix: "##", cleanup: true), addedTokens: specials)
        unkTokenId = model.unkId
        padTokenId = vocab["[PAD]"]
    }
}
