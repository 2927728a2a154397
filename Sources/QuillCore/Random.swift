/// Quill's one seeded random-number generator: SplitMix64 (Steele, Lea and Flood 2014), small and
/// fast, whose whole state is one word, so a checkpoint can store it and a resumed run continues
/// the same stream. Sampling, LoRA initialization and dropout, data order, bootstrap resampling,
/// review assignments and MinHash coefficients all draw from it; only secrets (review tokens) use
/// the system's generator.
public struct SplitMix64: RandomNumberGenerator, Sendable, Codable, Equatable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1 / 16_777_216) }
}
