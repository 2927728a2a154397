import ArgumentParser
import Foundation
import QuillFormats
import QuillModels
import QuillTokenizers

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt, streaming it to the terminal.")

    @OptionGroup var model: ModelOption
    @Option(name: [.customShort("p"), .customLong("prompt")], help: "The prompt.") var prompt: String
    @Flag(help: "Send the prompt as a user turn through the model's chat template.") var chat = false
    // unset options fall back to the model's generation_config.json, then to Quill's defaults
    @Option(name: .customLong("max-tokens"), help: "New tokens at most (default 128).") var maxTokens: Int?
    @Option(help: "0 for greedy (default 0.8).") var temperature: Float?
    @Option(name: .customLong("top-k"), help: "Default 40.") var topK: Int?
    @Option(name: .customLong("top-p"), help: "Default 0.95.") var topP: Float?
    @Option(name: .customLong("min-p"), help: "Default 0.05.") var minP: Float?
    @Option(name: .customLong("repeat-penalty"), help: "Default 1 (off).") var repeatPenalty: Float?
    @Option(help: "Seed for reproducible sampling.") var seed: UInt64?
    @Option(name: .customLong("stop"), help: "Stop at this text (repeatable).") var stops: [String] = []

    @OptionGroup var threads: ThreadsOption

    func run() async throws {
        threads.apply()
        let path = try model.path
        let (llama, tokenizer) = try model.load()
        var options = try GenerationOptions(generationConfig: URL(fileURLWithPath: path).appendingPathComponent("generation_config.json"))
        if let maxTokens { options.maxNewTokens = maxTokens }
        if let temperature { options.sampling.temperature = temperature }
        if let topK { options.sampling.topK = topK }
        if let topP { options.sampling.topP = topP }
        if let minP { options.sampling.minP = minP }
        if let repeatPenalty { options.sampling.repetitionPenalty = repeatPenalty }
        options.sampling.seed = seed
        options.stopStrings = stops
        let promptIds = chat ? try tokenizer.encodeChat([ChatMessage(role: "user", content: prompt)]) : tokenizer.encode(prompt)
        if !chat { FileHandle.standardOutput.write(Data(prompt.utf8)) }
        let result = try Generator(model: llama, tokenizer: tokenizer).generate(promptIds: promptIds, options: options) { piece in
            FileHandle.standardOutput.write(Data(piece.utf8))
        }
        FileHandle.standardOutput.write(Data("\n".utf8))
        let summary = String(format: "%d prompt tokens in %.2f s (%.1f tok/s), %d generated in %.2f s (%.1f tok/s), finish: %@\n",
                             result.promptTokens, result.promptSeconds, Double(result.promptTokens) / max(result.promptSeconds, 1e-9),
                             result.tokens.count, result.generationSeconds, result.tokensPerSecond, result.finishReason.rawValue)
        FileHandle.standardError.write(Data(summary.utf8))
    }
}
