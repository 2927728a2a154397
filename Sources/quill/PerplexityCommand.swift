import ArgumentParser
import Foundation
import QuillModels

/// `quill perplexity`: llama-perplexity's protocol (see `Perplexity`), its output shape too, so
/// the two can be run on the same file and compared.
struct PerplexityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a model on a text file (llama-perplexity's protocol: chunks, second halves scored).")

    @OptionGroup var model: ModelOption
    @Option(name: [.customShort("f"), .customLong("file")], help: "UTF-8 text file to score.") var file: String
    @Option(name: [.customShort("c"), .customLong("ctx-size")], help: "Tokens per chunk.") var context = 512
    @Option(name: .customLong("chunks"), help: "Chunks at most (default: all).") var chunks: Int?
    @Flag(help: "Run every weight in fp32 (dequantized) instead of the int8 kernels.") var dense = false
    @Flag(name: .customLong("int8-prompts"),
          help: "Quantized weights stay on the int8 kernels for whole chunks too, as llama.cpp runs them (default: fp32 on the dequantized weights, faster and closer to exact).")
    var int8Prompts = false

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read \(file)")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ValidationError("\(file) is not valid UTF-8")
        }
        let path = try model.path
        let (llama, tokenizer) = try model.load(weights: dense ? .dense : .quantized, denseBatchThreshold: int8Prompts ? .max : 32)
        let protocolDescription = "chunks of \(context) tokens, scoring the last \(context - context / 2 - 1) of each"
        FileHandle.standardError.write(Data("\((path as NSString).lastPathComponent): \(protocolDescription)\n".utf8))
        let start = Date()
        let result = try Perplexity(context: context, maxChunks: chunks)
            .measure(llama, text: text, tokenizer: tokenizer) { running in
                FileHandle.standardOutput.write(Data(String(format: "[%d]%.4f,", running.chunks, running.perplexity).utf8))
            }
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "\nFinal estimate: PPL = %.4f +/- %.5f (%d chunks, %d scored tokens, %.1f s, %.0f tokens/s)",
                     result.perplexity, result.uncertainty, result.chunks, result.scoredTokens, seconds,
                     Double(result.chunks * context) / seconds))
    }
}
