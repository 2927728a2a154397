import Foundation
import Hummingbird
import QuillModels
import QuillTokenizers

/// `POST /v1/completions` and `/v1/chat/completions` in OpenAI's shapes, streamed or not.
extension QuillServer {
    static let completionFields: Set<String> = [
        "model", "prompt", "suffix", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options", "logprobs", "echo", "stop",
        "presence_penalty", "frequency_penalty", "best_of", "logit_bias", "user", "seed", "top_k", "min_p", "repetition_penalty",
        "ignore_eos",
    ]
    static let chatFields: Set<String> = [
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stream", "stream_options", "stop",
        "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "seed", "response_format", "tools",
        "tool_choice", "parallel_tool_calls", "top_k", "min_p", "repetition_penalty", "store", "metadata", "ignore_eos",
    ]

    func completions(_ request: Request, chat: Bool) async throws -> Response {
        let arrived = Date()
        var request = request
        var f = try await body(&request)
        if !chat { f = f.nullable("logprobs").nullable("suffix") }   // null there means absent, as OpenAI documents
        let b = try host.backend()
        try f.onlyKnown(chat ? Self.chatFields : Self.completionFields)
        try checkModel(f, b)
        try checkAcceptedFields(f, chat: chat)

        // the prompt
        var prompt = "", promptIds: [Int32]
        var morePrompts: [(text: String, ids: [Int32])] = []   // OpenAI's batch of prompts: choices follow prompt by prompt
        var generation = GenerationOptions()
        if chat {
            let messages = try chatMessages(f)
            do { prompt = try b.tokenizer.applyChatTemplate(messages) } catch {
                throw APIError.invalid("messages", "the model's chat template failed on them: \(error)")
            }
            promptIds = b.tokenizer.encode(prompt, addSpecialTokens: false)   // the template wrote its special tokens (Tokenizer.encodeChat)
            generation.stopTokenIds = b.tokenizer.endOfTurnTokenIds
            if let tools = try f.array("tools"), !tools.isEmpty { throw APIError.invalid("tools", "tool calls are not supported") }
            if let format = try f.object("response_format"), format["type"] != .string("text") {
                throw APIError.invalid("response_format", "only {\"type\": \"text\"} is supported")
            }
        } else {
            let prompts = try completionPrompts(f, b)
            (prompt, promptIds) = prompts[0]
            morePrompts = Array(prompts.dropFirst())
            if let suffix = try f.string("suffix"), !suffix.isEmpty { throw APIError.invalid("suffix", "insertion (suffix) is not supported") }
        }

        // how much, and how
        let maxField = chat && f.value("max_completion_tokens") != nil ? "max_completion_tokens" : "max_tokens"
        let defaultMax = chat ? min(options.defaultMaxTokens, max(1, b.contextLength - promptIds.count)) : 16
        generation.maxNewTokens = try f.int(maxField, in: 0...b.contextLength) ?? defaultMax
        for ids in [promptIds] + morePrompts.map(\.ids) { try checkContext(b, promptTokens: ids.count, maxNew: generation.maxNewTokens, param: maxField) }
        generation.sampling = try SamplingFields.read(f, openAI: true, vocabularySize: b.vocabularySize)
        generation.stopStrings = try f.strings("stop", max: 4) ?? []
        generation.ignoreEOS = try f.bool("ignore_eos") ?? false
        let n = try f.int("n", in: 1...16) ?? 1
        if let bestOf = try f.int("best_of", in: 1...16), bestOf != n { throw APIError.invalid("best_of", "only best_of = n is supported") }
        if chat {
            if try f.bool("logprobs") == true { generation.topLogprobs = try f.int("top_logprobs", in: 0...20) ?? 0 }
            else if f.value("top_logprobs") != nil { throw APIError.invalid("top_logprobs", "needs logprobs: true") }
        } else if let k = try f.int("logprobs", in: 0...5) {
            generation.topLogprobs = k
        }
        let top = generation.topLogprobs ?? 0
        let echo = chat ? false : try f.bool("echo") ?? false
        // echo with logprobs scores the prompt too (what evaluation harnesses ask for)
        let promptTop = echo ? generation.topLogprobs : nil
        let stream = try f.bool("stream") ?? false
        let includeUsage = try f.object("stream_options").map { o throws(APIError) -> Bool in
            guard stream else { throw APIError.invalid("stream_options", "only allowed with stream: true") }
            return o["include_usage"] == .bool(true)
        } ?? false

        if stream && !morePrompts.isEmpty { throw APIError.invalid("prompt", "several prompts are answered without stream only") }
        let events = try submit(b, .init(promptIds: promptIds, options: generation, count: n, deadline: arrived + options.timeout,
                                         promptLogprobs: promptTop))
        var moreEvents: [AsyncStream<InferenceEngine.Event>] = []
        for more in morePrompts {
            moreEvents.append(try submit(b, .init(promptIds: more.ids, options: generation, count: n, deadline: arrived + options.timeout,
                                                  promptLogprobs: promptTop)))
        }
        metrics.promptTokens.increment(by: Int64(promptIds.count + morePrompts.reduce(0) { $0 + $1.ids.count }))
        let id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        let created = Int(arrived.timeIntervalSince1970)
        let head: [String: JSONValue] = ["id": .string(id), "created": .int(created), "model": .string(b.name),
                                         "object": .string(chat ? (stream ? "chat.completion.chunk" : "chat.completion") : "text_completion")]
        let tokenizer = b.tokenizer

        if !stream {
            let answers = try await cancelledIfClientLeaves(request) {
                var all: [[InferenceEngine.Summary]] = []
                for stream in [events] + moreEvents { all.append(try await collect(stream, count: n, arrived: arrived)) }
                return all
            }
            let prompts = [(prompt, promptIds)] + morePrompts.map { ($0.text, $0.ids) }
            let summaries = answers.flatMap { $0 }
            var choices: [JSONValue] = []
            for (index, s) in summaries.enumerated() {
                let (prompt, promptIds) = prompts[index / n]
                var choice: [String: JSONValue] = ["index": .int(index), "finish_reason": Self.finishReason(s.finishReason)]
                let logprobs = generation.topLogprobs == nil ? JSONValue.null
                    : chat ? ["content": .array(zip(s.tokens, s.logprobs).map { Self.chatLogprob(tokenizer, $1, top: top) })]
                    : Self.completionLogprobs(tokenizer, Array(zip(s.tokens, s.logprobs).map(\.1)), top: top, offset: echo ? prompt.count : 0,
                                              prompt: s.promptLogprobs.map { (promptIds, $0) })
                choice["logprobs"] = logprobs
                if chat { choice["message"] = ["role": "assistant", "content": .string(s.text)] }
                else { choice["text"] = .string((echo ? prompt : "") + s.text) }
                choices.append(.object(choice))
            }
            var body = head
            body["choices"] = .array(choices)
            body["usage"] = Self.usage(prompt: prompts.reduce(0) { $0 + $1.1.count }, completion: summaries.reduce(0) { $0 + $1.tokens.count })
            return json(.object(body)).closingConnection()
        }

        // streamed: chat opens each choice with its role; text waits until it is whole UTF-8, and
        // the log-probabilities of tokens whose text was held back ride on the next chunk
        let state = StreamState(choices: n, offset: echo ? prompt.count : 0)
        let promptTokens = promptIds.count
        @Sendable func chunk(_ index: Int, text: String?, logprobs: JSONValue, finish: JSONValue) -> JSONValue {
            var choice: [String: JSONValue] = ["index": .int(index), "logprobs": logprobs, "finish_reason": finish]
            if chat { choice["delta"] = text.map { ["content": .string($0)] } ?? [:] } else { choice["text"] = .string(text ?? "") }
            var body = head
            body["choices"] = [.object(choice)]
            if includeUsage { body["usage"] = .null }
            return .object(body)
        }
        var start: [JSONValue] = []
        if chat {
            for index in 0..<n {
                var body = head
                body["choices"] = [["index": .int(index), "delta": ["role": "assistant", "content": ""], "logprobs": nil, "finish_reason": nil]]
                if includeUsage { body["usage"] = .null }
                start.append(.object(body))
            }
        }
        // the echoed prompt goes first; with logprobs it waits for the prompt's scores
        if echo && promptTop == nil { for index in 0..<n { start.append(chunk(index, text: prompt, logprobs: nil, finish: nil)) } }
        let (promptText, promptTokenIds) = (prompt, promptIds)
        return sse(events: events, arrived: arrived, start: start, render: { event in
            switch event {
            case .prompt(let scored):
                let logprobs = Self.completionLogprobs(tokenizer, [], top: top, offset: 0, prompt: (promptTokenIds, scored))
                return (0..<n).map { chunk($0, text: promptText, logprobs: logprobs, finish: nil) }
            case .token(let index, _, let text, let logprob):
                if let logprob { state.pending[index].append(logprob) }
                guard !text.isEmpty else { return [] }
                return [chunk(index, text: text, logprobs: state.take(index, tokenizer, chat: chat, top: top), finish: nil)]
            case .text(let index, let text):
                return [chunk(index, text: text, logprobs: state.take(index, tokenizer, chat: chat, top: top), finish: nil)]
            case .finished(let index, let s):
                state.completionTokens += s.tokens.count
                var out: [JSONValue] = []
                if !state.pending[index].isEmpty {
                    out.append(chunk(index, text: "", logprobs: state.take(index, tokenizer, chat: chat, top: top), finish: nil))
                }
                out.append(chunk(index, text: nil, logprobs: nil, finish: Self.finishReason(s.finishReason)))
                return out
            case .failed: return []
            }
        }, end: {
            guard includeUsage else { return [] }
            var body = head
            body["choices"] = []
            body["usage"] = Self.usage(prompt: promptTokens, completion: state.completionTokens)
            return [.object(body)]
        }, done: true)
    }

    /// What a stream remembers between events (touched by one writer at a time).
    final class StreamState: @unchecked Sendable {
        var pending: [[TokenLogprob]]
        var completionTokens = 0
        var offsets: [Int]
        init(choices: Int, offset: Int) {
            pending = Array(repeating: [], count: choices)
            offsets = Array(repeating: offset, count: choices)
        }
        /// The log-probabilities waiting for choice `index`, in the API's shape, and forgets them.
        func take(_ index: Int, _ tokenizer: Tokenizer, chat: Bool, top: Int) -> JSONValue {
            let lps = pending[index]
            guard !lps.isEmpty else { return .null }
            pending[index] = []
            if chat { return ["content": .array(lps.map { QuillServer.chatLogprob(tokenizer, $0, top: top) })] }
            let json = QuillServer.completionLogprobs(tokenizer, lps, top: top, offset: offsets[index])
            offsets[index] += lps.reduce(0) { $0 + tokenizer.decode([$1.id]).count }
            return json
        }
    }

    /// Fields OpenAI's clients send that change nothing here are still checked against
    /// their documented types: a malformed request is refused, not quietly served.
    func checkAcceptedFields(_ f: JSONFields, chat: Bool) throws(APIError) {
        _ = try f.string("user")
        guard chat else { return }
        if let choice = try f.string("tool_choice"), !["none", "auto"].contains(choice) {
            throw .invalid("tool_choice", "expected none or auto (tool calls are not supported)")
        }
        _ = try f.bool("parallel_tool_calls")
        _ = try f.bool("store")
        if let metadata = try f.object("metadata"), let key = metadata.keys.sorted().first(where: { metadata[$0]?.stringValue == nil }) {
            throw .invalid("metadata.\(key)", "expected a string")
        }
    }

    /// Chat messages: role and content (a string, or text parts).
    func chatMessages(_ f: JSONFields) throws(APIError) -> [ChatMessage] {
        guard let array = try f.array("messages"), !array.isEmpty else { throw APIError.invalid("messages", "required: a non-empty array of messages") }
        var messages: [ChatMessage] = []
        for (i, value) in array.enumerated() {
            guard case .object(let m) = value else { throw .invalid("messages[\(i)]", "expected an object with role and content") }
            guard let role = m["role"]?.stringValue, ["system", "developer", "user", "assistant"].contains(role) else {
                throw .invalid("messages[\(i)].role", "expected system, developer, user or assistant")
            }
            if let name = m["name"], name.stringValue == nil { throw .invalid("messages[\(i)].name", "expected a string, got \(name.kind)") }
            var content = ""
            switch m["content"] {
            case .string(let s)?: content = s
            case .array(let parts)?:
                for (k, part) in parts.enumerated() {
                    guard part["type"] == .string("text"), let text = part["text"]?.stringValue else {
                        throw .invalid("messages[\(i)].content[\(k)]", "only text parts ({\"type\": \"text\", \"text\": ...}) are supported")
                    }
                    content += text
                }
            case .null?, nil: content = ""
            default: throw .invalid("messages[\(i)].content", "expected a string or an array of text parts")
            }
            messages.append(ChatMessage(role: role == "developer" ? "system" : role, content: content))
        }
        return messages
    }

    /// A completion's prompts: a string or token ids, or an array of up to 64 of either (OpenAI's batch).
    func completionPrompts(_ f: JSONFields, _ b: Backend) throws(APIError) -> [(text: String, ids: [Int32])] {
        func tokens(_ a: [JSONValue]) throws(APIError) -> [Int32]? {
            guard !a.isEmpty, a.allSatisfy({ if case .int = $0 { true } else { false } }) else { return nil }
            var ids: [Int32] = []
            for case .int(let id) in a {
                guard id >= 0 && id < b.vocabularySize else { throw .invalid("prompt", "token id \(id) is not below \(b.vocabularySize)") }
                ids.append(Int32(id))
            }
            return ids
        }
        let expected = "expected a string, token ids, or an array of 1 to 64 of either"
        switch f.value("prompt") {
        case .string(let s)?: return [(s, b.tokenizer.encode(s))]
        case .array(let a)? where !a.isEmpty:
            if let ids = try tokens(a) { return [(b.tokenizer.decode(ids), ids)] }
            guard a.count <= 64 else { throw .invalid("prompt", expected) }
            var prompts: [(text: String, ids: [Int32])] = []
            for item in a {
                switch item {
                case .string(let s): prompts.append((s, b.tokenizer.encode(s)))
                case .array(let inner): guard let ids = try tokens(inner) else { throw .invalid("prompt", expected) }
                    prompts.append((b.tokenizer.decode(ids), ids))
                default: throw .invalid("prompt", expected)
                }
            }
            return prompts
        case nil: throw .invalid("prompt", "required: a string")
        default: throw .invalid("prompt", expected)
        }
    }

    static func finishReason(_ reason: FinishReason) -> JSONValue {
        switch reason {
        case .eos, .stop: "stop"
        case .length, .timeout, .cancelled: "length"
        }
    }

    static func usage(prompt: Int, completion: Int) -> JSONValue {
        ["prompt_tokens": .int(prompt), "completion_tokens": .int(completion), "total_tokens": .int(prompt + completion)]
    }

    /// Chat's `logprobs.content` entry: token text, its UTF-8 bytes, log-probability, top alternatives.
    static func chatLogprob(_ tokenizer: Tokenizer, _ lp: TokenLogprob, top: Int) -> JSONValue {
        func entry(_ id: Int32, _ logprob: Float) -> [String: JSONValue] {
            let bytes = tokenizer.decodeBytes([id], first: false)
            return ["token": .string(String(decoding: bytes, as: UTF8.self)), "logprob": .double(Double(logprob)),
                    "bytes": .array(bytes.map { .int(Int($0)) })]
        }
        var e = entry(lp.id, lp.logprob)
        e["top_logprobs"] = .array(lp.top.prefix(top).map { .object(entry($0.id, $0.logprob)) })
        return .object(e)
    }

    /// Completions' `logprobs`: tokens, token_logprobs, top_logprobs (token → logprob) and text_offset.
    /// With `prompt` (echo), the prompt's tokens come first, the first of them with `null`
    /// log-probability and alternatives, as OpenAI's legacy API gives them.
    static func completionLogprobs(_ tokenizer: Tokenizer, _ lps: [TokenLogprob], top: Int, offset: Int,
                                   prompt: (ids: [Int32], scored: [TokenLogprob])? = nil) -> JSONValue {
        var tokens: [JSONValue] = [], logprobs: [JSONValue] = [], tops: [JSONValue] = [], offsets: [JSONValue] = []
        var at = 0
        if let prompt {
            for (i, id) in prompt.ids.enumerated() {
                let text = tokenizer.decode([id])
                tokens.append(.string(text))
                offsets.append(.int(at))
                at += text.count
                guard i > 0, i - 1 < prompt.scored.count else { logprobs.append(.null); tops.append(.null); continue }
                let lp = prompt.scored[i - 1]
                logprobs.append(.double(Double(lp.logprob)))
                var alternatives: [String: JSONValue] = [:]
                for t in lp.top.prefix(top) { alternatives[tokenizer.decode([t.id])] = alternatives[tokenizer.decode([t.id])] ?? .double(Double(t.logprob)) }
                tops.append(.object(alternatives))
            }
        }
        at = max(at, offset)
        for lp in lps {
            let text = tokenizer.decode([lp.id])
            tokens.append(.string(text))
            logprobs.append(.double(Double(lp.logprob)))
            var alternatives: [String: JSONValue] = [:]
            for t in lp.top.prefix(top) { alternatives[tokenizer.decode([t.id])] = alternatives[tokenizer.decode([t.id])] ?? .double(Double(t.logprob)) }
            tops.append(.object(alternatives))
            offsets.append(.int(at))
            at += text.count
        }
        return ["tokens": .array(tokens), "token_logprobs": .array(logprobs), "top_logprobs": .array(tops), "text_offset": .array(offsets)]
    }
}
