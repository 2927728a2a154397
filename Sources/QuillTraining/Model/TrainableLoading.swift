import Foundation
import QuillModels
import QuillCore
import QuillFormats

extension TrainableModel {
    /// The architectures (and Hugging Face model types) training steps through.
    public static let trainableArchitectures = ["gpt2"] + LlamaConfig.trainableArchitectures

    /// A model to train from a Hugging Face directory (GPT-2 or the Llama family; F32, F16 or
    /// BF16 safetensors) or a GGUF file (any tensor type, dequantized to fp32). GGUF `llama`
    /// files have their q/k rows un-permuted back to Hugging Face's rotate-half layout, so
    /// every trained model, adapter and export uses one convention.
    /// `quantizedBase` (QLoRA, GGUF files only): the linear layers' weights stay in their file's
    /// quantized type in memory, frozen, for training LoRA adapters on them.
    /// `readValues: false` builds the model's layout only: every weight zero in lazily allocated
    /// pages that are never touched, so `MemoryEstimate` can size a run without loading it
    /// (`quill doctor`). Shapes and names are checked as in a real load.
    public convenience init(loading path: String, quantizedBase: Bool = false, readValues: Bool = true, pool: ThreadPool = .shared) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError.unreadable(path: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue {
            if quantizedBase {
                throw ModelError.unsupportedValue(path: path, key: "quantized base", found: "a Hugging Face directory", supported: ["a GGUF file"])
            }
            try self.init(huggingFace: URL(fileURLWithPath: path), readValues: readValues, pool: pool)
        } else {
            try self.init(gguf: try GGUFFile(path: path), quantizedBase: quantizedBase, readValues: readValues, pool: pool)
        }
    }

    convenience init(huggingFace directory: URL, readValues: Bool = true, pool: ThreadPool) throws {
        let hf = try HuggingFaceConfig.read(directory)
        let json = hf.json
        let shape: Shape
        var llamaConfig: LlamaConfig?
        if hf.modelType == "gpt2" {
            shape = Shape(gpt2: try GPT2Model.Config(huggingFace: json, path: hf.path))
        } else if LlamaConfig.supportedModelTypes.contains(hf.modelType) {
            let config = try LlamaConfig(huggingFace: json, path: hf.path)
            guard LlamaConfig.trainableArchitectures.contains(config.architecture) else {
                throw ModelError.unsupportedArchitecture(path: hf.path, found: hf.modelType, supported: Self.trainableArchitectures)
            }
            llamaConfig = config
            shape = Self.shape(config, attentionBias: hf.modelType == "qwen2")
        } else {
            throw ModelError.unsupportedArchitecture(path: hf.path, found: hf.modelType, supported: Self.trainableArchitectures)
        }
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        try ModelError.checkLayers(shape.layers, key: shape.family == .gpt2 ? "n_layer" : "num_hidden_layers",
                                   tensors: checkpoint.tensorCount, path: hf.path)
        let layout = Wiring.layout(shape)
        // older GPT-2 checkpoints name tensors without the "transformer." prefix
        let stripPrefix = shape.family == .gpt2 && checkpoint.info("transformer.wte.weight") == nil
        // every tensor is found with its shape before the store, sized by config.json's numbers, is allocated
        let sources = try layout.map { entry -> (name: String, conv1D: Bool, shape: [Int]) in
            let name = stripPrefix ? String(entry.name.dropFirst("transformer.".count)) : entry.name
            guard let info = checkpoint.info(name) else { throw ModelError.missingTensor(path: directory.path, name: name) }
            // GPT-2's Conv1D layers store [in, out]; a Linear's weight is [out, in]
            let conv1D = shape.family == .gpt2 && entry.shape.count == 2 && !name.hasSuffix("wte.weight") && !name.hasSuffix("wpe.weight")
            let expected = conv1D ? [entry.shape[1], entry.shape[0]] : entry.shape
            guard info.shape == expected else {
                throw ModelError.shapeMismatch(path: directory.path, name: name, expected: expected, found: info.shape)
            }
            return (name, conv1D, expected)
        }
        let store = ParameterStore(layout: layout)
        for (entry, source) in zip(store.entries, sources) where readValues {
            let values = try checkpoint.floats(source.name)
            if Self.isGemmaNorm(entry.name, shape) { store.set(entry.name, values.map { $0 + 1 }); continue }
            store.set(entry.name, source.conv1D ? Self.transpose(values, rows: source.shape[0], cols: source.shape[1]) : values)
        }
        self.init(shape: shape, parameters: store, pool: pool)
        self.llamaConfig = llamaConfig
    }

    convenience init(gguf file: GGUFFile, quantizedBase: Bool, readValues: Bool = true, pool: ThreadPool) throws {
        let arch = try file.string("general.architecture")
        let shape: Shape
        var names: [String: String] = [:]   // ours → GGUF
        if arch == "gpt2" {
            shape = Shape(gpt2: try GPT2Model.Config(gguf: file))
            names = Self.ggufNames(shape)
        } else if LlamaConfig.trainableArchitectures.contains(arch) {
            var config = try LlamaConfig(gguf: file)
            if let e = file.tensor(named: "token_embd.weight"), e.dimensions.count == 2 { config.vocabularySize = e.dimensions[1] }
            config.tiedEmbeddings = file.tensor(named: "output.weight") == nil
            shape = Self.shape(config, attentionBias: file.tensor(named: "blk.0.attn_q.bias") != nil)
            names = Self.ggufNames(shape)
            // llama.cpp permutes q/k rows of `llama` files for adjacent-pair rotation
            let permuted = config.ropePairing == .adjacent
            func rowOrder(_ name: String) -> [Int]? {
                guard permuted else { return nil }
                if name.hasSuffix("q_proj.weight") { return LlamaConfig.rotaryRowOrder(heads: shape.heads, headSize: shape.headSize) }
                if name.hasSuffix("k_proj.weight") { return LlamaConfig.rotaryRowOrder(heads: shape.kvHeads, headSize: shape.headSize) }
                return nil
            }
            let frozen = quantizedBase ? try Self.frozenWeights(file, shape: shape, names: names, rowOrder: rowOrder) : [:]
            let store = try Self.store(Wiring.layout(shape).filter { frozen[$0.name] == nil }, from: file, names: names,
                                       readValues: readValues) { name, values in
                guard permuted else { return values }
                if name.hasSuffix("q_proj.weight") || name.hasSuffix("q_proj.bias") {
                    return LlamaConfig.unpermuteRotaryRows(values, heads: shape.heads, headSize: shape.headSize)
                }
                if name.hasSuffix("k_proj.weight") || name.hasSuffix("k_proj.bias") {
                    return LlamaConfig.unpermuteRotaryRows(values, heads: shape.kvHeads, headSize: shape.headSize)
                }
                return values
            }
            self.init(shape: shape, parameters: store, frozen: frozen, pool: pool)
            config.ropePairing = .halves   // the rows were un-permuted above
            llamaConfig = config
            return
        } else {
            throw ModelError.unsupportedArchitecture(path: file.path, found: arch, supported: Self.trainableArchitectures)
        }
        let frozen = quantizedBase ? try Self.frozenWeights(file, shape: shape, names: names, rowOrder: { _ in nil }) : [:]
        let store = try Self.store(Wiring.layout(shape).filter { frozen[$0.name] == nil }, from: file, names: names,
                                   readValues: readValues) { _, values in values }
        self.init(shape: shape, parameters: store, frozen: frozen, pool: pool)
    }

    /// llama.cpp's name of each of our (Hugging Face's) tensor names, for either family; names
    /// of tensors a model does not have (biases, an untied head) are harmless extras.
    public static func ggufNames(_ shape: Shape) -> [String: String] {
        var names: [String: String] = [:]
        let layerPairs: [(String, String)]
        let ours: (Int) -> String
        switch shape.family {
        case .gpt2:
            names = ["transformer.wte.weight": "token_embd.weight", "transformer.wpe.weight": "position_embd.weight",
                     "transformer.ln_f.weight": "output_norm.weight", "transformer.ln_f.bias": "output_norm.bias"]
            layerPairs = [("ln_1", "attn_norm"), ("attn.c_attn", "attn_qkv"), ("attn.c_proj", "attn_output"),
                          ("ln_2", "ffn_norm"), ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down")]
            ours = { "transformer.h.\($0)." }
        case .llama:
            names = ["model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                     "lm_head.weight": "output.weight"]
            // Gemma's post_attention_layernorm is llama.cpp's post_attention_norm; its
            // pre_feedforward_layernorm is ffn_norm, where Llama's post_attention_layernorm is
            let norms = shape.gemmaNorms
                ? [("post_attention_layernorm", "post_attention_norm"), ("pre_feedforward_layernorm", "ffn_norm"),
                   ("post_feedforward_layernorm", "post_ffw_norm"), ("self_attn.q_norm", "attn_q_norm"), ("self_attn.k_norm", "attn_k_norm")]
                : [("post_attention_layernorm", "ffn_norm")]
            layerPairs = norms + [("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                                  ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"), ("mlp.gate_proj", "ffn_gate"),
                                  ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")]
            ours = { "model.layers.\($0)." }
        }
        for l in 0..<shape.layers {
            for (a, b) in layerPairs {
                names[ours(l) + a + ".weight"] = "blk.\(l).\(b).weight"
                names[ours(l) + a + ".bias"] = "blk.\(l).\(b).bias"
            }
        }
        return names
    }

    static func shape(_ config: LlamaConfig, attentionBias: Bool) -> Shape {
        var shape = Shape(family: .llama, architecture: config.architecture, vocabularySize: config.vocabularySize,
                          contextLength: config.contextLength, channels: config.hiddenSize, layers: config.layers, heads: config.heads,
                          kvHeads: config.kvHeads, headSize: config.headSize, intermediateSize: config.intermediateSize,
                          normEpsilon: config.rmsNormEpsilon, tiedEmbeddings: config.tiedEmbeddings, attentionBias: attentionBias,
                          inverseFrequencies: config.inverseFrequencies, ropeAttentionFactor: config.ropeAttentionFactor,
                          slidingWindow: config.slidingWindow, ropeTheta: config.ropeTheta)
        shape.feedForwardActivation = config.feedForwardActivation
        shape.embeddingScale = config.embeddingScale
        shape.attentionScale = config.attentionScale
        shape.finalLogitSoftcap = config.finalLogitSoftcap
        shape.slidingWindowLayers = config.slidingWindowLayers
        shape.localInverseFrequencies = config.localInverseFrequencies
        shape.gemmaNorms = config.architecture == "gemma3"
        return shape
    }

    /// Whether `name` is one of Gemma's RMSNorm weights, which Hugging Face checkpoints store as
    /// w in x̂ · (1 + w): Quill holds (and trains) 1 + w, as GGUF files store it.
    static func isGemmaNorm(_ name: String, _ shape: Shape) -> Bool {
        shape.gemmaNorms && name.hasSuffix("norm.weight")
    }

    /// The GGUF tensor that `names` maps a layout entry to, with the entry's shape (GGUF lists
    /// dimensions innermost first: [out, in] row-major is [in, out] there).
    private static func source(of entry: (name: String, shape: [Int], decays: Bool), in file: GGUFFile,
                               names: [String: String]) throws -> GGUFFile.TensorInfo {
        guard let theirs = names[entry.name] else { throw ModelError.missingTensor(path: file.path, name: entry.name) }
        guard let info = file.tensor(named: theirs) else { throw ModelError.missingTensor(path: file.path, name: theirs) }
        let expected = Array(entry.shape.reversed())
        guard info.dimensions == expected else {
            throw ModelError.shapeMismatch(path: file.path, name: theirs, expected: expected, found: info.dimensions)
        }
        return info
    }

    /// The fp32 store of `layout`, filled from the file's tensors (dequantized, then `convert`ed);
    /// every tensor is found with its shape before the store, sized by the metadata, is allocated.
    /// Each tensor's file pages are let go once copied: the store holds its values from then on
    /// (the file of a 1.5B model would otherwise stay resident beside them, 1.1 GB).
    private static func store(_ layout: [(name: String, shape: [Int], decays: Bool)], from file: GGUFFile, names: [String: String],
                              readValues: Bool, convert: (String, [Float]) -> [Float]) throws -> ParameterStore {
        let sources = try layout.map { try source(of: $0, in: file, names: names) }
        let store = ParameterStore(layout: layout)
        for (entry, info) in zip(store.entries, sources) where readValues {
            store.set(entry.name, convert(entry.name, Dequantize.array(info.type, file.data(of: info), count: info.elementCount)))
            file.releasePages(of: info)
        }
        return store
    }

    /// The block linears' weights of a non-fp32 type, kept as stored (QLoRA).
    private static func frozenWeights(_ file: GGUFFile, shape: Shape, names: [String: String],
                                      rowOrder: (String) -> [Int]?) throws -> [String: FrozenWeight] {
        var frozen: [String: FrozenWeight] = [:]
        for entry in Wiring.layout(shape) where entry.shape.count == 2 && entry.decays && entry.name != "lm_head.weight" {
            guard let theirs = names[entry.name], let info = file.tensor(named: theirs), info.type != .f32 else { continue }
            guard info.dimensions == Array(entry.shape.reversed()) else {
                throw ModelError.shapeMismatch(path: file.path, name: theirs, expected: Array(entry.shape.reversed()), found: info.dimensions)
            }
            frozen[entry.name] = FrozenWeight(type: info.type, rows: entry.shape[0], cols: entry.shape[1], bytes: file.data(of: info),
                                              rowOrder: rowOrder(entry.name))
        }
        return frozen
    }

    static func transpose(_ values: [Float], rows: Int, cols: Int) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = values[r * cols + c] } }
        return out
    }
}

extension TrainableModel {
    /// A GPT-2 of the given size with GPT-2's initialization (weights N(0, 0.02), residual
    /// projections N(0, 0.02/√(2L)), norms at 1, biases at 0), for training from scratch.
    public static func randomGPT2(layers: Int = 12, channels: Int = 768, heads: Int = 12, vocabularySize: Int = 50257,
                                  contextLength: Int = 1024, seed: UInt64 = 0, pool: ThreadPool = .shared) -> TrainableModel {
        let shape = Shape(gpt2: GPT2Model.Config(vocabularySize: vocabularySize, contextLength: contextLength, hiddenSize: channels,
                                                 intermediateSize: 4 * channels, layers: layers, heads: heads, layerNormEpsilon: 1e-5))
        let store = ParameterStore(layout: Wiring.layout(shape))
        var random = SplitMix64(seed: seed)
        func normal(_ std: Float) -> Float {   // Box–Muller
            let u = max(random.nextUnitFloat(), 1e-7), v = random.nextUnitFloat()
            return std * (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        for entry in store.entries {
            let p = store.base + entry.offset
            if entry.shape.count == 2 {
                let std: Float = entry.name.hasSuffix("c_proj.weight") ? 0.02 / Float(2 * layers).squareRoot() : 0.02
                for i in 0..<entry.count { p[i] = normal(std) }
            } else if entry.name.hasSuffix("ln_1.weight") || entry.name.hasSuffix("ln_2.weight") || entry.name.hasSuffix("ln_f.weight") {
                for i in 0..<entry.count { p[i] = 1 }
            }
        }
        return TrainableModel(shape: shape, parameters: store, pool: pool)
    }
}
