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

    /// A tokenizer.json that says `Metaspace` with `prepend_scheme: "first"` and no normalizer (HF's
    /// LlamaConverter with legacy=False, the file of later Mistral and Llama releases) puts the dummy
    /// prefix only at the start of the input: `<s>[INST]` encodes as [1, 28792 "[", ...], as HF does,
    /// where the legacy pipeline of the `.model` file (and llama.cpp) gives [1, 733 "▁[", ...].
    @Test func mistralPrependFirstAfterSpecialTokens() throws {
        let legacy = try Tokenizer(sentencePieceModel: URL(fileURLWithPath: try Assets.path("tokenizers/mistral/tokenizer.model.v1")))
        let first = Tokenizer(normalizer: nil, preTokenizer: .metaspace(replacement: "▁", prependScheme: .first, split: false),
                              model: legacy.model, postProcessor: legacy.postProcessor, decoder: legacy.decoder,
                              addedTokens: legacy.addedTokens)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quill-mistral-first-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try first.save(to: file)
        let loaded = try Tokenizer(contentsOf: file)
        let lines = try String(contentsOf: Fixtures.url("mistral-first.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 10)
        for line in lines {
            let record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let text = try #require(record["text"] as? String), ids = try #require(record["ids"] as? [Int]).map(Int32.init)
            #expect(loaded.encode(text, addSpecialTokens: false) == ids, "\(text)")
        }
        #expect(legacy.encode("<s>[INST] Hello", addSpecialTokens: false).prefix(2) == [1, 733], "the legacy pipeline keeps HF legacy's and llama.cpp's prefix")
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

/// A vocabulary trained by Quill, written as tokenizer.json: HF loads it and encodes identically,
/// and Quill's trainer gives the vocabulary and merges HF's own BpeTrainer gave on the same text
/// (`hf-bpetrainer.tokenizer.json`, saved by Fixtures/generate.py from `tokenizers` 0.23.3).
@Suite struct TrainedVocabularyTests {
    @Test func hfEncodesOurTrainedFileIdentically() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.url("trained.tokenizer.json"))
        CorpusParityTests.check("trained", tokenizer, lossless: true)
    }

    @Test func trainerGivesHFBpeTrainersVocabularyAndMerges() throws {
        var trainer = BPETrainer(vocabularySize: 2000)
        trainer.specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        let trained = try trainer.train(Fixtures.corpus)
        let reference = try Tokenizer(contentsOf: Fixtures.url("hf-bpetrainer.tokenizer.json"))
        guard case .bpe(let a) = trained.model, case .bpe(let b) = reference.model else {
            Issue.record("expected BPE models"); return
        }
        #expect(b.mergeList.count > 1000, "the reference holds \(b.mergeList.count) merges")
        #expect(a.vocab == b.vocab)
        #expect(a.mergeList.map { [$0.0, $0.1] } == b.mergeList.map { [$0.0, $0.1] })
        print("trainer: \(a.mergeList.count) merges and \(a.vocab.count) tokens, identical to HF's BpeTrainer")
    }

    @Test func trainerRefusesATooSmallVocabulary() {
        #expect(throws: TokenizerError.self) { try BPETrainer(vocabularySize: 100).train(["abc"]) }
    }
}

/// cl100k_base from its `.tiktoken` rank file against tiktoken itself.
@Suite struct TiktokenTests {
    @Test func cl100kMatchesTiktoken() throws {
        let tokenizer = try Tokenizer(tiktoken: URL(fileURLWithPath: try Assets.path("tokenizers/cl100k_base.tiktoken")))
        compareIds("cl100k", tokenizer, Fixtures.corpus, Fixtures.ids("cl100k"), oracle: "tiktoken")
    }
}

/// Saving to tokenizer.json and loading it back keeps every id: the JSON reader and writer
/// over real, large vocabularies.
@Suite struct TokenizerJSONRoundTripTests {
    @Test(arguments: ["smollm2", "qwen2", "mistral"])
    func roundTrip(_ name: String) throws {
        let original: Tokenizer
        switch name {
        case "smollm2": original = try Tokenizer(ggufPath: try Assets.path("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        case "qwen2": original = try Tokenizer(ggufPath: try Assets.path("vocab-tests/ggml-vocab-qwen2.gguf"))
        default: original = try Tokenizer(sentencePieceModel: URL(fileURLWithPath: try Assets.path("tokenizers/mistral/tokenizer.model.v1")))
        }
        let reloaded = try Tokenizer(tokenizerJSON: try original.tokenizerJSON(), source: "\(name) tokenizer.json")
        compareIds("\(name) via tokenizer.json", reloaded, Fixtures.corpus, Fixtures.ids(name))
    }
}
