import Foundation
import QuillCore
import QuillTokenizers

/// An importance matrix, as llama.cpp's `llama-imatrix` writes it and `llama-quantize --imatrix`
/// reads it: for each weight matrix of the blocks, the sum over calibration tokens of the square
/// of each input column's activation (`<name>.in_sum2`, F32 [columns, matrices]) and how many
/// tokens went in (`<name>.counts`, F32 [1, matrices]), with `general.type` = imatrix,
/// `imatrix.datasets`, `imatrix.chunk_count` and `imatrix.chunk_size`. A quantizer weights each
/// column's rounding error by its mean square, so the columns that carry large activations are
/// kept more exactly. The older `.dat` format (llama.cpp before the GGUF one) is read too.
///
/// ```swift
/// let matrix = try ImportanceMatrix(path: "imatrix.gguf")
/// let weights = matrix.importance(for: "blk.0.ffn_down.weight")   // [columns], or nil
/// ```
public struct ImportanceMatrix: Sendable {
    public struct Entry: Sendable, Equatable {
        /// Σ x² per column, matrix after matrix: [matrices × columns].
        public var sums: [Float]
        /// Tokens summed, one count per matrix (one for a 2-D weight).
        public var counts: [Int64]

        public init(sums: [Float], counts: [Int64]) { self.sums = sums; self.counts = counts }
        public var columns: Int { counts.isEmpty ? 0 : sums.count / counts.count }
    }

    /// By weight name (`blk.0.attn_q.weight`).
    public var entries: [String: Entry]
    /// The calibration files it was computed on.
    public var datasets: [String]
    public var chunkCount: Int
    public var chunkSize: Int
    /// Read from the `.dat` format, whose sums are already divided by one count per entry
    /// times the calls (`importance` divides by the calls only).
    public private(set) var isLegacy = false

    public init(entries: [String: Entry] = [:], datasets: [String] = [], chunkCount: Int = 0, chunkSize: Int = 0) {
        self.entries = entries; self.datasets = datasets; self.chunkCount = chunkCount; self.chunkSize = chunkSize
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case malformed(path: String, problem: String)
        case unreadable(path: String, reason: String)

        public var description: String {
            switch self {
            case let .malformed(path, problem): "\(path): not a usable importance matrix: \(problem)"
            case let .unreadable(path, reason): "\(path): \(reason)"
            }
        }
    }

    // MARK: reading

    /// Reads a GGUF importance matrix, or a legacy `.dat` one (anything without the GGUF magic).
    public init(path: String) throws {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch GGUFError.notGGUF {
            let data: Data
            do { data = try FileContents.read(path) } catch { throw Failure.unreadable(path: path, reason: error.reason) }
            try self.init(legacy: data, path: path)
            return
        }
        try self.init(gguf: file)
    }

    /// The matrix in a GGUF file: every `.in_sum2` with its `.counts`, both F32.
    public init(gguf file: GGUFFile) throws {
        let path = file.path
        if let type = file.metadata["general.type"]?.string, type != "imatrix" {
            throw Failure.malformed(path: path, problem: "general.type is \(type), not imatrix (is this a model?)")
        }
        var sums: [String: GGUFFile.TensorInfo] = [:], counts: [String: GGUFFile.TensorInfo] = [:]
        for tensor in file.tensors {
            if tensor.name.hasSuffix(".in_sum2") { sums[String(tensor.name.dropLast(8))] = tensor }
            else if tensor.name.hasSuffix(".counts") { counts[String(tensor.name.dropLast(7))] = tensor }
        }
        guard !sums.isEmpty else { throw Failure.malformed(path: path, problem: "no .in_sum2 tensors") }
        var entries: [String: Entry] = [:]
        for name in Set(sums.keys).union(counts.keys) {
            guard let sum = sums[name], let count = counts[name] else {
                throw Failure.malformed(path: path, problem: "\(name) has \(sums[name] == nil ? "counts without sums" : "sums without counts")")
            }
            guard sum.type == .f32, count.type == .f32 else {
                throw Failure.malformed(path: path, problem: "\(name): sums and counts must be F32 (they are \(sum.type.name) and \(count.type.name))")
            }
            let values = Self.floats(file.data(of: sum)), tokens = Self.floats(file.data(of: count))
            guard !tokens.isEmpty, values.count % tokens.count == 0, values.count > 0 else {
                throw Failure.malformed(path: path, problem: "\(name): \(values.count) sums do not divide among \(tokens.count) counts")
            }
            // sums of squares: a negative one is damage (llama-quantize lets it through; it would invert the weighting)
            guard values.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw Failure.malformed(path: path, problem: "\(name): a sum is negative or not finite")
            }
            guard tokens.allSatisfy({ $0.isFinite && $0 >= 0 && $0 < 9e18 }) else {
                throw Failure.malformed(path: path, problem: "\(name): a count is negative or not finite")
            }
            // counts are token numbers held as floats: llama.cpp rounds them (lround)
            entries[name] = Entry(sums: values, counts: tokens.map { Int64($0.rounded(.toNearestOrAwayFromZero)) })
        }
        let metadata = file.metadata
        self.init(entries: entries, datasets: metadata["imatrix.datasets"]?.array?.compactMap(\.string) ?? [],
                  chunkCount: metadata["imatrix.chunk_count"]?.int ?? 0, chunkSize: metadata["imatrix.chunk_size"]?.int ?? 0)
        guard metadata["imatrix.datasets"] != nil, metadata["imatrix.chunk_count"] != nil, metadata["imatrix.chunk_size"] != nil else {
            // llama-quantize refuses such a file too
            throw Failure.malformed(path: path, problem: "imatrix.datasets, imatrix.chunk_count or imatrix.chunk_size is missing")
        }
    }

    /// The `.dat` format: int32 entry count; per entry an int32 name length, the name, int32 calls,
    /// int32 value count and the values (already divided by the calls' token counts); then,
    /// optionally, int32 chunk count, int32 length and the dataset's name. Little-endian.
    public init(legacy data: Data, path: String) throws {
        var entries: [String: Entry] = [:], chunks = 0, datasets: [String] = []
        do {
            try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws in
                guard let base = bytes.baseAddress else { throw Failure.malformed(path: path, problem: "the file is empty") }
                var reader = GGUFReader(base: base, length: bytes.count, path: path)
                let count = try reader.scalar(Int32.self, "the entry count")
                guard count >= 1 else { throw Failure.malformed(path: path, problem: "no entries (\(count))") }
                for i in 0..<Int(count) {
                    let length = try reader.scalar(Int32.self, "entry \(i + 1)'s name length")
                    guard length >= 0 else { throw Failure.malformed(path: path, problem: "entry \(i + 1): a name of \(length) bytes") }
                    let name = String(decoding: try reader.bytes(Int(length), "entry \(i + 1)'s name"), as: UTF8.self)
                    let calls = try reader.scalar(Int32.self, "\(name)'s call count")
                    let values = try reader.scalar(Int32.self, "\(name)'s value count")
                    guard values >= 1 else { throw Failure.malformed(path: path, problem: "\(name): \(values) values") }
                    try reader.need(4 * Int(values), "\(name)'s \(values) values")
                    let sums = Self.floats(UnsafeRawBufferPointer(start: base + reader.at, count: 4 * Int(values)))
                    reader.at += 4 * Int(values)
                    guard sums.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                        throw Failure.malformed(path: path, problem: "\(name): a value is negative or not finite")
                    }
                    entries[name] = Entry(sums: sums, counts: [Int64(calls)])
                }
                // the optional tail: what of it is there
                guard let n = try? reader.scalar(Int32.self, "the chunk count") else { return }
                chunks = Int(n)
                if let length = try? reader.scalar(Int32.self, "the dataset name's length"), length > 0,
                   let name = try? reader.bytes(Int(length), "the dataset name") {
                    datasets = [String(decoding: name, as: UTF8.self)]
                }
            }
        } catch let GGUFError.truncated(_, offset, reading) {
            throw Failure.malformed(path: path, problem: "the file ends at byte \(offset) while reading \(reading)")
        }
        self.init(entries: entries, datasets: datasets, chunkCount: chunks, chunkSize: 0)
        isLegacy = true
    }

    /// Little-endian F32 values (none for no bytes).
    static func floats(_ bytes: UnsafeRawBufferPointer) -> [Float] {
        bytes.isEmpty ? [] : Dequantize.array(.f32, bytes, count: bytes.count / 4)
    }

    // MARK: use

    /// The weights a quantizer gives `name`'s columns, as llama-quantize computes them: each
    /// matrix's sums over its token count (1 where no token reached it); nil when the matrix
    /// has no entry for it.
    public func importance(for name: String) -> [Float]? {
        guard let entry = entries[name], !entry.counts.isEmpty else { return nil }
        if isLegacy {
            let calls = entry.counts[0]
            return calls > 0 ? entry.sums.map { $0 / Float(calls) } : entry.sums
        }
        let columns = entry.columns
        var out = [Float](repeating: 1, count: entry.sums.count)
        for (m, count) in entry.counts.enumerated() where count > 0 {
            for i in (m * columns)..<((m + 1) * columns) { out[i] = entry.sums[i] / Float(count) }
        }
        return out
    }

    // MARK: collecting and writing

    /// Adds `rows` rows of activations [rows, columns] that met `name`: each column's squares to
    /// its sum, in token order (as llama-imatrix does, in fp32), and the rows to the count.
    public mutating func accumulate(_ name: String, _ x: UnsafePointer<Float>, rows: Int, columns: Int) {
        if entries[name] == nil { entries[name] = Entry(sums: [Float](repeating: 0, count: columns), counts: [0]) }
        precondition(entries[name]!.sums.count == columns, "\(name): \(columns) columns, the matrix has \(entries[name]!.sums.count)")
        // in place: a copy of the sums out of the dictionary and back would cost one per call
        entries[name]!.sums.withUnsafeMutableBufferPointer { sums in
            for r in 0..<rows {
                let row = x + r * columns
                for j in 0..<columns { sums[j] += row[j] * row[j] }
            }
        }
        entries[name]!.counts[0] += Int64(rows)
    }

    /// Writes llama-imatrix's GGUF format (tensors in name order), complete or not at all.
    public func write(to path: String) throws {
        var writer = GGUFWriter(metadata: [
            ("general.type", .string("imatrix")),
            ("imatrix.datasets", .array(.string, datasets.map { .string($0) })),
            ("imatrix.chunk_count", .uint32(UInt32(clamping: chunkCount))),
            ("imatrix.chunk_size", .uint32(UInt32(clamping: chunkSize))),
        ])
        for name in entries.keys.sorted() {
            let entry = entries[name]!
            let sums = entry.sums, counts = entry.counts.map(Float.init)
            writer.append(.init(name: "\(name).in_sum2", dimensions: [entry.columns, counts.count], type: .f32) { out in
                sums.withUnsafeBytes { out.copyMemory(from: $0) }
            })
            writer.append(.init(name: "\(name).counts", dimensions: [1, counts.count], type: .f32) { out in
                counts.withUnsafeBytes { out.copyMemory(from: $0) }
            })
        }
        try writer.write(to: path)
    }
}
