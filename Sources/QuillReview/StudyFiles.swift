import Foundation
import QuillData
import QuillModels
import QuillTokenizers

/// A prompt of a study: its key, the text reviewers see, and the chat to send when it is one.
public struct StudyPrompt: Sendable, Equatable {
    public var key: String
    public var text: String
    public var messages: [ChatMessage]?
}

/// The files a study is made from, read whole before anything is written: a bad line is an
/// error with its file and line, and nothing of the study exists until every file is good.
public enum StudyFiles {
    /// Lines beyond this many bytes are refused (an answer or prompt is text, not a corpus).
    public static let maxLineBytes = 1 << 20

    /// JSONL prompts: per line `{"prompt": "..."}` or `{"messages": [{role, content}, ...]}`
    /// (sent through the model's chat template), with an optional `id` (string or number);
    /// other fields (`completion`, ...) are ignored. The key is the id, else the line number.
    public static func prompts(_ path: String) throws(DataIssue) -> [StudyPrompt] {
        var prompts: [StudyPrompt] = []
        var keys: [String: Int] = [:]
        for (line, object) in try lines(path) {
            func issue(_ problem: String) -> DataIssue { DataIssue(file: path, line: line, problem: problem) }
            let key = try Self.key(object, line: line, issue: issue)
            if let first = keys[key] { throw issue("id \"\(key)\" repeats line \(first)'s") }
            keys[key] = line
            if let prompt = object["prompt"] {
                guard let prompt = prompt as? String else { throw issue("\"prompt\" is not a string") }
                guard !prompt.isEmpty else { throw issue("\"prompt\" is empty") }
                prompts.append(StudyPrompt(key: key, text: prompt, messages: nil))
            } else if let messages = object["messages"] {
                let turns = try chat(messages, issue: issue)
                prompts.append(StudyPrompt(key: key, text: shown(turns), messages: turns))
            } else {
                throw issue("no \"prompt\" or \"messages\" field")
            }
        }
        guard !prompts.isEmpty else { throw DataIssue(file: path, line: 0, problem: "no prompts") }
        return prompts
    }

    /// JSONL answers written elsewhere: per line the prompt (`prompt` or `messages`, and/or `id`)
    /// and the answer (`output`, or `completion`, `response`, `text`).
    public static func outputs(_ path: String) throws(DataIssue) -> [(prompt: StudyPrompt, output: String)] {
        var rows: [(prompt: StudyPrompt, output: String)] = []
        for (line, object) in try lines(path) {
            func issue(_ problem: String) -> DataIssue { DataIssue(file: path, line: line, problem: problem) }
            guard let field = ["output", "completion", "response", "text"].first(where: { object[$0] != nil }) else {
                throw issue("no \"output\" (or \"completion\", \"response\", \"text\") field")
            }
            guard let output = object[field] as? String else { throw issue("\"\(field)\" is not a string") }
            var text = object["prompt"] as? String
            var turns: [ChatMessage]? = nil
            if object["prompt"] != nil && text == nil { throw issue("\"prompt\" is not a string") }
            if text == nil, let messages = object["messages"] {
                turns = try chat(messages, issue: issue)
                text = shown(turns!)
            }
            guard let text else { throw issue("no \"prompt\" or \"messages\" field to say what was answered") }
            let key = object["id"] != nil ? try Self.key(object, line: line, issue: issue) : text
            rows.append((StudyPrompt(key: key, text: text, messages: turns), output))
        }
        guard !rows.isEmpty else { throw DataIssue(file: path, line: 0, problem: "no outputs") }
        return rows
    }

    /// Several outputs files as systems over the same prompts (matched by `id`, else by prompt
    /// text), in the first file's order.
    public static func matched(_ files: [(path: String, rows: [(prompt: StudyPrompt, output: String)])]) throws(DataIssue)
        -> (prompts: [StudyPrompt], outputs: [[String]]) {
        guard let first = files.first else { return ([], []) }
        let prompts = first.rows.map(\.prompt)
        var outputs: [[String]] = []
        for file in files {
            var byKey: [String: String] = [:]
            for row in file.rows {
                guard byKey[row.prompt.key] == nil else { throw DataIssue(file: file.path, line: 0, problem: "prompt \"\(row.prompt.key)\" is answered twice") }
                byKey[row.prompt.key] = row.output
            }
            guard byKey.count == prompts.count else {
                throw DataIssue(file: file.path, line: 0, problem: "answers \(byKey.count) prompts; \(first.path) answers \(prompts.count)")
            }
            outputs.append(try prompts.map { (p) throws(DataIssue) in
                guard let o = byKey[p.key] else { throw DataIssue(file: file.path, line: 0, problem: "no answer to prompt \"\(p.key)\" of \(first.path)") }
                return o
            })
        }
        return (prompts, outputs)
    }

    static func lines(_ path: String) throws(DataIssue) -> [(Int, [String: Any])] {
        try ExampleRecords.jsonLines(path).map { (number, line) throws(DataIssue) in
            func issue(_ problem: String) -> DataIssue { DataIssue(file: path, line: number, problem: problem) }
            guard line.count <= maxLineBytes else { throw issue("the line is longer than \(maxLineBytes) bytes") }
            return (number, try ExampleRecords.jsonObject(line, issue: issue))
        }
    }

    static func key(_ object: [String: Any], line: Int, issue: (String) -> DataIssue) throws(DataIssue) -> String {
        switch object["id"] {
        case nil: return "line \(line)"
        case let s as String where !s.isEmpty: return s
        case let n as NSNumber: return n.stringValue
        default: throw issue("\"id\" is not a non-empty string or a number")
        }
    }

    static func chat(_ value: Any, issue: (String) -> DataIssue) throws(DataIssue) -> [ChatMessage] {
        var turns = try ExampleRecords.messages(value, issue: issue)
        if turns.last?.role == "assistant" { turns.removeLast() }
        guard turns.contains(where: { $0.role == "user" }) else { throw issue("no user message to answer") }
        return turns
    }

    /// What reviewers see of a chat: the user's message alone, or each turn with its role.
    static func shown(_ turns: [ChatMessage]) -> String {
        if turns.count == 1 { return turns[0].content }
        return turns.map { "\($0.role): \($0.content)" }.joined(separator: "\n\n")
    }
}

/// One system's answers, written by a model with fixed settings: each prompt sampled with
/// seed `seed + i`, so an answer does not depend on which prompts came before it.
public struct AnswerWriter: Sendable {
    public var model: any LanguageModel
    public var tokenizer: Tokenizer
    public var options: GenerationOptions
    /// Plain prompts go through the chat template as a user turn.
    public var chat: Bool
    public var seed: UInt64

    public init(model: any LanguageModel, tokenizer: Tokenizer, options: GenerationOptions, chat: Bool, seed: UInt64) {
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.chat = chat
        self.seed = seed
    }

    public func answer(_ prompt: StudyPrompt, index: Int) throws -> String {
        var options = options
        options.sampling.seed = seed &+ UInt64(index)
        let messages = prompt.messages ?? (chat ? [ChatMessage(role: "user", content: prompt.text)] : nil)
        let ids = try messages.map { try tokenizer.encodeChat($0) } ?? tokenizer.encode(prompt.text)
        let room = model.contextLength - ids.count
        guard room > 0 else { throw ModelError.contextOverflow(tokens: ids.count + 1, context: model.contextLength) }
        options.maxNewTokens = min(options.maxNewTokens, room)
        let result = try Generator(model: model, tokenizer: tokenizer).generate(promptIds: ids, options: options)
        return result.text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The settings, as recorded with the system.
    public var settings: String {
        let s = options.sampling
        let object: [String: Any] = ["max_new_tokens": options.maxNewTokens, "temperature": Double(s.temperature), "top_k": s.topK,
                                     "top_p": Double(s.topP), "min_p": Double(s.minP), "repetition_penalty": Double(s.repetitionPenalty),
                                     "seed": NSNumber(value: seed), "seed_rule": "seed + prompt index", "chat": chat]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
