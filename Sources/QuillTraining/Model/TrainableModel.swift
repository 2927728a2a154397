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

    public let shape: Shape
    public let parameters: ParameterStore
    /// Linear weights kept quantized and frozen (QLoRA); they are not in `parameters`.
    let quantizedBase: QuantizedBase
    /// The Llama-family hyperparameters as loaded (RoPE scaling included), for building an
    /// inference model from the trained weights.
    var llamaConfig: LlamaConfig?
    /// What the forward keeps for the backward.
    public var activationMemory: ActivationMemory = .keep {
        didSet { if activationMemory != oldValue { cachedActivations = nil } }
    }
    /// dloss/dθ of the base weights, or nil when they are frozen (LoRA).
    public internal(set) var gradients: ParameterStore?
    public internal(set) var lora: LoRA?
    var wiring: Wiring
    let pool: ThreadPool

    init(shape: Shape, parameters: ParameterStore, frozen: [String: FrozenWeight] = [:], pool: ThreadPool = .shared) {
        self.shape = shape
        self.parameters = parameters
        self.quantizedBase = QuantizedBase(frozen)
        self.pool = pool
        wiring = Wiring(shape)
        // a quantized base only ever trains adapters
        gradients = frozen.isEmpty ? ParameterStore(sameLayoutAs: parameters) : nil
    }

    /// Bytes of the frozen quantized weights, and of the fp32 room they are dequantized into.
    public var frozenBytes: Int { quantizedBase.bytes }

    /// Whether the linear weights stay quantized (QLoRA).
    public var hasQuantizedBase: Bool { !quantizedBase.isEmpty }

    /// A linear layer's weight in fp32: in the store, or a frozen one dequantized (valid until the next call).
    func weightPointer(_ name: String) -> UnsafePointer<Float> {
        quantizedBase.dequantized(name, pool: pool) ?? UnsafePointer(parameters.pointer(name))
    }

    /// A weight's values, dequantized if frozen.
    func weightValues(_ name: String) -> [Float] { quantizedBase.values(name, pool: pool) ?? parameters.tensor(name) }

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
        for b in wiring.blocks.indices {
            var inBlock = 0
            wiring.blocks[b].forEachLinear { linear in
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

    private var cachedActivations: ActivationBuffers?
    /// Whether LoRA dropout applies in the current pass (training steps, not evaluation).
    var applyingDropout = true

    func activations(batch: Int, length: Int) -> ActivationBuffers {
        if let a = cachedActivations, a.batch == batch, a.length == length { return a }
        cachedActivations = nil   // free the old buffers before taking new ones
        let perLayer = wiring.blocks.map { block -> [(inputs: Int, rank: Int)] in
            var block = block, found: [(inputs: Int, rank: Int)] = []
            block.forEachLinear { linear in if let i = linear.adapter, let lora { found.append((linear.inputs, lora.adapters[i].rank)) } }
            return found
        }
        let a = ActivationBuffers(shape, batch: batch, length: length, adapters: perLayer,
                                  dropout: (lora?.configuration.dropout ?? 0) > 0, memory: activationMemory)
        cachedActivations = a
        return a
    }

    /// Drops the activation buffers (they are rebuilt by the next step).
    public func releaseActivations() { cachedActivations = nil }
}
