import Dispatch
import Foundation
import Synchronization

/// A text tokenizer that gives the same ids as Hugging Face `tokenizers` for the same files.
///
/// ```swift
/// let tokenizer = try Tokenizer(contentsOf: URL(filePath: "tokenizer.json"))
/// let ids = tokenizer.encode("Hello, 世界")              // with BOS/CLS etc. as configured
/// let text = tokenizer.decode(ids, skipSpecialTokens: true)
/// ```
/// Load from other sources with `Tokenizer(gpt2Vocab:merges:)`, `Tokenizer(tiktoken:)`,
/// `Tokenizer(sentencePieceModel:)` or, in QuillFormats, `Tokenizer(gguf:)`.
public struct Tokenizer: Sendable {
    public let normalizer: Normalizer?
    public let preTokenizer: PreTokenizer?
    public let model: TokenModel
    public let postProcessor: PostProcessor?
    public let decoder: Decoder?
    public let addedTokens: [AddedToken]
    public var bosTokenId: Int32?
    public var eosTokenId: Int32?
    public var padTokenId: Int32?
    public var unkTokenId: Int32?
    /// The model's chat template (Jinja source), when the files carry one.
    public var chatTemplate: String?

    private let rawMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher
    private let addedById: [Int32: Int]

    public init(normalizer: Normalizer?, preTokenizer: PreTokenizer?, model: TokenModel,
                postProcessor: PostProcessor?, decoder: Decoder?, addedTokens: [AddedToken]) {
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.addedTokens = addedTokens
        // With no normalizer the two kinds of added token match the same text.
        rawMatcher = AddedTokenMatcher(addedTokens.filter { !$0.normalized || normalizer == nil })
        normalizedMatcher = AddedTokenMatcher(normalizer == nil ? [] : addedTokens.filter(\.normalized))
        var byId: [Int32: Int] = [:]
        for (i, t) in addedTokens.enumerated() { byId[t.id] = i }
        addedById = byId
    }

    /// Number of ids the tokenizer can produce (model vocabulary plus added tokens).
    public var vocabularySize: Int {
        max(model.tokens.count, (addedTokens.map { Int($0.id) }.max() ?? -1) + 1)
    }

    public func id(for token: String) -> Int32? {
        if let i = addedTokens.firstIndex(where: { $0.content == token }) { return addedTokens[i].id }
        return model.vocab[token]
    }

    public func token(for id: Int32) -> String? {
        if let i = addedById[id] { return addedTokens[i].content }
        let tokens = model.tokens
        return id >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : nil
    }

    public func isSpecial(_ id: Int32) -> Bool { addedById[id].map { addedTokens[$0].special } ?? false }

    // MARK: Encoding

    /// Token ids of `text`; `addSpecialTokens` applies the post-processor (BOS, CLS/SEP, ...).
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        var cache = WordCache()
        return encode(text, addSpecialTokens: addSpecialTokens, idsOnly: true, cache: &cache).ids
    }

    /// Ids with offsets (byte ranges of `text`), type ids and the special-token mask.
    public func encodeWithOffsets(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true) -> Encoding {
        var cache = WordCache()
        let a = encodeSequence(Array(text.utf8), idsOnly: false, cache: &cache)
        let b = pair.map { encodeSequence(Array($0.utf8), idsOnly: false, cache: &cache) }
        return postProcess(a, b, addSpecialTokens: addSpecialTokens)
    }

    /// Encodes raw bytes from a file, rejecting invalid UTF-8 with the offending offset.
    public func encode(bytes: [UInt8], source: String, addSpecialTokens: Bool = true) throws(TokenizerError) -> [Int32] {
        let text = try validateUTF8(bytes, source: source)
        return encode(text, addSpecialTokens: addSpecialTokens)
    }

    /// Encodes many texts across all cores; each worker keeps its own word cache and claims
    /// blocks of consecutive texts, so workers never write next to each other's results.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true, threads: Int? = nil) -> [[Int32]] {
        var results = [[Int32]](repeating: [], count: texts.count)
        let workers = max(1, min(threads ?? ProcessInfo.processInfo.activeProcessorCount, texts.count))
        let block = 256
        let next = Atomic<Int>(0)
        results.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                var cache = WordCache()
                while true {
                    let start = next.add(block, ordering: .relaxed).oldValue
                    if start >= texts.count { break }
                    for i in start..<min(start + block, texts.count) {
                        out[i] = encode(texts[i], addSpecialTokens: addSpecialTokens, idsOnly: true, cache: &cache).ids
                    }
                }
            }
        }
        return results
    }

    package func encode(_ text: String, addSpecialTokens: Bool, idsOnly: Bool, cache: inout WordCache) -> Encoding {
        var text = text
        let encoding = text.withUTF8 { encodeSequence(Array($0), idsOnly: idsOnly, cache: &cache) }
        return postProcess(encoding, nil, addSpecialTokens: addSpecialTokens)
    }

    private func postProcess(_ a: Encoding, _ b: Encoding?, addSpecialTokens: Bool) -> Encoding {
        guard let postProcessor else {
            var out = a
            if let b { out.append(contentsOf: b, typeId: 1) }
            return out
        }
        return postProcessor.process(a, b, addSpecialTokens: addSpecialTokens, tokens: model.tokens)
    }

    /// Added tokens, normalization, pre-tokenization and the model, without post-processing.
    package func encodeSequence(_ bytes: [UInt8], idsOnly: Bool, cache: inout WordCache) -> Encoding {
        var out = Encoding(idsOnly: idsOnly)
        out.ids.reserveCapacity(bytes.count / 3)
        for segment in rawMatcher.split(bytes, 0..<bytes.count) {
            if let t = segment.token {
                out.append(rawMatcher.tokens[t].id, offset: segment.range)
                continue
            }
            var normalized = NormalizedText(bytes[segment.range], base: segment.range.lowerBound)
            normalizer?.apply(&normalized)
            for part in normalizedMatcher.split(normalized.bytes, 0..<normalized.bytes.count) {
                if let t = part.token {
                    out.append(normalizedMatcher.tokens[t].id, offset: normalized.originalRange(part.range))
                    continue
                }
                var pre = PreTokenized(normalized)
                pre.pieces = part.range.isEmpty ? [] : [part.range]
                preTokenizer?.apply(&pre)
                encodePieces(pre, cache: &cache, into: &out)
            }
        }
        return out
    }

    /// The pieces normalization and the pre-tokenizer cut `text` into (no added tokens matched).
    package func preTokenize(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var normalized = NormalizedText(bytes[...], base: 0)
        normalizer?.apply(&normalized)
        var pre = PreTokenized(normalized)
        preTokenizer?.apply(&pre)
        return pre.pieces.map { String(decoding: pre.text.bytes[$0], as: UTF8.self) }
    }

    private func encodePieces(_ pre: PreTokenized, cache: inout WordCache, into out: inout Encoding) {
        var ids: [Int32] = [], lengths: [Int32] = []
        pre.text.bytes.withUnsafeBufferPointer { buf in
            guard let p = buf.baseAddress else { return }
            for piece in pre.pieces {
                ids.removeAll(keepingCapacity: true)
                lengths.removeAll(keepingCapacity: true)
                let cacheable = piece.count <= WordCache.maxKeyLength
                let hash = cacheable ? WordCache.hash(p, piece, byteLevel: pre.byteLevel) : 0
                if cacheable, let hit = cache.find(p, piece, hash: hash) {
                    ids.append(contentsOf: cache.idArena[hit])
                    lengths.append(contentsOf: cache.lengthArena[hit])
                } else {
                    switch model {
                    case .bpe(let bpe): bpe.encode(p, piece, byteLevel: pre.byteLevel, ids: &ids, lengths: &lengths)
                    case .wordPiece(let wp): wp.encode(p, piece, ids: &ids, lengths: &lengths)
                    }
                    if cacheable { cache.insert(p, piece, hash: hash, ids: ids[...], lengths: lengths[...]) }
                }
                var cursor = piece.lowerBound
                for (id, length) in zip(ids, lengths) {
                    let end = cursor + Int(length)
                    out.append(id, offset: pre.text.originalRange(cursor..<end))
                    cursor = end
                }
            }
        }
    }

    // MARK: Decoding

    /// Text of `ids`; invalid UTF-8 (a cut-off character) becomes U+FFFD, as in HF.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        String(decoding: decodeBytes(ids, skipSpecialTokens: skipSpecialTokens), as: UTF8.self)
    }

    /// The decoder's raw bytes, which may end inside a UTF-8 sequence.
    public func decodeBytes(_ ids: [Int32], skipSpecialTokens: Bool = false, first: Bool = true) -> [UInt8] {
        var pieces: [[UInt8]] = []
        pieces.reserveCapacity(ids.count)
        for id in ids {
            if skipSpecialTokens && isSpecial(id) { continue }
            guard let t = token(for: id) else { continue }
            pieces.append(Array(t.utf8))
        }
        guard let decoder else {
            return Array(pieces.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ").utf8)
        }
        return decoder.decode(pieces, first: first).flatMap { $0 }
    }

    /// A decoder for streaming generation: feed ids one by one, get text only once it is whole.
    public func makeStreamingDecoder(skipSpecialTokens: Bool = true) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}

/// Incremental detokenization that never emits part of a UTF-8 sequence: a Chinese character or
/// an emoji often spans several byte-level tokens, and is held back until it is complete.
///
/// ```swift
/// var stream = tokenizer.makeStreamingDecoder()
/// for id in generated { print(stream.push(id), terminator: "") }
/// print(stream.finish())
/// ```
public struct StreamingDecoder: Sendable {
    let tokenizer: Tokenizer
    let skipSpecialTokens: Bool
    private var ids: [Int32] = []
    private var prefixIndex = 0
    private var readIndex = 0

    init(tokenizer: Tokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id; returns the text that became complete (often empty mid-character).
    public mutating func push(_ id: Int32) -> String {
        ids.append(id)
        let (before, after) = window()
        guard after.count > before.count, after.starts(with: before) || before.isEmpty else { return "" }
        // Hold back an unfinished UTF-8 sequence or a replacement character (ByteFallback's
        // marker for bytes still waiting for the rest of their character).
        if completeUTF8PrefixLength(after) != after.count { return "" }
        if after.count >= 3 && after.suffix(3).elementsEqual([0xEF, 0xBF, 0xBD]) { return "" }
        let text = String(decoding: after[before.count...], as: UTF8.self)
        prefixIndex = readIndex
        readIndex = ids.count
        return text
    }

    /// The bytes of the already-emitted window and of the window with the new ids: decoding
    /// from `prefixIndex` keeps position-dependent decoders (a stripped leading space) right.
    private func window() -> (before: [UInt8], after: [UInt8]) {
        let first = prefixIndex == 0
        return (tokenizer.decodeBytes(Array(ids[prefixIndex..<readIndex]), skipSpecialTokens: skipSpecialTokens, first: first),
                tokenizer.decodeBytes(Array(ids[prefixIndex...]), skipSpecialTokens: skipSpecialTokens, first: first))
    }

    /// Whatever is left at the end of the stream (U+FFFD for bytes that never completed).
    public mutating func finish() -> String {
        let (before, after) = window()
        prefixIndex = ids.count
        readIndex = ids.count
        guard after.count > before.count else { return "" }
        return String(decoding: after[before.count...], as: UTF8.self)
    }
}
