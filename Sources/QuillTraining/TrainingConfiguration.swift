import Foundation
import QuillTokenizers
import QuillModels

/// Everything a run needs, as `quill train` flags or a TOML file give it; saved resolved as
/// `config.json` in the run directory, from which `--resume` continues.
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    public var model: String
    public var data: [String]
    public var validation: String?
    /// Held out from `data` when there is no validation file.
    public var validationFraction: Double = 0.05
    public var output: String

    public var lora: LoRAConfiguration?
    /// QLoRA: keep the base's linear weights quantized in memory (GGUF models, with LoRA).
    public var quantizedBase = false
    public var steps: Int?
    public var epochs: Double = 1
    public var batchSize = 4
    public var sequenceLength = 256
    public var accumulation = 1

    public var learningRate: Float?
    public var schedule: LearningRateSchedule.Kind = .cosine
    public var warmupSteps = 0
    public var minimumLearningRateRatio: Float = 0.1
    public var weightDecay: Float = 0.0
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var clip: Double = 1.0

    public var evaluateEvery = 50
    /// At most this many validation windows per evaluation.
    public var evaluationWindows = 64
    /// Stop after this many evaluations without a better validation loss (nil: never).
    public var earlyStoppingPatience: Int?
    public var checkpointEvery = 100
    public var keepCheckpoints = 2
    public var logEvery = 1
    public var seed: UInt64 = 0
    public var activations: TrainableModel.ActivationMemory?
    /// Stop at the first bad data line instead of skipping it.
    public var strictData = false

    public init(model: String, data: [String], output: String) {
        self.model = model; self.data = data; self.output = output
    }

    /// The peak rate when none is given: 2e-4 for LoRA, 5e-5 for full fine-tuning.
    public var resolvedLearningRate: Float { learningRate ?? (lora == nil ? 5e-5 : 2e-4) }

    /// What the forward keeps: lean for full fine-tuning (optimizer state dominates memory),
    /// keep for LoRA (no optimizer state for the base, and the step is shorter).
    public var resolvedActivations: TrainableModel.ActivationMemory { activations ?? (lora == nil ? .lean : .keep) }

    public func validate() throws {
        func fail(_ message: String) -> TrainingError { .invalidConfiguration(message) }
        guard !data.isEmpty else { throw fail("no training data given (--data FILE)") }
        guard batchSize > 0, sequenceLength > 1, accumulation > 0 else { throw fail("batch size, sequence length and accumulation must be positive") }
        guard steps.map({ $0 > 0 }) ?? (epochs > 0) else { throw fail("steps or epochs must be positive") }
        guard resolvedLearningRate > 0 else { throw fail("learning rate must be positive") }
        guard validationFraction >= 0 && validationFraction < 1 else { throw fail("validation fraction must be in [0, 1)") }
        guard evaluateEvery > 0, checkpointEvery > 0, keepCheckpoints > 0, logEvery > 0 else {
            throw fail("evaluate-every, checkpoint-every, keep-checkpoints and log-every must be positive")
        }
        try lora?.validate()
        guard !quantizedBase || lora != nil else { throw fail("a quantized base (QLoRA) trains LoRA adapters: add --lora") }
    }

    // MARK: TOML

    /// Reads a TOML file: top-level keys as the flags name them (`learning_rate = 2e-4`,
    /// `data = ["a.jsonl"]`) and a `[lora]` table (`rank`, `alpha`, `dropout`, `targets`,
    /// `rslora`). Unknown keys are errors, with their line.
    public static func read(toml path: String) throws -> TrainingConfiguration {
        guard let text = FileContents.text(atPath: path) else {
            throw TrainingError.invalidConfiguration("\(path): cannot read the file")
        }
        let table = try TOML.parse(text, path: path)
        var c = TrainingConfiguration(model: "", data: [], output: "")
        var lora: LoRAConfiguration?
        for (key, (value, line)) in table {
            func fail(_ why: String) -> TrainingError { .invalidConfiguration("\(path):\(line): \(key): \(why)") }
            func string() throws -> String { guard case .string(let s) = value else { throw fail("expected a string") }; return s }
            func number() throws -> Double { guard case .number(let n) = value else { throw fail("expected a number") }; return n }
            func int() throws -> Int { let n = try number(); guard n == n.rounded() else { throw fail("expected an integer") }; return Int(n) }
            func bool() throws -> Bool { guard case .bool(let b) = value else { throw fail("expected true or false") }; return b }
            func strings() throws -> [String] {
                if case .string(let s) = value { return [s] }
                guard case .array(let items) = value else { throw fail("expected a list of strings") }
                return try items.map { guard case .string(let s) = $0 else { throw fail("expected a list of strings") }; return s }
            }
            if key.hasPrefix("lora.") {
                var l = lora ?? LoRAConfiguration()
                switch key.dropFirst(5) {
                case "rank", "r": l.rank = try int()
                case "alpha": l.alpha = Float(try number())
                case "dropout": l.dropout = Float(try number())
                case "targets", "target_modules": l.targets = try strings()
                case "rslora": l.rsLoRA = try bool()
                default: throw fail("unknown LoRA option")
                }
                lora = l
                continue
            }
            switch key {
            case "model": c.model = try string()
            case "data": c.data = try strings()
            case "validation", "val": c.validation = try string()
            case "validation_fraction": c.validationFraction = try number()
            case "output", "out": c.output = try string()
            case "steps": c.steps = try int()
            case "epochs": c.epochs = try number()
            case "batch_size", "batch": c.batchSize = try int()
            case "sequence_length", "length": c.sequenceLength = try int()
            case "accumulation", "gradient_accumulation": c.accumulation = try int()
            case "learning_rate", "lr": c.learningRate = Float(try number())
            case "schedule":
                guard let kind = LearningRateSchedule.Kind(rawValue: try string()) else { throw fail("expected constant, linear or cosine") }
                c.schedule = kind
            case "warmup_steps", "warmup": c.warmupSteps = try int()
            case "min_lr_ratio": c.minimumLearningRateRatio = Float(try number())
            case "weight_decay": c.weightDecay = Float(try number())
            case "beta1": c.beta1 = Float(try number())
            case "beta2": c.beta2 = Float(try number())
            case "epsilon": c.epsilon = Float(try number())
            case "clip", "max_grad_norm": c.clip = try number()
            case "evaluate_every", "eval_every": c.evaluateEvery = try int()
            case "evaluation_windows": c.evaluationWindows = try int()
            case "early_stopping_patience", "patience": c.earlyStoppingPatience = try int()
            case "checkpoint_every": c.checkpointEvery = try int()
            case "keep_checkpoints": c.keepCheckpoints = try int()
            case "log_every": c.logEvery = try int()
            case "seed": c.seed = UInt64(try int())
            case "activations":
                guard let memory = TrainableModel.ActivationMemory(rawValue: try string()) else { throw fail("expected keep, lean or checkpointed") }
                c.activations = memory
            case "strict_data": c.strictData = try bool()
            case "quantized_base", "qlora": c.quantizedBase = try bool()
            default: throw fail("unknown option")
            }
        }
        c.lora = lora
        return c
    }
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(String)
    case doesNotFit(String)
    case noData(String)
    case resume(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let m), .doesNotFit(let m), .noData(let m), .resume(let m): return m
        }
    }
}

/// The TOML a training config uses: `key = value` with strings, numbers, booleans and flat
/// arrays, `[table]` headers, comments. Keys come back dotted with their table (`lora.rank`).
enum TOML {
    indirect enum Value: Equatable { case string(String), number(Double), bool(Bool), array([Value]) }

    static func parse(_ text: String, path: String) throws -> [String: (Value, Int)] {
        var result: [String: (Value, Int)] = [:]
        var table = ""
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
            func fail(_ why: String) -> TrainingError { .invalidConfiguration("\(path):\(index + 1): \(why)") }
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw fail("unclosed table header") }
                table = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { throw fail("expected key = value") }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            var rest = Substring(line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces))
            let value = try parseValue(&rest, fail: fail)
            guard rest.trimmingCharacters(in: .whitespaces).isEmpty else { throw fail("unexpected text after the value") }
            result[table.isEmpty ? key : "\(table).\(key)"] = (value, index + 1)
        }
        return result
    }

    private static func stripComment(_ line: String) -> String {
        var inString = false, previous: Character = " "
        for (i, ch) in line.enumerated() {
            if ch == "\"" && previous != "\\" { inString.toggle() }
            if ch == "#" && !inString { return String(line.prefix(i)) }
            previous = ch
        }
        return line
    }

    private static func parseValue(_ s: inout Substring, fail: (String) -> TrainingError) throws -> Value {
        s = s.drop { $0 == " " }
        guard let first = s.first else { throw fail("missing value") }
        if first == "\"" {
            var out = "", i = s.index(after: s.startIndex)
            while i < s.endIndex {
                let ch = s[i]
                if ch == "\"" { s = s[s.index(after: i)...]; return .string(out) }
                if ch == "\\", s.index(after: i) < s.endIndex {
                    i = s.index(after: i)
                    switch s[i] { case "n": out.append("\n"); case "t": out.append("\t"); default: out.append(s[i]) }
                } else { out.append(ch) }
                i = s.index(after: i)
            }
            throw fail("unclosed string")
        }
        if first == "[" {
            s = s.dropFirst()
            var items: [Value] = []
            while true {
                s = s.drop { $0 == " " }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                items.append(try parseValue(&s, fail: fail))
                s = s.drop { $0 == " " }
                if s.first == "," { s = s.dropFirst() } else if s.first != "]" { throw fail("expected , or ] in a list") }
            }
        }
        let token = s.prefix { !",] ".contains($0) }
        s = s.dropFirst(token.count)
        if token == "true" { return .bool(true) }
        if token == "false" { return .bool(false) }
        guard let number = Double(token.replacingOccurrences(of: "_", with: "")) else { throw fail("cannot read value \(token)") }
        return .number(number)
    }
}
