import Foundation
import QuillModels
import QuillTokenizers
import QuillCore

/// Low-rank adapters on a frozen base (Hu et al. 2021, as HF PEFT implements them): a target
/// linear layer computes W·x + s · B·A·dropout(x) with A [r, in], B [out, r] and s = α / r
/// (α / √r under rsLoRA). A starts Kaiming-uniform, B at zero, so training starts from the base.
/// Tensor names follow PEFT's saved files: `base_model.model.<module>.lora_A.weight`.
public final class LoRA: @unchecked Sendable {
    // @unchecked: like the model that owns it, used by one training step at a time.
    public struct Adapter: Sendable {
        public let module: String
        public let inputs, outputs, rank: Int
        public var aName: String { "base_model.model.\(module).lora_A.weight" }
        public var bName: String { "base_model.model.\(module).lora_B.weight" }
    }

    public let configuration: LoRAConfiguration
    public let adapters: [Adapter]
    public let parameters: ParameterStore
    public let gradients: ParameterStore
    /// Dropout's random stream (saved with checkpoints so a resumed run draws the same masks).
    public var random: SplitMix64

    init(configuration: LoRAConfiguration, linears: [(module: String, inputs: Int, outputs: Int)], seed: UInt64) {
        self.configuration = configuration
        adapters = linears.map { Adapter(module: $0.module, inputs: $0.inputs, outputs: $0.outputs, rank: configuration.rank) }
        parameters = ParameterStore(layout: adapters.flatMap { a in
            [(a.aName, [a.rank, a.inputs], true), (a.bName, [a.outputs, a.rank], true)]
        })
        gradients = ParameterStore(sameLayoutAs: parameters)
        var generator = SplitMix64(seed: seed)
        // kaiming_uniform_(a=√5) on [r, in]: bound = √(6 / ((1 + 5) · in)) = 1 / √in
        for a in adapters {
            let bound = 1 / Float(a.inputs).squareRoot(), p = parameters.pointer(a.aName)
            for i in 0..<(a.rank * a.inputs) { p[i] = (generator.nextUnitFloat() * 2 - 1) * bound }
        }
        random = SplitMix64(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
    }
}
