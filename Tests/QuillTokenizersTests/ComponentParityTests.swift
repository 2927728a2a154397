import Foundation
import Testing
import QuillTokenizers

/// Every tokenizer.json component against HF `tokenizers`: five pipelines that HF trained and
/// saved (Fixtures/components.py), with HF's ids, type ids, offsets and decoded text per line.
@Suite struct ComponentParityTests {
    struct Expected: Decodable {
        let text: String
        let ids: [Int32]
        let offsets: [[Int]]
        let type_ids: [Int32]
        let decoded: String
    }

    /// Byte offsets in `text` to the Unicode scalar offsets HF's Python API reports.
    static func scalarOffsets(_ text: String, _ offsets: [Range<Int>]) -> [[Int]] {
        var scalarAt = [Int](repeating: 0, count: text.utf8.count + 1)
        var byte = 0, scalar = 0
        for s in text.unicodeScalars {
            for k in 0..<UTF8.width(s) { scalarAt[byte + k] = scalar }
            byte += UTF8.width(s); scalar += 1
        }
        scalarAt[byte] = scalar
        return offsets.map { r in
            let end = r.upperBound == 0 ? 0 : scalarAt[r.upperBound - 1] + (r.isEmpty ? 0 : 1)
            return [scalarAt[r.lowerBound], r.isEmpty ? scalarAt[r.lowerBound] : end]
        }
    }

    @Test(arguments: ["metaspace", "affixes", "wordpiece", "splits", "bytelevel"])
    func pipeline(_ name: String) throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.url("components/\(name).tokenizer.json"))
        let lines = try String(contentsOf: Fixtures.url("components/\(name).expected.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(Expected.self, from: Data($0.utf8)) }
        var idMismatches = 0, offsetMismatches = 0, typeMismatches = 0, decodeMismatches = 0
        for (i, e) in lines.enumerated() {
            let got = tokenizer.encodeWithOffsets(e.text)
            if got.ids != e.ids {
                idMismatches += 1
                if idMismatches <= 3 { Issue.record("\(name) line \(i + 1) \(e.text.debugDescription)\n  expected \(e.ids)\n  got      \(got.ids)") }
                continue
            }
            let offsets = Self.scalarOffsets(e.text, got.offsets)
            if offsets != e.offsets {
                offsetMismatches += 1
                if offsetMismatches <= 3 { Issue.record("\(name) offsets line \(i + 1) \(e.text.debugDescription)\n  expected \(e.offsets)\n  got      \(offsets)") }
            }
            if got.typeIds != e.type_ids { typeMismatches += 1 }
            let decoded = tokenizer.decode(got.ids, skipSpecialTokens: true)
            if decoded != e.decoded {
                decodeMismatches += 1
                if decodeMismatches <= 3 { Issue.record("\(name) decode line \(i + 1)\n  expected \(e.decoded.debugDescription)\n  got      \(decoded.debugDescription)") }
            }
        }
        print("\(name): ids \(lines.count - idMismatches)/\(lines.count), offsets \(lines.count - offsetMismatches), "
              + "type ids \(lines.count - typeMismatches), decode \(lines.count - decodeMismatches) identical to HF")
        #expect(idMismatches == 0)
        #expect(offsetMismatches == 0)
        #expect(typeMismatches == 0)
        #expect(decodeMismatches == 0)
    }
}
