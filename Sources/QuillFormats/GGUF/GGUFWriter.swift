import Foundation
import QuillCore

/// Writes a GGUF v3 file: the header, the metadata in the order given, the tensor table, then each
/// tensor's data at an offset aligned to `general.alignment` (32 unless the metadata says other).
/// Tensor data is produced one tensor at a time by the tensor's `fill`, so a model is never held
/// twice in memory. The file appears under its name only when complete (written beside it and
/// renamed), and a file system without room for it is refused before anything is written.
///
/// ```swift
/// var writer = GGUFWriter(metadata: [("general.architecture", .string("llama"))])
/// writer.append(GGUFWriter.Tensor(name: "output_norm.weight", dimensions: [576], type: .f32) { out in ... })
/// try writer.write(to: "model.gguf")
/// ```
public struct GGUFWriter {
    public struct Tensor {
        public let name: String
        /// ggml order: dimensions[0] is the contiguous one.
        public let dimensions: [Int]
        public let type: GGMLType
        /// Writes exactly `byteCount` bytes of the tensor's data.
        public let fill: (UnsafeMutableRawBufferPointer) throws -> Void

        public init(name: String, dimensions: [Int], type: GGMLType, fill: @escaping (UnsafeMutableRawBufferPointer) throws -> Void) {
            self.name = name; self.dimensions = dimensions; self.type = type; self.fill = fill
        }

        public var byteCount: Int { type.byteCount(dimensions.reduce(1, *)) }
    }

    public var metadata: [(key: String, value: GGUFValue)]
    public private(set) var tensors: [Tensor] = []

    public init(metadata: [(key: String, value: GGUFValue)] = []) { self.metadata = metadata }

    public mutating func remove(_ key: String) { metadata.removeAll { $0.key == key } }

    public mutating func append(_ tensor: Tensor) {
        precondition(tensor.dimensions.first.map { $0 % tensor.type.blockLayout.elements == 0 } ?? true,
                     "\(tensor.name): a row of \(tensor.dimensions[0]) is not a whole number of \(tensor.type) blocks")
        tensors.append(tensor)
    }

    public var alignment: Int { metadata.first { $0.key == "general.alignment" }?.value.int ?? 32 }

    /// The header, metadata and tensor table, padded to the alignment; then the data size.
    func layout() -> (header: [UInt8], dataBytes: Int) {
        var out = GGUFEncoder()
        out.bytes(Array("GGUF".utf8))
        out.scalar(UInt32(3))
        out.scalar(UInt64(tensors.count))
        out.scalar(UInt64(metadata.count))
        for (key, value) in metadata {
            out.string(key)
            out.scalar(value.valueType.rawValue)
            out.value(value)
        }
        var offset = 0
        for t in tensors {
            out.string(t.name)
            out.scalar(UInt32(t.dimensions.count))
            for d in t.dimensions { out.scalar(UInt64(d)) }
            out.scalar(t.type.rawValue)
            out.scalar(UInt64(offset))
            offset += padded(t.byteCount)
        }
        out.bytes([UInt8](repeating: 0, count: padded(out.data.count) - out.data.count))
        return (out.data, offset)
    }

    func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// The size of the file `write` makes.
    public var fileSize: Int { let (header, data) = layout(); return header.count + data }

    /// Writes the file; `progress(i, tensor)` is called before each tensor's data is produced.
    public func write(to path: String, progress: (Int, Tensor) -> Void = { _, _ in }) throws {
        let (header, dataBytes) = layout()
        let needed = header.count + dataBytes
        try FileWriteError.requireRoom(needed, at: path)
        try AtomicFile.write(to: URL(fileURLWithPath: path)) { handle in
            try handle.write(contentsOf: Data(header))
            var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 64)
            defer { buffer.deallocate() }
            for (i, t) in tensors.enumerated() {
                progress(i, t)
                let size = padded(t.byteCount)
                if buffer.count < size {
                    buffer.deallocate()
                    buffer = .allocate(byteCount: size, alignment: 64)
                }
                let region = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<t.byteCount])
                try t.fill(region)
                buffer.baseAddress!.advanced(by: t.byteCount).initializeMemory(as: UInt8.self, repeating: 0, count: size - t.byteCount)
                try handle.write(contentsOf: Data(bytesNoCopy: buffer.baseAddress!, count: size, deallocator: .none))
            }
        }
    }
}


extension GGUFValue {
    var valueType: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }
}

/// Little-endian GGUF encoding of scalars, strings and values.
struct GGUFEncoder {
    var data: [UInt8] = []

    mutating func bytes(_ b: [UInt8]) { data.append(contentsOf: b) }

    mutating func scalar<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        scalar(UInt64(utf8.count))
        data.append(contentsOf: utf8)
    }

    mutating func value(_ v: GGUFValue) {
        switch v {
        case .uint8(let x): scalar(x)
        case .int8(let x): scalar(x)
        case .uint16(let x): scalar(x)
        case .int16(let x): scalar(x)
        case .uint32(let x): scalar(x)
        case .int32(let x): scalar(x)
        case .uint64(let x): scalar(x)
        case .int64(let x): scalar(x)
        case .float32(let x): scalar(x.bitPattern)
        case .float64(let x): scalar(x.bitPattern)
        case .bool(let x): scalar(UInt8(x ? 1 : 0))
        case .string(let s): string(s)
        case .array(let type, let items):
            scalar(type.rawValue)
            scalar(UInt64(items.count))
            for item in items { value(item) }
        }
    }
}
