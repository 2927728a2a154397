import Foundation
import Testing
import CQuillKernels
import QuillCore

/// Quantization of fp32 rows into every type Quill writes, byte for byte against ggml's own
/// `ggml_quantize_chunk` (and gguf-py's `quants.quantize`, which agrees, for F16, BF16, Q8_0 and
/// the 32-blocks). Fixtures/make_quantize_fixtures.py made the expected bytes from 12 rows of 512:
/// Gaussian weights at six scales, a zero row and a zero block, ties, one outlier, values near the
/// f16 subnormals, a constant row.
@Suite struct QuantizeTests {
    static let rows = 12, columns = 512

    @Test(arguments: Quantize.writableTypes.filter { $0 != .f32 })
    func equalsGGMLByteForByte(_ type: GGMLType) throws {
        let input = DequantizeTests.floats(try DequantizeTests.fixture("quantize.input.f32"))
        let expected = [UInt8](try DequantizeTests.fixture("quantize.\("\(type)".lowercased()).bytes"))
        #expect(input.count == Self.rows * Self.columns)
        var got = [UInt8](repeating: 0xA5, count: expected.count)
        input.withUnsafeBufferPointer { x in
            got.withUnsafeMutableBytes { Quantize.rows(type, from: x.baseAddress!, into: $0.baseAddress!, rows: Self.rows, columns: Self.columns) }
        }
        let differing = zip(got, expected).filter { $0 != $1 }.count
        print("\(type.name): \(expected.count - differing)/\(expected.count) bytes equal to ggml's")
        #expect(differing == 0)
        // each instruction set's variant (the K-quants fit eight groups at once with AVX2) too
        guard type.isBlockQuantized else { return }
        for isa in ["plain", "avx2"] {
            var bytes = [UInt8](repeating: 0x5A, count: expected.count)
            let status = input.withUnsafeBufferPointer { x in
                bytes.withUnsafeMutableBytes { quill_quantize_row_on(isa, Int32(type.rawValue), x.baseAddress!, $0.baseAddress!, Int64(input.count), nil) }
            }
            if status == -2 { print("\(type.name) \(isa): not on this CPU"); continue }
            #expect(status == 0 && bytes == expected, "\(type.name) on \(isa)")
        }
    }

    /// With an importance matrix (llama-quantize --imatrix): ggml's weighted quantizers, byte for
    /// byte, through `Quantize.rows` and on each instruction set (Q4_1 / Q5_1 and the K-quants
    /// fit eight groups at once with AVX2).
    @Test(arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
    func weightedByImportanceEqualsGGMLByteForByte(_ type: GGMLType) throws {
        let input = DequantizeTests.floats(try DequantizeTests.fixture("quantize.input.f32"))
        let importance = DequantizeTests.floats(try DequantizeTests.fixture("quantize.importance.f32"))
        let expected = [UInt8](try DequantizeTests.fixture("quantize.\("\(type)".lowercased()).imatrix.bytes"))
        #expect(importance.count == Self.columns)
        let rowBytes = type.byteCount(Self.columns)
        var got = [UInt8](repeating: 0xA5, count: expected.count)
        input.withUnsafeBufferPointer { x in
            importance.withUnsafeBufferPointer { w in
                got.withUnsafeMutableBytes {
                    Quantize.rows(type, from: x.baseAddress!, into: $0.baseAddress!, rows: Self.rows, columns: Self.columns, importance: w.baseAddress!)
                }
            }
        }
        let differing = zip(got, expected).filter { $0 != $1 }.count
        print("\(type.name) with importance: \(expected.count - differing)/\(expected.count) bytes equal to ggml's")
        #expect(differing == 0)
        for isa in ["plain", "avx2"] {
            var bytes = [UInt8](repeating: 0x5A, count: expected.count)
            var status: Int32 = 0
            input.withUnsafeBufferPointer { x in
                importance.withUnsafeBufferPointer { w in
                    bytes.withUnsafeMutableBytes { out in
                        for r in 0..<Self.rows where status == 0 {
                            status = quill_quantize_row_on(isa, Int32(type.rawValue), x.baseAddress! + r * Self.columns,
                                                           out.baseAddress! + r * rowBytes, Int64(Self.columns), w.baseAddress!)
                        }
                    }
                }
            }
            if status == -2 { print("\(type.name) \(isa): not on this CPU"); continue }
            #expect(status == 0 && bytes == expected, "\(type.name) with importance on \(isa)")
        }
    }

    /// Quantizing what a type's dequantization gives back reproduces it (the fits find the grid
    /// they came from), and the round trip's error stays within each type's resolution.
    @Test(arguments: [GGMLType.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
    func roundTripErrorIsWithinTheTypesResolution(_ type: GGMLType) throws {
        let input = DequantizeTests.floats(try DequantizeTests.fixture("quantize.input.f32"))
        let (perBlock, blockBytes) = type.blockLayout
        var bytes = [UInt8](repeating: 0, count: input.count / perBlock * blockBytes)
        input.withUnsafeBufferPointer { x in
            bytes.withUnsafeMutableBytes { Quantize.rows(type, from: x.baseAddress!, into: $0.baseAddress!, rows: Self.rows, columns: Self.columns) }
        }
        let back = bytes.withUnsafeBytes { Dequantize.array(type, $0, count: input.count) }
        // relative RMS error over the Gaussian rows (0-5): bits per weight set the scale
        let gaussian = 0..<(6 * Self.columns)
        var worst = 0.0
        for r in 0..<6 {
            let range = (r * Self.columns)..<((r + 1) * Self.columns)
            let error = range.reduce(0.0) { $0 + Double(input[$1] - back[$1]) * Double(input[$1] - back[$1]) }
            let power = range.reduce(0.0) { $0 + Double(input[$1]) * Double(input[$1]) }
            worst = max(worst, (error / power).squareRoot())
        }
        // the measured worst (Zen 4) and about 25% more
        let bound: Double = switch type {
        case .q8_0: 0.007     // 0.0056
        case .q6_K: 0.023     // 0.0180
        case .q5_0: 0.056     // 0.0449
        case .q5_1: 0.049     // 0.0387
        case .q5_K: 0.047     // 0.0372
        case .q4_0: 0.11      // 0.0894
        case .q4_1: 0.10      // 0.0794
        case .q4_K: 0.09      // 0.0723
        case .q3_K: 0.20      // 0.1558
        default: 0.37         // Q2_K 0.2970
        }
        print("\(type.name): worst relative RMS error \(String(format: "%.4f", worst)) (bound \(bound))")
        #expect(worst < bound && worst > bound / 10)
        #expect(gaussian.allSatisfy { back[$0].isFinite })
        // the all-zero row stays exactly zero
        #expect((6 * Self.columns..<7 * Self.columns).allSatisfy { back[$0] == 0 })
    }

    @Test func bfloat16RoundsToNearestEvenAndKeepsNaNQuiet() {
        #expect(bfloat16FromFloat(1) == 0x3F80)
        #expect(bfloat16FromFloat(Float(bitPattern: 0x3F80_8000)) == 0x3F80)   // tie, even stays
        #expect(bfloat16FromFloat(Float(bitPattern: 0x3F81_8000)) == 0x3F82)   // tie, odd rounds up
        #expect(bfloat16FromFloat(Float(bitPattern: 0x7F80_0001)) & 0x7FC0 == 0x7FC0)
        #expect(bfloat16FromFloat(.infinity) == 0x7F80)
    }
}
