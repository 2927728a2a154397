import CZlib

/// Files read through zlib's gz* functions: gzip-compressed (one or several members) or plain,
/// the same calls either way, whole or a buffer at a time.
public final class GzipFile {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { "gzip: \(message)" }
    }

    private let file: gzFile
    /// Uncompressed bytes read so far.
    public private(set) var bytesRead = 0

    public init(path: String) throws {
        guard let file = gzopen(path, "rb") else { throw Failure(message: "\(path): cannot open") }
        self.file = file
    }

    deinit { gzclose(file) }

    /// Bytes of the file itself (compressed, for a gzip file) consumed so far.
    public var fileOffset: Int { Int(gzoffset(file)) }

    /// Fills the start of `buffer`; 0 at the end. A stream cut short or corrupt throws (zlib
    /// reports a cut stream only at the end, as a clean-looking end of file).
    public func read(into buffer: inout [UInt8]) throws -> Int {
        let n = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
        var code: Int32 = 0
        if n < 0 || n == 0 {
            let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
            if n < 0 || (code != Z_OK && code != Z_STREAM_END) {
                throw Failure(message: "\(message) after \(bytesRead) bytes")
            }
        }
        bytesRead += Int(n)
        return Int(n)
    }

    /// The whole (uncompressed) content of a file.
    public static func contents(of path: String) throws -> [UInt8] {
        let file = try GzipFile(path: path)
        var out: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try file.read(into: &buffer)
            if n == 0 { return out }
            out += buffer[0..<n]
        }
    }
}
