import Foundation
import QuillModels
import QuillTokenizers

/// Continuous batching over one model: requests wait in a bounded queue, up to `parallel`
/// sequences run at once, and every step of the engine's own thread runs prompt chunks of at
/// most `prefillChunk` tokens in all (so a long prompt never stalls running streams for long) and
/// then one batched decode step that advances every running sequence by a token. New requests
/// join between steps; finished, cancelled and timed-out ones leave at once and free their KV
/// cache, whose total size is bounded by `kvCacheTokens`.
///
/// ```swift
/// let engine = InferenceEngine(model: model, tokenizer: tokenizer, limits: .init(parallel: 8))
/// engine.start()
/// for await event in try engine.submit(.init(promptIds: ids, options: options)) { ... }
/// ```
public final class InferenceEngine: @unchecked Sendable {
    public struct Limits: Sendable {
        /// Sequences decoded together.
        public var parallel = 4
        /// Requests that may wait while every slot is taken; more are refused (`SubmitError.queueFull`).
        public var maxQueue = 64
        /// KV-cache positions all running sequences may hold together (prompt + new tokens each).
        public var kvCacheTokens = 4 * 2048
        /// Prompt tokens run per engine step.
        public var prefillChunk = 256
        public init(parallel: Int = 4, maxQueue: Int = 64, kvCacheTokens: Int? = nil, prefillChunk: Int = 256) {
            self.parallel = parallel
            self.maxQueue = maxQueue
            self.kvCacheTokens = kvCacheTokens ?? parallel * 2048
            self.prefillChunk = prefillChunk
        }
    }

    public struct Request: Sendable {
        public var promptIds: [Int32]
        public var options: GenerationOptions
        /// Independent continuations of the one prompt (OpenAI's `n`), prefilled once.
        public var count = 1
        /// When the request gives up (finish reason `timeout`).
        public var deadline: Date?
        /// Score the prompt itself: the log-probability of each prompt token after the first,
        /// with this many alternatives (OpenAI's `echo` with `logprobs`). Such a prompt runs whole
        /// in one engine step, in the pieces `quill eval` uses, so the figures equal its figures.
        public var promptLogprobs: Int?
        public init(promptIds: [Int32], options: GenerationOptions, count: Int = 1, deadline: Date? = nil, promptLogprobs: Int? = nil) {
            self.promptIds = promptIds
            self.options = options
            self.count = count
            self.deadline = deadline
            self.promptLogprobs = promptLogprobs
        }
        var kvTokens: Int { count * (promptIds.count + options.maxNewTokens) }
    }

    public enum Event: Sendable {
        /// The prompt's own log-probabilities (tokens 1..<n), when the request asked for them;
        /// sent once, after the prompt ran and before any token.
        case prompt([TokenLogprob])
        /// A generated token of choice `index`, the text it made safe to show (often empty
        /// mid-character or while a stop string may be starting), its log-probability if asked.
        case token(index: Int, id: Int32, text: String, logprob: TokenLogprob?)
        /// Held-back text of choice `index` handed out as it ends, with no new token.
        case text(index: Int, String)
        /// Choice `index` ended; `text` is its whole text.
        case finished(index: Int, Summary)
        /// The request failed inside the model (a bad token id, for example).
        case failed(String)
    }

    public struct Summary: Sendable {
        public var finishReason: FinishReason
        public var text: String
        public var tokens: [Int32]
        public var logprobs: [TokenLogprob]
        public var promptTokens: Int
        /// The prompt's log-probabilities (tokens 1..<n), when asked for.
        public var promptLogprobs: [TokenLogprob]?
        /// Waiting in the queue, then from admission to the first token, then generating.
        public var queueSeconds: Double, prefillSeconds: Double, generationSeconds: Double
    }

    public enum SubmitError: Error, Equatable {
        case queueFull(waiting: Int)
        case shuttingDown
        /// The request alone needs more KV cache than the engine may hold.
        case tooLarge(tokens: Int, limit: Int)
        /// No prompt tokens: an empty prompt where the tokenizer adds no BOS token.
        case emptyPrompt
    }

    /// What the engine is doing, for metrics.
    public struct Load: Sendable { public var waiting = 0, running = 0, lastBatch = 0, kvTokens = 0 }

    public let model: any LanguageModel
    public let tokenizer: Tokenizer
    public let limits: Limits

    private let condition = NSCondition()
    // guarded by `condition`
    private var waiting: [Job] = []
    private var accepting = true
    private var stopped = false
    private var load = Load()
    private var thread: Thread?

    public init(model: any LanguageModel, tokenizer: Tokenizer, limits: Limits = Limits()) {
        self.model = model
        self.tokenizer = tokenizer
        self.limits = limits
    }

    /// One request while it waits or runs; `cancelled` is set from the consumer's side.
    final class Job: @unchecked Sendable {
        let request: Request
        let continuation: AsyncStream<Event>.Continuation
        let submitted = Date()
        private let lock = NSLock()
        private var _cancelled = false, _closed = false
        var cancelled: Bool { lock.withLock { _cancelled } }
        func cancel() { lock.withLock { _cancelled = true } }
        /// True the first time only: a job's slot is handed back once.
        func markClosed() -> Bool { lock.withLock { defer { _closed = true }; return !_closed } }
        init(request: Request, continuation: AsyncStream<Event>.Continuation) {
            self.request = request
            self.continuation = continuation
        }
    }

    /// A running request: its prompt position while prefilling, then one sequence per choice.
    struct Slot {
        let job: Job
        var prefilled = 0
        var cache: KVCache
        var sequences: [GenerationSequence] = []
        /// Per choice: the token to feed next, nil once that choice finished.
        var next: [Int32?] = []
        var caches: [KVCache] = []
        var admitted = Date(), firstToken: Date?
        var promptLogprobs: [TokenLogprob]?
        var decoding: Bool { !sequences.isEmpty }
    }

    public var currentLoad: Load { condition.withLock { load } }

    /// Queues a request; its events arrive on the stream, which ends after the last choice
    /// finishes. Dropping the stream (a client gone) cancels the request and frees its slot.
    public func submit(_ request: Request) throws(SubmitError) -> AsyncStream<Event> {
        guard !request.promptIds.isEmpty else { throw .emptyPrompt }
        guard request.kvTokens <= limits.kvCacheTokens else { throw .tooLarge(tokens: request.kvTokens, limit: limits.kvCacheTokens) }
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .unbounded)
        let job = Job(request: request, continuation: continuation)
        continuation.onTermination = { @Sendable [weak self] reason in
            if case .cancelled = reason { job.cancel(); self?.condition.withLock { self?.condition.signal() } }
        }
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { throw .shuttingDown }
        // free slots take requests at once; beyond them, maxQueue may wait
        let free = max(0, limits.parallel - load.running)
        guard waiting.count < limits.maxQueue + free else { throw .queueFull(waiting: waiting.count) }
        waiting.append(job)
        load.waiting = waiting.count
        condition.signal()
        return stream
    }

    /// Starts the engine's thread.
    public func start() {
        condition.withLock {
            guard thread == nil else { return }
            let t = Thread { [self] in loop() }
            t.name = "quill-engine"
            t.stackSize = 8 << 20
            thread = t
            t.start()
        }
    }

    /// Stops taking requests; those queued and running go on to the end.
    public func stopAccepting() { condition.withLock { accepting = false } }

    /// Waits until nothing is queued or running.
    public func drained() async {
        while condition.withLock({ load.waiting + load.running > 0 }) { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// Ends every request now (finish reason `cancelled`) and stops the thread.
    public func shutdown() {
        condition.withLock {
            accepting = false
            stopped = true
            condition.signal()
        }
    }

    // MARK: - the engine thread

    private func loop() {
        var slots: [Slot] = []
        while true {
            // admit what fits, drop what was cancelled while waiting
            condition.lock()
            while true {
                waiting.removeAll { job in
                    guard job.cancelled else { return false }
                    job.continuation.finish()
                    return true
                }
                if stopped || !slots.isEmpty || !waiting.isEmpty { break }
                load.waiting = 0; load.lastBatch = 0   // idle; every admitted job was closed, so `running` is 0 too
                condition.wait()
            }
            if stopped {
                let all = waiting
                waiting = []
                load.waiting = 0
                thread = nil   // the thread holds this loop's closure, which holds the engine: let both go
                condition.unlock()
                for job in all { job.continuation.finish() }
                for slot in slots { end(slot, reason: .cancelled) }
                return
            }
            // `load` counts the admitted jobs: admission adds them, `close` takes them away
            while let job = waiting.first, load.running + job.request.count <= limits.parallel || load.running == 0,
                  load.kvTokens + job.request.kvTokens <= limits.kvCacheTokens {
                waiting.removeFirst()
                load.running += job.request.count
                load.kvTokens += job.request.kvTokens
                let r = job.request
                slots.append(Slot(job: job, cache: model.makeCache(capacity: r.promptIds.count + r.options.maxNewTokens)))
            }
            load.waiting = waiting.count
            condition.unlock()

            // cancelled and timed-out requests leave before any work is spent on them
            let now = Date()
            retire(&slots) { slot in
                if slot.job.cancelled { end(slot, reason: .cancelled); return true }
                if let deadline = slot.job.request.deadline, now >= deadline { end(slot, reason: .timeout); return true }
                return false
            }

            // prompt chunks, up to `prefillChunk` tokens in all: several short prompts that
            // arrive together start in the same step
            var budget = limits.prefillChunk, i = 0
            while budget > 0, i < slots.count {
                if !slots[i].decoding {
                    budget -= prefill(&slots[i], upTo: budget)
                    if slots[i].job.cancelled { close(slots.remove(at: i).job); continue }   // failed, or its client left
                }
                i += 1
            }

            // one decode step for every running choice
            var rows: [(slot: Int, choice: Int)] = []
            var tokens: [Int32] = [], caches: [KVCache] = []
            for s in slots.indices where slots[s].decoding {
                for c in slots[s].next.indices {
                    guard let token = slots[s].next[c] else { continue }
                    rows.append((s, c))
                    tokens.append(token)
                    caches.append(slots[s].caches[c])
                    slots[s].caches[c] = KVCache.empty   // one owner: no copy when the step writes
                }
            }
            if !rows.isEmpty {
                condition.withLock { load.lastBatch = rows.count }
                do {
                    let logits = try model.forwardBatch(tokens, caches: &caches)
                    let vocab = model.vocabularySize
                    for (r, (s, c)) in rows.enumerated() {
                        slots[s].caches[c] = caches[r]
                        advance(&slots[s], choice: c, logits: Array(logits[(r * vocab)..<((r + 1) * vocab)]))
                    }
                } catch {
                    for s in Set(rows.map(\.slot)) { fail(slots[s], error) }
                    retire(&slots) { $0.job.cancelled }
                }
            }
            retire(&slots) { slot in slot.decoding && slot.next.allSatisfy { $0 == nil } }
        }
    }

    /// Removes the slots `leaving` picks, each closed (once: most already are) so its place in
    /// `load` is given back.
    private func retire(_ slots: inout [Slot], where leaving: (Slot) -> Bool) {
        slots.removeAll { slot in
            guard leaving(slot) else { return false }
            close(slot.job)
            return true
        }
    }

    /// Runs the next chunk (at most `limit` tokens) of a slot's prompt; after the last one its
    /// choices take their first token. Returns the tokens run.
    private func prefill(_ slot: inout Slot, upTo limit: Int) -> Int {
        let prompt = slot.job.request.promptIds
        let chunk = Array(prompt[slot.prefilled..<min(prompt.count, slot.prefilled + limit)])
        do {
            let logits: [Float]
            if let top = slot.job.request.promptLogprobs {
                logits = try scorePrompt(&slot, top: top)
            } else {
                logits = try model.forward(chunk, cache: &slot.cache)
                slot.prefilled += chunk.count
            }
            guard slot.prefilled == prompt.count else { return chunk.count }
            let r = slot.job.request
            slot.caches = Array(repeating: slot.cache, count: r.count)
            slot.cache = KVCache.empty
            slot.next = Array(repeating: nil, count: r.count)
            for c in 0..<r.count {
                var options = r.options
                if let seed = options.sampling.seed { options.sampling.seed = seed &+ UInt64(c) }
                slot.sequences.append(GenerationSequence(promptIds: prompt, options: options, tokenizer: tokenizer))
            }
            for c in 0..<r.count { advance(&slot, choice: c, logits: logits) }
        } catch {
            fail(slot, error)
        }
        return chunk.count
    }

    /// Runs the whole prompt, recording each token's log-probability; returns the last logits.
    private func scorePrompt(_ slot: inout Slot, top: Int) throws -> [Float] {
        let prompt = slot.job.request.promptIds, vocab = model.vocabularySize
        var scored: [TokenLogprob] = []
        var last: [Float] = []
        scored.reserveCapacity(prompt.count - 1)
        try model.forwardAll(prompt, cache: &slot.cache) { first, logits in
            let rows = logits.count / vocab
            logits.withUnsafeBufferPointer { all in
                for r in 0..<rows where first + r + 1 < prompt.count {
                    scored.append(TokenLogprob(row: UnsafeBufferPointer(rebasing: all[(r * vocab)..<((r + 1) * vocab)]), id: prompt[first + r + 1], top: top))
                }
            }
            last = Array(logits[((rows - 1) * vocab)...])
        }
        slot.prefilled = prompt.count
        slot.promptLogprobs = scored
        slot.job.continuation.yield(.prompt(scored))
        return last
    }

    /// Samples choice c's next token from its logits and sends what it produced.
    private func advance(_ slot: inout Slot, choice c: Int, logits: [Float]) {
        if slot.firstToken == nil { slot.firstToken = Date() }
        let step = slot.sequences[c].step(logits)
        slot.next[c] = step.finished == nil ? step.token : nil
        if let token = step.token {
            slot.job.continuation.yield(.token(index: c, id: token, text: step.text, logprob: step.logprob))
        } else if !step.text.isEmpty {
            slot.job.continuation.yield(.text(index: c, step.text))
        }
        if step.finished != nil {
            slot.caches[c] = KVCache.empty
            finish(slot, choice: c)
        }
    }

    private func finish(_ slot: Slot, choice c: Int) {
        let s = slot.sequences[c], now = Date()
        let first = slot.firstToken ?? now
        slot.job.continuation.yield(.finished(index: c, Summary(
            finishReason: s.finishReason!, text: s.text, tokens: s.generated, logprobs: s.logprobs, promptTokens: s.promptIds.count,
            promptLogprobs: slot.promptLogprobs,
            queueSeconds: slot.admitted.timeIntervalSince(slot.job.submitted), prefillSeconds: first.timeIntervalSince(slot.admitted),
            generationSeconds: now.timeIntervalSince(first))))
        if slot.sequences.allSatisfy({ $0.finishReason != nil }) { close(slot.job) }
    }

    /// Ends an admitted job's stream, handing its place in `load` back first (once): a client that
    /// sends its next request the moment this one ends finds the slot free.
    private func close(_ job: Job) {
        if job.markClosed() {
            condition.withLock {
                load.running -= job.request.count
                load.kvTokens -= job.request.kvTokens
            }
        }
        job.continuation.finish()
    }

    /// Ends every unfinished choice of a slot from outside.
    private func end(_ slot: Slot, reason: FinishReason) {
        var slot = slot
        if slot.sequences.isEmpty {   // still in its prompt: every choice ends empty
            let r = slot.job.request
            slot.sequences = (0..<r.count).map { _ in GenerationSequence(promptIds: r.promptIds, options: r.options, tokenizer: tokenizer) }
            slot.next = Array(repeating: nil, count: r.count)
        }
        for c in slot.sequences.indices where slot.sequences[c].finishReason == nil {
            let step = slot.sequences[c].stop(reason)
            slot.next[c] = nil
            if !step.text.isEmpty { slot.job.continuation.yield(.text(index: c, step.text)) }
            finish(slot, choice: c)
        }
        close(slot.job)
    }

    private func fail(_ slot: Slot, _ error: Error) {
        slot.job.continuation.yield(.failed("\(error)"))
        slot.job.cancel()
        close(slot.job)
    }
}

extension KVCache {
    /// A placeholder holding nothing, left behind when a cache is moved out of a slot.
    static let empty = KVCache(layers: 0, capacity: 0, width: 0)
}
