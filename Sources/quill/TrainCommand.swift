import ArgumentParser
import Foundation
import QuillTokenizers
import QuillFormats
import QuillData
import QuillModels
import QuillTraining
import QuillCore

struct TrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune a model, full or LoRA.",
        subcommands: [Run.self, Bench.self, Logits.self],
        defaultSubcommand: Run.self)

    /// `quill train --model M --data train.jsonl --out runs/NAME [--lora ...]`, a TOML config, or `--resume runs/NAME`.
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Fine-tune a model on your texts (full or LoRA) and write the run directory.",
            discussion: """
                Data: JSONL lines with "text", "prompt" + "completion" (loss on the completion) or "messages" \
                (loss on assistant turns, rendered with the model's chat template); .txt files; token shards (NAME.json) \
                from quill prepare. The run directory gets config.json, metrics.jsonl, a TensorBoard event file, \
                loss.svg, checkpoints/, and adapter/ (PEFT) or model/ (Hugging Face layout) at the end.
                """)
        @Option(name: [.customShort("m"), .customLong("model")], help: "GGUF file or Hugging Face directory (default: SmolLM2 from the cache).")
        var model: String?
        @Option(name: .customLong("data"), help: "Training file (repeatable).") var data: [String] = []
        @Option(name: .customLong("val"), help: "Validation file (default: hold out --val-fraction of the data).") var validation: String?
        @Option(help: "Fraction of the data held out for validation when there is no --val file.") var valFraction: Double?
        @Option(name: .customLong("out"), help: "Run directory.") var output: String?
        @Option(help: "A TOML file with these options (flags given here override it).") var config: String?
        @Option(help: "Continue the run in this directory from its latest checkpoint.") var resume: String?
        @Flag(help: "Train LoRA adapters instead of every weight.") var lora = false
        @Flag(help: "QLoRA: LoRA adapters on the GGUF model's linear weights kept quantized in memory.") var qlora = false
        @Option(help: "LoRA rank.") var rank: Int?
        @Option(help: "LoRA alpha.") var alpha: Float?
        @Option(help: "LoRA dropout.") var loraDropout: Float?
        @Option(help: "LoRA target modules, comma-separated (default q_proj,v_proj; c_attn for GPT-2).") var targets: String?
        @Flag(help: "rsLoRA scaling (alpha / sqrt(rank)).") var rslora = false
        @Option(help: "Optimizer steps (default: from --epochs).") var steps: Int?
        @Option(help: "Passes over the data when --steps is not given.") var epochs: Double?
        @Option(help: "Sequences per micro-batch.") var batchSize: Int?
        @Option(help: "Tokens per sequence.") var sequenceLength: Int?
        @Option(help: "Micro-batches per optimizer step.") var accumulation: Int?
        @Option(name: .customLong("lr"), help: "Peak learning rate (default 2e-4 for LoRA, 5e-5 full).") var learningRate: Float?
        @Option(help: "constant, linear or cosine.") var schedule: LearningRateSchedule.Kind?
        @Option(help: "Warmup steps.") var warmup: Int?
        @Option(help: "AdamW weight decay (matrices only).") var weightDecay: Float?
        @Option(help: "Clip gradients to this global norm.") var clip: Double?
        @Option(help: "Evaluate every N steps.") var evalEvery: Int?
        @Option(help: "Stop after N evaluations without improvement.") var patience: Int?
        @Option(help: "Checkpoint every N steps.") var checkpointEvery: Int?
        @Option(help: "Checkpoints to keep (the best is kept too).") var keepCheckpoints: Int?
        @Option(help: "Random seed.") var seed: UInt64?
        @Option(help: "keep, lean or checkpointed (default: lean for full fine-tuning, keep for LoRA).")
        var activations: TrainableModel.ActivationMemory?
        @Flag(help: "Stop at the first bad data line instead of skipping it.") var strictData = false

        @OptionGroup var threads: ThreadsOption

        func run() async throws {
            threads.apply()
            let trainer: Trainer
            if let resume {
                trainer = try Trainer.resuming(resume)
            } else {
                var c = try config.map(TrainingConfiguration.read(toml:))
                    ?? TrainingConfiguration(model: "", data: [], output: "")
                if let model { c.model = try QuillCache.resolveModel(model) }
                if c.model.isEmpty { c.model = QuillCache.defaultModel.path }
                if !data.isEmpty { c.data = data }
                if let validation { c.validation = validation }
                if let valFraction { c.validationFraction = valFraction }
                if let output { c.output = output }
                if c.output.isEmpty { throw ValidationError("where should the run go? give --out runs/NAME") }
                if qlora { c.quantizedBase = true }
                if lora || qlora || rank != nil || targets != nil || c.lora != nil {
                    var l = c.lora ?? LoRAConfiguration()
                    if let rank { l.rank = rank; if alpha == nil && c.lora == nil { l.alpha = Float(2 * rank) } }
                    if let alpha { l.alpha = alpha }
                    if let loraDropout { l.dropout = loraDropout }
                    if let targets { l.targets = targets.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
                    if rslora { l.rsLoRA = true }
                    c.lora = l
                }
                // a flag given replaces the file's value; one not given leaves it
                func override<T>(_ value: T?, _ field: WritableKeyPath<TrainingConfiguration, T>) { if let value { c[keyPath: field] = value } }
                func override<T>(_ value: T?, _ field: WritableKeyPath<TrainingConfiguration, T?>) { if let value { c[keyPath: field] = value } }
                override(steps, \.steps); override(epochs, \.epochs); override(batchSize, \.batchSize)
                override(sequenceLength, \.sequenceLength); override(accumulation, \.accumulation)
                override(learningRate, \.learningRate); override(schedule, \.schedule); override(warmup, \.warmupSteps)
                override(weightDecay, \.weightDecay); override(clip, \.clip); override(evalEvery, \.evaluateEvery)
                override(patience, \.earlyStoppingPatience); override(checkpointEvery, \.checkpointEvery)
                override(keepCheckpoints, \.keepCheckpoints); override(seed, \.seed); override(activations, \.activations)
                if strictData { c.strictData = true }
                trainer = Trainer(c)
            }
            let progress = ProgressLine()
            trainer.onEvent = { event in progress.show(event) }
            do {
                try trainer.run(resume: resume != nil)
            } catch let issue as DataIssue where issue.line > 0 {
                throw TrainFailure(message: "bad data: \(issue) (without --strict-data such lines are skipped and reported)")
            }
        }
    }

    /// One training step's time and the process's peak memory, for a model and batch shape.
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time full or LoRA training steps (fp32, random tokens) and report peak memory.",
            discussion: "Benchmarks/train_vs_pytorch.py runs this beside PyTorch (+ peft) and prints the ratios.")
        @Option(name: [.customShort("m"), .customLong("model")],
                help: "GGUF file or Hugging Face directory, or gpt2-124m-random for GPT-2 124M from scratch (default: SmolLM2 from the cache).")
        var model: String?
        @Flag(help: "Train LoRA adapters (rank 8 on q_proj and v_proj, or c_attn) instead of every weight.") var lora = false
        @Flag(help: "LoRA on the linear weights kept quantized (QLoRA).") var qlora = false
        @Option(help: "Sequences per step.") var batch = 4
        @Option(help: "Tokens per sequence.") var length = 256
        @Option(help: "Timed steps (after one warm-up step).") var steps = 3
        @Option(help: "LoRA rank.") var rank = 8
        @Option(help: "What the forward keeps for the backward: keep, lean or checkpointed (default: lean for full fine-tuning, keep for LoRA).")
        var activations: TrainableModel.ActivationMemory?

        func validate() throws {
            guard batch >= 1, length >= 1, steps >= 1, rank >= 1 else {
                throw ValidationError("--batch, --length, --steps and --rank must be at least 1 (got \(batch), \(length), \(steps), \(rank))")
            }
        }

        @OptionGroup var threads: ThreadsOption

        func run() async throws {
            threads.apply()
            let start = Date()
            let trainable: TrainableModel
            if model == "gpt2-124m-random" {
                trainable = TrainableModel.randomGPT2()
            } else {
                trainable = try TrainableModel(loading: try model.map(QuillCache.resolveModel) ?? QuillCache.defaultModel.path,
                                               quantizedBase: qlora)
            }
            if lora || qlora {
                try trainable.attach(LoRAConfiguration(rank: rank, alpha: Float(2 * rank)))
            }
            trainable.activationMemory = activations ?? (lora || qlora ? .keep : .lean)
            let residentAfterLoading = ProcessMemory.residentBytes   // weights only, as PyTorch's figure: no gradients or moments yet
            let stepper = OptimizerStep(model: trainable, hyperparameters: .init(weightDecay: 0.01), clip: 1)
            let loaded = Date().timeIntervalSince(start)
            var random = SplitMix64(seed: 1)
            let vocab = UInt64(trainable.shape.vocabularySize)
            var times: [Double] = []
            for step in 0...steps {
                let tokens = (0..<(batch * length)).map { _ in Int32(random.next() % vocab) }
                let targets = tokens.indices.map { $0 + 1 < tokens.count ? tokens[$0 + 1] : -1 }
                let t0 = Date()
                let taken = try stepper.take([.init(tokens: tokens, targets: targets)], batch: batch, length: length, lr: 1e-5)
                let seconds = Date().timeIntervalSince(t0)
                if step > 0 { times.append(seconds) }
                print(String(format: "step %d: %.3f s, loss %.4f", step, seconds, taken.loss))
            }
            let mean = times.reduce(0, +) / Double(times.count)
            let parametersTrained = trainable.trainable.parameters.count
            print(String(format: "%@ %@ step, batch %d x %d, activations %@, %d threads: %.3f s/step (load %.1f s), %d trainable parameters, RSS after loading %.0f MB, peak RSS %.0f MB",
                         trainable.shape.architecture, qlora ? "QLoRA" : lora ? "LoRA" : "full", batch, length, trainable.activationMemory.rawValue,
                         ThreadPool.defaultThreads, mean, loaded, parametersTrained,
                         Double(residentAfterLoading) / 1e6, Double(ProcessMemory.peakResidentBytes) / 1e6))
        }
    }
}

extension TrainableModel.ActivationMemory: ExpressibleByArgument {}
extension LearningRateSchedule.Kind: ExpressibleByArgument {}

/// An error printed as it is, without the usage text ArgumentParser adds to validation errors.
struct TrainFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// What `quill train` prints: one progress line redrawn in place on a terminal (step, loss,
/// learning rate, tokens/s, ETA), and a line per evaluation, checkpoint and finish.
final class ProgressLine: @unchecked Sendable {
    private let terminal = isatty(STDERR_FILENO) != 0
    private var lastDrawn = Date.distantPast

    func show(_ event: Trainer.Event) {
        switch event {
        case let .loaded(model, parameters, trainable, estimate):
            line("model \((model as NSString).lastPathComponent): \(parameters) parameters, \(trainable) trained; memory estimate \(estimate)")
        case let .data(windows, tokens, validation, issues):
            line("data: \(windows) windows, \(tokens) target tokens for training, \(validation) windows for validation")
            for issue in issues.prefix(10) { line("skipped \(issue)") }
            if issues.count > 10 { line("skipped \(issues.count - 10) more bad lines") }
        case .resumed(let step): line("resumed at step \(step)")
        case .step(let r):
            guard terminal || r.step == r.totalSteps || r.step % 10 == 0 else { return }
            guard !terminal || Date().timeIntervalSince(lastDrawn) > 0.2 || r.step == r.totalSteps else { return }
            lastDrawn = Date()
            let text = String(format: "step %d/%d  loss %.4f  lr %.2e  %.0f tok/s  elapsed %@  ETA %@", r.step, r.totalSteps, r.loss,
                              r.learningRate, r.tokensPerSecond, Self.duration(r.elapsed), Self.duration(r.remaining))
            if terminal { FileHandle.standardError.write(Data("\r\u{1B}[2K\(text)".utf8)) } else { line(text) }
        case .evaluation(let e):
            line(String(format: "step %d: validation loss %.4f, perplexity %.2f", e.step, e.loss, e.perplexity)
                 + (e.bitsPerByte.map { String(format: ", %.4f bits/byte", $0) } ?? "") + (e.best ? " (best)" : ""))
        case let .checkpoint(step, path): line("step \(step): checkpoint \(path)")
        case let .checkpointFailed(step, error): line("step \(step): checkpoint failed, the previous one is kept: \(error)")
        case .earlyStop(let step): line("step \(step): validation loss stopped improving; stopping early")
        case .finished(let s):
            var text = "done after \(s.steps) steps; wrote \(s.output)"
            if let first = s.initialValidationLoss, let last = s.finalValidationLoss {
                text += String(format: "\nheld-out perplexity %.2f -> %.2f", exp(first), exp(last))
                if let a = s.initialBitsPerByte, let b = s.finalBitsPerByte { text += String(format: ", bits per byte %.4f -> %.4f", a, b) }
            }
            if let comparison = s.comparison { text += "\n" + comparison.verdict }
            line(text)
        }
    }

    private func line(_ text: String) {
        FileHandle.standardError.write(Data(((terminal ? "\r\u{1B}[2K" : "") + text + "\n").utf8))
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds)
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s / 60 % 60) : String(format: "%dm%02ds", s / 60, s % 60)
    }
}

extension TrainCommand {
    /// Logits of given tokens from a model with an adapter, as JSON: for checking adapters against HF PEFT.
    struct Logits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the fp32 logits [tokens][vocabulary] of a model (and a PEFT adapter) as JSON.",
            discussion: "Tests/TrainingChecks/check_adapter_in_peft.py compares them with HF PEFT's.")
        @Option(name: [.customShort("m"), .customLong("model")], help: "GGUF file or Hugging Face directory.") var model: String?
        @Option(help: "A PEFT LoRA adapter directory.") var adapter: String?
        @Option(help: "Comma-separated token ids.") var tokens: String

        func run() async throws {
            let trainable = try TrainableModel(loading: try model.map(QuillCache.resolveModel) ?? QuillCache.defaultModel.path)
            if let adapter { try trainable.loadAdapter(from: URL(fileURLWithPath: adapter)) }
            let ids = try tokens.split(separator: ",").map { s -> Int32 in
                guard let id = Int32(s.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--tokens: \(s) is not a token id") }
                return id
            }
            guard !ids.isEmpty else { throw ValidationError("--tokens: give at least one token id, as 1,2,3") }
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= trainable.shape.vocabularySize }) {
                throw ValidationError("--tokens: \(bad) is outside the vocabulary (0..<\(trainable.shape.vocabularySize))")
            }
            let logits = try trainable.logits(tokens: ids, batch: 1, length: ids.count)
            let v = trainable.shape.vocabularySize
            let rows = (0..<ids.count).map { i in "[" + logits[(i * v)..<((i + 1) * v)].map { String($0) }.joined(separator: ",") + "]" }
            print("[" + rows.joined(separator: ",\n") + "]")
        }
    }
}
