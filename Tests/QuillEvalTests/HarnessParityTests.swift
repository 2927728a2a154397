import Foundation
import Testing
import QuillModels
import QuillTokenizers
@testable import QuillEval

/// `quill eval` against lm-evaluation-harness on transformers (`--model hf`, float32) for a tiny
/// Llama checkpoint with its own byte-level BPE tokenizer and the documents and questions of
/// Tests/EvalChecks/check_lm_eval.py (Fixtures/make_tiny_harness_reference.py). Every figure
/// within 1e-6 relative (measured: 1.2e-7 for word perplexity, an exponential of the sum; 9e-9
/// for bits per byte; acc and acc_norm equal).
struct HarnessParityTests {
    struct Reference: Decodable {
        let max_length: Int, documents: Int, questions: Int
        let figures: [String: Double]
    }

    @Test func rollingAndMultipleChoiceMatchTransformers() throws {
        let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let directory = fixtures.appendingPathComponent("tiny-harness")
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: directory.appendingPathComponent("lm_eval_hf.json")))
        let (model, tokenizer) = try ModelLoader.load(directory.path, weights: .dense)
        let reader = try EvaluationDataReader(tokenizer: tokenizer, length: reference.max_length)
        let scorer = LikelihoodScorer(model: model)
        guard case .documents(let documents) = try reader.read(fixtures.appendingPathComponent("harness-data/documents.jsonl").path),
              case .multipleChoice(let questions) = try reader.read(fixtures.appendingPathComponent("harness-data/choice.jsonl").path) else {
            Issue.record("the fixture files did not read as documents and questions"); return
        }
        #expect(documents.count == reference.documents && questions.count == reference.questions)
        #expect(documents.contains { $0.windows.count > 1 }, "some document must span several windows")
        let summary = LikelihoodSummary(try documents.map { try scorer.score($0) })
        let choice = MultipleChoiceSummary(questions, logLikelihoods: try questions.map { try $0.windows.map { try scorer.score($0).logLikelihood } })
        let ours = ["word_perplexity": summary.wordPerplexity.value, "byte_perplexity": summary.bytePerplexity.value,
                    "bits_per_byte": summary.bitsPerByte.value, "acc": choice.accuracy.value, "acc_norm": choice.normalizedAccuracy.value]
        for (metric, theirs) in reference.figures.sorted(by: { $0.key < $1.key }) {
            let value = try #require(ours[metric])
            let relative = abs(value - theirs) / max(abs(theirs), 1e-12)
            print(String(format: "%@: quill %.8f, lm-eval hf %.8f (relative %.1e)", metric, value, theirs, relative))
            #expect(relative <= 1e-6, "\(metric)")
        }
        #expect(reference.figures.count == 5)
    }
}
