import Foundation
import QuillFormats
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
        case shorterThanAChunk(tokens: Int, context: Int)

        public var description: String {
            switch self {
            case let .textTooShort(tokens, context):
                "the text tokenizes to \(tokens) tokens; perplexity with a context of \(context) needs at least \(2 * context)"
            case let .shorterThanAChunk(tokens, context):
                "\(tokens) tokens do not fill one chunk of \(context)"
            case let .contextTooLong(context, model):
                "a context of \(context) tokens is longer than the model's \(model)"
            }
        }
    }

    /// The token that leads every chunk: BOS where the tokenizer adds one.
    public static func chunkBos(_ tokenizer: Tokenizer) -> Int32? {
        tokenizer.bosTokenId.flatMap { tokenizer.encode("", addSpecialTokens: true).first == $0 ? $0 : nil }
    }

    /// Scores `text` as llama-perplexity does: tokenized with the tokenizer's special tokens,
    /// each chunk led by BOS when the tokenizer adds one.
    public func measure(_ model: any LanguageModel, text: String, tokenizer: Tokenizer,
                        progress: (Result) -> Void = { _ in }) throws -> Result {
        try measure(model, tokens: try tokenize(text, tokenizer: tokenizer), bos: Self.chunkBos(tokenizer), progress: progress)
    }

    /// The text's tokens as llama-perplexity takes them (with the tokenizer's special tokens),
    /// refused when they do not fill two chunks, as there.
    public func tokenize(_ text: String, tokenizer: Tokenizer) throws -> [Int32] {
        let tokens = tokenizer.encode(text, addSpecialTokens: true)
        guard tokens.count >= 2 * context else { throw Failure.textTooShort(tokens: tokens.count, context: context) }
        return tokens
    }

    /// Scores `tokens` (the whole text, as the tokenizer encodes it with special tokens);
    /// `bos` replaces each chunk's first token when given. `progress` sees the running result
    /// after each chunk; `scored` sees each chunk's scored rows of logits [n, V].
    public func measure(_ model: any LanguageModel, tokens: [Int32], bos: Int32?,
                        progress: (Result) -> Void = { _ in },
                        scored: (_ logits: UnsafeBufferPointer<Float>) throws -> Void = { _ in }) throws -> Result {
        var result = Result()
        let vocab = model.vocabularySize
        try forEachChunk(model, tokens: tokens, bos: bos, { _, _, logits, targets in
            for lp in LogSoftmax.values(logits, vocab: vocab, at: targets.map(Int.init)) {
                let nll = -lp
                result.nll += nll
                result.nllSquared += nll * nll
            }
            result.scoredTokens += targets.count
            try scored(logits)
        }, chunkEnd: { _ in
            result.chunks += 1
            progress(result)
        })
        return result
    }

    /// `measure`, also writing the scored rows' log-probabilities to `url` in llama.cpp's `.kld`
    /// format (`llama-perplexity --kl-divergence-base`), written beside and moved into place when
    /// complete.
    public func measure(_ model: any LanguageModel, tokens: [Int32], bos: Int32?, writingLogProbabilitiesTo url: URL,
                        progress: (Result) -> Void = { _ in }) throws -> Result {
        var result = Result()
        try AtomicFile.write(to: url) { handle in
            let chunkCount = chunks(of: tokens.count)
            var writer = try LogProbabilityFile.Writer(handle: handle, context: context, vocabulary: model.vocabularySize,
                                                       chunks: chunkCount, tokens: tokens.prefix(chunkCount * context))
            result = try measure(model, tokens: tokens, bos: bos, progress: progress, scored: { try writer.append($0) })
        }
        return result
    }

    /// Chunks `tokens` can fill (at most `maxChunks`).
    public func chunks(of tokens: Int) -> Int { min(tokens / context, maxChunks ?? .max) }

    /// Runs each chunk from an empty cache and hands over its scored rows (context − 1 − context/2
    /// of them) `rowsAtOnce` at a time: `body(chunk, row, logits, targets)` with logits [n, V] for
    /// the predictions of targets, the slice's first row counted from the chunk's first scored
    /// one; `chunkEnd(chunk)` after its last slice. One slice of logits is held at a time.
    public func forEachChunk(_ model: any LanguageModel, tokens: [Int32], bos: Int32?, rowsAtOnce: Int = 64,
                             _ body: (_ chunk: Int, _ row: Int, _ logits: UnsafeBufferPointer<Float>, _ targets: ArraySlice<Int32>) throws -> Void,
                             chunkEnd: (_ chunk: Int) throws -> Void = { _ in }) throws {
        guard context >= 4, context <= model.contextLength else {
            throw Failure.contextTooLong(context: context, model: model.contextLength)
        }
        guard tokens.count >= context else { throw Failure.shorterThanAChunk(tokens: tokens.count, context: context) }
        let first = context / 2, vocab = model.vocabularySize
        for chunk in 0..<chunks(of: tokens.count) {
            var input = Array(tokens[(chunk * context)..<((chunk + 1) * context)])
            if let bos { input[0] = bos }
            var cache = model.makeCache(capacity: context)
            let targets = tokens[(chunk * context + first + 1)..<((chunk + 1) * context)]
            // rows first..<context; the last predicts past the chunk and is not scored
            try model.forward(input, cache: &cache, logitsFrom: first, rowsAtOnce: rowsAtOnce) { row, logits in
                let scored = min(logits.count / vocab, targets.count - row)
                guard scored > 0 else { return }
                let slice = targets[(targets.startIndex + row)..<(targets.startIndex + row + scored)]
                try body(chunk, row, UnsafeBufferPointer(rebasing: logits[0..<(scored * vocab)]), slice)
            }
            try chunkEnd(chunk)
        }
    }

    /// Compares `model` with the reference whose log-probabilities `base` holds, on the base
    /// file's own tokens and chunks (`llama-perplexity --kl-divergence`). `progress` sees the
    /// running statistics after each chunk.
    public static func klDivergence(_ model: any LanguageModel, base: LogProbabilityFile.Reader, bos: Int32?,
                                    progress: (_ chunk: Int, KLDivergence) -> Void = { _, _ in }) throws -> KLDivergence {
        try base.requireVocabulary(model.vocabularySize)
        var statistics = KLDivergence()
        let width = LogProbabilityFile.rowWidth(vocabulary: base.vocabulary), vocab = model.vocabularySize
        var rows: [UInt16] = []   // the base's rows of the chunk being compared
        try Perplexity(context: base.context).forEachChunk(model, tokens: base.tokens, bos: bos, { _, row, logits, targets in
            if row == 0 { rows = try base.nextChunk() }
            rows.withUnsafeBufferPointer { rows in
                for (r, target) in targets.enumerated() {
                    let b = row + r
                    statistics.add(UnsafeBufferPointer(rebasing: logits[(r * vocab)..<((r + 1) * vocab)]),
                                   base: UnsafeBufferPointer(rebasing: rows[(b * width)..<((b + 1) * width)]), target: Int(target))
                }
            }
        }, chunkEnd: { chunk in progress(chunk + 1, statistics) })
        return statistics
    }
}
