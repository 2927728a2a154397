import Crypto
import Foundation
import QuillFormats

/// Everything `quill eval --json` writes: the protocol, the data and model files with their
/// sha256, every figure per model, and the comparisons.
public struct EvaluationReport: Sendable, Codable {
    public struct ProtocolDescription: Sendable, Codable {
        public var name: String
        public var description: String
        public var context: Int
        public var prefixToken: Int32?
        enum CodingKeys: String, CodingKey { case name, description, context, prefixToken = "prefix_token" }
        public init(name: String, description: String, context: Int, prefixToken: Int32?) {
            self.name = name
            self.description = description
            self.context = context
            self.prefixToken = prefixToken
        }
    }

    public struct FileReference: Sendable, Codable {
        public var path: String
        public var sha256: String
        public init(path: String) throws {
            self.path = path
            sha256 = try FileDigest.sha256(path)
        }
    }

    public struct ModelResult: Sendable, Codable {
        public var name: String
        public var files: [FileReference]
        public var summary: LikelihoodSummary?
        public var multipleChoice: MultipleChoiceSummary?
        public var documents: [DocumentScore]?
        public var seconds: Double
        enum CodingKeys: String, CodingKey { case name, files, summary, multipleChoice = "multiple_choice", documents, seconds }
        public init(name: String, files: [FileReference], summary: LikelihoodSummary?, multipleChoice: MultipleChoiceSummary?,
                    documents: [DocumentScore]?, seconds: Double) {
            self.name = name
            self.files = files
            self.summary = summary
            self.multipleChoice = multipleChoice
            self.documents = documents
            self.seconds = seconds
        }
    }

    public var quillVersion: String
    public var evaluationProtocol: ProtocolDescription
    public var data: [FileReference]
    public var models: [ModelResult]
    public var comparisons: [PairedComparison]

    enum CodingKeys: String, CodingKey { case quillVersion = "quill_version", evaluationProtocol = "protocol", data, models, comparisons }

    public init(quillVersion: String, evaluationProtocol: ProtocolDescription, data: [FileReference], models: [ModelResult], comparisons: [PairedComparison]) {
        self.quillVersion = quillVersion
        self.evaluationProtocol = evaluationProtocol
        self.data = data
        self.models = models
        self.comparisons = comparisons
    }

    /// Writes the report as pretty JSON beside `path`, then renames it into place.
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(self), to: URL(fileURLWithPath: path))
    }
}

/// sha256 of files, read in 4 MB pieces.
public enum FileDigest {
    public static func sha256(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            // a Hugging Face or adapter directory: the digest of its files' digests, by name
            let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            var hasher = SHA256()
            for name in names {
                let file = (path as NSString).appendingPathComponent(name)
                var sub: ObjCBool = false
                guard FileManager.default.fileExists(atPath: file, isDirectory: &sub), !sub.boolValue else { continue }
                hasher.update(data: Data("\(name) \(try sha256(file))\n".utf8))
            }
            return hasher.finalize().map { String(format: "%02x", $0) }.joined()
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
