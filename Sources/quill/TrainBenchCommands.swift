import ArgumentParser
import Dispatch
import Foundation
import QuillFormats
import QuillTokenizers

extension TokenizeCommand {
    struct Train: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a byte-level BPE vocabulary and write it as tokenizer.json.",
            discussion: "Input files are plain text (one document per line) or JSONL with a \"text\" field.")
        @Argument(help: "Training files (.txt or .jsonl).") var files: [String]
        @Option(name: .shortAndLong, help: "Where to write tokenizer.json.") var output: String = "tokenizer.json"
        @Option(help: "Vocabulary size, special tokens included.") var vocabSize: Int = 8000
        @Option(help: "Merge only pairs seen at least this often.") var minFrequency: Int = 2
        @Option(name: .customLong("special"), help: "A special token (repeatable).") var specialTokens: [String] = ["<|endoftext|>"]
        @Option(help: "Pre-tokenizer: gpt2, llama3, qwen2 or smollm (digits split, then gpt2).") var pre: String = "gpt2"

        func run() async throws {
            var texts: [String] = []
            for path in files { texts += try TrainingText.read(path) }
            var trainer = BPETrainer(vocabularySize: vocabSize)
            trainer.minFrequency = minFrequency
            trainer.specialTokens = specialTokens
            let presets = ["gpt2": "gpt-2", "llama3": "llama3", "qwen2": "qwen2", "smollm": "smollm"]
            guard let name = presets[pre], let preTokenizer = try PreTokenizerPresets.byteLevel(name) else {
                throw ValidationError("unknown pre-tokenizer \(pre); choose gpt2, llama3, qwen2 or smollm")
            }
            trainer.preTokenizer = preTokenizer
            if pre == "qwen2" { trainer.normalizer = .nfc }
            trainer.progress = { done, wanted in
                FileHandle.standardError.write(Data("\rmerges \(done)/\(wanted)".utf8))
            }
            let start = DispatchTime.now()
            let tokenizer = try trainer.train(texts)
            try tokenizer.save(to: URL(fileURLWithPath: output))
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            FileHandle.standardError.write(Data("\n".utf8))
            print("wrote \(output): \(tokenizer.vocabularySize) tokens from \(texts.count) documents in \(String(format: "%.1f", seconds)) s")
        }
    }

    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure encoding throughput on a file, one thread and all cores.",
            discussion: "Benchmarks/tokenize_vs_hf.py runs this beside Hugging Face tokenizers and prints the ratios.")
        @OptionGroup var tokenizer: TokenizerOption
        @Argument(help: "Text file; each line is one document.") var file: String
        @Option(name: .customLong("repeat"), help: "Timed repetitions (the best is reported).") var repetitions: Int = 3
        @Option(help: "Threads for batch mode (default: all cores).") var threads: Int?
        @Flag(help: "Print one JSON object instead of a table.") var json = false


        func run() async throws {
            let tok = try tokenizer.load()
            let lines = try TrainingText.read(file)
            let bytes = lines.reduce(0) { $0 + $1.utf8.count }
            let cores = threads ?? ProcessInfo.processInfo.activeProcessorCount
            func best(_ threads: Int) -> (seconds: Double, tokens: Int) {
                var bestTime = Double.infinity, tokens = 0
                for _ in 0..<max(1, repetitions) {
                    let start = DispatchTime.now()
                    let ids = tok.encodeBatch(lines, addSpecialTokens: false, threads: threads)
                    let t = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                    bestTime = min(bestTime, t)
                    tokens = ids.reduce(0) { $0 + $1.count }
                }
                return (bestTime, tokens)
            }
            let one = best(1)
            let all = best(cores)
            let mb = Double(bytes) / 1e6
            if json {
                print("{\"bytes\":\(bytes),\"tokens\":\(one.tokens),\"seconds_1\":\(one.seconds),\"seconds_n\":\(all.seconds),\"threads\":\(cores)}")
            } else {
                print("\(file): \(String(format: "%.2f", mb)) MB, \(one.tokens) tokens")
                print(String(format: "  1 thread : %7.2f MB/s  %9.0f tokens/s", mb / one.seconds, Double(one.tokens) / one.seconds))
                print(String(format: "  %d threads: %7.2f MB/s  %9.0f tokens/s  (x%.2f)", cores, mb / all.seconds,
                             Double(all.tokens) / all.seconds, one.seconds / all.seconds))
            }
        }
    }
}

/// Reads training or benchmark text: JSONL (the "text" of each line) or plain text cut after
/// each "\n" (kept, so "\r\n" endings reach the tokenizer as written).
enum TrainingText {
    static func read(_ path: String) throws -> [String] {
        guard let data = FileContents.data(atPath: path) else {
            throw TokenizerError.unreadable(path: path, reason: "cannot read file")
        }
        _ = try validateUTF8(data, source: path)
        let bytes = [UInt8](data)
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for (i, b) in bytes.enumerated() where b == 0x0A {
            lines.append(bytes[start...i]); start = i + 1
        }
        if start < bytes.count { lines.append(bytes[start...]) }
        guard path.hasSuffix(".jsonl") else { return lines.map { String(decoding: $0, as: UTF8.self) } }
        return try lines.enumerated().compactMap { n, line in
            if line.allSatisfy({ $0 == 0x0A || $0 == 0x0D || $0 == 0x20 }) { return nil }
            let value = try? JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
            if let s = value as? String { return s }
            if let o = value as? [String: Any], let s = o["text"] as? String { return s }
            throw TokenizerError.malformed(source: path, at: "line \(n + 1)", problem: "expected a JSON string or an object with \"text\"")
        }
    }
}
