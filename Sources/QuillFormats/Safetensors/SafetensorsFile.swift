import Foundation
import QuillTokenizers
import QuillCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What can be wrong with a safetensors file; every case names the file.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, problem: String)
    case missingTensor(path: String, name: String)
    case unsupportedDType(path: String, name: String, dtype: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "\(path): \(reason)"
        case let .malformed(path, problem): "\(path): \(problem)"
        case let .missingTensor(path, name): "\(path): tensor \(name) is missing"
        case let .unsupportedDType(path, name, dtype): "\(path): tensor \(name) has dtype \(dtype); F32, F16 and BF16 are supported"
        }
    }
}

/// A `.safetensors` file: a JSON header of tensor names, dtypes, shapes and byte ranges,
/// then the raw data, memory-mapped here.
///
/// ```swift
/// let file = try SafetensorsFile(path: "model.safetensors")
/// let weight = try file.floats("model.embed_tokens.weight")   // F16/BF16 converted to Float
/// ```
public final class SafetensorsFile: Sendable {
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        public let offset: Int
        public let byteCount: Int
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    private let mapping: MappedFile
    private let dataStart: Int

    static let elementSize = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1]

    public init(path: String) throws(SafetensorsError) {
        self.path = path
        do { mapping = try MappedFile(path: path) } catch {
            switch error {
            case .empty: throw .malformed(path: path, problem: "file is empty, too short for a safetensors header")
            case .unreadable(let reason): throw .unreadable(path: path, reason: reason)
            }
        }
        let base = mapping.base, size = mapping.count
        guard size >= 8 else { throw .malformed(path: path, problem: "file is \(size) bytes, too short for a safetensors header") }
        let headerLength = Int(truncatingIfNeeded: UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)))
        guard headerLength > 0, headerLength <= size - 8 else {
            throw .malformed(path: path, problem: "header length \(headerLength) does not fit in the \(size)-byte file (truncated?)")
        }
        dataStart = 8 + headerLength
        let header = Data(bytes: base + 8, count: headerLength)
        guard let json = try? JSONText.object(header) as? [String: Any] else {
            throw .malformed(path: path, problem: "header is not a JSON object")
        }
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                for (k, v) in value as? [String: Any] ?? [:] { metadata[k] = "\(v)" }
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw .malformed(path: path, problem: "tensor \(name): expected dtype, shape and data_offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, dataStart + end <= size else {
                throw .malformed(path: path, problem: "tensor \(name): bytes \(begin)..<\(end) lie outside the file (truncated?)")
            }
            if let width = Self.elementSize[dtype], shape.reduce(1, *) * width != end - begin {
                throw .malformed(path: path, problem: "tensor \(name): shape \(shape) of \(dtype) needs \(shape.reduce(1, *) * width) bytes, the file gives \(end - begin)")
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, offset: begin, byteCount: end - begin)
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    public func data(of tensor: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping.base + dataStart + tensor.offset, count: tensor.byteCount)
    }

    /// A tensor as Float (F32 read, F16 and BF16 converted exactly).
    public func floats(_ name: String) throws(SafetensorsError) -> [Float] {
        guard let t = tensors[name] else { throw .missingTensor(path: path, name: name) }
        let raw = data(of: t)
        switch t.dtype {
        case "F32": return Dequantize.array(.f32, raw, count: t.elementCount)
        case "F16": return Dequantize.array(.f16, raw, count: t.elementCount)
        case "BF16": return Dequantize.array(.bf16, raw, count: t.elementCount)
        default: throw .unsupportedDType(path: path, name: name, dtype: t.dtype)
        }
    }
}

/// The safetensors of a Hugging Face model directory: one `model.safetensors`, or shards listed
/// in `model.safetensors.index.json`.
public struct SafetensorsCheckpoint: Sendable {
    public let directory: URL
    public let files: [SafetensorsFile]
    private let owner: [String: Int]

    public init(directory: URL) throws(SafetensorsError) {
        self.directory = directory
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        var names: [String]
        if let data = FileContents.data(atPath: index.path) {
            guard let json = try? JSONText.object(data) as? [String: Any],
                  let map = json["weight_map"] as? [String: String] else {
                throw .malformed(path: index.path, problem: "expected {\"weight_map\": {tensor: file}}")
            }
            names = Array(Set(map.values)).sorted()
        } else {
            names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
                .filter { $0.hasSuffix(".safetensors") }.sorted()
        }
        guard !names.isEmpty else { throw .unreadable(path: directory.path, reason: "no .safetensors files") }
        var files: [SafetensorsFile] = []
        var owner: [String: Int] = [:]
        for name in names {
            let file = try SafetensorsFile(path: directory.appendingPathComponent(name).path)
            for tensor in file.tensors.keys { owner[tensor] = files.count }
            files.append(file)
        }
        self.files = files
        self.owner = owner
    }

    public func info(_ name: String) -> SafetensorsFile.TensorInfo? { owner[name].flatMap { files[$0].tensors[name] } }

    /// Tensors over all shards.
    public var tensorCount: Int { owner.count }

    public func floats(_ name: String) throws(SafetensorsError) -> [Float] {
        guard let i = owner[name] else { throw .missingTensor(path: directory.path, name: name) }
        return try files[i].floats(name)
    }
}
