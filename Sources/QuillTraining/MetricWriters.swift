import Foundation
import QuillData
import QuillFormats

/// TensorBoard's event file: TFRecord framing (length, masked CRC-32C of the length, the bytes,
/// masked CRC-32C of the bytes) around `Event` protocol buffers, the first one carrying
/// `file_version: "brain.Event:2"`, then one scalar `Summary.Value` per event
/// (tensorflow/core/util/event.proto, summary.proto). Encoded by hand: four fields.
public final class TensorBoardWriter {
    private let handle: FileHandle
    public let path: String

    public init(directory: URL) throws {
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
        let url = directory.appendingPathComponent("events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host)")
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        handle = try FileHandle(forWritingTo: url)
        path = url.path
        var event = Protobuf()
        event.double(field: 1, Date().timeIntervalSince1970)
        event.bytes(field: 3, Array("brain.Event:2".utf8))
        try record(event.bytes)
    }

    deinit { try? handle.close() }

    public func scalar(_ tag: String, _ value: Double, step: Int) throws {
        var summaryValue = Protobuf()
        summaryValue.bytes(field: 1, Array(tag.utf8))
        summaryValue.float(field: 2, Float(value))
        var summary = Protobuf()
        summary.bytes(field: 1, summaryValue.bytes)
        var event = Protobuf()
        event.double(field: 1, Date().timeIntervalSince1970)
        event.varint(field: 2, UInt64(step))
        event.bytes(field: 5, summary.bytes)
        try record(event.bytes)
    }

    private func record(_ data: [UInt8]) throws {
        var length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        length += withUnsafeBytes(of: CRC32C.masked(length).littleEndian) { Array($0) }
        // one write(2) per record, unbuffered: TensorBoard sees it at once without an fsync per scalar
        try handle.write(contentsOf: length + data + withUnsafeBytes(of: CRC32C.masked(data).littleEndian) { Array($0) })
    }
}

/// The few protocol-buffer wire types an event needs.
struct Protobuf {
    var bytes: [UInt8] = []
    mutating func key(_ field: Int, _ wire: UInt64) { raw(UInt64(field) << 3 | wire) }
    mutating func raw(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func varint(field: Int, _ value: UInt64) { key(field, 0); raw(value) }
    mutating func double(field: Int, _ value: Double) { key(field, 1); bytes += withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    mutating func float(field: Int, _ value: Float) { key(field, 5); bytes += withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    mutating func bytes(field: Int, _ value: [UInt8]) { key(field, 2); raw(UInt64(value.count)); bytes += value }
}

/// CRC-32C (Castagnoli), as TFRecord checksums its records, and TFRecord's masking.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in data { c = table[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func masked(_ data: [UInt8]) -> UInt32 {
        let c = checksum(data)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}

/// The loss curves as an SVG line chart: training loss per step, validation loss per
/// evaluation, axes with round ticks. Rewritten whole (atomically) as the run goes.
public enum LossPlot {
    public static func svg(training: [(step: Int, loss: Double)], validation: [(step: Int, loss: Double)], title: String) -> String {
        let width = 720.0, height = 400.0, left = 60.0, right = 20.0, top = 36.0, bottom = 44.0
        let all = (training + validation).filter { $0.loss.isFinite }
        guard let firstStep = all.map(\.step).min(), let lastStep = all.map(\.step).max(),
              var low = all.map(\.loss).min(), var high = all.map(\.loss).max() else {
            return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\"><text x=\"20\" y=\"40\">no data yet</text></svg>\n"
        }
        if high - low < 1e-6 { low -= 0.5; high += 0.5 }
        let pad = (high - low) * 0.05
        low -= pad; high += pad
        let span = Double(max(1, lastStep - firstStep))
        func x(_ step: Int) -> Double { left + (Double(step - firstStep) / span) * (width - left - right) }
        func y(_ loss: Double) -> Double { top + (high - loss) / (high - low) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="20" text-anchor="middle" font-size="14">\(escape(title))</text>

        """
        for tick in ticks(low, high) {
            out += "<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y(tick)))\" y2=\"\(f(y(tick)))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y(tick) + 4))\" text-anchor=\"end\">\(String(format: "%g", tick))</text>\n"
        }
        for tick in ticks(Double(firstStep), Double(lastStep)) where tick == tick.rounded() {
            out += "<text x=\"\(f(x(Int(tick))))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">\(Int(tick))</text>\n"
        }
        out += "<line x1=\"\(f(left))\" x2=\"\(f(left))\" y1=\"\(f(top))\" y2=\"\(f(height - bottom))\" stroke=\"#444\"/>"
        out += "<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(height - bottom))\" y2=\"\(f(height - bottom))\" stroke=\"#444\"/>\n"
        out += "<text x=\"\(f(width / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">step</text>\n"
        out += "<text x=\"14\" y=\"\(f(height / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(f(height / 2)))\">loss</text>\n"
        let trainPoints = training.filter { $0.loss.isFinite }.map { "\(f(x($0.step))),\(f(y($0.loss)))" }.joined(separator: " ")
        out += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(trainPoints)\"/>\n"
        let valid = validation.filter { $0.loss.isFinite }
        if !valid.isEmpty {
            let points = valid.map { "\(f(x($0.step))),\(f(y($0.loss)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            for p in valid { out += "<circle cx=\"\(f(x(p.step)))\" cy=\"\(f(y(p.loss)))\" r=\"3\" fill=\"#d62728\"/>" }
            out += "\n"
        }
        out += "<rect x=\"\(f(width - right - 150))\" y=\"\(f(top + 4))\" width=\"146\" height=\"40\" fill=\"white\" stroke=\"#ccc\"/>"
        out += "<line x1=\"\(f(width - right - 142))\" x2=\"\(f(width - right - 118))\" y1=\"\(f(top + 18))\" y2=\"\(f(top + 18))\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
        out += "<text x=\"\(f(width - right - 112))\" y=\"\(f(top + 22))\">training</text>"
        out += "<line x1=\"\(f(width - right - 142))\" x2=\"\(f(width - right - 118))\" y1=\"\(f(top + 34))\" y2=\"\(f(top + 34))\" stroke=\"#d62728\" stroke-width=\"2\"/>"
        out += "<text x=\"\(f(width - right - 112))\" y=\"\(f(top + 38))\">validation</text>\n</svg>\n"
        return out
    }

    /// About five round values (1, 2 or 5 × 10ⁿ apart) between low and high.
    static func ticks(_ low: Double, _ high: Double) -> [Double] {
        guard high > low else { return [low] }
        let raw = (high - low) / 5, magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var values: [Double] = []
        var v = ceil(low / step) * step
        while v <= high + step * 1e-9 { values.append(v); v += step }
        return values
    }

    static func escape(_ s: String) -> String { HTMLText.escape(s) }
}
