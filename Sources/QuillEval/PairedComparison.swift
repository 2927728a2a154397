import Foundation
import QuillCore
import QuillModels

/// Two models on the same documents: the difference in bits per byte (candidate − baseline; below
/// zero means the candidate predicts the text better) and its relative size, each with a
/// percentile bootstrap 95% interval from resampling documents with replacement.
///
/// The corpus figure is Σ over documents, so each resample recomputes it from the drawn
/// documents' sums: Δ = (Σ −ln p_cand − Σ −ln p_base) / Σ bytes / ln 2. Percentiles interpolate
/// linearly between order statistics (numpy's default). The draws come from SplitMix64 seeded
/// with `seed`: the same inputs and seed give the same interval.
public struct PairedComparison: Sendable, Codable, Equatable {
    public var baseline: String
    public var candidate: String
    public var documents: Int
    public var resamples: Int
    public var seed: UInt64
    /// Bits per byte, candidate − baseline, and its interval.
    public var difference: Double
    public var differenceInterval: [Double]
    /// (candidate / baseline) − 1 in bits per byte, and its interval.
    public var relative: Double
    public var relativeInterval: [Double]
    /// What was resampled, as the verdict names it.
    public var unit = "documents"

    enum CodingKeys: String, CodingKey {
        case baseline, candidate, documents, resamples, seed, difference = "bits_per_byte_difference",
             differenceInterval = "bits_per_byte_difference_ci95", relative = "relative_difference", relativeInterval = "relative_difference_ci95"
    }

    public enum Failure: Error, CustomStringConvertible {
        case differentDocuments
        public var description: String { "the two models were not scored on the same documents" }
    }

    public init(baseline: (name: String, scores: [DocumentScore]), candidate: (name: String, scores: [DocumentScore]),
                resamples: Int = 1000, seed: UInt64 = 0, unit: String = "documents") throws {
        let a = baseline.scores, b = candidate.scores
        guard a.count == b.count, zip(a, b).allSatisfy({ $0.source == $1.source && $0.bytes == $1.bytes }) else { throw Failure.differentDocuments }
        self.baseline = baseline.name
        self.candidate = candidate.name
        documents = a.count
        self.resamples = resamples
        self.seed = seed
        self.unit = unit
        let nllA = a.map { -$0.logLikelihood }, nllB = b.map { -$0.logLikelihood }, bytes = a.map { Double($0.bytes) }
        func figures(_ pick: (inout [Int]) -> Void) -> (Double, Double) {
            var indices: [Int] = []
            pick(&indices)
            var sa = 0.0, sb = 0.0, sw = 0.0
            for i in indices { sa += nllA[i]; sb += nllB[i]; sw += bytes[i] }
            return ((sb - sa) / sw / log(2), sa > 0 ? sb / sa - 1 : 0)
        }
        (difference, relative) = figures { $0 = Array(0..<a.count) }
        var rng = SplitMix64(seed: seed)
        var differences: [Double] = [], relatives: [Double] = []
        for _ in 0..<resamples {
            let (d, r) = figures { indices in
                indices = (0..<a.count).map { _ in Int(rng.next() % UInt64(a.count)) }
            }
            differences.append(d)
            relatives.append(r)
        }
        differenceInterval = [Self.percentile(differences, 2.5), Self.percentile(differences, 97.5)]
        relativeInterval = [Self.percentile(relatives, 2.5), Self.percentile(relatives, 97.5)]
    }

    /// numpy.percentile with linear interpolation.
    public static func percentile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let position = q / 100 * Double(sorted.count - 1)
        let low = Int(position.rounded(.down)), high = min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }

    /// "fine-tune lower by 0.071 bits/byte (−10.3%), 95% CI [0.052, 0.090] (−12.9% to −7.6%), 412 documents".
    public var verdict: String {
        let lower = difference < 0
        let (lo, hi) = (differenceInterval[0], differenceInterval[1])
        let interval = lower ? String(format: "[%.4f, %.4f]", -hi, -lo) : String(format: "[%.4f, %.4f]", lo, hi)
        let relativeText = String(format: "%+.1f%%, 95%% CI %+.1f%% to %+.1f%%", relative * 100, relativeInterval[0] * 100, relativeInterval[1] * 100)
        let sure = lo > 0 || hi < 0 ? "" : "; the interval includes no difference"
        return String(format: "%@ %@ than %@ by %.4f bits/byte, 95%% CI %@ (%@), %d %@%@",
                      candidate, lower ? "lower" : "higher", baseline, abs(difference), interval, relativeText, documents, unit, sure)
    }
}
