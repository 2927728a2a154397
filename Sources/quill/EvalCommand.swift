import ArgumentParser
import Foundation
import QuillCore
import QuillData
import QuillEval
import QuillFormats
import QuillModels
import QuillTokenizers

/// `quill eval`: how well models predict held-out text, by a stated protocol, and whether one is
/// better than another (paired bootstrap over documents). The work is QuillEval's; this file
/// parses, loads and prints.
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate models on text: bits per byte and perplexities, base vs fine-tune with confidence intervals, multiple choice.",
        discussion: """
        Each -m starts a model to evaluate; an --adapter right after it applies to that model
        (`-m base.gguf -m base.gguf --adapter runs/x/adapter` compares the base with its
        fine-tune). Later models are compared with the first.
        """)

    @Argument(help: "Data: .txt, JSONL (text, prompt + completion, messages, or context + choices + answer), or a quill prepare folder.")
    var data: [String] = []
    @Option(name: [.customShort("f"), .customLong("file")], help: "Data file (as quill perplexity takes it).") var file: [String] = []
    @Option(name: [.customShort("m"), .customLong("model")],
            help: "GGUF file, Hugging Face directory or cached model name; repeat to compare (default: SmolLM2 from the cache).")
    var models: [String] = []
    @Option(help: "A PEFT LoRA adapter for the model named just before it.") var adapter: [String] = []
    @Option(name: .customLong("protocol"), help: "rolling (lm-evaluation-harness loglikelihood_rolling; the default) or llama-cpp (llama-perplexity's chunks).")
    var evaluationProtocol: EvaluationProtocol?
    @Option(name: [.customShort("c"), .customLong("context")],
            help: "Tokens per window (rolling; default: the model's context) or per chunk (llama-cpp; default 512).")
    var context: Int?
    @Option(name: .customLong("chunks"), help: "llama-cpp: chunks at most (default: all).") var chunks: Int?
    @Option(help: "Which split of a quill prepare folder.") var split = "validation"
    @Option(help: "Bootstrap resamples for comparisons.") var bootstrap = 1000
    @Option(help: "Seed of the bootstrap draws.") var seed: UInt64 = 0
    @Option(help: "Write every figure, the protocol and file sha256s as JSON.") var json: String?
    @Option(help: "Write an HTML report (per-document bits per byte, the comparisons).") var html: String?
    @Option(name: .customLong("kl-divergence-base"),
            help: "llama-cpp: write the model's log-probabilities to this file (llama.cpp's .kld format); with --kl-divergence, read them from it.")
    var klDivergenceBase: String?
    @Flag(name: .customLong("kl-divergence"),
          help: "Compare each model with the reference in --kl-divergence-base on its tokens and chunks: KL divergence, perplexity ratio, top-token agreement.")
    var klDivergence = false
    @Option(name: .customLong("imatrix"),
            help: "Compute an importance matrix on the data instead (llama-imatrix: llama-cpp chunks, -c, --chunks) and write it to this file in llama.cpp's imatrix GGUF format, for quill quantize / export --imatrix and llama-quantize.")
    var importanceMatrix: String?
    @Flag(help: "Run every weight in fp32 (dequantized) instead of the int8 kernels.") var dense = false
    @Flag(name: .customLong("int8-prompts"), help: "Weights in a type without an interleaved int8 layout (Q5_1, Q5_K, ...) stay on their row kernels for whole windows too, as llama.cpp runs them.")
    var int8Prompts = false

    enum EvaluationProtocol: String, ExpressibleByArgument, CaseIterable { case rolling, llamaCpp = "llama-cpp" }

    /// Each -m with the --adapter after it.
    func systems() throws -> [ModelSystem] {
        try ModelSystem.paired(models: models, adapters: adapter, after: ["eval", "perplexity"])
    }

    @OptionGroup var threads: ThreadsOption

    func run() async throws {
        threads.apply()
        ProcessMemory.reuseLargeBlocks()
        let systems = try systems()
        if klDivergence {
            guard let klDivergenceBase else { throw ValidationError("--kl-divergence reads the reference's log-probabilities: give --kl-divergence-base FILE") }
            guard evaluationProtocol != .rolling else { throw ValidationError("--kl-divergence follows llama-perplexity's chunks: drop --protocol rolling") }
            if !(data + file).isEmpty { FileHandle.standardError.write(Data("note: the data comes from \(klDivergenceBase) (its tokens); the files given are not read\n".utf8)) }
            return try runKLDivergence(systems: systems, base: klDivergenceBase)
        }
        let inputs = data + file
        guard !inputs.isEmpty else { throw ValidationError("give the data to evaluate: a file, several, or a quill prepare folder") }
        let paths = try inputs.map { try EvaluationDataReader.resolve($0, split: split) }
        if let importanceMatrix {
            guard evaluationProtocol != .rolling else { throw ValidationError("--imatrix follows llama-imatrix's chunks: drop --protocol rolling") }
            guard systems.count == 1, klDivergenceBase == nil else { throw ValidationError("--imatrix computes one model's importance matrix: give one -m and no --kl-divergence-base") }
            return try runImportanceMatrix(systems[0], paths: paths, writingTo: importanceMatrix)
        }
        if klDivergenceBase != nil {
            guard evaluationProtocol != .rolling else { throw ValidationError("--kl-divergence-base follows llama-perplexity's chunks: drop --protocol rolling") }
            guard systems.count == 1 else { throw ValidationError("--kl-divergence-base writes one reference model's log-probabilities: give one -m") }
        }
        switch evaluationProtocol ?? (klDivergenceBase == nil ? .rolling : .llamaCpp) {
        case .llamaCpp: try runLlamaCpp(systems: systems, paths: paths)
        case .rolling: try runRolling(systems: systems, paths: paths)
        }
    }

    func load(_ system: ModelSystem) throws -> (any LanguageModel, Tokenizer, String) {
        let path = try ModelOption.path(system.model)
        let (model, tokenizer) = try ModelOption.load(system.model, adapter: system.adapter, weights: dense ? .dense : .quantized,
                                                      denseBatchThreshold: int8Prompts ? .max : 32)
        return (model, tokenizer, path)
    }

    // MARK: llama-perplexity's protocol

    func runLlamaCpp(systems: [ModelSystem], paths: [String]) throws {
        let chunkSize = context ?? 512
        let text = try paths.map { try ExampleRecords.text($0) }.joined()
        for system in systems {
            let (model, tokenizer, path) = try load(system)
            if systems.count > 1 { print("[\(system.name)]") }
            try LlamaCppPerplexityRun(context: chunkSize, chunks: chunks)
                .run(model: model, tokenizer: tokenizer, text: text, modelPath: path, logProbabilitiesTo: klDivergenceBase)
        }
    }

    /// llama-imatrix: the importance matrix of the model's products over the data's chunks.
    func runImportanceMatrix(_ system: ModelSystem, paths: [String], writingTo output: String) throws {
        let perplexity = Perplexity(context: context ?? 512, maxChunks: chunks)
        let text = try paths.map { try ExampleRecords.text($0) }.joined()
        let (model, tokenizer, path) = try load(system)
        let tokens = try perplexity.tokenize(text, tokenizer: tokenizer)
        let total = perplexity.chunks(of: tokens.count)
        print("\((path as NSString).lastPathComponent): importance matrix over \(total) chunks of \(perplexity.context) tokens")
        let start = Date()
        let matrix = try perplexity.importanceMatrix(model, tokens: tokens, bos: Perplexity.chunkBos(tokenizer), datasets: paths) { done, total in
            let seconds = Date().timeIntervalSince(start)
            FileHandle.standardError.write(Data(String(format: "\r[%d/%d] %.1f s, %.0f tokens/s", done, total, seconds,
                                                       Double(done * perplexity.context) / seconds).utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        try matrix.write(to: output)
        print(String(format: "wrote %@: %d entries, %d chunks of %d tokens, in %.1f s", output, matrix.entries.count, matrix.chunkCount,
                     matrix.chunkSize, Date().timeIntervalSince(start)))
    }

    /// llama-perplexity --kl-divergence: each model against the reference file, on its tokens.
    func runKLDivergence(systems: [ModelSystem], base path: String) throws {
        for system in systems {
            let base = try LogProbabilityFile.Reader(path: path)
            if let context, context != base.context {
                throw ValidationError("-c \(context): \(path) was computed with a context of \(base.context); give that or none")
            }
            let (model, tokenizer, _) = try load(system)
            try base.requireVocabulary(model.vocabularySize)
            print("[\(system.name)] against \(path): \(base.chunks) chunks of \(base.context) tokens, "
                  + "\(base.chunks * LogProbabilityFile.rowsPerChunk(context: base.context)) scored positions")
            print("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p")
            let start = Date()
            let statistics = try Perplexity.klDivergence(model, base: base, bos: Perplexity.chunkBos(tokenizer)) { chunk, running in
                print(running.chunkLine(chunk))
            }
            let seconds = Date().timeIntervalSince(start)
            print("")
            for line in statistics.summaryLines { print(line) }
            print(String(format: "(%d positions, %.1f s, %.0f tokens/s)", statistics.count, seconds, Double(base.chunks * base.context) / seconds))
        }
    }

    // MARK: lm-evaluation-harness's rolling protocol

    func runRolling(systems: [ModelSystem], paths: [String]) throws {
        var results: [EvaluationReport.ModelResult] = []
        var documentScores: [[DocumentScore]] = []
        var description = "", windowLength = 0, prefix: Int32?
        for system in systems {
            let (model, tokenizer, path) = try load(system)
            windowLength = context ?? model.contextLength
            guard windowLength >= 2, windowLength <= model.contextLength else {
                throw ValidationError("--context \(windowLength): a window must hold 2 to \(model.contextLength) tokens (the model's context)")
            }
            let reader = try EvaluationDataReader(tokenizer: tokenizer, length: windowLength)
            prefix = reader.prefix
            var documents: [EvaluationDocument] = [], questions: [MultipleChoiceItem] = []
            for path in paths {
                switch try reader.read(path) {
                case .documents(let d): documents += d
                case .multipleChoice(let q): questions += q
                }
            }
            let prefixName = tokenizer.token(for: reader.prefix) ?? "\(reader.prefix)"
            description = "lm-evaluation-harness loglikelihood_rolling: each document scored whole in windows of \(windowLength) tokens, "
                + "the first led by \(prefixName) (\(reader.prefix == tokenizer.bosTokenId ? "BOS" : "EOS")), every token scored once; "
                + "completions and assistant turns scored given what precedes them; multiple choice by log-likelihood (acc) and per character (acc_norm)"
            if results.isEmpty {
                let bytes = documents.reduce(0) { $0 + $1.bytes }, words = documents.reduce(0) { $0 + $1.words }
                print("protocol: rolling (\(description))")
                print("data: \(paths.joined(separator: ", ")): \(documents.count) documents, \(bytes) bytes, \(words) words"
                      + (questions.isEmpty ? "" : "; \(questions.count) multiple-choice questions"))
            }
            let scorer = LikelihoodScorer(model: model)
            let totalTokens = documents.reduce(0) { $0 + $1.scoredTokens } + questions.reduce(0) { $0 + $1.windows.reduce(0) { $0 + $1.scoredCount } }
            let bar = ProgressBar(system.name, unit: .count("tokens"))
            var done = 0
            let start = Date()
            var scores: [DocumentScore] = []
            for document in documents {
                scores.append(try scorer.score(document))
                done += document.scoredTokens
                bar.update(done, of: totalTokens)
            }
            var choiceLikelihoods: [[Double]] = []
            for item in questions {
                choiceLikelihoods.append(try item.windows.map { try scorer.score($0).logLikelihood })
                done += item.windows.reduce(0) { $0 + $1.scoredCount }
                bar.update(done, of: totalTokens)
            }
            bar.finish(done, of: totalTokens)
            let seconds = Date().timeIntervalSince(start)
            let summary = documents.isEmpty ? nil : LikelihoodSummary(scores)
            let choice = questions.isEmpty ? nil : MultipleChoiceSummary(questions, logLikelihoods: choiceLikelihoods)
            print(String(format: "[%@] %d tokens in %.1f s (%.0f tokens/s)", system.name, done, seconds, Double(done) / max(seconds, 1e-9)))
            if let s = summary {
                print(String(format: "  bits per byte     %.4f ± %.4f", s.bitsPerByte.value, s.bitsPerByte.standardError))
                print(String(format: "  byte perplexity   %.4f ± %.4f", s.bytePerplexity.value, s.bytePerplexity.standardError))
                print(String(format: "  word perplexity   %.4f ± %.4f", s.wordPerplexity.value, s.wordPerplexity.standardError))
                print(String(format: "  token perplexity  %.4f ± %.4f (%d tokens)", s.tokenPerplexity.value, s.tokenPerplexity.standardError, s.tokens))
            }
            if let c = choice {
                print(String(format: "  acc               %.4f ± %.4f (%d questions)", c.accuracy.value, c.accuracy.standardError, c.questions))
                print(String(format: "  acc_norm          %.4f ± %.4f", c.normalizedAccuracy.value, c.normalizedAccuracy.standardError))
            }
            let files = json == nil ? [] : try ([path] + (system.adapter.map { [$0] } ?? [])).map { try EvaluationReport.FileReference(path: $0) }
            results.append(.init(name: system.name, files: files, summary: summary, multipleChoice: choice,
                                 documents: scores.isEmpty ? nil : scores, seconds: seconds))
            documentScores.append(scores)
        }
        var comparisons: [PairedComparison] = []
        if systems.count > 1, !documentScores[0].isEmpty {
            print("comparison (paired over documents, \(bootstrap) bootstrap resamples, seed \(seed)):")
            for k in 1..<systems.count {
                let comparison = try PairedComparison(baseline: (results[0].name, documentScores[0]), candidate: (results[k].name, documentScores[k]),
                                                      resamples: bootstrap, seed: seed)
                print("  " + comparison.verdict)
                comparisons.append(comparison)
            }
        }
        let report = EvaluationReport(quillVersion: Quill.configuration.version, evaluationProtocol: .init(
            name: "rolling", description: description, context: windowLength, prefixToken: prefix),
            data: json == nil ? [] : try paths.map { try EvaluationReport.FileReference(path: $0) }, models: results, comparisons: comparisons)
        if let json { try report.write(to: json); print("wrote \(json)") }
        if let html { try AtomicFile.write(Data(EvaluationPage.html(report).utf8), to: URL(fileURLWithPath: html)); print("wrote \(html)") }
    }
}

/// llama-perplexity's protocol and its output lines, shared by `quill eval --protocol llama-cpp`
/// and `quill perplexity`.
struct LlamaCppPerplexityRun {
    var context: Int
    var chunks: Int?

    /// `logProbabilitiesTo`: also write the scored rows' log-probabilities there, in llama.cpp's
    /// `.kld` format (written beside and moved into place when complete).
    func run(model: any LanguageModel, tokenizer: Tokenizer, text: String, modelPath: String, logProbabilitiesTo: String? = nil) throws {
        let protocolDescription = "chunks of \(context) tokens, scoring the last \(context - context / 2 - 1) of each"
        FileHandle.standardError.write(Data("\((modelPath as NSString).lastPathComponent): \(protocolDescription)\n".utf8))
        let start = Date()
        let perplexity = Perplexity(context: context, maxChunks: chunks)
        let tokens = try perplexity.tokenize(text, tokenizer: tokenizer), bos = Perplexity.chunkBos(tokenizer)
        func progress(_ running: Perplexity.Result) {
            FileHandle.standardOutput.write(Data(String(format: "[%d]%.4f,", running.chunks, running.perplexity).utf8))
        }
        let result = try logProbabilitiesTo.map {
            try perplexity.measure(model, tokens: tokens, bos: bos, writingLogProbabilitiesTo: URL(fileURLWithPath: $0), progress: progress)
        } ?? perplexity.measure(model, tokens: tokens, bos: bos, progress: progress)
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "\nFinal estimate: PPL = %.4f +/- %.5f (%d chunks, %d scored tokens, %.1f s, %.0f tokens/s)",
                     result.perplexity, result.uncertainty, result.chunks, result.scoredTokens, seconds,
                     Double(result.chunks * context) / seconds))
        if let logProbabilitiesTo { print("wrote \(logProbabilitiesTo) (log-probabilities of \(result.scoredTokens) positions, llama.cpp's .kld format)") }
    }
}
