import Foundation
import Testing
import QuillFormats
import QuillModels

/// Tiny random Hugging Face checkpoints (Fixtures/make_tiny_checkpoints.py) against the logits
/// PyTorch computed: GPT-2 (Conv1D weights, learned positions, tanh GELU), Llama, Llama with Llama 3.1 rope scaling, Mistral (sliding window, sharded
/// safetensors) and Qwen2 (q/k/v biases); in one pass, and token by token through the KV cache.
@Suite struct HuggingFaceParityTests {
    struct Expected: Decodable { let tokens: [Int32]; let logits: [[Float]] }

    @Test(arguments: ["gpt2", "llama", "llama3-scaled", "mistral", "qwen2"])
    func logitsMatchPyTorch(_ name: String) throws {
        let dir = try #require(Bundle.module.url(forResource: "Fixtures/tiny-checkpoints/\(name)", withExtension: nil))
        let model: any LanguageModel = name == "gpt2" ? try GPT2Model(huggingFace: dir) : try LlamaModel(huggingFace: dir)
        let expected = try JSONDecoder().decode([Expected].self, from: Data(contentsOf: dir.appendingPathComponent("expected.json")))
        let vocab = model.vocabularySize
        var maxPrefill: Float = 0, maxCached: Float = 0
        for prompt in expected {
            var cache = model.makeCache()
            let all = try model.forward(prompt.tokens, cache: &cache, allLogits: true)
            for (t, row) in prompt.logits.enumerated() {
                for v in 0..<vocab { maxPrefill = max(maxPrefill, abs(all[t * vocab + v] - row[v])) }
            }
            // the same positions again: two tokens at once, then one at a time through the cache
            var stepCache = model.makeCache()
            var step = try model.forward(Array(prompt.tokens.prefix(2)), cache: &stepCache)
            for t in 2...prompt.tokens.count {
                for v in 0..<vocab { maxCached = max(maxCached, abs(step[v] - prompt.logits[t - 1][v])) }
                if t < prompt.tokens.count { step = try model.forward([prompt.tokens[t]], cache: &stepCache) }
            }
        }
        print("\(name): max |Δlogit| vs PyTorch \(maxPrefill) (one pass), \(maxCached) (KV cache, token by token)")
        #expect(maxPrefill < 1e-4)
        #expect(maxCached < 1e-4)
    }

    @Test func brokenSafetensorsSayWhatIsWrong() throws {
        let dir = try #require(Bundle.module.url(forResource: "Fixtures/tiny-checkpoints/qwen2", withExtension: nil))
        let data = try Data(contentsOf: dir.appendingPathComponent("model.safetensors"))
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("quill-cut-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: cut) }
        try data.prefix(data.count / 2).write(to: cut)
        let message: String
        do { _ = try SafetensorsFile(path: cut.path); message = "loaded" } catch { message = "\(error)" }
        #expect(message.contains("outside the file"), "\(message)")
        print("truncated safetensors: \(message)")
        try Data([1, 0, 0, 0, 0, 0, 0, 0, 0x7B]).write(to: cut)
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: cut.path) }
    }
}
