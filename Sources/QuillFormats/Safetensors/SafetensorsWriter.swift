import Foundation

/// Writes F32 tensors as a `.safetensors` file: an 8-byte little-endian header length, the JSON
/// header (names sorted, `data_offsets` relative to the data, padded with spaces to 8 bytes),
/// then the data. The file appears under its name only when complete: it is written beside it
/// and renamed, so a crash or a full disk never leaves a half-written file where a good one was.
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

    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let sorted = tensors.sorted { $0.name < $1.name }
        var header = "{"
        if !metadata.isEmpty {
            let items = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            header += "\"__metadata__\":{\(items.joined(separator: ","))},"
        }
        var offset = 0
        header += sorted.map { t in
            defer { offset += t.data.count * 4 }
            return "\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.data.count * 4)]}"
        }.joined(separator: ",")
        header += "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var length = UInt64(headerBytes.count).littleEndian
        try AtomicFile.write(to: url) { handle in
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: Data(headerBytes))
            for t in sorted where t.data.count > 0 {
                // Float is little-endian on every platform Swift runs on here
                try handle.write(contentsOf: Data(buffer: t.data))
            }
        }
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
