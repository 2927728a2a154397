import Foundation
import QuillCore
import QuillTokenizers

extension ProcessMemory {
    /// Resident memory now (VmRSS in /proc/self/status; 0 where Linux does not report it).
    public static var residentBytes: Int { kernelFigure("VmRSS", in: "/proc/self/status") ?? 0 }
    /// The most resident memory so far (VmHWM; 0 where unknown).
    public static var peakResidentBytes: Int { kernelFigure("VmHWM", in: "/proc/self/status") ?? 0 }
    /// Memory the system can give us now (MemAvailable in /proc/meminfo), or nil where unknown.
    public static var availableBytes: Int? { kernelFigure("MemAvailable", in: "/proc/meminfo") }

    /// A `Key:  value kB` line of a /proc file, in bytes. The value follows a tab, spaces, or
    /// both: /proc pads it to 8 digits, so from 10^7 kB on (VmHWM of a 1.5B model's training)
    /// no space is left between the tab and the number.
    static func kernelFigure(_ key: String, in path: String) -> Int? {
        guard let text = FileContents.text(atPath: path),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("\(key):") }),
              let kb = Int(line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") else { return nil }
        return kb * 1024
    }
}
