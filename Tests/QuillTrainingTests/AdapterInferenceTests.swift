import Foundation
import QuillTraining
import Testing
import QuillCore
import QuillFormats
@testable import QuillModels

/// Adapters applied at inference (`LlamaModel.applying(adapter:)` beside the weights,
/// `GPT2Model.applying(adapter:)` merged into them: what `quill generate --adapter` and `quill
/// serve --adapter` run) against the same adapter merged into fp32 weights by the training model
/// (`TrainableModel.inferenceModel()`).
@Suite(.serialized) struct AdapterInferenceTests {
    static func logits(_ model: any LanguageModel, _ tokens: [Int32]) throws -> [Float] {
        var cache = model.makeCache(capacity: tokens.count)
        return try model.forward(tokens, cache: &cache, allLogits: true)
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

    static func sameTop1(_ a: [Float], _ b: [Float], vocab: Int) -> Int {
        (0..<(a.count / vocab)).filter { i in
            Sampler.argmax(Array(a[(i * vocab)..<((i + 1) * vocab)])) == Sampler.argmax(Array(b[(i * vocab)..<((i + 1) * vocab)]))
        }.count
    }

    /// Fills every adapter's B (zero in a fresh adapter) with uniform values in ±`scale`, drawn
    /// from `seed`, and saves the adapter as PEFT does; the caller removes the directory.
    static func savedWithRandomB(_ trainable: TrainableModel, seed: UInt64, scale: Float, baseModel: String) throws -> URL {
        let lora = try #require(trainable.lora)
        var rng = SplitMix64(seed: seed)
        for a in lora.adapters {
            lora.parameters.set(a.bName, (0..<(a.outputs * a.rank)).map { _ in (rng.nextUnitFloat() * 2 - 1) * scale })
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("quill-adapter-\(UUID())")
        try trainable.saveAdapter(to: directory, baseModel: baseModel)
        return directory
    }

    static func tinyLlama() throws -> LlamaModel {
        try LlamaModel(huggingFace: URL(fileURLWithPath: TrainingFixtures.checkpoint("llama")))
    }

    /// The adapter HF PEFT itself saved, on the tiny Hugging Face Llama checkpoint.
    @Test func peftAdapterOnAHuggingFaceCheckpoint() throws {
        let directory = TrainingFixtures.checkpoint("llama")
        let adapter = URL(fileURLWithPath: TrainingFixtures.file("llama", "peft-adapter"))
        let trainable = try TrainableModel(loading: directory)
        try trainable.loadAdapter(from: adapter)
        let tokens: [Int32] = [1, 5, 9, 13, 2, 7, 30, 11, 200, 42]
        let merged = try Self.logits(try trainable.inferenceModel(), tokens)
        let model = try Self.tinyLlama()   // no tokenizer in the tiny checkpoint: the model alone
        let beside = try Self.logits(try model.applying(adapter: adapter), tokens)
        let plain = try Self.logits(model, tokens)
        print("tiny llama + PEFT's adapter: beside vs merged max |Δ| \(Self.maxDifference(beside, merged)); the adapter moves logits by \(Self.maxDifference(plain, merged))")
        #expect(Self.maxDifference(beside, merged) < 1e-4)
        #expect(Self.maxDifference(plain, merged) > 1e-3, "the adapter should matter")
    }

    /// GPT-2: the adapter PEFT saved (fan-in-fan-out Conv1D), and one of Quill's on every
    /// projection with random B matrices, merged by `GPT2Model.applying(adapter:)` as
    /// `ModelLoader` does for `--adapter`, against the training model's merge.
    @Test func gpt2AdaptersMergedAtLoad() throws {
        let directory = TrainingFixtures.checkpoint("gpt2")
        let tokens: [Int32] = [1, 5, 9, 13, 2, 7, 30, 11, 200, 42]
        let model = try GPT2Model(huggingFace: URL(fileURLWithPath: directory))
        let plain = try Self.logits(model, tokens)

        let peft = URL(fileURLWithPath: TrainingFixtures.file("gpt2", "peft-adapter"))
        let trained = try TrainableModel(loading: directory)
        try trained.loadAdapter(from: peft)
        let peftMerged = try Self.logits(try trained.inferenceModel(), tokens)
        let peftApplied = try Self.logits(try model.applying(adapter: peft), tokens)
        print("tiny gpt2 + PEFT's adapter: applied vs merged max |Δ| \(Self.maxDifference(peftApplied, peftMerged))")
        #expect(Self.maxDifference(peftApplied, peftMerged) < 1e-4)

        let trainable = try TrainableModel(loading: directory)
        try trainable.attach(LoRAConfiguration(rank: 4, alpha: 8, targets: ["c_attn", "c_proj", "c_fc"]))
        #expect(trainable.lora?.adapters.count == 4 * model.config.layers)   // c_proj names both attn.c_proj and mlp.c_proj
        let saved = try Self.savedWithRandomB(trainable, seed: 5, scale: 0.2, baseModel: directory)
        defer { try? FileManager.default.removeItem(at: saved) }
        let merged = try Self.logits(try trainable.inferenceModel(), tokens)
        let applied = try Self.logits(try model.applying(adapter: saved), tokens)
        print("tiny gpt2 + random adapter on every projection: applied vs merged max |Δ| \(Self.maxDifference(applied, merged)); the adapter moves logits by \(Self.maxDifference(plain, merged))")
        #expect(Self.maxDifference(applied, merged) < 1e-4)
        #expect(Self.maxDifference(plain, merged) > 1e-2, "the adapter should matter")
    }

    /// SmolLM2's GGUF (llama.cpp's permuted q/k rows) with an adapter on every projection whose
    /// B matrices are random (a fresh adapter's are zero): dense weights give the merged logits;
    /// the int8 kernels, as `quill serve --adapter` runs them, the same top-1 almost everywhere.
    @Test func adapterOnAPermutedGGUF() throws {
        let path = QuillCache.defaultModel.path
        let trainable = try TrainableModel(loading: path)
        try trainable.attach(LoRAConfiguration(rank: 4, alpha: 8, targets: LlamaModel.adaptableModules.map { String($0.split(separator: ".").last!) }))
        let directory = try Self.savedWithRandomB(trainable, seed: 7, scale: 0.05, baseModel: path)
        defer { try? FileManager.default.removeItem(at: directory) }

        let tokens: [Int32] = [504, 3458, 282, 4649, 314, 1345, 30, 378, 5765, 253, 1342, 6096, 281, 2915, 28, 527]
        let merged = try Self.logits(try trainable.inferenceModel(), tokens)
        let dense = try Self.logits(try ModelLoader.load(path, adapter: directory, weights: .dense).0, tokens)
        let (quantizedModel, _) = try ModelLoader.load(path, adapter: directory)
        let quantized = try Self.logits(quantizedModel, tokens)
        let plain = try Self.logits(try ModelLoader.load(path, weights: .dense).0, tokens)
        let vocab = quantizedModel.vocabularySize
        let top1 = Self.sameTop1(quantized, merged, vocab: vocab)
        print("SmolLM2 GGUF + random adapter: dense beside vs merged max |Δ| \(Self.maxDifference(dense, merged)); int8 beside: same top-1 \(top1)/\(tokens.count), max |Δ| \(Self.maxDifference(quantized, merged)); the adapter moves logits by \(Self.maxDifference(plain, merged))")
        #expect(Self.maxDifference(dense, merged) < 1e-3)
        #expect(Self.maxDifference(plain, merged) > 0.1, "the adapter should matter")
        #expect(Double(top1) >= 0.85 * Double(tokens.count))
    }

    /// An adapter with a tensor the model has no place for is refused, naming it.
    @Test func adapterForAnotherModuleIsRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("quill-adapter-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let source = URL(fileURLWithPath: TrainingFixtures.file("llama", "peft-adapter"))
        try FileManager.default.copyItem(at: source.appendingPathComponent("adapter_config.json"), to: directory.appendingPathComponent("adapter_config.json"))
        let store = ParameterStore(layout: [("base_model.model.lm_head.lora_A.weight", [8, 64], true)])
        try store.write(to: directory.appendingPathComponent("adapter_model.safetensors"))
        let model = try Self.tinyLlama()
        #expect(throws: ModelError.self) { _ = try model.applying(adapter: directory) }
        do { _ = try model.applying(adapter: directory) } catch {
            #expect("\(error)".contains("lm_head"), "\(error)")
        }
    }
}
