import Foundation
import QuillFormats
import QuillTokenizers

/// One entry point for every model source the CLI and server accept.
public enum ModelLoader {
    /// A GGUF file, or a Hugging Face directory (config.json, *.safetensors, tokenizer.json).
    /// `denseBatchThreshold`: quantized weights meet batches of this many rows or more as fp32
    /// (see `LlamaModel.apply`); `.max` keeps every product on the int8 kernels, as llama.cpp does.
    public static func load(_ path: String, weights: LlamaModel.WeightFormat = .quantized,
                            denseBatchThreshold: Int = 32) throws -> (any LanguageModel, Tokenizer) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue {
            let url = URL(fileURLWithPath: path)
            let config = try HuggingFaceConfig.read(url)   // read once; its model_type picks the architecture
            let model: any LanguageModel = config.modelType == "gpt2"
                ? try GPT2Model(huggingFace: url, config: config) : try LlamaModel(huggingFace: url, config: config)
            return (model, try Tokenizer(contentsOf: url))
        }
        let file = try GGUFFile(path: path)
        return (try LlamaModel(gguf: file, weights: weights, denseBatchThreshold: denseBatchThreshold), try Tokenizer(gguf: file))
    }
}
