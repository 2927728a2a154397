/// What generation needs from an architecture: run tokens through it with a KV cache.
public protocol LanguageModel: Sendable {
    var vocabularySize: Int { get }
    var contextLength: Int { get }
    func makeCache(capacity: Int?) -> KVCache
    /// Runs `tokens` and returns the logits of positions `logitsFrom..<N`: [N − logitsFrom, V]
    /// (scoring asks only for the rows it scores; the head is a large share of a small model).
    func forward(_ tokens: [Int32], cache: inout KVCache, logitsFrom first: Int) throws -> [Float]
    /// One decoding step for several independent sequences at once: sequence b appends
    /// tokens[b] at its own position caches[b].count. Returns logits [B, V].
    func forwardBatch(_ tokens: [Int32], caches: inout [KVCache]) throws -> [Float]
}

extension LanguageModel {
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
