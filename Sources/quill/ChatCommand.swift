import ArgumentParser
import Foundation
import QuillFormats
import QuillModels
import QuillTokenizers

/// An interactive conversation through the model's own chat template.
struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Talk with a model in the terminal (its chat template; /reset clears, /exit or Ctrl-D ends).")

    @OptionGroup var model: ModelOption
    @Option(name: .customLong("system"), help: "A system message.") var system: String?
    @Option(name: .customLong("max-tokens")) var maxTokens = 256
    @Option(help: "0 for greedy.") var temperature: Float = 0.7
    @Option(help: "Seed for reproducible sampling.") var seed: UInt64?

    @OptionGroup var threads: ThreadsOption

    func run() async throws {
        threads.apply()
        let path = try model.path
        let (llama, tokenizer) = try model.load()
        let generator = Generator(model: llama, tokenizer: tokenizer)
        var options = GenerationOptions()
        options.maxNewTokens = maxTokens
        options.sampling.temperature = temperature
        options.sampling.seed = seed
        options.stopTokenIds = tokenizer.endOfTurnTokenIds   // a turn ends there as well as at EOS
        var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        FileHandle.standardOutput.write(Data("quill chat with \((path as NSString).lastPathComponent): /reset clears, /exit ends\n".utf8))
        while true {
            FileHandle.standardOutput.write(Data("> ".utf8))
            guard let line = readLine() else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            if input == "/exit" { break }
            if input == "/reset" { messages.removeAll { $0.role != "system" }; continue }
            messages.append(ChatMessage(role: "user", content: input))
            let result = try generator.generate(promptIds: try tokenizer.encodeChat(messages), options: options) { piece in
                FileHandle.standardOutput.write(Data(piece.utf8))
            }
            FileHandle.standardOutput.write(Data("\n".utf8))
            FileHandle.standardError.write(Data(String(format: "[%d tokens, %.1f tok/s]\n", result.tokens.count, result.tokensPerSecond).utf8))
            messages.append(ChatMessage(role: "assistant", content: result.text))
        }
    }
}
