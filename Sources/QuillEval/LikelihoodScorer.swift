import Foundation
import QuillModels

/// Σ ln p over a window's targets, and whether each target was the model's top choice.
public struct WindowScore: Sendable, Equatable {
    public var logLikelihood = 0.0
    /// Σ (ln p)², for a standard error when the data is a single document.
    public var squaredLogLikelihood = 0.0
    public var tokens = 0
    /// Every target was the argmax (lm-evaluation-harness's `is_greedy`).
    public var greedy = true

    mutating func add(_ other: WindowScore) {
        logLikelihood += other.logLikelihood
        squaredLogLikelihood += other.squaredLogLikelihood
        tokens += other.tokens
        greedy = greedy && other.greedy
    }
}

/// Runs windows through a model and scores their targets. Each window starts from an empty
/// cache; logits are taken a piece of at most `maxRows` positions at a time.
public struct LikelihoodScorer: Sendable {
    public let model: any LanguageModel
    public var maxRows = 512

    public init(model: any LanguageModel) { self.model = model }

    public func score(_ window: ScoringWindow) throws -> WindowScore {
        var cache = model.makeCache(capacity: window.input.count)
        var score = WindowScore()
        let vocab = model.vocabularySize
        try model.forwardAll(window.input, cache: &cache, maxRows: maxRows) { first, logits in
            logits.withUnsafeBufferPointer { all in
                let rows = logits.count / vocab
                let lps = LogSoftmax.values(all, vocab: vocab, at: (0..<rows).map { Int(window.targets[first + $0]) })
                for row in 0..<rows {
                    let target = window.targets[first + row]
                    guard target >= 0 else { continue }
                    let logitRow = UnsafeBufferPointer(rebasing: all[(row * vocab)..<((row + 1) * vocab)])
                    let lp = lps[row]
                    score.logLikelihood += lp
                    score.squaredLogLikelihood += lp * lp
                    score.tokens += 1
                    if score.greedy, let best = logitRow.indices.max(by: { logitRow[$0] < logitRow[$1] }), logitRow[best] > logitRow[Int(target)] {
                        score.greedy = false
                    }
                }
            }
        }
        return score
    }

    /// A document's score: its windows added up.
    public func score(_ document: EvaluationDocument) throws -> DocumentScore {
        var total = WindowScore()
        for window in document.windows { total.add(try score(window)) }
        return DocumentScore(source: document.source, logLikelihood: total.logLikelihood,
                             squaredLogLikelihood: total.squaredLogLikelihood, tokens: total.tokens,
                             bytes: document.bytes, words: document.words)
    }
}

/// One document's log-likelihood and the units it is spread over.
public struct DocumentScore: Sendable, Codable, Equatable {
    public var source: String
    public var logLikelihood: Double
    public var squaredLogLikelihood: Double
    public var tokens: Int
    public var bytes: Int
    public var words: Int
    public var bitsPerByte: Double { -logLikelihood / Double(max(bytes, 1)) / log(2) }

    public init(source: String, logLikelihood: Double, squaredLogLikelihood: Double, tokens: Int, bytes: Int, words: Int) {
        (self.source, self.logLikelihood, self.squaredLogLikelihood) = (source, logLikelihood, squaredLogLikelihood)
        (self.tokens, self.bytes, self.words) = (tokens, bytes, words)
    }

    enum CodingKeys: String, CodingKey {
        case source, logLikelihood = "log_likelihood", squaredLogLikelihood = "squared_log_likelihood", tokens, bytes, words
    }
}
