import Foundation
import Testing
@testable import QuillTokenizers

/// Inputs the fuzzers (scripts/fuzz) found to trap, hang or exhaust memory, each now a clear error.
@Suite struct HostileInputTests {
    func render(_ source: String) -> Result<String, JinjaError> {
        Result { () throws(JinjaError) -> String in
            try ChatTemplate(source).render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
        }
    }

    func refused(_ source: String, saying words: String) {
        switch render(source) {
        case .success(let text): Issue.record("\(source.prefix(80)) rendered \(text.utf8.count) bytes instead of failing")
        case .failure(let error): #expect(error.message.contains(words), "\(source.prefix(80)): \(error.message)")
        }
    }

    @Test func templatesThatWouldTrapAreErrors() throws {
        for (source, words) in [
            ("{{ 99999999999999999999 }}", "integer literal too large"),
            ("{{ 9223372036854775807 + 1 }}", "integer overflow"),
            ("{{ -(-9223372036854775807 - 1) }}", "integer overflow"),
            ("{{ (-9223372036854775807 - 1) // -1 }}", "integer overflow"),
            ("{{ 4611686018427387904 * 4 }}", "integer overflow"),
            ("{{ (100000000000000000000.0 * 100000000000000000000.0) | int }}", "cannot convert"),
            ("{{ (-9223372036854775807 - 1) | abs }}", "integer overflow"),
        ] { refused(source, saying: words) }
        // Python's semantics where they are defined, instead of a trap
        #expect(try render("{{ (-9223372036854775807 - 1) % -1 }},{{ -7 // 2 }},{{ -7 % 3 }},{{ 7 % -3 }}").get() == "0,-4,2,-2")
        #expect(try render("{{ 'ab' * -3 }}|{{ 'x' | indent(-2) }}|{{ (-9223372036854775807 - 1) is divisibleby(-1) }}").get() == "|x|True")
    }

    @Test func templatesThatWouldNotEndAreStopped() {
        for (source, words) in [
            ("{% for i in range(1000000000) %}x{% endfor %}", "range() of more than 100000"),
            ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "steps of work"),
            ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "macros called more than 100 deep"),
            ("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "MB"),
            ("{{ 'x' * 100000000 }}", "MB"),
            ("{% set ns = namespace(l=[]) %}{% for i in range(200) %}{% set ns.l = [ns.l] %}{% endfor %}", "nested more than 100 deep"),
            ("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns | tojson }}", "nested more than 100 deep"),
        ] { refused(source, saying: words) }
    }

    @Test func deeplyNestedSourceIsRefusedNotAStackOverflow() {
        refused("{{ " + String(repeating: "(", count: 100_000) + "1" + String(repeating: ")", count: 100_000) + " }}", saying: "nested more than 200 deep")
        refused("{{ " + String(repeating: "not ", count: 100_000) + "1 }}", saying: "nested more than 200 deep")
        refused("{{ " + String(repeating: "-", count: 100_000) + "1 }}", saying: "nested more than 200 deep")
        refused(String(repeating: "{% if true %}", count: 100_000), saying: "nested more than 200 deep")
    }

    @Test func tokenIdsOutsideAnyVocabularyAreRefused() {
        func load(_ json: String) -> String? {
            do { _ = try Tokenizer(tokenizerJSON: Data(json.utf8)); return nil } catch { return "\(error)" }
        }
        let negative = #"{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}"#
        let huge = #"{"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 2147483647}}}"#
        let addedHuge = #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 99999999999, "content": "x"}]}"#
        let typeId = #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 99999999999}}], "pair": [], "special_tokens": {}}}"#
        for (json, words) in [(negative, "outside 0..<16777216"), (huge, "outside 0..<16777216"), (addedHuge, "outside 0..<16777216"), (typeId, "type id")] {
            let error = load(json)
            #expect(error?.contains(words) == true, "\(json): \(error ?? "loaded")")
        }
    }

    @Test func sentencePieceSpecialIdsOutsideTheVocabularyAreNone() throws {
        let pieces: [(String, Float, Int)] = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3), ("▁", -3, 1), ("a", -2, 1), ("▁a", -1, 1)]
        let tokenizer = try Tokenizer(scoredPieces: pieces, unkId: 0, bosId: 1 << 40, eosId: 2, padId: -1,
                                      addSpacePrefix: true, addBos: true, byteFallback: false, source: "test")
        #expect(tokenizer.bosTokenId == nil && tokenizer.eosTokenId == 2 && tokenizer.padTokenId == nil)
        #expect(tokenizer.encode("a") == [5])
    }

    @Test func fileContentsReadsEmptyAndUnsizedFiles() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("quill-empty-\(getpid())")
        try Data().write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(try FileContents.read(url.path).isEmpty)
        #if os(Linux)
        // /proc files report size 0 but have contents
        #expect(try FileContents.read("/proc/self/status").count > 100)
        #endif
        #expect(throws: FileContents.Failure.self) { try FileContents.read(FileManager.default.temporaryDirectory.path) }
        #expect(throws: FileContents.Failure.self) { try FileContents.read("/no/such/file") }
        let big = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try big.write(to: url)
        #expect(try FileContents.read(url.path) == big)
    }
}
