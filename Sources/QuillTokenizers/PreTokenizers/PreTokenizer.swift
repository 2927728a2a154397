/// A pre-tokenizer, as Hugging Face `tokenizers` defines them: it cuts normalized text into
/// pieces that the model encodes independently.
public indirect enum PreTokenizer: Sendable {
    /// GPT-2's byte-level step: optional prefix space, the GPT-2 regex split, then bytes as symbols.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(PatternMatcher, behavior: SplitBehavior, invert: Bool)
    /// SentencePiece's space marker: spaces become `replacement`, one may be prepended.
    case metaspace(replacement: String, prependScheme: PrependScheme, split: Bool)
    /// `\w+|[^\w\s]+`
    case whitespace
    case whitespaceSplit
    /// Whitespace removed, then each punctuation scalar isolated (BERT).
    case bert
    case punctuation(SplitBehavior)
    case digits(individual: Bool)
    case charDelimiterSplit(UInt32)
    case sequence([PreTokenizer])

    public enum PrependScheme: String, Sendable { case first, never, always }

    package func apply(_ t: inout PreTokenized) {
        switch self {
        case let .byteLevel(addPrefixSpace, useRegex):
            if addPrefixSpace {
                let bytes = t.text.bytes
                t.rewrite(prefix: { _, piece in bytes[piece.lowerBound] == 0x20 ? nil : [0x20] },
                          replace: { _ in nil })
            }
            if useRegex {
                let scanner = WordScanner(family: .gpt2, digitLimit: .max)
                t.split(behavior: .isolated) { p, range, out in
                    var i = range.lowerBound
                    while i < range.upperBound {
                        let j = scanner.match(p, i, range.upperBound)
                        out.append(i..<j)
                        i = j
                    }
                }
            }
            t.byteLevel = true
        case let .split(matcher, behavior, invert):
            t.split(behavior: behavior, invert: invert) { p, range, out in
                matcher.matches(p, range.lowerBound, range.upperBound, into: &out)
            }
        case let .metaspace(replacement, scheme, split):
            let marker = Array(replacement.utf8)
            let text = t.text
            t.rewrite(prefix: { _, piece in
                // spaces become the marker below, so a leading space counts as one
                let startsWithMarker = text.bytes[piece].starts(with: marker) || text.bytes[piece.lowerBound] == 0x20
                switch scheme {
                case .never: return nil
                case .always: return startsWithMarker ? nil : marker
                case .first:
                    let isFirst = text.originalRange(piece).lowerBound == 0
                    return isFirst && !startsWithMarker ? marker : nil
                }
            }, replace: { $0 == 0x20 ? marker : nil })
            if split {
                let matcher = try? PatternMatcher(.string(replacement))
                t.split(behavior: .mergedWithNext) { p, range, out in
                    matcher?.matches(p, range.lowerBound, range.upperBound, into: &out)
                }
            }
        case .whitespace:
            // HF: split on \w+|[^\w\s]+ inverted, removing the rest (the whitespace)
            t.split(behavior: .removed, invert: true) { p, range, out in
                var i = range.lowerBound
                while i < range.upperBound {
                    let (v, l) = decodeScalar(p, i)
                    let cls = UnicodeClasses.of(v)
                    if cls.contains(.whitespace) { i += l; continue }
                    let isWord = !cls.isDisjoint(with: .word)
                    var j = i + l
                    while j < range.upperBound {
                        let (w, m) = decodeScalar(p, j)
                        let c = UnicodeClasses.of(w)
                        if c.contains(.whitespace) || (!c.isDisjoint(with: .word)) != isWord { break }
                        j += m
                    }
                    out.append(i..<j)
                    i = j
                }
            }
        case .whitespaceSplit:
            t.splitScalars(behavior: .removed) { UnicodeClasses.of($0).contains(.whitespace) }
        case .bert:
            t.splitScalars(behavior: .removed) { UnicodeClasses.of($0).contains(.whitespace) }
            t.splitScalars(behavior: .isolated, Self.isBertPunctuation)
        case let .punctuation(behavior):
            t.splitScalars(behavior: behavior, Self.isBertPunctuation)
        case let .digits(individual):
            t.splitScalars(behavior: individual ? .isolated : .contiguous) {
                UnicodeClasses.of($0).contains(.number)
            }
        case let .charDelimiterSplit(delimiter):
            t.splitScalars(behavior: .removed) { $0 == delimiter }
        case let .sequence(steps):
            for step in steps { step.apply(&t) }
        }
    }

    /// ASCII punctuation and symbols, plus Unicode punctuation (BERT's `_is_punctuation`).
    static func isBertPunctuation(_ c: UInt32) -> Bool {
        if (33...47).contains(c) || (58...64).contains(c) || (91...96).contains(c) || (123...126).contains(c) {
            return true
        }
        return UnicodeClasses.of(c).contains(.punctuation)
    }
}
