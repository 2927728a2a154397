import Foundation
import QuillModels
import QuillCore

extension TrainableModel {
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
        // Gemma 3's departures from Llama; the defaults are Llama's.
        /// GeGLU instead of SwiGLU.
        public var feedForwardActivation: LlamaConfig.Activation = .silu
        /// Token embeddings are multiplied by this (Gemma: √C).
        public var embeddingScale: Float = 1
        /// The attention score scale when it is not 1/√HS.
        public var attentionScale: Float?
        /// Logits become cap · tanh(logits / cap).
        public var finalLogitSoftcap: Float?
        /// Which layers attend within `slidingWindow` (nil: all of them, when there is one).
        public var slidingWindowLayers: [Bool]?
        /// The sliding-window layers' own RoPE frequencies (nil: the model's).
        public var localInverseFrequencies: [Float]?
        /// RMSNorm of each query and key head before RoPE, and of the attention and feed-forward
        /// outputs before their residual sums (Gemma's q_norm, k_norm and sandwich norms).
        public var gemmaNorms = false
        public var qDim: Int { heads * headSize }

        public var kvDim: Int { kvHeads * headSize }

        /// The window layer `layer` attends within, nil for all earlier positions.
        func window(layer: Int) -> Int? {
            guard let slidingWindow, let layers = slidingWindowLayers else { return slidingWindow }
            return layers[layer] ? slidingWindow : nil
        }

        /// The RoPE frequencies of layer `layer`.
        func inverseFrequencies(layer: Int) -> [Float] {
            if let local = localInverseFrequencies, slidingWindow != nil, window(layer: layer) != nil { return local }
            return inverseFrequencies
        }
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
        /// Gemma's: the per-head query and key norms [HS], and the norms of the attention and
        /// feed-forward outputs [C].
        var queryNorm: String? = nil, keyNorm: String? = nil
        var postAttentionNorm: String? = nil, postFeedForwardNorm: String? = nil

        /// Every linear layer in the order they run.
        mutating func forEachLinear(_ body: (inout Linear) -> Void) {
            for i in attention.indices { body(&attention[i]) }
            body(&output)
            for i in mlp.indices { body(&mlp[i]) }
            body(&down)
        }
    }

    /// Where a family's weights live under their Hugging Face names: each block's norms and
    /// linear layers in the order they run, the embeddings, the final norm and the head. Both
    /// families are wired from the same layers; only the names and the linears of a block differ.
    struct Wiring {
        var blocks: [Block]
        let embedding, position, finalNorm, head: String

        init(_ shape: Shape) {
            let c = shape.channels, ff = shape.intermediateSize
            switch shape.family {
            case .llama:
                embedding = "model.embed_tokens.weight"; position = ""; finalNorm = "model.norm.weight"
                head = shape.tiedEmbeddings ? embedding : "lm_head.weight"
                blocks = (0..<shape.layers).map { l in
                    let p = "model.layers.\(l).", gemma = shape.gemmaNorms
                    // Gemma's post_attention_layernorm normalizes the attention output; Llama's is
                    // the norm before the feed-forward (Gemma's pre_feedforward_layernorm)
                    return Block(norm1: p + "input_layernorm.weight",
                                 norm2: p + (gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"),
                                 attention: [Linear(module: p + "self_attn.q_proj", inputs: c, outputs: shape.qDim),
                                             Linear(module: p + "self_attn.k_proj", inputs: c, outputs: shape.kvDim),
                                             Linear(module: p + "self_attn.v_proj", inputs: c, outputs: shape.kvDim)],
                                 output: Linear(module: p + "self_attn.o_proj", inputs: shape.qDim, outputs: c),
                                 mlp: [Linear(module: p + "mlp.gate_proj", inputs: c, outputs: ff),
                                       Linear(module: p + "mlp.up_proj", inputs: c, outputs: ff)],
                                 down: Linear(module: p + "mlp.down_proj", inputs: ff, outputs: c),
                                 queryNorm: gemma ? p + "self_attn.q_norm.weight" : nil,
                                 keyNorm: gemma ? p + "self_attn.k_norm.weight" : nil,
                                 postAttentionNorm: gemma ? p + "post_attention_layernorm.weight" : nil,
                                 postFeedForwardNorm: gemma ? p + "post_feedforward_layernorm.weight" : nil)
                }
            case .gpt2:
                embedding = "transformer.wte.weight"; position = "transformer.wpe.weight"
                finalNorm = "transformer.ln_f.weight"; head = embedding
                blocks = (0..<shape.layers).map { l in
                    let p = "transformer.h.\(l)."
                    return Block(norm1: p + "ln_1.weight", norm2: p + "ln_2.weight",
                                 attention: [Linear(module: p + "attn.c_attn", inputs: c, outputs: 3 * c)],
                                 output: Linear(module: p + "attn.c_proj", inputs: c, outputs: c),
                                 mlp: [Linear(module: p + "mlp.c_fc", inputs: c, outputs: ff)],
                                 down: Linear(module: p + "mlp.c_proj", inputs: ff, outputs: c))
                }
            }
        }

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
                    if s.gemmaNorms {
                        items += [(p + "self_attn.q_norm.weight", [s.headSize], false), (p + "self_attn.k_norm.weight", [s.headSize], false)]
                    }
                    items.append((p + "self_attn.o_proj.weight", [c, s.qDim], true))
                    items += (s.gemmaNorms ? ["post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"]
                                           : ["post_attention_layernorm"]).map { (p + $0 + ".weight", [c], false) }
                    items += [(p + "mlp.gate_proj.weight", [ff, c], true), (p + "mlp.up_proj.weight", [ff, c], true),
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
    }
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
