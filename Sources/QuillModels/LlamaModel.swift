import Foundation
import QuillCore
import QuillFormats

/// A Llama-family decoder (Llama 2/3, Mistral, Qwen2, SmolLM, Gemma 3) loaded from a GGUF file
/// or a Hugging Face directory. Weights
/// of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F16 and BF16 stay in their type (in the
/// file mapping, or Q4_0 / Q4_1 interleaved for decoding) and run on our kernels; others (and
/// everything, with `.dense`) are dequantized to fp32 and run on BLAS. Names follow GGUF
/// (`blk.N.attn_q.weight`).
///
/// ```swift
/// let model = try LlamaModel(gguf: GGUFFile(path: "SmolLM2-135M-Instruct.Q4_1.gguf"))
/// var cache = model.makeCache(capacity: 512)
/// let logits = try model.forward([1, 2, 3], cache: &cache)   // [V] for the last token
/// ```
public final class LlamaModel: Sendable {
    public let config: LlamaConfig

    /// How weights are held: quantized where a kernel exists, or all dequantized to fp32.
    public enum WeightFormat: Sendable { case quantized, dense }

    /// A linear layer's weight [out, in].
    enum Weight: Sendable {
        case dense([Float])
        case quantized(QuantizedMatrix)
        /// A frozen weight with a LoRA adapter beside it (`applying(adapter:)`).
        indirect case adapted(Weight, LowRank)

        /// The weight without its adapter.
        var base: Weight { if case .adapted(let w, _) = self { w.base } else { self } }

        /// out[N, OC] = x[N, C] · Wᵀ (+ bias).
        func apply(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ bias: [Float]?,
                   n: Int, c: Int, oc: Int, denseFrom: Int) {
            LlamaModel.apply([(self, out, bias, oc)], x, n: n, c: c, denseFrom: denseFrom)
        }
    }

    /// Products of one input with one or several weights (q, k, v; gate, up), each plus its
    /// bias. Quantized weights that share an activation type run as one parallel loop on one
    /// quantized copy of the input. Interleaved weights stay on the int8 kernels for any batch:
    /// each unpacked weight vector meets four rows, and that beats dequantizing to fp32 for
    /// BLAS (quill eval against llama-perplexity: Qwen2.5-1.5B Q4_K_M 0.73x before, 1.25x with
    /// these kernels alone; SmolLM2 Q4_1 1.75x before, 2.01x). A weight in its file's row
    /// layout meets a batch of at least `denseFrom` rows (a prompt) as dequantized fp32 on BLAS:
    /// its row kernels unpack every weight again for every row.
    static func apply(_ products: [(weight: Weight, out: UnsafeMutablePointer<Float>, bias: [Float]?, oc: Int)],
                      _ x: UnsafePointer<Float>, n: Int, c: Int, denseFrom: Int) {
        applyBase(products.map { ($0.weight.base, $0.out, $0.bias, $0.oc) }, x, n: n, c: c, denseFrom: denseFrom)
        for p in products { if case .adapted(_, let adapter) = p.weight { adapter.add(to: p.out, x, n: n, c: c, oc: p.oc) } }
    }

    private static func applyBase(_ products: [(weight: Weight, out: UnsafeMutablePointer<Float>, bias: [Float]?, oc: Int)],
                                  _ x: UnsafePointer<Float>, n: Int, c: Int, denseFrom: Int) {
        let quantized = products.compactMap { p -> (out: UnsafeMutablePointer<Float>, weight: QuantizedMatrix, bias: [Float]?)? in
            if case .quantized(let w) = p.weight { return (p.out, w, p.bias) } else { return nil }
        }
        func int8(_ w: QuantizedMatrix) -> Bool { n < denseFrom || w.layout == .interleaved8 }
        if quantized.count == products.count, quantized.allSatisfy({ int8($0.weight) }),
           quantized.allSatisfy({ $0.weight.activationType == quantized[0].weight.activationType }) {
            return QuantizedMatmul.forward(quantized, x, n: n)
        }
        for p in products {
            switch p.weight {
            case .dense(let w): Matmul.forward(p.out, x, w, p.bias, n: n, c: c, oc: p.oc)
            case .quantized(let w) where !int8(w): QuantizedMatmul.forwardDequantized(p.out, x, w, bias: p.bias, n: n)
            case .quantized(let w): QuantizedMatmul.forward([(p.out, w, p.bias)], x, n: n)
            case .adapted: preconditionFailure("applyBase takes the weights without their adapters")
            }
        }
    }

    struct Block: Sendable {
        let attentionNorm: [Float], q: Weight, k: Weight, v: Weight, output: Weight
        let qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
        let ffnNorm: [Float], gate: Weight, up: Weight, down: Weight
        /// Gemma 3's: RMSNorm of each query and key head [HS] before RoPE, and of the attention
        /// and feed-forward outputs [C] before their residual sums.
        var queryNorm: [Float]? = nil, keyNorm: [Float]? = nil
        var postAttentionNorm: [Float]? = nil, postFeedForwardNorm: [Float]? = nil
    }

    /// A block's weights in fp32, [out, in] each (a trained model's): what `init(config:embedding:
    /// blocks:outputNorm:outputHead:)` builds a model from.
    public struct DenseBlock: Sendable {
        public var attentionNorm: [Float], q: [Float], k: [Float], v: [Float], output: [Float]
        public var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
        public var ffnNorm: [Float], gate: [Float], up: [Float], down: [Float]
        /// Gemma's norms, as `Block` holds them (1 + w).
        public var queryNorm: [Float]? = nil, keyNorm: [Float]? = nil
        public var postAttentionNorm: [Float]? = nil, postFeedForwardNorm: [Float]? = nil

        public init(attentionNorm: [Float], q: [Float], k: [Float], v: [Float], output: [Float], qBias: [Float]?, kBias: [Float]?,
                    vBias: [Float]?, ffnNorm: [Float], gate: [Float], up: [Float], down: [Float]) {
            self.attentionNorm = attentionNorm; self.q = q; self.k = k; self.v = v; self.output = output
            self.qBias = qBias; self.kBias = kBias; self.vBias = vBias
            self.ffnNorm = ffnNorm; self.gate = gate; self.up = up; self.down = down
        }
    }

    /// Token embeddings [V, C]: rows looked up one at a time.
    enum Embedding: Sendable {
        case gguf(GGUFFile.TensorInfo)
        case dense([Float])
    }

    let file: GGUFFile?             // keeps the mapping that quantized weights point into
    let embedding: Embedding
    let blocks: [Block]
    let outputNorm: [Float]         // [C]
    let outputHead: Weight          // [V, C]; the embedding when tied
    let inverseFrequencies: [Float]
    let localInverseFrequencies: [Float]?     // Gemma 3's sliding-window layers
    public let weightFormat: WeightFormat
    /// Batches of at least this many tokens multiply quantized weights kept in their file's row
    /// layout as fp32 on BLAS (interleaved ones stay int8).
    public let denseBatchThreshold: Int

    init(config: LlamaConfig, embedding: Embedding, blocks: [Block], outputNorm: [Float], outputHead: Weight,
         file: GGUFFile?, weightFormat: WeightFormat, denseBatchThreshold: Int) {
        self.config = config
        self.embedding = embedding
        self.blocks = blocks
        self.outputNorm = outputNorm
        self.outputHead = outputHead
        self.file = file
        self.weightFormat = weightFormat
        self.denseBatchThreshold = denseBatchThreshold
        self.inverseFrequencies = config.inverseFrequencies
        self.localInverseFrequencies = config.localInverseFrequencies
    }

    /// A model from fp32 weights already in memory (a trained model), every product on BLAS.
    public convenience init(config: LlamaConfig, embedding: [Float], blocks: [DenseBlock], outputNorm: [Float], outputHead: [Float]) {
        let blocks = blocks.map { b in
            Block(attentionNorm: b.attentionNorm, q: .dense(b.q), k: .dense(b.k), v: .dense(b.v), output: .dense(b.output),
                  qBias: b.qBias, kBias: b.kBias, vBias: b.vBias, ffnNorm: b.ffnNorm, gate: .dense(b.gate), up: .dense(b.up),
                  down: .dense(b.down), queryNorm: b.queryNorm, keyNorm: b.keyNorm, postAttentionNorm: b.postAttentionNorm,
                  postFeedForwardNorm: b.postFeedForwardNorm)
        }
        self.init(config: config, embedding: .dense(embedding), blocks: blocks, outputNorm: outputNorm, outputHead: .dense(outputHead),
                  file: nil, weightFormat: .dense, denseBatchThreshold: 32)
    }

    public convenience init(gguf file: GGUFFile, weights format: WeightFormat = .quantized, denseBatchThreshold: Int = 32) throws {
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
        func weight(_ name: String, _ shape: [Int]) throws -> Weight {
            guard let info = file.tensor(named: name) else { throw ModelError.missingTensor(path: file.path, name: name) }
            if format == .quantized && QuantizedMatrix.supports(info.type) && info.dimensions == shape {
                let matrix = QuantizedMatrix(type: info.type, rows: shape[1], cols: shape[0], data: file.data(of: info).baseAddress!)
                let interleaved = matrix.interleaved()
                // the file's copy is no longer read as a whole: its pages leave memory (a tied
                // embedding's rows fault back in one by one as tokens are looked up)
                if interleaved.layout != matrix.layout { file.releasePages(of: info) }
                return .quantized(interleaved)
            }
            return .dense(try tensor(name, shape))
        }
        if let e = file.tensor(named: "token_embd.weight"), e.dimensions.count == 2 { config.vocabularySize = e.dimensions[1] }
        let vocab = config.vocabularySize
        guard let embeddingInfo = file.tensor(named: "token_embd.weight") else {
            throw ModelError.missingTensor(path: file.path, name: "token_embd.weight")
        }
        guard embeddingInfo.dimensions == [c, vocab] else {
            throw ModelError.shapeMismatch(path: file.path, name: "token_embd.weight", expected: [c, vocab], found: embeddingInfo.dimensions)
        }
        let blocks = try (0..<config.layers).map { l in
            let p = "blk.\(l)."
            return Block(
                attentionNorm: try tensor(p + "attn_norm.weight", [c]),
                q: try weight(p + "attn_q.weight", [c, qDim]), k: try weight(p + "attn_k.weight", [c, kvDim]),
                v: try weight(p + "attn_v.weight", [c, kvDim]), output: try weight(p + "attn_output.weight", [qDim, c]),
                qBias: try optional(p + "attn_q.bias", [qDim]), kBias: try optional(p + "attn_k.bias", [kvDim]),
                vBias: try optional(p + "attn_v.bias", [kvDim]),
                ffnNorm: try tensor(p + "ffn_norm.weight", [c]),
                gate: try weight(p + "ffn_gate.weight", [c, config.intermediateSize]),
                up: try weight(p + "ffn_up.weight", [c, config.intermediateSize]),
                down: try weight(p + "ffn_down.weight", [config.intermediateSize, c]),
                // Gemma's norms (llama.cpp's converter already added Gemma's +1 to each weight)
                queryNorm: try optional(p + "attn_q_norm.weight", [config.headSize]),
                keyNorm: try optional(p + "attn_k_norm.weight", [config.headSize]),
                postAttentionNorm: try optional(p + "post_attention_norm.weight", [c]),
                postFeedForwardNorm: try optional(p + "post_ffw_norm.weight", [c]))
        }
        self.init(config: config, embedding: .gguf(embeddingInfo), blocks: blocks,
                  outputNorm: try tensor("output_norm.weight", [c]),
                  outputHead: try weight(file.tensor(named: "output.weight") != nil ? "output.weight" : "token_embd.weight", [c, vocab]),
                  file: file, weightFormat: format, denseBatchThreshold: denseBatchThreshold)
    }

    /// A Hugging Face directory: `config.json` and `*.safetensors` (single or sharded; F32,
    /// F16 or BF16, converted to fp32).
    public convenience init(huggingFace directory: URL) throws {
        try self.init(huggingFace: directory, config: try HuggingFaceConfig.read(directory))
    }

    convenience init(huggingFace directory: URL, config hf: HuggingFaceConfig) throws {
        let config = try LlamaConfig(huggingFace: hf.json, path: hf.path)
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        try ModelError.checkLayers(config.layers, key: "num_hidden_layers", tensors: checkpoint.tensorCount, path: hf.path)
        let c = config.hiddenSize, kvDim = config.kvHeads * config.headSize, qDim = config.heads * config.headSize
        let ff = config.intermediateSize, vocab = config.vocabularySize
        func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let info = checkpoint.info(name) else { throw ModelError.missingTensor(path: directory.path, name: name) }
            guard info.shape == shape else {
                throw ModelError.shapeMismatch(path: directory.path, name: name, expected: shape, found: info.shape)
            }
            return try checkpoint.floats(name)
        }
        func optional(_ name: String, _ shape: [Int]) throws -> [Float]? {
            checkpoint.info(name) == nil ? nil : try tensor(name, shape)
        }
        // Gemma's RMSNorm multiplies by 1 + weight: stored here as that sum, as GGUF files have it
        let gemma = config.architecture == "gemma3"
        func norm(_ name: String, _ width: Int) throws -> [Float] {
            let weight = try tensor(name, [width])
            return gemma ? weight.map { $0 + 1 } : weight
        }
        let blocks = try (0..<config.layers).map { l in
            let p = "model.layers.\(l)."
            return Block(
                attentionNorm: try norm(p + "input_layernorm.weight", c),
                q: .dense(try tensor(p + "self_attn.q_proj.weight", [qDim, c])),
                k: .dense(try tensor(p + "self_attn.k_proj.weight", [kvDim, c])),
                v: .dense(try tensor(p + "self_attn.v_proj.weight", [kvDim, c])),
                output: .dense(try tensor(p + "self_attn.o_proj.weight", [c, qDim])),
                qBias: try optional(p + "self_attn.q_proj.bias", [qDim]), kBias: try optional(p + "self_attn.k_proj.bias", [kvDim]),
                vBias: try optional(p + "self_attn.v_proj.bias", [kvDim]),
                // Gemma's post_attention_layernorm normalizes the attention output; Llama's is the
                // norm before the feed-forward (Gemma's pre_feedforward_layernorm)
                ffnNorm: try norm(p + (gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), c),
                gate: .dense(try tensor(p + "mlp.gate_proj.weight", [ff, c])),
                up: .dense(try tensor(p + "mlp.up_proj.weight", [ff, c])),
                down: .dense(try tensor(p + "mlp.down_proj.weight", [c, ff])),
                queryNorm: gemma ? try norm(p + "self_attn.q_norm.weight", config.headSize) : nil,
                keyNorm: gemma ? try norm(p + "self_attn.k_norm.weight", config.headSize) : nil,
                postAttentionNorm: gemma ? try norm(p + "post_attention_layernorm.weight", c) : nil,
                postFeedForwardNorm: gemma ? try norm(p + "post_feedforward_layernorm.weight", c) : nil)
        }
        let embedding = try tensor("model.embed_tokens.weight", [vocab, c])
        let head = config.tiedEmbeddings || checkpoint.info("lm_head.weight") == nil ? embedding : try tensor("lm_head.weight", [vocab, c])
        self.init(config: config, embedding: .dense(embedding), blocks: blocks, outputNorm: try norm("model.norm.weight", c),
                  outputHead: .dense(head), file: nil, weightFormat: .dense, denseBatchThreshold: 32)
    }

    public func makeCache(capacity: Int? = nil) -> KVCache {
        KVCache(layers: config.layers, capacity: min(capacity ?? config.contextLength, config.contextLength),
                width: config.kvHeads * config.headSize)
    }

    /// Runs `tokens` (positions cache.count ..< cache.count + N) and appends them to the cache.
    /// Returns the logits of positions first..<N: [N − first, V].
    public func forward(_ tokens: [Int32], cache: inout KVCache, logitsFrom first: Int) throws -> [Float] {
        let x = try hiddenStates(tokens, cache: &cache)
        return head(x, rows: min(max(first, 0), tokens.count)..<tokens.count)
    }

    /// The same, the head run on `rowsAtOnce` rows at a time, each slice handed to `body` and
    /// dropped before the next.
    public func forward(_ tokens: [Int32], cache: inout KVCache, logitsFrom first: Int, rowsAtOnce: Int,
                        _ body: (_ row: Int, _ logits: UnsafeBufferPointer<Float>) throws -> Void) throws {
        let x = try hiddenStates(tokens, cache: &cache), from = min(max(first, 0), tokens.count)
        for row in stride(from: from, to: tokens.count, by: max(1, rowsAtOnce)) {
            let logits = head(x, rows: row..<min(row + max(1, rowsAtOnce), tokens.count))
            try logits.withUnsafeBufferPointer { try body(row - from, $0) }
        }
    }

    public func observeProductInputs(_ tokens: [Int32], cache: inout KVCache, _ observe: ProductInputObserver) throws {
        _ = try withoutActuallyEscaping(observe) { try hiddenStates(tokens, cache: &cache, observe: $0) }
    }

    /// Runs `tokens` through the blocks and appends them to the cache: the final hidden states [N, C].
    private func hiddenStates(_ tokens: [Int32], cache: inout KVCache, observe: ProductInputObserver? = nil) throws -> [Float] {
        let n = tokens.count, start = cache.count
        guard n > 0 else { throw ModelError.emptyPrompt }
        guard start + n <= cache.capacity else { throw ModelError.contextOverflow(tokens: start + n, context: cache.capacity) }
        let cfg = config
        var x = try embed(tokens)
        let positions = (0..<n).map { Int32(start + $0) }
        try runBlocks(&x, positions: positions, sequenceLengths: [Int](repeating: start + n, count: n), observe: observe) { l, q, k, v, att in
            cache.store(layer: l, at: start, keys: k, values: v, count: n)
            cache.withLayer(l) { keys, values in
                Layers.attention(att, q: q, keys: keys, values: values, start: start, n: n, heads: cfg.heads,
                                 kvHeads: cfg.kvHeads, headSize: cfg.headSize, window: cfg.window(layer: l))
            }
        }
        cache.count = start + n
        return x
    }

    /// One decoding step for several independent sequences at once: sequence b appends
    /// tokens[b] at its own position caches[b].count. The matrix products run on all rows
    /// together (what continuous batching in a server needs); attention reads each own cache.
    /// Returns logits [B, V].
    public func forwardBatch(_ tokens: [Int32], caches: inout [KVCache]) throws -> [Float] {
        precondition(tokens.count == caches.count, "one token per sequence")
        try KVCache.requireRoom(caches, for: 1)
        let cfg = config
        let kvDim = cfg.kvHeads * cfg.headSize
        var x = try embed(tokens)
        let positions = caches.map { Int32($0.count) }
        let rows = caches.map(\.count)
        try runBlocks(&x, positions: positions, sequenceLengths: caches.map { $0.count + 1 }) { l, q, k, v, att in
            for b in caches.indices {
                caches[b].store(layer: l, at: rows[b], keys: k + b * kvDim, values: v + b * kvDim, count: 1)
            }
            KVCache.withLayer(l, of: caches) { keys, values in
                Layers.decodeAttention(att, q: q, keys: keys, values: values, positions: rows, heads: cfg.heads,
                                       kvHeads: cfg.kvHeads, headSize: cfg.headSize, window: cfg.window(layer: l))
            }
        }
        for b in caches.indices { caches[b].count += 1 }
        return head(x, rows: 0..<tokens.count)
    }

    /// Token rows of the embedding [N, C].
    private func embed(_ tokens: [Int32]) throws -> [Float] {
        let c = config.hiddenSize, vocab = config.vocabularySize
        var x = [Float](repeating: 0, count: tokens.count * c)
        for (i, t) in tokens.enumerated() {
            guard t >= 0 && Int(t) < vocab else { throw ModelError.tokenOutOfRange(id: t, vocabularySize: vocab) }
            x.withUnsafeMutableBufferPointer { xb in
                switch embedding {
                case .gguf(let info):   // one row, dequantized on the way
                    let rowBytes = c / info.type.blockLayout.elements * info.type.blockLayout.bytes
                    Dequantize.row(info.type, from: file!.data(of: info).baseAddress! + Int(t) * rowBytes,
                                   into: xb.baseAddress! + i * c, count: c)
                case .dense(let table):
                    table.withUnsafeBufferPointer { (xb.baseAddress! + i * c).update(from: $0.baseAddress! + Int(t) * c, count: c) }
                }
            }
        }
        if config.embeddingScale != 1 { for i in x.indices { x[i] *= config.embeddingScale } }
        return x
    }

    /// RoPE frequencies for rows of a sequence `length` tokens long (in this call): fixed,
    /// except under dynamic NTK scaling, which raises the base once a sequence outgrows the
    /// trained context (as transformers does it, per forward call).
    private func ropeFrequencies(sequenceLength length: Int) -> [Float] {
        guard case let .dynamic(_, original) = config.ropeScaling, length > original else { return inverseFrequencies }
        return config.inverseFrequencies(sequenceLength: length)
    }

    /// The decoder blocks over x [N, C] in place; `attend(layer, q, k, v, out)` stores keys and
    /// values and fills the attention output, which is where sequences differ. Row i is at
    /// `positions[i]` of a sequence `sequenceLengths[i]` long. `observe` sees each product's input.
    private func runBlocks(_ x: inout [Float], positions: [Int32], sequenceLengths: [Int], observe: ProductInputObserver? = nil,
                           attend: (Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) throws -> Void) throws {
        let cfg = config, n = positions.count
        // runs of rows that share their frequencies: one run, unless dynamic scaling differs per sequence
        var ropeRuns: [(rows: Range<Int>, frequencies: [Float])] = []
        for i in 0..<n {
            let frequencies = ropeFrequencies(sequenceLength: sequenceLengths[i])
            if let last = ropeRuns.last, last.frequencies == frequencies { ropeRuns[ropeRuns.count - 1].rows = last.rows.lowerBound..<(i + 1) }
            else { ropeRuns.append((i..<(i + 1), frequencies)) }
        }
        // the rotations, once for every layer: each run's, and the sliding-window layers' own (Gemma 3)
        let globalAngles = positions.withUnsafeBufferPointer { pb in
            ropeRuns.map { run in
                (run.rows, Layers.RotaryAngles(positions: pb.baseAddress! + run.rows.lowerBound, n: run.rows.count,
                                               inverseFrequencies: run.frequencies, attentionFactor: cfg.ropeAttentionFactor))
            }
        }
        let localAngles = localInverseFrequencies.map { frequencies in
            positions.withUnsafeBufferPointer { [(0..<n, Layers.RotaryAngles(positions: $0.baseAddress!, n: n, inverseFrequencies: frequencies))] }
        }
        let c = cfg.hiddenSize, qDim = cfg.heads * cfg.headSize, kvDim = cfg.kvHeads * cfg.headSize, ff = cfg.intermediateSize
        var h = [Float](repeating: 0, count: n * c)
        var q = [Float](repeating: 0, count: n * qDim)
        var k = [Float](repeating: 0, count: n * kvDim)
        var v = [Float](repeating: 0, count: n * kvDim)
        var att = [Float](repeating: 0, count: n * qDim)
        var gate = [Float](repeating: 0, count: n * ff)
        var up = [Float](repeating: 0, count: n * ff)
        for (l, block) in blocks.enumerated() {
            Layers.rmsnorm(&h, x, block.attentionNorm, n: n, c: c, eps: cfg.rmsNormEpsilon)
            if let observe { for name in ["attn_q", "attn_k", "attn_v"] { observe("blk.\(l).\(name).weight", h, n, c) } }
            q.withUnsafeMutableBufferPointer { qb in
                k.withUnsafeMutableBufferPointer { kb in
                    v.withUnsafeMutableBufferPointer { vb in
                        Self.apply([(block.q, qb.baseAddress!, block.qBias, qDim), (block.k, kb.baseAddress!, block.kBias, kvDim),
                                    (block.v, vb.baseAddress!, block.vBias, kvDim)], h, n: n, c: c, denseFrom: denseBatchThreshold)
                    }
                }
            }
            if let norm = block.queryNorm { Self.normalize(&q, norm, rows: n * cfg.heads, eps: cfg.rmsNormEpsilon) }
            if let norm = block.keyNorm { Self.normalize(&k, norm, rows: n * cfg.kvHeads, eps: cfg.rmsNormEpsilon) }
            // Gemma 3's sliding-window layers rotate with their own base, unscaled
            let runs = cfg.usesLocalRope(layer: l) ? localAngles! : globalAngles
            q.withUnsafeMutableBufferPointer { qb in
                k.withUnsafeMutableBufferPointer { kb in
                    for (rows, angles) in runs {
                        Layers.rope(qb.baseAddress! + rows.lowerBound * qDim, angles: angles, heads: cfg.heads, headSize: cfg.headSize,
                                    pairing: cfg.ropePairing)
                        Layers.rope(kb.baseAddress! + rows.lowerBound * kvDim, angles: angles, heads: cfg.kvHeads, headSize: cfg.headSize,
                                    pairing: cfg.ropePairing)
                    }
                }
            }
            // the attention kernels scale scores by 1/√HS: a different scale goes into the queries
            if let scale = cfg.attentionScale {
                let factor = scale * Float(cfg.headSize).squareRoot()
                for i in 0..<(n * qDim) { q[i] *= factor }
            }
            try q.withUnsafeBufferPointer { qb in
                try k.withUnsafeBufferPointer { kb in
                    try v.withUnsafeBufferPointer { vb in
                        try att.withUnsafeMutableBufferPointer { ab in
                            try attend(l, qb.baseAddress!, kb.baseAddress!, vb.baseAddress!, ab.baseAddress!)
                        }
                    }
                }
            }
            observe?("blk.\(l).attn_output.weight", att, n, qDim)
            block.output.apply(&h, att, nil, n: n, c: qDim, oc: c, denseFrom: denseBatchThreshold)
            if let norm = block.postAttentionNorm { Self.normalize(&h, norm, rows: n, eps: cfg.rmsNormEpsilon) }
            for i in 0..<(n * c) { x[i] += h[i] }

            Layers.rmsnorm(&h, x, block.ffnNorm, n: n, c: c, eps: cfg.rmsNormEpsilon)
            if let observe { for name in ["ffn_gate", "ffn_up"] { observe("blk.\(l).\(name).weight", h, n, c) } }
            gate.withUnsafeMutableBufferPointer { gb in
                up.withUnsafeMutableBufferPointer { ub in
                    Self.apply([(block.gate, gb.baseAddress!, nil, ff), (block.up, ub.baseAddress!, nil, ff)], h,
                               n: n, c: c, denseFrom: denseBatchThreshold)
                }
            }
            switch cfg.feedForwardActivation {
            case .silu: Layers.swiglu(&gate, gate, up, count: n * ff)
            case .geluTanh: Layers.geglu(&gate, gate, up, count: n * ff)
            }
            observe?("blk.\(l).ffn_down.weight", gate, n, ff)
            block.down.apply(&h, gate, nil, n: n, c: ff, oc: c, denseFrom: denseBatchThreshold)
            if let norm = block.postFeedForwardNorm { Self.normalize(&h, norm, rows: n, eps: cfg.rmsNormEpsilon) }
            for i in 0..<(n * c) { x[i] += h[i] }
        }
    }

    /// RMSNorm in place over the first `rows` rows of x, each as wide as `weight`.
    private static func normalize(_ x: inout [Float], _ weight: [Float], rows: Int, eps: Float) {
        x.withUnsafeMutableBufferPointer { Layers.rmsnorm($0.baseAddress!, $0.baseAddress!, weight, n: rows, c: weight.count, eps: eps) }
    }

    /// Final norm and output head for the given rows of x: logits [rows, V].
    private func head(_ x: [Float], rows: Range<Int>) -> [Float] {
        let c = config.hiddenSize, vocab = config.vocabularySize
        var final = [Float](repeating: 0, count: rows.count * c)
        x.withUnsafeBufferPointer { xb in
            Layers.rmsnorm(&final, xb.baseAddress! + rows.lowerBound * c, outputNorm, n: rows.count, c: c, eps: config.rmsNormEpsilon)
        }
        // every element is written by the product: no zeroing pass, whose page faults (hundreds of
        // megabytes for a scored window) would all fall on one thread
        var logits = [Float](unsafeUninitializedCapacity: rows.count * vocab) { logits, initialized in
            outputHead.apply(logits.baseAddress!, final, nil, n: rows.count, c: c, oc: vocab, denseFrom: denseBatchThreshold)
            initialized = rows.count * vocab
        }
        if let cap = config.finalLogitSoftcap { logits.withUnsafeMutableBufferPointer { Layers.softcap($0, cap: cap) } }
        return logits
    }
}
