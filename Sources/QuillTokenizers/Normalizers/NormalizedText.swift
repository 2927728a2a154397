/// Text on its way through the pipeline: UTF-8 bytes plus, once a normalizer has changed them,
/// the byte range of the caller's original text each byte came from (for offset mapping).
package struct NormalizedText: Sendable {
    package var bytes: [UInt8]
    /// Byte offset of this text inside the caller's string.
    package let base: Int
    /// originStart[i] ..< originEnd[i] is where byte i came from, relative to `base`;
    /// nil while the bytes are still the original ones.
    package var originStart: [Int32]?
    package var originEnd: [Int32]?

    package init<C: Collection<UInt8>>(_ bytes: C, base: Int = 0) {
        self.bytes = Array(bytes)
        self.base = base
    }

    /// The range of the caller's text that the normalized bytes `range` came from.
    package func originalRange(_ range: Range<Int>) -> Range<Int> {
        guard let starts = originStart, let ends = originEnd else {
            return (base + range.lowerBound)..<(base + range.upperBound)
        }
        if range.isEmpty {
            let at = range.lowerBound < starts.count ? Int(starts[range.lowerBound])
                : (ends.last.map(Int.init) ?? 0)
            return (base + at)..<(base + at)
        }
        return (base + Int(starts[range.lowerBound]))..<(base + Int(ends[range.upperBound - 1]))
    }

    /// Rebuilds the text scalar by scalar. `body` receives each scalar and appends its
    /// replacement (zero or more scalars) to `out`; every replacement byte keeps the origin of the
    /// scalar it replaced. Returns without work when nothing changed.
    package mutating func transformScalars(_ body: (UInt32, inout [UInt32]) -> Void) {
        var newBytes: [UInt8] = []
        newBytes.reserveCapacity(bytes.count + 8)
        var newStart: [Int32] = []
        var newEnd: [Int32] = []
        newStart.reserveCapacity(bytes.count + 8)
        newEnd.reserveCapacity(bytes.count + 8)
        var replacement: [UInt32] = []
        var changed = false
        bytes.withUnsafeBufferPointer { buf in
            let p = buf.baseAddress!
            var i = 0
            while i < buf.count {
                let (scalar, length) = decodeScalar(p, i)
                replacement.removeAll(keepingCapacity: true)
                body(scalar, &replacement)
                if !(replacement.count == 1 && replacement[0] == scalar) { changed = true }
                let start = originStart.map { $0[i] } ?? Int32(i)
                let end = originEnd.map { $0[i + length - 1] } ?? Int32(i + length)
                for r in replacement {
                    let before = newBytes.count
                    appendUTF8(r, to: &newBytes)
                    for _ in before..<newBytes.count { newStart.append(start); newEnd.append(end) }
                }
                i += length
            }
        }
        if changed {
            bytes = newBytes
            originStart = newStart
            originEnd = newEnd
        }
    }

    /// Normalizes segment by segment (a starter and the combining scalars after it); `body`
    /// returns the new scalars of a segment, or nil to keep it. Alignment follows HF: output
    /// scalar k takes the origin of input scalar k, and extra output scalars (an expansion like
    /// "ﬁ" → "fi") take the origin of the last input scalar.
    package mutating func transformSegments(_ body: (ArraySlice<UInt8>) -> [UInt32]?) {
        var newBytes: [UInt8] = []
        var newStart: [Int32] = []
        var newEnd: [Int32] = []
        var changed = false
        var i = 0
        let count = bytes.count
        var inputs: [(start: Int32, end: Int32)] = []
        while i < count {
            // ASCII never combines with what precedes it, but may be the base of marks that follow.
            var j = i + utf8Length(leadByte: bytes[i])
            while j < count, bytes[j] >= 0x80 {
                let (next, length) = bytes.withUnsafeBufferPointer { decodeScalar($0.baseAddress!, j) }
                if !Self.continuesSegment(next) { break }
                j += length
            }
            if j - i > 1, let replaced = body(bytes[i..<j]) {
                changed = true
                inputs.removeAll(keepingCapacity: true)
                var k = i
                while k < j {
                    let l = utf8Length(leadByte: bytes[k])
                    inputs.append((originStart?[k] ?? Int32(k), originEnd?[k + l - 1] ?? Int32(k + l)))
                    k += l
                }
                for (n, r) in replaced.enumerated() {
                    let origin = inputs[min(n, inputs.count - 1)]
                    let before = newBytes.count
                    appendUTF8(r, to: &newBytes)
                    for _ in before..<newBytes.count { newStart.append(origin.start); newEnd.append(origin.end) }
                }
            } else {
                for k in i..<j {
                    newBytes.append(bytes[k])
                    newStart.append(originStart?[k] ?? Int32(k))
                    newEnd.append(originEnd?[k] ?? Int32(k + 1))
                }
            }
            i = j
        }
        if changed {
            bytes = newBytes
            originStart = newStart
            originEnd = newEnd
        }
    }

    private static func continuesSegment(_ value: UInt32) -> Bool {
        guard let scalar = Unicode.Scalar(value) else { return false }
        if scalar.properties.canonicalCombiningClass.rawValue != 0 { return true }
        if UnicodeClasses.of(value).contains(.mark) { return true }
        return (0x1160...0x11FF).contains(value)   // Hangul medial vowels and final consonants
    }

    /// Prepends `prefix`; its bytes map to the first scalar's origin, as HF aligns them.
    package mutating func prepend(_ prefix: [UInt8]) {
        var starts = originStart ?? (0..<bytes.count).map { Int32($0) }
        var ends = originEnd ?? (0..<bytes.count).map { Int32($0 + 1) }
        let firstStart = starts.first ?? 0
        let firstEnd = bytes.isEmpty ? firstStart : ends[utf8Length(leadByte: bytes[0]) - 1]
        starts.insert(contentsOf: repeatElement(firstStart, count: prefix.count), at: 0)
        ends.insert(contentsOf: repeatElement(firstEnd, count: prefix.count), at: 0)
        bytes.insert(contentsOf: prefix, at: 0)
        originStart = starts
        originEnd = ends
    }
}
