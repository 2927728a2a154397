import Foundation
import Testing
import QuillData
import QuillFormats
@testable import QuillEval
import QuillTokenizers

/// Bad data is an error naming the file and line, never a silent skip.
struct EvaluationDataTests {
    static let tokenizer = try? Tokenizer(gguf: GGUFFile(path: QuillCache.defaultModel.path))

    func write(_ text: String, _ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("quill-eval-\(UUID().uuidString)-\(name)").path
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    @Test func badInputIsNamed() throws {
        let tokenizer = try #require(Self.tokenizer)
        let reader = try EvaluationDataReader(tokenizer: tokenizer, length: 64)
        let empty = write("", "empty.jsonl")
        #expect(throws: EvaluationDataReader.Failure.self) { try reader.read(empty) }
        let missing = write("{\"text\": \"fine\"}\n{\"title\": \"no text\"}\n", "missing.jsonl")
        do { _ = try reader.read(missing); Issue.record("a line without its field was accepted") }
        catch let issue as DataIssue { #expect(issue.line == 2 && issue.file == missing) }
        let mixed = write("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"answer\": 0}\n{\"text\": \"x\"}\n", "mixed.jsonl")
        #expect(throws: EvaluationDataReader.Failure.self) { try reader.read(mixed) }
        let badAnswer = write("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"answer\": 2}\n", "answer.jsonl")
        #expect(throws: DataIssue.self) { try reader.read(badAnswer) }
        #expect(throws: DataIssue.self) { try EvaluationDataReader.resolve("/nonexistent/file.jsonl", split: "validation") }
    }

    @Test func documentsCountBytesAndWords() throws {
        let tokenizer = try #require(Self.tokenizer)
        let reader = try EvaluationDataReader(tokenizer: tokenizer, length: 8)
        let path = write("{\"text\": \"床前明月光，疑是地上霜。 Shall I compare thee to a summer's day?\"}\n"
                         + "{\"prompt\": \"Q: \", \"completion\": \"an answer\"}\n", "docs.jsonl")
        guard case .documents(let docs) = try reader.read(path) else { Issue.record("expected documents"); return }
        #expect(docs.count == 2)
        #expect(docs[0].bytes == "床前明月光，疑是地上霜。 Shall I compare thee to a summer's day?".utf8.count)
        #expect(docs[0].words == 9)
        let tokens = tokenizer.encode("床前明月光，疑是地上霜。 Shall I compare thee to a summer's day?", addSpecialTokens: false)
        #expect(docs[0].scoredTokens == tokens.count)
        #expect(docs[0].windows[0].input.first == reader.prefix)
        // the context's trailing space moves to the completion, as the harness does
        let pair = HarnessWindows.pair(context: "Q: ", continuation: "an answer", tokenizer: tokenizer, prefix: reader.prefix)
        #expect(pair.context == tokenizer.encode("Q:", addSpecialTokens: false))
        #expect(docs[1].scoredTokens == pair.continuation.count && docs[1].bytes == 9)
    }
}
