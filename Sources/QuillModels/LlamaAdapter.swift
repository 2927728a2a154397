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
        let configuration = try LoRA.Configuration.read(adapterDirectory: directory)
        let path = directory.appendingPathComponent("adapter_model.safetensors").path
        let tensors = try SafetensorsFile(path: path)
        let cfg = config, c = cfg.hiddenSize, r = configuration.rank
        let qDim = cfg.heads * cfg.headSize, kvDim = cfg.kvHeads * cfg.headSize
        var used = Set<String>()

        func adapted(_ weight: Weight, layer: Int, module: String, inputs: Int, outputs: Int) throws -> Weight {
            let prefix = "base_model.model.model.layers.\(layer).\(module)"
            let aName = prefix + ".lora_A.weight", bName = prefix + ".lora_B.weight"
            guard let aInfo = tensors.tensors[aName], let bInfo = tensors.tensors[bName] else { return weight }
            guard aInfo.shape == [r, inputs] else { throw ModelError.shapeMismatch(path: path, name: aName, expected: [r, inputs], found: aInfo.shape) }
            guard bInfo.shape == [outputs, r] else { throw ModelError.shapeMismatch(path: path, name: bName, expected: [outputs, r], found: bInfo.shape) }
            used.formUnion([aName, bName])
            var b = try tensors.floats(bName)
            let rotaryHeads = module == "self_attn.q_proj" ? cfg.heads : module == "self_attn.k_proj" ? cfg.kvHeads : nil
            if let heads = rotaryHeads, cfg.ropePairing == .adjacent {
                // the adapter's rows are in Hugging Face's order; row `to` there is row order[to] here
                let hf = b
                for (to, from) in TrainableModel.rotaryRowOrder(heads: heads, headSize: cfg.headSize).enumerated() {
                    for k in 0..<r { b[from * r + k] = hf[to * r + k] }
                }
            }
            return .adapted(weight, LowRank(a: try tensors.floats(aName), b: b, rank: r, scale: configuration.scale))
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
        let unused = tensors.tensors.keys.filter { !used.contains($0) }.sorted()
        guard unused.isEmpty else {
            throw ModelError.unsupportedValue(path: path, key: unused[0], found: "\(unused.count) tensor(s) this model has no place for",
                                              supported: Self.adaptableModules.map { "model.layers.N.\($0)" })
        }
        guard !used.isEmpty else { throw ModelError.unreadable(path: path, reason: "no LoRA tensors (base_model.model.model.layers.N.*.lora_A/B.weight)") }
        return LlamaModel(config: cfg, embedding: embedding, blocks: blocks, outputNorm: outputNorm, outputHead: outputHead,
                          file: file, weightFormat: weightFormat, denseBatchThreshold: denseBatchThreshold)
    }
}
