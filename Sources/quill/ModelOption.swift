import ArgumentParser
import QuillFormats
import QuillModels
import QuillTokenizers

/// `-m/--model` as generate, chat and bench take it.
struct ModelOption: ParsableArguments {
    @Option(name: [.customShort("m"), .customLong("model")],
            help: "GGUF file or Hugging Face directory (default: SmolLM2 from the cache).")
    var model: String?

    var path: String { model ?? QuillCache.defaultModel.path }

    func load(weights: LlamaModel.WeightFormat = .quantized, denseBatchThreshold: Int = 32) throws -> (any LanguageModel, Tokenizer) {
        try ModelLoader.load(path, weights: weights, denseBatchThreshold: denseBatchThreshold)
    }
}
