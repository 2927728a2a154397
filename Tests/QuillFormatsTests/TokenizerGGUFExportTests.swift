import Foundation
import Testing
import QuillFormats
import QuillTokenizers

/// A tokenizer written as GGUF metadata (what `quill export --to gguf` writes) against the files
/// llama.cpp's converter wrote: llama.cpp's vocabulary test files and the real models. Read into
/// Quill and written back, the token list, the token types and the merges are the file's, and
/// `pre` is the name the converter gave (for the byte-level families); the SentencePiece-style
/// vocabularies get scores that encode as the file's do (`ggufMetadata` checks every result by
/// reading it back, on English, Chinese, code, digits, whitespace runs and emoji).
@Suite struct TokenizerGGUFExportTests {
    static func path(_ name: String) throws -> String {
        let path = QuillCache.root.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(path): run scripts/setup"])
        }
        return path
    }

    static let files = ["vocab-tests/ggml-vocab-gpt-2.gguf", "vocab-tests/ggml-vocab-llama-bpe.gguf", "vocab-tests/ggml-vocab-qwen2.gguf",
                        "vocab-tests/ggml-vocab-llama-spm.gguf", "vocab-tests/ggml-vocab-starcoder.gguf",
                        "models/SmolLM2-135M-Instruct.Q4_1.gguf"]

    @Test(arguments: files)
    func writtenBackAsTheConverterWroteIt(_ name: String) throws {
        let file = try GGUFFile(path: try Self.path(name))
        let tokenizer = try Tokenizer(gguf: file)
        let written = Dictionary(try tokenizer.ggufMetadata(source: name), uniquingKeysWith: { a, _ in a })
        let kind = try file.string("tokenizer.ggml.model")
        #expect(written["tokenizer.ggml.model"]?.string == kind)
        let tokens = try written.strings("tokenizer.ggml.tokens", in: name), theirs = try file.strings("tokenizer.ggml.tokens")
        let first = zip(tokens, theirs).enumerated().first { !$0.element.0.utf8.elementsEqual($0.element.1.utf8) }
        #expect(tokens.count == theirs.count && first == nil, "\(name): token \(first.map { "\($0.offset): \($0.element)" } ?? "count")")
        if file.metadata["tokenizer.ggml.token_type"] != nil {
            let types = try written.ints("tokenizer.ggml.token_type", in: name), theirs = try file.ints("tokenizer.ggml.token_type")
            let differing = zip(types, theirs).enumerated().filter { $0.element.0 != $0.element.1 }
            #expect(differing.isEmpty, "\(name): \(differing.count) token types differ, first \(differing.prefix(3).map { "\($0.offset): \($0.element)" })")
        }
        if kind == "gpt2" {
            #expect(try written.strings("tokenizer.ggml.merges", in: name) == file.strings("tokenizer.ggml.merges"))
            // the converter's name, or one llama.cpp runs the same pre-tokenizer for (starcoder is smollm's)
            let pre = written["tokenizer.ggml.pre"]?.string ?? "", theirs = file.metadata["tokenizer.ggml.pre"]?.string ?? ""
            let families = [PreTokenizerPresets.gpt2Names, PreTokenizerPresets.digitsThenGPT2Names, PreTokenizerPresets.cl100kNames,
                            PreTokenizerPresets.qwen2Names]
            #expect(pre == theirs || families.contains { $0.contains(pre) && $0.contains(theirs) }, "\(name): pre \(pre), file says \(theirs)")
        }
        for key in ["bos_token_id", "eos_token_id"] {
            if let id = file.metadata["tokenizer.ggml.\(key)"]?.int {
                #expect(written["tokenizer.ggml.\(key)"]?.int == id, "\(name): \(key)")
            }
        }
        // and it reads back as a tokenizer that encodes these files' own test inputs the same
        let back = try Tokenizer(ggufMetadata: written, path: name)
        if let inputs = try? String(contentsOfFile: file.path + ".inp", encoding: .utf8) {
            for text in inputs.components(separatedBy: "\n__ggml_vocab_test__\n") {
                #expect(back.encode(text, addSpecialTokens: false) == tokenizer.encode(text, addSpecialTokens: false), "\(name): \(text.debugDescription)")
            }
        }
    }

    /// A vocabulary trained here, with no name in llama.cpp: the pre-tokenizer is still found by
    /// how it splits text, and one no llama.cpp name reproduces is refused with the text that differs.
    @Test func preTokenizerFoundByBehaviour() throws {
        let corpus = ["床前明月光，疑是地上霜。", "The year 2024 had 366 days; it's a leap year.", "def f(x):\n    return x * 2\n"]
        var trainer = BPETrainer(vocabularySize: 400)
        trainer.specialTokens = ["<|endoftext|>"]
        let trained = try trainer.train(Array(repeating: corpus, count: 20).flatMap { $0 })
        let written = Dictionary(try trained.ggufMetadata(source: "trained"), uniquingKeysWith: { a, _ in a })
        #expect(written["tokenizer.ggml.pre"]?.string == "gpt-2")

        let odd = Tokenizer(normalizer: nil, preTokenizer: .sequence([.whitespaceSplit, .byteLevel(addPrefixSpace: false, useRegex: false)]),
                            model: trained.model, postProcessor: nil, decoder: .byteLevel, addedTokens: [])
        #expect(throws: TokenizerError.self) { try odd.ggufMetadata(source: "odd") }
    }
}
