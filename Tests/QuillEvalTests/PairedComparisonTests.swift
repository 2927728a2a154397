import Foundation
import Testing
@testable import QuillEval

/// The bootstrap interval against numpy's (Fixtures/make_bootstrap_reference.py: the same
/// per-document values, numpy's own generator, 100,000 resamples). The generators differ, so the
/// ends agree up to resampling noise: Quill draws 20,000 here, and the ends must be within 2%.
struct PairedComparisonTests {
    struct Reference: Decodable {
        let difference: Double, relative: Double
        let difference_ci95: [Double], relative_ci95: [Double]
    }

    static func scores() -> (base: [DocumentScore], tuned: [DocumentScore]) {
        var base: [DocumentScore] = [], tuned: [DocumentScore] = []
        for i in 0..<200 {
            let bytes = 400 + (i * 37) % 900
            let nll = Double(bytes) * (1.6 + 0.3 * sin(Double(i) * 0.7)) * log(2)
            let tunedNLL = nll * (0.9 + 0.08 * cos(Double(i) * 1.3))
            base.append(DocumentScore(source: "doc\(i)", logLikelihood: -nll, squaredLogLikelihood: 0, tokens: bytes / 4, bytes: bytes, words: bytes / 5))
            tuned.append(DocumentScore(source: "doc\(i)", logLikelihood: -tunedNLL, squaredLogLikelihood: 0, tokens: bytes / 4, bytes: bytes, words: bytes / 5))
        }
        return (base, tuned)
    }

    @Test func intervalMatchesNumpy() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/bootstrap_reference", withExtension: "json"))
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
        let (base, tuned) = Self.scores()
        let c = try PairedComparison(baseline: ("base", base), candidate: ("tuned", tuned), resamples: 20_000, seed: 1)
        print("difference \(c.difference) vs numpy \(reference.difference); CI \(c.differenceInterval) vs \(reference.difference_ci95); "
              + "relative CI \(c.relativeInterval) vs \(reference.relative_ci95)")
        #expect(abs(c.difference - reference.difference) < 1e-12)
        #expect(abs(c.relative - reference.relative) < 1e-12)
        for (ours, theirs) in zip(c.differenceInterval + c.relativeInterval, reference.difference_ci95 + reference.relative_ci95) {
            #expect(abs(ours - theirs) / abs(theirs) < 0.02, "interval end \(ours) vs numpy \(theirs)")
        }
        #expect(c.verdict.hasPrefix("tuned lower than base by 0.1569 bits/byte, 95% CI [0.14"))
    }

    @Test func sameSeedSameInterval() throws {
        let (base, tuned) = Self.scores()
        let a = try PairedComparison(baseline: ("a", base), candidate: ("b", tuned), resamples: 500, seed: 3)
        let b = try PairedComparison(baseline: ("a", base), candidate: ("b", tuned), resamples: 500, seed: 3)
        #expect(a == b)
        #expect(throws: PairedComparison.Failure.self) { try PairedComparison(baseline: ("a", base), candidate: ("b", Array(tuned.dropLast()))) }
    }

    @Test func percentileIsNumpys() {
        // numpy.percentile([1, 2, 3, 4], [2.5, 50, 97.5]) = 1.075, 2.5, 3.925
        #expect(abs(PairedComparison.percentile([4, 1, 3, 2], 2.5) - 1.075) < 1e-12)
        #expect(PairedComparison.percentile([4, 1, 3, 2], 50) == 2.5)
        #expect(abs(PairedComparison.percentile([4, 1, 3, 2], 97.5) - 3.925) < 1e-12)
    }

    @Test func summaryRatiosAndErrors() {
        let docs = [DocumentScore(source: "a", logLikelihood: -100, squaredLogLikelihood: 0, tokens: 40, bytes: 100, words: 20),
                    DocumentScore(source: "b", logLikelihood: -300, squaredLogLikelihood: 0, tokens: 60, bytes: 200, words: 30)]
        let s = LikelihoodSummary(docs)
        // R = 400/300 nats per byte; SE = sqrt(2 · ((100 − R·100)² + (300 − R·200)²)) / 300
        let r = 400.0 / 300
        let se = (2 * (pow(100 - r * 100, 2) + pow(300 - r * 200, 2))).squareRoot() / 300
        #expect(abs(s.bitsPerByte.value - r / log(2)) < 1e-12)
        #expect(abs(s.bitsPerByte.standardError - se / log(2)) < 1e-12)
        #expect(abs(s.tokenPerplexity.value - exp(4)) < 1e-9)
        #expect(abs(s.wordPerplexity.value - exp(8)) < 1e-6)
    }
}
