import Foundation
import Testing
@testable import QuillData

/// Planted near duplicates in real text (Fixtures generated here, seeded): Shakespeare passages,
/// 唐诗三百首 poems and modern Chinese prose (the Chinese Debian Reference), each copied with a
/// known fraction of its words (English) or characters (Chinese) substituted, deleted or
/// inserted. Goal: recall ≥ 0.95 at 10% edits, precision ≥ 0.99.
@Suite struct NearDuplicateTests {
    static var cache: URL {
        ProcessInfo.processInfo.environment["QUILL_CACHE"].map(URL.init(fileURLWithPath:))
            ?? URL(fileURLWithPath: NSString(string: "~/.cache/quill").expandingTildeInPath)
    }

    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
    }

    /// The three kinds of real documents.
    static func originals() throws -> [(kind: String, text: String)] {
        var docs: [(String, String)] = []
        for play in ["hamlet", "macbeth", "othello", "lear", "tempest", "twelfth_night"] {
            let words = try String(contentsOf: cache.appendingPathComponent("texts/shakespeare/\(play)_gut.txt"), encoding: .utf8)
                .split(whereSeparator: \.isWhitespace)
            for start in stride(from: 2000, to: words.count - 150, by: 400) {   // 150-word passages, 250 apart
                docs.append(("shakespeare", words[start..<(start + 150)].joined(separator: " ")))
            }
        }
        let tang = try String(contentsOf: cache.appendingPathComponent("texts/fortunes-zh/tang300"), encoding: .utf8)
            .replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        for poem in tang.components(separatedBy: "\n%\n") {
            let text = poem.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.unicodeScalars.filter(Script.isCJK).count >= 20 { docs.append(("tang", text)) }
        }
        let book = try GzipFile.contents(of: cache.appendingPathComponent("texts/debian-reference/debian-reference.zh-cn.txt.gz").path)
        var seen = Set<String>()
        for paragraph in String(decoding: book, as: UTF8.self).components(separatedBy: "\n\n") {
            let text = paragraph.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined()
            if text.unicodeScalars.filter(Script.isCJK).count >= 60, seen.insert(text).inserted { docs.append(("zh-prose", text)) }
        }
        return docs
    }

    /// A copy with about `rate` of its units edited (a third each substituted, deleted, inserted):
    /// words in English; in Chinese each Han character, and each run of Latin letters or digits.
    static func edited(_ text: String, kind: String, rate: Double, rng: inout Rng) -> String {
        let chinese = kind != "shakespeare"
        var units: [(text: String, editable: Bool)] = []
        if chinese {
            for c in text {
                let latin = c.isASCII && (c.isLetter || c.isNumber)
                if latin, let last = units.last, last.editable, last.text.last!.isASCII { units[units.count - 1].text.append(c) }
                else { units.append((String(c), latin || c.unicodeScalars.allSatisfy(Script.isCJK) && c.isLetter)) }
            }
        } else {
            units = text.split(separator: " ").map { (String($0), true) }
        }
        let pool = chinese ? Array("的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会").map { String($0) }
                           : ["the", "and", "sweet", "lord", "night", "good", "thou", "fair", "love", "death", "king", "heaven"]
        var out: [String] = []
        for unit in units {
            guard unit.editable, rng.chance(rate) else { out.append(unit.text); continue }
            switch rng.below(3) {
            case 0: out.append(pool[rng.below(pool.count)])
            case 1: break
            default: out.append(unit.text); out.append(pool[rng.below(pool.count)])
            }
        }
        return chinese ? out.joined() : out.joined(separator: " ")
    }

    struct Score { var precision: Double; var recall: Double; var planted: Int; var documents: Int }

    static func measure(rate: Double, config: NearDuplicates = NearDuplicates(), kinds: Set<String>? = nil) throws -> Score {
        var rng = Rng(state: 2024)
        let originals = try Self.originals().filter { kinds?.contains($0.kind) ?? true }
        var corpus: [(text: String, group: Int)] = originals.enumerated().map { ($1.text, $0) }
        var planted = 0
        for (i, doc) in originals.enumerated() where rng.chance(0.3) {
            corpus.append((edited(doc.text, kind: doc.kind, rate: rate, rng: &rng), i))
            planted += 1
        }
        for i in stride(from: corpus.count - 1, to: 0, by: -1) { corpus.swapAt(i, rng.below(i + 1)) }   // seeded shuffle
        let matches = config.duplicates(in: corpus.map(\.text))
        let correct = matches.filter { corpus[$0.index].group == corpus[$0.of].group }.count
        return Score(precision: matches.isEmpty ? 1 : Double(correct) / Double(matches.count),
                     recall: Double(correct) / Double(max(planted, 1)), planted: planted, documents: corpus.count)
    }

    @Test func plantedNearDuplicatesAreFound() throws {
        for rate in [0.05, 0.10, 0.20, 0.30] {
            let s = try Self.measure(rate: rate)
            print(String(format: "near duplicates at %2.0f%% edits: precision %.4f, recall %.4f (%d planted in %d documents)",
                         100 * rate, s.precision, s.recall, s.planted, s.documents))
            if rate <= 0.10 {
                #expect(s.recall >= 0.95)
                #expect(s.precision >= 0.99)
            }
        }
        for kind in ["shakespeare", "tang", "zh-prose"] {
            let s = try Self.measure(rate: 0.10, kinds: [kind])
            print(String(format: "  %@ at 10%%: precision %.4f, recall %.4f (%d planted)", kind, s.precision, s.recall, s.planted))
        }
    }

    @Test func mulModMatchesWideArithmetic() {
        var rng = Rng(state: 9)
        for _ in 0..<1000 {
            let a = rng.next() % NearDuplicates.prime, x = rng.next() % NearDuplicates.prime, b = rng.next() % NearDuplicates.prime
            let (high, low) = a.multipliedFullWidth(by: x)
            let product = (UInt128(high) << 64 | UInt128(low)) % UInt128(NearDuplicates.prime)
            #expect(NearDuplicates.mulMod(a, x, b) == UInt64((product + UInt128(b)) % UInt128(NearDuplicates.prime)))
        }
    }
}
