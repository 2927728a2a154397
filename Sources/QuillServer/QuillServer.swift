import Foundation
import Hummingbird
import Logging
import QuillModels
import QuillTokenizers
import ServiceLifecycle

/// `quill serve`: one model behind an HTTP API (Hummingbird 2): `POST /generate` and
/// `/generate_stream`, OpenAI's `/v1/completions`, `/v1/chat/completions` and `/v1/models`,
/// `/tokenize`, `/detokenize`, `/health`, `/metrics`, `/openapi.json` and `/docs`. Requests
/// share the `InferenceEngine`'s batched decode steps.
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The GGUF file or Hugging Face directory to load.
    public var modelPath: String
    /// Every weight in fp32 (dequantized at load) instead of on the int8 kernels.
    public var dense = false
    /// A PEFT LoRA adapter directory applied beside the model's weights.
    public var adapterPath: String?
    /// The model's id in the API (`model` fields, `/v1/models`).
    public var modelName: String
    public var limits = InferenceEngine.Limits()
    /// Seconds a request may take in all; it then ends with what it has (finish reason `length`).
    public var timeout = 600.0
    /// Bearer tokens accepted; empty: no authentication.
    public var apiKeys: [String] = []
    /// Bearer tokens for `/metrics` (a scraper's); empty: `/metrics` takes the API keys, and is
    /// open only when there are none either.
    public var metricsKeys: [String] = []
    /// Origins allowed by CORS; empty: no CORS headers; "*": any.
    public var corsOrigins: [String] = []
    public var maxBodyBytes = 1 << 20
    /// The folder holding swagger-ui-bundle.js and swagger-ui.css for `/docs`.
    public var docsAssets: String?
    /// Seconds in-flight requests get to finish on SIGTERM / SIGINT.
    public var gracePeriod = 30.0
    /// Chat completions without max_tokens stop after this many tokens (or at the context's end).
    public var defaultMaxTokens = 512

    public init(modelPath: String, modelName: String) {
        self.modelPath = modelPath
        self.modelName = modelName
    }
}

/// The loaded model and its engine, once ready.
struct Backend: Sendable {
    let engine: InferenceEngine
    let tokenizer: Tokenizer
    let contextLength: Int
    let vocabularySize: Int
    let name: String
    let created: Int
}

/// The model while it loads (`/health` answers 503), then ready or failed.
final class ModelHost: @unchecked Sendable {
    enum State { case loading, ready(Backend), failed(String) }
    private let lock = NSLock()
    private var _state = State.loading
    var state: State {
        get { lock.withLock { _state } }
        set { lock.withLock { _state = newValue } }
    }

    /// The backend, or 503 while loading / after a failed load.
    func backend() throws(APIError) -> Backend {
        switch state {
        case .ready(let backend): return backend
        case .loading: throw APIError(.serviceUnavailable, "the model is still loading", code: "model_loading", retryAfter: 5)
        case .failed(let message): throw APIError(.serviceUnavailable, "the model failed to load: \(message)", code: "model_failed")
        }
    }
}

public struct QuillServer: Sendable {
    public let options: ServerOptions
    let host = ModelHost()
    let metrics = ServerMetrics()
    let logger: Logger

    public init(options: ServerOptions, logger: Logger = Logger(label: "quill.serve")) {
        self.options = options
        self.logger = logger
    }

    /// Loads the model (the server answers meanwhile), serves until SIGTERM or SIGINT, then
    /// stops accepting connections and gives in-flight requests `gracePeriod` seconds.
    public func run(onReady: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "quill"),
            onServerRunning: { channel in onReady(channel.localAddress?.port ?? 0) },
            logger: logger)
        let loader = ModelLoaderService(server: self)
        // a failed load shuts the HTTP server down gracefully (no cancelled channels), then `run` throws it
        var config = ServiceGroupConfiguration(
            services: [.init(service: loader, failureTerminationBehavior: .gracefullyShutdownGroup), .init(service: app)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.maximumGracefulShutdownDuration = .seconds(options.gracePeriod)
        try await ServiceGroup(configuration: config).run()
    }

    /// Loads the model now, for a caller that answers requests through `makeRouter()` in its own
    /// process (the fuzzer, an embedding application) instead of `run()`.
    public func loadModel() throws {
        host.state = .ready(try load())
    }

    func load() throws -> Backend {
        let started = Date()
        let weights: LlamaModel.WeightFormat = options.dense ? .dense : .quantized
        let (model, tokenizer) = try options.adapterPath.map { try ModelLoader.load(options.modelPath, adapter: URL(fileURLWithPath: $0), weights: weights) }
            ?? ModelLoader.load(options.modelPath, weights: weights)
        let engine = InferenceEngine(model: model, tokenizer: tokenizer, limits: options.limits)
        engine.start()
        logger.info("model loaded", metadata: ["model": "\(options.modelName)", "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(started)))",
                                               "parallel": "\(options.limits.parallel)", "kv_cache_tokens": "\(options.limits.kvCacheTokens)"])
        return Backend(engine: engine, tokenizer: tokenizer, contextLength: model.contextLength, vocabularySize: model.vocabularySize,
                       name: options.modelName, created: Int(started.timeIntervalSince1970))
    }

    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: AccessMiddleware(metrics: metrics))
        if !options.corsOrigins.isEmpty {
            router.add(middleware: CORSMiddleware(
                allowOrigin: options.corsOrigins == ["*"] ? .all : .custom(options.corsOrigins.joined(separator: ",")),
                allowHeaders: [.contentType, .authorization], allowMethods: [.get, .post, .options]))
        }
        if !options.apiKeys.isEmpty || !options.metricsKeys.isEmpty {
            router.add(middleware: APIKeyMiddleware(keys: options.apiKeys, metricsKeys: options.metricsKeys.isEmpty ? options.apiKeys : options.metricsKeys))
        }

        router.get("health") { _, _ -> Response in
            switch host.state {
            case .ready: return json(["status": "ok"])
            case .loading: return json(["status": "loading"], status: .serviceUnavailable)
            case .failed(let message): return json(["status": "failed", "error": .string(message)], status: .serviceUnavailable)
            }
        }
        router.get("metrics") { _, _ -> Response in
            let load: InferenceEngine.Load? = if case .ready(let b) = host.state { b.engine.currentLoad } else { nil }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: metrics.text(load: load))))
        }
        router.get("openapi.json") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(data: OpenAPIDocument.json)))
        }
        router.get("docs") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: DocsPage.html)))
        }
        router.get("docs/assets/{file}") { _, context -> Response in try DocsPage.asset(context.parameters.get("file") ?? "", in: options.docsAssets) }

        router.get("v1/models") { _, _ -> Response in
            let b = try host.backend()
            return json(["object": "list", "data": [["id": .string(b.name), "object": "model", "created": .int(b.created), "owned_by": "quill"]]])
        }
        router.get("v1/models/{id}") { _, context -> Response in
            let b = try host.backend()
            guard context.parameters.get("id") == b.name else {
                throw APIError(.notFound, "no model \(context.parameters.get("id") ?? ""); this server has \(b.name)", param: "model",
                               code: "model_not_found")
            }
            return json(["id": .string(b.name), "object": "model", "created": .int(b.created), "owned_by": "quill"])
        }
        router.post("tokenize") { request, _ -> Response in try await tokenize(request) }
        router.get("tokenizer_info") { _, _ -> Response in try tokenizerInfo() }
        router.post("detokenize") { request, _ -> Response in try await detokenize(request) }
        router.post("generate") { request, _ -> Response in try await generate(request, stream: false) }
        router.post("generate_stream") { request, _ -> Response in try await generate(request, stream: true) }
        router.post("v1/completions") { request, _ -> Response in try await completions(request, chat: false) }
        router.post("v1/chat/completions") { request, _ -> Response in try await completions(request, chat: true) }
        return router
    }

    /// The request's JSON body, at most `maxBodyBytes`.
    func body(_ request: inout Request) async throws -> JSONFields {
        try await JSONFields.read(&request, maxBytes: options.maxBodyBytes)
    }

    /// Submits to the engine, turning a full queue into 429 with Retry-After.
    func submit(_ backend: Backend, _ request: InferenceEngine.Request) throws -> AsyncStream<InferenceEngine.Event> {
        do { return try backend.engine.submit(request) } catch {
            switch error {
            case .queueFull(let waiting):
                throw APIError(.tooManyRequests, "the server is busy: \(waiting) requests are waiting (--max-queue); retry later",
                               type: "rate_limit_error", code: "queue_full", retryAfter: 1)
            case .shuttingDown:
                throw APIError(.serviceUnavailable, "the server is shutting down", code: "shutting_down", retryAfter: 5)
            case .tooLarge(let tokens, let limit):
                throw APIError(.badRequest, "the request needs \(tokens) KV-cache positions (prompt + max tokens, times n); the server allows \(limit)",
                               param: "max_tokens", code: "too_large")
            case .emptyPrompt:
                throw APIError(.badRequest, ModelError.emptyPrompt.description, param: "prompt", code: "empty_prompt")
            }
        }
    }
}

/// Loads the model as a service, so the HTTP server is up (and `/health` says 503) meanwhile;
/// on shutdown it stops the engine taking requests and lets running ones finish. A model that
/// fails to load (a truncated file, a mismatched adapter) stops the server with that error, as
/// llama-server does: `quill serve` exits non-zero and an orchestrator sees the crash and why.
struct ModelLoaderService: Service {
    let server: QuillServer

    func run() async throws {
        let server = self.server
        let loaded = await Task.detached { () -> Result<Backend, any Error> in Result { try server.load() } }.value
        switch loaded {
        case .success(let backend): server.host.state = .ready(backend)
        case .failure(let error):
            server.logger.error("model failed to load", metadata: ["error": "\(error)"])
            server.host.state = .failed("\(error)")
            throw error
        }
        try? await gracefulShutdown()
        if case .ready(let backend) = server.host.state {
            backend.engine.stopAccepting()
            await withTaskCancellationHandler {
                await backend.engine.drained()
            } onCancel: {
                backend.engine.shutdown()   // the grace period is over
            }
            backend.engine.shutdown()
        }
    }
}

func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response { value.response(status: status) }

extension Response {
    /// This response with `Connection: close` (see `QuillServer.cancelledIfClientLeaves`).
    func closingConnection() -> Response {
        var response = self
        response.headers[.connection] = "close"
        return response
    }
}

extension JSONValue {
    /// This value as an `application/json` response.
    public func response(status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}

/// Access log record per request (method, path, status, milliseconds to the end of its body, request
/// id) and request metrics;
/// every error leaves in OpenAI's shape.
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = Date()
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let message = error.body ?? (error.status == .notFound ? "no route \(request.method) \(request.uri.path)" : error.status.reasonPhrase)
            response = try APIError(error.status, message, code: error.status == .notFound ? "not_found" : nil).response(from: request, context: context)
        } catch {
            // the detail goes to the log, never to the client
            context.logger.error("internal error", metadata: ["error": "\(String(reflecting: error))", "http.path": "\(request.uri.path)"])
            response = try APIError(.internalServerError, "internal server error (request \(context.id))").response(from: request, context: context)
        }
        response.headers[.init("X-Request-Id")!] = context.id
        // recorded once the body is written: a stream's duration is its last event's, not its head's
        let metrics = self.metrics, logger = context.logger, status = response.status.code
        let method = "\(request.method)", path = request.uri.path, route = context.endpointPath ?? "unmatched"
        let record: @Sendable () -> Void = {
            let seconds = Date().timeIntervalSince(start), milliseconds = String(format: "%.1f", seconds * 1000)
            metrics.request(route: route, status: Int(status), seconds: seconds)
            // probes and scrapes come every few seconds: they log only at debug level
            let quiet = path == "/health" || path == "/metrics"
            // the line reads on a terminal; the fields are for log pipelines (`--log-format json`)
            logger.log(level: quiet ? .debug : .info, "\(method) \(path) \(status) \(milliseconds) ms",
                       metadata: ["http.method": "\(method)", "http.path": "\(path)", "http.status": "\(status)", "duration_ms": "\(milliseconds)"])
        }
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            do { try await body.write(writer) } catch { record(); throw error }
            record()
        }
        return response
    }
}

/// `Authorization: Bearer KEY` on every route but `/health`, `/metrics`, `/docs` and
/// `/openapi.json`; keys compared in constant time.
/// Bearer keys: the API keys for the model's routes, the metrics keys for `/metrics`; `/health`,
/// `/openapi.json`, `/docs` and CORS preflights stay open. An empty list opens its routes.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: [[UInt8]]
    let metricsKeys: [[UInt8]]
    init(keys: [String], metricsKeys: [String]) {
        self.keys = keys.map { Array($0.utf8) }
        self.metricsKeys = metricsKeys.map { Array($0.utf8) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if request.method == .options || path == "/health" || path == "/openapi.json" || path.hasPrefix("/docs") {
            return try await next(request, context)
        }
        let accepted = path == "/metrics" ? metricsKeys : keys
        if accepted.isEmpty { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let token = Array((header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : "").utf8)
        guard accepted.contains(where: { Self.equal($0, token) }) else {
            throw APIError(.unauthorized, header.isEmpty ? "missing API key: send Authorization: Bearer KEY" : "invalid API key",
                           type: "authentication_error", code: "invalid_api_key")
        }
        return try await next(request, context)
    }

    /// Equal bytes, in time that depends only on the lengths.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) { difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return difference == 0
    }
}
