import ArgumentParser
import Foundation
import QuillFormats
import QuillModels
import QuillTraining

struct TrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune a model, full or LoRA.",
        subcommands: [Bench.self])

    /// One training step's time and the process's peak memory, for a model and batch shape.
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time full or LoRA training steps (fp32, random tokens) and report peak memory.",
            discussion: "Benchmarks/train_vs_pytorch.py runs this beside PyTorch (+ peft) and prints the ratios.")
        @Option(name: [.customShort("m"), .customLong("model")],
                help: "GGUF file or Hugging Face directory, or gpt2-124m-random for GPT-2 124M from scratch (default: SmolLM2 from the cache).")
        var model: String?
        @Flag(help: "Train LoRA adapters (rank 8 on q_proj and v_proj, or c_attn) instead of every weight.") var lora = false
        @Option(help: "Sequences per step.") var batch = 4
        @Option(help: "Tokens per sequence.") var length = 256
        @Option(help: "Timed steps (after one warm-up step).") var steps = 3
        @Option(help: "LoRA rank.") var rank = 8
        @Option(help: "What the forward keeps for the backward: keep, lean or checkpointed (default: lean for full fine-tuning, keep for LoRA).")
        var activations: TrainableModel.ActivationMemory?

        func run() async throws {
            let start = Date()
            let trainable: TrainableModel
            if model == "gpt2-124m-random" {
                trainable = TrainableModel.randomGPT2()
            } else {
                trainable = try TrainableModel(loading: try model.map(QuillCache.resolveModel) ?? QuillCache.defaultModel.path)
            }
            if lora {
                let targets = trainable.shape.family == .gpt2 ? ["c_attn"] : ["q_proj", "v_proj"]
                try trainable.attach(LoRA.Configuration(rank: rank, alpha: Float(2 * rank), targets: targets))
            }
            trainable.activationMemory = activations ?? (lora ? .keep : .lean)
            let (parameters, gradients) = trainable.trainable
            let optimizer = AdamW(for: parameters, .init(weightDecay: 0.01))
            let loaded = Date().timeIntervalSince(start)
            var random = SplitMix64(seed: 1)
            let vocab = UInt64(trainable.shape.vocabularySize)
            var times: [Double] = []
            for step in 0...steps {
                let tokens = (0..<(batch * length)).map { _ in Int32(random.next() % vocab) }
                let targets = tokens.indices.map { $0 + 1 < tokens.count ? tokens[$0 + 1] : -1 }
                let t0 = Date()
                gradients.zero()
                let loss = try trainable.step(tokens: tokens, targets: targets, batch: batch, length: length,
                                              normalizer: Float(targets.filter { $0 >= 0 }.count))
                GradientClipping.clip(gradients, maxNorm: 1)
                optimizer.update(parameters, gradients: gradients, lr: 1e-5)
                let seconds = Date().timeIntervalSince(t0)
                if step > 0 { times.append(seconds) }
                print(String(format: "step %d: %.3f s, loss %.4f", step, seconds, loss.mean))
            }
            let mean = times.reduce(0, +) / Double(times.count)
            let parametersTrained = parameters.count
            print(String(format: "%@ %@ step, batch %d x %d, activations %@: %.3f s/step (load %.1f s), %d trainable parameters, peak RSS %.0f MB",
                         trainable.shape.architecture, lora ? "LoRA" : "full", batch, length, trainable.activationMemory.rawValue,
                         mean, loaded, parametersTrained,
                         Double(ProcessMemory.peakResidentBytes) / 1e6))
        }
    }
}

/// The process's memory as Linux reports it (/proc/self/status).
enum ProcessMemory {
    static var peakResidentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb * 1024
    }
}

extension TrainableModel.ActivationMemory: ExpressibleByArgument {}
