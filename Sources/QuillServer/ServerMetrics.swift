import Foundation
import Prometheus

/// What `GET /metrics` shows, in Prometheus's text format: requests by route and status,
/// request durations, queue depth, running sequences, batch size, KV-cache positions in use,
/// prompt and generated tokens, time to first token and time per output token.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let queueDepth, runningSequences, batchSize, kvCacheTokens: Gauge
    let promptTokens, generatedTokens: Counter
    let timeToFirstToken, timePerOutputToken: ValueHistogram

    /// quill_NAME_UNIT
    static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "quill", metricName: name, unitName: unit, helpText: help)
    }

    init() {
        queueDepth = registry.makeGauge(descriptor: Self.name("queue", "depth", "Requests waiting for a slot."))
        runningSequences = registry.makeGauge(descriptor: Self.name("running", "sequences", "Sequences being generated."))
        batchSize = registry.makeGauge(descriptor: Self.name("batch", "size", "Sequences in the last batched decode step."))
        kvCacheTokens = registry.makeGauge(descriptor: Self.name("kv_cache", "tokens", "KV-cache positions held by running sequences."))
        promptTokens = registry.makeCounter(descriptor: Self.name("prompt_tokens", "total", "Prompt tokens processed."))
        generatedTokens = registry.makeCounter(descriptor: Self.name("generated_tokens", "total", "Tokens generated."))
        timeToFirstToken = registry.makeValueHistogram(
            descriptor: Self.name("time_to_first_token", "seconds", "From a request's arrival to its first generated token."),
            buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
        timePerOutputToken = registry.makeValueHistogram(
            descriptor: Self.name("time_per_output_token", "seconds", "Generation time divided by the tokens after the first."),
            buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64])
    }

    func request(route: String, status: Int, seconds: Double) {
        registry.makeCounter(descriptor: Self.name("requests", "total", "HTTP requests by route and status."),
                             labels: [("route", route), ("status", String(status))]).increment()
        registry.makeValueHistogram(descriptor: Self.name("request_duration", "seconds", "Time to the response head (streams: to its first byte)."),
                                    labels: [("route", route)], buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120])
            .record(seconds)
    }

    /// A finished generation's tokens and latencies.
    func generation(_ summary: InferenceEngine.Summary, firstTokenAfter: Double) {
        generatedTokens.increment(by: Int64(summary.tokens.count))
        timeToFirstToken.record(firstTokenAfter)
        if summary.tokens.count > 1 { timePerOutputToken.record(summary.generationSeconds / Double(summary.tokens.count - 1)) }
    }

    func text(load: InferenceEngine.Load?) -> String {
        if let load {
            queueDepth.set(Int64(load.waiting))
            runningSequences.set(Int64(load.running))
            batchSize.set(Int64(load.lastBatch))
            kvCacheTokens.set(Int64(load.kvTokens))
        }
        return registry.emitToString()
    }
}
