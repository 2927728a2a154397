// A fine-tuned model served at its base's speed: the LoRA adapter sits beside each frozen weight
// instead of being merged into it, so quantized weights keep their int8 kernels and only the
// rank-r product (a few percent of the work) runs in fp32. llama.cpp applies `--lora` the same way.

import Foundation
import QuillCore
import QuillFormats

/// A LoRA adapter beside a frozen weight: y = W·x + s · B·(A·x), with A [r, in] and B [out, r].
struct LowRank: Sendable {
    let a: [Float], b: [Float]
    let rank: Int
    let scale: Float

    /// out[N, OC] += s · (x[N, C] · Aᵀ) · Bᵀ
    func add(to out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, n: Int, c: Int, oc: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: n * rank) { t in
            Matmul.forward(t.baseAddress!, x, a, nil, n: n, c: c, oc: rank)
            Matmul.gemm(out, ldc: oc, t.baseAddress!, lda: rank, b, ldb: rank, m: n, n: oc, k: rank,
                        alpha: scale, beta: 1, transposeB: true)
        }
    }
}

extension LlamaModel {
    /// The projections an adapter may target, by PEFT module name.
    static let adaptableModules = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                   "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

    /// This model with a PEFT LoRA adapter directory (as `quill train` or PEFT saves it) applied
    /// beside its weights, which stay as they are. Adapters may target the attention and MLP
    /// projections; in GGUF `llama` files, whose q/k rows llama.cpp permuted, the adapter's
    /// q/k output rows are permuted the same way. Any other tensor in the adapter (an
    /// `lm_head` or embedding adapter, `modules_to_save`) is an error that names it.
    public func applying(adapter directory: URL) throws -> LlamaModel {
        var adapter = try PEFTAdapter(directory: directory)
        let cfg = config, c = cfg.hiddenSize, r = adapter.configuration.rank
        let qDim = cfg.heads * cfg.headSize, kvDim = cfg.kvHeads * cfg.headSize

        func adapted(_ weight: Weight, layer: Int, module: String, inputs: Int, outputs: Int) throws -> Weight {
            guard let pair = try adapter.pair("model.layers.\(layer).\(module)", inputs: inputs, outputs: outputs) else { return weight }
            var b = pair.b
            let rotaryHeads = module == "self_attn.q_proj" ? cfg.heads : module == "self_attn.k_proj" ? cfg.kvHeads : nil
            if let heads = rotaryHeads, cfg.ropePairing == .adjacent {
                // the adapter's rows are in Hugging Face's order; row `to` there is row order[to] here
                let hf = b
                for (to, from) in LlamaConfig.rotaryRowOrder(heads: heads, headSize: cfg.headSize).enumerated() {
                    for k in 0..<r { b[from * r + k] = hf[to * r + k] }
                }
            }
            return .adapted(weight, LowRank(a: pair.a, b: b, rank: r, scale: adapter.configuration.scale))
        }

        let ff = cfg.intermediateSize
        let blocks = try self.blocks.enumerated().map { l, b in
            Block(attentionNorm: b.attentionNorm,
                  q: try adapted(b.q, layer: l, module: "self_attn.q_proj", inputs: c, outputs: qDim),
                  k: try adapted(b.k, layer: l, module: "self_attn.k_proj", inputs: c, outputs: kvDim),
                  v: try adapted(b.v, layer: l, module: "self_attn.v_proj", inputs: c, outputs: kvDim),
                  output: try adapted(b.output, layer: l, module: "self_attn.o_proj", inputs: qDim, outputs: c),
                  qBias: b.qBias, kBias: b.kBias, vBias: b.vBias, ffnNorm: b.ffnNorm,
                  gate: try adapted(b.gate, layer: l, module: "mlp.gate_proj", inputs: c, outputs: ff),
                  up: try adapted(b.up, layer: l, module: "mlp.up_proj", inputs: c, outputs: ff),
                  down: try adapted(b.down, layer: l, module: "mlp.down_proj", inputs: ff, outputs: c))
        }
        try adapter.checkEverythingUsed(modules: Self.adaptableModules.map { "model.layers.N.\($0)" })
        return LlamaModel(config: cfg, embedding: embedding, blocks: blocks, outputNorm: outputNorm, outputHead: outputHead,
                          file: file, weightFormat: weightFormat, denseBatchThreshold: denseBatchThreshold)
    }
}
