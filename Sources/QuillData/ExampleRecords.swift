import Foundation
import QuillTokenizers

/// A line of a data file that could not be used, with where it is.
public struct DataIssue: Error, CustomStringConvertible, Sendable, Equatable {
    public let file: String
    public let line: Int
    public let problem: String
    public init(file: String, line: Int, problem: String) {
        self.file = file
        self.line = line
        self.problem = problem
    }
    public var description: String { line > 0 ? "\(file):\(line): \(problem)" : "\(file): \(problem)" }
}

/// One example of a training or evaluation file, before tokenization: plain text, a prompt
/// with its completion, or a chat. The one reader of these files: `quill train` and
/// `quill eval` see the same examples.
public enum ExampleRecord: Sendable, Equatable {
    case text(String)
    case completion(prompt: String, completion: String)
    case chat([ChatMessage])
}

public enum ExampleRecords {
    /// A whole text file, which must be UTF-8.
    public static func text(_ path: String) throws(DataIssue) -> String {
        guard let data = FileContents.data(atPath: path) else { throw DataIssue(file: path, line: 0, problem: "cannot read the file") }
        guard let text = String(validating: data, as: UTF8.self) else { throw DataIssue(file: path, line: 0, problem: "not valid UTF-8") }
        return text
    }

    /// The records of a file, in order, each with its line (0 for `.txt` blocks) or the issue
    /// that kept it out:
    /// - `.txt`: one record per block of text between blank lines, trimmed;
    /// - JSONL: per line `text`, or `prompt` + `completion`, or `messages` ([{role, content}]
    ///   with at least one assistant turn); blank lines are skipped.
    public static func read(_ path: String) throws(DataIssue) -> [(line: Int, record: Result<ExampleRecord, DataIssue>)] {
        if path.hasSuffix(".txt") {
            return try text(path).components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .filter { !$0.isEmpty }.map { (0, .success(.text($0))) }
        }
        return try jsonLines(path).map { line, bytes in (line, Result { () throws(DataIssue) in try parse(bytes, file: path, line: line) }) }
    }

    /// The non-blank lines of a JSONL file with their line numbers (counting from 1).
    public static func jsonLines(_ path: String) throws(DataIssue) -> [(line: Int, bytes: Data)] {
        guard let data = FileContents.data(atPath: path) else { throw DataIssue(file: path, line: 0, problem: "cannot read the file") }
        var lines: [(line: Int, bytes: Data)] = []
        var number = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            lines.append((number, Data(line)))
        }
        return lines
    }

    /// One JSONL line as a JSON object: valid UTF-8, valid JSON, an object.
    public static func jsonObject(_ line: Data, issue: (String) -> DataIssue) throws(DataIssue) -> [String: Any] {
        guard String(validating: line, as: UTF8.self) != nil else { throw issue("not valid UTF-8") }
        guard let parsed = try? JSONText.object(line) else { throw issue("not valid JSON") }
        guard let object = parsed as? [String: Any] else { throw issue("not a JSON object") }
        return object
    }

    /// One JSONL line as a record.
    public static func parse(_ line: Data, file: String, line number: Int) throws(DataIssue) -> ExampleRecord {
        func issue(_ problem: String) -> DataIssue { DataIssue(file: file, line: number, problem: problem) }
        let object = try jsonObject(line, issue: issue)
        if let text = object["text"] {
            guard let text = text as? String else { throw issue("\"text\" is not a string") }
            return .text(text)
        }
        if let prompt = object["prompt"] ?? object["completion"].map({ _ in "" }) {
            guard let prompt = prompt as? String else { throw issue("\"prompt\" is not a string") }
            guard let completion = object["completion"] as? String else { throw issue("\"completion\" is missing or not a string") }
            return .completion(prompt: prompt, completion: completion)
        }
        if let messages = object["messages"] {
            let turns = try Self.messages(messages, issue: issue)
            guard turns.contains(where: { $0.role == "assistant" }) else { throw issue("no assistant message to learn from") }
            return .chat(turns)
        }
        throw issue("no \"text\", \"prompt\"/\"completion\" or \"messages\" field")
    }

    /// A JSON `messages` value as chat turns: a non-empty list of `{role, content}` strings.
    public static func messages(_ value: Any, issue: (String) -> DataIssue) throws(DataIssue) -> [ChatMessage] {
        guard let list = value as? [[String: Any]], !list.isEmpty else { throw issue("\"messages\" is not a non-empty list of objects") }
        var turns: [ChatMessage] = []
        for (i, m) in list.enumerated() {
            guard let role = m["role"] as? String, let content = m["content"] as? String else {
                throw issue("message \(i) lacks a string \"role\" or \"content\"")
            }
            turns.append(ChatMessage(role: role, content: content))
        }
        return turns
    }

    /// A chat rendered with the model's template as the text each message adds, in order;
    /// `true` marks what an assistant wrote (after the template's generation prompt), the
    /// pieces that carry the loss or the score.
    public static func chatPieces(_ turns: [ChatMessage], template: ChatTemplate, tokenizer: Tokenizer) throws(ChatRenderingError) -> [(text: String, assistant: Bool)] {
        let bos = tokenizer.bosTokenId.flatMap { tokenizer.token(for: $0) } ?? ""
        let eosText = tokenizer.eosTokenId.flatMap { tokenizer.token(for: $0) } ?? ""
        func render(_ messages: ArraySlice<ChatMessage>, prompt: Bool) throws(ChatRenderingError) -> String {
            do { return try template.render(Array(messages), addGenerationPrompt: prompt, bosToken: bos, eosToken: eosText) }
            catch { throw ChatRenderingError(problem: "chat template: \(error)") }
        }
        var pieces: [(text: String, assistant: Bool)] = []
        var done = ""
        for i in turns.indices {
            if turns[i].role == "assistant" {
                let opened = try render(turns[..<i], prompt: true)
                guard opened.hasPrefix(done) else { throw ChatRenderingError(problem: "the chat template renders message \(i) inconsistently") }
                pieces.append((String(opened.dropFirst(done.count)), false))
                done = opened
            }
            let closed = try render(turns[...i], prompt: false)
            guard closed.hasPrefix(done) else { throw ChatRenderingError(problem: "the chat template renders message \(i) inconsistently") }
            pieces.append((String(closed.dropFirst(done.count)), turns[i].role == "assistant"))
            done = closed
        }
        return pieces
    }
}

/// Why a chat could not be rendered into pieces.
public struct ChatRenderingError: Error, CustomStringConvertible, Sendable {
    public let problem: String
    public var description: String { problem }
}
