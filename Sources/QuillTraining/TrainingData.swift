import Foundation
import QuillTokenizers

/// One training example as tokens, and which of them the loss is on (the completion of a
/// prompt, the assistant's turns of a chat, every token of plain text).
public struct TokenizedExample: Sendable, Equatable {
    public var tokens: [Int32]
    public var trained: [Bool]
}

/// A line of a data file that could not be used, with where it is.
public struct DataIssue: Error, CustomStringConvertible, Sendable, Equatable {
    public let file: String
    public let line: Int
    public let problem: String
    public var description: String { line > 0 ? "\(file):\(line): \(problem)" : "\(file): \(problem)" }
}

/// Reads training files into tokenized examples:
/// - JSONL with `text` (loss on every token), `prompt` + `completion` (loss on the completion),
///   or `messages` ([{role, content}], rendered with the model's chat template; loss on the
///   assistant turns), decided per line;
/// - plain `.txt` (one document per blank-line-separated paragraph block, loss on everything);
/// - token shards written by `quill prepare --tokenizer` (`NAME.json` + `NAME.bin`).
/// Each document ends with the end-of-sequence token. A line that is not JSON or lacks its
/// field is a `DataIssue` naming file and line: skipped and reported, or fatal when `strict`.
public struct TrainingDataReader {
    /// Needed for text; token shards are read without one.
    public let tokenizer: Tokenizer?
    public var strict = false
    public private(set) var issues: [DataIssue] = []
    private let template: ChatTemplate?

    public init(tokenizer: Tokenizer?) {
        self.tokenizer = tokenizer
        template = tokenizer.flatMap { try? ChatTemplate($0.chatTemplate ?? ChatTemplate.chatML) }
    }

    public mutating func read(_ path: String) throws -> [TokenizedExample] {
        if path.hasSuffix(".json") { return try TokenShards(indexPath: path).examples() }
        guard let tokenizer else { throw DataIssue(file: path, line: 0, problem: "text needs the model's tokenizer, and none was found beside the model") }
        return try read(path, with: tokenizer)
    }

    private mutating func read(_ path: String, with tokenizer: Tokenizer) throws -> [TokenizedExample] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataIssue(file: path, line: 0, problem: "cannot read the file")
        }
        if path.hasSuffix(".txt") {
            let text = String(decoding: data, as: UTF8.self)
            return text.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .filter { !$0.isEmpty }.map { plain($0, tokenizer) }
        }
        var examples: [TokenizedExample] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                examples.append(try example(Data(line), file: path, line: lineNumber, tokenizer: tokenizer))
            } catch let issue as DataIssue {
                if strict { throw issue }
                issues.append(issue)
            }
        }
        return examples
    }

    private func example(_ line: Data, file: String, line number: Int, tokenizer: Tokenizer) throws -> TokenizedExample {
        func issue(_ problem: String) -> DataIssue { DataIssue(file: file, line: number, problem: problem) }
        guard String(data: line, encoding: .utf8) != nil else { throw issue("not valid UTF-8") }
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: line) as? [String: Any] else { throw issue("not a JSON object") }
            object = parsed
        } catch let error as DataIssue { throw error } catch {
            throw issue("not valid JSON")
        }
        if let text = object["text"] {
            guard let text = text as? String else { throw issue("\"text\" is not a string") }
            return plain(text, tokenizer)
        }
        if let prompt = object["prompt"] ?? object["completion"].map({ _ in "" }) {
            guard let prompt = prompt as? String else { throw issue("\"prompt\" is not a string") }
            guard let completion = object["completion"] as? String else { throw issue("\"completion\" is missing or not a string") }
            let p = tokenizer.encode(prompt, addSpecialTokens: true), c = tokenizer.encode(completion, addSpecialTokens: false) + eos(tokenizer)
            return TokenizedExample(tokens: p + c, trained: [Bool](repeating: false, count: p.count) + [Bool](repeating: true, count: c.count))
        }
        if let messages = object["messages"] {
            guard let list = messages as? [[String: Any]], !list.isEmpty else { throw issue("\"messages\" is not a non-empty list of objects") }
            let turns = try list.enumerated().map { i, m -> ChatMessage in
                guard let role = m["role"] as? String, let content = m["content"] as? String else {
                    throw issue("message \(i) lacks a string \"role\" or \"content\"")
                }
                return ChatMessage(role: role, content: content)
            }
            guard turns.contains(where: { $0.role == "assistant" }) else { throw issue("no assistant message to learn from") }
            return try chat(turns, tokenizer: tokenizer, issue: issue)
        }
        throw issue("no \"text\", \"prompt\"/\"completion\" or \"messages\" field")
    }

    private func eos(_ tokenizer: Tokenizer) -> [Int32] { tokenizer.eosTokenId.map { [$0] } ?? [] }

    private func plain(_ text: String, _ tokenizer: Tokenizer) -> TokenizedExample {
        let tokens = tokenizer.encode(text, addSpecialTokens: true) + eos(tokenizer)
        return TokenizedExample(tokens: tokens, trained: [Bool](repeating: true, count: tokens.count))
    }

    /// Renders growing prefixes of the conversation: the text each message adds is its own
    /// piece, and the pieces an assistant wrote (after the template's generation prompt) carry
    /// the loss.
    private func chat(_ turns: [ChatMessage], tokenizer: Tokenizer, issue: (String) -> DataIssue) throws -> TokenizedExample {
        guard let template else { throw issue("the model's chat template does not parse") }
        let bos = tokenizer.bosTokenId.flatMap { tokenizer.token(for: $0) } ?? ""
        let eosText = tokenizer.eosTokenId.flatMap { tokenizer.token(for: $0) } ?? ""
        func render(_ messages: ArraySlice<ChatMessage>, prompt: Bool) throws -> String {
            do { return try template.render(Array(messages), addGenerationPrompt: prompt, bosToken: bos, eosToken: eosText) }
            catch { throw issue("chat template: \(error)") }
        }
        var pieces: [(String, Bool)] = []
        var done = ""
        for i in turns.indices {
            if turns[i].role == "assistant" {
                let opened = try render(turns[..<i], prompt: true)
                guard opened.hasPrefix(done) else { throw issue("the chat template renders message \(i) inconsistently") }
                pieces.append((String(opened.dropFirst(done.count)), false))
                done = opened
            }
            let closed = try render(turns[...i], prompt: false)
            guard closed.hasPrefix(done) else { throw issue("the chat template renders message \(i) inconsistently") }
            pieces.append((String(closed.dropFirst(done.count)), turns[i].role == "assistant"))
            done = closed
        }
        var example = TokenizedExample(tokens: [], trained: [])
        for (index, (text, trained)) in pieces.enumerated() where !text.isEmpty {
            let ids = tokenizer.encode(text, addSpecialTokens: index == 0)
            example.tokens += ids
            example.trained += [Bool](repeating: trained, count: ids.count)
        }
        return example
    }
}

/// Token shards as `quill prepare --tokenizer` writes them (see `TokenShardWriter`).
struct TokenShards {
    let tokens: [Int32]
    let offsets: [Int]

    init(indexPath: String) throws {
        struct Index: Decodable { let dtype: String; let offsets: [Int]; let tokens: Int }
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: URL(fileURLWithPath: indexPath)))
        let bin = String(indexPath.dropLast(".json".count)) + ".bin"
        guard let data = FileManager.default.contents(atPath: bin) else { throw DataIssue(file: bin, line: 0, problem: "cannot read the shard") }
        let wide = index.dtype == "uint32"
        guard data.count == index.tokens * (wide ? 4 : 2) else {
            throw DataIssue(file: bin, line: 0, problem: "holds \(data.count) bytes, the index says \(index.tokens) \(index.dtype) tokens")
        }
        tokens = data.withUnsafeBytes { raw in
            wide ? raw.bindMemory(to: UInt32.self).map { Int32(bitPattern: UInt32(littleEndian: $0)) }
                 : raw.bindMemory(to: UInt16.self).map { Int32(UInt16(littleEndian: $0)) }
        }
        offsets = index.offsets
    }

    func examples() -> [TokenizedExample] {
        zip(offsets, offsets.dropFirst()).map { from, to in
            TokenizedExample(tokens: Array(tokens[from..<to]), trained: [Bool](repeating: true, count: to - from))
        }
    }
}

/// Examples packed back to back and cut into windows of `length` inputs, each with its
/// next-token targets (-1 where there is no loss). The last window is padded rather than
/// dropped, so no example is lost.
public struct PackedWindows: Sendable {
    public let length: Int
    public let inputs: [[Int32]]
    public let targets: [[Int32]]
    public var count: Int { inputs.count }
    /// Tokens that carry a loss.
    public var targetTokens: Int { targets.reduce(0) { $0 + $1.filter { $0 >= 0 }.count } }

    public init(_ examples: [TokenizedExample], length: Int, padding: Int32) {
        self.length = length
        var stream: [Int32] = [], trained: [Bool] = []
        for e in examples { stream += e.tokens; trained += e.trained }
        var inputs: [[Int32]] = [], targets: [[Int32]] = []
        var start = 0
        while start + 1 < stream.count {
            let end = min(start + length, stream.count - 1)
            var x = Array(stream[start..<end]), y = (start..<end).map { trained[$0 + 1] ? stream[$0 + 1] : -1 }
            if x.count < length {
                x += [Int32](repeating: padding, count: length - x.count)
                y += [Int32](repeating: -1, count: length - y.count)
            }
            if y.contains(where: { $0 >= 0 }) { inputs.append(x); targets.append(y) }
            start += length
        }
        self.inputs = inputs
        self.targets = targets
    }
}
