import Foundation
import Testing
import QuillFormats
import QuillModels
import QuillTokenizers

/// Broken model files give errors that name the file and the tensor or key; never a crash.
@Suite struct ModelLoadingErrorTests {
    static func path(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures/bad-models/\(name)", withExtension: nil)!.path
    }

    @Test func tinyModelLoadsAndRuns() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: Self.path("tiny-llama.gguf")))
        var cache = model.makeCache()
        let logits = try model.forward([1, 2, 3], cache: &cache)
        #expect(logits.count == 48 && logits.allSatisfy(\.isFinite))
    }

    @Test func missingTensorIsNamed() throws {
        let path = Self.path("missing-tensor.gguf")
        #expect(throws: ModelError.missingTensor(path: path, name: "blk.0.ffn_up.weight")) {
            try LlamaModel(gguf: GGUFFile(path: path))
        }
    }

    @Test func wrongShapeSaysExpectedAndFound() throws {
        let path = Self.path("wrong-shape.gguf")
        #expect(throws: ModelError.shapeMismatch(path: path, name: "blk.0.attn_q.weight", expected: [32, 32], found: [32, 16])) {
            try LlamaModel(gguf: GGUFFile(path: path))
        }
    }

    @Test func unknownArchitectureListsTheSupportedOnes() throws {
        let path = Self.path("unknown-arch.gguf")
        do {
            _ = try LlamaModel(gguf: GGUFFile(path: path))
            Issue.record("loaded an rwkv6 file")
        } catch let error as ModelError {
            #expect(error == .unsupportedArchitecture(path: path, found: "rwkv6", supported: LlamaConfig.supportedArchitectures))
            print("unknown architecture: \(error)")
        }
    }

    /// Found by the hf-checkpoint fuzz target: `"num_attention_heads": 0` divided by zero. Every size
    /// is positive, and key/value heads divide the attention heads (they are shared in groups).
    @Test func configSizesMustBePositiveAndGroupsEven() throws {
        let good: [String: Any] = ["model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                   "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100]
        #expect(try LlamaConfig(huggingFace: good, path: "config.json").headSize == 16)
        for (key, value) in [("num_attention_heads", 0), ("hidden_size", -64), ("num_key_value_heads", 0), ("head_dim", 0), ("vocab_size", 0)] {
            var json = good
            json[key] = value
            #expect(throws: ModelError.unsupportedValue(path: "config.json", key: key, found: "\(value)", supported: ["a positive size"])) {
                try LlamaConfig(huggingFace: json, path: "config.json")
            }
        }
        var uneven = good
        uneven["num_key_value_heads"] = 3
        #expect(throws: ModelError.unsupportedValue(path: "config.json", key: "num_key_value_heads", found: "3 for 4 attention heads",
                                                   supported: ["a divisor of the attention head count"])) {
            try LlamaConfig(huggingFace: uneven, path: "config.json")
        }
    }

    /// Found by the gguf fuzz target: `llama.block_count` 16,711,681 in a file of 11 tensors made the
    /// loader reserve room for that many blocks (6 GB) before it looked for the first one. A layer
    /// count the file cannot hold is refused first.
    @Test func layerCountBeyondTheFileIsRefused() throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: Self.path("tiny-llama.gguf")))
        let key = Data("llama.block_count".utf8)
        let at = try #require(bytes.range(of: key)).upperBound + 4   // after the key, its uint32 value type
        withUnsafeBytes(of: UInt32(16_711_681).littleEndian) { bytes.replaceSubrange(at..<(at + 4), with: $0) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("quill-block-count-\(getpid()).gguf").path
        try bytes.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = ModelError.unreadable(path: path, reason: "llama.block_count says 16711681 layers, but the model holds only 11 tensors")
        #expect(throws: error) { try LlamaModel(gguf: GGUFFile(path: path)) }
    }

    @Test func promptLongerThanTheContextIsAnError() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: Self.path("tiny-llama.gguf")))
        var cache = model.makeCache()
        #expect(throws: ModelError.contextOverflow(tokens: 17, context: 16)) {
            try model.forward(Array(repeating: 1, count: 17), cache: &cache)
        }
    }

    /// Zero tokens is an error for both architectures (it once read the head's rows -1..<0), and the
    /// generator refuses an empty prompt before running anything.
    @Test func emptyInputIsAnError() throws {
        let llama = try LlamaModel(gguf: GGUFFile(path: Self.path("tiny-llama.gguf")))
        let gpt2Path = try #require(Bundle.module.url(forResource: "Fixtures/tiny-gpt2", withExtension: "gguf")).path
        for model in [llama, try ModelLoader.model(gguf: GGUFFile(path: gpt2Path))] as [any LanguageModel] {
            var cache = model.makeCache()
            #expect(throws: ModelError.emptyPrompt) { try model.forward([], cache: &cache) }
            #expect(cache.count == 0)
            let tokenizer = try Tokenizer(tokenizerJSON: Data(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#.utf8))
            #expect(throws: ModelError.emptyPrompt) {
                try Generator(model: model, tokenizer: tokenizer).generate(prompt: "", options: GenerationOptions())
            }
        }
    }

    @Test func tokenOutsideTheVocabularyIsAnError() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: Self.path("tiny-llama.gguf")))
        var cache = model.makeCache()
        #expect(throws: ModelError.self) { try model.forward([48], cache: &cache) }
    }

    @Test func truncatedModelFileIsAClearError() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.path("tiny-llama.gguf")))
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("quill-cut-\(getpid()).gguf")
        defer { try? FileManager.default.removeItem(at: cut) }
        try data.prefix(data.count - 100).write(to: cut)
        #expect(throws: GGUFError.self) { try LlamaModel(gguf: GGUFFile(path: cut.path)) }
    }
}
