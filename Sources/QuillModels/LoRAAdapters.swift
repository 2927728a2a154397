// LoRA adapters at inference: PEFT's adapter directory (adapter_config.json and
// adapter_model.safetensors) read once, its A/B pairs handed to the layers that take them.
// Training builds, trains and saves adapters in QuillTraining; this is what generation and
// serving need of them.

import Foundation
import QuillCore
import QuillFormats
import QuillTokenizers

/// What a LoRA adapter is, as PEFT's `adapter_config.json` states it: y = W·x + s · B·A·dropout(x)
/// with A [r, in], B [out, r] and s = α / r (α / √r under rsLoRA).
public struct LoRAConfiguration: Sendable, Equatable, Codable {
    public var rank: Int
    public var alpha: Float
    public var dropout: Float
    /// Last components of the module names that get adapters (`q_proj`, `c_attn`, ...);
    /// empty: the family's usual ones.
    public var targets: [String]
    /// Scale by α / √r instead of α / r (Kalajdzievski 2023).
    public var rsLoRA: Bool

    public init(rank: Int = 8, alpha: Float = 16, dropout: Float = 0, targets: [String] = [], rsLoRA: Bool = false) {
        self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targets = targets; self.rsLoRA = rsLoRA
    }

    public var scale: Float { rsLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// Folds one adapter into its weight: W[outputs, inputs] += s · B[outputs, r] · A[r, inputs].
    public func merge(into weight: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                      inputs: Int, outputs: Int) {
        Matmul.gemm(weight, ldc: inputs, b, lda: rank, a, ldb: inputs, m: outputs, n: inputs, k: rank,
                    alpha: scale, beta: 1, transposeB: false)
    }

    /// The configuration of a saved adapter (`adapter_config.json`, PEFT's keys).
    public static func read(adapterDirectory directory: URL) throws -> LoRAConfiguration {
        let configURL = directory.appendingPathComponent("adapter_config.json")
        guard let data = FileContents.data(atPath: configURL.path),
              let json = try JSONText.object(data) as? [String: Any] else {
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
        let configuration = LoRAConfiguration(rank: rank, alpha: Float(number("lora_alpha") ?? Double(rank)),
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

/// Why a LoRA configuration or adapter cannot be used.
public enum LoRAError: Error, CustomStringConvertible, Equatable {
    case noTargets([String], available: [String])
    case invalid(String)

    public var description: String {
        switch self {
        case let .noTargets(targets, available):
            return "no linear layer is named \(targets.joined(separator: ", ")); this model has \(available.joined(separator: ", "))"
        case .invalid(let message): return message
        }
    }
}

/// A PEFT LoRA adapter directory opened for inference: its configuration and its tensors, taken
/// one module at a time; a tensor no module took is an error that names it.
struct PEFTAdapter {
    let configuration: LoRAConfiguration
    let path: String
    private let tensors: SafetensorsFile
    private var used = Set<String>()

    init(directory: URL) throws {
        configuration = try LoRAConfiguration.read(adapterDirectory: directory)
        path = directory.appendingPathComponent("adapter_model.safetensors").path
        tensors = try SafetensorsFile(path: path)
    }

    /// A [r, inputs] and B [outputs, r] of `module` (PEFT's name after `base_model.model.`), or
    /// nil when the adapter leaves that module alone.
    mutating func pair(_ module: String, inputs: Int, outputs: Int) throws -> (a: [Float], b: [Float])? {
        let r = configuration.rank
        let aName = "base_model.model.\(module).lora_A.weight", bName = "base_model.model.\(module).lora_B.weight"
        guard let aInfo = tensors.tensors[aName], let bInfo = tensors.tensors[bName] else { return nil }
        guard aInfo.shape == [r, inputs] else { throw ModelError.shapeMismatch(path: path, name: aName, expected: [r, inputs], found: aInfo.shape) }
        guard bInfo.shape == [outputs, r] else { throw ModelError.shapeMismatch(path: path, name: bName, expected: [outputs, r], found: bInfo.shape) }
        used.formUnion([aName, bName])
        return (try tensors.floats(aName), try tensors.floats(bName))
    }

    /// Refuses an adapter that holds tensors no module took (an `lm_head` or embedding adapter,
    /// `modules_to_save`), or none at all; `modules` names those this model can take.
    func checkEverythingUsed(modules: [String]) throws {
        let unused = tensors.tensors.keys.filter { !used.contains($0) }.sorted()
        guard unused.isEmpty else {
            throw ModelError.unsupportedValue(path: path, key: unused[0], found: "\(unused.count) tensor(s) this model has no place for",
                                              supported: modules)
        }
        guard !used.isEmpty else { throw ModelError.unreadable(path: path, reason: "no LoRA tensors for \(modules.joined(separator: ", "))") }
    }
}
