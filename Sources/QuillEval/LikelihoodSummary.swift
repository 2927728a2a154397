import Foundation

/// A figure with one standard error.
public struct Estimate: Sendable, Codable, Equatable {
    public var value: Double
    public var standardError: Double
    enum CodingKeys: String, CodingKey { case value, standardError = "stderr" }
}

/// The figures of one model on a set of documents. Each is a ratio: −Σ ln p over Σ units (tokens,
/// words, bytes), as lm-evaluation-harness aggregates them (`weighted_perplexity`,
/// `bits_per_byte`). Bits per byte is the headline: it compares models with different tokenizers.
///
/// Standard errors treat documents as the sampled units (the delta method for a ratio:
/// SE(R) = √(n/(n−1) · Σ (xᵢ − R·wᵢ)²) / Σ wᵢ); with a single document, its tokens are (as
/// llama-perplexity treats them). A perplexity's error is exp(R)·SE(R).
public struct LikelihoodSummary: Sendable, Codable, Equatable {
    public var documents: Int
    public var tokens: Int, words: Int, bytes: Int
    public var logLikelihood: Double
    public var bitsPerByte: Estimate
    public var bytePerplexity: Estimate
    public var wordPerplexity: Estimate
    public var tokenPerplexity: Estimate

    enum CodingKeys: String, CodingKey {
        case documents, tokens, words, bytes, logLikelihood = "log_likelihood", bitsPerByte = "bits_per_byte",
             bytePerplexity = "byte_perplexity", wordPerplexity = "word_perplexity", tokenPerplexity = "token_perplexity"
    }

    public init(_ scores: [DocumentScore]) {
        documents = scores.count
        tokens = scores.reduce(0) { $0 + $1.tokens }
        words = scores.reduce(0) { $0 + $1.words }
        bytes = scores.reduce(0) { $0 + $1.bytes }
        let logLikelihood = scores.reduce(0) { $0 + $1.logLikelihood }
        self.logLikelihood = logLikelihood
        func ratio(_ units: (DocumentScore) -> Int) -> Estimate {
            let total = Double(scores.reduce(0) { $0 + units($1) })
            let r = -logLikelihood / max(total, 1)
            guard scores.count > 1 else {
                // one document: tokens as the units, the per-token spread scaled to this ratio
                guard let d = scores.first, d.tokens > 1 else { return Estimate(value: r, standardError: 0) }
                let n = Double(d.tokens), mean = -d.logLikelihood / n
                let variance = max(0, d.squaredLogLikelihood / n - mean * mean)
                return Estimate(value: r, standardError: (variance / (n - 1)).squareRoot() * n / max(total, 1))
            }
            let n = Double(scores.count)
            let spread = scores.reduce(0.0) { sum, d in let e = -d.logLikelihood - r * Double(units(d)); return sum + e * e }
            return Estimate(value: r, standardError: (n / (n - 1) * spread).squareRoot() / max(total, 1))
        }
        let perByte = ratio(\.bytes), perWord = ratio(\.words), perToken = ratio(\.tokens)
        bitsPerByte = Estimate(value: perByte.value / log(2), standardError: perByte.standardError / log(2))
        bytePerplexity = Self.perplexity(perByte)
        wordPerplexity = Self.perplexity(perWord)
        tokenPerplexity = Self.perplexity(perToken)
    }
}

/// Accuracy on multiple-choice questions as lm-evaluation-harness scores them: `acc` picks the
/// choice with the highest log-likelihood, `acc_norm` the highest log-likelihood per character
/// of the choice (its length in code points, as the harness measures it). Standard errors are
/// the harness's: √(p(1−p)/(n−1)).
extension LikelihoodSummary {
    /// exp of a mean negative log-likelihood, and its error by the delta method.
    static func perplexity(_ e: Estimate) -> Estimate { Estimate(value: exp(e.value), standardError: exp(e.value) * e.standardError) }
}

public struct MultipleChoiceSummary: Sendable, Codable, Equatable {
    public var questions: Int
    public var accuracy: Estimate
    public var normalizedAccuracy: Estimate

    enum CodingKeys: String, CodingKey { case questions, accuracy = "acc", normalizedAccuracy = "acc_norm" }

    /// `logLikelihoods[i][c]`: Σ ln p of item i's choice c.
    public init(_ items: [MultipleChoiceItem], logLikelihoods: [[Double]]) {
        questions = items.count
        var correct = 0, correctNormalized = 0
        for (item, lls) in zip(items, logLikelihoods) {
            if Self.argmax(lls) == item.answer { correct += 1 }
            let normalized = zip(lls, item.choices).map { $0 / Double(PythonText.length($1)) }
            if Self.argmax(normalized) == item.answer { correctNormalized += 1 }
        }
        func estimate(_ k: Int) -> Estimate {
            let n = Double(max(items.count, 1)), p = Double(k) / n
            return Estimate(value: p, standardError: items.count > 1 ? (p * (1 - p) / (n - 1)).squareRoot() : 0)
        }
        accuracy = estimate(correct)
        normalizedAccuracy = estimate(correctNormalized)
    }

    /// numpy's argmax: the first of equal maxima.
    static func argmax(_ values: [Double]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
