import Foundation
import Testing
import QuillTokenizers
import QuillFormats

/// Fixture and asset access shared by the tokenizer tests.
enum Fixtures {
    struct Missing: Error, CustomStringConvertible {
        let name: String
        var description: String { "fixture \(name) is not in the test bundle (a fixture added after the last build?)" }
    }

    static func url(_ name: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil) else { throw Missing(name: name) }
        return url
    }

    /// The 3,000+ line golden corpus (one JSON string per line).
    static let corpus: [String] = {
        let text = try! String(contentsOf: url("corpus.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8), options: [.fragmentsAllowed]) as! String
        }
    }()

    static func ids(_ name: String) -> [[Int32]] {
        let text = try! String(contentsOf: url("\(name).ids"), encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map {
            $0.split(separator: " ").map { Int32($0)! }
        }
    }

    static func decoded(_ name: String) -> [String] {
        let text = try! String(contentsOf: url("\(name).decoded.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8), options: [.fragmentsAllowed]) as! String
        }
    }
}

enum Assets {
    /// A file fetched by `scripts/setup` into the cache; a clear failure if it is missing.
    static func path(_ relative: String) throws -> String {
        let url = QuillCache.root.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw AssetMissing(path: url.path)
        }
        return url.path
    }

    struct AssetMissing: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) is missing: run scripts/setup first" }
    }
}

/// Compares encodings line by line and reports the first differences readably.
func compareIds(_ name: String, _ tokenizer: Tokenizer, _ inputs: [String], _ expected: [[Int32]],
                addSpecialTokens: Bool = true, oracle: String = "HF tokenizers",
                sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(inputs.count == expected.count, "\(name): \(inputs.count) inputs, \(expected.count) expected lines",
            sourceLocation: sourceLocation)
    let got = tokenizer.encodeBatch(inputs, addSpecialTokens: addSpecialTokens)
    var mismatches: [Int] = []
    for i in 0..<min(inputs.count, expected.count) where got[i] != expected[i] { mismatches.append(i) }
    let tokens = got.reduce(0) { $0 + $1.count }
    print("\(name): \(inputs.count - mismatches.count)/\(inputs.count) lines identical to \(oracle) (\(tokens) ids)")
    for i in mismatches.prefix(5) {
        Issue.record("""
            \(name) line \(i + 1): \(inputs[i].debugDescription)
              expected \(expected[i])
              got      \(got[i])
            """, sourceLocation: sourceLocation)
    }
    #expect(mismatches.isEmpty, "\(name): \(mismatches.count) of \(inputs.count) lines differ", sourceLocation: sourceLocation)
}
