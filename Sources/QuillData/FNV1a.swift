/// 64-bit FNV-1a: the stable, seedable hash behind document ids, splits, line keys, exact
/// duplicates and MinHash units and bands. Stable across runs and machines, unlike `Hasher`.
struct FNV1a {
    static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    var value: UInt64

    init(seed: UInt64 = offsetBasis) { value = seed }

    @inline(__always) mutating func add(_ v: UInt64) { value = (value ^ v) &* 0x100_0000_01B3 }

    /// The hash of a sequence of bytes, scalar values or earlier hashes.
    static func hash<S: Sequence>(_ values: S, seed: UInt64 = offsetBasis) -> UInt64 where S.Element: FixedWidthInteger {
        var h = FNV1a(seed: seed)
        for v in values { h.add(UInt64(truncatingIfNeeded: v)) }
        return h.value
    }
}
