import Foundation
import QuillCore
import QuillModels
import Testing
@testable import QuillReview

/// The ratings against two independent fits, and the bootstrap intervals against the truth.
@Suite struct BradleyTerryTests {
    struct Reference: Decodable {
        var name: String
        var systems: Int
        var true_ratings: [Double]
        var battles: [[Field]]
        var fastchat: [Double]
        var choix: [Double]
        enum Field: Decodable {
            case index(Int), outcome(String)
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let i = try? c.decode(Int.self) { self = .index(i) } else { self = .outcome(try c.decode(String.self)) }
            }
        }
        var parsed: [Battle] {
            battles.map { b in
                guard case .index(let a) = b[0], case .index(let c) = b[1], case .outcome(let o) = b[2] else { fatalError("bad fixture") }
                return Battle(a, c, Battle.Outcome(rawValue: o)!)
            }
        }
    }

    /// FastChat's logistic regression (sklearn) and choix's ILSR, made by
    /// Fixtures/make_bt_references.py, within 1e-3 rating points.
    @Test func ratingsEqualIndependentFits() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/bt-references", withExtension: "json"))
        let cases = try JSONDecoder().decode([Reference].self, from: Data(contentsOf: url))
        #expect(cases.count == 3)
        for c in cases {
            let ratings = BradleyTerry.ratings(c.parsed, systems: c.systems)
            let vsFastChat = zip(ratings, c.fastchat).map { abs($0 - $1) }.max()!
            let vsChoix = zip(ratings, c.choix).map { abs($0 - $1) }.max()!
            print("\(c.name): max |Δrating| \(vsFastChat) vs FastChat/sklearn, \(vsChoix) vs choix")
            #expect(vsFastChat < 1e-3 && vsChoix < 1e-3, "\(c.name)")
        }
    }

    /// An anchor shifts every rating by the same amount.
    @Test func anchorShiftsAllRatings() {
        let battles = [Battle(0, 1, .firstWins), Battle(0, 1, .secondWins), Battle(1, 2, .firstWins), Battle(0, 2, .tie), Battle(1, 2, .tie)]
        let free = BradleyTerry.ratings(battles, systems: 3)
        let anchored = BradleyTerry.ratings(battles, systems: 3, anchor: .init(system: 2, rating: 1200))
        #expect(abs(anchored[2] - 1200) < 1e-9)
        #expect(abs((anchored[0] - free[0]) - (anchored[1] - free[1])) < 1e-9)
        #expect(abs(free.reduce(0, +) / 3 - 1000) < 1e-9)
    }

    /// Over repeated synthetic studies with known strengths, the 95% bootstrap intervals
    /// cover the true (mean-centred) ratings at close to their nominal rate.
    @Test func bootstrapIntervalsCoverTheTruth() {
        let truth = [1000.0, 1060, 950, 1130]
        let centred = truth.map { $0 - truth.reduce(0, +) / Double(truth.count) + 1000 }
        var rng = SplitMix64(seed: 42)
        var covered = 0, total = 0
        for study in 0..<200 {
            var battles: [Battle] = []
            for _ in 0..<300 {
                let a = Int(rng.next() % 4)
                var b = Int(rng.next() % 3)
                if b >= a { b += 1 }
                let p = 1 / (1 + pow(10, (truth[b] - truth[a]) / 400))
                battles.append(Battle(a, b, Double(rng.next() >> 11) / Double(1 << 53) < p ? .firstWins : .secondWins))
            }
            let fit = BradleyTerry.fit(battles, systems: 4, resamples: 200, seed: UInt64(study))
            for i in 0..<4 {
                total += 1
                if fit.intervals[i][0] <= centred[i] && centred[i] <= fit.intervals[i][1] { covered += 1 }
            }
        }
        let rate = Double(covered) / Double(total)
        print("bootstrap 95% intervals covered the true rating in \(covered) of \(total) cases (\(String(format: "%.1f", rate * 100))%)")
        #expect(rate >= 0.90 && rate <= 0.99)
    }

    @Test func wilsonIntervalKnownValues() {
        let i = BradleyTerry.wilson(8, 10)
        #expect(abs(i[0] - 0.4902) < 1e-4 && abs(i[1] - 0.9433) < 1e-4)
        #expect(BradleyTerry.wilson(0, 0) == [0, 1])
    }

    /// Rank ranges from the intervals: clearly separated systems get one rank each; an
    /// overlapping pair shares a range.
    @Test func rankRanges() {
        var battles: [Battle] = []
        for _ in 0..<60 { battles.append(Battle(0, 1, .firstWins)); battles.append(Battle(1, 2, .firstWins)) }
        for _ in 0..<20 { battles.append(Battle(0, 1, .secondWins)); battles.append(Battle(1, 2, .secondWins)) }
        for _ in 0..<40 { battles.append(Battle(2, 3, .firstWins)); battles.append(Battle(2, 3, .secondWins)) }
        let fit = BradleyTerry.fit(battles, systems: 4, resamples: 300, seed: 1)
        #expect(fit.rankRanges[0] == [1, 1] && fit.rankRanges[1] == [2, 2])
        #expect(fit.rankRanges[2] == [3, 4] && fit.rankRanges[3] == [3, 4])
    }
}
