import Foundation
import QuillTokenizers
import QuillCore

/// Low-rank adapters on a frozen base (Hu et al. 2021, as HF PEFT implements them): a target
/// linear layer computes W·x + s · B·A·dropout(x) with A [r, in], B [out, r] and s = α / r
/// (α / √r under rsLoRA). A starts Kaiming-uniform, B at zero, so training starts from the base.
/// Tensor names follow PEFT's saved files: `base_model.model.<module>.lora_A.weight`.
public final class LoRA: @unchecked Sendable {
    // @unchecked: like the model that owns it, used by one training step at a time.
    public struct Configuration: Sendable, Equatable, Codable {
        public var rank: Int
        public var alpha: Float
        public var dropout: Float
        /// Last components of the module names that get adapters (`q_proj`, `c_attn`, ...);
        /// empty: the family's usual ones (`TrainableModel.defaultLoRATargets`).
        public var targets: [String]
        /// Scale by α / √r instead of α / r (Kalajdzievski 2023).
        public var rsLoRA: Bool

        public init(rank: Int = 8, alpha: Float = 16, dropout: Float = 0, targets: [String] = [], rsLoRA: Bool = false) {
            self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targets = targets; self.rsLoRA = rsLoRA
        }

        public var scale: Float { rsLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

        /// The configuration of a saved adapter (`adapter_config.json`, PEFT's keys).
        public static func read(adapterDirectory directory: URL) throws -> Configuration {
            let configURL = directory.appendingPathComponent("adapter_config.json")
            guard let data = FileContents.data(atPath: configURL.path),
                  let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ModelError.unreadable(path: configURL.path, reason: "missing or not a JSON object")
            }
            guard (json["peft_type"] as? String) == "LORA" else {
                throw ModelError.unsupportedValue(path: configURL.path, key: "peft_type", found: "\(json["peft_type"] ?? "none")", supported: ["LORA"])
            }
            let targets: [String]
            if let list = json["target_modules"] as? [String] { targets = list } else if let one = json["target_modules"] as? String { targets = [one] } else {
                throw ModelError.missingKey(path: configURL.path, key: "target_modules")
            }
            guard let rank = json["r"] as? Int else { throw ModelError.missingKey(path: configURL.path, key: "r") }
            func number(_ key: String) -> Double? { (json[key] as? Double) ?? (json[key] as? Int).map(Double.init) }
            for key in ["rank_pattern", "alpha_pattern"] {
                if let pattern = json[key] as? [String: Any], !pattern.isEmpty {
                    throw ModelError.unsupportedValue(path: configURL.path, key: key, found: "per-module values", supported: ["{}"])
                }
            }
            let configuration = Configuration(rank: rank, alpha: Float(number("lora_alpha") ?? Double(rank)),
                                              dropout: Float(number("lora_dropout") ?? 0), targets: targets,
                                              rsLoRA: (json["use_rslora"] as? Bool) ?? false)
            try configuration.validate()
            return configuration
        }

        public func validate() throws {
            guard rank > 0 else { throw LoRAError.invalid("LoRA rank must be positive, got \(rank)") }
            guard alpha > 0 else { throw LoRAError.invalid("LoRA alpha must be positive, got \(alpha)") }
            guard dropout >= 0 && dropout < 1 else { throw LoRAError.invalid("LoRA dropout must be in [0, 1), got \(dropout)") }
        }
    }

    public struct Adapter: Sendable {
        public let module: String
        public let inputs, outputs, rank: Int
        public var aName: String { "base_model.model.\(module).lora_A.weight" }
        public var bName: String { "base_model.model.\(module).lora_B.weight" }
    }

    public let configuration: Configuration
    public let adapters: [Adapter]
    public let parameters: ParameterStore
    public let gradients: ParameterStore
    /// Dropout's random stream (saved with checkpoints so a resumed run draws the same masks).
    public var random: SplitMix64

    init(configuration: Configuration, linears: [(module: String, inputs: Int, outputs: Int)], seed: UInt64) {
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
