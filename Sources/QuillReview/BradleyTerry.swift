import Foundation
import QuillCore
import QuillEval
import QuillModels

/// One judged comparison between two systems (indices into the study's systems).
public struct Battle: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable { case firstWins = "first", secondWins = "second", tie }
    public var first: Int
    public var second: Int
    public var outcome: Outcome
    public init(_ first: Int, _ second: Int, _ outcome: Outcome) {
        self.first = first
        self.second = second
        self.outcome = outcome
    }
}

/// Bradley-Terry ratings as Chatbot Arena computes them (FastChat's `compute_mle_elo`): the
/// maximum-likelihood fit of P(i beats j) = 1 / (1 + 10^((R_j − R_i) / 400)), where a win
/// counts 2 and a tie 1 for each side (ties count half), on the Elo scale with mean rating
/// 1000 (what an unpenalized logistic regression started at zero converges to), or shifted so
/// one `anchor` system has a chosen rating. Intervals are percentile bootstraps over battles
/// (numpy's interpolation), with the rank range they allow.
public enum BradleyTerry {
    public static let scale = 400.0
    public static let base = 10.0
    public static let meanRating = 1000.0

    public struct Anchor: Sendable, Equatable {
        public var system: Int
        public var rating: Double
        public init(system: Int, rating: Double) {
            self.system = system
            self.rating = rating
        }
    }

    /// Win weights: `w[i][j]` is 2 per win of i over j plus 1 per tie between them.
    public static func weights(_ battles: some Collection<Battle>, systems: Int) -> [[Double]] {
        var w = [[Double]](repeating: [Double](repeating: 0, count: systems), count: systems)
        for b in battles where b.first != b.second {
            switch b.outcome {
            case .firstWins: w[b.first][b.second] += 2
            case .secondWins: w[b.second][b.first] += 2
            case .tie: w[b.first][b.second] += 1; w[b.second][b.first] += 1
            }
        }
        return w
    }

    /// Ratings on the Elo scale, one per system; a system in no battle sits at the mean.
    public static func ratings(_ battles: some Collection<Battle>, systems: Int, anchor: Anchor? = nil) -> [Double] {
        let theta = strengths(weights(battles, systems: systems))
        var ratings = theta.map { scale * $0 / log(base) + meanRating }
        if let anchor, ratings.indices.contains(anchor.system) {
            let shift = anchor.rating - ratings[anchor.system]
            ratings = ratings.map { $0 + shift }
        }
        return ratings
    }

    /// Natural-log strengths θ (P(i beats j) = σ(θ_i − θ_j)) with mean zero, by Newton's
    /// method with a halving line search on the log-likelihood Σ w_ij ln σ(θ_i − θ_j).
    /// A system that never lost (or never won) has no finite maximum; the fit then stops where
    /// the gradient falls below its tolerance, far out, as sklearn's solver does.
    static func strengths(_ w: [[Double]]) -> [Double] {
        let k = w.count
        guard k > 1 else { return [Double](repeating: 0, count: k) }
        let played = (0..<k).filter { i in (0..<k).contains { w[i][$0] + w[$0][i] > 0 } }
        guard played.count > 1 else { return [Double](repeating: 0, count: k) }
        let n = played.count, total = w.joined().reduce(0, +)
        var theta = [Double](repeating: 0, count: n)
        func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
        func logLikelihood(_ t: [Double]) -> Double {
            var sum = 0.0
            for a in 0..<n { for b in 0..<n where a != b && w[played[a]][played[b]] > 0 {
                let x = t[a] - t[b]
                sum += w[played[a]][played[b]] * (x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)))
            } }
            return sum
        }
        var current = logLikelihood(theta)
        for _ in 0..<200 {
            // gradient and the negated Hessian, θ_0 held at zero (the fit is shift-invariant)
            var g = [Double](repeating: 0, count: n)
            var h = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
            for a in 0..<n { for b in 0..<n where a != b {
                let nab = w[played[a]][played[b]] + w[played[b]][played[a]]
                guard nab > 0 else { continue }
                let p = sigmoid(theta[a] - theta[b])
                g[a] += w[played[a]][played[b]] - nab * p
                h[a][a] += nab * p * (1 - p)
                h[a][b] -= nab * p * (1 - p)
            } }
            if g.map(abs).max()! < 1e-10 * max(total, 1) { break }
            let free = Array(1..<n)
            var matrix = free.map { a in free.map { h[a][$0] + (a == $0 ? 1e-12 : 0) } }
            var step = free.map { g[$0] }
            guard solve(&matrix, &step) else { break }
            var scale = 1.0, improved = false
            for _ in 0..<40 {
                var trial = theta
                for (i, a) in free.enumerated() { trial[a] += scale * step[i] }
                let value = logLikelihood(trial)
                if value >= current {
                    theta = trial
                    improved = value > current
                    current = value
                    break
                }
                scale /= 2
            }
            if !improved || step.map(abs).max()! * scale < 1e-13 { break }
        }
        let mean = theta.reduce(0, +) / Double(n)
        var result = [Double](repeating: 0, count: k)
        for (a, i) in played.enumerated() { result[i] = theta[a] - mean }
        return result
    }

    /// Solves m x = v in place (Gaussian elimination with partial pivoting); false if singular.
    static func solve(_ m: inout [[Double]], _ v: inout [Double]) -> Bool {
        let n = v.count
        for c in 0..<n {
            guard let pivot = (c..<n).max(by: { abs(m[$0][c]) < abs(m[$1][c]) }), abs(m[pivot][c]) > 1e-300 else { return false }
            m.swapAt(c, pivot)
            v.swapAt(c, pivot)
            for r in (c + 1)..<n where m[r][c] != 0 {
                let f = m[r][c] / m[c][c]
                for j in c..<n { m[r][j] -= f * m[c][j] }
                v[r] -= f * v[c]
            }
        }
        for c in stride(from: n - 1, through: 0, by: -1) {
            var s = v[c]
            for j in (c + 1)..<n { s -= m[c][j] * v[j] }
            v[c] = s / m[c][c]
        }
        return true
    }

    /// Ratings with bootstrap 95% intervals (battles resampled with replacement, `resamples`
    /// times, SplitMix64 seeded with `seed`) and the rank range each interval allows: best rank
    /// 1 + the systems whose lower bound is above this one's upper bound, worst rank the count
    /// of systems whose upper bound is not below this one's lower bound.
    public struct Fit: Sendable, Equatable, Codable {
        public var ratings: [Double]
        public var intervals: [[Double]]
        public var rankRanges: [[Int]]
        public var resamples: Int
        public var seed: UInt64
    }

    public static func fit(_ battles: [Battle], systems: Int, anchor: Anchor? = nil, resamples: Int = 1000, seed: UInt64 = 0) -> Fit {
        let ratings = ratings(battles, systems: systems, anchor: anchor)
        var samples = [[Double]](repeating: [], count: systems)
        var rng = SplitMix64(seed: seed)
        if !battles.isEmpty {
            for _ in 0..<resamples {
                let drawn = (0..<battles.count).map { _ in battles[Int(rng.next() % UInt64(battles.count))] }
                for (i, r) in Self.ratings(drawn, systems: systems, anchor: anchor).enumerated() { samples[i].append(r) }
            }
        }
        let intervals = samples.enumerated().map { i, s in
            s.isEmpty ? [ratings[i], ratings[i]] : [PairedComparison.percentile(s, 2.5), PairedComparison.percentile(s, 97.5)]
        }
        let ranks = intervals.map { mine in
            [1 + intervals.filter { $0[0] > mine[1] }.count, intervals.filter { $0[1] >= mine[0] }.count]
        }
        return Fit(ratings: ratings, intervals: intervals, rankRanges: ranks, resamples: resamples, seed: seed)
    }

    /// Wilson's score interval for a proportion at 95%: [low, high].
    public static func wilson(_ successes: Double, _ n: Double) -> [Double] {
        guard n > 0 else { return [0, 1] }
        let z = 1.959963984540054, p = successes / n
        let denominator = 1 + z * z / n
        let center = (p + z * z / (2 * n)) / denominator
        let half = z * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot() / denominator
        return [max(0, center - half), min(1, center + half)]
    }
}
