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

    static let englishStopWords: Set<Substring> = ["the", "be", "to", "of", "and", "that", "have", "with"]
    static let chineseStopCharacters: Set<Character> = ["的", "了", "是", "在", "和", "有", "不", "我", "这", "也", "就", "人", "之", "而", "其", "以"]

    /// The first rule `text` breaks, as a reason code and a readable detail.
    public func check(_ text: String) -> (reason: String, detail: String)? {
        let characters = text.count
        if characters < minCharacters { return ("too_short", "\(characters) characters < \(minCharacters)") }
        if characters > maxCharacters { return ("too_long", "\(characters) characters > \(maxCharacters)") }
        let cjk = text.unicodeScalars.lazy.filter(Script.isCJK).count
        let isCJK = cjk * 2 >= text.unicodeScalars.lazy.filter({ $0.properties.isAlphabetic }).count
        // units: words, or CJK characters (plus any Latin words among them)
        let units = Self.units(text, cjk: isCJK)
        if units.count < minWords { return ("too_few_words", "\(units.count) \(isCJK ? "characters" : "words") < \(minWords)") }
        if units.count > maxWords { return ("too_many_words", "\(units.count) > \(maxWords)") }
        if !isCJK {
            let mean = Double(units.reduce(0) { $0 + $1.count }) / Double(units.count)
            if mean < minMeanWordLength || mean > maxMeanWordLength {
                return ("mean_word_length", String(format: "mean word length %.2f outside [%.0f, %.0f]", mean, minMeanWordLength, maxMeanWordLength))
            }
        }
        let hashes = text.filter { $0 == "#" }.count
        let ellipses = text.components(separatedBy: "...").count - 1 + text.filter { $0 == "…" }.count
        let symbolRatio = Double(hashes + ellipses) / Double(units.count)
        if symbolRatio > maxSymbolRatio { return ("symbol_ratio", String(format: "%.3f # and ... per word > %.2f", symbolRatio, maxSymbolRatio)) }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if !lines.isEmpty {
            let bullets = lines.filter { l in ["•", "●", "○", "■", "□", "▪", "-", "*", "·", "◆"].contains { l.hasPrefix($0) } }.count
            if Double(bullets) / Double(lines.count) > maxBulletLineRatio {
                return ("bullet_lines", "\(bullets) of \(lines.count) lines start with a bullet")
            }
            let ellipsisLines = lines.filter { $0.hasSuffix("...") || $0.hasSuffix("…") }.count
            if Double(ellipsisLines) / Double(lines.count) > maxEllipsisLineRatio {
                return ("ellipsis_lines", "\(ellipsisLines) of \(lines.count) lines end with an ellipsis")
            }
        }
        if !isCJK {
            let alphabetic = units.filter { $0.contains { $0.isLetter } }.count
            if Double(alphabetic) / Double(units.count) < minAlphabeticWordRatio {
                return ("non_alphabetic_words", "\(units.count - alphabetic) of \(units.count) words have no letter")
            }
            let stops = units.filter { Self.englishStopWords.contains(Substring($0.lowercased())) }.count
            if stops < minStopWords, text.unicodeScalars.contains(where: { $0.properties.isAlphabetic && $0.isASCII }) {
                // stop words apply to English-like Latin text only
                if Self.looksEnglish(units) { return ("stop_words", "\(stops) English stop words < \(minStopWords)") }
            }
        } else {
            let stops = text.filter { Self.chineseStopCharacters.contains($0) }.count
            if stops < minStopWords { return ("stop_words", "\(stops) Chinese function characters < \(minStopWords)") }
        }
        return repetition(text, units: units, ngramScale: isCJK ? 2 : 1)
    }

    /// Gopher's repetition rules: duplicated lines and paragraphs, the most frequent n-grams,
    /// characters covered by repeated n-grams. In CJK text the units are characters, about half
    /// a word each, so the n-gram rules look at 2n characters where English looks at n words.
    func repetition(_ text: String, units: [Substring], ngramScale: Int) -> (reason: String, detail: String)? {
        for (separator, maxRatio, maxCharacterRatio, name) in [("\n\n", maxDuplicateParagraphRatio, maxDuplicateParagraphCharacterRatio, "paragraph"),
                                                                ("\n", maxDuplicateLineRatio, maxDuplicateLineCharacterRatio, "line")] {
            let pieces = text.components(separatedBy: separator).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            guard pieces.count > 1 else { continue }
            var seen = Set<String>(), duplicates = 0, duplicateCharacters = 0
            for p in pieces where !seen.insert(p).inserted { duplicates += 1; duplicateCharacters += p.count }
            if Double(duplicates) / Double(pieces.count) > maxRatio {
                return ("duplicate_\(name)s", "\(duplicates) of \(pieces.count) \(name)s repeat")
            }
            if Double(duplicateCharacters) / Double(text.count) > maxCharacterRatio {
                return ("duplicate_\(name)_characters", String(format: "repeated %@s hold %.0f%% of the characters", name, 100 * Double(duplicateCharacters) / Double(text.count)))
            }
        }
        let totalCharacters = Double(units.reduce(0) { $0 + $1.count })
        guard totalCharacters > 0 else { return nil }
        for (words, maxRatio) in maxTopNgramRatio.sorted(by: { $0.key < $1.key }) where units.count >= words * ngramScale {
            let n = words * ngramScale
            var counts: [String: Int] = [:]
            for i in 0...(units.count - n) { counts[units[i..<(i + n)].joined(separator: " "), default: 0] += 1 }
            if let (gram, count) = counts.max(by: { $0.value < $1.value }), count > 1 {
                let ratio = Double(count * gram.filter { $0 != " " }.count) / totalCharacters
                if ratio > maxRatio { return ("top_\(words)gram", String(format: "\"%@\" covers %.0f%% of the characters", String(gram.prefix(40)), 100 * ratio)) }
            }
        }
        for (words, maxRatio) in maxDuplicateNgramRatio.sorted(by: { $0.key < $1.key }) where units.count >= words * ngramScale {
            let n = words * ngramScale
            var seen = Set<String>()
            var covered = [Bool](repeating: false, count: units.count)
            for i in 0...(units.count - n) {
                let gram = units[i..<(i + n)].joined(separator: " ")
                if !seen.insert(gram).inserted { for k in i..<(i + n) { covered[k] = true } }
            }
            let duplicated = Double(zip(units, covered).filter(\.1).reduce(0) { $0 + $1.0.count })
            if duplicated / totalCharacters > maxRatio {
                return ("duplicate_\(words)grams", String(format: "repeated %d-grams (%@) cover %.0f%% of the characters", n,
                                                          ngramScale > 1 ? "characters" : "words", 100 * duplicated / totalCharacters))
            }
        }
        return nil
    }

    /// Words (runs of letters and digits, with inner apostrophes and hyphens); in CJK text each
    /// CJK character is a unit of its own.
    static func units(_ text: String, cjk: Bool) -> [Substring] {
        var units: [Substring] = []
        var start: String.Index?
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let isCJKChar = cjk && c.unicodeScalars.first.map(Script.isCJK) == true && c.isLetter
            if isCJKChar {
                if let s = start { units.append(text[s..<i]); start = nil }
                units.append(text[i...i])
            } else if c.isLetter || c.isNumber || ((c == "'" || c == "-") && start != nil) {
                if start == nil { start = i }
            } else if let s = start {
                units.append(text[s..<i]); start = nil
            }
            i = text.index(after: i)
        }
        if let s = start { units.append(text[s...]) }
        return units
    }

    static func looksEnglish(_ units: [Substring]) -> Bool {
        let ascii = units.filter { $0.allSatisfy { $0.isASCII } }.count
        return Double(ascii) / Double(max(units.count, 1)) > 0.9
    }
}

extension Script {
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
