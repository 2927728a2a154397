import Foundation

/// A one-line progress bar on standard error: label, bar, percentage, amount, rate and time
/// left, redrawn at most ten times a second. When standard error is not a terminal (a log, CI)
/// only the finished line is written.
final class ProgressBar {
    enum Unit { case bytes, count(String) }

    let label: String
    let unit: Unit
    let start = Date()
    var lastDraw = Date.distantPast
    let interactive = isatty(STDERR_FILENO) == 1
    var finished = false

    init(_ label: String, unit: Unit) {
        self.label = label
        self.unit = unit
    }

    func update(_ done: Int, of total: Int) {
        guard interactive, !finished, Date().timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = Date()
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line(done, total)).utf8))
    }

    /// The last line, kept on screen (or written once when not a terminal).
    func finish(_ done: Int, of total: Int) {
        guard !finished else { return }
        finished = true
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line(done, total) + "\n").utf8))
    }

    func line(_ done: Int, _ total: Int) -> String {
        let elapsed = Date().timeIntervalSince(start)
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let width = 24, filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var text = String(format: "%@ %@ %3.0f%% %@/%@ %@/s", label, bar, 100 * fraction, amount(Double(done)), amount(Double(total)), amount(rate))
        if finished || done >= total {
            text += "  " + Self.clock(elapsed)
        } else if rate > 0 {
            text += "  ETA " + Self.clock(Double(total - done) / rate)
        }
        return text
    }

    func amount(_ value: Double) -> String {
        switch unit {
        case .bytes: return value >= 1e9 ? String(format: "%.2f GB", value / 1e9) : String(format: "%.1f MB", value / 1e6)
        case .count(let noun): return value >= 1e6 ? String(format: "%.2fM %@", value / 1e6, noun) : String(format: "%.0f %@", value, noun)
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
