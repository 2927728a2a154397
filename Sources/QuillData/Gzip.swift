import CZlib

/// gzip (and zlib) decompression through zlib; concatenated gzip members are read one after
/// another, as `gzip -d` does.
public enum Gzip {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { "gzip: \(message)" }
    }

    /// True when `bytes` start with the gzip magic number.
    public static func isCompressed(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.count >= 2 && bytes.first == 0x1F && bytes.dropFirst().first == 0x8B
    }

    public static func decompress(_ input: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure(message: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        try input.withUnsafeBufferPointer { source in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = UInt32(source.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = UInt32(buffer.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                output.append(contentsOf: chunk[0..<(chunk.count - Int(stream.avail_out))])
                switch status {
                case Z_STREAM_END:
                    // another member may follow (skip trailing zero padding)
                    guard stream.avail_in > 0, stream.next_in.pointee == 0x1F else { return }
                    inflateReset(&stream)
                case Z_OK: continue
                case Z_BUF_ERROR where stream.avail_in == 0:
                    throw Failure(message: "input ends before the compressed stream does (\(input.count) bytes read)")
                default:
                    let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                    throw Failure(message: "\(reason) at compressed byte \(Int(stream.total_in))")
                }
            }
        }
        return output
    }
}
