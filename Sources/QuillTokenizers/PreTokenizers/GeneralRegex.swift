/// The fallback for pre-tokenizer and normalizer patterns without a hand-written scanner:
/// the standard library's regex engine, run over Unicode scalars (not grapheme clusters,
/// which would glue `\r\n` and combining marks together), with Oniguruma's leftmost-first
/// alternation and backtracking.
package final class GeneralRegex: Sendable {
    nonisolated(unsafe) private let regex: Regex<AnyRegexOutput>
    package let source: String

    package init(_ source: String) throws(TokenizerError) {
        self.source = source
        do {
            regex = try Regex(Self.translate(source)).matchingSemantics(.unicodeScalar)
        } catch {
            throw .malformed(source: "regex", at: source, problem: "cannot compile pattern: \(error)")
        }
    }

    /// Oniguruma spellings that the standard library spells differently. Non-ASCII literals
    /// become `\x{...}` escapes, and short non-ASCII class ranges are listed scalar by scalar:
    /// the standard library compares range ends as canonically equivalent characters, so
    /// `Ὗ-ώ` (U+1F5F-U+1F7D) would see ώ as U+03CE and be rejected.
    package static func translate(_ pattern: String) -> String {
        let scalars = Array(pattern.replacingAll(#"\p{Han}"#, with: #"\p{Script=Han}"#).unicodeScalars)
        func escaped(_ v: UInt32) -> String { v < 0x80 ? String(Unicode.Scalar(v)!) : "\\x{" + String(v, radix: 16) + "}" }
        var out = ""
        var inClass = false
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if c == "\\" && i + 1 < scalars.count {
                // Oniguruma's \d is Nd only; the standard library's also takes ① and other digits.
                switch scalars[i + 1] {
                case "d": out += #"\p{Nd}"#
                case "D": out += #"\P{Nd}"#
                default: out.unicodeScalars.append(c); out.unicodeScalars.append(scalars[i + 1])
                }
                i += 2
                continue
            }
            if c == "[" { inClass = true } else if c == "]" { inClass = false }
            if inClass, i + 2 < scalars.count, scalars[i + 1] == "-", scalars[i + 2] != "]",
               c.value >= 0x80 || scalars[i + 2].value >= 0x80 {
                let lo = c.value, hi = scalars[i + 2].value
                if hi >= lo && hi - lo < 1024 {
                    for v in lo...hi where Unicode.Scalar(v) != nil { out += escaped(v) }
                } else {
                    out += escaped(lo) + "-" + escaped(hi)
                }
                i += 3
                continue
            }
            out += escaped(c.value)
            i += 1
        }
        return out
    }

    package func matches(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, into out: inout [Range<Int>]) {
        let text = String(decoding: UnsafeBufferPointer(start: p + start, count: end - start), as: UTF8.self)
        let utf8 = text.utf8
        for match in text.matches(of: regex) {
            let lo = utf8.distance(from: utf8.startIndex, to: match.range.lowerBound)
            let hi = utf8.distance(from: utf8.startIndex, to: match.range.upperBound)
            if hi > lo { out.append((start + lo)..<(start + hi)) }
        }
    }
}

extension String {
    package func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
