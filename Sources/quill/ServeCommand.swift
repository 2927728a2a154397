import ArgumentParser
import Foundation
import QuillTokenizers
import Logging
import QuillFormats
import QuillServer

/// `quill serve`: the model behind an HTTP API. Every option can also come from the
/// environment (QUILL_MODEL, QUILL_HOST, QUILL_PORT, ...), as container users expect; a flag
/// given on the command line wins.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over HTTP: /generate, OpenAI-compatible /v1/completions and /v1/chat/completions, /docs, /metrics.",
        discussion: """
        Environment variables (flags win): QUILL_MODEL, QUILL_ADAPTER, QUILL_MODEL_NAME, QUILL_HOST, QUILL_PORT, QUILL_PARALLEL, \
        QUILL_MAX_QUEUE, QUILL_KV_CACHE_TOKENS, QUILL_TIMEOUT, QUILL_API_KEY (comma-separated keys), QUILL_API_KEY_FILE, QUILL_METRICS_KEY, \
        QUILL_CORS_ORIGINS, QUILL_MAX_BODY_BYTES, QUILL_DEFAULT_MAX_TOKENS, QUILL_GRACE_PERIOD, QUILL_DOCS_ASSETS, QUILL_LOG_LEVEL, QUILL_LOG_FORMAT.
        """)

    @Option(name: [.customShort("m"), .customLong("model")],
            help: "GGUF file, Hugging Face directory, or a cached model's name (default: SmolLM2 from the cache).") var model: String?
    @Option(help: "A PEFT LoRA adapter directory (as quill train writes it or PEFT saves it) to apply beside the model's weights.")
    var adapter: String?
    @Flag(help: "Run every weight in fp32 (dequantized) instead of the int8 kernels (QUILL_DENSE=1).") var dense = false
    @Option(name: .customLong("model-name"), help: "The model's id in the API (default: the file or folder name).") var modelName: String?
    @Option(help: "Address to listen on (0.0.0.0 in a container).") var host: String?
    @Option(help: "Port (0: any free port, printed at start).") var port: Int?
    @Option(help: "Sequences generated together in one batch.") var parallel: Int?
    @Option(name: .customLong("max-queue"), help: "Requests that may wait for a slot; more get 429.") var maxQueue: Int?
    @Option(name: .customLong("kv-cache-tokens"), help: "KV-cache positions for all running sequences together (default: parallel x 2048).")
    var kvCacheTokens: Int?
    @Option(help: "Seconds a request may take before it ends with what it has.") var timeout: Double?
    @Option(name: .customLong("api-key"), help: "Require Authorization: Bearer KEY (repeatable).") var apiKeys: [String] = []
    @Option(name: .customLong("api-key-file"), help: "A file of API keys, one per line.") var apiKeyFile: String?
    @Option(name: .customLong("metrics-key"), help: "Require Authorization: Bearer KEY on /metrics (repeatable; default: the API keys).")
    var metricsKeys: [String] = []
    @Option(name: .customLong("cors-origin"), help: "An origin allowed by CORS (repeatable; * for any).") var corsOrigins: [String] = []
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body.") var maxBodyBytes: Int?
    @Option(name: .customLong("default-max-tokens"), help: "Chat completions without max_tokens stop after this many.") var defaultMaxTokens: Int?
    @Option(name: .customLong("grace-period"), help: "Seconds in-flight requests get to finish on SIGTERM/SIGINT.") var gracePeriod: Double?
    @Option(name: .customLong("docs-assets"), help: "Folder with swagger-ui-bundle.js and swagger-ui.css (default: the cache's).")
    var docsAssets: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.") var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text (a line for people) or json (one object per line, for log pipelines).")
    var logFormat: String?

    @OptionGroup var threads: ThreadsOption

    func run() async throws {
        threads.apply()
        let env = ProcessInfo.processInfo.environment
        func value<T: LosslessStringConvertible>(_ flag: T?, _ name: String, _ fallback: T) throws -> T {
            if let flag { return flag }
            guard let text = env[name], !text.isEmpty else { return fallback }
            guard let parsed = T(text) else { throw ValidationError("\(name)=\(text) is not a valid \(T.self)") }
            return parsed
        }
        let modelArgument = model ?? env["QUILL_MODEL"]
        let path = try modelArgument.map(QuillCache.resolveModel) ?? QuillCache.defaultModel.path
        let name = modelName ?? env["QUILL_MODEL_NAME"]
            ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var options = ServerOptions(modelPath: path, modelName: name)
        options.adapterPath = adapter ?? env["QUILL_ADAPTER"]
        options.dense = dense || env["QUILL_DENSE"] == "1"
        options.host = try value(host, "QUILL_HOST", options.host)
        options.port = try value(port, "QUILL_PORT", options.port)
        let parallel = try value(self.parallel, "QUILL_PARALLEL", 4)
        guard (1...1024).contains(parallel) else { throw ValidationError("--parallel (QUILL_PARALLEL) \(parallel): use 1 to 1024") }
        let kvTokens = try value(kvCacheTokens, "QUILL_KV_CACHE_TOKENS", parallel * 2048)
        options.limits = .init(parallel: parallel, maxQueue: try value(maxQueue, "QUILL_MAX_QUEUE", 64), kvCacheTokens: kvTokens)
        options.timeout = try value(timeout, "QUILL_TIMEOUT", options.timeout)
        options.maxBodyBytes = try value(maxBodyBytes, "QUILL_MAX_BODY_BYTES", options.maxBodyBytes)
        options.defaultMaxTokens = try value(defaultMaxTokens, "QUILL_DEFAULT_MAX_TOKENS", options.defaultMaxTokens)
        options.gracePeriod = try value(gracePeriod, "QUILL_GRACE_PERIOD", options.gracePeriod)
        options.docsAssets = docsAssets ?? env["QUILL_DOCS_ASSETS"]
        var keys = apiKeys
        if keys.isEmpty, let list = env["QUILL_API_KEY"] { keys = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if let file = apiKeyFile ?? env["QUILL_API_KEY_FILE"] {
            guard let text = FileContents.text(atPath: file) else { throw ValidationError("cannot read the API key file \(file)") }
            keys += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        options.apiKeys = keys.filter { !$0.isEmpty }
        options.metricsKeys = (metricsKeys.isEmpty ? (env["QUILL_METRICS_KEY"].map { $0.split(separator: ",").map(String.init) } ?? []) : metricsKeys)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        options.corsOrigins = corsOrigins.isEmpty ? (env["QUILL_CORS_ORIGINS"].map { $0.split(separator: ",").map(String.init) } ?? []) : corsOrigins
        guard options.limits.maxQueue >= 0, (1...(1 << 24)).contains(kvTokens) else {
            throw ValidationError("--max-queue must be at least 0 and --kv-cache-tokens 1 to \(1 << 24)")
        }
        guard options.timeout > 0, options.gracePeriod >= 0, options.maxBodyBytes >= 1, options.defaultMaxTokens >= 1 else {
            throw ValidationError("--timeout must be positive, --grace-period not negative, --max-body-bytes and --default-max-tokens at least 1")
        }

        let levelName = logLevel ?? env["QUILL_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else { throw ValidationError("log level \(levelName): use trace, debug, info, notice, warning, error or critical") }
        switch logFormat ?? env["QUILL_LOG_FORMAT"] ?? "text" {
        case "text":
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case "json": LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level) }
        case let other: throw ValidationError("log format \(other): use text or json")
        }
        let server = QuillServer(options: options)
        let host = options.host
        try await server.run { port in
            FileHandle.standardError.write(Data("quill serve: \(name) on http://\(host):\(port) (docs at /docs)\n".utf8))
        }
    }
}
