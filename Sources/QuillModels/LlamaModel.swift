import Foundation
import QuillCore
import QuillFormats

/// A Llama-family decoder (Llama 2/3, Mistral, Qwen2, SmolLM) running on fp32 weights
/// dequantized from a GGUF file. Names follow GGUF (`blk.N.attn_q.weight`).
///
/// ```swift
/// let model = try LlamaModel(gguf: GGUFFile(path: "SmolLM2-135M-Instruct.Q4_1.gguf"))
/// var cache = model.makeCache(capacity: 512)
/// let logits = try model.forward([1, 2, 3], cache: &cache)   // [V] for the last token
/// ```
public final class LlamaModel: Sendable {
    public let config: LlamaConfig

    struct Block: Sendable {
        let attentionNorm: [Float], q: [Float], k: [Float], v: [Float], output: [Float]
        let qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
        let ffnNorm: [Float], gate: [Float], up: [Float], down: [Float]
    }

    let embedding: [Float]          // [V, C]
    let blocks: [Block]
    let outputNorm: [Float]         // [C]
    let outputHead: [Float]?        // [V, C]; nil when tied to the embedding
    let inverseFrequencies: [Float]

    public init(gguf file: GGUFFile) throws {
        var config = try LlamaConfig(gguf: file)
        let c = config.hiddenSize, kvDim = config.kvHeads * config.headSize, qDim = config.heads * config.headSize
        func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let info = file.tensor(named: name) else { throw ModelError.missingTensor(path: file.path, name: name) }
            guard info.dimensions == shape else {
                throw ModelError.shapeMismatch(path: file.path, name: name, expected: shape, found: info.dimensions)
            }
            return Dequantize.array(info.type, file.data(of: info), count: info.elementCount)
        }
        func optional(_ name: String, _ shape: [Int]) throws -> [Float]? {
            file.tensor(named: name) == nil ? nil : try tensor(name, shape)
        }
        if let e = file.tensor(named: "token_embd.weight"), e.dimensions.count == 2 { config.vocabularySize = e.dimensions[1] }
        let vocab = config.vocabularySize
        self.config = config
        embedding = try tensor("token_embd.weight", [c, vocab])
        blocks = try (0..<config.layers).map { l in
            let p = "blk.\(l)."
            return Block(
                attentionNorm: try tensor(p + "attn_norm.weight", [c]),
                q: try tensor(p + "attn_q.weight", [c, qDim]), k: try tensor(p + "attn_k.weight", [c, kvDim]),
                v: try tensor(p + "attn_v.weight", [c, kvDim]), output: try tensor(p + "attn_output.weight", [qDim, c]),
                qBias: try optional(p + "attn_q.bias", [qDim]), kBias: try optional(p + "attn_k.bias", [kvDim]),
                vBias: try optional(p + "attn_v.bias", [kvDim]),
                ffnNorm: try tensor(p + "ffn_norm.weight", [c]),
                gate: try tensor(p + "ffn_gate.weight", [c, config.intermediateSize]),
                up: try tensor(p + "ffn_up.weight", [c, config.intermediateSize]),
                down: try tensor(p + "ffn_down.weight", [config.intermediateSize, c]))
        }
        outputNorm = try tensor("output_norm.weight", [c])
        outputHead = try optional("output.weight", [c, vocab])
        inverseFrequencies = config.inverseFrequencies
    }

    public func makeCache(capacity: Int? = nil) -> KVCache {
        KVCache(layers: config.layers, capacity: min(capacity ?? config.contextLength, config.contextLength),
                width: config.kvHeads * config.headSize)
    }

    /// Runs `tokens` (positions cache.count ..< cache.count + N) and appends them to the cache.
    /// Returns logits [V] of the last token, or [N, V] when `allLogits` is set.
    public func forward(_ tokens: [Int32], cache: inout KVCache, allLogits: Bool = false) throws -> [Float] {
        let n = tokens.count, start = cache.count
        guard start + n <= cache.capacity else { throw ModelError.contextOverflow(tokens: start + n, context: cache.capacity) }
        let cfg = config
        let c = cfg.hiddenSize, qDim = cfg.heads * cfg.headSize, kvDim = cfg.kvHeads * cfg.headSize
        let ff = cfg.intermediateSize, vocab = cfg.vocabularySize
        var x = [Float](repeating: 0, count: n * c)
        for (i, t) in tokens.enumerated() {
            guard t >= 0 && Int(t) < vocab else { throw ModelError.missingKey(path: "token", key: "id \(t) outside vocabulary of \(vocab)") }
            x.withUnsafeMutableBufferPointer { xb in
                embedding.withUnsafeBufferPointer { e in
                    (xb.baseAddress! + i * c).update(from: e.baseAddress! + Int(t) * c, count: c)
                }
            }
        }
        var h = [Float](repeating: 0, count: n * c)
        var q = [Float](repeating: 0, count: n * qDim)
        var k = [Float](repeating: 0, count: n * kvDim)
        var v = [Float](repeating: 0, count: n * kvDim)
        var att = [Float](repeating: 0, count: n * qDim)
        var gate = [Float](repeating: 0, count: n * ff)
        var up = [Float](repeating: 0, count: n * ff)
        var scratch = [Float](repeating: 0, count: cache.capacity)
        let positions = (0..<n).map { Int32(start + $0) }

        for (l, block) in blocks.enumerated() {
            Layers.rmsnorm(&h, x, block.attentionNorm, n: n, c: c, eps: cfg.rmsNormEpsilon)
            Matmul.forward(&q, h, block.q, block.qBias, n: n, c: c, oc: qDim)
            Matmul.forward(&k, h, block.k, block.kBias, n: n, c: c, oc: kvDim)
            Matmul.forward(&v, h, block.v, block.vBias, n: n, c: c, oc: kvDim)
            Layers.rope(&q, positions: positions, n: n, heads: cfg.heads, headSize: cfg.headSize,
                        inverseFrequencies: inverseFrequencies, pairing: cfg.ropePairing)
            Layers.rope(&k, positions: positions, n: n, heads: cfg.kvHeads, headSize: cfg.headSize,
                        inverseFrequencies: inverseFrequencies, pairing: cfg.ropePairing)
            cache.store(layer: l, at: start, keys: k, values: v, count: n)
            cache.withLayer(l) { keys, values in
                Layers.attention(&att, q: q, keys: keys, values: values, start: start, n: n, heads: cfg.heads,
                                 kvHeads: cfg.kvHeads, headSize: cfg.headSize, window: cfg.slidingWindow,
                                 scratch: &scratch)
            }
            Matmul.forward(&h, att, block.output, nil, n: n, c: qDim, oc: c)
            for i in 0..<(n * c) { x[i] += h[i] }

            Layers.rmsnorm(&h, x, block.ffnNorm, n: n, c: c, eps: cfg.rmsNormEpsilon)
            Matmul.forward(&gate, h, block.gate, nil, n: n, c: c, oc: ff)
            Matmul.forward(&up, h, block.up, nil, n: n, c: c, oc: ff)
            Layers.swiglu(&gate, gate, up, count: n * ff)
            Matmul.forward(&h, gate, block.down, nil, n: n, c: ff, oc: c)
            for i in 0..<(n * c) { x[i] += h[i] }
        }
        cache.count = start + n

        let rows = allLogits ? n : 1
        let first = allLogits ? 0 : n - 1
        var final = [Float](repeating: 0, count: rows * c)
        x.withUnsafeBufferPointer { xb in
            Layers.rmsnorm(&final, xb.baseAddress! + first * c, outputNorm, n: rows, c: c, eps: cfg.rmsNormEpsilon)
        }
        var logits = [Float](repeating: 0, count: rows * vocab)
        Matmul.forward(&logits, final, outputHead ?? embedding, nil, n: rows, c: c, oc: vocab)
        return logits
    }
}
