import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads whole files: the one way Quill reads a file's bytes (models are mapped instead, see
/// `MappedFile`). Read with POSIX `read` until end of file, so files whose size the system does
/// not report (`/proc`) work, and an empty file costs nothing: swift-foundation's readers
/// (`Data(contentsOf:)`, `FileManager.contents(atPath:)`, `String(contentsOfFile:)`) lose 4 KB on
/// every empty file they read (found by the `records` fuzz target).
public enum FileContents {
    public struct Failure: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    public static func read(_ path: String) throws(Failure) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) != S_IFDIR else { throw Failure(path: path, reason: "is a directory") }
        var data = Data(count: max(Int(st.st_size), 0) + 1)   // one byte more tells end of file without a second call
        var filled = 0
        while true {
            if filled == data.count { data.count = max(data.count * 2, 4096) }
            let n = data.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            filled += n
        }
        data.count = filled
        return data
    }

    private static func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(fd, buffer, count)
        #else
        Darwin.read(fd, buffer, count)
        #endif
    }

    /// The file's bytes, or nil when it cannot be read.
    public static func data(atPath path: String) -> Data? { try? read(path) }

    /// The file as text, or nil when it cannot be read or is not valid UTF-8.
    public static func text(atPath path: String) -> String? { data(atPath: path).flatMap { String(validating: $0, as: UTF8.self) } }
}
