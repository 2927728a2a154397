import Foundation
import QuillCore
import CQuillKernels

/// Log-probabilities from logits. Exponentials are summed in Double: evaluation adds up
/// thousands of these, and a Float sum over a 150k vocabulary drifts by ~1e-5 per token.
public enum LogSoftmax {
    /// log Σ exp(row) (CQuillKernels: AVX2 exponentials, their sum in Double).
    public static func logSumExp(_ row: UnsafeBufferPointer<Float>) -> Double {
        guard let base = row.baseAddress, !row.isEmpty else { return -.infinity }
        return quill_log_sum_exp(base, Int64(row.count))
    }

    /// log softmax(row)[index].
    public static func value(_ row: UnsafeBufferPointer<Float>, at index: Int) -> Double {
        Double(row[index]) - logSumExp(row)
    }

    /// `value` for each row of `logits` [targets.count, vocab] at its target, the rows split over
    /// the pool (a window's scored rows are a few hundred normalizations over the vocabulary). A
    /// row whose target is negative (context, not scored) is not normalized: its value is NaN.
    public static func values(_ logits: UnsafeBufferPointer<Float>, vocab: Int, at targets: [Int],
                              pool: ThreadPool = .shared) -> [Double] {
        precondition(logits.count >= targets.count * vocab)
        var out = [Double](repeating: .nan, count: targets.count)
        out.withUnsafeMutableBufferPointer { out in
            let parts = min(pool.threads, targets.count)
            pool.parallelFor(parts) { part in
                for row in (targets.count * part / parts)..<(targets.count * (part + 1) / parts) where targets[row] >= 0 {
                    out[row] = value(UnsafeBufferPointer(rebasing: logits[(row * vocab)..<((row + 1) * vocab)]), at: targets[row])
                }
            }
        }
        return out
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
