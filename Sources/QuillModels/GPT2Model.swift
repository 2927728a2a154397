import Foundation
import QuillCore
import QuillFormats

/// GPT-2: learned positions, LayerNorm, tanh-GELU MLP, one fused q/k/v projection, the output
/// head tied to the token embedding. From a Hugging Face checkpoint (`transformer.h.N.attn.c_attn`,
/// whose Conv1D layers store weights [in, out], transposed here once to the [out, in] of a Linear)
/// or a GGUF file (`blk.N.attn_qkv`, already [out, in]; weights of any type dequantized to fp32).
///
/// ```swift
/// let model = try GPT2Model(huggingFace: URL(filePath: "gpt2"))
/// ```
public final class GPT2Model: LanguageModel {
    public struct Config: Sendable, Equatable {
        public var vocabularySize, contextLength, hiddenSize, intermediateSize, layers, heads: Int
        public var layerNormEpsilon: Float

        public init(vocabularySize: Int, contextLength: Int, hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int,
                    layerNormEpsilon: Float) {
            self.vocabularySize = vocabularySize; self.contextLength = contextLength; self.hiddenSize = hiddenSize
            self.intermediateSize = intermediateSize; self.layers = layers; self.heads = heads; self.layerNormEpsilon = layerNormEpsilon
        }

        /// From a Hugging Face `config.json` (model_type gpt2).
        public init(huggingFace json: [String: Any], path: String) throws {
            func int(_ key: String) throws -> Int {
                guard let v = json[key] as? Int else { throw ModelError.missingKey(path: path, key: key) }
                guard v > 0 else { throw ModelError.unsupportedValue(path: path, key: key, found: "\(v)", supported: ["a positive size"]) }
                return v
            }
            let c = try int("n_embd"), heads = try int("n_head")
            guard c % heads == 0 else {
                throw ModelError.unsupportedValue(path: path, key: "n_head", found: "\(heads)", supported: ["a divisor of n_embd (\(c))"])
            }
            self.init(vocabularySize: try int("vocab_size"), contextLength: try int("n_positions"), hiddenSize: c,
                      intermediateSize: json["n_inner"] is Int ? try int("n_inner") : 4 * c, layers: try int("n_layer"), heads: heads,
                      layerNormEpsilon: Float((json["layer_norm_epsilon"] as? Double) ?? 1e-5))
        }

        /// From a GGUF file of architecture `gpt2` (its metadata and the embedding's shape).
        public init(gguf file: GGUFFile) throws {
            let arch = try file.string("general.architecture")
            guard arch == "gpt2" else { throw ModelError.unsupportedArchitecture(path: file.path, found: arch, supported: ["gpt2"]) }
            func int(_ key: String) throws -> Int {
                guard let v = file.metadata["gpt2.\(key)"]?.int else { throw ModelError.missingKey(path: file.path, key: "gpt2.\(key)") }
                guard v > 0 else {
                    throw ModelError.unsupportedValue(path: file.path, key: "gpt2.\(key)", found: "\(v)", supported: ["a positive size"])
                }
                return v
            }
            guard let embedding = file.tensor(named: "token_embd.weight"), embedding.dimensions.count == 2 else {
                throw ModelError.missingTensor(path: file.path, name: "token_embd.weight")
            }
            let c = try int("embedding_length"), heads = try int("attention.head_count")
            guard c % heads == 0 else {
                throw ModelError.unsupportedValue(path: file.path, key: "gpt2.attention.head_count", found: "\(heads)",
                                                  supported: ["a divisor of gpt2.embedding_length (\(c))"])
            }
            let layers = try int("block_count")
            try ModelError.checkLayers(layers, key: "gpt2.block_count", tensors: file.tensors.count, path: file.path)
            self.init(vocabularySize: embedding.dimensions[1], contextLength: try int("context_length"), hiddenSize: c,
                      intermediateSize: file.metadata["gpt2.feed_forward_length"] == nil ? 4 * c : try int("feed_forward_length"),
                      layers: layers, heads: heads,
                      layerNormEpsilon: Float(file.metadata["gpt2.attention.layer_norm_epsilon"]?.double ?? 1e-5))
        }
    }

    /// A block's weights, [out, in] for the linear ones.
    public struct Block: Sendable {
        let ln1Weight: [Float], ln1Bias: [Float], qkv: [Float], qkvBias: [Float], proj: [Float], projBias: [Float]
        let ln2Weight: [Float], ln2Bias: [Float], fc: [Float], fcBias: [Float], fcProj: [Float], fcProjBias: [Float]

        public init(ln1Weight: [Float], ln1Bias: [Float], qkv: [Float], qkvBias: [Float], proj: [Float], projBias: [Float],
                    ln2Weight: [Float], ln2Bias: [Float], fc: [Float], fcBias: [Float], fcProj: [Float], fcProjBias: [Float]) {
            self.ln1Weight = ln1Weight; self.ln1Bias = ln1Bias; self.qkv = qkv; self.qkvBias = qkvBias; self.proj = proj
            self.projBias = projBias; self.ln2Weight = ln2Weight; self.ln2Bias = ln2Bias; self.fc = fc; self.fcBias = fcBias
            self.fcProj = fcProj; self.fcProjBias = fcProjBias
        }
    }

    public let config: Config
    let tokenEmbedding: [Float]      // [V, C]
    let positionEmbedding: [Float]   // [ctx, C]
    let blocks: [Block]
    let finalWeight: [Float], finalBias: [Float]
    let outputHead: [Float]          // [V, C]: the token embedding, unless the file has its own

    public var vocabularySize: Int { config.vocabularySize }
    public var contextLength: Int { config.contextLength }

    /// From weights already in memory (a trained model); the output head is the token embedding
    /// unless one is given.
    public init(config: Config, tokenEmbedding: [Float], positionEmbedding: [Float], blocks: [Block], finalWeight: [Float], finalBias: [Float],
                outputHead: [Float]? = nil) {
        self.config = config
        self.tokenEmbedding = tokenEmbedding
        self.positionEmbedding = positionEmbedding
        self.blocks = blocks
        self.finalWeight = finalWeight
        self.finalBias = finalBias
        self.outputHead = outputHead ?? tokenEmbedding
    }

    public convenience init(huggingFace directory: URL) throws {
        try self.init(huggingFace: directory, config: try HuggingFaceConfig.read(directory))
    }

    init(huggingFace directory: URL, config hf: HuggingFaceConfig) throws {
        let json = hf.json
        guard hf.modelType == "gpt2" else {
            throw ModelError.unsupportedArchitecture(path: hf.path, found: hf.modelType, supported: ["gpt2"])
        }
        config = try Config(huggingFace: json, path: hf.path)
        let c = config.hiddenSize
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        try ModelError.checkLayers(config.layers, key: "n_layer", tensors: checkpoint.tensorCount, path: hf.path)
        // older checkpoints name tensors without the "transformer." prefix
        let prefix = checkpoint.info("transformer.wte.weight") != nil ? "transformer." : ""
        func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let info = checkpoint.info(prefix + name) else { throw ModelError.missingTensor(path: directory.path, name: prefix + name) }
            guard info.shape == shape else {
                throw ModelError.shapeMismatch(path: directory.path, name: prefix + name, expected: shape, found: info.shape)
            }
            return try checkpoint.floats(prefix + name)
        }
        /// Conv1D [in, out] → Linear [out, in]
        func conv1D(_ name: String, _ inputs: Int, _ outputs: Int) throws -> [Float] {
            let w = try tensor(name, [inputs, outputs])
            var t = [Float](repeating: 0, count: w.count)
            for i in 0..<inputs { for o in 0..<outputs { t[o * inputs + i] = w[i * outputs + o] } }
            return t
        }
        let cfg = config, ff = config.intermediateSize
        tokenEmbedding = try tensor("wte.weight", [cfg.vocabularySize, c])
        positionEmbedding = try tensor("wpe.weight", [cfg.contextLength, c])
        blocks = try (0..<cfg.layers).map { l in
            let p = "h.\(l)."
            return Block(
                ln1Weight: try tensor(p + "ln_1.weight", [c]), ln1Bias: try tensor(p + "ln_1.bias", [c]),
                qkv: try conv1D(p + "attn.c_attn.weight", c, 3 * c), qkvBias: try tensor(p + "attn.c_attn.bias", [3 * c]),
                proj: try conv1D(p + "attn.c_proj.weight", c, c), projBias: try tensor(p + "attn.c_proj.bias", [c]),
                ln2Weight: try tensor(p + "ln_2.weight", [c]), ln2Bias: try tensor(p + "ln_2.bias", [c]),
                fc: try conv1D(p + "mlp.c_fc.weight", c, ff), fcBias: try tensor(p + "mlp.c_fc.bias", [ff]),
                fcProj: try conv1D(p + "mlp.c_proj.weight", ff, c), fcProjBias: try tensor(p + "mlp.c_proj.bias", [c]))
        }
        finalWeight = try tensor("ln_f.weight", [c])
        finalBias = try tensor("ln_f.bias", [c])
        outputHead = tokenEmbedding
    }

    /// From a GGUF file of architecture `gpt2`, as llama.cpp's converter writes it.
    public init(gguf file: GGUFFile) throws {
        config = try Config(gguf: file)
        let c = config.hiddenSize, ff = config.intermediateSize
        // GGUF lists dimensions innermost first: a [out, in] matrix is [in, out] here
        func tensor(_ name: String, _ dimensions: [Int]) throws -> [Float] {
            guard let info = file.tensor(named: name) else { throw ModelError.missingTensor(path: file.path, name: name) }
            guard info.dimensions == dimensions else {
                throw ModelError.shapeMismatch(path: file.path, name: name, expected: dimensions, found: info.dimensions)
            }
            return Dequantize.array(info.type, file.data(of: info), count: info.elementCount)
        }
        let cfg = config
        tokenEmbedding = try tensor("token_embd.weight", [c, cfg.vocabularySize])
        positionEmbedding = try tensor("position_embd.weight", [c, cfg.contextLength])
        blocks = try (0..<cfg.layers).map { l in
            let p = "blk.\(l)."
            return Block(
                ln1Weight: try tensor(p + "attn_norm.weight", [c]), ln1Bias: try tensor(p + "attn_norm.bias", [c]),
                qkv: try tensor(p + "attn_qkv.weight", [c, 3 * c]), qkvBias: try tensor(p + "attn_qkv.bias", [3 * c]),
                proj: try tensor(p + "attn_output.weight", [c, c]), projBias: try tensor(p + "attn_output.bias", [c]),
                ln2Weight: try tensor(p + "ffn_norm.weight", [c]), ln2Bias: try tensor(p + "ffn_norm.bias", [c]),
                fc: try tensor(p + "ffn_up.weight", [c, ff]), fcBias: try tensor(p + "ffn_up.bias", [ff]),
                fcProj: try tensor(p + "ffn_down.weight", [ff, c]), fcProjBias: try tensor(p + "ffn_down.bias", [c]))
        }
        finalWeight = try tensor("output_norm.weight", [c])
        finalBias = try tensor("output_norm.bias", [c])
        outputHead = file.tensor(named: "output.weight") == nil ? tokenEmbedding : try tensor("output.weight", [c, cfg.vocabularySize])
    }

    public func makeCache(capacity: Int?) -> KVCache {
        KVCache(layers: config.layers, capacity: min(capacity ?? config.contextLength, config.contextLength), width: config.hiddenSize)
    }

    public func forward(_ tokens: [Int32], cache: inout KVCache, logitsFrom first: Int) throws -> [Float] {
        let x = try hiddenStates(tokens, cache: &cache)
        return head(x, rows: min(max(first, 0), tokens.count)..<tokens.count)
    }

    public func observeProductInputs(_ tokens: [Int32], cache: inout KVCache, _ observe: ProductInputObserver) throws {
        _ = try withoutActuallyEscaping(observe) { try hiddenStates(tokens, cache: &cache, observe: $0) }
    }

    /// Runs `tokens` through the blocks and appends them to the cache: the hidden states [N, C].
    private func hiddenStates(_ tokens: [Int32], cache: inout KVCache, observe: ProductInputObserver? = nil) throws -> [Float] {
        let n = tokens.count, start = cache.count, c = config.hiddenSize
        guard n > 0 else { throw ModelError.emptyPrompt }
        guard start + n <= cache.capacity else { throw ModelError.contextOverflow(tokens: start + n, context: cache.capacity) }
        let heads = config.heads
        let x = try run(tokens, positions: (0..<n).map { start + $0 }, observe: observe) { l, q, k, v, att in
            cache.store(layer: l, at: start, keys: k, values: v, count: n)
            cache.withLayer(l) { keys, values in
                Layers.attention(att, q: q, keys: keys, values: values, start: start, n: n, heads: heads, kvHeads: heads, headSize: c / heads)
            }
        }
        cache.count = start + n
        return x
    }

    /// One decoding step for several independent sequences (see `LanguageModel.forwardBatch`).
    public func forwardBatch(_ tokens: [Int32], caches: inout [KVCache]) throws -> [Float] {
        precondition(tokens.count == caches.count, "one token per sequence")
        try KVCache.requireRoom(caches, for: 1)
        let c = config.hiddenSize, heads = config.heads
        let rows = caches.map(\.count)
        let x = try run(tokens, positions: rows) { l, q, k, v, att in
            for b in caches.indices { caches[b].store(layer: l, at: rows[b], keys: k + b * c, values: v + b * c, count: 1) }
            KVCache.withLayer(l, of: caches) { keys, values in
                Layers.decodeAttention(att, q: q, keys: keys, values: values, positions: rows, heads: heads, kvHeads: heads,
                                       headSize: c / heads)
            }
        }
        for b in caches.indices { caches[b].count += 1 }
        return head(x, rows: 0..<tokens.count)
    }

    /// The blocks over token rows at the given positions; `attend(layer, q, k, v, out)` stores
    /// keys and values and writes attention output [N, C] for the rows. `observe` sees each
    /// product's input.
    private func run(_ tokens: [Int32], positions: [Int], observe: ProductInputObserver? = nil,
                     attend: (Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) throws -> [Float] {
        let n = tokens.count, c = config.hiddenSize, vocab = config.vocabularySize
        var x = [Float](repeating: 0, count: n * c)
        for (i, t) in tokens.enumerated() {
            guard t >= 0 && Int(t) < vocab else { throw ModelError.tokenOutOfRange(id: t, vocabularySize: vocab) }
            for k in 0..<c { x[i * c + k] = tokenEmbedding[Int(t) * c + k] + positionEmbedding[positions[i] * c + k] }
        }
        var h = [Float](repeating: 0, count: n * c), qkv = [Float](repeating: 0, count: n * 3 * c)
        var q = [Float](repeating: 0, count: n * c), k = q, v = q, att = q
        let ff = config.intermediateSize
        var fc = [Float](repeating: 0, count: n * ff)
        for (l, b) in blocks.enumerated() {
            Layers.layernorm(&h, x, b.ln1Weight, b.ln1Bias, n: n, c: c, eps: config.layerNormEpsilon)
            observe?("blk.\(l).attn_qkv.weight", h, n, c)
            Matmul.forward(&qkv, h, b.qkv, b.qkvBias, n: n, c: c, oc: 3 * c)
            for i in 0..<n {   // [N, 3C] → q, k, v [N, C]
                for j in 0..<c {
                    q[i * c + j] = qkv[i * 3 * c + j]; k[i * c + j] = qkv[i * 3 * c + c + j]; v[i * c + j] = qkv[i * 3 * c + 2 * c + j]
                }
            }
            q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
                att.withUnsafeMutableBufferPointer { attend(l, q.baseAddress!, k.baseAddress!, v.baseAddress!, $0.baseAddress!) }
            } } }
            observe?("blk.\(l).attn_output.weight", att, n, c)
            Matmul.forward(&h, att, b.proj, b.projBias, n: n, c: c, oc: c)
            for i in 0..<(n * c) { x[i] += h[i] }
            Layers.layernorm(&h, x, b.ln2Weight, b.ln2Bias, n: n, c: c, eps: config.layerNormEpsilon)
            observe?("blk.\(l).ffn_up.weight", h, n, c)
            Matmul.forward(&fc, h, b.fc, b.fcBias, n: n, c: c, oc: ff)
            fc.withUnsafeMutableBufferPointer { Layers.geluForward($0.baseAddress!, $0.baseAddress!, count: n * ff) }
            observe?("blk.\(l).ffn_down.weight", fc, n, ff)
            Matmul.forward(&h, fc, b.fcProj, b.fcProjBias, n: n, c: ff, oc: c)
            for i in 0..<(n * c) { x[i] += h[i] }
        }
        return x
    }

    /// Final LayerNorm and output head for the given rows of x: logits [rows, V].
    private func head(_ x: [Float], rows: Range<Int>) -> [Float] {
        let c = config.hiddenSize, vocab = config.vocabularySize
        var final = [Float](repeating: 0, count: rows.count * c)
        x.withUnsafeBufferPointer { xb in
            Layers.layernorm(&final, xb.baseAddress! + rows.lowerBound * c, finalWeight, finalBias, n: rows.count, c: c,
                             eps: config.layerNormEpsilon)
        }
        var logits = [Float](repeating: 0, count: rows.count * vocab)
        Matmul.forward(&logits, final, outputHead, nil, n: rows.count, c: c, oc: vocab)
        return logits
    }
}

extension GPT2Model {
    /// The projections an adapter may target, by PEFT module name (after `transformer.h.N.`).
    static let adaptableModules = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]

    /// This model with a PEFT LoRA adapter directory (as `quill train` or PEFT saves it) merged
    /// into its weights: W += s · B·A. GPT-2's weights are fp32 here, so a merged adapter costs
    /// nothing per token. PEFT's GPT-2 adapters are fan-in-fan-out (Conv1D keeps [in, out]), but
    /// A [r, in] and B [out, r] are stored as for any linear layer, and B·A is the [out, in]
    /// weight this model keeps. Any other tensor in the adapter is an error that names it.
    public func applying(adapter directory: URL) throws -> GPT2Model {
        var adapter = try PEFTAdapter(directory: directory)
        let c = config.hiddenSize, ff = config.intermediateSize

        func merged(_ weight: [Float], layer: Int, module: String, inputs: Int, outputs: Int) throws -> [Float] {
            guard let pair = try adapter.pair("transformer.h.\(layer).\(module)", inputs: inputs, outputs: outputs) else { return weight }
            var w = weight
            w.withUnsafeMutableBufferPointer {
                adapter.configuration.merge(into: $0.baseAddress!, a: pair.a, b: pair.b, inputs: inputs, outputs: outputs)
            }
            return w
        }

        let blocks = try self.blocks.enumerated().map { l, b in
            Block(ln1Weight: b.ln1Weight, ln1Bias: b.ln1Bias,
                  qkv: try merged(b.qkv, layer: l, module: "attn.c_attn", inputs: c, outputs: 3 * c), qkvBias: b.qkvBias,
                  proj: try merged(b.proj, layer: l, module: "attn.c_proj", inputs: c, outputs: c), projBias: b.projBias,
                  ln2Weight: b.ln2Weight, ln2Bias: b.ln2Bias,
                  fc: try merged(b.fc, layer: l, module: "mlp.c_fc", inputs: c, outputs: ff), fcBias: b.fcBias,
                  fcProj: try merged(b.fcProj, layer: l, module: "mlp.c_proj", inputs: ff, outputs: c), fcProjBias: b.fcProjBias)
        }
        try adapter.checkEverythingUsed(modules: Self.adaptableModules.map { "transformer.h.N.\($0)" })
        return GPT2Model(config: config, tokenEmbedding: tokenEmbedding, positionEmbedding: positionEmbedding, blocks: blocks,
                         finalWeight: finalWeight, finalBias: finalBias, outputHead: outputHead)
    }
}
