#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Free space on the file system that holds a path.
public enum DiskSpace {
    /// Bytes an unprivileged process may still write under `path` (a file or a directory; a file
    /// that does not exist yet is asked about through its directory), or nil where it cannot be told.
    public static func available(at path: String) -> Int? {
        var directory = path
        var info = statvfs()
        while statvfs(directory, &info) != 0 {   // not there yet: ask its parent
            guard directory != "/", directory != "." else { return nil }
            if let slash = directory.lastIndex(of: "/") {
                directory = slash == directory.startIndex ? "/" : String(directory[..<slash])
            } else {
                directory = "."
            }
        }
        let (bytes, overflow) = Int(info.f_bavail).multipliedReportingOverflow(by: Int(info.f_frsize))
        return overflow ? .max : bytes
    }
}

/// A file that cannot be written whole.
public enum FileWriteError: Error, CustomStringConvertible {
    case noSpace(path: String, needed: Int, available: Int)

    /// Refuses, before anything is written, a file of `bytes` where the file system has less free.
    public static func requireRoom(_ bytes: Int, at path: String) throws(FileWriteError) {
        if let free = DiskSpace.available(at: path), free < bytes { throw .noSpace(path: path, needed: bytes, available: free) }
    }

    public var description: String {
        switch self {
        case let .noSpace(path, needed, available):
            return "\(path): needs \(Self.megabytes(needed)) and the file system has \(Self.megabytes(available)) free; nothing was written"
        }
    }

    static func megabytes(_ n: Int) -> String {
        let tenths = (n + 50_000) / 100_000
        return "\(tenths / 10).\(tenths % 10) MB"
    }
}
