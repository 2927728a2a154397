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

/// A model as the command line paired it with its adapter (`-m base.gguf -m base.gguf --adapter
/// runs/x/adapter`: the base, then the base with its fine-tune), named after its files.
struct ModelSystem {
    var model: String?
    var adapter: String?
    var name: String {
        let base = model.map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension } ?? "default"
        guard let adapter else { return base }
        let url = URL(fileURLWithPath: adapter).standardizedFileURL
        let label = url.lastPathComponent == "adapter" ? url.deletingLastPathComponent().lastPathComponent : url.lastPathComponent
        return "\(base)+\(label)"
    }

    /// Pairs each --adapter with the -m before it, in command-line order (the arguments after
    /// the first of `commands`); `models` and `adapters` are what the parser collected.
    static func paired(models: [String], adapters: [String], after commands: [String]) throws -> [ModelSystem] {
        var systems: [ModelSystem] = []
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let at = arguments.firstIndex(where: commands.contains) { arguments.removeFirst(at + 1) }
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            func value(_ names: [String]) -> String? {
                for name in names {
                    if argument == name, i + 1 < arguments.count { i += 1; return arguments[i] }
                    if argument.hasPrefix(name + "=") { return String(argument.dropFirst(name.count + 1)) }
                }
                return nil
            }
            if argument == "--" { break }
            if let model = value(["-m", "--model"]) {
                systems.append(ModelSystem(model: model))
            } else if let adapter = value(["--adapter"]) {
                if systems.isEmpty { systems.append(ModelSystem(model: nil)) }
                guard systems[systems.count - 1].adapter == nil else {
                    throw ValidationError("--adapter \(adapter): the model before it already has an adapter; repeat -m for another")
                }
                systems[systems.count - 1].adapter = adapter
            }
            i += 1
        }
        guard systems.count == models.count || (models.isEmpty && systems.count == 1), systems.count >= adapters.count else {
            throw ValidationError("could not pair models and adapters; give each --adapter right after its -m")
        }
        return systems.isEmpty ? [ModelSystem(model: nil)] : systems
    }
}
