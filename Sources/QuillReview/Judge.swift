import Foundation
import QuillTokenizers
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An automatic judge: any OpenAI-compatible chat endpoint (`quill serve`, llama-server, vLLM,
/// a hosted API) asked MT-Bench's pairwise question about each comparison twice, with the
/// answers' order swapped. Agreeing verdicts name the better system; disagreeing ones count as a
/// tie (MT-Bench's rule for inconsistent judgments); a reply without a verdict is stored as a
/// skip, with the reply in the comment. Votes are stored under a reviewer of kind `judge`, named
/// after the model, and reported apart from people's.
public struct Judge: Sendable {
    public var url: URL
    public var model: String
    public var apiKey: String?
    public var maxTokens = 512
    public var temperature = 0.0

    public init(url: URL, model: String, apiKey: String? = nil) {
        self.url = url
        self.model = model
        self.apiKey = apiKey
    }

    /// MT-Bench's single-turn pairwise instructions (its "pair-v2" prompt's rules and verdict format).
    static let system = """
        Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the user \
        question displayed below. You should choose the assistant that follows the user's instructions and answers the user's \
        question better. Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, \
        and level of detail of their responses. Begin your evaluation by comparing the two responses and provide a short \
        explanation. Avoid any position biases and ensure that the order in which the responses were presented does not influence \
        your decision. Do not allow the length of the responses to influence your evaluation. Do not favor certain names of the \
        assistants. Be as objective as possible. After providing your explanation, output your final verdict by strictly following \
        this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.
        """

    static func question(prompt: String, a: String, b: String) -> String {
        """
        [User Question]
        \(prompt)

        [The Start of Assistant A's Answer]
        \(a)
        [The End of Assistant A's Answer]

        [The Start of Assistant B's Answer]
        \(b)
        [The End of Assistant B's Answer]
        """
    }

    public enum Choice: String, Sendable, Equatable { case a = "A", b = "B", tie = "C" }

    /// The verdict of a reply: the last `[[A]]`, `[[B]]` or `[[C]]` in it (MT-Bench also reads `[A]`).
    public static func verdict(_ reply: String) -> Choice? {
        let marks: [(String, Choice)] = [("[[A]]", .a), ("[[B]]", .b), ("[[C]]", .tie)]
        let found = marks.compactMap { mark, choice in reply.range(of: mark, options: .backwards).map { ($0.lowerBound, choice) } }
        if let last = found.max(by: { $0.0 < $1.0 }) { return last.1 }
        let single: [(String, Choice)] = [("[A]", .a), ("[B]", .b), ("[C]", .tie)]
        let loose = single.compactMap { mark, choice in reply.range(of: mark, options: .backwards).map { ($0.lowerBound, choice) } }
        return loose.max(by: { $0.0 < $1.0 })?.1
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// One chat completion: the reply's text.
    func ask(_ question: String) async throws -> String {
        var request = URLRequest(url: url.appendingPathComponent("v1/chat/completions"))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let apiKey { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        request.timeoutInterval = 600
        let body: [String: Any] = ["model": model, "temperature": temperature, "max_tokens": maxTokens,
                                   "messages": [["role": "system", "content": Self.system], ["role": "user", "content": question]]]
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let data: Data, response: URLResponse
        do { (data, response) = try await URLSession.shared.data(for: request) } catch {
            throw Failure(description: "cannot reach the judge at \(url): \((error as NSError).userInfo[NSLocalizedDescriptionKey] ?? error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            throw Failure(description: "the judge at \(url) answered HTTP \(status): \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
        guard let object = try? JSONText.object(data) as? [String: Any],
              let choices = object["choices"] as? [[String: Any]], let message = choices.first?["message"] as? [String: Any],
              let content = message["content"] as? String else {
            throw Failure(description: "the judge at \(url) did not answer a chat completion: \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
        return content
    }

    /// Judges every comparison the judge has not voted on yet; returns the verdicts given.
    public func run(store: ReviewStore, study: Study, progress: (Int, Int) -> Void = { _, _ in }) async throws -> [Verdict] {
        let name = "judge: \(model)"
        let reviewer = try store.reviewers(of: study).first { $0.name == name }
            ?? store.addReviewer(to: study, name: name, kind: .judge)
        var verdicts: [Verdict] = []
        while case let (done, assignment?) = try store.next(for: reviewer) {
            progress(done.done, done.total)
            let first = try await ask(Self.question(prompt: assignment.prompt, a: assignment.left, b: assignment.right))
            let second = try await ask(Self.question(prompt: assignment.prompt, a: assignment.right, b: assignment.left))
            let verdict: Verdict
            switch (Self.verdict(first), Self.verdict(second)) {
            case (nil, _), (_, nil): verdict = .skip
            case (.a?, .b?): verdict = .left
            case (.b?, .a?): verdict = .right
            case (.tie?, .tie?): verdict = .tie
            default: verdict = .tie   // inconsistent across the swap: a tie, as MT-Bench counts it
            }
            let comment = "as shown: \(Self.verdict(first)?.rawValue ?? "none"); swapped: \(Self.verdict(second)?.rawValue ?? "none")"
                + (verdict == .skip ? "; replies: \(first.prefix(1000)) | \(second.prefix(1000))" : "")
            _ = try store.vote(reviewer, comparison: assignment.comparison, verdict: verdict, comment: String(comment.prefix(ReviewStore.maxComment / 4)))
            verdicts.append(verdict)
        }
        return verdicts
    }
}
