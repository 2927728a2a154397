import Foundation
import QuillTraining
import QuillCore
import QuillData
import QuillFormats
import QuillModels
import QuillTokenizers
@testable import QuillTraining
import Testing

@Suite("Trainer") struct TrainerTests {
    /// A scratch directory with train / validation token shards of random documents (ids < 256,
    /// the tiny checkpoints' vocabulary).
    static func shards() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("quill-trainer-\(UUID().uuidString)")
        var random = SplitMix64(seed: 11)
        // documents drawn from five fixed phrases, so there is something to learn and to validate on
        let phrases = (0..<5).map { _ in (0..<12).map { _ in Int32(random.next() % 256) } }
        for (split, documents) in [("train", 40), ("val", 6)] {
            var writer = try TokenShardWriter(directory: directory.appendingPathComponent("tokens").path, split: split, vocabularySize: 256)
            for _ in 0..<documents { try writer.append(phrases[Int(random.next() % 5)] + phrases[Int(random.next() % 5)]) }
            try writer.finish()
        }
        return directory
    }

    static func configuration(_ directory: URL, run: String) -> TrainingConfiguration {
        var c = TrainingConfiguration(model: TrainingFixtures.checkpoint("llama"),
                                      data: [directory.appendingPathComponent("tokens/train.json").path],
                                      output: directory.appendingPathComponent(run).path)
        c.validation = directory.appendingPathComponent("tokens/val.json").path
        c.steps = 12; c.batchSize = 2; c.sequenceLength = 16; c.accumulation = 2
        c.learningRate = 3e-3; c.warmupSteps = 2; c.evaluateEvery = 4; c.checkpointEvery = 4; c.keepCheckpoints = 2
        return c
    }

    static func losses(_ run: URL) throws -> [Int: Double] {
        let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        var out: [Int: Double] = [:]
        for line in text.split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if let loss = object["loss"] as? Double, let step = object["step"] as? Int { out[step] = loss }
        }
        return out
    }

    @Test("a full run writes metrics, plot, TensorBoard events, checkpoints and a loadable model; resuming repeats the same losses")
    func runAndResume() throws {
        let directory = try Self.shards()
        defer { try? FileManager.default.removeItem(at: directory) }
        let whole = Trainer(Self.configuration(directory, run: "whole"))
        var evaluations: [Double] = []
        whole.onEvent = { if case let .evaluation(e) = $0 { evaluations.append(e.loss) } }
        let summary = try whole.run()
        #expect(summary.steps == 12)
        let first = try #require(summary.initialValidationLoss), last = try #require(summary.finalValidationLoss)
        #expect(last < first - 0.5, "validation loss \(first) -> \(last)")
        let run = directory.appendingPathComponent("whole")
        for file in ["config.json", "metrics.jsonl", "loss.svg", "model/config.json", "model/model.safetensors", "checkpoints/latest.json"] {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(file).path), "\(file) is missing")
        }
        let events = try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix("events.out.tfevents.") }
        #expect(events.count == 1)
        let svg = try String(contentsOf: run.appendingPathComponent("loss.svg"), encoding: .utf8)
        #expect(svg.contains("<polyline") && svg.hasSuffix("</svg>\n"))
        let kept = try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path).filter { $0.hasPrefix("step-") }
        #expect(Set(kept).isSuperset(of: ["step-00000008", "step-00000012"]) && kept.count <= 3, "\(kept)")
        // the saved model loads and scores like the trained one
        let reloaded = try TrainableModel(loading: run.appendingPathComponent("model").path)
        #expect(reloaded.parameters.count == (try TrainableModel(loading: TrainingFixtures.checkpoint("llama"))).parameters.count)

        // "killed" after step 8: only its checkpoint survives; resuming must give the same losses after it
        let resumed = directory.appendingPathComponent("resumed")
        try FileManager.default.createDirectory(at: resumed.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: run.appendingPathComponent("config.json"), to: resumed.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: run.appendingPathComponent("checkpoints/step-00000008"),
                                         to: resumed.appendingPathComponent("checkpoints/step-00000008"))
        try Data(#"{"name":"step-00000008","step":8,"best":"step-00000008"}"#.utf8)
            .write(to: resumed.appendingPathComponent("checkpoints/latest.json"))
        var config = try JSONDecoder().decode(TrainingConfiguration.self, from: Data(contentsOf: resumed.appendingPathComponent("config.json")))
        config.output = resumed.path
        try JSONEncoder().encode(config).write(to: resumed.appendingPathComponent("config.json"))
        var resumedAt: Int?
        let again = try Trainer.resuming(resumed.path)
        again.onEvent = { if case .resumed(let step) = $0 { resumedAt = step } }
        try again.run(resume: true)
        #expect(resumedAt == 8)
        let a = try Self.losses(run), b = try Self.losses(resumed)
        for step in 9...12 { #expect(a[step] == b[step], "step \(step): \(a[step] ?? .nan) uninterrupted, \(b[step] ?? .nan) resumed") }
    }

    @Test("validation reports bits per byte of the scored text, and a run ends with its before/after comparison")
    func bitsPerByteAndComparison() throws {
        let checkpoint = TrainingFixtures.root.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("QuillEvalTests/Fixtures/tiny-harness").path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("quill-bpb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let lines = ["Shall I compare thee to a summer's day?", "Thou art more lovely and more temperate:", "床前明月光，疑是地上霜。",
                     "Rough winds do shake the darling buds of May,", "举头望明月，低头思故乡。", "And summer's lease hath all too short a date;"]
        let train = directory.appendingPathComponent("train.jsonl"), validation = directory.appendingPathComponent("val.jsonl")
        try (Array(repeating: lines, count: 4).joined().map { #"{"text": "\#($0)"}"# }.joined(separator: "\n")).write(to: train, atomically: true, encoding: .utf8)
        try (lines.map { #"{"text": "\#($0)"}"# }.joined(separator: "\n")).write(to: validation, atomically: true, encoding: .utf8)
        var c = TrainingConfiguration(model: checkpoint, data: [train.path], output: directory.appendingPathComponent("run").path)
        c.validation = validation.path
        c.steps = 8; c.batchSize = 2; c.sequenceLength = 32; c.learningRate = 3e-3; c.warmupSteps = 1; c.evaluateEvery = 4
        let trainer = Trainer(c)
        var evaluations: [Trainer.Evaluation] = []
        trainer.onEvent = { if case let .evaluation(e) = $0 { evaluations.append(e) } }
        let summary = try trainer.run()
        // the bytes: every validation target's text, decoded apart from the model (EOS has none)
        let tokenizer = try Tokenizer(contentsOf: URL(fileURLWithPath: checkpoint))
        var examples = TrainingDataReader(tokenizer: tokenizer)
        let validationExamples = try examples.read(validation.path)
        let windows = PackedWindows(validationExamples, length: 32, padding: tokenizer.eosTokenId ?? 0)
        let targets = windows.targets.flatMap { $0 }.filter { $0 >= 0 }
        let bytes = targets.reduce(0) { $0 + tokenizer.decodeBytes([$1], skipSpecialTokens: true, first: false).count }
        // every token but the very first is a target
        #expect(bytes + tokenizer.decodeBytes([validationExamples[0].tokens[0]]).count == lines.joined().utf8.count)
        for e in evaluations {
            let bpb = try #require(e.bitsPerByte)
            #expect(abs(bpb - e.loss * Double(targets.count) / Double(bytes) / log(2)) < 1e-9 * bpb, "step \(e.step)")
        }
        let metrics = try String(contentsOf: directory.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
        #expect(metrics.split(separator: "\n").filter { $0.contains("validation_bits_per_byte") }.count == evaluations.count)
        let comparison = try #require(summary.comparison)
        #expect(comparison.documents == windows.count && comparison.difference < 0)
        #expect(abs(comparison.difference - (try #require(summary.finalBitsPerByte) - (try #require(summary.initialBitsPerByte)))) < 1e-12)
        #expect(comparison.verdict.hasPrefix("the fine-tune lower than the model before training by") && comparison.verdict.contains("validation windows"))
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("run/comparison.json").path))
    }

    @Test("a LoRA run saves a PEFT adapter that loads back with the same weights")
    func loraAdapter() throws {
        let directory = try Self.shards()
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = Self.configuration(directory, run: "lora")
        c.lora = LoRAConfiguration(rank: 4, alpha: 8, dropout: 0.05, targets: ["q_proj", "v_proj", "down_proj"])
        c.steps = 6
        let summary = try Trainer(c).run()
        let adapter = URL(fileURLWithPath: summary.output)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: adapter.appendingPathComponent("adapter_config.json"))) as? [String: Any]
        #expect(config?["peft_type"] as? String == "LORA" && config?["r"] as? Int == 4)
        let model = try TrainableModel(loading: TrainingFixtures.checkpoint("llama"))
        try model.loadAdapter(from: adapter)
        let weights = try SafetensorsFile(path: adapter.appendingPathComponent("adapter_model.safetensors").path)
        #expect(Set(weights.tensors.keys) == Set(model.lora!.parameters.entries.map(\.name)))
        #expect(weights.tensors.keys.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"))
        // merging folds the adapter into the weights: the same logits without it
        let tokens: [Int32] = [5, 9, 200, 31, 7, 7, 64, 3]
        let withAdapter = try model.logits(tokens: tokens, batch: 1, length: tokens.count)
        try model.mergeAdapters()
        let merged = try model.logits(tokens: tokens, batch: 1, length: tokens.count)
        let worst = zip(withAdapter, merged).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-4, "merged logits differ by \(worst)")
    }

    @Test("bad JSONL lines are reported with file and line, skipped or fatal")
    func badLines() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quill-bad-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("""
            {"text": "fine"}
            not json
            {"prompt": "p"}
            {"messages": [{"role": "user", "content": "hi"}]}
            {"prompt": "Q:", "completion": " A"}

            """.utf8).write(to: file)
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: QuillCache.defaultModel.path))   // SmolLM2's, from the cache
        var reader = TrainingDataReader(tokenizer: tokenizer)
        let examples = try reader.read(file.path)
        #expect(examples.count == 2)
        #expect(reader.issues.map(\.line) == [2, 3, 4])
        #expect(reader.issues[0].description == "\(file.path):2: not valid JSON")
        #expect(reader.issues[1].problem.contains("completion"))
        #expect(examples[1].trained.first == false && examples[1].trained.last == true, "loss on the completion only")
        reader = TrainingDataReader(tokenizer: tokenizer)
        reader.strict = true
        #expect(throws: DataIssue.self) { try reader.read(file.path) }
    }

    @Test("chat examples put the loss on assistant turns only")
    func chatMask() throws {
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: QuillCache.defaultModel.path))   // SmolLM2's, from the cache
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quill-chat-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(#"{"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]}"#.utf8).write(to: file)
        var reader = TrainingDataReader(tokenizer: tokenizer)
        let example = try #require(try reader.read(file.path).first)
        let trainedText = tokenizer.decode(zip(example.tokens, example.trained).filter(\.1).map(\.0))
        #expect(trainedText == "Blue.<|im_end|>\n", "\(trainedText)")
        #expect(tokenizer.decode(example.tokens).hasSuffix("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n"))

        // Gemma's template writes BOS and its tokenizer adds one too: an example holds it once
        let gemmaPath = QuillCache.root.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf").path
        try #require(FileManager.default.fileExists(atPath: gemmaPath), "QUILL_MODELS=gemma-3-270m scripts/setup fetches \(gemmaPath)")
        let gemma = try Tokenizer(gguf: GGUFFile(path: gemmaPath))
        var gemmaReader = TrainingDataReader(tokenizer: gemma)
        let gemmaExample = try #require(try gemmaReader.read(file.path).first)
        #expect(gemmaExample.tokens.prefix(2) == [gemma.bosTokenId!, 105], "\(gemmaExample.tokens.prefix(4))")   // <bos><start_of_turn>
    }

    @Test("/proc figures read past the tab, with or without padding")
    func procFigures() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quill-status-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("VmPeak:\t12345678 kB\nVmHWM:\t10170000 kB\nVmRSS:\t  715000 kB\nMemAvailable:   23456789 kB\n".utf8).write(to: file)
        #expect(ProcessMemory.kernelFigure("VmHWM", in: file.path) == 10_170_000 * 1024)   // no space after the tab
        #expect(ProcessMemory.kernelFigure("VmRSS", in: file.path) == 715_000 * 1024)
        #expect(ProcessMemory.kernelFigure("MemAvailable", in: file.path) == 23_456_789 * 1024)
        #expect(ProcessMemory.kernelFigure("VmSwap", in: file.path) == nil)
        // resident first: other tests allocate meanwhile, and the peak read after it can only be higher
        let resident = ProcessMemory.residentBytes
        #expect(ProcessMemory.peakResidentBytes >= resident && resident > 0)
    }

    @Test("TOML configuration, with errors that name the line")
    func toml() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quill-\(UUID().uuidString).toml")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("""
            # a run
            model = "smollm2.gguf"
            data = ["a.jsonl", "b.jsonl"]   # two files
            out = "runs/x"
            steps = 200
            lr = 2e-4
            schedule = "cosine"

            [lora]
            rank = 16
            alpha = 32
            targets = ["q_proj", "k_proj"]
            """.utf8).write(to: file)
        let c = try TrainingConfiguration.read(toml: file.path)
        #expect(c.model == "smollm2.gguf" && c.data == ["a.jsonl", "b.jsonl"] && c.output == "runs/x" && c.steps == 200)
        #expect(c.learningRate == 2e-4 && c.lora?.rank == 16 && c.lora?.alpha == 32 && c.lora?.targets == ["q_proj", "k_proj"])
        try Data("steps = \"many\"\n".utf8).write(to: file)
        #expect(throws: TrainingError.invalidConfiguration("\(file.path):1: steps: expected a number")) {
            try TrainingConfiguration.read(toml: file.path)
        }
    }

    @Test("a run that cannot fit in memory is refused before it starts, with advice")
    func refusesWhatDoesNotFit() throws {
        let directory = try Self.shards()
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = Self.configuration(directory, run: "huge")
        c.batchSize = 20_000_000   // terabytes of activations
        do {
            try Trainer(c).run()
            Issue.record("the run started")
        } catch let error as TrainingError {
            guard case .doesNotFit(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("--lora") && message.contains("--accumulation") && message.contains("available"), "\(message)")
        }
    }

    @Test("TensorBoard records carry CRC-32C checksums")
    func crc() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}
