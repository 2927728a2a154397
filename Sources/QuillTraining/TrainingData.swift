import Foundation
import QuillData
import QuillTokenizers

/// One training example as tokens, and which of them the loss is on (the completion of a
/// prompt, the assistant's turns of a chat, every token of plain text).
public struct TokenizedExample: Sendable, Equatable {
    public var tokens: [Int32]
    public var trained: [Bool]
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
        template = tokenizer.flatMap { try? ChatTemplate($0.effectiveChatTemplate) }
    }

    public mutating func read(_ path: String) throws -> [TokenizedExample] {
        if path.hasSuffix(".json") {
            return try TokenShard(indexPath: path).documents.map { TokenizedExample(tokens: $0, trained: [Bool](repeating: true, count: $0.count)) }
        }
        guard let tokenizer else { throw DataIssue(file: path, line: 0, problem: "text needs the model's tokenizer, and none was found beside the model") }
        return try read(path, with: tokenizer)
    }

    private mutating func read(_ path: String, with tokenizer: Tokenizer) throws -> [TokenizedExample] {
        var examples: [TokenizedExample] = []
        for (line, record) in try ExampleRecords.read(path) {
            do {
                examples.append(try example(try record.get(), file: path, line: line, tokenizer: tokenizer))
            } catch let issue as DataIssue {
                if strict { throw issue }
                issues.append(issue)
            }
        }
        return examples
    }

    private func example(_ record: ExampleRecord, file: String, line: Int, tokenizer: Tokenizer) throws -> TokenizedExample {
        switch record {
        case .text(let text):
            let tokens = tokenizer.encode(text, addSpecialTokens: true) + eos(tokenizer)
            return TokenizedExample(tokens: tokens, trained: [Bool](repeating: true, count: tokens.count))
        case let .completion(prompt, completion):
            let p = tokenizer.encode(prompt, addSpecialTokens: true), c = tokenizer.encode(completion, addSpecialTokens: false) + eos(tokenizer)
            return TokenizedExample(tokens: p + c, trained: [Bool](repeating: false, count: p.count) + [Bool](repeating: true, count: c.count))
        case .chat(let turns):
            guard let template else { throw DataIssue(file: file, line: line, problem: "the model's chat template does not parse") }
            let pieces: [(text: String, assistant: Bool)]
            do { pieces = try ExampleRecords.chatPieces(turns, template: template, tokenizer: tokenizer) }
            catch { throw DataIssue(file: file, line: line, problem: error.problem) }
            var example = TokenizedExample(tokens: [], trained: [])
            for piece in pieces where !piece.text.isEmpty {
                let ids = tokenizer.encode(piece.text, addSpecialTokens: false)   // the template writes BOS where the model wants it
                example.tokens += ids
                example.trained += [Bool](repeating: piece.assistant, count: ids.count)
            }
            return example
        }
    }

    private func eos(_ tokenizer: Tokenizer) -> [Int32] { tokenizer.eosTokenId.map { [$0] } ?? [] }
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
