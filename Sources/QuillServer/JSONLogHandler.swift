import Foundation
import Logging

/// One JSON object per line on standard error, for log pipelines (Loki, Elasticsearch, Cloud
/// Logging): `time` (ISO 8601, milliseconds), `level`, `logger`, `message`, `source`, and every
/// metadata value as a field of its own (`hb.request.id`, `http.status`, ...).
///
/// ```swift
/// LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: .info) }
/// ```
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let label: String
    /// One line at a time: records from different threads never interleave.
    private static let output = NSLock()

    public init(label: String, level: Logger.Level = .info) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = Self.line(level: event.level, label: label, message: "\(event.message)", source: event.source,
                             metadata: metadata.merging(event.metadata ?? [:]) { $1 })
        Self.output.withLock { FileHandle.standardError.write(line) }
    }

    /// The record's bytes, newline included.
    static func line(level: Logger.Level, label: String, message: String, source: String, metadata: Logger.Metadata,
                     date: Date = Date()) -> Data {
        var fields: [String: JSONValue] = [:]
        for (key, value) in metadata { fields[key] = Self.json(value) }
        fields["time"] = .string(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        fields["level"] = .string(level.rawValue)
        fields["logger"] = .string(label)
        fields["message"] = .string(message)
        fields["source"] = .string(source)
        return JSONValue.object(fields).data + Data("\n".utf8)
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let s): .string(s)
        case .stringConvertible(let c): .string(c.description)
        case .array(let a): .array(a.map(json))
        case .dictionary(let d): .object(d.mapValues(json))
        }
    }
}
