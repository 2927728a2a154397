import Foundation
import QuillCore
import QuillFormats
import QuillModels
import QuillTokenizers

extension TrainableModel {
    /// Writes the model as a GGUF file that llama.cpp loads, each tensor converted to the type
    /// `options` plans for it (llama-quantize's rules):
    /// - `metadata`: the keys to write before the tensors' types. A model read from a GGUF file
    ///   keeps that file's (`GGUFFile.orderedMetadata`); otherwise `ggufMetadata(name:tokenizer:)`
    ///   makes them from the configuration and the tokenizer, as llama.cpp's converter does.
    /// - Tensors take llama.cpp's names; `llama` files get the converter's q/k row permutation.
    /// The file appears complete or not at all; a full disk is refused before it is written.
    public func saveGGUF(to path: String, metadata: [(key: String, value: GGUFValue)], options: GGUFQuantizer.Options,
                         source: String, progress: (Int, GGUFQuantizationPlan.Entry) -> Void = { _, _ in }) throws {
        let tensors = try ggufTensors()
        try GGUFQuantizer.quantize(tensors, metadata: metadata, source: source, to: path, options: options, pool: pool,
                                   progress: progress)
    }

    /// The per-tensor types `saveGGUF` would write (`--dry-run`).
    public func ggufPlan(metadata: [(key: String, value: GGUFValue)], options: GGUFQuantizer.Options) throws -> GGUFQuantizationPlan {
        GGUFQuantizer.plan(for: try ggufTensors().map { ($0.name, $0.dimensions, $0.type) },
                           metadata: Dictionary(metadata, uniquingKeysWith: { a, _ in a }), options: options)
    }

    /// llama.cpp's `general.architecture` for this model: Mistral is `llama` there.
    public var ggufArchitecture: String {
        shape.family == .gpt2 ? "gpt2" : shape.architecture == "mistral" ? "llama" : shape.architecture
    }

    /// The metadata llama.cpp's converter writes for this model: `general.*`, the architecture's
    /// hyperparameters and the tokenizer (`Tokenizer.ggufMetadata`).
    public func ggufMetadata(name: String, tokenizer: Tokenizer, source: String) throws -> [(key: String, value: GGUFValue)] {
        try ggufModelMetadata(name: name, source: source) + tokenizer.ggufMetadata(vocabularySize: shape.vocabularySize, source: source)
    }

    /// `general.*` and the architecture's hyperparameters, without the tokenizer.
    public func ggufModelMetadata(name: String, source: String) throws -> [(key: String, value: GGUFValue)] {
        let s = shape, arch = ggufArchitecture
        var keys: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(arch)), ("general.type", .string("model")), ("general.name", .string(name)),
        ]
        func add(_ key: String, _ value: GGUFValue) { keys.append(("\(arch).\(key)", value)) }
        func int(_ key: String, _ value: Int) { add(key, .uint32(UInt32(value))) }
        func float(_ key: String, _ value: Float) { add(key, .float32(value)) }
        int("block_count", s.layers)
        int("context_length", s.contextLength)
        int("embedding_length", s.channels)
        int("feed_forward_length", s.intermediateSize)
        int("attention.head_count", s.heads)
        switch s.family {
        case .gpt2:
            float("attention.layer_norm_epsilon", s.normEpsilon)
        case .llama:
            guard let config = llamaConfig else { throw LoRAError.invalid("no Llama configuration was loaded with this model") }
            int("attention.head_count_kv", s.kvHeads)
            float("rope.freq_base", config.ropeTheta)
            float("attention.layer_norm_rms_epsilon", s.normEpsilon)
            if s.headSize != s.channels / s.heads || s.gemmaNorms {
                int("attention.key_length", s.headSize)
                int("attention.value_length", s.headSize)
            }
            if arch == "llama" {
                int("vocab_size", s.vocabularySize)
                int("rope.dimension_count", s.headSize)
            }
            switch config.ropeScaling {
            case .none: break
            case .linear(let factor):
                add("rope.scaling.type", .string("linear"))
                float("rope.scaling.factor", factor)
            case let .yarn(factor, original, _, _, _, _):
                add("rope.scaling.type", .string("yarn"))
                float("rope.scaling.factor", factor)
                int("rope.scaling.original_context_length", original)
            case .dynamic, .llama3:
                throw ModelError.unsupportedValue(path: source, key: "rope_scaling", found: "\(config.ropeScaling)",
                                                  supported: ["none", "linear", "yarn"])
            }
            if arch == "gemma3" {
                if let window = config.slidingWindow {
                    int("attention.sliding_window", window)
                    if let layers = config.slidingWindowLayers, layers != (0..<s.layers).map({ $0 % 6 < 5 }) {
                        add("attention.sliding_window_pattern", .array(.bool, layers.map { .bool($0) }))
                    }
                    if let local = config.localRopeTheta, local != 10_000 { float("rope.freq_base_swa", local) }
                }
                if let cap = config.finalLogitSoftcap { float("final_logit_softcapping", cap) }
                // llama.cpp scales scores by 1/√head_dim (1/√(C/NH) in the 62-layer 27B): no key says otherwise
                let implied = s.layers == 62 ? 1 / Float(s.channels / s.heads).squareRoot() : 1 / Float(s.headSize).squareRoot()
                if let scale = config.attentionScale, abs(scale - implied) > 1e-6 * implied {
                    throw ModelError.unsupportedValue(path: source, key: "query_pre_attn_scalar", found: "\(1 / (scale * scale))",
                                                      supported: ["\(s.headSize) (head_dim), which GGUF implies"])
                }
            }
        }
        return keys
    }

    /// The head count whose rows llama.cpp's converter permutes in a q or k projection of a
    /// `llama` file (the weight, its bias, or an adapter's B), nil for every other tensor.
    func permutedHeads(_ name: String) -> Int? {
        guard ggufArchitecture == "llama" else { return nil }
        if name.contains("q_proj.") { return shape.heads }
        if name.contains("k_proj.") { return shape.kvHeads }
        return nil
    }

    /// Every parameter under its GGUF name and dimensions, as fp32, q/k rows permuted for `llama`.
    func ggufTensors() throws -> [GGUFQuantizer.Source] {
        guard !hasQuantizedBase else { throw LoRAError.invalid("a model with a quantized base is exported from its fp32 load (no --qlora)") }
        guard lora == nil else { throw LoRAError.invalid("merge the adapters (mergeAdapters) before exporting the model") }
        let names = Self.ggufNames(shape), s = shape, store = parameters
        var tensors = try parameters.entries.map { entry -> GGUFQuantizer.Source in
            guard let name = names[entry.name] else { throw ModelError.missingTensor(path: "GGUF names", name: entry.name) }
            let heads = permutedHeads(entry.name)
            return GGUFQuantizer.Source(name: name, dimensions: entry.shape.reversed(), type: .f32) { body in
                if let heads {
                    let rows = LlamaConfig.permuteRotaryRows(store.tensor(entry.name), heads: heads, headSize: s.headSize)
                    try rows.withUnsafeBytes(body)
                } else {
                    try withExtendedLifetime(store) {
                        try body(UnsafeRawBufferPointer(start: store.base + entry.offset, count: entry.count * 4))
                    }
                }
            }
        }
        if let factors = llamaConfig?.ropeFrequencyFactors {
            tensors.append(GGUFQuantizer.Source(name: "rope_freqs.weight", dimensions: [factors.count], type: .f32) { body in
                try factors.withUnsafeBytes(body)
            })
        }
        return tensors
    }
}

extension TrainableModel {
    /// Writes the LoRA adapters as llama.cpp's GGUF adapter (what `llama-cli --lora` and
    /// `llama-server --lora` load, as `convert_lora_to_gguf.py` writes it): `general.type`
    /// adapter, `adapter.type` lora, `adapter.lora.alpha`, and per adapted weight
    /// `<weight>.lora_a` [in, r] and `<weight>.lora_b` [r, out] in fp32, B's rows permuted with
    /// q/k for `llama` files. llama.cpp scales by α/r; an rsLoRA adapter's α is written as α·√r
    /// so that the product is the same α/√r.
    public func saveGGUFAdapter(to path: String, name: String, source: String,
                                progress: (Int, GGUFQuantizationPlan.Entry) -> Void = { _, _ in }) throws {
        guard let lora else { throw LoRAError.invalid("this model has no LoRA adapters to export") }
        let c = lora.configuration, s = shape, names = Self.ggufNames(shape), store = lora.parameters
        let alpha = c.rsLoRA ? c.alpha * Float(c.rank).squareRoot() : c.alpha
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(ggufArchitecture)), ("general.type", .string("adapter")), ("general.name", .string(name)),
            ("adapter.type", .string("lora")), ("adapter.lora.alpha", .float32(alpha)),
        ]
        let tensors = try lora.adapters.flatMap { adapter -> [GGUFQuantizer.Source] in
            guard let base = names[adapter.module + ".weight"] else {
                throw ModelError.missingTensor(path: source, name: adapter.module + ".weight")
            }
            let heads = permutedHeads(adapter.module + ".weight")
            let a = GGUFQuantizer.Source(name: base + ".lora_a", dimensions: [adapter.inputs, adapter.rank], type: .f32) { body in
                try store.tensor(adapter.aName).withUnsafeBytes(body)
            }
            let b = GGUFQuantizer.Source(name: base + ".lora_b", dimensions: [adapter.rank, adapter.outputs], type: .f32) { body in
                let values = store.tensor(adapter.bName)
                guard let heads else { return try values.withUnsafeBytes(body) }
                try LlamaConfig.permuteRotaryRows(values, heads: heads, headSize: s.headSize).withUnsafeBytes(body)
            }
            return [a, b]
        }
        try GGUFQuantizer.quantize(tensors, metadata: metadata, source: source, to: path, options: .init(fileType: .f32),
                                   pool: pool, progress: progress)
    }
}
