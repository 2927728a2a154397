import Foundation
import QuillCore
import QuillFormats
import QuillData
import QuillEval
import QuillModels
import QuillTokenizers

/// A fine-tuning run: data in, a better model or adapter out, with everything a user watches
/// written into the run directory (`config.json`, `metrics.jsonl`, a TensorBoard event file,
/// `loss.svg`, `checkpoints/`, and at the end `adapter/` (PEFT) or `model/` (HF layout)).
///
/// ```swift
/// var config = TrainingConfiguration(model: "SmolLM2.gguf", data: ["train.jsonl"], output: "runs/demo")
/// config.lora = LoRAConfiguration(rank: 8, alpha: 16)
/// let summary = try Trainer(config).run()
/// ```
public final class Trainer {
    /// What the run reports as it goes.
    public enum Event {
        case loaded(model: String, parameters: Int, trainable: Int, estimate: MemoryEstimate)
        case data(trainWindows: Int, trainTokens: Int, validationWindows: Int, issues: [DataIssue])
        case resumed(step: Int)
        case step(StepReport)
        case evaluation(Evaluation)
        case checkpoint(step: Int, path: String)
        case checkpointFailed(step: Int, error: String)
        case earlyStop(step: Int)
        case finished(Summary)
    }

    public struct StepReport: Sendable {
        public let step: Int, totalSteps: Int
        public let loss: Double, learningRate: Float, gradientNorm: Double
        public let tokensPerSecond: Double, elapsed: Double, remaining: Double
    }

    /// One pass over the validation windows.
    public struct Evaluation: Sendable {
        public let step: Int
        /// Mean loss per target token (nats), and its exponential.
        public let loss: Double, perplexity: Double
        /// −Σ ln p / Σ bytes / ln 2 over the scored targets, the bytes being each target token's
        /// text (special tokens have none); nil without a tokenizer.
        public let bitsPerByte: Double?
        public let best: Bool
    }

    public struct Summary: Sendable {
        public let steps: Int
        public let initialValidationLoss: Double?, finalValidationLoss: Double?, bestValidationLoss: Double?
        public let initialBitsPerByte: Double?, finalBitsPerByte: Double?
        /// The model before training (step 0) against the model after, paired over validation
        /// windows, in bits per byte (nil without validation data or a tokenizer).
        public let comparison: PairedComparison?
        public let output: String
    }

    public let configuration: TrainingConfiguration
    public let runDirectory: URL
    public var onEvent: (Event) -> Void = { _ in }

    public init(_ configuration: TrainingConfiguration) {
        self.configuration = configuration
        runDirectory = URL(fileURLWithPath: configuration.output)
    }

    /// The run of a directory that `run()` started: its saved configuration.
    public static func resuming(_ directory: String) throws -> Trainer {
        let url = URL(fileURLWithPath: directory).appendingPathComponent("config.json")
        guard let data = FileContents.data(atPath: url.path) else {
            throw TrainingError.resume("\(url.path): no run to resume here (config.json is missing)")
        }
        do { return Trainer(try JSONDecoder().decode(TrainingConfiguration.self, from: data)) } catch {
            throw TrainingError.resume("\(url.path): cannot read the saved configuration: \(error)")
        }
    }

    // MARK: the run

    @discardableResult
    public func run(resume: Bool = false) throws -> Summary {
        let c = configuration
        try c.validate()
        let fm = FileManager.default
        if !resume && fm.fileExists(atPath: runDirectory.appendingPathComponent("checkpoints/latest.json").path) {
            throw TrainingError.invalidConfiguration("\(runDirectory.path) already holds a run: continue it with --resume, or choose another --out")
        }
        try fm.createDirectory(at: runDirectory.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)

        let model = try TrainableModel(loading: c.model, quantizedBase: c.quantizedBase)
        let tokenizer = try? TokenizerLoader.load(c.model)   // token shards train without one
        if let lora = c.lora { try model.attach(lora, seed: c.seed) }
        model.activationMemory = c.resolvedActivations
        let estimate = MemoryEstimate(model: model, batch: c.batchSize, length: c.sequenceLength)
        onEvent(.loaded(model: c.model, parameters: model.parameters.count, trainable: model.trainable.parameters.count, estimate: estimate))
        try estimate.check(lora: c.lora != nil, accumulation: c.accumulation)

        // data
        var reader = TrainingDataReader(tokenizer: tokenizer)
        reader.strict = c.strictData
        var examples: [TokenizedExample] = []
        for path in c.data { examples += try reader.read(path) }
        var validationExamples: [TokenizedExample] = []
        if let validation = c.validation {
            validationExamples = try reader.read(validation)
        } else if c.validationFraction > 0 && examples.count > 1 {
            var random = SplitMix64(seed: c.seed ^ 0x5EED)
            examples.shuffle(using: &random)
            let held = max(1, Int((Double(examples.count) * c.validationFraction).rounded()))
            validationExamples = Array(examples.suffix(held))
            examples.removeLast(held)
        }
        let padding = tokenizer?.eosTokenId ?? 0
        let train = PackedWindows(examples, length: c.sequenceLength, padding: padding)
        let validation = PackedWindows(validationExamples, length: c.sequenceLength, padding: padding)
        onEvent(.data(trainWindows: train.count, trainTokens: train.targetTokens, validationWindows: validation.count, issues: reader.issues))
        guard train.count > 0 else { throw TrainingError.noData("no training tokens in \(c.data.joined(separator: ", "))") }

        let windowsPerStep = c.batchSize * c.accumulation
        let totalSteps = c.steps ?? max(1, Int((Double(train.count) * c.epochs / Double(windowsPerStep)).rounded(.up)))
        let schedule = LearningRateSchedule(c.schedule, peak: c.resolvedLearningRate, warmupSteps: c.warmupSteps,
                                            totalSteps: totalSteps, minimumRatio: c.minimumLearningRateRatio)
        let stepper = OptimizerStep(model: model, hyperparameters: .init(beta1: c.beta1, beta2: c.beta2, epsilon: c.epsilon,
                                                                           weightDecay: c.weightDecay), clip: c.clip)
        let optimizer = stepper.optimizer

        var state = RunState()
        let checkpoints = Checkpoints(directory: runDirectory.appendingPathComponent("checkpoints"), keep: c.keepCheckpoints)
        if resume, let latest = try checkpoints.latest() {
            state = try checkpoints.load(latest, model: model, optimizer: optimizer)
            onEvent(.resumed(step: state.step))
        } else {
            try AtomicFile.write(try JSONEncoder.pretty.encode(c), to: runDirectory.appendingPathComponent("config.json"))
        }
        let metrics = try MetricsLog(directory: runDirectory, truncateAfter: resume ? state.step : 0)
        let board = try TensorBoardWriter(directory: runDirectory)

        let evaluatedWindows = min(validation.count, c.evaluationWindows)
        let windowBytes = tokenizer.map { tokenizer -> [Int] in
            var bytes = TokenBytes(tokenizer)
            return bytes.windowBytes(validation.targets.prefix(evaluatedWindows))
        }

        /// Each validation window's loss (the first `evaluationWindows`).
        func evaluate() throws -> [LossSum]? {
            guard evaluatedWindows > 0 else { return nil }
            var losses: [LossSum] = []
            for first in stride(from: 0, to: evaluatedWindows, by: c.batchSize) {
                var x: [Int32] = [], y: [Int32] = []
                for i in first..<(first + c.batchSize) {   // a short last batch is padded with loss-free windows
                    x += i < evaluatedWindows ? validation.inputs[i] : [Int32](repeating: padding, count: c.sequenceLength)
                    y += i < evaluatedWindows ? validation.targets[i] : [Int32](repeating: -1, count: c.sequenceLength)
                }
                losses += try model.windowLosses(tokens: x, targets: y, batch: c.batchSize, length: c.sequenceLength)
            }
            return Array(losses.prefix(evaluatedWindows))
        }

        /// Bits per byte of the validation windows from their summed losses.
        func bitsPerByte(_ windowSums: [Double]) -> Double? {
            guard let windowBytes else { return nil }
            let bytes = windowBytes.reduce(0, +)
            return bytes > 0 ? windowSums.reduce(0, +) / Double(bytes) / log(2) : nil
        }

        func recordEvaluation(_ losses: [LossSum], step: Int) throws {
            let loss = losses.reduce(LossSum(), +).mean, bpb = bitsPerByte(losses.map(\.sum))
            let best = state.bestValidationLoss.map { loss < $0 } ?? true
            if best { state.bestValidationLoss = loss; state.bestStep = step; state.evaluationsWithoutImprovement = 0 }
            else { state.evaluationsWithoutImprovement += 1 }
            state.validation.append(.init(step: step, loss: loss))
            state.latestWindowLosses = losses.map(\.sum)
            var record: [String: Any] = ["step": step, "validation_loss": loss, "validation_perplexity": exp(loss)]
            if let bpb { record["validation_bits_per_byte"] = bpb }
            try metrics.append(record)
            try board.scalar("validation/loss", loss, step: step)
            try board.scalar("validation/perplexity", exp(loss), step: step)
            if let bpb { try board.scalar("validation/bits_per_byte", bpb, step: step) }
            onEvent(.evaluation(Evaluation(step: step, loss: loss, perplexity: exp(loss), bitsPerByte: bpb, best: best)))
        }

        if state.step == 0, let losses = try evaluate() {
            state.initialValidationLoss = losses.reduce(LossSum(), +).mean
            state.initialWindowLosses = losses.map(\.sum)
            try recordEvaluation(losses, step: 0)
        }
        let started = Date(), firstStep = state.step
        var order = WindowOrder(count: train.count, seed: c.seed)
        var stoppedEarly = false
        while state.step < totalSteps {
            let t0 = Date()
            let windows = (0..<windowsPerStep).map { order.window(state.cursor + $0) }
            let microBatches = (0..<c.accumulation).map { micro in
                let chosen = windows[(micro * c.batchSize)..<((micro + 1) * c.batchSize)]
                return OptimizerStep.MicroBatch(tokens: chosen.flatMap { train.inputs[$0] }, targets: chosen.flatMap { train.targets[$0] })
            }
            let lr = schedule.rate(at: state.step)
            let taken = try stepper.take(microBatches, batch: c.batchSize, length: c.sequenceLength, lr: lr)
            let loss = taken.loss, norm = taken.gradientNorm
            state.step += 1
            state.cursor += windowsPerStep
            state.training.append(.init(step: state.step, loss: loss))

            let elapsed = Date().timeIntervalSince(started)
            let perStep = elapsed / Double(state.step - firstStep)
            let report = StepReport(step: state.step, totalSteps: totalSteps, loss: loss, learningRate: lr, gradientNorm: norm,
                                    tokensPerSecond: Double(windowsPerStep * c.sequenceLength) / Date().timeIntervalSince(t0),
                                    elapsed: elapsed, remaining: perStep * Double(totalSteps - state.step))
            if state.step % c.logEvery == 0 || state.step == totalSteps {
                try metrics.append(["step": state.step, "loss": loss, "learning_rate": Double(lr), "gradient_norm": norm,
                                    "tokens_per_second": report.tokensPerSecond, "elapsed": elapsed])
                try board.scalar("train/loss", loss, step: state.step)
                try board.scalar("train/learning_rate", Double(lr), step: state.step)
            }
            onEvent(.step(report))

            if state.step % c.evaluateEvery == 0 || state.step == totalSteps, let losses = try evaluate() {
                try recordEvaluation(losses, step: state.step)
                try writePlot(state)
                if let patience = c.earlyStoppingPatience, state.evaluationsWithoutImprovement >= patience {
                    onEvent(.earlyStop(step: state.step))
                    stoppedEarly = true
                }
            }
            if state.step % c.checkpointEvery == 0 || state.step == totalSteps || stoppedEarly {
                do {
                    let path = try checkpoints.save(state, model: model, optimizer: optimizer)
                    onEvent(.checkpoint(step: state.step, path: path))
                } catch {
                    // the previous checkpoint is untouched; training goes on and tries again next time
                    onEvent(.checkpointFailed(step: state.step, error: "\(error)"))
                }
            }
            if stoppedEarly { break }
        }
        try writePlot(state)

        // the result: the adapter, or the whole model, in the layouts other tools load
        let output: URL
        if c.lora != nil {
            output = runDirectory.appendingPathComponent("adapter")
            try model.saveAdapter(to: output, baseModel: c.model)
        } else {
            output = runDirectory.appendingPathComponent("model")
            try model.saveHuggingFace(to: output, tokenizer: tokenizer)
        }
        // before against after, on the same validation windows
        var comparison: PairedComparison?
        if let windowBytes, let before = state.initialWindowLosses, let after = state.latestWindowLosses,
           before.count == windowBytes.count, after.count == windowBytes.count, windowBytes.reduce(0, +) > 0 {
            func scores(_ sums: [Double]) -> [DocumentScore] {
                zip(sums, windowBytes).enumerated().map { i, pair in
                    DocumentScore(source: "validation window \(i)", logLikelihood: -pair.0, squaredLogLikelihood: 0, tokens: 0, bytes: pair.1, words: 0)
                }
            }
            comparison = try PairedComparison(baseline: ("the model before training", scores(before)),
                                              candidate: ("the fine-tune", scores(after)), resamples: 1000, seed: c.seed,
                                              unit: "validation windows")
            if let comparison { try AtomicFile.write(try JSONEncoder.pretty.encode(comparison), to: runDirectory.appendingPathComponent("comparison.json")) }
        }
        let summary = Summary(steps: state.step, initialValidationLoss: state.initialValidationLoss,
                              finalValidationLoss: state.validation.last?.loss, bestValidationLoss: state.bestValidationLoss,
                              initialBitsPerByte: state.initialWindowLosses.flatMap(bitsPerByte),
                              finalBitsPerByte: state.latestWindowLosses.flatMap(bitsPerByte),
                              comparison: comparison, output: output.path)
        onEvent(.finished(summary))
        return summary
    }

    private func writePlot(_ state: RunState) throws {
        let svg = LossPlot.svg(training: state.training.map { ($0.step, $0.loss) }, validation: state.validation.map { ($0.step, $0.loss) },
                               title: "quill train: \((configuration.model as NSString).lastPathComponent)")
        try AtomicFile.write(Data(svg.utf8), to: runDirectory.appendingPathComponent("loss.svg"))
    }
}

/// Where a run stands: what a checkpoint holds besides the weights and optimizer moments.
struct RunState: Codable {
    struct Point: Codable { let step: Int; let loss: Double }
    var step = 0
    /// Windows consumed so far (all epochs): the data position.
    var cursor = 0
    var initialValidationLoss: Double?
    var bestValidationLoss: Double?
    var bestStep: Int?
    var evaluationsWithoutImprovement = 0
    var dropoutState: UInt64?
    var training: [Point] = []
    var validation: [Point] = []
    /// Σ loss of each validation window at step 0 and at the latest evaluation: the paired
    /// comparison at the end of the run.
    var initialWindowLosses: [Double]?
    var latestWindowLosses: [Double]?
}

/// The UTF-8 length of each token's text, as it reads inside a text (special tokens: none).
struct TokenBytes {
    let tokenizer: Tokenizer
    private var cache: [Int32: Int] = [:]

    init(_ tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    mutating func count(_ id: Int32) -> Int {
        if let known = cache[id] { return known }
        let n = tokenizer.decodeBytes([id], skipSpecialTokens: true, first: false).count
        cache[id] = n
        return n
    }

    /// Bytes of the scored targets (≥ 0) of each window.
    mutating func windowBytes(_ windows: ArraySlice<[Int32]>) -> [Int] {
        windows.map { $0.reduce(0) { $1 >= 0 ? $0 + count($1) : $0 } }
    }
}

/// The order windows are drawn in: each epoch visits every window once, shuffled by the seed
/// and the epoch number, so a data position (windows drawn so far) says where a run stands.
struct WindowOrder {
    let count: Int, seed: UInt64
    private var epoch = -1
    private var order: [Int] = []

    init(count: Int, seed: UInt64) { self.count = count; self.seed = seed }

    /// The index of the `i`-th window drawn (across epochs).
    mutating func window(_ i: Int) -> Int {
        if i / count != epoch {   // a new epoch's order, drawn once
            epoch = i / count
            order = Array(0..<count)
            var random = SplitMix64(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
            order.shuffle(using: &random)
        }
        return order[i % count]
    }
}

/// `metrics.jsonl`: one JSON object per line, appended and flushed as the run goes.
final class MetricsLog {
    private let handle: FileHandle

    init(directory: URL, truncateAfter step: Int) throws {
        let url = directory.appendingPathComponent("metrics.jsonl")
        if step > 0, let data = FileContents.data(atPath: url.path) {
            // a resumed run redoes the steps after its checkpoint: drop their lines
            let kept = data.split(separator: UInt8(ascii: "\n")).filter { line in
                guard let object = try? JSONText.object(Data(line)) as? [String: Any], let s = object["step"] as? Int else { return false }
                return s <= step
            }
            try AtomicFile.write(Data(kept.map { Data($0) + Data("\n".utf8) }.joined()), to: url)
        } else if step == 0 || !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)   // a failure surfaces as the open below throws
        }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    func append(_ fields: [String: Any]) throws {
        var line = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        line.append(UInt8(ascii: "\n"))
        try handle.write(contentsOf: line)
    }
}

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
