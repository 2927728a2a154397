/// Sees the input of a weight product: the weight's GGUF name (`blk.0.attn_q.weight`) and the
/// rows that meet it, [rows, columns].
public typealias ProductInputObserver = (_ weight: String, _ input: UnsafePointer<Float>, _ rows: Int, _ columns: Int) -> Void

/// What generation needs from an architecture: run tokens through it with a KV cache.
public protocol LanguageModel: Sendable {
    var vocabularySize: Int { get }
    var contextLength: Int { get }
    func makeCache(capacity: Int?) -> KVCache
    /// Runs `tokens` and returns the logits of positions `logitsFrom..<N`: [N − logitsFrom, V]
    /// (scoring asks only for the rows it scores; the head is a large share of a small model).
    func forward(_ tokens: [Int32], cache: inout KVCache, logitsFrom first: Int) throws -> [Float]
    /// The same logits handed to `body` at most `rowsAtOnce` rows at a time: body(the slice's
    /// first row, counted from `first`; logits [r, V]). Scoring then holds one slice of a window's
    /// logits at a time instead of all of them (a 150k vocabulary makes 600 KB a row).
    func forward(_ tokens: [Int32], cache: inout KVCache, logitsFrom first: Int, rowsAtOnce: Int,
                 _ body: (_ row: Int, _ logits: UnsafeBufferPointer<Float>) throws -> Void) throws
    /// One decoding step for several independent sequences at once: sequence b appends
    /// tokens[b] at its own position caches[b].count. Returns logits [B, V].
    func forwardBatch(_ tokens: [Int32], caches: inout [KVCache]) throws -> [Float]
    /// Runs `tokens` through the blocks as `forward` does (appending them to the cache; no head),
    /// handing `observe` the input of every weight product of the blocks, in order: what an
    /// importance matrix (llama-imatrix) sums.
    func observeProductInputs(_ tokens: [Int32], cache: inout KVCache, _ observe: ProductInputObserver) throws
}

extension LanguageModel {
    /// All rows computed at once, then handed over in slices (architectures whose head cannot
    /// run on a slice of rows).
    public func forward(_ tokens: [Int32], cache: inout KVCache, logitsFrom first: Int, rowsAtOnce: Int,
                        _ body: (_ row: Int, _ logits: UnsafeBufferPointer<Float>) throws -> Void) throws {
        let logits = try forward(tokens, cache: &cache, logitsFrom: first), vocab = vocabularySize
        try logits.withUnsafeBufferPointer { all in
            for row in stride(from: 0, to: logits.count / vocab, by: max(1, rowsAtOnce)) {
                let end = min(row + max(1, rowsAtOnce), logits.count / vocab)
                try body(row, UnsafeBufferPointer(rebasing: all[(row * vocab)..<(end * vocab)]))
            }
        }
    }

    public func makeCache() -> KVCache { makeCache(capacity: nil) }
    public func forward(_ tokens: [Int32], cache: inout KVCache) throws -> [Float] {
        try forward(tokens, cache: &cache, allLogits: false)
    }
    /// Logits [V] of the last token, or [N, V] with `allLogits`.
    public func forward(_ tokens: [Int32], cache: inout KVCache, allLogits: Bool) throws -> [Float] {
        try forward(tokens, cache: &cache, logitsFrom: allLogits ? 0 : max(tokens.count - 1, 0))
    }
}

extension LlamaModel: LanguageModel {
    public var vocabularySize: Int { config.vocabularySize }
    public var contextLength: Int { config.contextLength }
}
