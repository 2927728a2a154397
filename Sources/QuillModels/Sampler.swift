import Foundation
import QuillCore

/// How the next token is chosen. Temperature 0 is greedy. Filters apply in llama.cpp's order:
/// logit bias, penalties, then top-k, top-p and min-p on the temperature-scaled distribution.
public struct SamplingParameters: Sendable, Equatable, Codable {
    public var temperature: Float = 0.8
    /// Keep the k most likely tokens (0: off).
    public var topK = 40
    /// Keep the smallest set whose probability reaches p (1: off).
    public var topP: Float = 0.95
    /// Drop tokens less likely than min-p times the most likely one (0: off).
    public var minP: Float = 0.05
    /// Divide positive logits (multiply negative ones) of tokens already seen (1: off).
    public var repetitionPenalty: Float = 1
    /// OpenAI-style: subtract presence + frequency·count for tokens already seen.
    public var presencePenalty: Float = 0
    public var frequencyPenalty: Float = 0
    /// How many recent tokens the penalties look at (prompt included).
    public var penaltyWindow = 64
    public var logitBias: [Int32: Float] = [:]
    /// Fixed seed for reproducible sampling; nil draws one.
    public var seed: UInt64?

    public init() {}

    public static var greedy: SamplingParameters { var p = SamplingParameters(); p.temperature = 0; return p }
}

public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: SplitMix64

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
    }

    /// Picks the next token from `logits` [V]; `history` holds the tokens so far.
    public mutating func sample(_ logits: [Float], history: [Int32]) -> Int32 {
        var logits = logits
        let p = parameters
        for (id, bias) in p.logitBias where id >= 0 && Int(id) < logits.count { logits[Int(id)] += bias }
        if p.repetitionPenalty != 1 || p.presencePenalty != 0 || p.frequencyPenalty != 0 {
            var counts: [Int32: Int] = [:]
            for t in history.suffix(p.penaltyWindow) { counts[t, default: 0] += 1 }
            for (t, n) in counts where Int(t) < logits.count {
                let i = Int(t)
                if p.repetitionPenalty != 1 {
                    logits[i] = logits[i] > 0 ? logits[i] / p.repetitionPenalty : logits[i] * p.repetitionPenalty
                }
                logits[i] -= p.presencePenalty + p.frequencyPenalty * Float(n)
            }
        }
        if p.temperature <= 0 { return Int32(Self.argmax(logits)) }
        if (p.topK <= 0 || p.topK >= logits.count) && p.topP >= 1 && p.minP <= 0 { return sampleWhole(logits) }

        // candidates by logit (ties: lower id first), cut by top-k without sorting the vocabulary
        let k = p.topK > 0 ? min(p.topK, logits.count) : logits.count
        var candidates = k < logits.count ? Self.top(k, of: logits) : Array(logits.indices)
        let maxLogit = logits[Self.argmax(logits)]
        let total = candidates.reduce(Float(0)) { $0 + exp((logits[$1] - maxLogit) / p.temperature) }
        if p.minP > 0 {
            // min-p drops these below anyway: leave them out of the sort (a margin keeps the
            // boundary to the exact test below)
            let floor = maxLogit + p.temperature * log(p.minP) - 1e-3
            candidates.removeAll { logits[$0] < floor }
        }
        candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let probs = candidates.map { exp((logits[$0] - maxLogit) / p.temperature) / total }
        var keep = probs.count
        if p.topP < 1 {
            var cumulative: Float = 0
            for (i, q) in probs.enumerated() { cumulative += q; if cumulative >= p.topP { keep = i + 1; break } }
        }
        if p.minP > 0 {
            let floor = probs[0] * p.minP
            keep = min(keep, max(1, probs.prefix(keep).firstIndex { $0 < floor } ?? keep))
        }
        let kept = probs.prefix(keep)
        var r = Float(Double(rng.next() >> 11) * 0x1.0p-53) * kept.reduce(0, +)
        for (i, q) in kept.enumerated() {
            r -= q
            if r <= 0 { return Int32(candidates[i]) }
        }
        return Int32(candidates[keep - 1])
    }

    /// A draw from the whole tempered distribution (no top-k, top-p or min-p: OpenAI's
    /// defaults), one pass over the vocabulary instead of sorting it.
    private mutating func sampleWhole(_ logits: [Float]) -> Int32 {
        let maxLogit = logits[Self.argmax(logits)], scale = 1 / parameters.temperature
        var weights = [Float](repeating: 0, count: logits.count)
        var total: Float = 0
        for i in logits.indices {
            weights[i] = exp((logits[i] - maxLogit) * scale)
            total += weights[i]
        }
        var r = Float(Double(rng.next() >> 11) * 0x1.0p-53) * total
        for i in weights.indices where weights[i] > 0 {
            r -= weights[i]
            if r <= 0 { return Int32(i) }
        }
        return Int32(weights.lastIndex { $0 > 0 } ?? Self.argmax(logits))
    }

    /// Indices of the k largest values, in no particular order: one pass with a min-heap of k,
    /// instead of sorting the whole vocabulary every step.
    static func top(_ k: Int, of x: [Float]) -> [Int] {
        // heap order: smallest logit at the root; among equal logits the higher id (the one a
        // stable descending sort would drop first)
        func below(_ a: Int, _ b: Int) -> Bool { x[a] < x[b] || (x[a] == x[b] && a > b) }
        var heap = Array(0..<k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < k && below(heap[l], heap[m]) { m = l }
                if r < k && below(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m); i = m
            }
        }
        for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i) }
        for i in k..<x.count where below(heap[0], i) {
            heap[0] = i
            siftDown(0)
        }
        return heap
    }

    public static func argmax(_ x: [Float]) -> Int {
        var best = 0
        for i in 1..<x.count where x[i] > x[best] { best = i }
        return best
    }

}
