import Foundation
import QuillFormats
import QuillModels
import QuillTokenizers
import Testing
@testable import QuillServer
import QuillTestSupport

/// The default model (SmolLM2-135M, from the cache), loaded once for every test here.
enum Default {
    static let loaded: (any LanguageModel, Tokenizer) = try! ModelLoader.load(QuillCache.defaultModel.path)
    static var model: any LanguageModel { loaded.0 }
    static var tokenizer: Tokenizer { loaded.1 }
}

@Suite(.serialized) struct InferenceEngineTests {
    func greedy(_ maxNewTokens: Int) -> GenerationOptions {
        var o = GenerationOptions()
        o.maxNewTokens = maxNewTokens
        o.sampling = .greedy
        return o
    }

    func run(_ engine: InferenceEngine, _ request: InferenceEngine.Request) async throws -> [InferenceEngine.Summary] {
        var summaries: [Int: InferenceEngine.Summary] = [:]
        var streamed: [Int: String] = [:]
        for await event in try engine.submit(request) {
            switch event {
            case .token(let i, _, let text, _), .text(let i, let text): streamed[i, default: ""] += text
            case .finished(let i, let s): summaries[i] = s
            case .failed(let message): Issue.record("failed: \(message)")
            case .prompt: break
            }
        }
        for (i, s) in summaries { #expect(streamed[i, default: ""] == s.text, "the streamed pieces add up to the text") }
        return (0..<request.count).map { summaries[$0]! }
    }

    /// A prompt scored by the engine (OpenAI's echo with logprobs) gives the log-softmax of the
    /// model's own logits at every prompt position, and max_tokens 0 generates nothing.
    @Test func promptLogprobsAreTheModels() async throws {
        let ids = Default.tokenizer.encode("Shall I compare thee to a summer's day? 床前明月光，疑是地上霜。")
        var cache = Default.model.makeCache(capacity: ids.count)
        let logits = try Default.model.forward(ids, cache: &cache, allLogits: true)
        let vocab = Default.model.vocabularySize
        let expected = (1..<ids.count).map { p in
            logits.withUnsafeBufferPointer { LogSoftmax.value(UnsafeBufferPointer(rebasing: $0[((p - 1) * vocab)..<(p * vocab)]), at: Int(ids[p])) }
        }
        let engine = InferenceEngine(model: Default.model, tokenizer: Default.tokenizer)
        engine.start()
        defer { engine.shutdown() }
        let summary = try await run(engine, .init(promptIds: ids, options: greedy(0), promptLogprobs: 2))[0]
        let scored = try #require(summary.promptLogprobs)
        #expect(summary.tokens.isEmpty)
        #expect(scored.count == ids.count - 1)
        let worst = zip(scored, expected).map { abs(Double($0.logprob) - $1) }.max() ?? 0
        print("prompt log-probabilities: \(scored.count) positions, max |Δ| \(worst) against the model's own logits")
        #expect(worst < 1e-5)
        #expect(scored.allSatisfy { $0.top.count == 2 && $0.top[0].logprob >= $0.top[1].logprob })
    }

    /// Sequences of different lengths decoded together in batches (and a prompt cut into
    /// prefill chunks) give exactly what each gives alone through `Generator`.
    @Test func batchedEqualsAlone() async throws {
        let prompts = ["The capital of France is", "床前明月光，", "def fibonacci(n):", "Once upon a time, in a small village by the sea, there lived"]
        let generator = Generator(model: Default.model, tokenizer: Default.tokenizer)
        let alone = try prompts.map { try generator.generate(prompt: $0, options: greedy(24 + 4 * prompts.firstIndex(of: $0)!)).text }

        let engine = InferenceEngine(model: Default.model, tokenizer: Default.tokenizer, limits: .init(parallel: 4, prefillChunk: 256))
        engine.start()
        defer { engine.shutdown() }
        let together = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, prompt) in prompts.enumerated() {
                group.addTask {
                    let ids = Default.tokenizer.encode(prompt)
                    return (i, try await run(engine, .init(promptIds: ids, options: greedy(24 + 4 * i)))[0].text)
                }
            }
            var out = [String](repeating: "", count: prompts.count)
            for try await (i, text) in group { out[i] = text }
            return out
        }
        for i in prompts.indices {
            #expect(together[i] == alone[i], "prompt \(i): batched \(together[i].debugDescription) vs alone \(alone[i].debugDescription)")
        }
        var waited = 0
        while engine.currentLoad.running > 0 && waited < 200 { try await Task.sleep(for: .milliseconds(10)); waited += 1 }
        #expect(engine.currentLoad.running == 0)
    }

    /// n choices share one prefill; a seed makes each reproducible, and they differ from each other.
    @Test func choicesAndSeeds() async throws {
        let engine = InferenceEngine(model: Default.model, tokenizer: Default.tokenizer, limits: .init(parallel: 4, prefillChunk: 5))
        engine.start()
        defer { engine.shutdown() }
        var options = GenerationOptions()
        options.maxNewTokens = 16
        options.sampling.temperature = 1
        options.sampling.seed = 42
        let ids = Default.tokenizer.encode("Write a short poem about the sea.")
        let first = try await run(engine, .init(promptIds: ids, options: options, count: 3))
        let again = try await run(engine, .init(promptIds: ids, options: options, count: 3))
        #expect(first.map(\.text) == again.map(\.text))
        #expect(Set(first.map(\.text)).count > 1)
        #expect(first.allSatisfy { $0.promptTokens == ids.count && $0.tokens.count <= 16 })
    }

    /// A consumer that goes away frees its slot at once; a full queue refuses at once.
    @Test func cancellationAndQueueLimit() async throws {
        let engine = InferenceEngine(model: Default.model, tokenizer: Default.tokenizer, limits: .init(parallel: 1, maxQueue: 1))
        engine.start()
        defer { engine.shutdown() }
        let ids = Default.tokenizer.encode("Tell me a long story.")
        do {
            var tokens = 0
            for await event in try engine.submit(.init(promptIds: ids, options: greedy(500))) {
                if case .token = event { tokens += 1 }
                if tokens == 3 { break }   // the stream is dropped here
            }
        }
        var waited = 0
        while engine.currentLoad.running > 0 && waited < 200 { try await Task.sleep(for: .milliseconds(10)); waited += 1 }
        #expect(engine.currentLoad.running == 0, "the cancelled request still runs")

        var endless = greedy(200)
        endless.ignoreEOS = true
        let running = try engine.submit(.init(promptIds: ids, options: endless))   // takes the one slot
        try await Task.sleep(for: .milliseconds(50))
        let queued = try engine.submit(.init(promptIds: ids, options: greedy(5)))      // waits
        #expect(throws: InferenceEngine.SubmitError.queueFull(waiting: 1)) { _ = try engine.submit(.init(promptIds: ids, options: greedy(5))) }
        #expect(throws: InferenceEngine.SubmitError.tooLarge(tokens: 10_000 + ids.count, limit: 2048)) {
            _ = try engine.submit(.init(promptIds: ids, options: greedy(10_000)))
        }
        withExtendedLifetime((running, queued)) {}   // both streams stay alive to here
    }
}

@Suite(.serialized) struct HTTPServerTests {
    /// A server on a free port for the length of `body`.
    func withServer(_ configure: (inout ServerOptions) -> Void = { _ in }, _ body: (HTTPTestClient) async throws -> Void) async throws {
        var options = ServerOptions(modelPath: QuillCache.defaultModel.path, modelName: "smollm2")
        options.port = 0
        configure(&options)
        let server = QuillServer(options: options)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run { continuation.yield($0) } }
        defer { task.cancel() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { Issue.record("the server did not start"); return }
        let client = HTTPTestClient(port: port)
        for _ in 0..<600 {
            if try await client.request("GET", "/health").status == 200 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await body(client)
    }

    @Test func generateAndTokens() async throws {
        try await withServer { client in
            let reply = try await client.request("POST", "/generate", body: #"{"prompt": "The capital of France is", "max_new_tokens": 8, "do_sample": false, "details": true}"#)
            #expect(reply.status == 200, "\(reply.text)")
            // the connection was watched for the client leaving, and cannot carry another request: it says so
            #expect(reply.headers["connection"] == "close")
            let texts = reply.json["generated_texts"] as? [String] ?? []
            #expect(texts.count == 1 && texts[0].hasPrefix("The capital of France is") && texts[0].count > 24)
            let details = (reply.json["details"] as? [[String: Any]])?.first
            #expect((details?["generated_tokens"] as? Int ?? 0) > 0 && (details?["tokens"] as? [Any])?.count == details?["generated_tokens"] as? Int)

            // max_length counts the prompt, as in transformers
            let short = try await client.request("POST", "/generate", body: #"{"prompt": "Hello", "max_length": 3, "return_full_text": false, "details": true}"#)
            let generated = ((short.json["details"] as? [[String: Any]])?.first?["generated_tokens"] as? Int) ?? -1
            #expect(short.status == 200 && generated <= 3 - Default.tokenizer.encode("Hello").count)

            let tokens = try await client.request("POST", "/tokenize", body: #"{"text": "你好，世界"}"#).json["tokens"] as? [Int] ?? []
            #expect(tokens.map(Int32.init) == Default.tokenizer.encode("你好，世界"))
            let text = try await client.request("POST", "/detokenize", body: "{\"tokens\": \(tokens), \"skip_special_tokens\": true}").json["text"] as? String
            #expect(text == "你好，世界")
            #expect(try await client.request("GET", "/v1/models").json["data"].map { "\($0)" }?.contains("smollm2") == true)
            let metrics = try await client.request("GET", "/metrics").text
            #expect(metrics.contains("quill_requests_total{route=\"/generate\",status=\"200\"}") && metrics.contains("quill_generated_tokens_total"))
            #expect(try await client.request("GET", "/openapi.json").json["openapi"] as? String == "3.1.0")
        }
    }

    /// Every SSE event of a streamed Chinese chat reply is whole UTF-8, and the pieces add up
    /// to the same reply unstreamed (greedy).
    @Test func chineseStreamIsValidUTF8() async throws {
        try await withServer { client in
            let request = #"{"messages": [{"role": "user", "content": "用中文写一首关于月亮的短诗。"}], "max_tokens": 48, "temperature": 0"#
            let streamed = try await client.request("POST", "/v1/chat/completions", body: request + #", "stream": true, "stream_options": {"include_usage": true}}"#)
            #expect(streamed.status == 200 && streamed.headers["content-type"] == "text/event-stream")
            var content = ""
            let events = streamed.events
            for event in events.dropLast() {
                guard let text = String(validating: event, as: UTF8.self) else { Issue.record("an event is not valid UTF-8: \(event)"); continue }
                let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                let delta = ((json?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
                content += delta ?? ""
            }
            #expect(events.last == Array("[DONE]".utf8))
            let usage = (try JSONSerialization.jsonObject(with: Data(events[events.count - 2])) as? [String: Any])?["usage"] as? [String: Int]
            #expect((usage?["completion_tokens"] ?? 0) > 0)
            let whole = try await client.request("POST", "/v1/chat/completions", body: request + "}")
            let message = ((whole.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
            #expect(message == content && content.unicodeScalars.contains { $0.properties.isIdeographic })
        }
    }

    @Test func errorsInOpenAIShape() async throws {
        try await withServer { client in
            func error(_ path: String, _ body: String) async throws -> (Int, [String: Any]) {
                let reply = try await client.request("POST", path, body: body)
                return (reply.status, reply.json["error"] as? [String: Any] ?? [:])
            }
            let (malformed, e1) = try await error("/v1/completions", #"{"prompt": "hi", "#)
            #expect(malformed == 400 && (e1["message"] as? String ?? "").contains("not valid JSON") && e1["type"] as? String == "invalid_request_error")
            let (wrongType, e2) = try await error("/v1/completions", #"{"prompt": "hi", "max_tokens": "ten"}"#)
            #expect(wrongType == 400 && e2["param"] as? String == "max_tokens")
            let (range, e3) = try await error("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "temperature": 7}"#)
            #expect(range == 400 && e3["param"] as? String == "temperature")
            let (unknown, e4) = try await error("/generate", #"{"prompt": "hi", "max_tokenz": 3}"#)
            #expect(unknown == 400 && e4["param"] as? String == "max_tokenz")
            let (tooLong, e5) = try await error("/v1/completions", "{\"prompt\": \"\(String(repeating: "word ", count: 9000))\"}")
            #expect(tooLong == 400 && e5["code"] as? String == "context_length_exceeded")
            let (model, e6) = try await error("/v1/completions", #"{"model": "gpt-4", "prompt": "hi"}"#)
            #expect(model == 404 && e6["code"] as? String == "model_not_found")
            let (boolean, e7) = try await error("/generate", #"{"prompt": "hi", "max_new_tokens": true}"#)
            #expect(boolean == 400 && e7["param"] as? String == "max_new_tokens")
            let invalidUTF8 = try await client.request("POST", "/generate", bytes: Array(#"{"prompt": ""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8))
            #expect(invalidUTF8.status == 400)
            // SmolLM2's tokenizer adds no BOS: an empty prompt has nothing to continue (llama.cpp refuses it too)
            for (path, body) in [("/generate", #"{"prompt": ""}"#), ("/v1/completions", #"{"prompt": "", "max_tokens": 2}"#),
                                 ("/v1/completions", #"{"prompt": [""], "max_tokens": 2}"#)] {
                let (status, e) = try await error(path, body)
                #expect(status == 400 && e["param"] as? String == "prompt" && e["code"] as? String == "empty_prompt", "\(path) \(body)")
            }
            // fields accepted for OpenAI's clients but unused are still checked against their types
            for (path, body, param) in [("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "user": null}"#, "user"),
                                        ("/v1/completions", #"{"prompt": "hi", "user": 7}"#, "user"),
                                        ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi", "name": 1}]}"#, "messages[0].name"),
                                        ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "store": "yes"}"#, "store"),
                                        ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "metadata": {"a": 1}}"#, "metadata.a"),
                                        ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}"#, "tool_choice")] {
                let (status, e) = try await error(path, body)
                #expect(status == 400 && e["param"] as? String == param, "\(path) \(body)")
            }
            // a body over --max-body-bytes is 413 on every route, with no internal error text
            let huge = "{\"prompt\": \"\(String(repeating: "x", count: 3_000_000))\"}"
            for path in ["/v1/completions", "/generate", "/tokenize", "/v1/chat/completions"] {
                let (status, e) = try await error(path, huge)
                #expect(status == 413 && e["code"] as? String == "body_too_large" && !(e["message"] as? String ?? "").contains("NIO"), "\(path)")
            }
            #expect(try await client.request("GET", "/health").status == 200, "the server still answers")
            #expect(try await client.request("GET", "/nowhere").status == 404)
        }
    }

    /// A truncated model file ends `run` with the loader's error (the CLI exits non-zero with
    /// it) instead of a server that answers 503 for ever.
    @Test func aModelThatFailsToLoadStopsTheServer() async throws {
        let truncated = FileManager.default.temporaryDirectory.appendingPathComponent("quill-truncated-\(UUID()).gguf")
        defer { try? FileManager.default.removeItem(at: truncated) }
        let whole = try Data(contentsOf: URL(fileURLWithPath: QuillCache.defaultModel.path), options: .alwaysMapped)
        try whole.prefix(whole.count / 2).write(to: truncated)
        var options = ServerOptions(modelPath: truncated.path, modelName: "broken")
        options.port = 0
        let server = QuillServer(options: options)
        let outcome = await withTaskGroup(of: String?.self) { group in
            group.addTask {
                do { try await server.run(); return "returned without an error" } catch { return "\(error)" }
            }
            group.addTask { try? await Task.sleep(for: .seconds(60)); return nil }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
        let message = try #require(outcome, "the server was still running after 60 s")
        #expect(message.contains("truncated"), "\(message)")
    }

    @Test func apiKeysAndQueueLimit() async throws {
        try await withServer({ $0.apiKeys = ["sekrit"]; $0.limits = .init(parallel: 1, maxQueue: 0) }) { client in
            #expect(try await client.request("POST", "/generate", body: #"{"prompt": "hi"}"#).status == 401)
            #expect(try await client.request("POST", "/generate", body: #"{"prompt": "hi"}"#, headers: ["Authorization": "Bearer wrong"]).status == 401)
            #expect(try await client.request("GET", "/health").status == 200)
            let auth = ["Authorization": "Bearer sekrit"]
            #expect(try await client.request("POST", "/generate", body: #"{"prompt": "hi", "max_new_tokens": 2}"#, headers: auth).status == 200)
            // one long request holds the only slot; with no queue the next is refused at once
            let long = Task {
                try await client.request("POST", "/generate", body: #"{"prompt": "Count to a thousand:", "max_new_tokens": 300, "do_sample": false, "ignore_eos": true}"#,
                                   headers: auth)
            }
            // until the engine holds it (not a fixed sleep: on a busy machine the request may take a while to arrive)
            // (a `for ... where` loop would go on polling after the condition held, past the long request's end)
            var polls = 0
            while polls < 3000, !(try await client.request("GET", "/metrics", headers: auth).text.contains("quill_running_sequences 1")) {
                polls += 1
                try await Task.sleep(for: .milliseconds(10))
            }
            let refused = try await client.request("POST", "/generate", body: #"{"prompt": "hi"}"#, headers: auth)
            #expect(refused.status == 429 && refused.headers["retry-after"] != nil)
            #expect(try await long.value.status == 200)
            // /metrics takes the API keys when no metrics key is set
            #expect(try await client.request("GET", "/metrics").status == 401)
        }
    }

    /// A scraper's own key opens /metrics and nothing else.
    @Test func metricsKey() async throws {
        try await withServer({ $0.apiKeys = ["sekrit"]; $0.metricsKeys = ["scrape"] }) { (client: HTTPTestClient) async throws in
            #expect(try await client.request("GET", "/metrics").status == 401)
            #expect(try await client.request("GET", "/metrics", headers: ["Authorization": "Bearer sekrit"]).status == 401)
            #expect(try await client.request("GET", "/metrics", headers: ["Authorization": "Bearer scrape"]).status == 200)
            #expect(try await client.request("POST", "/generate", body: #"{"prompt": "hi"}"#, headers: ["Authorization": "Bearer scrape"]).status == 401)
            #expect(try await client.request("GET", "/openapi.json").status == 200)
        }
    }
}

@Suite struct JSONLogTests {
    /// A record is one line of JSON: the fixed fields, then every metadata value as its own
    /// field; quotes, newlines and Chinese in the message survive the round trip.
    @Test func recordIsOneLineOfJSON() throws {
        let line = JSONLogHandler.line(level: .info, label: "quill.serve", message: "POST /generate 200 \"写诗\"\nnext",
                                       source: "QuillServer", metadata: ["hb.request.id": "abc", "http.status": "200", "tags": ["a", "b"]],
                                       date: Date(timeIntervalSince1970: 0))
        #expect(line.last == UInt8(ascii: "\n") && line.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") })
        let record = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Any])
        #expect(record["time"] as? String == "1970-01-01T00:00:00.000Z")
        #expect(record["level"] as? String == "info" && record["logger"] as? String == "quill.serve" && record["source"] as? String == "QuillServer")
        #expect(record["message"] as? String == "POST /generate 200 \"写诗\"\nnext")
        #expect(record["hb.request.id"] as? String == "abc" && record["http.status"] as? String == "200")
        #expect(record["tags"] as? [String] == ["a", "b"])
    }
}
