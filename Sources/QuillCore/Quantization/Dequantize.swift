// Dequantization of every GGUF weight type, one block at a time: the plain reference that fast
// kernels are tested against, and the path that converts a quantized model to fp32.
//
// Layouts are ggml's (ggml-common.h); the arithmetic is written in the same order as the reference
// (gguf-py, itself bit-exact with ggml-quants.c), so results agree bit for bit:
//   Q4_0/Q5_0/Q8_0:  x = d·q            (q centred: q-8, q-16, int8)
//   Q4_1/Q5_1:       x = d·q + m
//   Q2_K/Q4_K/Q5_K:  x = (d·scale)·q - (dmin·min)     per 16- or 32-element group
//   Q3_K/Q6_K:       x = (d·scale)·q                  with signed 6-bit scales / centred q

import CQuillKernels

public enum Dequantize {
    /// Dequantizes `count` elements (a whole number of blocks) from `source` into `destination`.
    public static func row(_ type: GGMLType, from source: UnsafeRawPointer,
                           into destination: UnsafeMutablePointer<Float>, count: Int) {
        let (perBlock, blockBytes) = type.blockLayout
        precondition(count % perBlock == 0, "\(count) elements is not a whole number of \(type) blocks")
        for b in 0..<(count / perBlock) {
            block(type, source + b * blockBytes, destination + b * perBlock)
        }
    }

    /// As `row`, with F32 copied and F16 and BF16 through CQuillKernels' vector converters (the same bits): for
    /// whole weights (prompts on fp32 BLAS, QLoRA's frozen weights, requantization).
    public static func fast(_ type: GGMLType, from source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        switch type {
        case .f32: UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)   // little-endian hosts
        case .f16: quill_convert_f16_row(source.assumingMemoryBound(to: UInt16.self), destination, Int64(count))
        case .bf16: quill_convert_bf16_row(source.assumingMemoryBound(to: UInt16.self), destination, Int64(count))
        default: row(type, from: source, into: destination, count: count)
        }
    }

    /// Convenience: a whole tensor's bytes to a new array.
    public static func array(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            row(type, from: bytes.baseAddress!, into: out.baseAddress!, count: count)
            initialized = count
        }
    }

    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        floatFromHalf(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self).littleEndian)
    }

    /// One block of `type` at `x` into `y`.
    static func block(_ type: GGMLType, _ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let q = x.assumingMemoryBound(to: UInt8.self)
        switch type {
        case .f32: y[0] = Float(bitPattern: x.loadUnaligned(as: UInt32.self).littleEndian)
        case .f16: y[0] = half(x, 0)
        case .bf16: y[0] = floatFromBFloat16(x.loadUnaligned(as: UInt16.self).littleEndian)

        case .q4_0:     // d, qs[16]: low nibbles are elements 0-15, high nibbles 16-31
            let d = half(x, 0)
            for j in 0..<16 {
                y[j] = d * Float(Int(q[2 + j] & 0x0F) - 8)
                y[j + 16] = d * Float(Int(q[2 + j] >> 4) - 8)
            }
        case .q4_1:     // d, m, qs[16]
            let d = half(x, 0), m = half(x, 2)
            for j in 0..<16 {
                y[j] = d * Float(q[4 + j] & 0x0F) + m
                y[j + 16] = d * Float(q[4 + j] >> 4) + m
            }
        case .q5_0:     // d, qh (bit i is the 5th bit of element i), qs[16]
            let d = half(x, 0)
            let qh = x.loadUnaligned(fromByteOffset: 2, as: UInt32.self).littleEndian
            for j in 0..<16 {
                let lo = Int(q[6 + j] & 0x0F) | Int((qh >> UInt32(j)) & 1) << 4
                let hi = Int(q[6 + j] >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float(lo - 16)
                y[j + 16] = d * Float(hi - 16)
            }
        case .q5_1:     // d, m, qh, qs[16]
            let d = half(x, 0), m = half(x, 2)
            let qh = x.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
            for j in 0..<16 {
                let lo = Int(q[8 + j] & 0x0F) | Int((qh >> UInt32(j)) & 1) << 4
                let hi = Int(q[8 + j] >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float(lo) + m
                y[j + 16] = d * Float(hi) + m
            }
        case .q8_0:     // d, int8 qs[32]
            let d = half(x, 0)
            for j in 0..<32 { y[j] = Float(Int8(bitPattern: q[2 + j])) * d }
        case .q8_1:     // d, s (sum, unused here), int8 qs[32]
            let d = half(x, 0)
            for j in 0..<32 { y[j] = Float(Int8(bitPattern: q[4 + j])) * d }

        case .q2_K:     // scales[16] (low nibble scale, high nibble min), qs[64], d, dmin
            let d = half(x, 80), dmin = half(x, 82)
            for e in 0..<256 {
                let chunk = e / 128, shift = (e % 128) / 32, k = e % 32
                let v = (q[16 + chunk * 32 + k] >> UInt8(2 * shift)) & 3
                let s = q[e / 16]
                let dl = d * Float(s & 0x0F), ml = dmin * Float(s >> 4)
                y[e] = dl * Float(v) - ml
            }
        case .q3_K:     // hmask[32], qs[64], scales[12] (16 signed 6-bit), d
            let d = half(x, 108)
            var scales = [Float](repeating: 0, count: 16)
            for i in 0..<16 {
                let low = i < 8 ? q[96 + i] & 0x0F : q[96 + i - 8] >> 4
                let high = (q[104 + i % 4] >> UInt8(2 * (i / 4))) & 0x03
                scales[i] = Float(Int(low | high << 4) - 32)
            }
            for e in 0..<256 {
                let chunk = e / 128, shift = (e % 128) / 32, k = e % 32
                let low = Int((q[32 + chunk * 32 + k] >> UInt8(2 * shift)) & 3)
                let highBit = Int((q[e % 32] >> UInt8(e / 32)) & 1) ^ 1   // offset applies when the bit is 0
                y[e] = (d * scales[e / 16]) * Float(low - (highBit << 2))
            }
        case .q4_K, .q5_K:  // d, dmin, scales[12] (8 × 6-bit scale and min), [qh[32]], qs[128]
            let d = half(x, 0), dmin = half(x, 2)
            let qs = type == .q4_K ? 16 : 48
            for g in 0..<8 {
                let (sc, mn) = scaleMin(q + 4, g)
                let dl = d * Float(sc), ml = dmin * Float(mn)
                for k in 0..<32 {
                    let e = g * 32 + k
                    let chunk = e / 64, shift = (e % 64) / 32
                    var v = Int((q[qs + chunk * 32 + k] >> UInt8(4 * shift)) & 0x0F)
                    if type == .q5_K { v |= Int((q[16 + k] >> UInt8(g)) & 1) << 4 }
                    y[e] = dl * Float(v) - ml
                }
            }
        case .q6_K:     // ql[128], qh[64], int8 scales[16], d
            let d = half(x, 208)
            for e in 0..<256 {
                let chunk = e / 128, r = e % 128
                let low = (q[chunk * 64 + r % 64] >> UInt8(4 * (r / 64))) & 0x0F
                let high = (q[128 + chunk * 32 + r % 32] >> UInt8(2 * (r / 32))) & 0x03
                let scale = Float(Int8(bitPattern: q[192 + e / 16]))
                y[e] = (d * scale) * Float(Int(low | high << 4) - 32)
            }
        case .q8_K:     // f32 d, int8 qs[256], int16 bsums[16]
            let d = Float(bitPattern: x.loadUnaligned(as: UInt32.self).littleEndian)
            for j in 0..<256 { y[j] = d * Float(Int8(bitPattern: q[4 + j])) }
        case .i8: y[0] = Float(Int8(bitPattern: q[0]))
        case .i16: y[0] = Float(Int16(littleEndian: x.loadUnaligned(as: Int16.self)))
        case .i32: y[0] = Float(Int32(littleEndian: x.loadUnaligned(as: Int32.self)))
        case .i64: y[0] = Float(Int64(littleEndian: x.loadUnaligned(as: Int64.self)))
        case .f64: y[0] = Float(Double(bitPattern: x.loadUnaligned(as: UInt64.self).littleEndian))
        }
    }

    /// Scale and min of group `g` (0-7) from the 12 packed bytes of a Q4_K/Q5_K block.
    @inline(__always)
    static func scaleMin(_ s: UnsafePointer<UInt8>, _ g: Int) -> (UInt8, UInt8) {
        if g < 4 { return (s[g] & 0x3F, s[g + 4] & 0x3F) }
        return ((s[g + 4] & 0x0F) | ((s[g - 4] >> 2) & 0x30), (s[g + 4] >> 4) | ((s[g] >> 2) & 0x30))
    }
}
