import Foundation
import QuillModels
import QuillCore
import QuillFormats
import QuillTokenizers

extension TrainableModel {
    // MARK: PEFT adapters

    /// Writes the adapters as HF PEFT saves them: `adapter_config.json` and
    /// `adapter_model.safetensors` (keys `base_model.model.<module>.lora_A.weight`), so
    /// `PeftModel.from_pretrained(base, directory)` loads them.
    public func saveAdapter(to directory: URL, baseModel: String) throws {
        guard let lora else { throw LoRAError.invalid("this model has no LoRA adapters to save") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let c = lora.configuration
        let config: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": baseModel,
            "r": c.rank, "lora_alpha": Double(c.alpha), "lora_dropout": Double(c.dropout), "target_modules": c.targets,
            "use_rslora": c.rsLoRA, "bias": "none", "fan_in_fan_out": shape.family == .gpt2, "inference_mode": true,
            "init_lora_weights": true, "modules_to_save": NSNull(), "layers_to_transform": NSNull(),
        ]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]),
                             to: directory.appendingPathComponent("adapter_config.json"))
        try lora.parameters.write(to: directory.appendingPathComponent("adapter_model.safetensors"), metadata: ["format": "pt"])
    }

    /// Attaches and loads a PEFT LoRA adapter directory (made by Quill or by HF PEFT).
    public func loadAdapter(from directory: URL) throws {
        let configuration = try LoRAConfiguration.read(adapterDirectory: directory)
        try attach(configuration)
        // PEFT writes the adapter's name into keys only when it is not "default"
        try lora!.parameters.read(from: directory.appendingPathComponent("adapter_model.safetensors").path)
    }

    /// Folds the adapters into the base weights (W += s · B·A) and removes them: the result
    /// runs and exports as a plain model.
    public func mergeAdapters() throws {
        guard let lora else { return }
        guard !hasQuantizedBase else { throw LoRAError.invalid("adapters on a quantized base cannot be merged in place; use inferenceModel()") }
        for b in wiring.blocks.indices {
            wiring.blocks[b].forEachLinear { linear in
                guard let index = linear.adapter else { return }
                let adapter = lora.adapters[index]
                lora.configuration.merge(into: parameters.pointer(linear.weight), a: lora.parameters.pointer(adapter.aName),
                                         b: lora.parameters.pointer(adapter.bName), inputs: linear.inputs, outputs: linear.outputs)
                linear.adapter = nil
            }
        }
        self.lora = nil
        gradients = ParameterStore(sameLayoutAs: parameters)
        releaseActivations()
    }

    // MARK: Hugging Face directories

    /// Writes a Hugging Face model directory that transformers loads: `config.json`,
    /// `generation_config.json`, the weights as `model.safetensors` (`__metadata__` format pt;
    /// tied weights once; GPT-2's Conv1D weights transposed back to [in, out]) or, above
    /// `maxShardBytes`, as shards with `model.safetensors.index.json`, and the tokenizer's files
    /// (`Tokenizer.saveHuggingFace`) when one is given.
    public func saveHuggingFace(to directory: URL, tokenizer: Tokenizer? = nil, dtype: SafetensorsWriter.DType = .f32,
                                maxShardBytes: Int = .max) throws {
        guard !hasQuantizedBase else { throw LoRAError.invalid("a quantized base is saved as its GGUF file, not as fp32 safetensors") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let s = shape
        var config: [String: Any]
        switch s.family {
        case .gpt2:
            config = ["model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": s.vocabularySize,
                      "n_positions": s.contextLength, "n_embd": s.channels, "n_layer": s.layers, "n_head": s.heads,
                      "n_inner": s.intermediateSize, "layer_norm_epsilon": Double(s.normEpsilon), "activation_function": "gelu_new",
                      "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0]
        case .llama:
            let classes = ["llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"]
            config = ["model_type": s.architecture, "architectures": [classes[s.architecture] ?? "LlamaForCausalLM"],
                      "vocab_size": s.vocabularySize, "max_position_embeddings": s.contextLength, "hidden_size": s.channels,
                      "intermediate_size": s.intermediateSize, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
                      "num_key_value_heads": s.kvHeads, "head_dim": s.headSize, "rms_norm_eps": Double(s.normEpsilon),
                      "tie_word_embeddings": s.tiedEmbeddings, "hidden_act": "silu", "attention_bias": s.attentionBias,
                      "rope_theta": Double(s.ropeTheta)]
            if let window = s.slidingWindow { config["sliding_window"] = window; config["use_sliding_window"] = true }
            if s.gemmaNorms { try gemmaConfig(into: &config) }
        }
        config["torch_dtype"] = dtype.torchName
        var generation: [String: Any] = ["_from_model_config": true]
        if let tokenizer {
            for (key, id) in [("bos_token_id", tokenizer.bosTokenId), ("eos_token_id", tokenizer.eosTokenId),
                              ("pad_token_id", tokenizer.padTokenId)] {
                if let id { config[key] = Int(id); generation[key] = Int(id) }
            }
        }
        for (name, object) in [("config.json", config), ("generation_config.json", generation)] {
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
                                 to: directory.appendingPathComponent(name))
        }
        // GPT-2's Conv1D weights are written transposed and Gemma's norms as w of 1 + w, from a
        // store of their own
        let conv1D = s.family == .gpt2
            ? parameters.entries.filter { $0.shape.count == 2 && !$0.name.hasSuffix("wte.weight") && !$0.name.hasSuffix("wpe.weight") } : []
        let gemmaNorms = parameters.entries.filter { Self.isGemmaNorm($0.name, s) }
        let rewritten = ParameterStore(layout: conv1D.map { ($0.name, [$0.shape[1], $0.shape[0]], false) }
                                               + gemmaNorms.map { ($0.name, $0.shape, false) })
        for entry in conv1D {
            rewritten.set(entry.name, Self.transpose(parameters.tensor(entry.name), rows: entry.shape[0], cols: entry.shape[1]))
        }
        for entry in gemmaNorms { rewritten.set(entry.name, parameters.tensor(entry.name).map { $0 - 1 }) }
        let tensors = parameters.entries.map { entry in
            let (store, written) = rewritten.entry(entry.name).map { (rewritten, $0) } ?? (parameters, entry)
            return SafetensorsWriter.Tensor(name: written.name, shape: written.shape,
                                            data: UnsafeBufferPointer(start: store.base + written.offset, count: written.count))
        }
        try withExtendedLifetime(rewritten) {
            _ = try SafetensorsWriter.writeSharded(tensors, dtype: dtype, metadata: ["format": "pt"], maxShardBytes: maxShardBytes,
                                                   directory: directory)
        }
        try tokenizer?.saveHuggingFace(to: directory, modelMaxLength: s.contextLength)
    }
}

extension TrainableModel {
    /// Gemma 3's `config.json` entries beyond Llama's, in the keys transformers reads for
    /// `gemma3_text` (rope_theta and rope_local_base_freq, rope_scaling for the global layers).
    private func gemmaConfig(into config: inout [String: Any]) throws {
        guard let llama = llamaConfig else { throw LoRAError.invalid("no Gemma configuration was loaded with this model") }
        let s = shape
        config["model_type"] = "gemma3_text"
        config["architectures"] = ["Gemma3ForCausalLM"]
        config["hidden_act"] = nil
        config["use_sliding_window"] = nil
        config["hidden_activation"] = "gelu_pytorch_tanh"
        config["query_pre_attn_scalar"] = Double(s.attentionScale.map { 1 / ($0 * $0) } ?? Float(s.headSize)).rounded()
        config["final_logit_softcapping"] = s.finalLogitSoftcap.map { Double($0) } ?? NSNull()
        config["attn_logit_softcapping"] = NSNull()
        config["rope_local_base_freq"] = Double(llama.localRopeTheta ?? llama.ropeTheta)
        if case let .linear(factor) = llama.ropeScaling { config["rope_scaling"] = ["rope_type": "linear", "factor": Double(factor)] }
        if let layers = s.slidingWindowLayers {
            config["layer_types"] = layers.map { $0 ? "sliding_attention" : "full_attention" }
        }
    }

    /// A model for generation from the current weights (adapters folded into its copies): fp32
    /// weights on BLAS, as a Hugging Face directory would load.
    public func inferenceModel() throws -> any LanguageModel {
        let p = parameters
        /// A linear layer's weight with its adapter folded in (W + s · B·A).
        func merged(_ l: Linear) -> [Float] {
            var w = weightValues(l.weight)
            if let index = l.adapter, let lora {
                let adapter = lora.adapters[index]
                w.withUnsafeMutableBufferPointer {
                    lora.configuration.merge(into: $0.baseAddress!, a: lora.parameters.pointer(adapter.aName),
                                             b: lora.parameters.pointer(adapter.bName), inputs: l.inputs, outputs: l.outputs)
                }
            }
            return w
        }
        switch shape.family {
        case .llama:
            guard var config = llamaConfig else { throw LoRAError.invalid("no Llama configuration was loaded with this model") }
            config.vocabularySize = shape.vocabularySize
            config.tiedEmbeddings = shape.tiedEmbeddings
            let blocks = wiring.blocks.map { b -> LlamaModel.DenseBlock in
                func bias(_ l: Linear) -> [Float]? { p.contains(l.bias) ? p.tensor(l.bias) : nil }
                var block = LlamaModel.DenseBlock(attentionNorm: p.tensor(b.norm1), q: merged(b.attention[0]), k: merged(b.attention[1]),
                                                  v: merged(b.attention[2]), output: merged(b.output), qBias: bias(b.attention[0]),
                                                  kBias: bias(b.attention[1]), vBias: bias(b.attention[2]), ffnNorm: p.tensor(b.norm2),
                                                  gate: merged(b.mlp[0]), up: merged(b.mlp[1]), down: merged(b.down))
                block.queryNorm = b.queryNorm.map(p.tensor); block.keyNorm = b.keyNorm.map(p.tensor)
                block.postAttentionNorm = b.postAttentionNorm.map(p.tensor); block.postFeedForwardNorm = b.postFeedForwardNorm.map(p.tensor)
                return block
            }
            let embedding = p.tensor(wiring.embedding)
            return LlamaModel(config: config, embedding: embedding, blocks: blocks, outputNorm: p.tensor(wiring.finalNorm),
                              outputHead: wiring.head == wiring.embedding ? embedding : p.tensor(wiring.head))
        case .gpt2:
            let s = shape
            let config = GPT2Model.Config(vocabularySize: s.vocabularySize, contextLength: s.contextLength, hiddenSize: s.channels,
                                          intermediateSize: s.intermediateSize, layers: s.layers, heads: s.heads, layerNormEpsilon: s.normEpsilon)
            let blocks = wiring.blocks.map { b in
                GPT2Model.Block(ln1Weight: p.tensor(b.norm1), ln1Bias: p.tensor(Self.biasName(b.norm1)),
                                qkv: merged(b.attention[0]), qkvBias: p.tensor(b.attention[0].bias),
                                proj: merged(b.output), projBias: p.tensor(b.output.bias),
                                ln2Weight: p.tensor(b.norm2), ln2Bias: p.tensor(Self.biasName(b.norm2)),
                                fc: merged(b.mlp[0]), fcBias: p.tensor(b.mlp[0].bias),
                                fcProj: merged(b.down), fcProjBias: p.tensor(b.down.bias))
            }
            return GPT2Model(config: config, tokenEmbedding: p.tensor(wiring.embedding), positionEmbedding: p.tensor(wiring.position),
                             blocks: blocks, finalWeight: p.tensor(wiring.finalNorm), finalBias: p.tensor(Self.biasName(wiring.finalNorm)))
        }
    }
}
