import Foundation

/// What a study's votes say, for one kind of reviewer (people, or an automatic judge):
/// per pair of systems the wins, ties and losses with a win rate and its Wilson 95% interval
/// (ties count half); Bradley-Terry ratings with bootstrap intervals and rank ranges; the rate
/// at which the left side won (position bias); and how often two reviewers who judged the same
/// comparison agreed. Skips are stored but count nowhere; "both bad" is a tie, as in Chatbot Arena.
public struct ReviewResults: Sendable, Codable, Equatable {
    public struct Pair: Sendable, Codable, Equatable {
        public var first: String
        public var second: String
        public var firstWins: Int
        public var ties: Int
        public var secondWins: Int
        /// (first wins + ties / 2) / votes, with its interval.
        public var firstWinRate: Double
        public var firstWinRateInterval: [Double]
        enum CodingKeys: String, CodingKey {
            case first, second, firstWins = "first_wins", ties, secondWins = "second_wins", firstWinRate = "first_win_rate",
                 firstWinRateInterval = "first_win_rate_ci95"
        }
    }
    public struct Rating: Sendable, Codable, Equatable {
        public var system: String
        public var rating: Double
        public var interval: [Double]
        public var rankRange: [Int]
        public var votes: Int
        enum CodingKeys: String, CodingKey { case system, rating, interval = "rating_ci95", rankRange = "rank_range", votes }
    }
    public struct Agreement: Sendable, Codable, Equatable {
        /// Pairs of reviewers who judged the same comparison (skips left out).
        public var pairs: Int
        /// Fraction of those pairs with the same verdict (first better, second better, tie).
        public var rate: Double?
        /// The same among pairs where neither called a tie.
        public var pairsWithoutTies: Int
        public var rateWithoutTies: Double?
        enum CodingKeys: String, CodingKey { case pairs, rate, pairsWithoutTies = "pairs_without_ties", rateWithoutTies = "rate_without_ties" }
    }

    public var reviewers: String
    public var votes: Int
    public var skipped: Int
    public var pairs: [Pair]
    public var ratings: [Rating]
    public var anchor: String
    public var resamples: Int
    public var seed: UInt64
    /// Votes with a winner in which it was the left answer, and the rate with its interval.
    public var leftWins: Int
    public var decisive: Int
    public var leftWinRate: Double?
    public var leftWinRateInterval: [Double]
    public var agreement: Agreement
    /// Systems that won (or lost) every decisive vote they had: no finite maximum-likelihood
    /// rating exists, and theirs (and their intervals) only say "far above" or "far below".
    public var unbounded: [String]

    enum CodingKeys: String, CodingKey {
        case reviewers, votes, skipped, pairs, ratings, anchor, resamples, seed, leftWins = "left_wins", decisive,
             leftWinRate = "left_win_rate", leftWinRateInterval = "left_win_rate_ci95", agreement, unbounded
    }

    /// From the votes of `kind` ("human" or "judge") among `systems` (in the study's order).
    public init(votes all: [VoteRecord], systems: [String], kind: String, anchor: BradleyTerry.Anchor? = nil,
                resamples: Int = 1000, seed: UInt64 = 0) {
        let votes = all.filter { $0.reviewerKind == kind }
        let index = Dictionary(systems.enumerated().map { ($1, $0) }) { a, _ in a }
        var battles: [Battle] = []
        var byComparison: [Int64: [Battle]] = [:]
        var leftWins = 0, decisive = 0, skipped = 0
        for v in votes {
            guard let l = index[v.leftSystem], let r = index[v.rightSystem] else { continue }
            let outcome: Battle.Outcome
            switch v.verdict {
            case "left": outcome = .firstWins; leftWins += 1; decisive += 1
            case "right": outcome = .secondWins; decisive += 1
            case "tie", "both_bad": outcome = .tie
            default: skipped += 1; continue
            }
            // in study order: first is the lower index
            let battle = l < r ? Battle(l, r, outcome)
                : Battle(r, l, outcome == .firstWins ? .secondWins : outcome == .secondWins ? .firstWins : .tie)
            battles.append(battle)
            byComparison[v.comparison, default: []].append(battle)
        }
        reviewers = kind == "human" ? "people" : "automatic judge"
        self.votes = battles.count
        self.skipped = skipped
        self.resamples = resamples
        self.seed = seed
        self.anchor = anchor.map { "\(systems[$0.system]) = \(Int($0.rating))" } ?? "mean = 1000"

        var pairs: [Pair] = []
        for a in systems.indices { for b in systems.indices where b > a {
            let among = battles.filter { $0.first == a && $0.second == b }
            let wins = among.filter { $0.outcome == .firstWins }.count, losses = among.filter { $0.outcome == .secondWins }.count
            let ties = among.count - wins - losses
            let score = Double(wins) + Double(ties) / 2
            pairs.append(Pair(first: systems[a], second: systems[b], firstWins: wins, ties: ties, secondWins: losses,
                              firstWinRate: among.isEmpty ? .nan : score / Double(among.count),
                              firstWinRateInterval: BradleyTerry.wilson(score, Double(among.count))))
        } }
        self.pairs = pairs
        let fit = BradleyTerry.fit(battles, systems: systems.count, anchor: anchor, resamples: resamples, seed: seed)
        ratings = systems.indices.map { i in
            Rating(system: systems[i], rating: fit.ratings[i], interval: fit.intervals[i], rankRange: fit.rankRanges[i],
                   votes: battles.filter { $0.first == i || $0.second == i }.count)
        }.sorted { $0.rating > $1.rating }
        unbounded = systems.indices.filter { i in
            let wins = battles.filter { ($0.first == i && $0.outcome == .firstWins) || ($0.second == i && $0.outcome == .secondWins) }.count
            let losses = battles.filter { ($0.first == i && $0.outcome == .secondWins) || ($0.second == i && $0.outcome == .firstWins) }.count
            let ties = battles.filter { ($0.first == i || $0.second == i) && $0.outcome == .tie }.count
            return wins + losses + ties > 0 && ties == 0 && (wins == 0 || losses == 0)
        }.map { systems[$0] }
        self.leftWins = leftWins
        self.decisive = decisive
        leftWinRate = decisive > 0 ? Double(leftWins) / Double(decisive) : nil
        leftWinRateInterval = BradleyTerry.wilson(Double(leftWins), Double(decisive))

        var agreePairs = 0, agreeing = 0, strictPairs = 0, strictAgreeing = 0
        for list in byComparison.values where list.count > 1 {
            for i in list.indices { for j in list.indices where j > i {
                agreePairs += 1
                if list[i].outcome == list[j].outcome { agreeing += 1 }
                if list[i].outcome != .tie && list[j].outcome != .tie {
                    strictPairs += 1
                    if list[i].outcome == list[j].outcome { strictAgreeing += 1 }
                }
            } }
        }
        agreement = Agreement(pairs: agreePairs, rate: agreePairs > 0 ? Double(agreeing) / Double(agreePairs) : nil,
                              pairsWithoutTies: strictPairs, rateWithoutTies: strictPairs > 0 ? Double(strictAgreeing) / Double(strictPairs) : nil)
    }

    /// The terminal table.
    public var lines: [String] {
        func pct(_ x: Double?) -> String { x.map { $0.isNaN ? "-" : String(format: "%.1f%%", $0 * 100) } ?? "-" }
        func ci(_ i: [Double]) -> String { String(format: "[%.1f%%, %.1f%%]", i[0] * 100, i[1] * 100) }
        let width = max(6, ratings.map(\.system.count).max() ?? 6)
        func pad(_ s: String) -> String { s.padding(toLength: max(width, s.count), withPad: " ", startingAt: 0) }
        var out = ["\(votes) votes by \(reviewers) (\(skipped) skipped)"]
        guard votes > 0 else { return out }
        out.append("Bradley-Terry ratings (ties count half, 400-point logistic scale, \(anchor); bootstrap 95% CI, \(resamples) resamples):")
        out.append("  rank  \(pad("system"))  rating   95% CI            votes")
        for r in ratings {
            let rank = r.rankRange[0] == r.rankRange[1] ? "\(r.rankRange[0])" : "\(r.rankRange[0])-\(r.rankRange[1])"
            out.append("  " + rank.padding(toLength: 4, withPad: " ", startingAt: 0) + "  \(pad(r.system))  "
                       + String(format: "%6.1f   [%6.1f, %6.1f]  %5d", r.rating, r.interval[0], r.interval[1], r.votes))
        }
        if !unbounded.isEmpty {
            out.append("  (\(unbounded.joined(separator: ", ")) won or lost every vote: no finite rating exists yet; the figures only say far above or below)")
        }
        out.append("Pairs (first vs second: wins / ties / losses, first's win rate with Wilson 95% CI):")
        for p in pairs {
            let n = p.firstWins + p.ties + p.secondWins
            out.append("  \(p.first) vs \(p.second): \(p.firstWins) / \(p.ties) / \(p.secondWins)"
                       + (n > 0 ? ", win rate \(pct(p.firstWinRate)) \(ci(p.firstWinRateInterval))" : ", no votes"))
        }
        out.append("Position bias: the left answer won \(leftWins) of \(decisive) decisive votes (\(pct(leftWinRate))"
                   + (decisive > 0 ? " \(ci(leftWinRateInterval))" : "") + "; 50% is none)")
        out.append("Agreement: \(agreement.pairs) pairs of reviewers judged the same comparison"
                   + (agreement.pairs > 0 ? "; same verdict \(pct(agreement.rate)), \(pct(agreement.rateWithoutTies)) of \(agreement.pairsWithoutTies) without ties" : ""))
        return out
    }

    /// People's and the judge's results from the same votes.
    public static func byKind(votes: [VoteRecord], systems: [String], anchor: BradleyTerry.Anchor? = nil, resamples: Int = 1000,
                              seed: UInt64 = 0) -> (human: ReviewResults, judge: ReviewResults) {
        (ReviewResults(votes: votes, systems: systems, kind: "human", anchor: anchor, resamples: resamples, seed: seed),
         ReviewResults(votes: votes, systems: systems, kind: "judge", anchor: anchor, resamples: resamples, seed: seed))
    }

    /// `{"human": ..., "judge": ...}`, sorted keys; an undefined win rate is the string "nan".
    public static func json(human: ReviewResults, judge: ReviewResults, pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(["human": human, "judge": judge])
    }
}
