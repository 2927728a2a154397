#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory (model weights are read in place, never copied);
/// unmapped when the last reference goes away.
public final class MappedFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only and lives exactly as long as this object.
    public enum Failure: Error, Equatable {
        case unreadable(String)
        case empty
    }

    public let path: String
    public let base: UnsafeRawPointer
    public let count: Int

    public init(path: String) throws(Failure) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .unreadable(String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(String(cString: strerror(errno))) }
        guard st.st_size > 0 else { throw .empty }
        guard let map = mmap(nil, Int(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw .unreadable("mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(map)
        count = Int(st.st_size)
    }

    /// Lets the kernel drop the resident pages of a range (whole pages inside it) once their
    /// contents live elsewhere, such as weights repacked into memory; reading them again simply
    /// faults them back in from the file.
    public func releasePages(_ range: UnsafeRawBufferPointer) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let start = range.baseAddress else { return }
        let first = (Int(bitPattern: start) + page - 1) / page * page, last = (Int(bitPattern: start) + range.count) / page * page
        guard last > first else { return }
        madvise(UnsafeMutableRawPointer(bitPattern: first), last - first, Int32(MADV_DONTNEED))
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), count) }
}
