import Foundation
import QuillCore
import QuillFormats

/// Hyperparameters of a Llama-family model (Llama 2/3, Mistral, Qwen2, SmolLM, Gemma 3), read
/// from GGUF metadata (`{arch}.embedding_length`, ...) with the fallbacks llama.cpp uses, or from
/// a Hugging Face `config.json`.
public struct LlamaConfig: Sendable, Equatable {
    public var architecture: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headSize: Int
    public var intermediateSize: Int
    public var rmsNormEpsilon: Float
    public var ropeTheta: Float
    public var contextLength: Int
    public var ropePairing: Layers.RopePairing
    public var slidingWindow: Int?
    public var tiedEmbeddings = true
    public var ropeScaling: RopeScaling = .none
    /// Per-frequency divisors of θ_i: how llama.cpp's converter stores Llama 3 rope scaling in
    /// GGUF (the `rope_freqs.weight` tensor) instead of metadata.
    public var ropeFrequencyFactors: [Float]?

    // Gemma 3's departures from Llama; the defaults are Llama's.
    /// The gated feed-forward's activation: SiLU (SwiGLU) or GELU's tanh form (GeGLU).
    public var feedForwardActivation: Activation = .silu
    /// Token embeddings are multiplied by this (Gemma: √C).
    public var embeddingScale: Float = 1
    /// The attention score scale, when it is not 1/√HS (Gemma's `query_pre_attn_scalar`^-½).
    public var attentionScale: Float?
    /// Logits become cap · tanh(logits / cap) (Gemma 2's `final_logit_softcapping`).
    public var finalLogitSoftcap: Float?
    /// Which layers attend within `slidingWindow`; nil: every layer (Mistral). Gemma 3
    /// interleaves five sliding-window layers with one global layer.
    public var slidingWindowLayers: [Bool]?
    /// The RoPE base of the sliding-window layers, without scaling (Gemma 3: 10,000); nil: the
    /// same frequencies as every other layer.
    public var localRopeTheta: Float?

    public enum Activation: Sendable, Equatable { case silu, geluTanh }

    /// The window layer `layer` attends within, nil for all earlier positions.
    public func window(layer: Int) -> Int? {
        guard let slidingWindow, let layers = slidingWindowLayers else { return slidingWindow }
        return layers[layer] ? slidingWindow : nil
    }

    /// Whether layer `layer` rotates with `localRopeTheta` instead of the model's frequencies.
    public func usesLocalRope(layer: Int) -> Bool { localRopeTheta != nil && window(layer: layer) != nil }

    /// θ_i = localRopeTheta^(-2i/HS), unscaled: the sliding-window layers' frequencies.
    public var localInverseFrequencies: [Float]? {
        localRopeTheta.map { theta in (0..<(headSize / 2)).map { Float(1 / pow(Double(theta), Double(2 * $0) / Double(headSize))) } }
    }

    /// How positions are stretched beyond the trained context (`rope_scaling` in config.json).
    public enum RopeScaling: Sendable, Equatable {
        case none
        case linear(factor: Float)
        /// Dynamic NTK: past the trained context the base grows with the sequence length. The
        /// usable context (`contextLength`) is factor × the trained one.
        case dynamic(factor: Float, originalContext: Int)
        /// Llama 3.1's frequency-dependent scaling.
        case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalContext: Int)
        /// YaRN: interpolate low frequencies, keep high ones, ramp between; cos/sin scaled.
        case yarn(factor: Float, originalContext: Int, betaFast: Float, betaSlow: Float, attentionFactor: Float, truncate: Bool)
    }

    /// The factor YaRN multiplies cos and sin by (1 otherwise).
    public var ropeAttentionFactor: Float {
        if case let .yarn(_, _, _, _, attentionFactor, _) = ropeScaling { return attentionFactor }
        return 1
    }

    /// `general.architecture` values of the GGUF files this config reads.
    public static let supportedArchitectures = ["llama", "mistral", "qwen2", "gemma3"]
    /// `model_type` values of the Hugging Face configs it reads.
    public static let supportedModelTypes = ["llama", "mistral", "qwen2", "gemma3_text"]
    /// The architectures `quill train` steps through.
    public static let trainableArchitectures = ["llama", "mistral", "qwen2", "gemma3"]

    public init(gguf file: GGUFFile) throws {
        let arch = try file.string("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else {
            throw ModelError.unsupportedArchitecture(path: file.path, found: arch, supported: Self.supportedArchitectures)
        }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata["\(arch).\(key)"]?.int else { throw ModelError.missingKey(path: file.path, key: "\(arch).\(key)") }
            guard v > 0 else { throw ModelError.unsupportedValue(path: file.path, key: "\(arch).\(key)", found: "\(v)", supported: ["a positive size"]) }
            return v
        }
        architecture = arch
        hiddenSize = try int("embedding_length")
        layers = try int("block_count")
        try ModelError.checkLayers(layers, key: "\(arch).block_count", tensors: file.tensors.count, path: file.path)
        heads = try int("attention.head_count")
        // optional sizes: absent, the default; present, positive like the others
        func int(_ key: String, default fallback: Int) throws -> Int { file.metadata["\(arch).\(key)"]?.int == nil ? fallback : try int(key) }
        kvHeads = try int("attention.head_count_kv", default: heads)
        try Self.checkGrouping(heads: heads, kvHeads: kvHeads, path: file.path, key: "\(arch).attention.head_count_kv")
        headSize = try int("attention.key_length", default: hiddenSize / heads)
        intermediateSize = try int("feed_forward_length")
        rmsNormEpsilon = Float(file.metadata["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-5)
        ropeTheta = Float(file.metadata["\(arch).rope.freq_base"]?.double ?? 10_000)
        contextLength = try int("context_length", default: 2048)
        vocabularySize = file.metadata["\(arch).vocab_size"]?.int
            ?? (file.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0)
        // llama.cpp's converter permutes q/k rows of `llama` files for adjacent-pair rotation;
        // qwen2 files keep Hugging Face's rotate-half layout.
        ropePairing = arch == "llama" || arch == "mistral" ? .adjacent : .halves
        slidingWindow = file.metadata["\(arch).attention.sliding_window"]?.int
        ropeScaling = try Self.ropeScaling(gguf: file, arch: arch, contextLength: contextLength)
        if arch == "gemma3" { try readGemma3(gguf: file) }
        if let factors = file.tensor(named: "rope_freqs.weight") {
            guard factors.dimensions == [headSize / 2] else {
                throw ModelError.shapeMismatch(path: file.path, name: factors.name, expected: [headSize / 2], found: factors.dimensions)
            }
            ropeFrequencyFactors = Dequantize.array(factors.type, file.data(of: factors), count: headSize / 2)
        }
    }

    /// Rope scaling as llama.cpp reads it from GGUF metadata: `{arch}.rope.scaling.type` (none,
    /// linear, yarn) with `.factor`, `.original_context_length`, `.attn_factor` and
    /// `.yarn_log_multiplier`, or the legacy `{arch}.rope.scale_linear`. (Llama 3 scaling comes as
    /// the rope_freqs tensor instead.)
    private static func ropeScaling(gguf file: GGUFFile, arch: String, contextLength: Int) throws -> RopeScaling {
        func number(_ key: String) -> Double? { file.metadata["\(arch).rope.\(key)"]?.double }
        let legacyLinear = number("scale_linear")
        let kind = file.metadata["\(arch).rope.scaling.type"]?.string ?? (legacyLinear != nil ? "linear" : "none")
        let factor = number("scaling.factor") ?? legacyLinear ?? 1
        switch kind {
        case "none": return .none
        case "linear": return factor == 1 ? .none : .linear(factor: Float(factor))
        case "yarn":
            func mscale(_ m: Double) -> Double { factor <= 1 ? 1 : 0.1 * m * log(factor) + 1 }
            let logMultiplier = number("scaling.yarn_log_multiplier") ?? 0
            let attention = (logMultiplier != 0 ? mscale(1) / mscale(logMultiplier) : mscale(1)) * (number("scaling.attn_factor") ?? 1)
            return .yarn(factor: Float(factor), originalContext: file.metadata["\(arch).rope.scaling.original_context_length"]?.int ?? contextLength,
                         betaFast: 32, betaSlow: 1, attentionFactor: Float(attention), truncate: true)
        default:
            throw ModelError.unsupportedValue(path: file.path, key: "\(arch).rope.scaling.type", found: kind, supported: ["none", "linear", "yarn"])
        }
    }

    /// Gemma 3 in llama.cpp's terms: GeGLU, √C embedding scale, sliding-window layers in the
    /// pattern `{arch}.attention.sliding_window_pattern` (a period, every last layer of it global,
    /// default 6; or one flag per layer), their RoPE base `rope.freq_base_swa` (default 10,000),
    /// and the 27B model's attention scale (1/√(C/NH) instead of 1/√HS).
    private mutating func readGemma3(gguf file: GGUFFile) throws {
        let arch = architecture
        feedForwardActivation = .geluTanh
        embeddingScale = Float(hiddenSize).squareRoot()
        if let cap = file.metadata["\(arch).final_logit_softcapping"]?.double, cap > 0 { finalLogitSoftcap = Float(cap) }
        if layers == 62 { attentionScale = 1 / Float(hiddenSize / heads).squareRoot() }
        guard let window = slidingWindow, window > 0 else { slidingWindow = nil; return }
        let key = "\(arch).attention.sliding_window_pattern"
        if let flags = file.metadata[key]?.array {
            let bools = flags.compactMap { $0.bool }
            guard bools.count == layers else {
                throw ModelError.unsupportedValue(path: file.path, key: key, found: "\(flags.count) entries", supported: ["one flag per layer (\(layers))"])
            }
            slidingWindowLayers = bools
        } else {
            let period = file.metadata[key]?.int ?? 6
            guard period > 0 else { throw ModelError.unsupportedValue(path: file.path, key: key, found: "\(period)", supported: ["a positive period"]) }
            slidingWindowLayers = (0..<layers).map { $0 % period < period - 1 }
        }
        localRopeTheta = Float(file.metadata["\(arch).rope.freq_base_swa"]?.double ?? 10_000)
    }

    /// θ_i = base^(-2i/HS), i < HS/2, then the scaling.
    public var inverseFrequencies: [Float] { inverseFrequencies(sequenceLength: 0) }

    /// The same for a sequence `length` tokens long: only dynamic scaling depends on it.
    public func inverseFrequencies(sequenceLength length: Int) -> [Float] {
        let scaled = scaledInverseFrequencies(sequenceLength: length)
        guard let factors = ropeFrequencyFactors else { return scaled }
        return zip(scaled, factors).map { $0 / $1 }
    }

    private func scaledInverseFrequencies(sequenceLength: Int) -> [Float] {
        let base = (0..<(headSize / 2)).map { 1 / pow(Double(ropeTheta), Double(2 * $0) / Double(headSize)) }
        switch ropeScaling {
        case .none: return base.map { Float($0) }
        case let .dynamic(factor, original):
            // transformers' _compute_dynamic_ntk_parameters: base · (f·L/ctx − (f − 1))^(d/(d−2))
            let length = Double(max(sequenceLength, original)), dim = Double(headSize), f = Double(factor)
            let theta = Double(ropeTheta) * pow(f * length / Double(original) - (f - 1), dim / (dim - 2))
            return (0..<(headSize / 2)).map { Float(1 / pow(theta, Double(2 * $0) / dim)) }
        case .linear(let factor): return base.map { Float($0 / Double(factor)) }
        case let .llama3(factor, low, high, original):
            let lowWavelength = Double(original) / Double(low), highWavelength = Double(original) / Double(high)
            return base.map { f in
                let wavelength = 2 * Double.pi / f
                if wavelength < highWavelength { return Float(f) }
                if wavelength > lowWavelength { return Float(f / Double(factor)) }
                let smooth = (Double(original) / wavelength - Double(low)) / Double(high - low)
                return Float((1 - smooth) * f / Double(factor) + smooth * f)
            }
        case let .yarn(factor, original, betaFast, betaSlow, _, truncate):
            // the same steps as transformers' _compute_yarn_parameters, in Float where it uses float32
            let dim = Double(headSize), theta = Double(ropeTheta)
            func correctionDim(_ rotations: Double) -> Double {
                dim * log(Double(original) / (rotations * 2 * Double.pi)) / (2 * log(theta))
            }
            var low = correctionDim(Double(betaFast)), high = correctionDim(Double(betaSlow))
            if truncate { low = low.rounded(.down); high = high.rounded(.up) }
            low = max(low, 0); high = min(high, dim - 1)
            if low == high { high += 0.001 }
            return (0..<(headSize / 2)).map { i in
                let positionFrequency = Float(pow(theta, Double(2 * i) / dim))
                let extrapolation = 1 / positionFrequency, interpolation = 1 / (factor * positionFrequency)
                let ramp = min(max((Float(i) - Float(low)) / (Float(high) - Float(low)), 0), 1)
                let extrapolationFactor = 1 - ramp
                return interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor
            }
        }
    }

    /// Query heads share key/value heads in equal groups, so the key/value heads must divide them.
    static func checkGrouping(heads: Int, kvHeads: Int, path: String, key: String) throws {
        guard heads % kvHeads == 0 else {
            throw ModelError.unsupportedValue(path: path, key: key, found: "\(kvHeads) for \(heads) attention heads",
                                              supported: ["a divisor of the attention head count"])
        }
    }

    /// From a Hugging Face `config.json` (model_type llama, mistral, qwen2 or gemma3_text).
    public init(huggingFace json: [String: Any], path: String) throws {
        let type = json["model_type"] as? String ?? "?"
        guard Self.supportedModelTypes.contains(type) else {
            throw ModelError.unsupportedArchitecture(path: path, found: type, supported: Self.supportedModelTypes)
        }
        func int(_ key: String) throws -> Int {
            guard let v = json[key] as? Int else { throw ModelError.missingKey(path: path, key: key) }
            guard v > 0 else { throw ModelError.unsupportedValue(path: path, key: key, found: "\(v)", supported: ["a positive size"]) }
            return v
        }
        func number(_ key: String) -> Double? { Self.number(json[key]) }
        let gemma = type == "gemma3_text"
        architecture = gemma ? "gemma3" : type
        hiddenSize = try int("hidden_size")
        layers = try int("num_hidden_layers")
        heads = try int("num_attention_heads")
        // optional sizes: absent (or null), the default; present, positive like the others
        func int(_ key: String, default fallback: Int) throws -> Int { json[key] is Int ? try int(key) : fallback }
        kvHeads = try int("num_key_value_heads", default: heads)
        try Self.checkGrouping(heads: heads, kvHeads: kvHeads, path: path, key: "num_key_value_heads")
        headSize = try int("head_dim", default: hiddenSize / heads)
        intermediateSize = try int("intermediate_size")
        rmsNormEpsilon = Float(number("rms_norm_eps") ?? 1e-6)
        contextLength = (json["max_position_embeddings"] as? Int) ?? 2048
        vocabularySize = try int("vocab_size")
        ropePairing = .halves   // Hugging Face checkpoints rotate halves
        tiedEmbeddings = (json["tie_word_embeddings"] as? Bool) ?? gemma
        // transformers 5 writes `rope_parameters` (rope_theta inside; for Gemma 3 one entry per
        // layer type); earlier versions `rope_theta` and `rope_scaling` at the top level
        let ropeParameters = json["rope_parameters"] as? [String: Any]
        let rope: [String: Any]?   // the rope_scaling entry that applies (Gemma: its global layers')
        if gemma {
            rope = ropeParameters?["full_attention"] as? [String: Any] ?? (json["rope_scaling"] as? [String: Any])
            ropeTheta = Float(Self.number(rope?["rope_theta"]) ?? number("rope_theta") ?? 1_000_000)
            let local = ropeParameters?["sliding_attention"] as? [String: Any]
            localRopeTheta = Float(Self.number(local?["rope_theta"]) ?? number("rope_local_base_freq") ?? 10_000)
            try readGemma3(huggingFace: json, path: path)
        } else {
            ropeTheta = Float(Self.number(ropeParameters?["rope_theta"]) ?? number("rope_theta") ?? 10_000)
            let usesWindow = (json["use_sliding_window"] as? Bool) ?? (type == "mistral")
            slidingWindow = usesWindow ? json["sliding_window"] as? Int : nil
            rope = (json["rope_scaling"] as? [String: Any]) ?? ropeParameters
        }
        if let rope { try readRopeScaling(rope, path: path) }
    }

    private static func number(_ value: Any?) -> Double? { (value as? Double) ?? (value as? Int).map(Double.init) }

    /// Gemma 3 from its `config.json`: `hidden_activation`, `query_pre_attn_scalar`,
    /// `layer_types` (or the older `sliding_window_pattern`), `final_logit_softcapping`. Gemma 2's
    /// attention soft-capping is refused: no kernel of ours applies it.
    private mutating func readGemma3(huggingFace json: [String: Any], path: String) throws {
        let activation = json["hidden_activation"] as? String ?? json["hidden_act"] as? String ?? "gelu_pytorch_tanh"
        guard ["gelu_pytorch_tanh", "gelu_tanh"].contains(activation) else {
            throw ModelError.unsupportedValue(path: path, key: "hidden_activation", found: activation, supported: ["gelu_pytorch_tanh"])
        }
        if let cap = Self.number(json["attn_logit_softcapping"]) {
            throw ModelError.unsupportedValue(path: path, key: "attn_logit_softcapping", found: "\(cap)", supported: ["null"])
        }
        feedForwardActivation = .geluTanh
        embeddingScale = Float(hiddenSize).squareRoot()
        let scalar = Self.number(json["query_pre_attn_scalar"]) ?? Double(headSize)
        guard scalar > 0 else { throw ModelError.unsupportedValue(path: path, key: "query_pre_attn_scalar", found: "\(scalar)", supported: ["a positive number"]) }
        if scalar != Double(headSize) { attentionScale = Float(1 / scalar.squareRoot()) }
        finalLogitSoftcap = Self.number(json["final_logit_softcapping"]).map(Float.init)
        slidingWindow = json["sliding_window"] as? Int
        if let types = json["layer_types"] as? [String] {
            guard types.count == layers, types.allSatisfy({ ["sliding_attention", "full_attention"].contains($0) }) else {
                throw ModelError.unsupportedValue(path: path, key: "layer_types", found: "\(types.count) entries",
                                                  supported: ["sliding_attention or full_attention for each of \(layers) layers"])
            }
            slidingWindowLayers = types.map { $0 == "sliding_attention" }
        } else {
            let period = (json["sliding_window_pattern"] as? Int) ?? 6
            guard period > 0 else { throw ModelError.unsupportedValue(path: path, key: "sliding_window_pattern", found: "\(period)", supported: ["a positive period"]) }
            slidingWindowLayers = (0..<layers).map { ($0 + 1) % period != 0 }
        }
        if slidingWindow == nil || slidingWindow! <= 0 { slidingWindow = nil; localRopeTheta = nil }
    }

    /// `rope_scaling` (or transformers 5's `rope_parameters`): its `rope_type` and parameters.
    private mutating func readRopeScaling(_ scaling: [String: Any], path: String) throws {
        let kind = (scaling["rope_type"] as? String) ?? (scaling["type"] as? String) ?? "default"
        let factor = Float(Self.number(scaling["factor"]) ?? 1)
        switch kind {
        case "default": ropeScaling = .none
        case "linear": ropeScaling = .linear(factor: factor)
        case "dynamic":
            ropeScaling = .dynamic(factor: factor, originalContext: contextLength)
            contextLength = Int(Float(contextLength) * max(factor, 1))
        case "yarn":
            func value(_ key: String) -> Double? { Self.number(scaling[key]) }
            let original = (scaling["original_max_position_embeddings"] as? Int) ?? contextLength
            let f = value("factor") ?? Double(contextLength) / Double(original)
            func mscale(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * log(scale) + 1 }
            var attention = value("attention_factor")
            if attention == nil {
                if let m = value("mscale"), let all = value("mscale_all_dim"), m != 0, all != 0 {
                    attention = mscale(f, m) / mscale(f, all)
                } else { attention = mscale(f) }
            }
            ropeScaling = .yarn(factor: Float(f), originalContext: original, betaFast: Float(value("beta_fast") ?? 32),
                                betaSlow: Float(value("beta_slow") ?? 1), attentionFactor: Float(attention!),
                                truncate: (scaling["truncate"] as? Bool) ?? true)
        case "llama3":
            ropeScaling = .llama3(factor: factor,
                                  lowFrequencyFactor: Float(Self.number(scaling["low_freq_factor"]) ?? 1),
                                  highFrequencyFactor: Float(Self.number(scaling["high_freq_factor"]) ?? 4),
                                  originalContext: (scaling["original_max_position_embeddings"] as? Int) ?? 8192)
        default:
            throw ModelError.unsupportedValue(path: path, key: "rope_scaling type", found: kind,
                                              supported: ["default", "linear", "dynamic", "llama3", "yarn"])
        }
    }
}

/// llama.cpp's rotary row order: its converter permutes the q and k rows of `llama` GGUF files.
extension LlamaConfig {
    /// For each Hugging Face row of a rotary projection, the GGUF row it comes from (see below).
    public static func rotaryRowOrder(heads: Int, headSize: Int) -> [Int] {
        let half = headSize / 2
        var order = [Int](repeating: 0, count: heads * headSize)
        for h in 0..<heads { for j in 0..<half { for s in 0..<2 { order[h * headSize + s * half + j] = h * headSize + 2 * j + s } } }
        return order
    }

    /// llama.cpp's converter reorders each head's rows from (half, pair) to (pair, half):
    /// its row 2j + s is Hugging Face's row s · HS/2 + j. Rows may carry any width (a weight) or
    /// one value (a bias).
    public static func unpermuteRotaryRows(_ values: [Float], heads: Int, headSize: Int) -> [Float] {
        let order = rotaryRowOrder(heads: heads, headSize: headSize), width = values.count / order.count
        var out = values
        for (to, from) in order.enumerated() { for k in 0..<width { out[to * width + k] = values[from * width + k] } }
        return out
    }

    /// The converter's permutation itself (Hugging Face's rows to GGUF's): the inverse of the above.
    public static func permuteRotaryRows(_ values: [Float], heads: Int, headSize: Int) -> [Float] {
        let order = rotaryRowOrder(heads: heads, headSize: headSize), width = values.count / order.count
        var out = values
        for (to, from) in order.enumerated() { for k in 0..<width { out[from * width + k] = values[to * width + k] } }
        return out
    }
}
