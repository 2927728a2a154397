import Foundation

/// `GET /openapi.json`: OpenAPI 3.1 for every route, request and response the server has,
/// kept next to the handlers' field checks (what a schema calls valid, the handler accepts,
/// within the loaded model's own limits: its context and vocabulary).
enum OpenAPIDocument {
    static let json: Data = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(document)) ?? Data()
    }()

    // MARK: schema builders

    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }
    static func object(_ properties: [String: JSONValue], required: [String] = [], closed: Bool = true, _ description: String? = nil) -> JSONValue {
        var o: [String: JSONValue] = ["type": "object", "properties": .object(properties)]
        if !required.isEmpty { o["required"] = .array(required.map { .string($0) }) }
        if closed { o["additionalProperties"] = false }
        if let description { o["description"] = .string(description) }
        return .object(o)
    }
    static func array(_ items: JSONValue, max: Int? = nil, min: Int? = nil) -> JSONValue {
        var o: [String: JSONValue] = ["type": "array", "items": items]
        if let max { o["maxItems"] = .int(max) }
        if let min { o["minItems"] = .int(min) }
        return .object(o)
    }
    static func string(_ description: String? = nil) -> JSONValue {
        description.map { ["type": "string", "description": .string($0)] } ?? ["type": "string"]
    }
    static func integer(_ min: Int? = nil, _ max: Int? = nil, _ description: String? = nil) -> JSONValue {
        var o: [String: JSONValue] = ["type": "integer"]
        if let min { o["minimum"] = .int(min) }
        if let max { o["maximum"] = .int(max) }
        if let description { o["description"] = .string(description) }
        return .object(o)
    }
    static func number(_ min: Double, _ max: Double, _ description: String? = nil) -> JSONValue {
        var o: [String: JSONValue] = ["type": "number", "minimum": .double(min), "maximum": .double(max)]
        if let description { o["description"] = .string(description) }
        return .object(o)
    }
    static func nullable(_ schema: JSONValue) -> JSONValue { ["oneOf": [schema, ["type": "null"]]] }
    static let boolean: JSONValue = ["type": "boolean"]

    static func jsonBody(_ schema: JSONValue) -> JSONValue { ["required": true, "content": ["application/json": ["schema": schema]]] }
    static func response(_ description: String, _ content: [String: JSONValue]) -> JSONValue {
        ["description": .string(description), "content": .object(content.mapValues { ["schema": $0] })]
    }
    /// One server-sent event (as a client parses it); `data` holds a JSON object, or `[DONE]` at
    /// the end of an OpenAI stream.
    static let eventStream: JSONValue = object(["data": string("A JSON object (or [DONE] closing an OpenAI stream)."), "event": string(),
                                                "id": string(), "retry": integer(0)], required: ["data"],
                                               "A server-sent event: `data: {json}` followed by a blank line.")
    static let errorResponse: JSONValue = response("An error in OpenAI's shape.", ["application/json": ref("Error")])

    /// The error statuses every POST route may answer.
    static func errors() -> [String: JSONValue] {
        ["400": errorResponse, "401": errorResponse, "404": errorResponse, "413": errorResponse, "429": errorResponse,
         "500": errorResponse, "503": errorResponse]
    }
    static func post(_ summary: String, _ request: JSONValue, _ ok: JSONValue, tag: String) -> JSONValue {
        var responses = errors()
        responses["200"] = ok
        return ["post": ["summary": .string(summary), "tags": [.string(tag)], "requestBody": jsonBody(request), "responses": .object(responses)]]
    }
    static func get(_ summary: String, _ responses: [String: JSONValue], tag: String, parameters: [JSONValue] = []) -> JSONValue {
        var op: [String: JSONValue] = ["summary": .string(summary), "tags": [.string(tag)], "responses": .object(responses)]
        if !parameters.isEmpty { op["parameters"] = .array(parameters) }
        return ["get": .object(op)]
    }

    // MARK: shared fields

    static let seed = integer(0, 999_999_999_999_999, "Fixed seed: the same request gives the same text.")
    static let logitBias: JSONValue = ["type": "object", "propertyNames": ["pattern": "^[0-9]+$"], "additionalProperties": number(-100, 100),
                                       "description": "Token id (as a string) → bias added to its logit."]
    static func stop(_ max: Int) -> JSONValue {
        ["oneOf": [string(), array(string(), max: max)], "description": "Text that ends generation (not included)."]
    }
    static let samplingExtensions: [String: JSONValue] = [
        "top_k": integer(0, nil, "Keep the k most likely tokens (0: off; at most the vocabulary size)."),
        "min_p": number(0, 1, "Drop tokens less likely than min_p times the most likely one."),
        "repetition_penalty": number(0.01, 100, "Divide the logits of tokens already seen (1: off)."),
        "ignore_eos": ["type": "boolean", "description": "Generate past the end-of-sequence token (for benchmarks)."],
    ]
    static let usage = object(["prompt_tokens": integer(0), "completion_tokens": integer(0), "total_tokens": integer(0)],
                              required: ["prompt_tokens", "completion_tokens", "total_tokens"])
    static let finishReason: JSONValue = ["type": "string", "enum": ["stop", "length"]]
    static let streamOptions = object(["include_usage": boolean], closed: false)

    // MARK: the document

    static var document: JSONValue {
        var generate: [String: JSONValue] = [
            "prompt": string("The text to continue."),
            "max_length": integer(1, nil, "Tokens of prompt plus continuation, as in transformers (default 20)."),
            "max_new_tokens": integer(0, nil, "Tokens to generate (instead of max_length)."),
            "num_return_sequences": integer(1, 16),
            "temperature": number(0, 100, "0: greedy."), "do_sample": boolean,
            "top_p": number(0, 1), "presence_penalty": number(-2, 2), "frequency_penalty": number(-2, 2),
            "logit_bias": logitBias, "stop": stop(16), "seed": seed,
            "return_full_text": ["type": "boolean", "description": "Prompt + continuation (default, as transformers' pipeline) or the continuation only."],
            "details": ["type": "boolean", "description": "Token ids, log-probabilities, finish reasons and timings."],
            "top_n_tokens": integer(0, 20, "With details: this many most likely alternatives per token."),
            "model": string(),
        ]
        generate.merge(samplingExtensions) { a, _ in a }
        var completion: [String: JSONValue] = [
            "model": string("The id /v1/models lists."),
            "prompt": ["oneOf": [string(), array(integer(0), min: 1), array(["oneOf": [string(), array(integer(0), min: 1)]], max: 64, min: 1)],
                       "description": "Text or token ids, or a batch of up to 64 of either (choices follow prompt by prompt; not with stream)."],
            "suffix": nullable(["type": "string", "maxLength": 0]),
            "max_tokens": integer(0, nil, "Default 16."), "temperature": number(0, 2), "top_p": number(0, 1), "n": integer(1, 16),
            "stream": boolean, "stream_options": streamOptions, "logprobs": nullable(integer(0, 5)),
            "echo": ["type": "boolean", "description": "Return the prompt before the completion; with logprobs, the prompt's tokens are scored too (the first with null)."], "stop": stop(4),
            "presence_penalty": number(-2, 2), "frequency_penalty": number(-2, 2), "best_of": integer(1, 16), "logit_bias": logitBias,
            "user": string(), "seed": seed,
        ]
        completion.merge(samplingExtensions) { a, _ in a }
        let message = object([
            "role": ["type": "string", "enum": ["system", "developer", "user", "assistant"]],
            "content": ["oneOf": [string(), array(object(["type": ["type": "string", "enum": ["text"]], "text": string()], required: ["type", "text"])),
                                  ["type": "null"]]],
            "name": string(),
        ], required: ["role"], closed: false)
        var chat: [String: JSONValue] = [
            "model": string("The id /v1/models lists."), "messages": array(message, min: 1),
            "max_tokens": integer(0), "max_completion_tokens": integer(0, nil, "Default: --default-max-tokens (512)."),
            "temperature": number(0, 2), "top_p": number(0, 1), "n": integer(1, 16), "stream": boolean, "stream_options": streamOptions,
            "stop": stop(4), "presence_penalty": number(-2, 2), "frequency_penalty": number(-2, 2), "logit_bias": logitBias,
            "logprobs": boolean, "top_logprobs": integer(0, 20, "Needs logprobs: true."), "user": string(), "seed": seed,
            "response_format": object(["type": ["type": "string", "enum": ["text"]]], required: ["type"]),
            "tools": array(["type": "object"], max: 0), "tool_choice": ["type": "string", "enum": ["none", "auto"]], "parallel_tool_calls": boolean,
            "store": boolean, "metadata": ["type": "object", "additionalProperties": string()],
        ]
        chat.merge(samplingExtensions) { a, _ in a }

        let topEntry = object(["token": string(), "logprob": ["type": "number"], "bytes": array(integer(0, 255))], required: ["token", "logprob", "bytes"])
        var chatLogprob = topEntry
        if case .object(var o) = chatLogprob, case .object(var p) = o["properties"]! {
            p["top_logprobs"] = array(topEntry)
            o["properties"] = .object(p)
            o["required"] = ["token", "logprob", "bytes", "top_logprobs"]
            chatLogprob = .object(o)
        }
        let completionLogprobs = nullable(object([
            "tokens": array(string()), "token_logprobs": array(["type": ["number", "null"]]),
            "top_logprobs": array(["type": ["object", "null"], "additionalProperties": ["type": "number"]]), "text_offset": array(integer(0)),
        ], required: ["tokens", "token_logprobs", "top_logprobs", "text_offset"]))
        let schemas: [String: JSONValue] = [
            "Error": object(["error": object(["message": string(), "type": string(), "param": nullable(string()), "code": nullable(string())],
                                             required: ["message", "type", "param", "code"])], required: ["error"]),
            "GenerateRequest": object(generate, required: ["prompt"]),
            "Token": object(["id": nullable(integer(0)), "text": string(), "special": boolean, "logprob": ["type": "number"],
                             "top_tokens": array(object(["id": integer(0), "text": string(), "logprob": ["type": "number"]], required: ["id", "text", "logprob"]))],
                            required: ["id", "text", "special"]),
            "Details": object([
                "finish_reason": ["type": "string", "enum": ["length", "stop", "eos", "cancelled", "timeout"]],
                "generated_tokens": integer(0), "prompt_tokens": integer(0), "tokens": array(ref("Token")),
                "timings": object(["queue_ms": ["type": "number"], "prefill_ms": ["type": "number"], "generation_ms": ["type": "number"],
                                   "tokens_per_second": ["type": "number"]], required: ["queue_ms", "prefill_ms", "generation_ms", "tokens_per_second"]),
            ], required: ["finish_reason", "generated_tokens", "prompt_tokens", "timings"]),
            "GenerateResponse": object(["generated_texts": array(string()), "details": array(ref("Details"))], required: ["generated_texts"]),
            "CompletionRequest": object(completion, required: ["prompt"]),
            "CompletionResponse": object([
                "id": string(), "object": ["type": "string", "enum": ["text_completion"]], "created": integer(0), "model": string(),
                "choices": array(object(["index": integer(0), "text": string(), "logprobs": completionLogprobs, "finish_reason": finishReason],
                                        required: ["index", "text", "logprobs", "finish_reason"])),
                "usage": usage,
            ], required: ["id", "object", "created", "model", "choices", "usage"]),
            "ChatRequest": object(chat, required: ["messages"]),
            "ChatResponse": object([
                "id": string(), "object": ["type": "string", "enum": ["chat.completion"]], "created": integer(0), "model": string(),
                "choices": array(object([
                    "index": integer(0),
                    "message": object(["role": ["type": "string", "enum": ["assistant"]], "content": string()], required: ["role", "content"]),
                    "logprobs": nullable(object(["content": array(chatLogprob)], required: ["content"])),
                    "finish_reason": finishReason,
                ], required: ["index", "message", "logprobs", "finish_reason"])),
                "usage": usage,
            ], required: ["id", "object", "created", "model", "choices", "usage"]),
            "Model": object(["id": string(), "object": ["type": "string", "enum": ["model"]], "created": integer(0), "owned_by": string()],
                            required: ["id", "object", "created", "owned_by"]),
            "ModelList": object(["object": ["type": "string", "enum": ["list"]], "data": array(ref("Model"))], required: ["object", "data"]),
            "TokenizeRequest": object(["text": string(), "prompt": string("vLLM's name for text; one of the two is required."),
                                       "add_special_tokens": boolean, "model": string()]),
            "TokenizeResponse": object(["tokens": array(integer(0)), "pieces": array(string()), "count": integer(0)], required: ["tokens", "pieces", "count"]),
            "DetokenizeRequest": object(["tokens": array(integer(0)), "skip_special_tokens": boolean, "model": string()], required: ["tokens"]),
            "DetokenizeResponse": object(["text": string(), "prompt": string("The same text under vLLM's name.")], required: ["text", "prompt"]),
            "TokenizerInfo": object(["bos_token": nullable(string()), "eos_token": nullable(string()), "pad_token": nullable(string()),
                                     "chat_template": nullable(string()), "add_bos_token": boolean, "model_max_length": integer(1)],
                                    required: ["bos_token", "eos_token", "pad_token", "chat_template", "add_bos_token", "model_max_length"]),
            "Health": object(["status": ["type": "string", "enum": ["ok", "loading", "failed"]], "error": string()], required: ["status"]),
        ]
        let notFound: [String: JSONValue] = ["404": errorResponse, "401": errorResponse, "503": errorResponse]
        let paths: [String: JSONValue] = [
            "/generate": post("Continue a prompt (transformers' text-generation shape).", ref("GenerateRequest"),
                              response("The continuations.", ["application/json": ref("GenerateResponse")]), tag: "generation"),
            "/generate_stream": post("Continue a prompt, one server-sent event per token, then one with the text and details per sequence.",
                                     ref("GenerateRequest"), response("The event stream.", ["text/event-stream": eventStream]), tag: "generation"),
            "/tokenize": post("Text to token ids.", ref("TokenizeRequest"), response("The ids.", ["application/json": ref("TokenizeResponse")]),
                              tag: "tokens"),
            "/detokenize": post("Token ids to text.", ref("DetokenizeRequest"), response("The text.", ["application/json": ref("DetokenizeResponse")]),
                                tag: "tokens"),
            "/tokenizer_info": get("The tokenizer's special tokens and chat template (vLLM's shape: lm-evaluation-harness tokenizes through this server).",
                                   ["200": response("The tokenizer.", ["application/json": ref("TokenizerInfo")])], tag: "tokens"),
            "/v1/completions": post("OpenAI completions; with stream, server-sent events ending in data: [DONE].", ref("CompletionRequest"),
                                    response("The completion, or its event stream.", ["application/json": ref("CompletionResponse"),
                                                                                      "text/event-stream": eventStream]), tag: "openai"),
            "/v1/chat/completions": post("OpenAI chat completions (the model's chat template); with stream, server-sent events ending in data: [DONE].",
                                         ref("ChatRequest"), response("The reply, or its event stream.", ["application/json": ref("ChatResponse"),
                                                                                                           "text/event-stream": eventStream]),
                                         tag: "openai"),
            "/v1/models": get("The model this server runs.", ["200": response("The list.", ["application/json": ref("ModelList")])]
                .merging(notFound) { a, _ in a }, tag: "openai"),
            "/v1/models/{id}": get("One model.", ["200": response("The model.", ["application/json": ref("Model")])].merging(notFound) { a, _ in a },
                                   tag: "openai", parameters: [["name": "id", "in": "path", "required": true, "schema": string()]]),
            "/health": get("200 once the model is loaded, 503 while it loads or if it failed.",
                           ["200": response("Ready.", ["application/json": ref("Health")]),
                            "503": response("Loading or failed.", ["application/json": ref("Health")])], tag: "operations"),
            "/metrics": get("Prometheus metrics.", ["200": response("Prometheus text format.", ["text/plain": string()])], tag: "operations"),
            "/openapi.json": get("This document.", ["200": response("OpenAPI 3.1.", ["application/json": ["type": "object"]])], tag: "operations"),
            "/docs": get("Interactive API documentation.", ["200": response("An HTML page.", ["text/html": string()])], tag: "operations"),
            "/docs/assets/{file}": get("The documentation page's scripts and styles, served by this binary.",
                                       ["200": response("The file.", ["application/javascript": string(), "text/css": string()]),
                                        "404": errorResponse], tag: "operations",
                                       parameters: [["name": "file", "in": "path", "required": true, "schema": string()]]),
        ]
        return [
            "openapi": "3.1.0",
            "info": ["title": "Quill", "version": "1.0.0",
                     "description": "Text generation with a local model: Quill's own routes, OpenAI-compatible routes, tokens and operations."],
            "paths": .object(paths),
            "components": ["schemas": .object(schemas),
                           "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "description": "Only when the server was started with --api-key."]]],
        ]
    }
}
