import Foundation
import QuillCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A GGUF v2/v3 file: metadata parsed, tensor data memory-mapped (never copied).
///
/// ```swift
/// let file = try GGUFFile(path: "SmolLM2-135M-Instruct.Q4_1.gguf")
/// print(file.metadata["general.architecture"]?.string ?? "?", file.tensors.count)
/// let tokenizer = try Tokenizer(gguf: file)
/// ```
public final class GGUFFile: Sendable {
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        /// ggml order: dimensions[0] is the contiguous one.
        public let dimensions: [Int]
        public let type: GGMLType
        /// Offset from the start of the tensor data section.
        public let offset: Int
        public var elementCount: Int { dimensions.reduce(1, *) }
        public var byteCount: Int { type.byteCount(elementCount) }
    }

    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Keys in file order (a writer keeps it).
    public let metadataKeys: [String]
    public let tensors: [TensorInfo]
    public let alignment: Int
    public let dataOffset: Int
    private let mapping: MappedFile
    private var base: UnsafeRawPointer { mapping.base }

    public init(path: String) throws(GGUFError) {
        do { mapping = try MappedFile(path: path) } catch {
            switch error {
            case .empty: throw .truncated(path: path, offset: 0, reading: "the header")
            case .unreadable(let reason): throw .unreadable(path: path, reason: reason)
            }
        }
        self.path = path
        let length = mapping.count
        var r = GGUFReader(base: mapping.base, length: length, path: path)
        let magic = try r.bytes(4, "the magic number")
        guard magic == Array("GGUF".utf8) else {
            throw .notGGUF(path: path, magic: String(decoding: magic.map { (32...126).contains($0) ? $0 : 0x3F }, as: UTF8.self))
        }
        version = try r.u32("the version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(path: path, version: version) }
        let tensorCount = try r.count("the tensor count")
        let kvCount = try r.count("the metadata count")
        // a tensor's entry takes at least 24 bytes, a metadata pair 13: counts beyond the file are corruption
        guard tensorCount <= (length - r.at) / 24, kvCount <= (length - r.at) / 13 else {
            throw .truncated(path: path, offset: length, reading: "\(tensorCount) tensors and \(kvCount) metadata pairs")
        }
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for i in 0..<kvCount {
            let key = try r.string("metadata key \(i)")
            let typeCode = try r.u32("the type of \(key)")
            guard let type = GGUFValueType(rawValue: typeCode) else {
                throw .malformed(path: path, offset: r.at - 4, problem: "metadata \(key) has unknown value type \(typeCode)")
            }
            metadata[key] = try r.value(type, key)
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let name = try r.string("the name of tensor \(i)")
            let nDims = Int(try r.u32("the rank of \(name)"))
            guard nDims <= 8 else { throw .malformed(path: path, offset: r.at - 4, problem: "tensor \(name) has rank \(nDims)") }
            var dims: [Int] = []
            for _ in 0..<nDims { dims.append(try r.count("the shape of \(name)")) }
            // elements and bytes must be countable: a product past Int.max is a hostile shape
            var elements = 1
            for d in dims {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, product <= Int.max / 64 else {
                    throw .malformed(path: path, offset: r.at, problem: "tensor \(name) has shape \(dims), more elements than can be addressed")
                }
                elements = product
            }
            let typeCode = try r.u32("the type of \(name)")
            guard let type = GGMLType(rawValue: typeCode) else {
                throw .malformed(path: path, offset: r.at - 4, problem: "tensor \(name) has unknown ggml type \(typeCode)")
            }
            let offset = try r.count("the offset of \(name)")
            if dims.first.map({ $0 % type.blockLayout.elements != 0 }) ?? false {
                throw .malformed(path: path, offset: r.at, problem: "tensor \(name): row of \(dims[0]) is not a whole number of \(type) blocks")
            }
            tensors.append(TensorInfo(name: name, dimensions: dims, type: type, offset: offset))
        }
        self.tensors = tensors
        alignment = metadata["general.alignment"]?.int ?? 32
        guard alignment > 0 && alignment & (alignment - 1) == 0 else {
            throw .malformed(path: path, offset: 0, problem: "general.alignment \(alignment) is not a power of two")
        }
        dataOffset = (r.at + alignment - 1) / alignment * alignment
        for t in tensors where t.offset > length || t.byteCount > length - dataOffset - t.offset {
            throw .truncated(path: path, offset: length,
                             reading: "tensor \(t.name) (needs bytes up to \(dataOffset + t.offset + t.byteCount))")
        }
    }

    /// The raw bytes of a tensor, inside the mapping.
    public func data(of tensor: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    /// Drops the tensor's resident pages (see `MappedFile.releasePages`).
    public func releasePages(of tensor: TensorInfo) { mapping.releasePages(data(of: tensor)) }

    public func tensor(named name: String) -> TensorInfo? { tensors.first { $0.name == name } }

    /// The metadata in file order, as a writer takes it.
    public var orderedMetadata: [(key: String, value: GGUFValue)] {
        metadataKeys.compactMap { key in metadata[key].map { (key: key, value: $0) } }
    }

    // Typed metadata access that says what is missing or wrong.
    public func string(_ key: String) throws(GGUFError) -> String { try metadata.string(key, in: path) }
    public func strings(_ key: String) throws(GGUFError) -> [String] { try metadata.strings(key, in: path) }
    public func ints(_ key: String) throws(GGUFError) -> [Int] { try metadata.ints(key, in: path) }
    public func floats(_ key: String) throws(GGUFError) -> [Float] { try metadata.floats(key, in: path) }
}

/// Typed access to GGUF metadata (a file's, or metadata about to be written) that says what is
/// missing or wrong; `path` names where it came from.
extension Dictionary where Key == String, Value == GGUFValue {
    public func string(_ key: String, in path: String) throws(GGUFError) -> String {
        guard let v = self[key] else { throw .missingKey(path: path, key: key) }
        guard let s = v.string else { throw .wrongType(path: path, key: key, expected: "string", found: v.typeName) }
        return s
    }

    public func strings(_ key: String, in path: String) throws(GGUFError) -> [String] {
        guard let v = self[key] else { throw .missingKey(path: path, key: key) }
        guard case .array(.string, let a) = v else { throw .wrongType(path: path, key: key, expected: "array of string", found: v.typeName) }
        return a.map { $0.string ?? "" }
    }

    public func ints(_ key: String, in path: String) throws(GGUFError) -> [Int] {
        guard let v = self[key] else { throw .missingKey(path: path, key: key) }
        guard let a = v.array else { throw .wrongType(path: path, key: key, expected: "array of integers", found: v.typeName) }
        return a.map { $0.int ?? 0 }
    }

    public func floats(_ key: String, in path: String) throws(GGUFError) -> [Float] {
        guard let v = self[key] else { throw .missingKey(path: path, key: key) }
        guard let a = v.array else { throw .wrongType(path: path, key: key, expected: "array of floats", found: v.typeName) }
        return a.map { Float($0.double ?? 0) }
    }
}

/// Bounds-checked little-endian reads over the mapping.
struct GGUFReader {
    let base: UnsafeRawPointer
    let length: Int
    let path: String
    var at = 0

    mutating func need(_ n: Int, _ what: String) throws(GGUFError) {
        guard n >= 0, at + n <= length else { throw .truncated(path: path, offset: length, reading: what) }
    }

    mutating func bytes(_ n: Int, _ what: String) throws(GGUFError) -> [UInt8] {
        try need(n, what)
        defer { at += n }
        return Array(UnsafeRawBufferPointer(start: base + at, count: n))
    }

    mutating func scalar<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws(GGUFError) -> T {
        try need(MemoryLayout<T>.size, what)
        defer { at += MemoryLayout<T>.size }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: at, as: T.self))
    }

    mutating func u32(_ what: String) throws(GGUFError) -> UInt32 { try scalar(UInt32.self, what) }

    /// A u64 count or size, refused when it cannot fit in the file.
    mutating func count(_ what: String) throws(GGUFError) -> Int {
        let v = try scalar(UInt64.self, what)
        guard v <= UInt64(Int.max / 2) else {
            throw .malformed(path: path, offset: at - 8, problem: "\(what) is \(v), impossibly large")
        }
        return Int(v)
    }

    mutating func string(_ what: String) throws(GGUFError) -> String {
        let n = try count("the length of \(what)")
        try need(n, what)
        defer { at += n }
        return String(decoding: UnsafeRawBufferPointer(start: base + at, count: n), as: UTF8.self)
    }

    /// Arrays may hold arrays (gguf-py writes them) this deep at most; deeper is hostile.
    static let maxArrayDepth = 8

    /// The fewest bytes one value of `type` can take in the file.
    static func minimumSize(_ type: GGUFValueType) -> Int {
        switch type {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }

    mutating func value(_ type: GGUFValueType, _ key: String, depth: Int = 0) throws(GGUFError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try scalar(UInt8.self, key))
        case .int8: return .int8(try scalar(Int8.self, key))
        case .uint16: return .uint16(try scalar(UInt16.self, key))
        case .int16: return .int16(try scalar(Int16.self, key))
        case .uint32: return .uint32(try scalar(UInt32.self, key))
        case .int32: return .int32(try scalar(Int32.self, key))
        case .uint64: return .uint64(try scalar(UInt64.self, key))
        case .int64: return .int64(try scalar(Int64.self, key))
        case .float32: return .float32(Float(bitPattern: try scalar(UInt32.self, key)))
        case .float64: return .float64(Double(bitPattern: try scalar(UInt64.self, key)))
        case .bool:
            let b = try scalar(UInt8.self, key)
            guard b <= 1 else { throw .malformed(path: path, offset: at - 1, problem: "\(key): bool byte \(b)") }
            return .bool(b == 1)
        case .string: return .string(try string(key))
        case .array:
            let code = try u32("the element type of \(key)")
            guard let elementType = GGUFValueType(rawValue: code) else {
                throw .malformed(path: path, offset: at - 4, problem: "\(key): unknown array element type \(code)")
            }
            guard elementType != .array || depth < Self.maxArrayDepth else {
                throw .malformed(path: path, offset: at - 4, problem: "\(key): arrays nested more than \(Self.maxArrayDepth) deep")
            }
            let n = try count("the length of \(key)")
            // a count of elements beyond what the rest of the file can hold is corruption
            guard n <= (length - at) / Self.minimumSize(elementType) else {
                throw .truncated(path: path, offset: length, reading: "the \(n) elements of \(key)")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(elementType, key, depth: depth + 1)) }
            return .array(elementType, items)
        }
    }
}
