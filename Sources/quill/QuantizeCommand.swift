import ArgumentParser
import Foundation
import QuillCore
import QuillFormats

/// `quill quantize IN.gguf OUT.gguf TYPE`: llama-quantize's shape. Reads F32, F16 and BF16 files
/// (Q8_0 too, with a warning), writes any type Quill can write with llama.cpp's per-tensor mixes.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a GGUF model file to another type (llama-quantize's arguments and mixes).",
        discussion: "TYPE: \(GGUFFileType.namesForHelp).")

    @Argument(help: "The GGUF file to read (F32, F16, BF16; Q8_0 with a warning).") var input: String
    @Argument(help: "The GGUF file to write (written beside and renamed into place when complete).") var output: String
    @Argument(help: "The file type.") var type: String
    @Flag(help: "Every quantized tensor in the base type: no per-tensor mix rules.") var pure = false
    @Flag(name: .customLong("leave-output-tensor"), help: "Keep output.weight as it is.") var leaveOutputTensor = false
    @Option(name: .customLong("output-tensor-type"), help: "The type of output.weight.") var outputTensorType: String?
    @Option(name: .customLong("token-embedding-type"), help: "The type of token_embd.weight.") var tokenEmbeddingType: String?
    @Flag(name: .customLong("allow-requantize"), help: "Quantize tensors already quantized in another type than Q8_0.")
    var allowRequantize = false
    @Flag(name: .customLong("dry-run"), help: "Print each tensor's type and the sizes; write nothing.") var dryRun = false
    @OptionGroup var importanceMatrix: ImportanceMatrixOption
    @OptionGroup var threads: ThreadsOption

    func run() throws {
        threads.apply()
        guard let fileType = GGUFFileType(name: type) else {
            throw ValidationError("unknown type \(type); choose one of \(GGUFFileType.namesForHelp)")
        }
        var options = GGUFQuantizer.Options(fileType: fileType)
        options.plan.pure = pure
        options.plan.quantizeOutput = !leaveOutputTensor
        options.plan.outputType = try outputTensorType.map(Self.tensorType)
        options.plan.tokenEmbeddingType = try tokenEmbeddingType.map(Self.tensorType)
        options.allowRequantize = allowRequantize
        try importanceMatrix.read(into: &options)
        let source = try GGUFFile(path: input)
        let plan = GGUFQuantizer.plan(for: source, options: options)
        importanceMatrix.report(options, plan)
        if let q = plan.entries.first(where: { $0.from == .q8_0 && $0.to != .q8_0 && $0.to.isBlockQuantized }) {
            FileHandle.standardError.write(Data("warning: \(input) is already quantized (\(q.name) is Q8_0); quantizing it again loses a little more than quantizing the F16 original\n".utf8))
        }
        let report = PlanReport(plan: plan)
        let start = Date()
        if dryRun {
            for (i, e) in plan.entries.enumerated() { print(report.line(i, e)) }
        } else {
            try GGUFQuantizer.quantize(source, to: output, options: options, plan: plan) { i, e in print(report.line(i, e)) }
        }
        print(report.summary(output: output, dryRun: dryRun, seconds: Date().timeIntervalSince(start)))
    }

    static func tensorType(_ name: String) throws -> GGMLType {
        guard let type = GGMLType.allCases.first(where: { "\($0)".lowercased() == name.lowercased() }), Quantize.writableTypes.contains(type) else {
            throw ValidationError("unknown tensor type \(name); choose one of \(Quantize.writableTypes.map(\.name).joined(separator: ", "))")
        }
        return type
    }
}

/// `--imatrix FILE` of `quill quantize` and `quill export`: llama-quantize's importance matrix.
struct ImportanceMatrixOption: ParsableArguments {
    @Option(name: .customLong("imatrix"),
            help: "An importance matrix (llama.cpp's imatrix GGUF or older .dat; `quill eval --imatrix` writes one): quantize with the weighted fits, as llama-quantize --imatrix.")
    var path: String?

    func read(into options: inout GGUFQuantizer.Options) throws {
        guard let path else { return }
        options.importanceMatrix = (try ImportanceMatrix(path: path), path)
    }

    /// What the matrix holds and which quantized tensors it has nothing for.
    func report(_ options: GGUFQuantizer.Options, _ plan: GGUFQuantizationPlan) {
        guard let (matrix, path) = options.importanceMatrix else { return }
        let datasets = matrix.datasets.isEmpty ? "" : " of \(matrix.datasets.joined(separator: ", "))"
        let chunks = matrix.chunkCount > 0 ? ", \(matrix.chunkCount) chunks\(matrix.chunkSize > 0 ? " of \(matrix.chunkSize) tokens" : "")" : ""
        print("importance matrix \(path): \(matrix.entries.count) entries\(datasets)\(chunks)")
        let missing = options.tensorsWithoutImportance(plan)
        if !missing.isEmpty {
            let shown = missing.prefix(4).joined(separator: ", ") + (missing.count > 4 ? ", ..." : "")
            print("  quantized without importance (no entry, as llama-quantize does): \(missing.count) tensors (\(shown))")
        }
    }
}
