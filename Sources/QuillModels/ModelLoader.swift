import Foundation
import QuillFormats
import QuillTokenizers

/// One entry point for every model source the CLI and server accept.
public enum ModelLoader {
    /// The model with a PEFT LoRA adapter (as `quill train` or PEFT saves it) applied. Llama-family
    /// models keep their weights as loaded (quantized ones on the int8 kernels) with the adapter
    /// beside them (`LlamaModel.applying(adapter:)`); GPT-2 gets the adapter merged into its fp32
    /// weights (`GPT2Model.applying(adapter:)`).
    public static func load(_ path: String, adapter: URL, weights: LlamaModel.WeightFormat = .quantized,
                            denseBatchThreshold: Int = 32) throws -> (any LanguageModel, Tokenizer) {
        let (model, tokenizer) = try load(path, weights: weights, denseBatchThreshold: denseBatchThreshold)
        switch model {
        case let llama as LlamaModel: return (try llama.applying(adapter: adapter), tokenizer)
        case let gpt2 as GPT2Model: return (try gpt2.applying(adapter: adapter), tokenizer)
        default: throw ModelError.unsupportedValue(path: adapter.path, key: "base model", found: "\(type(of: model))",
                                                   supported: ["Llama family", "GPT-2"])
        }
    }

    /// A GGUF file, or a Hugging Face directory (config.json, *.safetensors, tokenizer.json).
    /// `denseBatchThreshold`: quantized weights in their file's row layout meet batches of this
    /// many rows or more as fp32 (see `LlamaModel.apply`); `.max` keeps every product on the int8
    /// kernels, as llama.cpp does.
    public static func load(_ path: String, weights: LlamaModel.WeightFormat = .quantized,
                            denseBatchThreshold: Int = 32) throws -> (any LanguageModel, Tokenizer) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue {
            let url = URL(fileURLWithPath: path)
            let config = try HuggingFaceConfig.read(url)   // read once; its model_type picks the architecture
            let model: any LanguageModel
            switch config.modelType {
            case "gpt2": model = try GPT2Model(huggingFace: url, config: config)
            case let type where LlamaConfig.supportedModelTypes.contains(type): model = try LlamaModel(huggingFace: url, config: config)
            case let type: throw ModelError.unsupportedArchitecture(path: config.path, found: type, supported: supportedModelTypes)
            }
            return (model, try Tokenizer(contentsOf: url))
        }
        let file = try GGUFFile(path: path)
        return (try model(gguf: file, weights: weights, denseBatchThreshold: denseBatchThreshold), try Tokenizer(gguf: file))
    }

    /// Every `general.architecture` (GGUF) Quill runs.
    public static let supportedArchitectures = ["gpt2"] + LlamaConfig.supportedArchitectures
    /// Every `model_type` (config.json) Quill runs.
    public static let supportedModelTypes = ["gpt2"] + LlamaConfig.supportedModelTypes

    /// The architecture a GGUF file names, loaded.
    public static func model(gguf file: GGUFFile, weights: LlamaModel.WeightFormat = .quantized,
                             denseBatchThreshold: Int = 32) throws -> any LanguageModel {
        switch try file.string("general.architecture") {
        case "gpt2": return try GPT2Model(gguf: file)
        case let arch where LlamaConfig.supportedArchitectures.contains(arch):
            return try LlamaModel(gguf: file, weights: weights, denseBatchThreshold: denseBatchThreshold)
        case let arch: throw ModelError.unsupportedArchitecture(path: file.path, found: arch, supported: supportedArchitectures)
        }
    }
}
