import CQuillKernels

// Quantization of fp32 weights into the GGUF types Quill writes: the inverse of `Dequantize`.
// Block types use ggml's arithmetic (CQuillKernels/quantize.c), so the bytes equal gguf-py's
// `quants.quantize` and llama-quantize's, with an importance matrix (`--imatrix`) or without.

public enum Quantize {
    /// The types `row` can produce.
    public static let writableTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    /// Quantizes `count` values (a whole number of `type`'s blocks) into `destination`, which holds
    /// `count / elements × bytes` of the type's block layout. `importance`: one weight per value
    /// (its column's from an importance matrix), for the weighted fits llama-quantize --imatrix
    /// uses; the values are then one whole row of the tensor. Q8_0 and the float types ignore it.
    public static func row(_ type: GGMLType, from source: UnsafePointer<Float>, into destination: UnsafeMutableRawPointer, count: Int,
                           importance: UnsafePointer<Float>? = nil) {
        precondition(count % type.blockLayout.elements == 0, "\(count) values is not a whole number of \(type) blocks")
        switch type {
        case .f32:
            destination.copyMemory(from: source, byteCount: count * 4)
        case .f16:
            let out = destination.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { out[i] = halfFromFloat(source[i]).littleEndian }
        case .bf16:
            let out = destination.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { out[i] = bfloat16FromFloat(source[i]).littleEndian }
        default:
            let status = quill_quantize_row(Int32(type.rawValue), source, destination, Int64(count), importance)
            precondition(status == 0, "Quill cannot write \(type) blocks")
        }
    }

    /// `rows` rows of `columns` values each, row after row, spread over the thread pool;
    /// `importance` (`columns` weights) the same for every row.
    public static func rows(_ type: GGMLType, from source: UnsafePointer<Float>, into destination: UnsafeMutableRawPointer,
                            rows: Int, columns: Int, importance: UnsafePointer<Float>? = nil, pool: ThreadPool = .shared) {
        let rowBytes = type.byteCount(columns)
        // chunks of rows large enough that a K-quant row of 576 values is not the unit of work
        let perChunk = max(1, 16_384 / max(columns, 1))
        let chunks = (rows + perChunk - 1) / perChunk
        pool.parallelFor(chunks) { chunk in
            for r in (chunk * perChunk)..<min(rows, (chunk + 1) * perChunk) {
                row(type, from: source + r * columns, into: destination + r * rowBytes, count: columns, importance: importance)
            }
        }
    }
}
