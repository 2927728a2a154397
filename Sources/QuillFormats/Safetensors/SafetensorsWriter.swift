import Foundation
import QuillCore

/// Writes fp32 tensors as `.safetensors` files, stored as F32, F16 or BF16 (rounded to nearest
/// even): an 8-byte little-endian header length, the JSON header (names sorted, `data_offsets`
/// relative to the data, padded with spaces to 8 bytes), then the data. A file appears under its
/// name only when complete: it is written beside it and renamed, so a crash or a full disk never
/// leaves a half-written file where a good one was.
public enum SafetensorsWriter {
    public struct Tensor {
        public let name: String
        public let shape: [Int]
        public let data: UnsafeBufferPointer<Float>
        public init(name: String, shape: [Int], data: UnsafeBufferPointer<Float>) {
            precondition(shape.reduce(1, *) == data.count, "\(name): shape \(shape) does not hold \(data.count) values")
            self.name = name; self.shape = shape; self.data = data
        }
    }

    /// How values are stored.
    public enum DType: String, CaseIterable, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16"
        public var byteCount: Int { self == .f32 ? 4 : 2 }
        /// transformers' `torch_dtype` for it.
        public var torchName: String {
            switch self {
            case .f32: "float32"
            case .f16: "float16"
            case .bf16: "bfloat16"
            }
        }
    }

    public static func write(_ tensors: [Tensor], dtype: DType = .f32, metadata: [String: String] = [:], to url: URL) throws {
        let sorted = tensors.sorted { $0.name < $1.name }
        var header = "{"
        if !metadata.isEmpty {
            let items = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            header += "\"__metadata__\":{\(items.joined(separator: ","))},"
        }
        var offset = 0
        header += sorted.map { t in
            let size = t.data.count * dtype.byteCount
            defer { offset += size }
            return "\(jsonString(t.name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}"
        }.joined(separator: ",")
        header += "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var length = UInt64(headerBytes.count).littleEndian
        try FileWriteError.requireRoom(8 + headerBytes.count + offset, at: url.path)
        try AtomicFile.write(to: url) { handle in
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: Data(headerBytes))
            for t in sorted where t.data.count > 0 {
                // little-endian on every platform Swift runs on here
                if dtype == .f32 { try handle.write(contentsOf: Data(buffer: t.data)); continue }
                try writeHalves(t.data, dtype: dtype, to: handle)
            }
        }
    }

    /// Values as F16 or BF16, converted a chunk at a time.
    private static func writeHalves(_ values: UnsafeBufferPointer<Float>, dtype: DType, to handle: FileHandle) throws {
        let chunk = 1 << 20
        var halves = [UInt16](repeating: 0, count: min(chunk, values.count))
        var start = 0
        while start < values.count {
            let n = min(chunk, values.count - start)
            for i in 0..<n { halves[i] = dtype == .f16 ? halfFromFloat(values[start + i]) : bfloat16FromFloat(values[start + i]) }
            try halves.withUnsafeBytes { try handle.write(contentsOf: Data($0.prefix(n * 2))) }
            start += n
        }
    }

    /// Writes `tensors` as one `<name>.safetensors`, or, when they hold more than `maxShardBytes`,
    /// as `<name>-00001-of-0000N.safetensors` files with `<name>.safetensors.index.json` mapping
    /// each tensor to its file (transformers' sharded layout: tensors in name order, a new shard
    /// when the next tensor would not fit, a tensor larger than the limit alone in its shard).
    /// Returns the files written.
    @discardableResult
    public static func writeSharded(_ tensors: [Tensor], dtype: DType, metadata: [String: String], maxShardBytes: Int,
                                    directory: URL, name: String = "model") throws -> [String] {
        let sorted = tensors.sorted { $0.name < $1.name }
        var shards: [[Tensor]] = [[]]
        var shardBytes = 0
        for t in sorted {
            let size = t.data.count * dtype.byteCount
            if shardBytes + size > maxShardBytes, !shards[shards.count - 1].isEmpty {
                shards.append([])
                shardBytes = 0
            }
            shards[shards.count - 1].append(t)
            shardBytes += size
        }
        guard shards.count > 1 else {
            try write(sorted, dtype: dtype, metadata: metadata, to: directory.appendingPathComponent("\(name).safetensors"))
            return ["\(name).safetensors"]
        }
        let files = shards.indices.map { String(format: "\(name)-%05d-of-%05d.safetensors", $0 + 1, shards.count) }
        var weightMap: [String: String] = [:]
        for (shard, file) in zip(shards, files) {
            try write(shard, dtype: dtype, metadata: metadata, to: directory.appendingPathComponent(file))
            for t in shard { weightMap[t.name] = file }
        }
        let index: [String: Any] = ["metadata": ["total_size": sorted.reduce(0) { $0 + $1.data.count * dtype.byteCount }],
                                    "weight_map": weightMap]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys]),
                             to: directory.appendingPathComponent("\(name).safetensors.index.json"))
        return files + ["\(name).safetensors.index.json"]
    }

    static func jsonString(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}

/// Write-then-rename: the destination holds either its old contents or the complete new ones.
public enum AtomicFile {
    public static func write(to url: URL, _ body: (FileHandle) throws -> Void) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path,
                                                           NSLocalizedDescriptionKey: "cannot create \(temporary.path)"])
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            try body(handle)
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path,
                                                           NSLocalizedDescriptionKey: "cannot move \(temporary.path) to \(url.path): \(reason)"])
        }
    }

    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { try $0.write(contentsOf: data) }
    }
}
