/// Turns token strings back into text (`decoder` in `tokenizer.json`). Decoders work on raw
/// bytes, since a byte-level token may hold part of a UTF-8 sequence; the caller makes text.
public indirect enum Decoder: Sendable {
    case byteLevel
    case metaspace(replacement: String, prependScheme: PreTokenizer.PrependScheme)
    case byteFallback
    case fuse
    case strip(content: String, start: Int, stop: Int)
    case replace(pattern: String, content: String)
    case wordPiece(prefix: String, cleanup: Bool)
    case bpe(suffix: String)
    case sequence([Decoder])

    package func decode(_ tokens: [[UInt8]], first: Bool = true) -> [[UInt8]] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                for s in String(decoding: token, as: UTF8.self).unicodeScalars {
                    if let b = ByteLevelAlphabet.scalarToByte[s.value] { bytes.append(b) }
                    else { appendUTF8(s.value, to: &bytes) }
                }
            }
            return [bytes]
        case let .metaspace(replacement, scheme):
            let marker = Array(replacement.utf8)
            return tokens.enumerated().map { index, token in
                var out = Self.replaceAll(token, marker, [0x20])
                if index == 0 && first && scheme != .never && out.first == 0x20 { out.removeFirst() }
                return out
            }
        case .byteFallback:
            var out: [[UInt8]] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if (try? validateUTF8(pending, source: "")) != nil {
                    out.append(pending)
                } else {
                    for _ in pending { out.append(Array("\u{FFFD}".utf8)) }
                }
                pending.removeAll()
            }
            for token in tokens {
                if token.count == 6, token.starts(with: Array("<0x".utf8)), token[5] == 0x3E,
                   let b = UInt8(String(decoding: token[3..<5], as: UTF8.self), radix: 16) {
                    pending.append(b)
                } else { flush(); out.append(token) }
            }
            flush()
            return out
        case .fuse:
            return [tokens.flatMap { $0 }]
        case let .strip(content, start, stop):
            let c = Array(content.utf8)
            return tokens.map { token in
                var lo = 0, hi = token.count
                for _ in 0..<start where hi - lo >= c.count && Array(token[lo..<(lo + c.count)]) == c { lo += c.count }
                for _ in 0..<stop where hi - lo >= c.count && Array(token[(hi - c.count)..<hi]) == c { hi -= c.count }
                return Array(token[lo..<hi])
            }
        case let .replace(pattern, content):
            let p = Array(pattern.utf8), c = Array(content.utf8)
            return tokens.map { Self.replaceAll($0, p, c) }
        case let .wordPiece(prefix, cleanup):
            let p = Array(prefix.utf8)
            return tokens.enumerated().map { index, token in
                var out: [UInt8]
                if token.starts(with: p) { out = Array(token.dropFirst(p.count)) }
                else { out = (index == 0 && first) ? token : [0x20] + token }
                if cleanup { out = Self.cleanup(out) }
                return out
            }
        case let .bpe(suffix):
            let s = Array(suffix.utf8)
            return tokens.enumerated().map { index, token in
                guard token.count >= s.count, Array(token.suffix(s.count)) == s else { return token }
                return Array(token.dropLast(s.count)) + (index == tokens.count - 1 ? [] : [0x20])
            }
        case let .sequence(steps):
            var current = tokens
            for step in steps { current = step.decode(current, first: first) }
            return current
        }
    }

    static func replaceAll(_ bytes: [UInt8], _ pattern: [UInt8], _ content: [UInt8]) -> [UInt8] {
        guard !pattern.isEmpty, bytes.count >= pattern.count else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if i + pattern.count <= bytes.count && bytes[i] == pattern[0]
                && bytes[i..<(i + pattern.count)].elementsEqual(pattern) {
                out += content; i += pattern.count
            } else { out.append(bytes[i]); i += 1 }
        }
        return out
    }

    /// HF's `cleanup` of WordPiece output: no space before punctuation and in contractions.
    static func cleanup(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                           (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            out = replaceAll(out, Array(from.utf8), Array(to.utf8))
        }
        return out
    }
}
