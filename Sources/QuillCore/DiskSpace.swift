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
