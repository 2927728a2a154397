import Foundation
import Testing
import QuillTokenizers
import QuillFormats

/// Ids and decoded text identical to Hugging Face `tokenizers` on the golden multilingual corpus
/// (Fixtures/generate.py made the expected files with the reference implementation).
@Suite struct CorpusParityTests {
    static func check(_ name: String, _ tokenizer: Tokenizer, lossless: Bool) {
        let corpus = Fixtures.corpus
        let expected = Fixtures.ids(name)
        compareIds(name, tokenizer, corpus, expected)
        let decoded = Fixtures.decoded(name)
        var decodeMismatches = 0, roundTripMismatches = 0
        for (i, ids) in expected.enumerated() {
            let text = tokenizer.decode(ids)
            if text != decoded[i] {
                decodeMismatches += 1
                if decodeMismatches <= 3 {
                    Issue.record("\(name) decode line \(i + 1): expected \(decoded[i].debugDescription), got \(text.debugDescription)")
                }
            }
            if lossless && tokenizer.decode(tokenizer.encode(corpus[i]), skipSpecialTokens: false) != corpus[i] {
                roundTripMismatches += 1
            }
        }
        print("\(name): decode identical to HF on \(expected.count - decodeMismatches)/\(expected.count) lines"
              + (lossless ? "; decode(encode(x)) == x on \(expected.count - roundTripMismatches)" : ""))
        #expect(decodeMismatches == 0)
        #expect(roundTripMismatches == 0)
    }

    @Test func smolLM2FromGGUF() throws {
        let tokenizer = try Tokenizer(ggufPath: try Assets.path("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        Self.check("smollm2", tokenizer, lossless: true)
    }

    @Test func gpt2FromVocabAndMerges() throws {
        let dir = URL(fileURLWithPath: try Assets.path("tokenizers/gpt2"))
        let tokenizer = try Tokenizer(gpt2Vocab: dir.appendingPathComponent("vocab.json"),
                                      merges: dir.appendingPathComponent("merges.txt"))
        Self.check("gpt2", tokenizer, lossless: true)
    }

    @Test func qwen2FromGGUF() throws {
        let tokenizer = try Tokenizer(ggufPath: try Assets.path("vocab-tests/ggml-vocab-qwen2.gguf"))
        Self.check("qwen2", tokenizer, lossless: false)   // NFC normalization is not invertible
    }

    @Test func mistralSentencePiece() throws {
        let tokenizer = try Tokenizer(sentencePieceModel: URL(fileURLWithPath: try Assets.path("tokenizers/mistral/tokenizer.model.v1")))
        Self.check("mistral", tokenizer, lossless: false)
    }

    @Test func bertChineseWordPiece() throws {
        let vocab = URL(fileURLWithPath: try Assets.path("tokenizers/bert-base-chinese/vocab.txt"))
        Self.check("bert-base-chinese", try Tokenizer(wordPieceVocab: vocab, lowercase: false), lossless: false)
    }

    @Test func bertChineseFromHFTokenizerJSON() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.url("bert-base-chinese.tokenizer.json"))
        Self.check("bert-base-chinese", tokenizer, lossless: false)
    }
}
