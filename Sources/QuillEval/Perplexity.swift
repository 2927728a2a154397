import Foundation
import QuillModels
import QuillTokenizers

/// Perplexity by llama.cpp's `llama-perplexity` protocol, so the two can be compared number for
/// number: the whole text is tokenized once (with BOS when the tokenizer adds one) and cut into
/// consecutive chunks of `context` tokens (the tail that does not fill a chunk is left out);
/// each chunk runs from an empty cache with its first token replaced by BOS when the tokenizer
/// adds one; only the second half of each chunk is scored (every token there sees at least
/// context/2 tokens before it), the last `context - context/2 - 1` predictions of the chunk.
/// PPL = exp(mean negative log-likelihood) over all scored tokens.
public struct Perplexity: Sendable {
    public var context: Int
    /// Chunks to evaluate at most (nil: all the text holds).
    public var maxChunks: Int?

    public init(context: Int = 512, maxChunks: Int? = nil) {
        self.context = context
        self.maxChunks = maxChunks
    }

    public struct Result: Sendable {
        /// Σ −log p(token) over the scored tokens, and Σ of its square.
        public var nll = 0.0, nllSquared = 0.0
        public var scoredTokens = 0
        public var chunks = 0
        public var perplexity: Double { exp(nll / Double(max(scoredTokens, 1))) }
        /// One standard error of the perplexity (llama-perplexity's "±").
        public var uncertainty: Double {
            let n = Double(scoredTokens), mean = nll / n, variance = nllSquared / n - mean * mean
            return variance > 0 && n > 1 ? (variance / (n - 1)).squareRoot() * perplexity : 0
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case textTooShort(tokens: Int, context: Int)
        case contextTooLong(context: Int, model: Int)

        public var description: String {
            switch self {
            case let .textTooShort(tokens, context):
                "the text tokenizes to \(tokens) tokens; perplexity with a context of \(context) needs at least \(2 * context)"
            case let .contextTooLong(context, model):
                "a context of \(context) tokens is longer than the model's \(model)"
            }
        }
    }

    /// Scores `text` as llama-perplexity does: tokenized with the tokenizer's special tokens,
    /// each chunk led by BOS when the tokenizer adds one.
    public func measure(_ model: any LanguageModel, text: String, tokenizer: Tokenizer,
                        progress: (Result) -> Void = { _ in }) throws -> Result {
        let tokens = tokenizer.encode(text, addSpecialTokens: true)
        let addsBos = tokenizer.bosTokenId.map { tokenizer.encode("", addSpecialTokens: true).first == $0 } ?? false
        return try measure(model, tokens: tokens, bos: addsBos ? tokenizer.bosTokenId : nil, progress: progress)
    }

    /// Scores `tokens` (the whole text, as the tokenizer encodes it with special tokens);
    /// `bos` replaces each chunk's first token when given. `progress` sees the running result
    /// after each chunk.
    public func measure(_ model: any LanguageModel, tokens: [Int32], bos: Int32?,
                        progress: (Result) -> Void = { _ in }) throws -> Result {
        guard context >= 4, context <= model.contextLength else {
            throw Failure.contextTooLong(context: context, model: model.contextLength)
        }
        guard tokens.count >= 2 * context else { throw Failure.textTooShort(tokens: tokens.count, context: context) }
        let chunks = min(tokens.count / context, maxChunks ?? .max)
        let first = context / 2, vocab = model.vocabularySize
        var result = Result()
        for chunk in 0..<chunks {
            var input = Array(tokens[(chunk * context)..<((chunk + 1) * context)])
            if let bos { input[0] = bos }
            var cache = model.makeCache(capacity: context)
            let logits = try model.forward(input, cache: &cache, allLogits: true)
            for position in first..<(context - 1) {
                let target = Int(tokens[chunk * context + position + 1])
                let nll = logits.withUnsafeBufferPointer {
                    -LogSoftmax.value(UnsafeBufferPointer(rebasing: $0[(position * vocab)..<((position + 1) * vocab)]), at: target)
                }
                result.nll += nll
                result.nllSquared += nll * nll
                result.scoredTokens += 1
            }
            result.chunks += 1
            progress(result)
        }
        return result
    }
}
