// Matrix-vector products straight from quantized weights: each input row is quantized to the
// matching Q8 type once, then every weight row is an int8 dot product (CQuillKernels), with the
// rows split across cores. Decoding is memory-bound, and Q4_1 weights are 6.4x smaller than fp32.
// F16 and BF16 weights stay 16-bit the same way, widened in registers against fp32 inputs.

import CQuillKernels

/// A weight matrix [rows, cols] in a quantized GGUF layout: rows as the file stores them
/// (read-only, usually mapped), or Q4_0 / Q4_1 / Q8_0 / Q5_0 rows interleaved eight at a time for
/// the decode kernels (see q4x8.c, q8x8.c), in memory this value owns.
public struct QuantizedMatrix: @unchecked Sendable {
    // @unchecked: `data` points at immutable memory: a read-only file mapping that the owner
    // keeps alive, or `storage`, written once by `interleaved()` before the value is shared.
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer
    public let layout: Layout
    private let storage: AlignedBuffer?

    public enum Layout: Sendable { case rows, interleaved8 }

    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer) {
        precondition(Self.supports(type), "no quantized kernel for \(type)")
        self.type = type; self.rows = rows; self.cols = cols; self.data = data
        self.layout = .rows; self.storage = nil
    }

    private init(interleaving m: QuantizedMatrix, pool: ThreadPool = .shared) {
        let storage = AlignedBuffer(byteCount: m.rows / 8 * m.groupBytes)
        let type = Int32(m.type.rawValue), groups = m.rows / 8, cols = Int64(m.cols)
        let parts = max(1, min(pool.threads, groups / 64))   // loading a model repacks on every core
        pool.parallelFor(parts) { part in
            let first = groups * part / parts, count = Int64(groups * (part + 1) / parts - first)
            let src = m.data + first * 8 * m.rowBytes, dst = storage.base + first * m.groupBytes
            switch m.groupKind {
            case .int8: quill_repack_q8x8(type, src, m.rowBytes, count, cols, dst)
            case .nibbles: quill_repack_q4x8(type, src, m.rowBytes, count, cols, dst)
            case .kQuant: quill_repack_kx8(type, src, m.rowBytes, count, cols, dst)
            }
        }
        self.type = m.type; self.rows = m.rows; self.cols = m.cols
        self.data = UnsafeRawPointer(storage.base); self.layout = .interleaved8; self.storage = storage
    }

    public static func supports(_ type: GGMLType) -> Bool { quill_activation_type(Int32(type.rawValue)) >= 0 }

    /// The interleaved layout when this type and shape have it (Q4_0 / Q4_1 / Q8_0 / Q5_0 /
    /// Q4_K / Q6_K, rows a multiple of 8), else the matrix unchanged. The copy is as large as the
    /// original, except for Q5_0, widened to int8 (34 bytes a block instead of 22): its kernel
    /// then multiplies as Q8_0's does, with the same products, instead of unpacking 5-bit values;
    /// and Q4_K, whose scales are unpacked (1184 bytes for eight blocks instead of 1152).
    public func interleaved() -> QuantizedMatrix {
        guard layout == .rows, [.q4_0, .q4_1, .q8_0, .q5_0, .q4_K, .q6_K].contains(type), rows % 8 == 0 else { return self }
        return QuantizedMatrix(interleaving: self)
    }

    /// How eight rows are interleaved: int8 groups of 32 columns (q8x8.c: Q8_0, Q5_0), nibbles
    /// (q4x8.c: Q4_0, Q4_1), or K-quant super-blocks of 256 (kx8.c: Q4_K, Q6_K).
    enum GroupKind { case int8, nibbles, kQuant }
    var groupKind: GroupKind {
        switch type {
        case .q8_0, .q5_0: .int8
        case .q4_K, .q6_K: .kQuant
        default: .nibbles
        }
    }
    /// Bytes of eight interleaved rows: 8 × 34 per 32 columns as int8, 8 × Q4_1's 20 as nibbles
    /// (Q4_0's m left zero), kx8.c's group block per 256 for the K-quants.
    private var groupBytes: Int {
        switch groupKind {
        case .int8: cols / 32 * 272
        case .nibbles: cols / 32 * 160
        case .kQuant: cols / 256 * quill_kx8_group_block_bytes(Int32(type.rawValue))
        }
    }

    /// Bytes of one row in the file layout.
    public var rowBytes: Int { cols / type.blockLayout.elements * type.blockLayout.bytes }

    /// The activation type the kernel pairs with this weight type.
    public var activationType: GGMLType {
        layout == .interleaved8 && groupKind == .nibbles ? .q8_1 : GGMLType(rawValue: UInt32(quill_activation_type(Int32(type.rawValue))))!
    }

    /// Rows [begin, end) as fp32 into `out` [end - begin, cols]; begin and end multiples of 8
    /// in the interleaved layout.
    public func dequantize(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        switch layout {
        case .rows:
            Dequantize.fast(type, from: data + range.lowerBound * rowBytes, into: out, count: range.count * cols)
        case .interleaved8:
            for g in stride(from: range.lowerBound, to: range.upperBound, by: 8) {
                let group = data + g / 8 * groupBytes, rows = out + (g - range.lowerBound) * cols
                switch groupKind {
                case .int8: quill_dequantize_q8x8(group, Int64(cols), rows)
                case .nibbles: quill_dequantize_q4x8(group, Int64(cols), type == .q4_0 ? 1 : 0, rows)
                case .kQuant: quill_dequantize_kx8(Int32(type.rawValue), group, Int64(cols), rows)
                }
            }
        }
    }
}

/// 64-byte aligned memory, freed with its owner.
final class AlignedBuffer: @unchecked Sendable {
    // @unchecked: written once right after allocation, then only read.
    let base: UnsafeMutableRawPointer
    init(byteCount: Int) { base = UnsafeMutableRawPointer.allocate(byteCount: max(1, byteCount), alignment: 64) }
    deinit { base.deallocate() }
}

public enum QuantizedMatmul {
    /// The instruction set the kernels run on ("avx2" or "scalar").
    public static var isa: String { String(cString: quill_kernel_isa()) }

    /// out[N, rows] = x[N, cols] · Wᵀ, rows split over the pool.
    public static func forward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: QuantizedMatrix,
                               n: Int, pool: ThreadPool = .shared) {
        forward([(out, w, nil)], x, n: n, pool: pool)
    }

    /// Several products of the same input (q, k and v; gate and up), each plus its bias: the
    /// input is quantized once and all their rows share one parallel loop. The weights must
    /// agree in `cols` and activation type.
    public static func forward(_ products: [(out: UnsafeMutablePointer<Float>, weight: QuantizedMatrix, bias: [Float]?)],
                               _ x: UnsafePointer<Float>, n: Int, pool: ThreadPool = .shared) {
        let cols = products[0].weight.cols, act = products[0].weight.activationType
        precondition(products.allSatisfy { $0.weight.cols == cols && $0.weight.activationType == act })
        let actBytes = cols / act.blockLayout.elements * act.blockLayout.bytes
        let quantized = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * actBytes), alignment: 64)
        defer { quantized.deallocate() }
        // a prompt's rows are quantized on every core; a token's or a few, here
        let quantizers = n >= 16 ? min(pool.threads, n / 8) : 1
        pool.parallelFor(quantizers) { part in
            for i in (n * part / quantizers)..<(n * (part + 1) / quantizers) {
                switch act {
                case .q8_1: quill_quantize_row_q8_1(x + i * cols, quantized + i * actBytes, Int64(cols))
                case .q8_0: quill_quantize_row_q8_0(x + i * cols, quantized + i * actBytes, Int64(cols))
                case .q8_K: quill_quantize_row_q8_K(x + i * cols, quantized + i * actBytes, Int64(cols))
                default: (quantized + i * actBytes).copyMemory(from: x + i * cols, byteCount: actBytes)   // f32: as it is
                }
            }
        }
        // units of 8-row groups; a few chunks per thread even out a core that is busy elsewhere
        let units = products.map { ($0.weight.rows + 7) / 8 }, total = units.reduce(0, +)
        let chunks = max(1, min(pool.threads * 4, total / 2))
        pool.parallelFor(chunks) { chunk in
            var begin = total * chunk / chunks, end = total * (chunk + 1) / chunks
            for (p, (out, w, bias)) in products.enumerated() {
                defer { begin -= units[p]; end -= units[p] }
                let from = max(begin, 0), to = min(end, units[p])
                guard from < to else { continue }
                switch w.layout {
                case .interleaved8 where w.groupKind == .int8:
                    quill_matvec_q8x8(w.data, quantized, actBytes, Int64(n), out, w.rows, Int64(cols), Int64(from), Int64(to))
                case .interleaved8 where w.groupKind == .kQuant:
                    quill_matvec_kx8(Int32(w.type.rawValue), w.data, quantized, actBytes, Int64(n), out, w.rows, Int64(cols),
                                     Int64(from), Int64(to))
                case .interleaved8:
                    quill_matvec_q4x8(w.data, quantized, actBytes, Int64(n), out, w.rows, Int64(cols),
                                      w.type == .q4_0 ? 1 : 0, Int64(from), Int64(to))
                case .rows:
                    quill_matvec(Int32(w.type.rawValue), w.data, w.rowBytes, quantized, actBytes, Int64(n), out, w.rows,
                                 Int64(cols), Int64(from * 8), Int64(min(to * 8, w.rows)))
                }
                if let bias {
                    for i in 0..<n { for r in (from * 8)..<min(to * 8, w.rows) { out[i * w.rows + r] += bias[r] } }
                }
            }
        }
    }

    /// The same product for a batch of rows (a prompt): each thread dequantizes its slice of
    /// weight rows to fp32, still warm in cache, and multiplies it on BLAS. Prefill is
    /// compute-bound, and sgemm beats int8 dot products there.
    public static func forwardDequantized(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: QuantizedMatrix,
                                          bias: UnsafePointer<Float>?, n: Int, pool: ThreadPool = .shared) {
        Matmul.forEachSlice(oc: w.rows, n: n, c: w.cols, pool: pool) { rows in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rows.count * w.cols) { dense in
                w.dequantize(rows: rows, into: dense.baseAddress!)
                Matmul.product(out + rows.lowerBound, ldOut: w.rows, x, dense.baseAddress!, bias.map { $0 + rows.lowerBound },
                               n: n, c: w.cols, oc: rows.count)
            }
        }
    }

    /// Dequantize-then-fp32 reference for the same product (what the kernels approximate).
    public static func reference(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: QuantizedMatrix, n: Int) {
        let dense = [Float](unsafeUninitializedCapacity: w.rows * w.cols) { buffer, initialized in
            w.dequantize(rows: 0..<w.rows, into: buffer.baseAddress!)
            initialized = w.rows * w.cols
        }
        Matmul.reference(out, x, dense, nil, n: n, c: w.cols, oc: w.rows)
    }
}
