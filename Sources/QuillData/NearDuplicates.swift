import QuillCore

/// Near-duplicate detection with MinHash and LSH bands. A document's shingles are word n-grams,
/// or character n-grams when it is mostly CJK (no spaces to split words on); its signature keeps
/// the minimum of `permutations` hash functions over them, so two signatures agree in a slot
/// with probability equal to the documents' Jaccard similarity. Signatures are cut into `bands`
/// bands: documents that share a whole band become candidates, and a candidate counts as a
/// duplicate when the fraction of equal slots reaches `threshold`. Documents are taken in order
/// and the first of a group is kept, so the choice is deterministic.
///
/// Defaults come from the planted-duplicate measurement (Tests/QuillDataTests/
/// NearDuplicateTests.swift, figures in the README): 2-grams of words and of CJK characters,
/// 128 permutations in 32 bands of 4, threshold 0.4. Character 3-grams found 88% of the copies
/// with 10% edits; 2-grams at threshold 0.5 found 99.4%, at 0.4 all, with no false match.
public struct NearDuplicates: Sendable {
    public var wordNgram = 2
    public var characterNgram = 2
    public var permutations = 128
    public var bands = 32
    public var threshold = 0.4

    public init() {}

    /// The hash functions: h_i(x) = (a_i · x + b_i) mod (2^61 − 1), a_i and b_i from a fixed seed.
    private var coefficients: [(a: UInt64, b: UInt64)] {
        var random = SplitMix64(seed: 0x5151_2024_D3D0_0001)
        return (0..<permutations).map { _ in (random.next() % (Self.prime - 1) + 1, random.next() % Self.prime) }
    }
    static let prime: UInt64 = (1 << 61) - 1

    /// The shingles of a text, each hashed to 61 bits: n-grams of its units, where a unit is a
    /// word (a run of letters and digits, lowercased) or a single CJK character; n is
    /// `characterNgram` when CJK characters are most of the units, `wordNgram` otherwise.
    /// Whitespace and punctuation only separate units.
    public func shingles(_ text: String) -> [UInt64] {
        let scalars = Array(text.unicodeScalars)
        let (ranges, cjk) = Script.units(of: scalars, joiningApostrophesAndHyphens: false)
        let units = ranges.map { r -> UInt64 in
            if r.count == 1, Script.isCJK(scalars[r.lowerBound]) { return UInt64(scalars[r.lowerBound].value) &* 0x9E37_79B9_7F4A_7C15 }
            var word = FNV1a()
            for scalar in scalars[r] {   // lowercased: ASCII by arithmetic, the rest through String
                if scalar.isASCII { word.add(UInt64(scalar.value >= 0x41 && scalar.value <= 0x5A ? scalar.value | 0x20 : scalar.value)) }
                else { for s in String(scalar).lowercased().unicodeScalars { word.add(UInt64(s.value)) } }
            }
            return word.value
        }
        let n = min(cjk * 2 >= units.count ? characterNgram : wordNgram, units.count)
        guard n > 0 else { return [] }
        return (0...(units.count - n)).map { i in
            var h = FNV1a(seed: 0x8422_2325_CBF2_9CE4)
            for u in units[i..<(i + n)] { h.add(u); h.value ^= h.value >> 29 }
            return h.value % Self.prime
        }
    }

    /// The MinHash signature: `permutations` minimums (empty text: all UInt64.max).
    func signature(shingles: [UInt64], coefficients: [(a: UInt64, b: UInt64)]) -> [UInt64] {
        var minimums = [UInt64](repeating: .max, count: coefficients.count)
        for x in Set(shingles) {
            for (i, c) in coefficients.enumerated() {
                let h = Self.mulMod(c.a, x, c.b)
                if h < minimums[i] { minimums[i] = h }
            }
        }
        return minimums
    }

    /// (a·x + b) mod 2^61 − 1 with a 128-bit product.
    @inline(__always) static func mulMod(_ a: UInt64, _ x: UInt64, _ b: UInt64) -> UInt64 {
        let (high, low) = a.multipliedFullWidth(by: x)
        // 2^64 ≡ 2^3 (mod 2^61 − 1): fold the high part in
        var r = (low & prime) &+ (low >> 61) &+ (high << 3)
        r = (r & prime) &+ (r >> 61)
        r = r &+ b
        r = (r & prime) &+ (r >> 61)
        return r >= prime ? r - prime : r
    }

    /// The fraction of equal slots: an estimate of the Jaccard similarity.
    public static func similarity(_ a: [UInt64], _ b: [UInt64]) -> Double {
        Double(zip(a, b).filter { $0 == $1 }.count) / Double(max(a.count, 1))
    }

    /// One duplicate found: `index` duplicates the kept document `of`.
    public struct Match: Sendable, Equatable {
        public var index: Int, of: Int, similarity: Double
    }

    /// Which of `texts` are near duplicates of an earlier kept one.
    public func duplicates(in texts: [String]) -> [Match] {
        var index = Index(self)
        var matches: [Match] = []
        for (i, text) in texts.enumerated() {
            let sig = index.signature(text)
            if let match = index.match(sig) { matches.append(Match(index: i, of: match.0, similarity: match.1)) }
            else { index.insert(sig, id: i) }
        }
        return matches
    }

    /// The kept documents' signatures, by band, for incremental use (a stream of documents, or
    /// shards merged later).
    public struct Index: Sendable {
        let config: NearDuplicates
        let coefficients: [(a: UInt64, b: UInt64)]
        var buckets: [[UInt64: [Int]]]
        var signatures: [Int: [UInt64]] = [:]

        public init(_ config: NearDuplicates) {
            precondition(config.permutations % config.bands == 0, "permutations must be a multiple of bands")
            self.config = config
            coefficients = config.coefficients
            buckets = Array(repeating: [:], count: config.bands)
        }

        public func signature(_ text: String) -> [UInt64] {
            config.signature(shingles: config.shingles(text), coefficients: coefficients)
        }

        /// The most similar kept document at or above the threshold, among those sharing a band.
        public func match(_ signature: [UInt64]) -> (Int, Double)? {
            var best: (Int, Double)?
            var seen = Set<Int>()
            for (band, key) in bandKeys(signature).enumerated() {
                for id in buckets[band][key] ?? [] where seen.insert(id).inserted {
                    let s = NearDuplicates.similarity(signature, signatures[id]!)
                    if s >= config.threshold, s > (best?.1 ?? -1) || (s == best?.1 && id < best!.0) { best = (id, s) }
                }
            }
            return best
        }

        public mutating func insert(_ signature: [UInt64], id: Int) {
            signatures[id] = signature
            for (band, key) in bandKeys(signature).enumerated() { buckets[band][key, default: []].append(id) }
        }

        func bandKeys(_ signature: [UInt64]) -> [UInt64] {
            let rows = config.permutations / config.bands
            return (0..<config.bands).map { band in FNV1a.hash(signature[(band * rows)..<((band + 1) * rows)]) }
        }
    }
}

/// Unicode script tests the cleaning rules need.
public enum Script {
    /// Han, Hiragana, Katakana, Hangul and their punctuation and compatibility blocks.
    public static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x3000...0x303F, 0x3040...0x309F, 0x30A0...0x30FF, 0x3100...0x312F, 0x31F0...0x31FF, 0x3400...0x4DBF,
             0x4E00...0x9FFF, 0xAC00...0xD7AF, 0x1100...0x11FF, 0x3130...0x318F, 0xF900...0xFAFF, 0xFF00...0xFFEF,
             0x20000...0x2FA1F: true
        default: false
        }
    }
}
