import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuillData
import QuillFormats
import QuillTokenizers

struct TokenizerOption: ParsableArguments {
    @Option(name: [.customShort("t"), .customLong("tokenizer"), .customShort("m"), .customLong("model")],
            help: "GGUF file, HF directory or tokenizer.json, vocab.json, .tiktoken, SentencePiece .model or vocab.txt, or the name of a model in the cache (default: SmolLM2 from the cache).")
    var path: String?

    func load() throws -> Tokenizer {
        try TokenizerLoader.load(try path.map(QuillCache.resolveModel) ?? QuillCache.defaultModel.path)
    }
}

struct TokenizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode, decode and count tokens; train a BPE vocabulary; benchmark.",
        subcommands: [Encode.self, Decode.self, Count.self, Train.self, Bench.self],
        defaultSubcommand: Encode.self
    )

    /// Text from --text, from files, or from standard input; invalid UTF-8 is an error with its offset.
    static func readInputs(text: String?, files: [String]) throws -> [(name: String, text: String)] {
        if let text { return [("--text", text)] }
        if files.isEmpty {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return [("<stdin>", try validateUTF8(data, source: "<stdin>"))]
        }
        return try files.map { path in
            guard let data = FileContents.data(atPath: path) else {
                throw TokenizerError.unreadable(path: path, reason: "cannot read file")
            }
            return (path, try validateUTF8(data, source: path))
        }
    }

    struct Encode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Encode text to token ids.")
        @OptionGroup var tokenizer: TokenizerOption
        @Option(name: .long, help: "Text to encode (else the files, else standard input).") var text: String?
        @Argument(help: "Files to encode.") var files: [String] = []
        @Flag(help: "Do not add BOS/CLS/SEP etc.") var noSpecialTokens = false
        @Option(help: "Output: tokens (id and piece per line), json, or binary (little-endian uint32).")
        var format: Format = .tokens
        @Option(name: .shortAndLong, help: "Write here instead of standard output.") var output: String?
        @Flag(help: "With --format tokens: show byte offsets into the input.") var offsets = false

        enum Format: String, ExpressibleByArgument { case tokens, json, binary }

        func run() async throws {
            let tok = try tokenizer.load()
            var out = Data()
            for input in try TokenizeCommand.readInputs(text: text, files: files) {
                let encoding = tok.encodeWithOffsets(input.text, addSpecialTokens: !noSpecialTokens)
                switch format {
                case .binary:
                    for id in encoding.ids { withUnsafeBytes(of: UInt32(id).littleEndian) { out.append(contentsOf: $0) } }
                case .json:
                    out.append(contentsOf: Array(("[" + encoding.ids.map(String.init).joined(separator: ",") + "]\n").utf8))
                case .tokens:
                    let utf8 = Array(input.text.utf8)
                    for (k, id) in encoding.ids.enumerated() {
                        let piece = tok.token(for: id) ?? "?"
                        var line = "\(id)\t\(piece.debugDescription)"
                        if offsets {
                            let r = encoding.offsets[k]
                            line += "\t\(r.lowerBound)..<\(r.upperBound)\t"
                                + String(decoding: utf8[r], as: UTF8.self).debugDescription
                        }
                        out.append(contentsOf: Array((line + "\n").utf8))
                    }
                    out.append(contentsOf: Array("\(encoding.ids.count) tokens\n".utf8))
                }
            }
            try writeOutput(out, to: output)
        }
    }

    struct Decode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decode token ids (JSON array, whitespace-separated, or --binary file) to text.")
        @OptionGroup var tokenizer: TokenizerOption
        @Argument(help: "Ids; read from standard input when none are given.") var ids: [String] = []
        @Option(help: "Read little-endian uint32 ids from this file.") var binary: String?
        @Flag(help: "Leave out special tokens.") var skipSpecialTokens = false

        func run() async throws {
            let tok = try tokenizer.load()
            var values: [Int32] = []
            if let binary {
                guard let data = FileContents.data(atPath: binary), data.count % 4 == 0 else {
                    throw ValidationError("\(binary): not a whole number of uint32 ids")
                }
                values = data.withUnsafeBytes { raw in
                    (0..<(data.count / 4)).map { Int32(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
                }
            } else {
                let text = ids.isEmpty ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                    : ids.joined(separator: " ")
                for (n, field) in text.split(whereSeparator: { " ,[]\n\t".contains($0) }).enumerated() {
                    guard let v = Int32(field) else { throw ValidationError("id \(n + 1) \"\(field)\" is not an integer") }
                    values.append(v)
                }
            }
            let size = tok.vocabularySize
            if let bad = values.first(where: { $0 < 0 || Int($0) >= size }) {
                throw TokenizerError.unknownTokenId(Int(bad), vocabularySize: size)
            }
            // exactly the text when piped (so decode inverts encode byte for byte); a newline on a terminal
            let text = tok.decode(values, skipSpecialTokens: skipSpecialTokens)
            FileHandle.standardOutput.write(Data((isatty(1) != 0 ? text + "\n" : text).utf8))
        }
    }

    struct Count: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count tokens in text or files.")
        @OptionGroup var tokenizer: TokenizerOption
        @Option(name: .long) var text: String?
        @Argument var files: [String] = []

        func run() async throws {
            let tok = try tokenizer.load()
            var total = 0
            let inputs = try TokenizeCommand.readInputs(text: text, files: files)
            for input in inputs {
                let n = tok.encode(input.text, addSpecialTokens: false).count
                total += n
                print("\(n)\t\(input.name)")
            }
            if inputs.count > 1 { print("\(total)\ttotal") }
        }
    }
}

func writeOutput(_ data: Data, to path: String?) throws {
    if let path {
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw TokenizerError.unreadable(path: path, reason: "cannot write file")
        }
    } else {
        FileHandle.standardOutput.write(data)
    }
}

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
        @OptionGroup var threads: ThreadsOption

        func run() async throws {
            var texts: [String] = []
            for path in files { texts += try TrainingText.read(path) }
            var trainer = BPETrainer(vocabularySize: vocabSize)
            trainer.threads = threads.apply()
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
        @OptionGroup var threads: ThreadsOption
        @Flag(help: "Print one JSON object instead of a table.") var json = false

        func run() async throws {
            let tok = try tokenizer.load()
            let lines = try TrainingText.read(file)
            let bytes = lines.reduce(0) { $0 + $1.utf8.count }
            let cores = threads.apply()
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

/// Training or benchmark text: the "text" of each JSONL record (read by QuillData's JSONL reader),
/// or each line of a text file with its "\n" kept (so "\r\n" endings reach the tokenizer as written).
enum TrainingText {
    static func read(_ path: String) throws -> [String] {
        if path.hasSuffix(".jsonl") {
            return try ExampleRecords.jsonLines(path).map { line, bytes in
                let issue = { (problem: String) in DataIssue(file: path, line: line, problem: problem) }
                guard let text = try ExampleRecords.jsonObject(bytes, issue: issue)["text"] as? String else {
                    throw issue("expected an object with a \"text\" string")
                }
                return text
            }
        }
        let text = try ExampleRecords.text(path)
        var lines: [String] = [], start = text.startIndex
        for i in text.utf8.indices where text.utf8[i] == UInt8(ascii: "\n") {
            let end = text.utf8.index(after: i)
            lines.append(String(text[start..<end]))
            start = end
        }
        if start < text.endIndex { lines.append(String(text[start...])) }
        return lines
    }
}
