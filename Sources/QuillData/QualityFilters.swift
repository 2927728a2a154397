import Foundation

/// Document-level filters, each returning the reason a document fails or nil: length, Gopher's
/// quality rules (Rae et al. 2021, as datatrove implements them) and repetition rules, with
/// Chinese variants wherever a rule assumes spaces between words or Latin punctuation: a CJK
/// document is measured in characters, its sentence ends are 。！？, its stop words 的/了/是/...
public struct QualityFilters: Sendable, Codable {
    // length, in characters (every CJK character counts one)
    public var minCharacters = 50
    public var maxCharacters = 1_000_000
    // Gopher quality
    public var minWords = 50, maxWords = 100_000              // words, or CJK characters
    public var minMeanWordLength = 3.0, maxMeanWordLength = 10.0
    public var maxSymbolRatio = 0.1                          // "#" and "..." per word
    public var maxBulletLineRatio = 0.9
    public var maxEllipsisLineRatio = 0.3
    public var minAlphabeticWordRatio = 0.8
    public var minStopWords = 2
    // Gopher repetition
    public var maxDuplicateLineRatio = 0.3, maxDuplicateParagraphRatio = 0.3
    public var maxDuplicateLineCharacterRatio = 0.2, maxDuplicateParagraphCharacterRatio = 0.2
    public var maxTopNgramRatio: [Int: Double] = [2: 0.2, 3: 0.18, 4: 0.16]
    public var maxDuplicateNgramRatio: [Int: Double] = [5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10]

    public init() {}

    static let englishStopWords: Set<String> = ["the", "be", "to", "of", "and", "that", "have", "with"]
    static let chineseStopCharacters: Set<Unicode.Scalar> = Set("的了是在和有不我这也就人之而其以".unicodeScalars)
    static let bullets: Set<Unicode.Scalar> = Set("•●○■□▪-*·◆".unicodeScalars)

    /// A text seen as Unicode scalars: its units (words, or single CJK characters) and lines as
    /// index ranges, so that every rule reads the same arrays and no strings are built.
    struct Analysis {
        let scalars: [Unicode.Scalar]
        var units: [Range<Int>] = []
        var lines: [Range<Int>] = []      // trimmed, non-empty
        var paragraphs: [Range<Int>] = [] // runs of lines between blank lines
        var cjkUnits = 0

        init(_ text: String) {
            scalars = Array(text.unicodeScalars)
            (units, cjkUnits) = Script.units(of: scalars, joiningApostrophesAndHyphens: true)
            var lineStart = 0, paragraphStart: Int?
            for (i, s) in scalars.enumerated() where s == "\n" || i == scalars.count - 1 {
                let line = Self.trim(lineStart..<(s == "\n" ? i : i + 1), scalars)
                if line.isEmpty {
                    if let p = paragraphStart, let last = lines.last { paragraphs.append(p..<last.upperBound); paragraphStart = nil }
                } else {
                    lines.append(line)
                    if paragraphStart == nil { paragraphStart = line.lowerBound }
                }
                lineStart = i + 1
            }
            if let p = paragraphStart, let last = lines.last { paragraphs.append(p..<last.upperBound) }
        }

        static func trim(_ r: Range<Int>, _ s: [Unicode.Scalar]) -> Range<Int> {
            var a = r.lowerBound, b = r.upperBound
            while a < b, s[a] == " " || s[a] == "\t" || s[a] == "\r" || s[a] == "\u{00A0}" || s[a] == "\u{3000}" { a += 1 }
            while b > a, s[b - 1] == " " || s[b - 1] == "\t" || s[b - 1] == "\r" || s[b - 1] == "\u{00A0}" || s[b - 1] == "\u{3000}" { b -= 1 }
            return a..<b
        }

        func hash(_ r: Range<Int>) -> UInt64 { FNV1a.hash(scalars[r].lazy.map(\.value)) }

        func hasSuffix(_ r: Range<Int>, _ suffix: String) -> Bool {
            let tail = Array(suffix.unicodeScalars)
            return r.count >= tail.count && Array(scalars[(r.upperBound - tail.count)..<r.upperBound]) == tail
        }
    }

    /// The first rule `text` breaks, as a reason code and a readable detail. Characters are
    /// counted as Unicode scalars (every CJK character is one).
    public func check(_ text: String) -> (reason: String, detail: String)? {
        let a = Analysis(text)
        let characters = a.scalars.count
        if characters < minCharacters { return ("too_short", "\(characters) characters < \(minCharacters)") }
        if characters > maxCharacters { return ("too_long", "\(characters) characters > \(maxCharacters)") }
        let isCJK = a.cjkUnits >= a.units.count - a.cjkUnits   // more Han/kana/Hangul characters than other words
        let units = a.units.count
        if units < minWords { return ("too_few_words", "\(units) \(isCJK ? "characters" : "words") < \(minWords)") }
        if units > maxWords { return ("too_many_words", "\(units) > \(maxWords)") }
        if !isCJK {
            let mean = Double(a.units.reduce(0) { $0 + $1.count }) / Double(units)
            if mean < minMeanWordLength || mean > maxMeanWordLength {
                return ("mean_word_length", String(format: "mean word length %.2f outside [%.0f, %.0f]", mean, minMeanWordLength, maxMeanWordLength))
            }
        }
        var hashes = 0, ellipses = 0, dots = 0
        for s in a.scalars {
            if s == "#" { hashes += 1 }
            if s == "…" { ellipses += 1 }
            if s == "." { dots += 1; if dots == 3 { ellipses += 1; dots = 0 } } else { dots = 0 }
        }
        let symbolRatio = Double(hashes + ellipses) / Double(units)
        if symbolRatio > maxSymbolRatio { return ("symbol_ratio", String(format: "%.3f # and ... per word > %.2f", symbolRatio, maxSymbolRatio)) }
        if !a.lines.isEmpty {
            let bulletLines = a.lines.filter { Self.bullets.contains(a.scalars[$0.lowerBound]) }.count
            if Double(bulletLines) / Double(a.lines.count) > maxBulletLineRatio {
                return ("bullet_lines", "\(bulletLines) of \(a.lines.count) lines start with a bullet")
            }
            let ellipsisLines = a.lines.filter { a.hasSuffix($0, "...") || a.hasSuffix($0, "…") }.count
            if Double(ellipsisLines) / Double(a.lines.count) > maxEllipsisLineRatio {
                return ("ellipsis_lines", "\(ellipsisLines) of \(a.lines.count) lines end with an ellipsis")
            }
        }
        if !isCJK {
            let alphabetic = a.units.filter { r in r.contains { a.scalars[$0].properties.isAlphabetic } }.count
            if Double(alphabetic) / Double(units) < minAlphabeticWordRatio {
                return ("non_alphabetic_words", "\(units - alphabetic) of \(units) words have no letter")
            }
            // stop words apply to English-like text (mostly ASCII words) only
            var ascii = 0, stops = 0
            for r in a.units {
                guard r.allSatisfy({ a.scalars[$0].isASCII }) else { continue }
                ascii += 1
                if r.count <= 4, Self.englishStopWords.contains(String(String.UnicodeScalarView(a.scalars[r])).lowercased()) { stops += 1 }
            }
            if stops < minStopWords, Double(ascii) / Double(units) > 0.9 {
                return ("stop_words", "\(stops) English stop words < \(minStopWords)")
            }
        } else {
            let stops = a.scalars.filter { Self.chineseStopCharacters.contains($0) }.count
            if stops < minStopWords { return ("stop_words", "\(stops) Chinese function characters < \(minStopWords)") }
        }
        return repetition(a, ngramScale: isCJK ? 2 : 1)
    }

    /// Gopher's repetition rules: duplicated lines and paragraphs, the most frequent n-grams,
    /// characters covered by repeated n-grams. In CJK text the units are characters, about half
    /// a word each, so the n-gram rules look at 2n characters where English looks at n words.
    func repetition(_ a: Analysis, ngramScale: Int) -> (reason: String, detail: String)? {
        let characters = Double(a.scalars.count)
        for (pieces, maxRatio, maxCharacterRatio, name) in [(a.paragraphs, maxDuplicateParagraphRatio, maxDuplicateParagraphCharacterRatio, "paragraph"),
                                                             (a.lines, maxDuplicateLineRatio, maxDuplicateLineCharacterRatio, "line")] {
            guard pieces.count > 1 else { continue }
            var seen = Set<UInt64>(), duplicates = 0, duplicateCharacters = 0
            for p in pieces where !seen.insert(a.hash(p)).inserted { duplicates += 1; duplicateCharacters += p.count }
            if Double(duplicates) / Double(pieces.count) > maxRatio {
                return ("duplicate_\(name)s", "\(duplicates) of \(pieces.count) \(name)s repeat")
            }
            if Double(duplicateCharacters) / characters > maxCharacterRatio {
                return ("duplicate_\(name)_characters", String(format: "repeated %@s hold %.0f%% of the characters", name, 100 * Double(duplicateCharacters) / characters))
            }
        }
        // n-grams as rolling hashes of per-unit hashes: no strings built per position
        let units = a.units
        let lengths = units.map(\.count)
        let totalCharacters = Double(lengths.reduce(0, +))
        guard totalCharacters > 0 else { return nil }
        let hashes = units.map { r in   // ASCII case folded
            FNV1a.hash(a.scalars[r].lazy.map { $0.value >= 0x41 && $0.value <= 0x5A ? $0.value | 0x20 : $0.value })
        }
        func grams(_ n: Int) -> [UInt64] {
            (0...(units.count - n)).map { i in
                var h: UInt64 = UInt64(n)
                for k in i..<(i + n) { h = (h &* 0x9E37_79B9_7F4A_7C15) ^ hashes[k]; h ^= h >> 31 }
                return h
            }
        }
        for (words, maxRatio) in maxTopNgramRatio.sorted(by: { $0.key < $1.key }) where units.count >= words * ngramScale {
            let n = words * ngramScale
            var counts: [UInt64: (count: Int, first: Int)] = [:]
            for (i, g) in grams(n).enumerated() { counts[g, default: (0, i)].count += 1 }
            if let (_, top) = counts.max(by: { $0.value.count < $1.value.count }), top.count > 1 {
                let ratio = Double(top.count * lengths[top.first..<(top.first + n)].reduce(0, +)) / totalCharacters
                if ratio > maxRatio {
                    let gram = units[top.first..<(top.first + n)].map { String(String.UnicodeScalarView(a.scalars[$0])) }
                        .joined(separator: ngramScale > 1 ? "" : " ")
                    return ("top_\(words)gram", String(format: "\"%@\" covers %.0f%% of the characters", String(gram.prefix(40)), 100 * ratio))
                }
            }
        }
        for (words, maxRatio) in maxDuplicateNgramRatio.sorted(by: { $0.key < $1.key }) where units.count >= words * ngramScale {
            let n = words * ngramScale
            var seen = Set<UInt64>()
            var covered = [Bool](repeating: false, count: units.count)
            for (i, g) in grams(n).enumerated() where !seen.insert(g).inserted { for k in i..<(i + n) { covered[k] = true } }
            let duplicated = Double(zip(lengths, covered).filter(\.1).reduce(0) { $0 + $1.0 })
            if duplicated / totalCharacters > maxRatio {
                return ("duplicate_\(words)grams", String(format: "repeated %d-grams (%@) cover %.0f%% of the characters", n,
                                                          ngramScale > 1 ? "characters" : "words", 100 * duplicated / totalCharacters))
            }
        }
        return nil
    }
}

extension Script {
    /// Letters and digits: ASCII by range, others by their Unicode properties.
    @inline(__always) static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII {
            let v = s.value | 0x20
            return (v >= 0x61 && v <= 0x7A) || (s.value >= 0x30 && s.value <= 0x39)
        }
        return s.properties.isAlphabetic || s.properties.numericType != nil
    }

    /// The units the quality rules and MinHash count: each CJK character alone, and runs of other
    /// letters and digits (with inner apostrophes and hyphens when asked: "don't", "well-known")
    /// as words. Returns their index ranges and how many are CJK characters.
    static func units(of scalars: [Unicode.Scalar], joiningApostrophesAndHyphens joining: Bool) -> (units: [Range<Int>], cjk: Int) {
        var units: [Range<Int>] = [], cjk = 0, start: Int?
        for (i, s) in scalars.enumerated() {
            let word = isWordCharacter(s)
            if word && !s.isASCII && isCJK(s) {
                if let b = start { units.append(b..<i); start = nil }
                units.append(i..<(i + 1)); cjk += 1
            } else if word || (joining && (s == "'" || s == "-") && start != nil) {
                if start == nil { start = i }
            } else if let b = start {
                units.append(b..<i); start = nil
            }
        }
        if let b = start { units.append(b..<scalars.count) }
        return (units, cjk)
    }

    /// The dominant writing system of a text, as a language code where the script tells it:
    /// "zh" (Han without kana), "ja" (kana), "ko" (Hangul), "ru" for Cyrillic, "ar", "el", "he",
    /// "hi" (Devanagari), "th", "latin" for Latin-script languages; "und" without letters.
    public static func language(of text: String) -> String {
        var han = 0, kana = 0, hangul = 0, latin = 0, cyrillic = 0, arabic = 0, greek = 0, hebrew = 0, devanagari = 0, thai = 0
        for s in text.unicodeScalars where s.properties.isAlphabetic {
            switch s.value {
            case 0x3040...0x30FF, 0x31F0...0x31FF: kana += 1
            case 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF, 0x20000...0x2FA1F: han += 1
            case 0xAC00...0xD7AF, 0x1100...0x11FF, 0x3130...0x318F: hangul += 1
            case 0x41...0x5A, 0x61...0x7A, 0xC0...0x24F, 0x1E00...0x1EFF: latin += 1
            case 0x400...0x52F: cyrillic += 1
            case 0x600...0x6FF, 0x750...0x77F, 0xFB50...0xFDFF, 0xFE70...0xFEFF: arabic += 1
            case 0x370...0x3FF: greek += 1
            case 0x590...0x5FF: hebrew += 1
            case 0x900...0x97F: devanagari += 1
            case 0xE00...0xE7F: thai += 1
            default: break
            }
        }
        // Japanese mixes kana into Han: a little kana is enough
        let cjk = han + kana
        let counts: [(String, Int)] = [("zh", han), ("ja", kana), ("ko", hangul), ("latin", latin), ("ru", cyrillic), ("ar", arabic),
                                       ("el", greek), ("he", hebrew), ("hi", devanagari), ("th", thai)]
        if kana > 0, kana * 10 >= cjk, cjk >= max(latin, hangul) { return "ja" }
        guard let best = counts.max(by: { $0.1 < $1.1 }), best.1 > 0 else { return "und" }
        return best.0
    }
}
