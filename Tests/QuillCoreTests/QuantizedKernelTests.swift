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
        let halves: [Int] = switch type {   // byte offsets of the f16 scales (d, and m / dmin)
        case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
        case .q6_K: [208]
        default: [0]
        }
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

    typealias Dot = @convention(c) (Int64, UnsafeRawPointer?, UnsafeRawPointer?) -> Float

    /// Each weight type's dispatching kernel and its plain twin.
    static let kernels: [GGMLType: (fast: Dot, twin: Dot)] = [
        .q4_0: (quill_vec_dot_q4_0_q8_0, quill_vec_dot_q4_0_q8_0_ref),
        .q4_1: (quill_vec_dot_q4_1_q8_1, quill_vec_dot_q4_1_q8_1_ref),
        .q5_0: (quill_vec_dot_q5_0_q8_0, quill_vec_dot_q5_0_q8_0_ref),
        .q5_1: (quill_vec_dot_q5_1_q8_1, quill_vec_dot_q5_1_q8_1_ref),
        .q8_0: (quill_vec_dot_q8_0_q8_0, quill_vec_dot_q8_0_q8_0_ref),
        .q4_K: (quill_vec_dot_q4_K_q8_K, quill_vec_dot_q4_K_q8_K_ref),
        .q5_K: (quill_vec_dot_q5_K_q8_K, quill_vec_dot_q5_K_q8_K_ref),
        .q6_K: (quill_vec_dot_q6_K_q8_K, quill_vec_dot_q6_K_q8_K_ref),
    ]

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K])
    func fastKernelMatchesItsTwinAndTheFp32Product(_ type: GGMLType) throws {
        let rows = 64, cols = 768, n = 3   // 768: three k-quant super-blocks
        let weights = Self.randomBlocks(type, rows: rows, cols: cols, seed: UInt64(type.rawValue))
        var rng = Self.SplitMix(99)
        let x = (0..<(n * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        var fast = [Float](repeating: 0, count: n * rows), exact = fast
        let (dot, twin) = try #require(Self.kernels[type])
        weights.withUnsafeBytes { w in
            let m = QuantizedMatrix(type: type, rows: rows, cols: cols, data: w.baseAddress!)
            QuantizedMatmul.forward(&fast, x, m, n: n)
            QuantizedMatmul.reference(&exact, x, m, n: n)
            // the dispatching kernel against the plain C twin on the same quantized activations
            let act = m.activationType
            var q = [UInt8](repeating: 0, count: cols / act.blockLayout.elements * act.blockLayout.bytes)
            x.withUnsafeBufferPointer { xb in
                switch act {
                case .q8_1: quill_quantize_row_q8_1(xb.baseAddress!, &q, Int64(cols))
                case .q8_K: quill_quantize_row_q8_K(xb.baseAddress!, &q, Int64(cols))
                default: quill_quantize_row_q8_0(xb.baseAddress!, &q, Int64(cols))
                }
            }
            for r in 0..<rows {
                let row = w.baseAddress! + r * m.rowBytes
                let (a, b) = (dot(Int64(cols), row, q), twin(Int64(cols), row, q))
                #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "row \(r): \(a) vs twin \(b)")
            }
        }
        // Q8 activation rounding bounds the distance to the fp32 product
        let scale = exact.map(abs).max()!
        let maxDiff = zip(fast, exact).map { abs($0 - $1) }.max()!
        print("\(type) [\(QuantizedMatmul.isa)]: max |int8 kernel - fp32 product| = \(maxDiff) (largest output \(scale))")
        #expect(maxDiff <= 0.02 * scale)
    }

    /// Activation quantization: the dispatching quantizers write the same bytes as their twins,
    /// halves rounded away from zero included (a block whose largest value is 127 has scale 1, so
    /// ±2.5 and ±126.5 are exact ties), as are all-zero blocks and wide ranges.
    @Test func activationQuantizersMatchTheirTwins() {
        var rng = Self.SplitMix(17)
        var x = (0..<(32 * 64)).map { _ in Float(Int(rng.next() % 200_001) - 100_000) / Float(1 + rng.next() % 1000) }
        let ties: [Float] = [127, 2.5, -2.5, 126.5, -126.5, 0.5, -0.5, 1.5, -3.5, 64.5]
        for j in 0..<32 { x[j] = j < ties.count ? ties[j] : 1.25 }
        for j in 32..<64 { x[j] = 0 }
        for (q8_1, name) in [(false, "q8_0"), (true, "q8_1")] {
            let bytes = x.count / 32 * (q8_1 ? 36 : 34)
            var fast = [UInt8](repeating: 0, count: bytes), twin = fast
            if q8_1 {
                quill_quantize_row_q8_1(x, &fast, Int64(x.count)); quill_quantize_row_q8_1_ref(x, &twin, Int64(x.count))
            } else {
                quill_quantize_row_q8_0(x, &fast, Int64(x.count)); quill_quantize_row_q8_0_ref(x, &twin, Int64(x.count))
            }
            #expect(fast == twin, "\(name) [\(QuantizedMatmul.isa)]")
            let first = Array(twin[(q8_1 ? 4 : 2)..<(q8_1 ? 14 : 12)]).map { Int8(bitPattern: $0) }
            #expect(first == [127, 3, -3, 127, -127, 1, -1, 2, -4, 65], "\(name): ties away from zero")
        }
        // Q8_K (blocks of 256 for the k-quants): ties to even, as ggml's lrintf
        var fast = [UInt8](repeating: 0, count: x.count / 256 * 292), twin = fast
        quill_quantize_row_q8_K(x, &fast, Int64(x.count)); quill_quantize_row_q8_K_ref(x, &twin, Int64(x.count))
        #expect(fast == twin, "q8_K [\(QuantizedMatmul.isa)]")
        var last = x; last[255] = -1e7   // the block's largest magnitude last and negative: it sets the sign
        quill_quantize_row_q8_K(last, &fast, Int64(x.count)); quill_quantize_row_q8_K_ref(last, &twin, Int64(x.count))
        #expect(fast == twin && Int8(bitPattern: twin[4 + 255]) == -127, "q8_K, the largest value last")
    }

    /// Runs `variant(isa, nr, outputs)` for each named instruction set and row count, expecting
    /// every output of each variant that ran (returned 1) to equal `twin` bit for bit; returns
    /// the variants that ran, as "isa×nr".
    static func variantsEqualTheTwin(_ twin: [Float], isas: [String], widths: [Int], _ label: String,
                                     _ variant: (String, Int, [UnsafeMutablePointer<Float>?]) -> Int32) -> [String] {
        var ran: [String] = []
        for isa in isas {
            for nr in widths {
                let outs = (0..<nr).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: 8) }
                defer { outs.forEach { $0.deallocate() } }
                guard variant(isa, nr, outs.map { $0 }) == 1 else { continue }
                ran.append("\(isa)×\(nr)")
                for o in outs { #expect(Array(UnsafeBufferPointer(start: o, count: 8)) == twin, "\(label): \(isa), \(nr) rows") }
            }
        }
        return ran
    }

    /// Every q8x8 variant this CPU has (AVX2; AVX-512 VNNI), for one, two and four activation
    /// rows at once, equals the plain twin bit for bit, weights of -128 included.
    @Test func q8x8VariantsMatchTheirTwin() {
        let rows = 8, cols = 576
        var weights = Self.randomBlocks(.q8_0, rows: rows, cols: cols, seed: 77)
        for b in 0..<(rows * cols / 32) { weights[b * 34 + 2 + b % 32] = 0x80 }   // -128 somewhere in every block
        var rng = Self.SplitMix(78)
        let x = (0..<cols).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        var q = [UInt8](repeating: 0, count: cols / 32 * 34)
        quill_quantize_row_q8_0(x, &q, Int64(cols))
        weights.withUnsafeBytes { w in
            let packed = QuantizedMatrix(type: .q8_0, rows: rows, cols: cols, data: w.baseAddress!).interleaved()
            var twin = [Float](repeating: 0, count: 8)
            quill_gemv_q8x8_ref(packed.data, q, Int64(cols), &twin)
            let ran = Self.variantsEqualTheTwin(twin, isas: ["avx2", "avx512vnni"], widths: [1, 2, 4], "q8x8") { isa, nr, outs in
                quill_gemv_q8x8_on(isa, packed.data, q, Int64(cols), Int32(nr), outs)
            }
            print("q8x8 variants equal to the twin: \(ran.joined(separator: ", ")) (dispatching to \(String(cString: quill_q8x8_isa())))")
        }
    }

    /// Every q4x8 variant this CPU has (AVX2 for one and two activation rows, AVX-512 VNNI for
    /// four), for Q4_0 and Q4_1, equals the plain twin bit for bit.
    @Test(arguments: [GGMLType.q4_0, .q4_1])
    func q4x8VariantsMatchTheirTwin(_ type: GGMLType) {
        let rows = 8, cols = 576
        let weights = Self.randomBlocks(type, rows: rows, cols: cols, seed: 79 + UInt64(type.rawValue))
        var rng = Self.SplitMix(80)
        let x = (0..<cols).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        var q = [UInt8](repeating: 0, count: cols / 32 * 36)
        quill_quantize_row_q8_1(x, &q, Int64(cols))
        let centered: Int32 = type == .q4_0 ? 1 : 0
        weights.withUnsafeBytes { w in
            let packed = QuantizedMatrix(type: type, rows: rows, cols: cols, data: w.baseAddress!).interleaved()
            var twin = [Float](repeating: 0, count: 8)
            quill_gemv_q4x8_ref(packed.data, q, Int64(cols), centered, &twin)
            let ran = Self.variantsEqualTheTwin(twin, isas: ["avx2", "avx512vnni"], widths: [1, 2, 4], "\(type)") { isa, nr, outs in
                quill_gemv_q4x8_on(isa, packed.data, q, Int64(cols), centered, Int32(nr), outs)
            }
            let dispatching = String(cString: quill_q4x8_isa())
            print("\(type) q4x8 variants equal to the twin: \(ran.joined(separator: ", ")) (dispatching to \(dispatching))")
            #expect(ran.contains { $0.hasPrefix(dispatching) } || dispatching == "scalar")
        }
    }

    /// Q4_0 / Q4_1 / Q8_0 / Q5_0 interleaved eight rows at a time: the same fp32 values when
    /// dequantized, the AVX2 kernel equal to its twin, both within float rounding of the row
    /// kernels, the fused several-products loop equal to one product at a time, and a batch equal
    /// to its rows alone.
    @Test(arguments: [GGMLType.q4_0, .q4_1, .q8_0, .q5_0])
    func interleavedLayoutMatchesTheRowLayout(_ type: GGMLType) {
        let rows = 48, cols = 576, n = 2
        let weights = Self.randomBlocks(type, rows: rows, cols: cols, seed: 40 + UInt64(type.rawValue))
        var rng = Self.SplitMix(5)
        let x = (0..<(n * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        weights.withUnsafeBytes { w in
            let plain = QuantizedMatrix(type: type, rows: rows, cols: cols, data: w.baseAddress!)
            let packed = plain.interleaved()
            #expect(packed.layout == .interleaved8)
            var a = [Float](repeating: 0, count: rows * cols), b = a
            plain.dequantize(rows: 0..<rows, into: &a)
            packed.dequantize(rows: 0..<rows, into: &b)
            #expect(a == b)

            var q = [UInt8](repeating: 0, count: cols / 32 * 36)
            x.withUnsafeBufferPointer { quill_quantize_row_q8_1($0.baseAddress!, &q, Int64(cols)) }
            var q8_0 = [UInt8](repeating: 0, count: cols / 32 * 34)
            x.withUnsafeBufferPointer { quill_quantize_row_q8_0($0.baseAddress!, &q8_0, Int64(cols)) }
            let centered: Int32 = type == .q4_0 ? 1 : 0
            for g in 0..<(rows / 8) {
                var fast = [Float](repeating: 0, count: 8), twin = fast
                if type == .q8_0 || type == .q5_0 {
                    let group = packed.data + g * (cols / 32 * 272)
                    quill_gemv_q8x8(group, q8_0, Int64(cols), &fast)
                    quill_gemv_q8x8_ref(group, q8_0, Int64(cols), &twin)
                } else {
                    let group = packed.data + g * (cols / 32 * 160)
                    quill_gemv_q4x8(group, q, Int64(cols), centered, &fast)
                    quill_gemv_q4x8_ref(group, q, Int64(cols), centered, &twin)
                }
                #expect(fast == twin)
                for r in 0..<8 {
                    let row = w.baseAddress! + (g * 8 + r) * plain.rowBytes
                    let expected = switch type {
                    case .q4_0: quill_vec_dot_q4_0_q8_0_ref(Int64(cols), row, q8_0)
                    case .q8_0: quill_vec_dot_q8_0_q8_0_ref(Int64(cols), row, q8_0)
                    case .q5_0: quill_vec_dot_q5_0_q8_0_ref(Int64(cols), row, q8_0)
                    default: quill_vec_dot_q4_1_q8_1_ref(Int64(cols), row, q)
                    }
                    #expect(abs(twin[r] - expected) <= 1e-4 * max(1, abs(expected)), "row \(g * 8 + r)")
                }
            }

            // fused: products of the same input in one loop, each as computed alone (plus its bias)
            var one = [Float](repeating: 0, count: n * rows), two = one, fusedOne = one, fusedTwo = one, fusedBiased = one
            QuantizedMatmul.forward(&one, x, packed, n: n)
            QuantizedMatmul.forward(&two, x, plain, n: n)
            let bias = (0..<rows).map { Float($0) / 8 }
            fusedOne.withUnsafeMutableBufferPointer { f1 in
                fusedTwo.withUnsafeMutableBufferPointer { f2 in
                    fusedBiased.withUnsafeMutableBufferPointer { f3 in
                        QuantizedMatmul.forward([(f1.baseAddress!, packed, nil), (f2.baseAddress!, packed, nil),
                                                 (f3.baseAddress!, packed, bias)], x, n: n)
                    }
                }
            }
            #expect(fusedOne == one && fusedTwo == one)
            #expect(fusedBiased == one.enumerated().map { $1 + bias[$0 % rows] })
            let maxDiff = zip(one, two).map { abs($0 - $1) }.max()!
            #expect(maxDiff <= 1e-3 * (two.map(abs).max()!), "interleaved vs row kernels: \(maxDiff)")

            // a batch of 7 (rows taken four, two or one at a time) gives each row bit for bit what
            // it gives alone: batched decoding in the server equals decoding one sequence
            let x7 = (0..<7).flatMap { i in (0..<cols).map { x[($0 + 97 * i) % (n * cols)] } }
            var batch = [Float](repeating: 0, count: 7 * rows)
            QuantizedMatmul.forward(&batch, x7, packed, n: 7)
            for i in 0..<7 {
                var alone = [Float](repeating: 0, count: rows)
                QuantizedMatmul.forward(&alone, Array(x7[(i * cols)..<((i + 1) * cols)]), packed, n: 1)
                #expect(Array(batch[(i * rows)..<((i + 1) * rows)]) == alone, "row \(i) of the batch")
            }
        }
    }

    /// Q4_K / Q6_K interleaved eight rows at a time (kx8.c): the same fp32 values when
    /// dequantized; every variant this CPU has (AVX2, AVX-512 VNNI) for one to eight activation
    /// rows equal to the plain twin bit for bit; the twin within float rounding of the row
    /// kernels (the same integer sums); a prompt-sized batch equal, row by row, to each row alone.
    @Test(arguments: [GGMLType.q4_K, .q6_K])
    func kQuantInterleavedLayoutMatchesTheRowLayout(_ type: GGMLType) {
        let rows = 24, cols = 768, n = 21
        let weights = Self.randomBlocks(type, rows: rows, cols: cols, seed: 60 + UInt64(type.rawValue))
        var rng = Self.SplitMix(6)
        let x = (0..<(n * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        weights.withUnsafeBytes { w in
            let plain = QuantizedMatrix(type: type, rows: rows, cols: cols, data: w.baseAddress!)
            let packed = plain.interleaved()
            #expect(packed.layout == .interleaved8 && packed.activationType == .q8_K)
            var a = [Float](repeating: 0, count: rows * cols), b = a
            plain.dequantize(rows: 0..<rows, into: &a)
            packed.dequantize(rows: 0..<rows, into: &b)
            let dequantized = zip(a, b).map { abs($0 - $1) }.max()!
            #expect(dequantized <= 1e-6 * a.map(abs).max()!, "dequantized: \(dequantized)")

            var q = [UInt8](repeating: 0, count: cols / 256 * 292)
            x.withUnsafeBufferPointer { quill_quantize_row_q8_K($0.baseAddress!, &q, Int64(cols)) }
            let groupBytes = cols / 256 * quill_kx8_group_block_bytes(Int32(type.rawValue))
            var ran: Set<String> = []
            for g in 0..<(rows / 8) {
                let group = packed.data + g * groupBytes
                var twin = [Float](repeating: 0, count: 8)
                quill_gemv_kx8_ref(Int32(type.rawValue), group, q, Int64(cols), &twin)
                let variants = Self.variantsEqualTheTwin(twin, isas: ["scalar", "avx2", "avx512vnni"], widths: [1, 2, 3, 4, 8],
                                                         "\(type) group \(g)") { isa, nr, outs in
                    quill_gemv_kx8_on(isa, Int32(type.rawValue), group, q, Int64(cols), Int32(nr), outs)
                }
                ran.formUnion(variants.map { String($0.prefix { $0 != "×" }) })
                for r in 0..<8 {
                    let row = w.baseAddress! + (g * 8 + r) * plain.rowBytes
                    let expected = type == .q4_K ? quill_vec_dot_q4_K_q8_K_ref(Int64(cols), row, q) : quill_vec_dot_q6_K_q8_K_ref(Int64(cols), row, q)
                    #expect(abs(twin[r] - expected) <= 1e-5 * max(1, abs(expected)), "row \(g * 8 + r): \(twin[r]) vs \(expected)")
                }
            }
            print("\(type) kx8 variants equal to the twin: \(ran.sorted().joined(separator: ", ")) (dispatching to \(String(cString: quill_kx8_isa())))")
            #expect(ran.contains(String(cString: quill_kx8_isa())))

            // a prompt of 21 rows (tiles of 16, eight or four rows at a time, single ones) gives each row
            // bit for bit what it gives alone, and the row layout's products within rounding
            var batch = [Float](repeating: 0, count: n * rows), rowLayout = batch
            QuantizedMatmul.forward(&batch, x, packed, n: n)
            QuantizedMatmul.forward(&rowLayout, x, plain, n: n)
            for i in [0, 5, 16, 20] {
                var alone = [Float](repeating: 0, count: rows)
                QuantizedMatmul.forward(&alone, Array(x[(i * cols)..<((i + 1) * cols)]), packed, n: 1)
                #expect(Array(batch[(i * rows)..<((i + 1) * rows)]) == alone, "row \(i) of the batch")
            }
            let maxDiff = zip(batch, rowLayout).map { abs($0 - $1) }.max()!
            #expect(maxDiff <= 1e-4 * rowLayout.map(abs).max()!, "interleaved vs row kernels: \(maxDiff)")
        }
    }

    /// F16 and BF16 weights read in place: the AVX2 kernel against its twin and the fp32 product.
    @Test(arguments: [GGMLType.f16, .bf16])
    func halfPrecisionWeights(_ type: GGMLType) {
        let rows = 40, cols = 300, n = 2   // 300: a tail after the 32-wide loop
        var rng = Self.SplitMix(8)
        let values = (0..<(rows * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 4000 }
        let bits: [UInt16] = values.map { type == .f16 ? halfFromFloat($0) : UInt16($0.bitPattern >> 16) }
        let x = (0..<(n * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        bits.withUnsafeBytes { w in
            let m = QuantizedMatrix(type: type, rows: rows, cols: cols, data: w.baseAddress!)
            var fast = [Float](repeating: 0, count: n * rows), exact = fast
            QuantizedMatmul.forward(&fast, x, m, n: n)
            QuantizedMatmul.reference(&exact, x, m, n: n)
            #expect(zip(fast, exact).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
            x.withUnsafeBufferPointer { xb in
                for r in 0..<rows {
                    let row = w.baseAddress! + r * cols * 2
                    let (a, b) = type == .f16
                        ? (quill_vec_dot_f16_f32(Int64(cols), row, xb.baseAddress!), quill_vec_dot_f16_f32_ref(Int64(cols), row, xb.baseAddress!))
                        : (quill_vec_dot_bf16_f32(Int64(cols), row, xb.baseAddress!), quill_vec_dot_bf16_f32_ref(Int64(cols), row, xb.baseAddress!))
                    #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "row \(r)")
                }
            }
        }
    }
}

/// The AVX2 exponentials (SiLU gate, softmax) and one-query attention against their expf twins.
@Suite struct ActivationKernelTests {
    static func values(_ count: Int, seed: UInt64, range: Float) -> [Float] {
        var rng = QuantizedKernelTests.SplitMix(seed)
        return (0..<count).map { _ in (Float(rng.next() % 200_001) / 100_000 - 1) * range }
    }

    @Test func siluAndExpMatchLibm() {
        let n = 1_003   // a tail after the 8-wide loop
        let gate = Self.values(n, seed: 1, range: 30), up = Self.values(n, seed: 2, range: 3)
        var fast = [Float](repeating: 0, count: n), twin = fast
        quill_silu_mul(&fast, gate, up, Int64(n))
        quill_silu_mul_ref(&twin, gate, up, Int64(n))
        let siluError = zip(fast, twin).map { abs($0 - $1) / max(abs($1), 1e-30) }.max()!
        var e = Self.values(n, seed: 3, range: 80), eTwin = e
        let sum = quill_exp_sum(&e, Int64(n), 5), sumTwin = quill_exp_sum_ref(&eTwin, Int64(n), 5)
        let expError = zip(e, eTwin).map { abs($0 - $1) / max(abs($1), 1e-30) }.max()!
        print("silu·up max relative error \(siluError), exp \(expError), sum \(abs(sum - sumTwin) / sumTwin)")
        #expect(siluError < 1e-6 && expError < 1e-6)
        #expect(abs(sum - sumTwin) <= 1e-5 * sumTwin)
    }

    /// Gemma's GeGLU against its expf twin, both in GELU's sigmoid form (relative error; absolute
    /// below 1e-6, where the far negative tail underflows).
    @Test func geluGateMatchesLibm() {
        let n = 1_003
        let gate = Self.values(n, seed: 7, range: 12), up = Self.values(n, seed: 8, range: 3)
        var fast = [Float](repeating: 0, count: n), twin = fast
        quill_gelu_mul(&fast, gate, up, Int64(n))
        quill_gelu_mul_ref(&twin, gate, up, Int64(n))
        let error = zip(fast, twin).map { abs($0 - $1) / max(abs($1), 1e-6) }.max()!
        print("gelu·up max relative error \(error)")
        #expect(error < 1e-5)
    }

    /// The GeGLU's backward (training Gemma) against its expf twin.
    @Test func geluGateBackwardMatchesLibm() {
        let n = 1_003
        let gate = Self.values(n, seed: 9, range: 12), up = Self.values(n, seed: 10, range: 3), dout = Self.values(n, seed: 11, range: 1)
        var dgate = [Float](repeating: 0, count: n), dup = dgate, dgateTwin = dgate, dupTwin = dgate
        quill_gelu_mul_backward(&dgate, &dup, dout, gate, up, Int64(n))
        quill_gelu_mul_backward_ref(&dgateTwin, &dupTwin, dout, gate, up, Int64(n))
        func error(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) / max(abs($1), 1e-6) }.max()! }
        print("geglu backward max relative error: dgate \(error(dgate, dgateTwin)), dup \(error(dup, dupTwin))")
        #expect(error(dgate, dgateTwin) < 1e-5 && error(dup, dupTwin) < 1e-5)
    }

    @Test(arguments: [64, 24, 36])   // 36: not a multiple of 8, the twin runs
    func attendOneMatchesItsTwin(_ hs: Int) {
        let count = 37, stride = 3 * hs
        let q = Self.values(hs, seed: 4, range: 1), keys = Self.values(count * stride, seed: 5, range: 1)
        let values = Self.values(count * stride, seed: 6, range: 1)
        var scores = [Float](repeating: 0, count: count), fast = [Float](repeating: 0, count: hs), twin = fast
        keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in   // the second KV head of three
                quill_attend_one(q, k.baseAddress! + hs, v.baseAddress! + hs, stride, Int64(count), Int64(hs), 0.125, &scores, &fast)
                quill_attend_one_ref(q, k.baseAddress! + hs, v.baseAddress! + hs, stride, Int64(count), Int64(hs), 0.125, &scores, &twin)
            }
        }
        #expect(zip(fast, twin).allSatisfy { abs($0 - $1) < 1e-6 })
    }
}
