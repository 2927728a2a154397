import Foundation
import QuillModels
import QuillCore

/// A frozen linear weight [out, in] kept in its file's type (QLoRA: a 4-bit base stays 4-bit in
/// memory) and dequantized into a scratch buffer when a product needs it. Rows are stored as
/// the file stores them, in Hugging Face row order (llama.cpp's q/k permutation undone row by
/// row: each row is its own blocks).
struct FrozenWeight: Sendable {
    let type: GGMLType
    let rows: Int, cols: Int
    let rowBytes: Int
    let data: [UInt8]

    init(type: GGMLType, rows: Int, cols: Int, bytes: UnsafeRawBufferPointer, rowOrder: [Int]? = nil) {
        self.type = type; self.rows = rows; self.cols = cols
        let rowBytes = cols / type.blockLayout.elements * type.blockLayout.bytes
        self.rowBytes = rowBytes
        precondition(bytes.count == rows * rowBytes, "\(rows) rows of \(cols) \(type) values are not \(bytes.count) bytes")
        if let rowOrder {
            var reordered = [UInt8](repeating: 0, count: bytes.count)
            reordered.withUnsafeMutableBytes { out in
                for (to, from) in rowOrder.enumerated() {
                    (out.baseAddress! + to * rowBytes).copyMemory(from: bytes.baseAddress! + from * rowBytes, byteCount: rowBytes)
                }
            }
            data = reordered
        } else {
            data = Array(bytes)
        }
    }

    /// out[rows, cols] = the weight in fp32, rows split over the pool.
    func dequantize(into out: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let chunks = min(rows, pool.threads * 4)
        data.withUnsafeBytes { raw in
            pool.parallelFor(chunks) { chunk in
                for r in (rows * chunk / chunks)..<(rows * (chunk + 1) / chunks) {
                    Dequantize.fast(type, from: raw.baseAddress! + r * rowBytes, into: out + r * cols, count: cols)
                }
            }
        }
    }

    func values(pool: ThreadPool) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * cols) { buffer, count in
            dequantize(into: buffer.baseAddress!, pool: pool)
            count = rows * cols
        }
    }
}

/// QLoRA's frozen base: the linear weights kept in their file's quantized type, by name, and one
/// fp32 room, as large as the largest of them, that a product reading one dequantizes it into.
final class QuantizedBase: @unchecked Sendable {
    // @unchecked: the room is refilled by the training step, one product at a time.
    private let weights: [String: FrozenWeight]
    private var room: UnsafeMutableBufferPointer<Float>?

    init(_ weights: [String: FrozenWeight]) { self.weights = weights }

    deinit { room?.deallocate() }

    var isEmpty: Bool { weights.isEmpty }

    /// Bytes of the quantized weights and of the fp32 room.
    var bytes: Int { weights.values.reduce(0) { $0 + $1.data.count } + 4 * largest }

    private var largest: Int { weights.values.map { $0.rows * $0.cols }.max() ?? 0 }

    /// The weight `name` in fp32, valid until the next call; nil when it is not frozen here.
    func dequantized(_ name: String, pool: ThreadPool) -> UnsafePointer<Float>? {
        guard let weight = weights[name] else { return nil }
        if room == nil { room = .allocate(capacity: largest) }
        weight.dequantize(into: room!.baseAddress!, pool: pool)
        return UnsafePointer(room!.baseAddress!)
    }

    /// The weight `name`'s values in fp32; nil when it is not frozen here.
    func values(_ name: String, pool: ThreadPool) -> [Float]? { weights[name]?.values(pool: pool) }
}
