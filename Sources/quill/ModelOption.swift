import Foundation
import ArgumentParser
import QuillFormats
import QuillModels
import QuillTokenizers

/// `-m/--model` as generate, chat and bench take it.
struct ModelOption: ParsableArguments {
    @Option(name: [.customShort("m"), .customLong("model")],
            help: "GGUF file, Hugging Face directory, or the name of a model in the cache (default: SmolLM2 from the cache).")
    var model: String?
    @Option(help: "A PEFT LoRA adapter directory (as quill train writes it or PEFT saves it) to apply beside the model's weights.")
    var adapter: String?

    /// The file or directory `-m` names.
    var path: String { get throws { try Self.path(model) } }

    func load(weights: LlamaModel.WeightFormat = .quantized, denseBatchThreshold: Int = 32) throws -> (any LanguageModel, Tokenizer) {
        try Self.load(model, adapter: adapter, weights: weights, denseBatchThreshold: denseBatchThreshold)
    }

    static func path(_ model: String?) throws -> String { try model.map(QuillCache.resolveModel) ?? QuillCache.defaultModel.path }

    static func load(_ model: String?, adapter: String?, weights: LlamaModel.WeightFormat = .quantized,
                     denseBatchThreshold: Int = 32) throws -> (any LanguageModel, Tokenizer) {
        if let adapter {
            return try ModelLoader.load(try path(model), adapter: URL(fileURLWithPath: adapter), weights: weights, denseBatchThreshold: denseBatchThreshold)
        }
        return try ModelLoader.load(try path(model), weights: weights, denseBatchThreshold: denseBatchThreshold)
    }
}
