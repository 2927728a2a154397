import Foundation
import QuillCore

/// Requantizes a GGUF file (llama-quantize's job): every tensor to the type the plan gives it,
/// the metadata kept with `general.file_type` and `general.quantization_version` set.
///
/// ```swift
/// let source = try GGUFFile(path: "SmolLM2-135M-Instruct.F16.gguf")
/// try GGUFQuantizer.quantize(source, to: "SmolLM2-135M-Instruct.Q4_K_M.gguf", options: .init(fileType: .q4_K_M))
/// ```
public enum GGUFQuantizer {
    public struct Options: Sendable {
        public var plan: GGUFQuantizationPlan.Options
        /// Quantize tensors already block-quantized in another type than Q8_0 (each step loses more;
        /// dequantizing to F32, F16 or BF16 needs no permission).
        public var allowRequantize = false
        /// An importance matrix (llama-quantize --imatrix) and the path it was read from, which the
        /// file records: the weighted quantizers for the tensors it has an entry for.
        public var importanceMatrix: (matrix: ImportanceMatrix, path: String)? {
            didSet { plan.hasImportanceMatrix = importanceMatrix != nil }
        }
        public init(fileType: GGUFFileType) { plan = .init(fileType: fileType) }

        /// The importance of `entry`'s columns, where the matrix has it and the tensor is quantized.
        func importance(for entry: GGUFQuantizationPlan.Entry) throws -> [Float]? {
            guard let (matrix, path) = importanceMatrix, entry.to.isBlockQuantized, entry.from != entry.to,
                  let importance = matrix.importance(for: entry.name) else { return nil }
            let expected = entry.dimensions[0] * (entry.dimensions.count > 2 ? entry.dimensions[2] : 1)
            guard importance.count == expected else {
                // as llama-quantize: the token embedding (never a product's weight) is let through
                if entry.name == "token_embd.weight" { return nil }
                throw Failure.importanceSize(path: path, tensor: entry.name, entries: importance.count, columns: expected)
            }
            return importance
        }

        /// Quantized tensors the matrix has no entry for (quantized without one, as llama-quantize does).
        public func tensorsWithoutImportance(_ plan: GGUFQuantizationPlan) -> [String] {
            guard let (matrix, _) = importanceMatrix else { return [] }
            return plan.entries.filter { $0.to.isBlockQuantized && $0.from != $0.to && matrix.entries[$0.name] == nil }.map(\.name)
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case requantizing(path: String, tensor: String, from: GGMLType)
        case nonFinite(path: String, tensor: String, row: Int)
        case cannotWrite(tensor: String, type: GGMLType)
        case importanceSize(path: String, tensor: String, entries: Int, columns: Int)

        public var description: String {
            switch self {
            case let .requantizing(path, tensor, from):
                return "\(path): tensor \(tensor) is already \(from.name); quantizing it again loses more than quantizing the F16/F32 original once (pass --allow-requantize to do it anyway)"
            case let .nonFinite(path, tensor, row):
                return "\(path): tensor \(tensor) has a NaN or infinite value in row \(row); nothing was written (a damaged file, or a training run that diverged)"
            case let .importanceSize(path, tensor, entries, columns):
                return "\(path): the importance matrix has \(entries) values for \(tensor), whose rows have \(columns) (a matrix made for another model?)"
            case let .cannotWrite(tensor, type):
                return "tensor \(tensor): Quill cannot write \(type.name) (it writes \(Quantize.writableTypes.map(\.name).joined(separator: ", ")))"
            }
        }
    }

    /// A tensor to write: its name, ggml dimensions and type, and its bytes, lent for the length
    /// of a call (a file's mapped pages, or values made for the moment, as un-permuted rows).
    public struct Source {
        public let name: String
        public let dimensions: [Int]
        public let type: GGMLType
        public let withBytes: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void

        public init(name: String, dimensions: [Int], type: GGMLType,
                    withBytes: @escaping ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) {
            self.name = name; self.dimensions = dimensions; self.type = type; self.withBytes = withBytes
        }

        /// A tensor of a GGUF file; its pages are let go once it is written.
        public init(_ tensor: GGUFFile.TensorInfo, of file: GGUFFile) {
            self.init(name: tensor.name, dimensions: tensor.dimensions, type: tensor.type) { body in
                defer { file.releasePages(of: tensor) }
                try body(file.data(of: tensor))
            }
        }
    }

    /// The per-tensor types `quantize` would use (`--dry-run`).
    public static func plan(for file: GGUFFile, options: Options) -> GGUFQuantizationPlan {
        plan(for: file.tensors.map { ($0.name, $0.dimensions, $0.type) }, metadata: file.metadata, options: options)
    }

    /// The same for tensors about to be written with `metadata` (which gives the layer and head counts).
    public static func plan(for tensors: [(name: String, dimensions: [Int], type: GGMLType)], metadata: [String: GGUFValue],
                            options: Options) -> GGUFQuantizationPlan {
        let architecture = metadata["general.architecture"]?.string ?? "llama"
        let layers = metadata["\(architecture).block_count"]?.int ?? 0
        let heads = metadata["\(architecture).attention.head_count"]?.int ?? 1
        let kvHeads = metadata["\(architecture).attention.head_count_kv"]?.int ?? heads
        return GGUFQuantizationPlan(tensors: tensors, layers: layers, groupedQueries: kvHeads > 0 ? heads / kvHeads : 1,
                                    options: options.plan)
    }

    /// Writes `path` (complete or not at all). `plan`: what `plan(for:options:)` gave for the same
    /// file and options, where the caller has it. `progress(i, entry)` is called as each tensor starts.
    public static func quantize(_ file: GGUFFile, to path: String, options: Options, plan: GGUFQuantizationPlan? = nil,
                                pool: ThreadPool = .shared, progress: (Int, GGUFQuantizationPlan.Entry) -> Void = { _, _ in }) throws {
        try quantize(file.tensors.map { Source($0, of: file) }, metadata: file.orderedMetadata, source: file.path, to: path, options: options,
                     plan: plan ?? Self.plan(for: file, options: options), pool: pool, progress: progress)
    }

    /// Writes `tensors` with `metadata` to `path` (complete or not at all), each tensor converted
    /// to the type the plan gives it. `source` names where the tensors came from, for refusals.
    public static func quantize(_ tensors: [Source], metadata: [(key: String, value: GGUFValue)], source: String, to path: String,
                                options: Options, plan: GGUFQuantizationPlan? = nil, pool: ThreadPool = .shared,
                                progress: (Int, GGUFQuantizationPlan.Entry) -> Void = { _, _ in }) throws {
        let plan = plan ?? Self.plan(for: tensors.map { ($0.name, $0.dimensions, $0.type) },
                                     metadata: Dictionary(metadata, uniquingKeysWith: { a, _ in a }), options: options)
        // every refusal before a byte is written
        var importance: [String: [Float]] = [:]
        for entry in plan.entries where entry.from != entry.to {
            importance[entry.name] = try options.importance(for: entry)
            guard Quantize.writableTypes.contains(entry.to) else { throw Failure.cannotWrite(tensor: entry.name, type: entry.to) }
            // to F32 / F16 / BF16 is dequantization, not a second loss of the same kind
            if entry.from.isBlockQuantized && entry.to.isBlockQuantized && entry.from != .q8_0 && !options.allowRequantize {
                throw Failure.requantizing(path: source, tensor: entry.name, from: entry.from)
            }
        }
        var writer = GGUFWriter(metadata: metadata)
        // moved to the end, in this order, as llama-quantize does: the two files are then byte-identical
        for (key, value) in [("general.quantization_version", GGUFValue.uint32(2)), ("general.file_type", .uint32(options.plan.fileType.code))]
            + importanceMetadata(options.importanceMatrix) {
            writer.remove(key)
            writer.metadata.append((key, value))
        }
        var byName: [String: Source] = [:]
        for tensor in tensors { byName[tensor.name] = tensor }
        let scratch = Scratch()
        defer { scratch.buffer.deallocate() }
        for entry in plan.entries {
            let tensor = byName[entry.name]!
            writer.append(GGUFWriter.Tensor(name: entry.name, dimensions: entry.dimensions, type: entry.to) { out in
                try tensor.withBytes { bytes in
                    if entry.from == entry.to {
                        out.copyMemory(from: bytes)
                        return
                    }
                    let columns = entry.dimensions[0], rows = entry.dimensions.reduce(1, *) / max(columns, 1)
                    let values = try floats(of: tensor, bytes: bytes, source: source, into: scratch, pool: pool)
                    if let weights = importance[entry.name] {
                        // one matrix of weights per slice of a 3-D tensor (llama.cpp's experts)
                        let perMatrix = entry.dimensions.count > 1 ? entry.dimensions[1] : 1
                        for m in 0..<(rows / perMatrix) {
                            weights.withUnsafeBufferPointer { w in
                                Quantize.rows(entry.to, from: values.baseAddress! + m * perMatrix * columns,
                                              into: out.baseAddress! + m * perMatrix * entry.to.byteCount(columns), rows: perMatrix,
                                              columns: columns, importance: w.baseAddress! + m * columns, pool: pool)
                            }
                        }
                    } else {
                        Quantize.rows(entry.to, from: values.baseAddress!, into: out.baseAddress!, rows: rows, columns: columns, pool: pool)
                    }
                }
            })
        }
        try writer.write(to: path) { i, _ in progress(i, plan.entries[i]) }
    }

    /// What llama-quantize records of an importance matrix: its path and first dataset (at most 127
    /// bytes each, as there), its entry count and, where known, its chunk count.
    static func importanceMetadata(_ importance: (matrix: ImportanceMatrix, path: String)?) -> [(String, GGUFValue)] {
        guard let (matrix, path) = importance else { return [] }
        func truncated(_ s: String) -> String {
            var bytes = Array(s.utf8.prefix(127))
            while String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
            return String(decoding: bytes, as: UTF8.self)
        }
        var pairs: [(String, GGUFValue)] = [("quantize.imatrix.file", .string(truncated(path)))]
        if let dataset = matrix.datasets.first { pairs.append(("quantize.imatrix.dataset", .string(truncated(dataset)))) }
        pairs.append(("quantize.imatrix.entries_count", .uint32(UInt32(clamping: matrix.entries.count))))
        if matrix.chunkCount > 0 { pairs.append(("quantize.imatrix.chunks_count", .uint32(UInt32(clamping: matrix.chunkCount)))) }
        return pairs
    }

    /// One fp32 buffer for every tensor in turn (fresh pages for each would be faulted in and zeroed).
    final class Scratch {
        var buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 0)

        func reserve(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
            if buffer.count < count {
                buffer.deallocate()
                buffer = .allocate(capacity: count)
            }
            return UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
        }
    }

    /// A tensor as fp32 in the scratch buffer, refused if any value is not finite.
    static func floats(of tensor: Source, bytes: UnsafeRawBufferPointer, source: String, into scratch: Scratch,
                       pool: ThreadPool) throws -> UnsafeMutableBufferPointer<Float> {
        let count = tensor.dimensions.reduce(1, *), columns = tensor.dimensions.first ?? 1, rows = count / max(columns, 1)
        let values = scratch.reserve(count)
        let rowBytes = tensor.type.byteCount(columns)
        let perChunk = max(1, 65_536 / max(columns, 1)), chunks = (rows + perChunk - 1) / perChunk
        let badRow = UnsafeMutablePointer<Int>.allocate(capacity: chunks)
        defer { badRow.deallocate() }
        pool.parallelFor(chunks) { chunk in
            badRow[chunk] = -1
            for r in (chunk * perChunk)..<min(rows, (chunk + 1) * perChunk) {
                let from = bytes.baseAddress! + r * rowBytes, to = values.baseAddress! + r * columns
                Dequantize.fast(tensor.type, from: from, into: to, count: columns)
                if badRow[chunk] < 0 && !allFinite(to, columns) { badRow[chunk] = r }
            }
        }
        if let row = (0..<chunks).lazy.map({ badRow[$0] }).first(where: { $0 >= 0 }) {
            throw Failure.nonFinite(path: source, tensor: tensor.name, row: row)
        }
        return values
    }

    /// No NaN and no infinity: no exponent field all ones (an integer max the compiler vectorizes).
    @inline(__always)
    static func allFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Bool {
        let bits = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
        var exponent: UInt32 = 0
        for i in 0..<n { exponent = max(exponent, bits[i] & 0x7F80_0000) }
        return exponent != 0x7F80_0000
    }
}
