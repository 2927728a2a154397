/// How a split treats the pieces its pattern matched (HF `SplitDelimiterBehavior`).
public enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious",
         mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// Normalized text cut into pieces (byte ranges); the model encodes each piece on its own.
package struct PreTokenized: Sendable {
    package var text: NormalizedText
    package var pieces: [Range<Int>]
    /// Set by the ByteLevel pre-tokenizer: each byte of a piece stands for one symbol of
    /// GPT-2's byte-to-unicode alphabet, and the model looks bytes up directly.
    package var byteLevel = false

    package init(_ text: NormalizedText) {
        self.text = text
        self.pieces = text.bytes.isEmpty ? [] : [0..<text.bytes.count]
    }

    /// Splits every piece where `find` matches, keeping the parts as `behavior` says.
    package mutating func split(behavior: SplitBehavior, invert: Bool = false,
                                _ find: (UnsafePointer<UInt8>, Range<Int>, inout [Range<Int>]) -> Void) {
        var newPieces: [Range<Int>] = []
        newPieces.reserveCapacity(pieces.count * 2)
        var matches: [Range<Int>] = []
        var parts: [(Range<Int>, Bool)] = []
        text.bytes.withUnsafeBufferPointer { buf in
            guard let p = buf.baseAddress else { return }
            for piece in pieces {
                matches.removeAll(keepingCapacity: true)
                find(p, piece, &matches)
                parts.removeAll(keepingCapacity: true)
                var cursor = piece.lowerBound
                for m in matches {
                    if m.lowerBound > cursor { parts.append((cursor..<m.lowerBound, invert)) }
                    parts.append((m, !invert))
                    cursor = m.upperBound
                }
                if cursor < piece.upperBound { parts.append((cursor..<piece.upperBound, invert)) }
                Self.apply(behavior, parts, into: &newPieces)
            }
        }
        pieces = newPieces
    }

    private static func apply(_ behavior: SplitBehavior, _ parts: [(Range<Int>, Bool)], into out: inout [Range<Int>]) {
        switch behavior {
        case .isolated:
            for (r, _) in parts where !r.isEmpty { out.append(r) }
        case .removed:
            for (r, isMatch) in parts where !isMatch && !r.isEmpty { out.append(r) }
        case .mergedWithPrevious:
            var previousMatch = false
            let first = out.count
            for (r, isMatch) in parts {
                if isMatch && !previousMatch && out.count > first {
                    out[out.count - 1] = out[out.count - 1].lowerBound..<r.upperBound
                } else { out.append(r) }
                previousMatch = isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            var reversed: [Range<Int>] = []
            for (r, isMatch) in parts.reversed() {
                if isMatch && !previousMatch && !reversed.isEmpty {
                    reversed[reversed.count - 1] = r.lowerBound..<reversed[reversed.count - 1].upperBound
                } else { reversed.append(r) }
                previousMatch = isMatch
            }
            out.append(contentsOf: reversed.reversed())
        case .contiguous:
            var previousMatch: Bool? = nil
            let first = out.count
            for (r, isMatch) in parts {
                if isMatch == previousMatch && out.count > first {
                    out[out.count - 1] = out[out.count - 1].lowerBound..<r.upperBound
                } else { out.append(r) }
                previousMatch = isMatch
            }
        }
        // drop empties that merging may have left
        var k = out.count - 1
        while k >= 0 && out[k].isEmpty { out.remove(at: k); k -= 1 }
    }

    /// Splits on single scalars for which `test` holds (each one is its own match).
    package mutating func splitScalars(behavior: SplitBehavior, _ test: @escaping (UInt32) -> Bool) {
        split(behavior: behavior) { p, range, out in
            var i = range.lowerBound
            while i < range.upperBound {
                let (v, l) = decodeScalar(p, i)
                if test(v) { out.append(i..<(i + l)) }
                i += l
            }
        }
    }

    /// Rebuilds the text piece by piece: `prefix` may put bytes before a piece (they map to the
    /// empty range where the piece starts) and `replace` may swap a byte for others.
    package mutating func rewrite(prefix: (Int, Range<Int>) -> [UInt8]?, replace: (UInt8) -> [UInt8]?) {
        var bytes: [UInt8] = [], starts: [Int32] = [], ends: [Int32] = []
        var newPieces: [Range<Int>] = []
        bytes.reserveCapacity(text.bytes.count + pieces.count)
        for (index, piece) in pieces.enumerated() {
            let begin = bytes.count
            if let extra = prefix(index, piece), !piece.isEmpty {
                // inserted bytes align with the piece's first scalar, as HF's prepend does
                let firstEnd = piece.lowerBound + utf8Length(leadByte: text.bytes[piece.lowerBound]) - 1
                let s = text.originStart?[piece.lowerBound] ?? Int32(piece.lowerBound)
                let e = text.originEnd?[firstEnd] ?? Int32(firstEnd + 1)
                for b in extra { bytes.append(b); starts.append(s); ends.append(e) }
            }
            for k in piece {
                let s = text.originStart?[k] ?? Int32(k), e = text.originEnd?[k] ?? Int32(k + 1)
                if let r = replace(text.bytes[k]) {
                    for b in r { bytes.append(b); starts.append(s); ends.append(e) }
                } else { bytes.append(text.bytes[k]); starts.append(s); ends.append(e) }
            }
            newPieces.append(begin..<bytes.count)
        }
        text.bytes = bytes
        text.originStart = starts
        text.originEnd = ends
        pieces = newPieces
    }
}
