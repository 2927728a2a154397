import Foundation

/// Log-probabilities from logits. Exponentials are summed in Double: evaluation adds up
/// thousands of these, and a Float sum over a 150k vocabulary drifts by ~1e-5 per token.
public enum LogSoftmax {
    /// log Σ exp(row).
    public static func logSumExp(_ row: UnsafeBufferPointer<Float>) -> Double {
        guard let maxLogit = row.max() else { return -.infinity }
        var sum = 0.0
        for l in row { sum += Double(expf(l - maxLogit)) }
        return Double(maxLogit) + log(sum)
    }

    /// log softmax(row)[index].
    public static func value(_ row: UnsafeBufferPointer<Float>, at index: Int) -> Double {
        Double(row[index]) - logSumExp(row)
    }
}

extension LanguageModel {
    /// Runs `tokens` from the cache's position and hands over every position's logits, a piece
    /// at a time: `body(first, logits)` sees logits [n, V] for tokens[first..<first+n]. Pieces
    /// hold at most `maxRows` rows and are cut to nearly equal sizes, so no piece is a short
    /// tail: quantized weights meet a piece on the same kernels (int8 or fp32, chosen by rows)
    /// as they would meet the whole input. Bounds the logits held at once to maxRows × V.
    public func forwardAll(_ tokens: [Int32], cache: inout KVCache, maxRows: Int = 512,
                           _ body: (_ first: Int, _ logits: [Float]) throws -> Void) throws {
        guard !tokens.isEmpty else { return }
        let pieces = (tokens.count + maxRows - 1) / maxRows
        let size = (tokens.count + pieces - 1) / pieces
        var first = 0
        while first < tokens.count {
            let end = min(tokens.count, first + size)
            let logits = try forward(Array(tokens[first..<end]), cache: &cache, allLogits: true)
            try body(first, logits)
            first = end
        }
    }
}
