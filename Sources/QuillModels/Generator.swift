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
        let m = logits.max() ?? 0
        let logSum = log(logits.reduce(Float(0)) { $0 + exp($1 - m) }) + m
        self.id = id
        logprob = logits[Int(id)] - logSum
        self.top = top > 0 ? logits.indices.sorted { logits[$0] > logits[$1] }.prefix(top).map { (Int32($0), logits[$0] - logSum) } : []
    }
}

public enum FinishReason: String, Sendable, Codable { case length, stop, eos }

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
        let capacity = promptIds.count + options.maxNewTokens
        guard capacity <= model.contextLength else {
            throw ModelError.contextOverflow(tokens: capacity, context: model.contextLength)
        }
        var cache = model.makeCache(capacity: capacity)
        var sampler = Sampler(options.sampling)
        var stream = tokenizer.makeStreamingDecoder()
        var stops = options.stopTokenIds
        if let eos = tokenizer.eosTokenId { stops.insert(eos) }

        let t0 = Date()
        var logits = try model.forward(promptIds, cache: &cache)
        let promptSeconds = Date().timeIntervalSince(t0)
        let t1 = Date()
        var history = promptIds
        var generated: [Int32] = []
        var text = "", emitted = 0
        var reason = FinishReason.length
        var logprobs: [TokenLogprob] = []
        while generated.count < options.maxNewTokens {
            let next = sampler.sample(logits, history: history)
            if let top = options.topLogprobs { logprobs.append(TokenLogprob(logits: logits, id: next, top: top)) }
            if stops.contains(next) { reason = .eos; break }
            generated.append(next); history.append(next)
            text += stream.push(next)
            if let cut = Self.firstStop(in: text, options.stopStrings) {
                text = String(text[..<cut]); reason = .stop; break
            }
            // emit what can no longer become part of a stop string
            let safe = text.count - Self.heldBack(text, options.stopStrings)
            if safe > emitted {
                onText(String(text.dropFirst(emitted).prefix(safe - emitted)))
                emitted = safe
            }
            if generated.count == options.maxNewTokens { break }
            logits = try model.forward([next], cache: &cache)
        }
        if reason == .length { text += stream.finish() }
        if text.count > emitted { onText(String(text.dropFirst(emitted))) }
        if reason == .eos, !logprobs.isEmpty { logprobs.removeLast() }   // the stop token is not output
        return GenerationResult(text: text, tokens: generated, promptTokens: promptIds.count, finishReason: reason,
                                logprobs: logprobs, promptSeconds: promptSeconds, generationSeconds: Date().timeIntervalSince(t1))
    }

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
