import Foundation
import QuillTokenizers
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One input document before cleaning: where it came from and its raw text, or why it cannot
/// be a document at all (binary junk, an undecodable record).
public struct RawDocument: Sendable {
    public var source: String
    /// File-level position: 0 for a whole file, else the line / record number (from 1).
    public var position: Int
    public var text: String
    public var isHTML: Bool
    public var encoding: TextDecoding.Encoding?
    public var invalidBytes: Int
    /// Set when the input already fails: ("binary", ...), ("invalid_json", ...), ("missing_field", ...).
    public var failure: Failure?

    public struct Failure: Sendable { public var reason: String; public var detail: String }
}

/// Files, folders and globs of .txt, .md, .html/.htm, .jsonl, .csv/.tsv (each possibly .gz) →
/// raw documents: one per file, per line or per record.
public struct CorpusReader: Sendable {
    public enum Unit: String, Sendable, Codable { case auto, file, line, paragraph }

    /// How text files are cut into documents (.jsonl and .csv are always per record).
    public var unit = Unit.auto
    /// The JSONL field holding the text.
    public var textField = "text"
    /// The CSV / TSV column holding the text: a header name or a 0-based index (default: "text", else the first).
    public var column: String?
    /// Force one encoding instead of detecting it per file.
    public var encoding: TextDecoding.Encoding?
    /// JSONL / CSV records hold HTML pages (crawls store them so).
    public var recordsAreHTML = false

    public init() {}

    /// The input files, in a stable order: directories walked recursively, globs expanded.
    public static func files(_ inputs: [String]) throws -> [String] {
        var files: [String] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) {
                if isDirectory.boolValue {
                    guard let walker = FileManager.default.enumerator(atPath: input) else { continue }
                    var found: [String] = []
                    while let relative = walker.nextObject() as? String {
                        let path = (input as NSString).appendingPathComponent(relative)
                        var dir: ObjCBool = false
                        if FileManager.default.fileExists(atPath: path, isDirectory: &dir), !dir.boolValue,
                           !(relative as NSString).lastPathComponent.hasPrefix(".") { found.append(path) }
                    }
                    files += found.sorted()
                } else {
                    files.append(input)
                }
            } else if input.contains("*") || input.contains("?") || input.contains("[") {
                files += expand(glob: input)
            } else {
                throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: input, NSLocalizedDescriptionKey: "\(input): no such file, folder or glob match"])
            }
        }
        return files
    }

    static func expand(glob pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { result.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }

    /// A file's format by its extension, under a `.gz` if there is one.
    static func format(of path: String) -> String {
        var name = (path as NSString).lastPathComponent.lowercased()
        if name.hasSuffix(".gz") { name.removeLast(3) }
        return (name as NSString).pathExtension
    }

    /// The documents of one file, one at a time: JSONL files and text read line by line stream
    /// through a 1 MB buffer (gzip or not), so a file larger than memory works; other files are
    /// read whole (an HTML page, a text per file, a CSV whose quoted fields may span lines).
    /// `consumed` hears how many bytes of the file (as stored, compressed or not) are read.
    public func forEachDocument(in path: String, consumed: (Int) -> Void = { _ in },
                                _ body: (RawDocument) throws -> Void) throws {
        let ext = Self.format(of: path)
        let jsonl = ext == "jsonl" || ext == "ndjson"
        guard jsonl || (unit == .line && !["html", "htm", "xhtml", "csv", "tsv"].contains(ext)),
              let file = try? GzipFile(path: path) else {
            for doc in documents(in: path) { try body(doc) }
            return
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var carry: [UInt8] = [], line = 0, sawText = false
        var detected = encoding
        while true {
            let n: Int
            do { n = try file.read(into: &buffer) } catch {
                return try body(failed(path, line + 1, "corrupt_gzip", "\(error); the last partial line is not read"))
            }
            consumed(file.fileOffset)
            var chunk = carry + buffer[0..<n]
            if detected == nil, !chunk.isEmpty {
                if Self.looksBinary(chunk) { return try body(failed(path, 0, "binary", "binary data in the first \(chunk.count) bytes")) }
                detected = TextDecoding.detect(chunk)
                if detected == .utf16LE || detected == .utf16BE {   // newline bytes are not lines there: read it whole
                    for doc in documents(in: path) { try body(doc) }
                    return
                }
                if detected == .utf8BOM { chunk.removeFirst(3); detected = .utf8 }
            }
            let cut = n == 0 ? chunk.count : (chunk.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0)
            carry = Array(chunk[cut...])
            var start = 0
            while start < cut {
                let stop = chunk[start..<cut].firstIndex(of: 0x0A) ?? cut
                line += 1
                let bytes = Array(chunk[start..<stop])
                start = stop + 1
                guard bytes.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) else { continue }
                sawText = true
                let decoded = TextDecoding.convert(bytes, from: detected ?? .utf8)
                let doc = RawDocument(source: path, position: line, text: decoded.text, isHTML: false, encoding: decoded.encoding,
                                      invalidBytes: decoded.invalidBytes, failure: nil)
                try body(jsonl ? record(Data(bytes), of: doc) : doc)
            }
            if n == 0 { break }
        }
        if !sawText { try body(failed(path, 0, "empty", "\(file.bytesRead) bytes, no text")) }
    }

    /// A JSONL line as a document: its `textField`, or why it has none. `line` carries the
    /// position, encoding and invalid-byte count.
    func record(_ json: Data, of line: RawDocument) -> RawDocument {
        guard let object = try? JSONText.object(json) as? [String: Any] else {
            return failed(line.source, line.position, "invalid_json", "line \(line.position) is not a JSON object")
        }
        guard let value = object[textField] as? String else {
            return failed(line.source, line.position, "missing_field", "line \(line.position) has no string field \"\(textField)\"")
        }
        var doc = line
        doc.text = value
        doc.isHTML = recordsAreHTML
        return doc
    }

    /// The documents of one file, read whole.
    public func documents(in path: String) -> [RawDocument] {
        guard FileManager.default.isReadableFile(atPath: path) else { return [failed(path, 0, "unreadable", "cannot read the file")] }
        let bytes: [UInt8]
        do { bytes = try GzipFile.contents(of: path) } catch { return [failed(path, 0, "corrupt_gzip", "\(error)")] }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return [failed(path, 0, "empty", "\(bytes.count) bytes, no text")]
        }
        if Self.looksBinary(bytes) { return [failed(path, 0, "binary", "\(bytes.count) bytes of binary data")] }
        let decoded = TextDecoding.decode(bytes, as: encoding)
        let ext = Self.format(of: path)
        func document(_ position: Int, _ text: String, html: Bool = false) -> RawDocument {
            RawDocument(source: path, position: position, text: text, isHTML: html, encoding: decoded.encoding,
                        invalidBytes: position <= 1 ? decoded.invalidBytes : 0, failure: nil)
        }
        let lines = decoded.text.split(separator: "\n", omittingEmptySubsequences: false)
        switch ext {
        case "html", "htm", "xhtml":
            return [document(0, decoded.text, html: true)]
        case "jsonl", "ndjson":
            return lines.enumerated().compactMap { i, line in
                line.trimmingCharacters(in: .whitespaces).isEmpty ? nil : record(Data(line.utf8), of: document(i + 1, ""))
            }
        case "csv", "tsv":
            return csvDocuments(decoded.text, separator: ext == "tsv" ? "\t" : ",", path: path, document: document)
        default:
            switch unit {
            case .line:
                return lines.enumerated().compactMap { i, line in
                    line.trimmingCharacters(in: .whitespaces).isEmpty ? nil : document(i + 1, String(line))
                }
            case .paragraph:
                var docs: [RawDocument] = [], current: [Substring] = [], first = 0
                for (i, line) in lines.enumerated() {
                    if line.trimmingCharacters(in: .whitespaces).isEmpty {
                        if !current.isEmpty { docs.append(document(first + 1, current.joined(separator: "\n"))); current = [] }
                    } else {
                        if current.isEmpty { first = i }
                        current.append(line)
                    }
                }
                if !current.isEmpty { docs.append(document(first + 1, current.joined(separator: "\n"))) }
                return docs
            case .auto, .file:
                return [document(0, decoded.text, html: decoded.text.prefix(1000).lowercased().contains("<html"))]
            }
        }
    }

    func failed(_ path: String, _ position: Int, _ reason: String, _ detail: String) -> RawDocument {
        RawDocument(source: path, position: position, text: "", isHTML: false, encoding: nil, invalidBytes: 0, failure: .init(reason: reason, detail: detail))
    }

    /// NUL bytes (outside UTF-16) or many control bytes in the first 8 KB.
    static func looksBinary(_ bytes: [UInt8]) -> Bool {
        if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) { return false }
        let head = bytes.prefix(8192)
        if head.contains(0) { return true }
        let control = head.filter { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D && $0 != 0x0C && $0 != 0x1B }.count
        return control * 10 > head.count
    }

    /// RFC 4180 records (quoted fields may hold separators, quotes as "" and newlines).
    func csvDocuments(_ text: String, separator: Character, path: String, document: (Int, String, Bool) -> RawDocument) -> [RawDocument] {
        var records: [[String]] = [], field = "", record: [String] = [], quoted = false
        var iterator = text.makeIterator(), pending: Character?
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = iterator.next() { if next == "\"" { field.append("\"") } else { quoted = false; pending = next } }
                    else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == separator {
                record.append(field); field = ""
            } else if c == "\n" || c == "\r\n" {
                record.append(field); field = ""
                records.append(record); record = []
            } else if c != "\r" {
                field.append(c)
            }
        }
        if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
        guard let header = records.first else { return [] }
        let index: Int
        if let column, let i = Int(column) { index = i }
        else if let i = header.firstIndex(of: column ?? "text") { index = i }
        else { index = 0 }
        let hasHeader = Int(column ?? "") == nil
        return records.enumerated().dropFirst(hasHeader ? 1 : 0).compactMap { i, fields in
            if fields.count == 1 && fields[0].isEmpty { return nil }
            guard index < fields.count else {
                return failed(path, i + 1, "missing_field", "record \(i + 1) has \(fields.count) fields, no column \(index)")
            }
            return document(i + 1, fields[index], recordsAreHTML)
        }
    }
}
