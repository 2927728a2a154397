import Foundation
import QuillData
import QuillTokenizers

/// One scored document: its windows, and the size of the text scored in bytes and words (the
/// denominators of bits per byte, byte and word perplexity).
public struct EvaluationDocument: Sendable {
    /// Where it came from: `file:line`, or `file#n` for the n-th block of a text file.
    public var source: String
    public var windows: [ScoringWindow]
    /// UTF-8 bytes of the scored text.
    public var bytes: Int
    /// Words of the scored text, counted as lm-evaluation-harness counts them.
    public var words: Int
    public var scoredTokens: Int { windows.reduce(0) { $0 + $1.scoredCount } }
}

/// A multiple-choice question (`{"context", "choices", "answer"}`): each choice scored as the
/// continuation of the context after a space, as an lm-evaluation-harness `multiple_choice`
/// task with the default target delimiter does.
public struct MultipleChoiceItem: Sendable {
    public var source: String
    public var choices: [String]
    public var answer: Int
    public var windows: [ScoringWindow]
}

/// What `quill eval` reads, with the protocol that turns it into windows:
/// - `.txt`: one document per block between blank lines (as `quill train` reads it);
/// - JSONL: `text` (the whole text scored), `prompt` + `completion` (the completion scored given
///   the prompt), `messages` (the assistant turns scored, rendered with the model's chat
///   template), or `context` + `choices` + `answer` (multiple choice);
/// - a `quill prepare` output folder: its `validation.jsonl` or `test.jsonl`.
///
/// Text documents follow `loglikelihood_rolling`: tokens without special tokens, the first
/// window led by `prefix` (the tokenizer's BOS, else its EOS), windows of `length` tokens.
/// Completions follow `loglikelihood`. Any line that cannot be used is an error naming the file
/// and line: an evaluation that silently skipped data would not be comparable.
public struct EvaluationDataReader {
    public let tokenizer: Tokenizer
    /// Tokens per window (lm-evaluation-harness's `max_length` for a local model).
    public let length: Int
    public let prefix: Int32
    private let template: ChatTemplate?

    public enum Failure: Error, CustomStringConvertible {
        case noPrefixToken
        case empty(file: String)
        case mixed(file: String)
        public var description: String {
            switch self {
            case .noPrefixToken: "the tokenizer has neither a BOS nor an EOS token to start the first window with"
            case .empty(let file): "\(file): nothing to score (no documents)"
            case .mixed(let file): "\(file): multiple-choice lines (with \"choices\") and documents mixed in one file"
            }
        }
    }

    public init(tokenizer: Tokenizer, length: Int) throws {
        guard let prefix = tokenizer.bosTokenId ?? tokenizer.eosTokenId else { throw Failure.noPrefixToken }
        self.tokenizer = tokenizer
        self.length = length
        self.prefix = prefix
        template = try? ChatTemplate(tokenizer.effectiveChatTemplate)
    }

    /// A path as the user gave it: a prepare folder resolves to its split's file.
    public static func resolve(_ path: String, split: String) throws(DataIssue) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataIssue(file: path, line: 0, problem: "no such file or directory")
        }
        guard isDirectory.boolValue else { return path }
        let file = (path as NSString).appendingPathComponent("\(split).jsonl")
        guard FileManager.default.fileExists(atPath: file) else {
            throw DataIssue(file: path, line: 0, problem: "a folder must be a quill prepare output holding \(split).jsonl")
        }
        return file
    }

    public enum Contents: Sendable {
        case documents([EvaluationDocument])
        case multipleChoice([MultipleChoiceItem])
    }

    public func read(_ path: String) throws -> Contents {
        if path.hasSuffix(".jsonl"), let items = try multipleChoice(path) { return .multipleChoice(items) }
        var documents: [EvaluationDocument] = []
        for (n, (line, record)) in try ExampleRecords.read(path).enumerated() {
            let source = line > 0 ? "\(path):\(line)" : "\(path)#\(n + 1)"
            if let document = try self.document(try record.get(), source: source, file: path, line: line) { documents.append(document) }
        }
        guard !documents.isEmpty else { throw Failure.empty(file: path) }
        return .documents(documents)
    }

    /// A record's windows; nil when its scored text is empty (nothing to score: it does not count).
    func document(_ record: ExampleRecord, source: String, file: String, line: Int) throws -> EvaluationDocument? {
        switch record {
        case .text(let text):
            let tokens = tokenizer.encode(text, addSpecialTokens: false)
            guard !tokens.isEmpty else { return nil }
            return EvaluationDocument(source: source, windows: HarnessWindows.rolling(tokens, prefix: prefix, length: length),
                                      bytes: text.utf8.count, words: PythonText.wordCount(text))
        case let .completion(prompt, completion):
            let (context, continuation) = HarnessWindows.pair(context: prompt, continuation: completion, tokenizer: tokenizer, prefix: prefix)
            guard !continuation.isEmpty else { return nil }
            return EvaluationDocument(source: source, windows: [ScoringWindow(context: context, continuation: continuation, length: length)],
                                      bytes: completion.utf8.count, words: PythonText.wordCount(completion))
        case .chat(let turns):
            guard let template else { throw DataIssue(file: file, line: line, problem: "the model's chat template does not parse") }
            let pieces: [(text: String, assistant: Bool)]
            do { pieces = try ExampleRecords.chatPieces(turns, template: template, tokenizer: tokenizer) }
            catch { throw DataIssue(file: file, line: line, problem: error.problem) }
            var tokens: [Int32] = [], scored: [Bool] = []
            for piece in pieces where !piece.text.isEmpty {
                let ids = tokenizer.encode(piece.text, addSpecialTokens: false)   // the template writes BOS where the model wants it
                tokens += ids
                scored += [Bool](repeating: piece.assistant, count: ids.count)
            }
            if tokens.first != prefix, scored.first == true { tokens.insert(prefix, at: 0); scored.insert(false, at: 0) }
            guard scored.dropFirst().contains(true) else { return nil }
            let keep = min(tokens.count, length + 1)
            let input = Array(tokens.suffix(keep).dropLast())
            let targets = zip(tokens.suffix(keep).dropFirst(), scored.suffix(keep).dropFirst()).map { $1 ? $0 : -1 }
            let text = pieces.filter(\.assistant).map(\.text).joined()
            return EvaluationDocument(source: source, windows: [ScoringWindow(input: input, targets: targets)],
                                      bytes: text.utf8.count, words: PythonText.wordCount(text))
        }
    }

    /// The file's questions when its first record has `choices`; nil for a file of documents.
    func multipleChoice(_ path: String) throws -> [MultipleChoiceItem]? {
        guard let data = FileContents.data(atPath: path) else { throw DataIssue(file: path, line: 0, problem: "cannot read the file") }
        var items: [MultipleChoiceItem] = []
        var lineNumber = 0, sawDocument = false
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            func issue(_ problem: String) -> DataIssue { DataIssue(file: path, line: lineNumber, problem: problem) }
            guard let object = (try? JSONText.object(Data(line))) as? [String: Any], object["choices"] != nil else {
                if !items.isEmpty { throw Failure.mixed(file: path) }
                sawDocument = true
                continue
            }
            if sawDocument { throw Failure.mixed(file: path) }
            guard let context = object["context"] as? String else { throw issue("\"context\" is missing or not a string") }
            guard let choices = object["choices"] as? [String], choices.count >= 2 else { throw issue("\"choices\" is not a list of two or more strings") }
            guard let answer = object["answer"] as? Int, choices.indices.contains(answer) else {
                throw issue("\"answer\" is not the index of one of the \(choices.count) choices")
            }
            let windows = choices.map { choice in
                let (c, x) = HarnessWindows.pair(context: context, continuation: " " + choice, tokenizer: tokenizer, prefix: prefix)
                return ScoringWindow(context: c, continuation: x, length: length)
            }
            items.append(MultipleChoiceItem(source: "\(path):\(lineNumber)", choices: choices, answer: answer, windows: windows))
        }
        return items.isEmpty ? nil : items
    }
}
