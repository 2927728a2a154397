import Foundation
import QuillCore
import QuillTokenizers
import QuillFormats
import QuillModels

/// Checkpoints of a run, `checkpoints/step-00000100/` each: the trained weights
/// (`trainable.safetensors`: the adapters, or the whole model), the optimizer's moments and step
/// (`optimizer.safetensors`), and `state.json` (step, data position, dropout's random state,
/// best validation loss, the loss history). A checkpoint is written into a hidden directory and
/// renamed into place only when complete, then `latest.json` is replaced atomically: a crash
/// or a full disk leaves the previous checkpoint as it was. The last `keep` are kept, and the
/// one with the best validation loss.
struct Checkpoints {
    let directory: URL
    let keep: Int

    private var latestFile: URL { directory.appendingPathComponent("latest.json") }

    struct Latest: Codable { let name: String; let step: Int; let best: String? }

    func latest() throws -> URL? {
        guard let data = FileContents.data(atPath: latestFile.path) else { return nil }
        let latest = try JSONDecoder().decode(Latest.self, from: data)
        return directory.appendingPathComponent(latest.name)
    }

    func save(_ state: RunState, model: TrainableModel, optimizer: AdamW) throws -> String {
        let fm = FileManager.default
        let name = String(format: "step-%08d", state.step)
        let final = directory.appendingPathComponent(name)
        let partial = directory.appendingPathComponent(".\(name).partial")
        try? fm.removeItem(at: partial)
        try fm.createDirectory(at: partial, withIntermediateDirectories: true)
        do {
            var saved = state
            saved.dropoutState = model.lora?.random.state
            let (parameters, _) = model.trainable
            try parameters.write(to: partial.appendingPathComponent("trainable.safetensors"))
            try optimizer.m.write(to: partial.appendingPathComponent("optimizer-m.safetensors"), metadata: ["step": String(optimizer.step)])
            try optimizer.v.write(to: partial.appendingPathComponent("optimizer-v.safetensors"))
            try AtomicFile.write(try JSONEncoder.pretty.encode(saved), to: partial.appendingPathComponent("state.json"))
            try? fm.removeItem(at: final)
            try fm.moveItem(at: partial, to: final)
        } catch {
            try? fm.removeItem(at: partial)
            throw error
        }
        let previous = (try? FileContents.data(atPath: latestFile.path).map { try JSONDecoder().decode(Latest.self, from: $0) }) ?? nil
        let best = state.bestStep == state.step ? name : previous?.best
        try AtomicFile.write(try JSONEncoder.pretty.encode(Latest(name: name, step: state.step, best: best)), to: latestFile)
        prune(keeping: [name, best].compactMap { $0 })
        return final.path
    }

    /// Deletes all but the newest `keep` checkpoints and the named ones.
    private func prune(keeping protected: [String]) {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix("step-") }.sorted()
        for name in names.dropLast(keep) where !protected.contains(name) {
            try? fm.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    func load(_ checkpoint: URL, model: TrainableModel, optimizer: AdamW) throws -> RunState {
        guard let data = FileContents.data(atPath: checkpoint.appendingPathComponent("state.json").path) else {
            throw TrainingError.resume("\(checkpoint.path): state.json is missing")
        }
        let state = try JSONDecoder().decode(RunState.self, from: data)
        let (parameters, _) = model.trainable
        try parameters.read(from: checkpoint.appendingPathComponent("trainable.safetensors").path)
        let metadata = try optimizer.m.read(from: checkpoint.appendingPathComponent("optimizer-m.safetensors").path)
        try optimizer.v.read(from: checkpoint.appendingPathComponent("optimizer-v.safetensors").path)
        guard let step = metadata["step"].flatMap(Int.init) else {
            throw TrainingError.resume("\(checkpoint.path): the optimizer's step count is missing")
        }
        optimizer.step = step
        if let random = state.dropoutState { model.lora?.random = SplitMix64(seed: random) }
        return state
    }
}

/// What a run will hold in memory, estimated before it starts.
public struct MemoryEstimate: Sendable, CustomStringConvertible {
    public let weights: Int, gradients: Int, optimizer: Int, activations: Int
    public var total: Int { weights + gradients + optimizer + activations + 80 << 20 }   // + the runtime

    public init(model: TrainableModel, batch: Int, length: Int) {
        let s = model.shape, n = batch * length, c = s.channels, ff = s.intermediateSize
        let trainable = model.trainable.parameters.count
        weights = model.parameters.count * 4 + (model.lora?.parameters.count ?? 0) * 4 + model.frozenBytes
        gradients = trainable * 4
        optimizer = trainable * 8
        let mlp = s.family == .llama ? 2 * ff : ff
        let perLayer: Int
        switch model.activationMemory {
        case .keep: perLayer = 2 * c + s.qDim + 2 * s.kvDim + mlp + 4
        case .lean: perLayer = 2 * c + 4
        case .checkpointed: perLayer = c
        }
        let slot = model.activationMemory == .keep ? 0 : (model.activationMemory == .lean ? s.qDim + 2 * s.kvDim + mlp : 2 * c + s.qDim + 2 * s.kvDim + mlp + 4)
        let scratch = 6 * c + 3 * s.qDim + 2 * s.kvDim + 5 * ff + max(ff, 3 * c)
        activations = 4 * (n * (s.layers * perLayer + slot + scratch) + min(n, 128) * s.vocabularySize)
    }

    public var description: String {
        func gb(_ b: Int) -> String { String(format: "%.2f GB", Double(b) / 1e9) }
        return "\(gb(total)) (weights \(gb(weights)), gradients \(gb(gradients)), optimizer \(gb(optimizer)), activations \(gb(activations)))"
    }

    /// Refuses, with what to change, when the run would not fit in memory.
    public func check(lora: Bool, accumulation: Int) throws {
        guard let available = ProcessMemory.availableBytes, total > available else { return }
        var advice: [String] = []
        if !lora { advice.append("train LoRA adapters (--lora) instead of every weight") }
        advice.append("lower --batch-size and raise --accumulation to keep the same tokens per step")
        advice.append("shorter --sequence-length")
        advice.append("--activations checkpointed")
        throw TrainingError.doesNotFit(String(format: "this run needs about %.2f GB but %.2f GB is available: %@. Try: %@.",
                                              Double(total) / 1e9, Double(available) / 1e9, description, advice.joined(separator: "; ")))
    }
}
