import Foundation
import QuillTraining
import QuillFormats
import QuillModels
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
