import Foundation
import QuillModels
import QuillCore

/// A GPT-2 or Llama-family model held for training: fp32 weights under their Hugging Face names
/// (Linear layout [out, in]), a forward that keeps its activations and a backward that writes
/// every parameter's gradient, in the manner of llm.c. Both families are wired from the same
/// layers; only `forward`'s block and its backward differ.
///
/// ```swift
/// let model = try TrainableModel(loading: "SmolLM2-135M-Instruct.Q4_1.gguf")
/// let loss = try model.step(tokens: x, targets: y, batch: 4, length: 256, normalizer: 1024)
/// // model.gradients now holds dloss/dθ (added to what was there)
/// ```
public final class TrainableModel: @unchecked Sendable {
    // @unchecked: one training step runs at a time; its kernels share buffers through the pool.
    public enum Family: String, Sendable { case gpt2, llama }

    /// The hyperparameters both families need.
    public struct Shape: Sendable, Equatable {
        public var family: Family
        public var architecture: String
        public var vocabularySize, contextLength, channels, layers, heads, kvHeads, headSize, intermediateSize: Int
        public var normEpsilon: Float
        public var tiedEmbeddings: Bool
        /// Qwen2's q/k/v projections carry biases.
        public var attentionBias: Bool
        /// RoPE (Llama family): the scaled inverse frequencies and YaRN's cos/sin factor.
        public var inverseFrequencies: [Float]
        public var ropeAttentionFactor: Float
        public var slidingWindow: Int?
        /// RoPE's base (for exported config.json).
        public var ropeTheta: Float = 10_000
        public var qDim: Int { heads * headSize }

        public var kvDim: Int { kvHeads * headSize }
    }

    /// A linear layer: where its weight [out, in] and bias live, and its adapter if it has one.
    struct Linear {
        let module: String          // e.g. "model.layers.0.self_attn.q_proj"
        let inputs, outputs: Int
        var adapter: Int?           // index into `lora.adapters`
        var adapterInBlock = 0      // its place among its block's adapters
        var weight: String { module + ".weight" }
        var bias: String { module + ".bias" }
    }

    struct Block {
        let norm1, norm2: String    // the weight names; GPT-2's biases are the same with ".bias"
        var attention: [Linear]     // llama: q, k, v; gpt2: c_attn (fused q/k/v)
        var output: Linear
        var mlp: [Linear]           // llama: gate, up; gpt2: c_fc
        var down: Linear

        /// Every linear layer in the order they run.
        mutating func forEachLinear(_ body: (inout Linear) -> Void) {
            for i in attention.indices { body(&attention[i]) }
            body(&output)
            for i in mlp.indices { body(&mlp[i]) }
            body(&down)
        }
    }

    public let shape: Shape
    public let parameters: ParameterStore
    /// Frozen linear weights kept quantized (QLoRA), by name; they are not in `parameters`.
    var frozen: [String: FrozenWeight] = [:]
    /// fp32 room for the largest frozen weight, refilled before each product that reads one.
    private var frozenScratch: UnsafeMutableBufferPointer<Float>?
    /// The Llama-family hyperparameters as loaded (RoPE scaling included), for building an
    /// inference model from the trained weights.
    var llamaConfig: LlamaConfig?
    /// What the forward keeps for the backward; the rest is recomputed there.
    public enum ActivationMemory: String, Sendable, CaseIterable, Codable {
        /// q, k, v and the MLP's inputs per layer: the fastest (about 14 floats per channel and
        /// token and layer for SmolLM2).
        case keep
        /// Only each block's input, the residual after attention and the norms' statistics; the
        /// backward recomputes the q/k/v and MLP input projections (about a sixth more compute).
        case lean
        /// Only each block's input: the backward runs each block again (about a third more).
        case checkpointed
    }

    public var activationMemory: ActivationMemory = .keep {
        didSet { if activationMemory != oldValue { cachedActivations = nil } }
    }
    /// dloss/dθ of the base weights, or nil when they are frozen (LoRA).
    public internal(set) var gradients: ParameterStore?
    public internal(set) var lora: LoRA?
    var blocks: [Block]
    let embeddingName, positionName, finalNorm, headName: String
    let pool: ThreadPool

    init(shape: Shape, parameters: ParameterStore, frozen: [String: FrozenWeight] = [:], pool: ThreadPool = .shared) {
        self.frozen = frozen
        self.shape = shape
        self.parameters = parameters
        self.pool = pool
        let c = shape.channels, ff = shape.intermediateSize
        switch shape.family {
        case .llama:
            embeddingName = "model.embed_tokens.weight"; positionName = ""; finalNorm = "model.norm.weight"
            headName = shape.tiedEmbeddings ? embeddingName : "lm_head.weight"
            blocks = (0..<shape.layers).map { l in
                let p = "model.layers.\(l)."
                return Block(norm1: p + "input_layernorm.weight", norm2: p + "post_attention_layernorm.weight",
                             attention: [Linear(module: p + "self_attn.q_proj", inputs: c, outputs: shape.qDim),
                                         Linear(module: p + "self_attn.k_proj", inputs: c, outputs: shape.kvDim),
                                         Linear(module: p + "self_attn.v_proj", inputs: c, outputs: shape.kvDim)],
                             output: Linear(module: p + "self_attn.o_proj", inputs: shape.qDim, outputs: c),
                             mlp: [Linear(module: p + "mlp.gate_proj", inputs: c, outputs: ff),
                                   Linear(module: p + "mlp.up_proj", inputs: c, outputs: ff)],
                             down: Linear(module: p + "mlp.down_proj", inputs: ff, outputs: c))
            }
        case .gpt2:
            embeddingName = "transformer.wte.weight"; positionName = "transformer.wpe.weight"
            finalNorm = "transformer.ln_f.weight"; headName = embeddingName
            blocks = (0..<shape.layers).map { l in
                let p = "transformer.h.\(l)."
                return Block(norm1: p + "ln_1.weight", norm2: p + "ln_2.weight",
                             attention: [Linear(module: p + "attn.c_attn", inputs: c, outputs: 3 * c)],
                             output: Linear(module: p + "attn.c_proj", inputs: c, outputs: c),
                             mlp: [Linear(module: p + "mlp.c_fc", inputs: c, outputs: ff)],
                             down: Linear(module: p + "mlp.c_proj", inputs: ff, outputs: c))
            }
        }
        // a quantized base only ever trains adapters
        gradients = frozen.isEmpty ? ParameterStore(sameLayoutAs: parameters) : nil
    }

    deinit { frozenScratch?.deallocate() }

    /// Bytes of the frozen quantized weights, and of the fp32 room they are dequantized into.
    public var frozenBytes: Int {
        frozen.values.reduce(0) { $0 + $1.data.count } + 4 * (frozen.values.map { $0.rows * $0.cols }.max() ?? 0)
    }

    /// Whether the linear weights stay quantized (QLoRA).
    public var hasQuantizedBase: Bool { !frozen.isEmpty }

    /// A linear layer's weight in fp32: in the store, or a frozen one dequantized into scratch
    /// (valid until the next call).
    func weightPointer(_ name: String) -> UnsafePointer<Float> {
        guard let weight = frozen[name] else { return UnsafePointer(parameters.pointer(name)) }
        if frozenScratch == nil {
            let largest = frozen.values.map { $0.rows * $0.cols }.max() ?? 0
            frozenScratch = .allocate(capacity: largest)
        }
        weight.dequantize(into: frozenScratch!.baseAddress!, pool: pool)
        return UnsafePointer(frozenScratch!.baseAddress!)
    }

    /// A weight's values, dequantized if frozen.
    func weightValues(_ name: String) -> [Float] { frozen[name]?.values(pool: pool) ?? parameters.tensor(name) }

    /// Every parameter's name and shape in a family's checkpoint layout, biases and norms
    /// excluded from weight decay as is customary (embeddings too).
    static func layout(_ s: Shape) -> [(name: String, shape: [Int], decays: Bool)] {
        let c = s.channels, ff = s.intermediateSize
        var items: [(String, [Int], Bool)] = []
        switch s.family {
        case .llama:
            items.append(("model.embed_tokens.weight", [s.vocabularySize, c], false))
            for l in 0..<s.layers {
                let p = "model.layers.\(l)."
                items.append((p + "input_layernorm.weight", [c], false))
                for (name, out) in [("q_proj", s.qDim), ("k_proj", s.kvDim), ("v_proj", s.kvDim)] {
                    items.append((p + "self_attn.\(name).weight", [out, c], true))
                    if s.attentionBias { items.append((p + "self_attn.\(name).bias", [out], false)) }
                }
                items += [(p + "self_attn.o_proj.weight", [c, s.qDim], true), (p + "post_attention_layernorm.weight", [c], false),
                          (p + "mlp.gate_proj.weight", [ff, c], true), (p + "mlp.up_proj.weight", [ff, c], true),
                          (p + "mlp.down_proj.weight", [c, ff], true)]
            }
            items.append(("model.norm.weight", [c], false))
            if !s.tiedEmbeddings { items.append(("lm_head.weight", [s.vocabularySize, c], true)) }
        case .gpt2:
            items += [("transformer.wte.weight", [s.vocabularySize, c], false), ("transformer.wpe.weight", [s.contextLength, c], false)]
            for l in 0..<s.layers {
                let p = "transformer.h.\(l)."
                items += [(p + "ln_1.weight", [c], false), (p + "ln_1.bias", [c], false),
                          (p + "attn.c_attn.weight", [3 * c, c], true), (p + "attn.c_attn.bias", [3 * c], false),
                          (p + "attn.c_proj.weight", [c, c], true), (p + "attn.c_proj.bias", [c], false),
                          (p + "ln_2.weight", [c], false), (p + "ln_2.bias", [c], false),
                          (p + "mlp.c_fc.weight", [ff, c], true), (p + "mlp.c_fc.bias", [ff], false),
                          (p + "mlp.c_proj.weight", [c, ff], true), (p + "mlp.c_proj.bias", [c], false)]
            }
            items += [("transformer.ln_f.weight", [c], false), ("transformer.ln_f.bias", [c], false)]
        }
        return items.map { (name: $0.0, shape: $0.1, decays: $0.2) }
    }

    /// The weights being trained and their gradients: the adapters under LoRA, else the base.
    public var trainable: (parameters: ParameterStore, gradients: ParameterStore) {
        if let lora { return (lora.parameters, lora.gradients) }
        return (parameters, gradients!)
    }

    // MARK: LoRA

    /// The attention projections LoRA adapts unless told otherwise, as PEFT does per model type.
    public static func defaultLoRATargets(_ family: Family) -> [String] { family == .gpt2 ? ["c_attn"] : ["q_proj", "v_proj"] }

    /// Freezes the base and adds adapters to the linear layers whose last name component is
    /// in `configuration.targets` (`q_proj`, `c_attn`, ...; none given: the family's defaults).
    /// Throws if no layer matches.
    public func attach(_ configuration: LoRAConfiguration, seed: UInt64 = 0) throws {
        var configuration = configuration
        if configuration.targets.isEmpty { configuration.targets = Self.defaultLoRATargets(shape.family) }
        var linears: [(module: String, inputs: Int, outputs: Int)] = []
        var available = Set<String>()
        for b in blocks.indices {
            var inBlock = 0
            blocks[b].forEachLinear { linear in
                let leaf = linear.module.split(separator: ".").last.map(String.init) ?? ""
                available.insert(leaf)
                if configuration.targets.contains(leaf) {
                    linear.adapter = linears.count
                    linear.adapterInBlock = inBlock
                    inBlock += 1
                    linears.append((linear.module, linear.inputs, linear.outputs))
                }
            }
        }
        guard !linears.isEmpty else { throw LoRAError.noTargets(configuration.targets, available: available.sorted()) }
        lora = LoRA(configuration: configuration, linears: linears, seed: seed)
        gradients = nil
    }

    // MARK: activations

    /// Buffers of one forward pass at a given batch shape, kept for the backward as
    /// `ActivationMemory` says. Never kept: norm outputs (recomputed from their input and
    /// rstd), attention probabilities and output (recomputed from q, k, v: one more product per
    /// head), the MLP's activation (from its inputs). Per-layer buffers live in slots: one per
    /// layer, or a single one that each layer overwrites when the backward recomputes them.
    final class Activations {
        let n: Int, batch: Int, length: Int
        let memory: ActivationMemory
        private var allocations: [UnsafeMutablePointer<Float>] = []
        var residual: [UnsafeMutablePointer<Float>] = []   // L+1 of [N, C]: block inputs, then the last output
        // per layer slot (one each, or one shared when checkpointed)
        var mid: [UnsafeMutablePointer<Float>] = []        // [N, C] after attention's residual add
        var mean1: [UnsafeMutablePointer<Float>] = [], rstd1: [UnsafeMutablePointer<Float>] = []
        var mean2: [UnsafeMutablePointer<Float>] = [], rstd2: [UnsafeMutablePointer<Float>] = []
        var adapterHidden: [[UnsafeMutablePointer<Float>]] = []  // per slot, per adapter of the slot's layer: [N, r] = x·Aᵀ
        // per projection slot (one per layer under .keep, else one shared)
        var q: [UnsafeMutablePointer<Float>] = [], k: [UnsafeMutablePointer<Float>] = [], v: [UnsafeMutablePointer<Float>] = []
        var hidden1: [UnsafeMutablePointer<Float>] = []    // [N, FF] llama: gate; gpt2: c_fc output
        var hidden2: [UnsafeMutablePointer<Float>] = []    // [N, FF] llama: up
        // per adapter, under dropout: the mask (0 or 1 / (1 - p)) and x ⊙ mask
        var adapterMasks: [UnsafeMutablePointer<Float>?] = [], adapterInputs: [UnsafeMutablePointer<Float>?] = []
        let finalNorm: UnsafeMutablePointer<Float>, finalMean: UnsafeMutablePointer<Float>, finalRstd: UnsafeMutablePointer<Float>
        // scratch shared by all layers
        let norm: UnsafeMutablePointer<Float>              // [N, C] a norm's output
        let attention: UnsafeMutablePointer<Float>         // [N, qDim] before the output projection
        let activated: UnsafeMutablePointer<Float>         // [N, FF] silu(gate)·up or gelu(fc)
        let dResidual: UnsafeMutablePointer<Float>, dNorm: UnsafeMutablePointer<Float>, dAttention: UnsafeMutablePointer<Float>
        let dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>
        let dHidden1: UnsafeMutablePointer<Float>, dHidden2: UnsafeMutablePointer<Float>, dActivated: UnsafeMutablePointer<Float>
        let scratch: UnsafeMutablePointer<Float>   // [N, max(FF, 3C, qDim)]: a linear's output before the residual add, dQKV
        let adapterScratch: UnsafeMutablePointer<Float>  // [N, r]
        let dropoutScratch: UnsafeMutablePointer<Float>  // [N, max in] under dropout
        let logits: UnsafeMutablePointer<Float>    // [logitRows, V]
        let logitRows: Int
        let positions: [Int32]

        /// `adapters[l]`: (inputs, rank) of layer l's adapters in the order the layer runs them.
        init(_ s: Shape, batch: Int, length: Int, adapters: [[(inputs: Int, rank: Int)]], dropout: Bool, memory: ActivationMemory) {
            self.batch = batch; self.length = length; self.memory = memory
            let checkpointing = memory == .checkpointed
            let n = batch * length, c = s.channels, ff = s.intermediateSize, layers = s.layers
            self.n = n
            logitRows = min(n, 128)
            var allocations: [UnsafeMutablePointer<Float>] = []
            func take(_ count: Int) -> UnsafeMutablePointer<Float> {
                let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
                p.initialize(repeating: 0, count: max(1, count))
                allocations.append(p)
                return p
            }
            let slots = checkpointing ? 1 : layers, projectionSlots = memory == .keep ? layers : 1
            func each(_ count: Int) -> [UnsafeMutablePointer<Float>] { (0..<slots).map { _ in take(count) } }
            func eachProjection(_ count: Int) -> [UnsafeMutablePointer<Float>] { (0..<projectionSlots).map { _ in take(count) } }
            residual = (0...layers).map { _ in take(n * c) }
            mid = each(n * c)
            mean1 = each(n); rstd1 = each(n); mean2 = each(n); rstd2 = each(n)
            q = eachProjection(n * s.qDim); k = eachProjection(n * s.kvDim); v = eachProjection(n * s.kvDim)
            hidden1 = eachProjection(n * ff); hidden2 = s.family == .gpt2 ? [] : eachProjection(n * ff)
            adapterHidden = (0..<slots).map { slot in
                (checkpointing ? adapters.max(by: { $0.count < $1.count }) ?? [] : adapters[slot]).map { take(n * $0.rank) }
            }
            let flat = adapters.flatMap { $0 }
            adapterMasks = flat.map { dropout ? take(n * $0.inputs) : nil }
            adapterInputs = flat.map { dropout ? take(n * $0.inputs) : nil }
            dropoutScratch = take(dropout ? n * (flat.map(\.inputs).max() ?? 0) : 0)
            adapterScratch = take(n * (flat.map(\.rank).max() ?? 0))
            finalNorm = take(n * c); finalMean = take(n); finalRstd = take(n)
            norm = take(n * c); activated = take(n * ff); attention = take(n * s.qDim)
            dResidual = take(n * c); dNorm = take(n * c); dAttention = take(n * s.qDim)
            dq = take(n * s.qDim); dk = take(n * s.kvDim); dv = take(n * s.kvDim)
            dHidden1 = take(n * ff); dHidden2 = take(n * ff); dActivated = take(n * ff)
            scratch = take(n * max(ff, 3 * c, s.qDim))
            logits = take(logitRows * s.vocabularySize)
            positions = (0..<n).map { Int32($0 % length) }
            self.allocations = allocations
        }

        deinit { for p in allocations { p.deallocate() } }
    }

    private var cachedActivations: Activations?
    /// Whether LoRA dropout applies in the current pass (training steps, not evaluation).
    var applyingDropout = true

    func activations(batch: Int, length: Int) -> Activations {
        if let a = cachedActivations, a.batch == batch, a.length == length { return a }
        cachedActivations = nil   // free the old buffers before taking new ones
        let perLayer = blocks.map { block -> [(inputs: Int, rank: Int)] in
            var block = block, found: [(inputs: Int, rank: Int)] = []
            block.forEachLinear { linear in if let i = linear.adapter, let lora { found.append((linear.inputs, lora.adapters[i].rank)) } }
            return found
        }
        let a = Activations(shape, batch: batch, length: length, adapters: perLayer,
                            dropout: (lora?.configuration.dropout ?? 0) > 0, memory: activationMemory)
        cachedActivations = a
        return a
    }

    /// Drops the activation buffers (they are rebuilt by the next step).
    public func releaseActivations() { cachedActivations = nil }
}

extension TrainableModel.Shape {
    /// GPT-2's: LayerNorm, learned positions, biases everywhere, the head tied.
    init(gpt2 c: GPT2Model.Config) {
        self.init(family: .gpt2, architecture: "gpt2", vocabularySize: c.vocabularySize, contextLength: c.contextLength,
                  channels: c.hiddenSize, layers: c.layers, heads: c.heads, kvHeads: c.heads, headSize: c.hiddenSize / c.heads,
                  intermediateSize: c.intermediateSize, normEpsilon: c.layerNormEpsilon, tiedEmbeddings: true,
                  attentionBias: true, inverseFrequencies: [], ropeAttentionFactor: 1, slidingWindow: nil)
    }
}
