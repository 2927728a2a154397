import Foundation
import Testing
@testable import QuillTokenizers

/// Components against hand-checked cases (the parity suites cover them against HF at scale).
@Suite struct NormalizerTests {
    func normalize(_ n: Normalizer, _ s: String) -> String {
        var t = NormalizedText(Array(s.utf8))
        n.apply(&t)
        return String(decoding: t.bytes, as: UTF8.self)
    }

    @Test func unicodeForms() {
        #expect(normalize(.nfd, "Äpfel").unicodeScalars.map(\.value) == [0x41, 0x308, 0x70, 0x66, 0x65, 0x6C])
        #expect(normalize(.nfc, "e\u{301}t\u{E9}") == "\u{E9}t\u{E9}")
        #expect(normalize(.nfkc, "ﬁ①") == "fi1")
        #expect(normalize(.stripAccents, normalize(.nfd, "Äpfel")) == "Apfel")
        #expect(normalize(.bert(cleanText: true, handleChineseChars: true, stripAccents: nil, lowercase: true), "Äpfel\t你好") == "apfel  你  好 ")
    }
}

@Suite struct RegexTranslationTests {
    @Test func rangesWithCanonicalEquivalents() throws {
        let t = GeneralRegex.translate("[\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}]+")
        print(t)
        _ = try GeneralRegex("[\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}]+")
    }
}

/// The hand-written scanners against their reference twin: the general regex engine running the
/// same pattern, on every line of the golden corpus.
@Suite struct ScannerTwinTests {
    @Test(arguments: [WordScanner.gpt2Pattern, WordScanner.cl100kPattern, WordScanner.qwen2Pattern])
    func scannerMatchesTheRegexEngine(_ pattern: String) throws {
        let scanner = try #require(WordScanner(pattern: pattern))
        let regex = try GeneralRegex(pattern)
        var differing = 0
        for line in Fixtures.corpus {
            let bytes = Array(line.utf8)
            var fast: [Range<Int>] = [], reference: [Range<Int>] = []
            bytes.withUnsafeBufferPointer { buf in
                guard let p = buf.baseAddress else { return }
                var i = 0
                while i < buf.count { let j = scanner.match(p, i, buf.count); fast.append(i..<j); i = j }
                regex.matches(p, 0, buf.count, into: &reference)
            }
            if fast != reference {
                differing += 1
                if differing <= 3 { Issue.record("\(line.debugDescription): scanner \(fast), regex \(reference)") }
            }
        }
        print("scanner vs regex engine: \(Fixtures.corpus.count - differing)/\(Fixtures.corpus.count) lines split identically")
        #expect(differing == 0)
    }
}
