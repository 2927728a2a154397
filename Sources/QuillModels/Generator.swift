import Foundation
import QuillTokenizers

/// What to generate and when to stop.
public struct GenerationOptions: Sendable {
    public var maxNewTokens = 128
    public var sampling = SamplingParameters()
    /// Text that ends generation (not included in the output).
    public var stopStrings: [String] = []
    /// Token ids that end generation, besides the tokenizer's EOS.
    public var stopTokenIds: Set<Int32> = []
    /// Generate past the tokenizer's EOS (benchmarks that need a fixed length).
    public var ignoreEOS = false
    /// Record the log-probability of each chosen token and of the `topLogprobs` most likely ones
    /// (from the model's distribution, before sampling filters); nil records nothing.
    public var topLogprobs: Int? = nil
    public init() {}
}

/// The model's log-probability of a generated token, with the most likely alternatives.
public struct TokenLogprob: Sendable, Equatable {
    public var id: Int32
    public var logprob: Float
    public var top: [(id: Int32, logprob: Float)]
    public static func == (a: TokenLogprob, b: TokenLogprob) -> Bool {
        a.id == b.id && a.logprob == b.logprob && a.top.elementsEqual(b.top) { $0.id == $1.id && $0.logprob == $1.logprob }
    }

    /// From logits [V]: log-softmax of `id` and the `top` best.
    public init(logits: [Float], id: Int32, top: Int) {
        self = logits.withUnsafeBufferPointer { TokenLogprob(row: $0, id: id, top: top) }
    }

    /// From one row of logits [V].
    public init(row: UnsafeBufferPointer<Float>, id: Int32, top: Int) {
        let logSum = LogSoftmax.logSumExp(row)
        self.id = id
        logprob = Float(Double(row[Int(id)]) - logSum)
        self.top = top > 0 ? Self.best(row, top).map { (Int32($0), Float(Double(row[$0]) - logSum)) } : []
    }

    /// Indices of the k largest entries, largest first (ties: lower index first).
    static func best(_ row: UnsafeBufferPointer<Float>, _ k: Int) -> [Int] {
        var kept: [Int] = []
        kept.reserveCapacity(k + 1)
        for i in row.indices where kept.count < k || row[i] > row[kept[kept.count - 1]] {
            var at = kept.count
            while at > 0 && row[kept[at - 1]] < row[i] { at -= 1 }
            kept.insert(i, at: at)
            if kept.count > k { kept.removeLast() }
        }
        return kept
    }
}

public enum FinishReason: String, Sendable, Codable {
    case length, stop, eos
    /// Ended from outside: the client went away, or the request ran past its time limit.
    case cancelled, timeout
}

public struct GenerationResult: Sendable {
    public var text: String
    public var tokens: [Int32]
    public var promptTokens: Int
    public var finishReason: FinishReason
    /// One entry per generated token when `topLogprobs` was set.
    public var logprobs: [TokenLogprob] = []
    public var promptSeconds: Double
    public var generationSeconds: Double
    public var tokensPerSecond: Double { generationSeconds > 0 ? Double(tokens.count) / generationSeconds : 0 }
}

/// Prefill the prompt in one pass, then decode token by token with the KV cache, streaming text
/// that is complete UTF-8 and cannot still turn into a stop string.
///
/// ```swift
/// let generator = Generator(model: model, tokenizer: tokenizer)
/// let result = try generator.generate(prompt: "床前明月光，", options: options) { print($0, terminator: "") }
/// ```
public struct Generator: Sendable {
    public let model: any LanguageModel
    public let tokenizer: Tokenizer

    public init(model: any LanguageModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    public func generate(prompt: String, options: GenerationOptions,
                         onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        let promptIds = tokenizer.encode(prompt)
        return try generate(promptIds: promptIds, options: options, onText: onText)
    }

    public func generate(promptIds: [Int32], options: GenerationOptions,
                         onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        guard !promptIds.isEmpty else { throw ModelError.emptyPrompt }
        let capacity = promptIds.count + options.maxNewTokens
        guard capacity <= model.contextLength else {
            throw ModelError.contextOverflow(tokens: capacity, context: model.contextLength)
        }
        var cache = model.makeCache(capacity: capacity)
        var sequence = GenerationSequence(promptIds: promptIds, options: options, tokenizer: tokenizer)
        let t0 = Date()
        var logits = try model.forward(promptIds, cache: &cache)
        let promptSeconds = Date().timeIntervalSince(t0)
        let t1 = Date()
        while true {
            let step = sequence.step(logits)
            if !step.text.isEmpty { onText(step.text) }
            guard step.finished == nil, let token = step.token else { break }
            logits = try model.forward([token], cache: &cache)
        }
        return GenerationResult(text: sequence.text, tokens: sequence.generated, promptTokens: promptIds.count,
                                finishReason: sequence.finishReason!, logprobs: sequence.logprobs, promptSeconds: promptSeconds,
                                generationSeconds: Date().timeIntervalSince(t1))
    }
}

/// One sequence being generated, advanced a token at a time by whoever runs the model (the
/// `Generator` alone, a server in batches): sampling, stop tokens and stop strings, text that is
/// complete UTF-8 and cannot still turn into a stop string, log-probabilities.
public struct GenerationSequence: Sendable {
    public let promptIds: [Int32]
    public let options: GenerationOptions
    var sampler: Sampler
    var decoder: StreamingDecoder
    let stops: Set<Int32>
    var history: [Int32]
    public private(set) var generated: [Int32] = []
    public private(set) var logprobs: [TokenLogprob] = []
    /// The generated text so far (cut at a stop string).
    public private(set) var text = ""
    /// Characters of `text` already handed out.
    var emitted = 0
    public private(set) var finishReason: FinishReason?

    public struct Step: Sendable {
        /// The token chosen and output at this step: fed to the model next unless `finished`;
        /// nil when the step output none (a stop token, or a stop from outside).
        public var token: Int32?
        /// Text that became safe to show with this step (may be empty).
        public var text: String
        /// The chosen token's log-probability, when asked for (not for a stop token).
        public var logprob: TokenLogprob?
        public var finished: FinishReason?
    }

    public init(promptIds: [Int32], options: GenerationOptions, tokenizer: Tokenizer) {
        self.promptIds = promptIds
        self.options = options
        sampler = Sampler(options.sampling)
        decoder = tokenizer.makeStreamingDecoder()
        var stops = options.stopTokenIds
        if let eos = tokenizer.eosTokenId, !options.ignoreEOS { stops.insert(eos) }
        self.stops = stops
        history = promptIds
    }

    /// Picks the next token from the logits [V] after the last one fed to the model.
    public mutating func step(_ logits: [Float]) -> Step {
        precondition(finishReason == nil, "the sequence has finished")
        if options.maxNewTokens <= 0 { return finish(.length, token: nil, logprob: nil) }
        let next = sampler.sample(logits, history: history)
        let logprob = options.topLogprobs.map { TokenLogprob(logits: logits, id: next, top: $0) }
        if stops.contains(next) { return finish(.eos, token: nil, logprob: nil) }   // the stop token is not output
        generated.append(next); history.append(next)
        text += decoder.push(next)
        if let logprob { logprobs.append(logprob) }
        if let cut = Self.firstStop(in: text, options.stopStrings) {
            text = String(text[..<cut])
            return finish(.stop, token: next, logprob: logprob)
        }
        if generated.count == options.maxNewTokens {
            text += decoder.finish()
            return finish(.length, token: next, logprob: logprob)
        }
        // hand out what can no longer become part of a stop string
        let safe = text.count - Self.heldBack(text, options.stopStrings)
        var piece = ""
        if safe > emitted {
            piece = String(text.dropFirst(emitted).prefix(safe - emitted))
            emitted = safe
        }
        return Step(token: next, text: piece, logprob: logprob, finished: nil)
    }

    /// Ends the sequence: the rest of the text is handed out.
    private mutating func finish(_ reason: FinishReason, token: Int32?, logprob: TokenLogprob?) -> Step {
        finishReason = reason
        let rest = text.count > emitted ? String(text.dropFirst(emitted)) : ""
        emitted = text.count
        return Step(token: token, text: rest, logprob: logprob, finished: reason)
    }

    /// Ends the sequence from outside (a server cancelling or timing it out).
    public mutating func stop(_ reason: FinishReason) -> Step { finish(reason, token: nil, logprob: nil) }

    static func firstStop(in text: String, _ stops: [String]) -> String.Index? {
        stops.compactMap { $0.isEmpty ? nil : text.range(of: $0)?.lowerBound }.min()
    }

    /// Characters at the end of `text` that could begin a stop string.
    static func heldBack(_ text: String, _ stops: [String]) -> Int {
        var longest = 0
        for stop in stops where !stop.isEmpty {
            for length in stride(from: min(stop.count - 1, text.count), to: 0, by: -1)
            where text.hasSuffix(stop.prefix(length)) {
                longest = max(longest, length); break
            }
        }
        return longest
    }
}
