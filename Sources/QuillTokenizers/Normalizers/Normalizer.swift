import Foundation

/// A text normalizer, as Hugging Face `tokenizers` defines them in `tokenizer.json`.
public indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case stripAccents
    case strip(left: Bool, right: Bool)
    case replace(pattern: PatternMatcher, content: String)
    case prepend(String)
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool?, lowercase: Bool)
    case sequence([Normalizer])

    package func apply(_ text: inout NormalizedText) {
        switch self {
        case .nfc: Self.unicodeNormalize(&text) { $0.precomposedStringWithCanonicalMapping }
        case .nfd: Self.unicodeNormalize(&text) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc: Self.unicodeNormalize(&text) { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd: Self.unicodeNormalize(&text) { $0.decomposedStringWithCompatibilityMapping }
        case .lowercase:
            if !text.bytes.contains(where: { $0 >= 0x80 || (0x41...0x5A).contains($0) }) { return }
            text.transformScalars { scalar, out in
                if scalar < 0x80 {
                    out.append((0x41...0x5A).contains(scalar) ? scalar + 32 : scalar)
                } else if let s = Unicode.Scalar(scalar) {
                    out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars.map(\.value))
                }
            }
        case .stripAccents:
            text.transformScalars { scalar, out in
                if !UnicodeClasses.of(scalar).contains(.mark) { out.append(scalar) }
            }
        case let .strip(left, right):
            Self.strip(&text, left: left, right: right)
        case let .replace(pattern, content):
            Self.replace(&text, pattern: pattern, content: content)
        case let .prepend(prefix):
            if !text.bytes.isEmpty { text.prepend(Array(prefix.utf8)) }
        case let .bert(cleanText, handleChinese, stripAccents, lowercase):
            if cleanText {
                text.transformScalars { scalar, out in
                    if scalar == 0 || scalar == 0xFFFD { return }
                    if scalar == 0x09 || scalar == 0x0A || scalar == 0x0D { out.append(0x20); return }
                    let cls = UnicodeClasses.of(scalar)
                    if cls.contains(.control) && scalar != 0x20 { return }
                    out.append(cls.contains(.whitespace) ? 0x20 : scalar)
                }
            }
            if handleChinese {
                text.transformScalars { scalar, out in
                    if Self.isCJK(scalar) { out.append(0x20); out.append(scalar); out.append(0x20) }
                    else { out.append(scalar) }
                }
            }
            if stripAccents ?? lowercase {
                // unlike StripAccents, BERT drops only nonspacing marks (a keycap or Mc vowel sign stays)
                Normalizer.nfd.apply(&text)
                text.transformScalars { scalar, out in
                    if !UnicodeClasses.of(scalar).contains(.nonspacingMark) { out.append(scalar) }
                }
            }
            if lowercase { Normalizer.lowercase.apply(&text) }
        case let .sequence(steps):
            for step in steps { step.apply(&text) }
        }
    }

    private static func unicodeNormalize(_ text: inout NormalizedText, _ form: @escaping (String) -> String) {
        if !text.bytes.contains(where: { $0 >= 0x80 }) { return }
        text.transformSegments { segment in
            // Most scalars of East Asian text are already in every normalization form.
            if segment.count == 3 {
                let (value, _) = segment.withUnsafeBufferPointer { decodeScalar($0.baseAddress!, 0) }
                if (0x4E00...0x9FFF).contains(value) || (0x3400...0x4DBF).contains(value) { return nil }
            }
            let original = String(decoding: segment, as: UTF8.self)
            let normalized = form(original)
            // String == compares canonically ("Ä" == "A\u{308}"): compare scalars instead
            if normalized.unicodeScalars.elementsEqual(original.unicodeScalars) { return nil }
            return normalized.unicodeScalars.map(\.value)
        }
    }

    /// The CJK blocks BERT pads with spaces (the same ranges as Google's original BERT).
    static func isCJK(_ c: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(c) || (0x3400...0x4DBF).contains(c) || (0x20000...0x2A6DF).contains(c)
            || (0x2A700...0x2B73F).contains(c) || (0x2B740...0x2B81F).contains(c)
            || (0x2B820...0x2CEAF).contains(c) || (0xF900...0xFAFF).contains(c)
            || (0x2F800...0x2FA1F).contains(c)
    }

    private static func strip(_ text: inout NormalizedText, left: Bool, right: Bool) {
        let scalars = text.bytes.withUnsafeBufferPointer { buf -> [(UInt32, Int)] in
            var out: [(UInt32, Int)] = []
            var i = 0
            while i < buf.count { let (v, l) = decodeScalar(buf.baseAddress!, i); out.append((v, i)); i += l }
            return out
        }
        var first = 0, last = scalars.count
        if left { while first < last, UnicodeClasses.of(scalars[first].0).contains(.whitespace) { first += 1 } }
        if right { while last > first, UnicodeClasses.of(scalars[last - 1].0).contains(.whitespace) { last -= 1 } }
        if first == 0 && last == scalars.count { return }
        var index = 0
        text.transformScalars { scalar, out in
            if index >= first && index < last { out.append(scalar) }
            index += 1
        }
    }

    private static func replace(_ text: inout NormalizedText, pattern: PatternMatcher, content: String) {
        var matches: [Range<Int>] = []
        text.bytes.withUnsafeBufferPointer { buf in
            if let p = buf.baseAddress { pattern.matches(p, 0, buf.count, into: &matches) }
        }
        if matches.isEmpty { return }
        // Bytes inside a match are replaced by `content`, which maps to the whole match.
        let contentBytes = Array(content.utf8)
        var newBytes: [UInt8] = [], newStart: [Int32] = [], newEnd: [Int32] = []
        var cursor = 0
        func copy(_ range: Range<Int>) {
            for k in range {
                newBytes.append(text.bytes[k])
                newStart.append(text.originStart?[k] ?? Int32(k))
                newEnd.append(text.originEnd?[k] ?? Int32(k + 1))
            }
        }
        for m in matches where !m.isEmpty {
            copy(cursor..<m.lowerBound)
            // HF aligns the replacement with the last scalar the match removed
            var last = m.upperBound - 1
            while last > m.lowerBound && text.bytes[last] & 0xC0 == 0x80 { last -= 1 }
            let start = text.originStart?[last] ?? Int32(last)
            let end = text.originEnd?[m.upperBound - 1] ?? Int32(m.upperBound)
            for b in contentBytes { newBytes.append(b); newStart.append(start); newEnd.append(end) }
            cursor = m.upperBound
        }
        copy(cursor..<text.bytes.count)
        text.bytes = newBytes
        text.originStart = newStart
        text.originEnd = newEnd
    }
}
