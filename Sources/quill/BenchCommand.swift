import ArgumentParser
import Foundation
import QuillCore
import QuillFormats
import QuillModels

/// llama-bench style: prompt processing (pp) and token generation (tg) throughput, with
/// repetitions, mean ± standard deviation.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prompt processing and generation speed (tokens/s, llama-bench style).")

    @OptionGroup var model: ModelOption
    @Option(name: [.customShort("p"), .customLong("n-prompt")], help: "Prompt tokens for pp.") var promptTokens = 512
    @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Generated tokens for tg.") var generatedTokens = 128
    @Option(name: [.customShort("r"), .customLong("repetitions")]) var repetitions = 3
    @Flag(help: "Run every weight in fp32 (dequantized) instead of the int8 kernels.") var dense = false
    @Option(name: [.customShort("b"), .customLong("batch")],
            help: "Also measure batched decoding: this many sequences advanced together per step (as `quill serve` does).")
    var batch: [Int] = []

    @OptionGroup var threads: ThreadsOption

    func validate() throws {
        guard promptTokens >= 0, generatedTokens >= 0 else { throw ValidationError("-p and -n count tokens: 0 or more") }
        guard repetitions >= 1 else { throw ValidationError("-r: at least 1 repetition") }
        if let b = batch.first(where: { $0 < 1 }) { throw ValidationError("-b \(b): at least 1 sequence") }
        guard generatedTokens > 0 || (promptTokens > 0 && batch.isEmpty) else {
            throw ValidationError(batch.isEmpty ? "-p 0 -n 0 measures nothing" : "-b measures generation: give -n 1 or more")
        }
    }

    func run() async throws {
        threads.apply()
        let path = try model.path
        let (llama, _) = try model.load(weights: dense ? .dense : .quantized)
        let vocab = Int32(llama.vocabularySize)
        // deterministic pseudo-random tokens, as llama-bench uses random ones
        var state: UInt64 = 42
        func token() -> Int32 { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int32((state >> 33) % UInt64(vocab)) }
        func stats(_ rates: [Double]) -> String {
            let mean = rates.reduce(0, +) / Double(rates.count)
            let sd = (rates.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, rates.count - 1))).squareRoot()
            return String(format: "%8.2f ± %.2f", mean, sd)
        }
        print("model: \((path as NSString).lastPathComponent), weights: \(dense ? "fp32" : "quantized"), threads: \(ThreadPool.defaultThreads)")
        var pp: [Double] = [], tg: [Double] = []
        for _ in 0..<(repetitions + 1) {   // the first run warms caches and is not counted
            if promptTokens > 0 {
                var cache = llama.makeCache(capacity: promptTokens)
                let prompt = (0..<promptTokens).map { _ in token() }
                let t0 = Date()
                _ = try llama.forward(prompt, cache: &cache)
                pp.append(Double(promptTokens) / Date().timeIntervalSince(t0))
            }
            if generatedTokens > 0 {   // from one random token, as llama-bench's tg starts
                var cache = llama.makeCache(capacity: generatedTokens + 1)
                var next = token()
                let t0 = Date()
                for _ in 0..<generatedTokens {
                    let logits = try llama.forward([next], cache: &cache)
                    next = Int32(Sampler.argmax(logits))
                }
                tg.append(Double(generatedTokens) / Date().timeIntervalSince(t0))
            }
        }
        if promptTokens > 0 { print("pp\(promptTokens): \(stats(Array(pp.dropFirst()))) tokens/s") }
        if generatedTokens > 0 { print("tg\(generatedTokens): \(stats(Array(tg.dropFirst()))) tokens/s") }
        for b in batch {
            var rates: [Double] = []
            for _ in 0..<(repetitions + 1) {
                var caches = (0..<b).map { _ in llama.makeCache(capacity: generatedTokens + 1) }
                var next = (0..<b).map { _ in token() }
                let t0 = Date()
                for _ in 0..<generatedTokens {
                    let logits = try llama.forwardBatch(next, caches: &caches)
                    next = (0..<b).map { Int32(Sampler.argmax(Array(logits[($0 * Int(vocab))..<(($0 + 1) * Int(vocab))]))) }
                }
                rates.append(Double(b * generatedTokens) / Date().timeIntervalSince(t0))
            }
            print("tg\(generatedTokens) x\(b) sequences: \(stats(Array(rates.dropFirst()))) tokens/s (all sequences together)")
        }
    }
}
