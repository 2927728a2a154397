import Foundation
import Testing
import QuillTokenizers
import QuillFormats

/// llama.cpp's vocabulary test files: a vocab-only GGUF, inputs (`.inp`, split by
/// `__ggml_vocab_test__`) and the ids Hugging Face `tokenizers` gave them (`.out`).
@Suite struct VocabTestFileTests {
    static func run(_ name: String) throws {
        let base = try Assets.path("vocab-tests/ggml-vocab-\(name).gguf")
        let tokenizer = try Tokenizer(ggufPath: base)
        let inp = try String(contentsOfFile: base + ".inp", encoding: .utf8)
        let out = try String(contentsOfFile: base + ".out", encoding: .utf8)
        var inputs = inp.components(separatedBy: "\n__ggml_vocab_test__\n")
        if inputs.last == "" { inputs.removeLast() }
        let expected = out.split(separator: "\n", omittingEmptySubsequences: false).prefix(inputs.count).map {
            $0.split(separator: " ").map { Int32($0)! }
        }
        compareIds("ggml-vocab-\(name)", tokenizer, inputs, Array(expected), addSpecialTokens: false)
    }

    @Test(arguments: ["gpt-2", "llama-spm", "llama-bpe", "qwen2", "bert-bge", "starcoder", "falcon",
                      "deepseek-llm", "deepseek-coder", "mpt", "command-r", "refact", "phi-3"])
    func vocabulary(_ name: String) throws {
        try Self.run(name)
    }
}
