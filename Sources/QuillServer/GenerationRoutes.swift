import Foundation
import Hummingbird
import QuillModels
import QuillTokenizers

/// The sampling fields both APIs share, read and range-checked (each bad one a 400 naming it).
struct SamplingFields {
    /// OpenAI's ranges and defaults (temperature 1, top_p 1, no top-k / min-p) or ours.
    static func read(_ f: JSONFields, openAI: Bool, vocabularySize: Int) throws(APIError) -> SamplingParameters {
        var p = SamplingParameters()
        if openAI { p.temperature = 1; p.topK = 0; p.topP = 1; p.minP = 0 }
        if let t = try f.number("temperature", in: 0...(openAI ? 2 : 100)) { p.temperature = Float(t) }
        if try f.bool("do_sample") == false { p.temperature = 0 }
        if let k = try f.int("top_k", in: 0...vocabularySize) { p.topK = k }
        if let v = try f.number("top_p", in: 0...1) { p.topP = v > 0 ? Float(v) : 1e-6 }
        if let v = try f.number("min_p", in: 0...1) { p.minP = Float(v) }
        if let v = try f.number("repetition_penalty", in: 0.01...100) { p.repetitionPenalty = Float(v) }
        if let v = try f.number("presence_penalty", in: -2...2) { p.presencePenalty = Float(v) }
        if let v = try f.number("frequency_penalty", in: -2...2) { p.frequencyPenalty = Float(v) }
        if let seed = try f.int("seed", in: 0...999_999_999_999_999) { p.seed = UInt64(seed) }
        if let bias = try f.object("logit_bias") {
            for (key, value) in bias {
                guard let id = Int32(key), id >= 0, Int(id) < vocabularySize else {
                    throw .invalid("logit_bias", "key \"\(key)\" is not a token id below \(vocabularySize)")
                }
                let number: Double? = switch value { case .int(let i): Double(i); case .double(let d): d; default: nil }
                guard let number, (-100...100).contains(number) else { throw .invalid("logit_bias", "the bias of \(key) must be a number in -100...100") }
                p.logitBias[id] = Float(number)
            }
        }
        return p
    }
}

extension QuillServer {
    /// A request's `model`, when it names one, must be the model this server runs (else 404).
    func checkModel(_ f: JSONFields, _ b: Backend) throws(APIError) {
        if let model = try f.string("model"), model != b.name {
            throw APIError(.notFound, "the model \"\(model)\" does not exist; this server has \"\(b.name)\"", param: "model", code: "model_not_found")
        }
    }

    // MARK: /tokenize, /detokenize

    func tokenize(_ request: Request) async throws -> Response {
        var request = request
        let f = try await body(&request)
        let b = try host.backend()
        try f.onlyKnown(["text", "prompt", "add_special_tokens", "model"])
        try checkModel(f, b)
        guard let text = try f.string("text") ?? f.string("prompt") else { throw APIError.invalid("text", "required: the text to tokenize") }
        let ids = b.tokenizer.encode(text, addSpecialTokens: try f.bool("add_special_tokens") ?? true)
        let pieces: [JSONValue] = ids.map { .string(b.tokenizer.token(for: $0) ?? "") }
        return json(["tokens": .array(ids.map { .int(Int($0)) }), "pieces": .array(pieces), "count": .int(ids.count)])
    }

    /// vLLM's `/tokenizer_info`: special tokens by text, the chat template, whether BOS is added.
    func tokenizerInfo() throws -> Response {
        let b = try host.backend(), t = b.tokenizer
        func text(_ id: Int32?) -> JSONValue { id.flatMap { t.token(for: $0) }.map { .string($0) } ?? .null }
        let addsBos = t.bosTokenId.map { t.encode("", addSpecialTokens: true).first == $0 } ?? false
        return json(["bos_token": text(t.bosTokenId), "eos_token": text(t.eosTokenId), "pad_token": text(t.padTokenId),
                     "chat_template": t.chatTemplate.map { .string($0) } ?? .null, "add_bos_token": .bool(addsBos),
                     "model_max_length": .int(b.contextLength)])
    }

    func detokenize(_ request: Request) async throws -> Response {
        var request = request
        let f = try await body(&request)
        let b = try host.backend()
        try f.onlyKnown(["tokens", "skip_special_tokens", "model"])
        try checkModel(f, b)
        guard let array = try f.array("tokens") else { throw APIError.invalid("tokens", "required: an array of token ids") }
        var ids: [Int32] = []
        for (i, v) in array.enumerated() {
            guard case .int(let id) = v, id >= 0, id < b.vocabularySize else {
                throw APIError.invalid("tokens", "entry \(i) is not a token id in 0..<\(b.vocabularySize)")
            }
            ids.append(Int32(id))
        }
        let text = b.tokenizer.decode(ids, skipSpecialTokens: try f.bool("skip_special_tokens") ?? false)
        return json(["text": .string(text), "prompt": .string(text)])
    }

    // MARK: /generate, /generate_stream

    /// transformers' shape: `max_length` counts prompt and continuation (default 20, as there),
    /// `max_new_tokens` only the continuation; `num_return_sequences` continuations.
    func generate(_ request: Request, stream: Bool) async throws -> Response {
        let arrived = Date()
        var request = request
        let f = try await body(&request)
        let b = try host.backend()
        try f.onlyKnown(["prompt", "max_length", "max_new_tokens", "num_return_sequences", "temperature", "do_sample", "top_k",
                         "top_p", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty", "logit_bias", "stop", "seed",
                         "return_full_text", "details", "top_n_tokens", "model", "ignore_eos"])
        try checkModel(f, b)
        guard let prompt = try f.string("prompt") else { throw APIError.invalid("prompt", "required: the text to continue") }
        let ids = b.tokenizer.encode(prompt)
        var generation = GenerationOptions()
        generation.sampling = try SamplingFields.read(f, openAI: false, vocabularySize: b.vocabularySize)
        generation.stopStrings = try f.strings("stop", max: 16) ?? []
        generation.ignoreEOS = try f.bool("ignore_eos") ?? false
        let topN = try f.int("top_n_tokens", in: 0...20)
        let details = try f.bool("details") ?? false
        if details || topN != nil { generation.topLogprobs = topN ?? 0 }
        if let maxNew = try f.int("max_new_tokens", in: 0...b.contextLength) {
            generation.maxNewTokens = maxNew
        } else {
            let maxLength = try f.int("max_length", in: 1...b.contextLength) ?? max(20, ids.count + 1)
            guard maxLength > ids.count else {
                throw APIError.invalid("max_length", "\(maxLength) leaves no room: the prompt alone is \(ids.count) tokens (max_length counts both)")
            }
            generation.maxNewTokens = maxLength - ids.count
        }
        try checkContext(b, promptTokens: ids.count, maxNew: generation.maxNewTokens,
                         param: f.value("max_new_tokens") != nil ? "max_new_tokens" : "max_length")
        let n = try f.int("num_return_sequences", in: 1...16) ?? 1
        let fullText = try f.bool("return_full_text") ?? true
        let events = try submit(b, .init(promptIds: ids, options: generation, count: n, deadline: arrived + options.timeout))
        metrics.promptTokens.increment(by: Int64(ids.count))

        @Sendable func detailsJSON(_ s: InferenceEngine.Summary) -> JSONValue {
            var d: [String: JSONValue] = [
                "finish_reason": .string(s.finishReason.rawValue), "generated_tokens": .int(s.tokens.count), "prompt_tokens": .int(s.promptTokens),
                "timings": ["queue_ms": .double(s.queueSeconds * 1000), "prefill_ms": .double(s.prefillSeconds * 1000),
                            "generation_ms": .double(s.generationSeconds * 1000),
                            "tokens_per_second": .double(s.generationSeconds > 0 ? Double(s.tokens.count) / s.generationSeconds : 0)]]
            if details {
                d["tokens"] = .array(s.tokens.indices.map { i in
                    tokenJSON(b.tokenizer, id: s.tokens[i], logprob: i < s.logprobs.count ? s.logprobs[i] : nil, top: topN ?? 0)
                })
            }
            return .object(d)
        }

        if !stream {
            let summaries = try await cancelledIfClientLeaves(request) { try await collect(events, count: n, arrived: arrived) }
            var body: [String: JSONValue] = ["generated_texts": .array(summaries.map { .string((fullText ? prompt : "") + $0.text) })]
            if details { body["details"] = .array(summaries.map(detailsJSON)) }
            return json(.object(body)).closingConnection()
        }
        return sse(events: events, arrived: arrived) { event in
            switch event {
            case .token(let index, let id, let text, let logprob):
                var token = tokenJSON(b.tokenizer, id: id, logprob: logprob, top: topN ?? 0)
                if case .object(var o) = token { o["text"] = .string(text); token = .object(o) }
                return [["index": .int(index), "token": token, "generated_text": nil, "details": nil]]
            case .text(let index, let text):
                return [["index": .int(index), "token": ["id": nil, "text": .string(text), "special": false], "generated_text": nil, "details": nil]]
            case .finished(let index, let s):
                return [["index": .int(index), "token": nil, "generated_text": .string((fullText ? prompt : "") + s.text), "details": detailsJSON(s)]]
            case .failed, .prompt: return []
            }
        } end: { [] }
    }

    /// A prompt plus new tokens that does not fit the context is a 400 naming the field.
    func checkContext(_ b: Backend, promptTokens: Int, maxNew: Int, param: String) throws(APIError) {
        if promptTokens >= b.contextLength {
            throw APIError(.badRequest, "the prompt is \(promptTokens) tokens; the model's context is \(b.contextLength)", param: "prompt",
                           code: "context_length_exceeded")
        }
        if promptTokens + maxNew > b.contextLength {
            throw APIError(.badRequest, "the prompt (\(promptTokens) tokens) plus \(param) (\(maxNew)) exceeds the model's context of \(b.contextLength) tokens",
                           param: param, code: "context_length_exceeded")
        }
    }

    /// One token as the APIs show it: id, text, special, and its log-probability with the top alternatives.
    func tokenJSON(_ tokenizer: Tokenizer, id: Int32, logprob: TokenLogprob?, top: Int) -> JSONValue {
        var o: [String: JSONValue] = ["id": .int(Int(id)), "text": .string(tokenizer.decode([id])), "special": .bool(tokenizer.isSpecial(id))]
        if let logprob {
            o["logprob"] = .double(Double(logprob.logprob))
            if top > 0 {
                o["top_tokens"] = .array(logprob.top.prefix(top).map {
                    ["id": .int(Int($0.id)), "text": .string(tokenizer.decode([$0.id])), "logprob": .double(Double($0.logprob))]
                })
            }
        }
        return .object(o)
    }

    /// Runs `work`, cancelled (its slots freed) if the client closes its connection first.
    /// Hummingbird notices that by reading on from the request's body into the connection, which
    /// then cannot carry another request: the response, an error's too, says `Connection: close`,
    /// so that a keep-alive client opens a new connection instead of writing into a closed one.
    func cancelledIfClientLeaves<Value: Sendable>(_ request: Request, _ work: () async throws -> Value) async throws -> Value {
        do { return try await request.body.consumeWithCancellationOnInboundClose { _ in try await work() } }
        catch var error as APIError { error.closesConnection = true; throw error }
    }

    /// Waits for every choice to finish (cancelled when the client goes away); a model failure is a 500.
    func collect(_ events: AsyncStream<InferenceEngine.Event>, count: Int, arrived: Date) async throws -> [InferenceEngine.Summary] {
        var summaries = [InferenceEngine.Summary?](repeating: nil, count: count)
        var first: Date?
        for await event in events {
            switch event {
            case .token, .text: if first == nil { first = Date() }
            case .prompt: break
            case .finished(let index, let summary):
                summaries[index] = summary
                metrics.generation(summary, firstTokenAfter: (first ?? Date()).timeIntervalSince(arrived))
            case .failed(let message): throw APIError(.internalServerError, "generation failed: \(message)")
            }
        }
        try Task.checkCancellation()
        guard summaries.allSatisfy({ $0 != nil }) else {
            throw APIError(.serviceUnavailable, "the server shut down before the request finished", code: "shutting_down")
        }
        return summaries.map { $0! }
    }

    /// A server-sent-event response: `render` turns each engine event into `data:` payloads,
    /// `end` adds the last ones. Writing stops, and the request is cancelled (its slot freed),
    /// as soon as the client goes away.
    func sse(events: AsyncStream<InferenceEngine.Event>, arrived: Date, start: [JSONValue] = [],
             render: @escaping @Sendable (InferenceEngine.Event) -> [JSONValue], end: @escaping @Sendable () -> [JSONValue],
             done: Bool = false) -> Response {
        let metrics = self.metrics
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: .init { writer in
            // a write to a client that went away throws: the stream is dropped, which cancels the request
            func send(_ payload: JSONValue) async throws {
                try await writer.write(ByteBuffer(string: "data: " + String(decoding: payload.data, as: UTF8.self) + "\n\n"))
            }
            var first: Date?
            for payload in start { try await send(payload) }
            for await event in events {
                if case .failed(let message) = event {
                    try await send(APIError(.internalServerError, "generation failed: \(message)").json)
                    break
                }
                if case .finished(_, let summary) = event { metrics.generation(summary, firstTokenAfter: (first ?? Date()).timeIntervalSince(arrived)) }
                if first == nil, case .token = event { first = Date() }
                for payload in render(event) { try await send(payload) }
            }
            for payload in end() { try await send(payload) }
            if done { try await writer.write(ByteBuffer(string: "data: [DONE]\n\n")) }
            try await writer.finish(nil)
        })
    }
}
