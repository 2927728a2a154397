/// The result of encoding: ids plus what a caller needs to map them back to the text.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int32] = []
    /// Byte range in the input string each token came from (empty for inserted special tokens).
    public var offsets: [Range<Int>] = []
    public var typeIds: [Int32] = []
    /// 1 for tokens the post-processor inserted (BOS, CLS, SEP...), else 0.
    public var specialTokensMask: [UInt8] = []

    /// Plain id encoding skips the offsets, type ids and mask (the batch and count paths).
    package var idsOnly = false

    public init() {}
    package init(idsOnly: Bool) { self.idsOnly = idsOnly }

    mutating func append(_ id: Int32, offset: @autoclosure () -> Range<Int>, typeId: Int32 = 0, special: Bool = false) {
        ids.append(id)
        if idsOnly { return }
        offsets.append(offset()); typeIds.append(typeId); specialTokensMask.append(special ? 1 : 0)
    }

    mutating func append(contentsOf other: Encoding, typeId: Int32) {
        ids += other.ids
        if idsOnly || other.idsOnly { return }
        offsets += other.offsets
        typeIds += repeatElement(typeId, count: other.ids.count)
        specialTokensMask += other.specialTokensMask
    }
}

/// Adds special tokens around encoded sequences (`post_processor` in `tokenizer.json`).
public indirect enum PostProcessor: Sendable {
    public enum TemplatePiece: Sendable, Equatable {
        case sequence(second: Bool, typeId: Int32)
        case special(String, typeId: Int32)
    }
    case template(single: [TemplatePiece], pair: [TemplatePiece], specialTokens: [String: [Int32]])
    case bert(sep: Int32, cls: Int32)
    case roberta(sep: Int32, cls: Int32, trimOffsets: Bool)
    case byteLevel(trimOffsets: Bool, addPrefixSpace: Bool = true)
    case sequence([PostProcessor])

    /// Number of tokens added to a single sequence (or a pair).
    package func addedTokenCount(pair: Bool) -> Int {
        switch self {
        case let .template(single, pairTemplate, specials):
            return (pair ? pairTemplate : single).reduce(0) {
                if case let .special(name, _) = $1 { return $0 + (specials[name]?.count ?? 0) }
                return $0
            }
        case .bert: return pair ? 3 : 2
        case .roberta: return pair ? 4 : 2
        case .byteLevel: return 0
        case .sequence(let steps): return steps.reduce(0) { $0 + $1.addedTokenCount(pair: pair) }
        }
    }

    package func process(_ a: Encoding, _ b: Encoding?, addSpecialTokens: Bool, tokens: [String]) -> Encoding {
        switch self {
        case let .template(single, pair, specials):
            guard addSpecialTokens else { return Self.concat(a, b) }
            var out = Encoding(idsOnly: a.idsOnly)
            for piece in (b == nil ? single : pair) {
                switch piece {
                case let .sequence(second, typeId):
                    if let e = second ? b : a { out.append(contentsOf: e, typeId: typeId) }
                case let .special(name, typeId):
                    for id in specials[name] ?? [] { out.append(id, offset: 0..<0, typeId: typeId, special: true) }
                }
            }
            return out
        case let .bert(sep, cls):
            guard addSpecialTokens else { return Self.concat(a, b) }
            var out = Encoding(idsOnly: a.idsOnly)
            out.append(cls, offset: 0..<0, special: true)
            out.append(contentsOf: a, typeId: 0)
            out.append(sep, offset: 0..<0, special: true)
            if let b {
                out.append(contentsOf: b, typeId: 1)
                out.append(sep, offset: 0..<0, typeId: 1, special: true)
            }
            return out
        case let .roberta(sep, cls, trim):
            let trim = trim && !a.idsOnly
            let a = trim ? Self.trimmed(a, tokens) : a
            let b = trim ? b.map { Self.trimmed($0, tokens) } : b
            guard addSpecialTokens else { return Self.concat(a, b) }
            var out = Encoding(idsOnly: a.idsOnly)
            out.append(cls, offset: 0..<0, special: true)
            out.append(contentsOf: a, typeId: 0)
            out.append(sep, offset: 0..<0, special: true)
            if let b {
                out.append(sep, offset: 0..<0, special: true)
                out.append(contentsOf: b, typeId: 0)
                out.append(sep, offset: 0..<0, special: true)
            }
            return out
        case let .byteLevel(trim, prefixSpace):
            let trim = trim && !a.idsOnly
            let a = trim ? Self.trimmed(a, tokens, keepAddedPrefixSpace: prefixSpace) : a
            return Self.concat(a, trim ? b.map { Self.trimmed($0, tokens, keepAddedPrefixSpace: prefixSpace) } : b)
        case let .sequence(steps):
            // Each step sees the previous result as one sequence; HF keeps pairs apart, which
            // only matters for type ids of the second sequence.
            var current = a
            var second = b
            for step in steps {
                current = step.process(current, second, addSpecialTokens: addSpecialTokens, tokens: tokens)
                second = nil
            }
            return current
        }
    }

    private static func concat(_ a: Encoding, _ b: Encoding?) -> Encoding {
        guard let b else { return a }
        var out = a
        out.append(contentsOf: b, typeId: 1)
        return out
    }

    /// Removes leading and trailing spaces (byte-level `Ġ`) from offsets, as HF's trim_offsets.
    /// With `keepAddedPrefixSpace`, a first token's single leading space (the one ByteLevel's
    /// add_prefix_space put there) is left alone.
    private static func trimmed(_ e: Encoding, _ tokens: [String], keepAddedPrefixSpace: Bool = false) -> Encoding {
        var out = e
        let space = ByteLevelAlphabet.byteToScalar[0x20]
        for (k, id) in e.ids.enumerated() where Int(id) < tokens.count && !e.offsets[k].isEmpty {
            let scalars = Array(tokens[Int(id)].unicodeScalars)
            let isSpace = { (s: Unicode.Scalar) in s == space || s.properties.isWhitespace }
            var lead = scalars.prefix(while: isSpace).count
            let trail = lead == scalars.count ? 0 : scalars.reversed().prefix(while: isSpace).count
            let r = e.offsets[k]
            if keepAddedPrefixSpace && lead == 1 && (k == 0 || r.lowerBound == 0) { lead = 0 }
            let lo = min(r.lowerBound + lead, r.upperBound)
            out.offsets[k] = lo..<max(lo, r.upperBound - trail)
        }
        return out
    }
}
