import QuillCore
import ArgumentParser
import Foundation
import QuillData

/// `quill perplexity`: `quill eval --protocol llama-cpp` under its old name, printing the same
/// lines (llama-perplexity's shape, so the two can be run on the same file and compared).
struct PerplexityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a model on a text file (llama-perplexity's protocol; the same as quill eval --protocol llama-cpp).")

    @OptionGroup var model: ModelOption
    @Option(name: [.customShort("f"), .customLong("file")], help: "UTF-8 text file to score.") var file: String
    @Option(name: [.customShort("c"), .customLong("ctx-size")], help: "Tokens per chunk.") var context = 512
    @Option(name: .customLong("chunks"), help: "Chunks at most (default: all).") var chunks: Int?
    @Flag(help: "Run every weight in fp32 (dequantized) instead of the int8 kernels.") var dense = false
    @Flag(name: .customLong("int8-prompts"),
          help: "Weights in a type without an interleaved int8 layout (Q5_1, Q5_K, ...) stay on their row kernels for whole chunks too, as llama.cpp runs them (default: fp32 on the dequantized weights, faster there).")
    var int8Prompts = false

    @OptionGroup var threads: ThreadsOption

    func run() async throws {
        threads.apply()
        ProcessMemory.reuseLargeBlocks()
        let text = try ExampleRecords.text(file)
        let (llama, tokenizer) = try model.load(weights: dense ? .dense : .quantized, denseBatchThreshold: int8Prompts ? .max : 32)
        try LlamaCppPerplexityRun(context: context, chunks: chunks).run(model: llama, tokenizer: tokenizer, text: text, modelPath: try model.path)
    }
}
