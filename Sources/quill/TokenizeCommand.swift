import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuillFormats
import QuillTokenizers

struct TokenizerOption: ParsableArguments {
    @Option(name: [.customShort("t"), .customLong("tokenizer"), .customShort("m"), .customLong("model")],
            help: "GGUF file, HF directory or tokenizer.json, vocab.json, .tiktoken, SentencePiece .model or vocab.txt (default: SmolLM2 from the cache).")
    var path: String?

    func load() throws -> Tokenizer {
        try TokenizerLoader.load(path ?? QuillCache.defaultModel.path)
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
