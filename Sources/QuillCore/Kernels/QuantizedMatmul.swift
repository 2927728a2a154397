// Matrix-vector products straight from quantized weights: each input row is quantized to the
// matching Q8 type once, then every weight row is an int8 dot product (CQuillKernels), with the
// rows split across cores. Decoding is memory-bound, and Q4_1 weights are 6.4x smaller than fp32.

import CQuillKernels

/// A weight matrix [rows, cols] left in its quantized GGUF layout (read-only, usually mapped).
public struct QuantizedMatrix: @unchecked Sendable {
    // @unchecked: `data` points at immutable memory (a read-only file mapping) that the owner keeps alive.
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer

    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer) {
        precondition(Self.supports(type), "no quantized kernel for \(type)")
        self.type = type; self.rows = rows; self.cols = cols; self.data = data
    }

    public static func supports(_ type: GGMLType) -> Bool { quill_activation_type(Int32(type.rawValue)) >= 0 }

    public var rowBytes: Int { cols / type.blockLayout.elements * type.blockLayout.bytes }

    /// The activation type the kernel pairs with this weight type.
    var activationType: GGMLType { GGMLType(rawValue: UInt32(quill_activation_type(Int32(type.rawValue))))! }
}

public enum QuantizedMatmul {
    /// The instruction set the kernels run on ("avx2" or "scalar").
    public static var isa: String { String(cString: quill_kernel_isa()) }

    /// out[N, rows] = x[N, cols] · Wᵀ, rows split over the pool.
    public static func forward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: QuantizedMatrix,
                               n: Int, pool: ThreadPool = .shared) {
        let act = w.activationType
        let actBytes = w.cols / 32 * act.blockLayout.bytes
        let quantized = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * actBytes), alignment: 64)
        defer { quantized.deallocate() }
        for i in 0..<n {
            if act == .q8_1 { quill_quantize_row_q8_1(x + i * w.cols, quantized + i * actBytes, Int64(w.cols)) }
            else { quill_quantize_row_q8_0(x + i * w.cols, quantized + i * actBytes, Int64(w.cols)) }
        }
        // a few chunks per thread evens out a core that is busy elsewhere
        let chunks = max(1, min(pool.threads * 4, w.rows / 16))
        let type = Int32(w.type.rawValue), rowBytes = w.rowBytes, rows = w.rows, cols = Int64(w.cols)
        pool.parallelFor(chunks) { chunk in
            let begin = rows * chunk / chunks, end = rows * (chunk + 1) / chunks
            for i in 0..<n {
                quill_matvec(type, w.data, rowBytes, quantized + i * actBytes, out + i * rows,
                             cols, Int64(begin), Int64(end))
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
                Dequantize.row(w.type, from: w.data + rows.lowerBound * w.rowBytes, into: dense.baseAddress!, count: rows.count * w.cols)
                Matmul.product(out + rows.lowerBound, ldOut: w.rows, x, dense.baseAddress!, bias.map { $0 + rows.lowerBound },
                               n: n, c: w.cols, oc: rows.count)
            }
        }
    }

    /// Dequantize-then-fp32 reference for the same product (what the kernels approximate).
    public static func reference(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: QuantizedMatrix, n: Int) {
        let dense = Dequantize.array(w.type, UnsafeRawBufferPointer(start: w.data, count: w.rows * w.rowBytes),
                                     count: w.rows * w.cols)
        Matmul.reference(out, x, dense, nil, n: n, c: w.cols, oc: w.rows)
    }
}
