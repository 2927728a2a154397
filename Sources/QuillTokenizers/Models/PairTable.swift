#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Open-addressing hash map from a pair of token ids to (merge rank, merged id).
/// BPE asks it once per adjacent pair per merge step, so it is the hottest lookup in encoding.
package struct PairTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    package private(set) var count = 0
    private static let empty = UInt64.max

    package init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func hash(_ key: UInt64) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    /// Keeps the first insertion for a pair (the lowest rank when merges are added in order).
    package mutating func insert(_ a: Int32, _ b: Int32, rank: Int32, merged: Int32) {
        let key = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
        var i = Self.hash(key) & mask
        while keys[i] != Self.empty {
            if keys[i] == key { return }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
        count += 1
    }

    /// (rank, merged id), or nil when the pair never merges.
    @inline(__always)
    package func lookup(_ a: Int32, _ b: Int32) -> (rank: Int32, merged: Int32)? {
        let key = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
        return keys.withUnsafeBufferPointer { k in
            var i = Self.hash(key) & mask
            while true {
                let found = k[i]
                if found == key {
                    let v = values[i]
                    return (Int32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v))
                }
                if found == Self.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }
}

/// A per-call cache from a piece's bytes to its token ids and token byte lengths.
/// Real text repeats its words; encoding each distinct word once is most of BPE's speed.
package struct WordCache {
    private var slots: [Int32]          // index into entries, -1 empty
    private var hashes: [UInt64] = []
    private var keyRanges: [Range<Int32>] = []
    private var valueRanges: [Range<Int32>] = []
    private var keyArena: [UInt8] = []
    package private(set) var idArena: [Int32] = []
    package private(set) var lengthArena: [Int32] = []
    private let mask: Int
    static let maxKeyLength = 64

    package init(slots: Int = 1 << 15) {
        self.slots = [Int32](repeating: -1, count: slots)
        self.mask = slots - 1
    }

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, byteLevel: Bool) -> UInt64 {
        var h: UInt64 = byteLevel ? 0x84222325CBF29CE4 : 0xCBF29CE484222325
        for i in range { h = (h ^ UInt64(p[i])) &* 0x100000001B3 }
        return h
    }

    /// The cached ids/lengths range in `idArena`/`lengthArena`, if present.
    package func find(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, hash: UInt64) -> Range<Int>? {
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let e = slots[i]
            if e < 0 { return nil }
            let entry = Int(e)
            if hashes[entry] == hash {
                let k = keyRanges[entry]
                if k.count == range.count, keyArena.withUnsafeBufferPointer({
                    memcmp($0.baseAddress! + Int(k.lowerBound), p + range.lowerBound, range.count) == 0
                }) {
                    let v = valueRanges[entry]
                    return Int(v.lowerBound)..<Int(v.upperBound)
                }
            }
            i = (i + 1) & mask
        }
    }

    package mutating func insert(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, hash: UInt64,
                                 ids: ArraySlice<Int32>, lengths: ArraySlice<Int32>) {
        if hashes.count * 2 >= slots.count || keyArena.count > 1 << 24 { clear() }
        let entry = Int32(hashes.count)
        hashes.append(hash)
        let k0 = Int32(keyArena.count)
        keyArena.append(contentsOf: UnsafeBufferPointer(start: p + range.lowerBound, count: range.count))
        keyRanges.append(k0..<Int32(keyArena.count))
        let v0 = Int32(idArena.count)
        idArena.append(contentsOf: ids)
        lengthArena.append(contentsOf: lengths)
        valueRanges.append(v0..<Int32(idArena.count))
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = entry
    }

    private mutating func clear() {
        for i in slots.indices { slots[i] = -1 }
        hashes.removeAll(keepingCapacity: true); keyRanges.removeAll(keepingCapacity: true)
        valueRanges.removeAll(keepingCapacity: true); keyArena.removeAll(keepingCapacity: true)
        idArena.removeAll(keepingCapacity: true); lengthArena.removeAll(keepingCapacity: true)
    }
}
