import ArgumentParser
import Foundation
import QuillCore
import QuillFormats
import QuillModels
import QuillTokenizers
import QuillTraining

/// `quill export SOURCE OUTPUT --to gguf|hf|gguf-lora`: a model (a GGUF file, a Hugging Face
/// directory, a `quill train` run, with or without an adapter merged) in the files llama.cpp,
/// Ollama, LM Studio and transformers load.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a model or a fine-tune as GGUF (any type), a Hugging Face directory, or a llama.cpp LoRA adapter.",
        discussion: """
        SOURCE: a GGUF file, a Hugging Face directory, a cached model's name, or a quill train run directory \
        (its model/, or its adapter/ on the base the adapter names).
        --to gguf OUTPUT.gguf --type T: T is \(GGUFFileType.namesForHelp). Tensors take llama.cpp's types for T \
        (as llama-quantize gives them); the tokenizer is written in full.
        --to hf OUTPUT_DIR: config.json, generation_config.json, model.safetensors (sharded above --max-shard-size), \
        tokenizer.json, tokenizer_config.json with the chat template.
        --to gguf-lora OUTPUT.gguf: the adapter (of a run, or --adapter) as llama.cpp's GGUF LoRA adapter.

          quill export SmolLM2-135M-Instruct.F16.gguf smollm2-hf --to hf
          quill export runs/poems smollm2-poems.Q4_K_M.gguf --to gguf --type Q4_K_M
          quill export runs/poems-lora poems-lora.gguf --to gguf-lora
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case gguf, hf, ggufLora = "gguf-lora"
    }

    @Argument(help: "GGUF file, Hugging Face directory, cached model name, or quill train run directory.") var source: String
    @Argument(help: "The file (gguf, gguf-lora) or directory (hf) to write.") var output: String
    @Option(help: "gguf, hf or gguf-lora.") var to: Format
    @Option(help: "The GGUF file type (--to gguf).") var type = "F16"
    @Option(help: "A PEFT LoRA adapter directory: merged into the model (gguf, hf), or the adapter to export (gguf-lora).")
    var adapter: String?
    @Option(help: "How --to hf stores weights: f32, f16 or bf16.") var dtype = "f32"
    @Option(name: .customLong("max-shard-size"), help: "Largest safetensors file for --to hf (e.g. 5GB, 500MB).")
    var maxShardSize = "5GB"
    @Option(help: "general.name of a GGUF written from a Hugging Face directory or a run (default: SOURCE's name).") var name: String?
    @Flag(name: .customLong("dry-run"), help: "Print each tensor's type and the sizes (--to gguf); write nothing.") var dryRun = false
    @OptionGroup var importanceMatrix: ImportanceMatrixOption
    @OptionGroup var threads: ThreadsOption

    func run() throws {
        threads.apply()
        let start = Date()
        if importanceMatrix.path != nil && to != .gguf {
            throw ValidationError("--imatrix weights quantization: it applies to --to gguf only")
        }
        let resolved = try ExportSource(source, adapter: adapter)
        let label = name ?? resolved.name
        switch to {
        case .hf:
            guard let dtype = SafetensorsWriter.DType(rawValue: dtype.uppercased()) else {
                throw ValidationError("--dtype \(dtype): choose f32, f16 or bf16")
            }
            let maxShardBytes = try Self.bytes(maxShardSize)
            let model = try resolved.mergedModel()
            let directory = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let tokenizer = try resolved.tokenizer()
            try model.saveHuggingFace(to: directory, tokenizer: tokenizer, dtype: dtype, maxShardBytes: maxShardBytes)
            // the written tokenizer must encode as the source's does
            var problem: String?
            do { problem = tokenizer.differs(from: try TokenizerLoader.load(output)) } catch { problem = "\(error)" }
            if let problem {
                FileHandle.standardError.write(Data("warning: \(output)/tokenizer.json does not read back as the source's tokenizer: \(problem)\n".utf8))
            }
            let files = (try? FileManager.default.contentsOfDirectory(atPath: output).sorted()) ?? []
            print("wrote \(output)/ (\(files.joined(separator: ", "))) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        case .gguf:
            guard let fileType = GGUFFileType(name: type) else {
                throw ValidationError("unknown type \(type); choose one of \(GGUFFileType.namesForHelp)")
            }
            let model = try resolved.mergedModel()
            let metadata = try resolved.ggufFile.map(\.orderedMetadata)
                ?? model.ggufMetadata(name: label, tokenizer: try resolved.tokenizer(), source: resolved.path)
            var options = GGUFQuantizer.Options(fileType: fileType)
            try importanceMatrix.read(into: &options)
            let plan = try model.ggufPlan(metadata: metadata, options: options)
            importanceMatrix.report(options, plan)
            let report = PlanReport(plan: plan)
            if dryRun {
                for (i, e) in plan.entries.enumerated() { print(report.line(i, e)) }
            } else {
                try model.saveGGUF(to: output, metadata: metadata, options: options, source: resolved.path) { i, e in print(report.line(i, e)) }
            }
            print(report.summary(output: output, dryRun: dryRun, seconds: Date().timeIntervalSince(start)))
        case .ggufLora:
            let model = try resolved.adaptedModel()
            try model.saveGGUFAdapter(to: output, name: label, source: resolved.adapter ?? resolved.path) { _, e in
                print("\(e.name) [\(e.dimensions.map(String.init).joined(separator: " x "))]")
            }
            print("wrote \(output) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
    }

    /// "5GB", "500MB", "2GiB" or a byte count, as transformers' `max_shard_size` takes it.
    static func bytes(_ text: String) throws -> Int {
        let units: [(String, Double)] = [("GIB", 1_073_741_824), ("MIB", 1_048_576), ("KIB", 1024), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)]
        let upper = text.uppercased().trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where upper.hasSuffix(suffix) {
            if let n = Double(upper.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), n > 0 { return Int(n * factor) }
        }
        if let n = Int(upper), n > 0 { return n }
        throw ValidationError("--max-shard-size \(text): give a size such as 5GB, 500MB or 2GiB")
    }
}

/// What `quill export` reads: a model (and its tokenizer) from a GGUF file, a Hugging Face
/// directory or a `quill train` run, and the adapter to merge or export.
struct ExportSource {
    let path: String
    let adapter: String?
    /// The source file when it is GGUF: its metadata is kept.
    let ggufFile: GGUFFile?
    /// What the user named (a run's directory rather than its model/), without an extension.
    let name: String

    init(_ source: String, adapter: String?) throws {
        var path = try ModelOption.path(source), adapter = adapter
        // a quill train run: its model/, or its adapter/ on the base the adapter names
        let run = URL(fileURLWithPath: path)
        let fm = FileManager.default
        if fm.fileExists(atPath: run.appendingPathComponent("model/config.json").path) {
            path = run.appendingPathComponent("model").path
        } else if fm.fileExists(atPath: run.appendingPathComponent("adapter/adapter_config.json").path) {
            guard adapter == nil else { throw ValidationError("\(source) is a training run with its own adapter; leave out --adapter") }
            adapter = run.appendingPathComponent("adapter").path
            path = try ModelOption.path(try Self.baseModel(of: adapter!))
        }
        self.path = path
        self.adapter = adapter
        name = ((URL(fileURLWithPath: source).standardizedFileURL.lastPathComponent) as NSString).deletingPathExtension
        var isDirectory: ObjCBool = false
        _ = fm.fileExists(atPath: path, isDirectory: &isDirectory)
        ggufFile = isDirectory.boolValue ? nil : try GGUFFile(path: path)
    }

    /// The source's tokenizer (read once the model has loaded, so that a model Quill cannot
    /// export is refused for that first).
    func tokenizer() throws -> Tokenizer { try ggufFile.map { try Tokenizer(gguf: $0) } ?? TokenizerLoader.load(path) }

    /// The base model a PEFT adapter directory names (`base_model_name_or_path`).
    static func baseModel(of adapter: String) throws -> String {
        let url = URL(fileURLWithPath: adapter).appendingPathComponent("adapter_config.json")
        guard let data = FileContents.data(atPath: url.path),
              let json = try? JSONText.object(data) as? [String: Any],
              let base = json["base_model_name_or_path"] as? String, !base.isEmpty else {
            throw ValidationError("\(url.path) names no base model (base_model_name_or_path); give the base as SOURCE and the adapter with --adapter")
        }
        return base
    }

    /// The model in fp32 with the adapter, if any, folded into its weights.
    func mergedModel() throws -> TrainableModel {
        let model = try TrainableModel(loading: path)
        if let adapter {
            try model.loadAdapter(from: URL(fileURLWithPath: adapter))
            try model.mergeAdapters()
        }
        return model
    }

    /// The model with the adapter attached, not merged (for exporting the adapter itself).
    func adaptedModel() throws -> TrainableModel {
        guard let adapter else {
            throw ValidationError("--to gguf-lora exports an adapter: give a training run with an adapter/, or --adapter DIR")
        }
        let model = try TrainableModel(loading: path, readValues: false)
        try model.loadAdapter(from: URL(fileURLWithPath: adapter))
        return model
    }
}

/// One line per tensor of a GGUF plan, and the sizes, as `quill quantize` and `quill export` print them.
struct PlanReport {
    let plan: GGUFQuantizationPlan

    func line(_ i: Int, _ e: GGUFQuantizationPlan.Entry) -> String {
        let width = String(plan.entries.count).count
        let shape = e.dimensions.map(String.init).joined(separator: " x ")
        let types = e.from == e.to ? e.from.name : "\(e.from.name) → \(e.to.name)"
        let note = e.fallback.map { " (rows of \(e.dimensions[0]) do not fit \($0.name))" } ?? ""
        return String(format: "[%\(width)d/%d] %-32@ %-16@ %@", i + 1, plan.entries.count, e.name, "[\(shape)]", types + note)
    }

    func summary(output: String, dryRun: Bool, seconds: Double) -> String {
        let elements = plan.entries.reduce(0) { $0 + $1.dimensions.reduce(1, *) }
        let inputBytes = plan.entries.reduce(0) { $0 + $1.from.byteCount($1.dimensions.reduce(1, *)) }
        let outputBytes = plan.entries.reduce(0) { $0 + $1.to.byteCount($1.dimensions.reduce(1, *)) }
        return String(format: "%@ %@: tensors %.1f MB → %.1f MB (%.2f bits per weight)%@", dryRun ? "would write" : "wrote", output,
                      Double(inputBytes) / 1e6, Double(outputBytes) / 1e6, 8 * Double(outputBytes) / Double(max(1, elements)),
                      dryRun ? "" : String(format: " in %.1f s", seconds))
    }
}
