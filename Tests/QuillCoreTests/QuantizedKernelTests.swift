import Foundation
import Testing
import QuillCore
import CQuillKernels

/// The int8 kernels against their plain C twins and against dequantize-then-fp32.
@Suite struct QuantizedKernelTests {
    /// Random weight blocks with finite f16 scales, as in the dequantization fixtures.
    static func randomBlocks(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed)
        let (per, bytes) = type.blockLayout
        var data = [UInt8](repeating: 0, count: rows * cols / per * bytes)
        for i in data.indices { data[i] = UInt8(truncatingIfNeeded: rng.next()) }
        let halves: [Int] = type == .q4_1 ? [0, 2] : [0]
        for b in 0..<(data.count / bytes) {
            for off in halves {
                let scale = halfFromFloat(Float(Int(rng.next() % 2001) - 1000) / 20000)
                data[b * bytes + off] = UInt8(scale & 0xFF); data[b * bytes + off + 1] = UInt8(scale >> 8)
            }
        }
        return data
    }

    struct SplitMix {
        var x: UInt64
        init(_ seed: UInt64) { x = seed }
        mutating func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x; z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q8_0])
    func fastKernelMatchesItsTwinAndTheFp32Product(_ type: GGMLType) {
        let rows = 64, cols = 576, n = 3
        let weights = Self.randomBlocks(type, rows: rows, cols: cols, seed: UInt64(type.rawValue))
        var rng = Self.SplitMix(99)
        let x = (0..<(n * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        var fast = [Float](repeating: 0, count: n * rows), exact = fast
        weights.withUnsafeBytes { w in
            let m = QuantizedMatrix(type: type, rows: rows, cols: cols, data: w.baseAddress!)
            QuantizedMatmul.forward(&fast, x, m, n: n)
            QuantizedMatmul.reference(&exact, x, m, n: n)
            // the dispatching kernel against the plain C twin on the same quantized activations
            let act = quill_activation_type(Int32(type.rawValue))
            var q = [UInt8](repeating: 0, count: cols / 32 * 36)
            x.withUnsafeBufferPointer { xb in
                if act == 9 { quill_quantize_row_q8_1(xb.baseAddress!, &q, Int64(cols)) }
                else { quill_quantize_row_q8_0(xb.baseAddress!, &q, Int64(cols)) }
            }
            for r in 0..<rows {
                let row = w.baseAddress! + r * m.rowBytes
                let (a, b): (Float, Float)
                switch type {
                case .q4_0: (a, b) = (quill_vec_dot_q4_0_q8_0(Int64(cols), row, q), quill_vec_dot_q4_0_q8_0_ref(Int64(cols), row, q))
                case .q4_1: (a, b) = (quill_vec_dot_q4_1_q8_1(Int64(cols), row, q), quill_vec_dot_q4_1_q8_1_ref(Int64(cols), row, q))
                default: (a, b) = (quill_vec_dot_q8_0_q8_0(Int64(cols), row, q), quill_vec_dot_q8_0_q8_0_ref(Int64(cols), row, q))
                }
                #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "row \(r): \(a) vs twin \(b)")
            }
        }
        // Q8 activation rounding bounds the distance to the fp32 product
        let scale = exact.map(abs).max()!
        let maxDiff = zip(fast, exact).map { abs($0 - $1) }.max()!
        print("\(type) [\(QuantizedMatmul.isa)]: max |int8 kernel - fp32 product| = \(maxDiff) (largest output \(scale))")
        #expect(maxDiff <= 0.02 * scale)
    }
}
