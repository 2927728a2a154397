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
        while statvfs(directory, &info) != 0 {
            guard let slash = directory.lastIndex(of: "/") else {
                guard directory != "." else { return nil }
                directory = "."
                continue
            }
            directory = slash == directory.startIndex ? "/" : String(directory[..<slash])
            if directory == "/" && statvfs(directory, &info) != 0 { return nil }
        }
        let (bytes, overflow) = Int(info.f_bavail).multipliedReportingOverflow(by: Int(info.f_frsize))
        return overflow ? .max : bytes
    }
}
