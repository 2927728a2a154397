import Foundation
import QuillTraining
import QuillFormats
import QuillModels
import QuillCore
import Testing

/// `saveHuggingFace`, what `quill train` writes at the end of a full fine-tune, against the
/// checkpoint transformers wrote: loaded and saved again, every tensor comes back under the same
/// name with the same shape and the same bits (GPT-2's Conv1D weights transposed back to
/// transformers' [in, out] layout), config.json keeps the sizes, and the saved directory loads
/// into a model with the same logits. (A sharded source, like the tiny Mistral's three files,
/// comes back as one model.safetensors; Gemma's norms, trained as 1 + w, come back within float32's
/// rounding at 1.)
@Suite("Export of trained weights") struct ExportTests {
    @Test(arguments: TrainingParityTests.models)
    func savedCheckpointEqualsItsSource(_ name: String) throws {
        let source = TrainingFixtures.checkpoint(name)
        let model = try TrainableModel(loading: source)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("quill-export-\(name)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        try model.saveHuggingFace(to: out)

        let expected = try SafetensorsCheckpoint(directory: URL(fileURLWithPath: source))   // sharded or not
        let saved = try SafetensorsFile(path: out.appendingPathComponent("model.safetensors").path)
        #expect(saved.metadata["format"] == "pt")
        let names = Set(expected.files.flatMap(\.tensors.keys))
        #expect(Set(saved.tensors.keys) == names)
        for tensor in names.sorted() {
            guard let written = saved.tensors[tensor], let info = expected.info(tensor) else { continue }
            #expect(written.shape == info.shape, "\(tensor): shape \(written.shape), expected \(info.shape)")
            if name.hasPrefix("gemma"), tensor.hasSuffix("norm.weight") {
                // held as 1 + w while training: w comes back rounded to float32's step at 1
                let error = zip(try saved.floats(tensor), try expected.floats(tensor)).map { abs($0 - $1) }.max() ?? 0
                #expect(error <= Float.ulpOfOne, "\(tensor): values differ by \(error)")
            } else {
                #expect(try saved.floats(tensor) == expected.floats(tensor), "\(tensor): values differ")
            }
        }

        let config = { (path: String) throws -> [String: Any] in
            try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }
        let want = try config(source + "/config.json"), got = try config(out.appendingPathComponent("config.json").path)
        let sizes = name == "gpt2" ? ["vocab_size", "n_embd", "n_layer", "n_head", "n_positions"]
                                   : ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                      "num_key_value_heads", "max_position_embeddings"]
        for key in sizes {
            #expect(got[key] as? Int == want[key] as? Int, "config.json \(key): \(got[key] ?? "missing"), expected \(want[key] ?? "missing")")
        }
        #expect(got["model_type"] as? String == want["model_type"] as? String)

        let tokens: [Int32] = [1, 5, 9, 2, 7, 3, 11, 4]
        let before = try model.logits(tokens: tokens, batch: 1, length: tokens.count)
        let after = try TrainableModel(loading: out.path).logits(tokens: tokens, batch: 1, length: tokens.count)
        #expect(after == before)
    }
}

/// `saveGGUF` and `saveGGUFAdapter`, what `quill export --to gguf` and `--to gguf-lora` write,
/// read back by Quill's GGUF loader: in F32 every parameter returns with the same bits (so the
/// names, shapes and llama's q/k permutation are undone exactly) and the logits are equal; in F16
/// each weight matrix is the fp32 one rounded to half precision. The hyperparameters written are
/// the ones llama.cpp reads; one it has no key for is refused.
@Suite("Export to GGUF") struct GGUFExportTests {
    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("quill-gguf-export-\(getpid())-\(name)").path
    }

    @Test(arguments: TrainingParityTests.models)
    func readBackEqualsTheModel(_ name: String) throws {
        let model = try TrainableModel(loading: TrainingFixtures.checkpoint(name))
        if name == "gemma3-capped" {
            // query_pre_attn_scalar 24 with head_dim 16: llama.cpp has no key for it, so no file is made
            #expect(throws: ModelError.self) { try model.ggufModelMetadata(name: name, source: name) }
            return
        }
        let metadata = try model.ggufModelMetadata(name: name, source: name)
        let tokens: [Int32] = [1, 5, 9, 2, 7, 3, 11, 4]
        let before = try model.logits(tokens: tokens, batch: 1, length: tokens.count)
        for fileType in [GGUFFileType.f32, .f16] {
            let path = Self.temporary("\(name).\(fileType.rawValue).gguf")
            defer { try? FileManager.default.removeItem(atPath: path) }
            try model.saveGGUF(to: path, metadata: metadata, options: .init(fileType: fileType), source: name)
            let file = try GGUFFile(path: path)
            #expect(file.metadata["general.architecture"]?.string == model.ggufArchitecture)
            let back = try TrainableModel(loading: path)
            #expect(back.shape.layers == model.shape.layers && back.shape.heads == model.shape.heads
                    && back.shape.kvHeads == model.shape.kvHeads && back.shape.headSize == model.shape.headSize
                    && back.shape.intermediateSize == model.shape.intermediateSize && back.shape.normEpsilon == model.shape.normEpsilon)
            #expect(back.shape.inverseFrequencies == model.shape.inverseFrequencies, "\(name): rope frequencies")
            #expect(back.shape.slidingWindowLayers == model.shape.slidingWindowLayers)
            let after = try back.logits(tokens: tokens, batch: 1, length: tokens.count)
            // F16: each weight matrix is the fp32 one rounded to half precision (norms stay fp32)
            let names = TrainableModel.ggufNames(model.shape)
            let differing = model.parameters.entries.filter { entry in
                let original = model.parameters.tensor(entry.name)
                let half = file.tensor(named: names[entry.name] ?? "")?.type == .f16
                let expected = half ? original.map { floatFromHalf(halfFromFloat($0)) } : original
                return back.parameters.tensor(entry.name) != expected
            }
            #expect(differing.isEmpty, "\(name) \(fileType.rawValue): \(differing.prefix(3).map(\.name)) differ")
            if fileType == .f32 {
                let error = zip(after, before).map { abs($0 - $1) }.max() ?? 0
                #expect(error == 0, "\(name): logits differ by \(error) after the round trip")
            }
        }
    }

    @Test func adapterTensorsAsLlamaCppNamesThem() throws {
        let model = try TrainableModel(loading: TrainingFixtures.checkpoint("llama"))
        try model.attach(LoRAConfiguration(rank: 4, alpha: 8, targets: ["q_proj", "v_proj"], rsLoRA: true), seed: 3)
        let path = Self.temporary("adapter.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.saveGGUFAdapter(to: path, name: "test", source: "llama")
        let file = try GGUFFile(path: path)
        #expect(file.metadata["general.type"]?.string == "adapter" && file.metadata["adapter.type"]?.string == "lora")
        // rsLoRA's α/√r as llama.cpp's α'/r
        #expect(abs(Float(file.metadata["adapter.lora.alpha"]?.double ?? 0) - 8 * 2) < 1e-6)
        let s = model.shape
        #expect(file.tensor(named: "blk.0.attn_q.weight.lora_a")?.dimensions == [s.channels, 4])
        #expect(file.tensor(named: "blk.0.attn_q.weight.lora_b")?.dimensions == [4, s.qDim])
        #expect(file.tensor(named: "blk.0.attn_v.weight.lora_b")?.dimensions == [4, s.kvDim])
        #expect(file.tensors.count == 4 * s.layers)
    }
}
