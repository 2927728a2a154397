// IEEE binary16 and bfloat16 to Float, exactly (subnormals, infinities and NaN payloads kept),
// without relying on the platform's Float16 (missing on macOS x86_64).

/// The Float an IEEE half-precision bit pattern stands for.
@inline(__always)
public func floatFromHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h) & 0x3FF
    if exponent == 0x1F {                       // infinity or NaN
        return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
    }
    if exponent != 0 {                          // normal: rebias 15 → 127
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }
    if mantissa == 0 { return Float(bitPattern: sign) }
    // subnormal half: mantissa × 2^-24, exact in Float
    let magnitude = Float(mantissa) * Float(bitPattern: 0x3380_0000)
    return sign != 0 ? -magnitude : magnitude
}

/// The Float a bfloat16 bit pattern stands for (the top half of a Float).
@inline(__always)
public func floatFromBFloat16(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// Round-to-nearest-even Float to half bits (used when writing f16 tensors).
public func halfFromFloat(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF)
    var mantissa = bits & 0x7F_FFFF
    if exponent == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? UInt16(0x200 | (mantissa >> 13)) : 0) }
    let e = exponent - 127 + 15
    if e >= 0x1F { return sign | 0x7C00 }
    if e <= 0 {
        if e < -10 { return sign }
        mantissa |= 0x80_0000
        let shift = UInt32(14 - e)
        var half = mantissa >> shift
        let remainder = mantissa & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
        if remainder > halfway || (remainder == halfway && half & 1 == 1) { half += 1 }
        return sign | UInt16(half)
    }
    var half = UInt32(e) << 10 | mantissa >> 13
    let remainder = mantissa & 0x1FFF
    if remainder > 0x1000 || (remainder == 0x1000 && half & 1 == 1) { half += 1 }
    return sign | UInt16(truncatingIfNeeded: half)
}

/// Round-to-nearest-even Float to bfloat16 bits, NaN kept quiet (ggml's `fp32_to_bf16`).
@inline(__always)
public func bfloat16FromFloat(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    if bits & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(bits >> 16) | 0x40 }
    return UInt16((UInt64(bits) + 0x7FFF + UInt64((bits >> 16) & 1)) >> 16)
}
