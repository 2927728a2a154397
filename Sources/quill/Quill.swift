import ArgumentParser

@main
struct Quill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quill",
        abstract: "Prepare text, tokenize, fine-tune, evaluate and serve your own writing model.",
        version: "0.1.0",
        subcommands: [PrepareCommand.self, TokenizeCommand.self, GenerateCommand.self, ChatCommand.self, PerplexityCommand.self, BenchCommand.self,
                      ServeCommand.self]
    )
}
