import Foundation
import QuillCore
import QuillData
import QuillEval
import QuillFormats
import QuillHub
import QuillModels
import QuillReview
import QuillTokenizers
import QuillTraining

/// One parser of outside bytes under the fuzzer. `run` must return normally for every input:
/// a refusal is a thrown error (caught here), while a trap, a sanitizer report, a hang or a
/// broken invariant (`violated`) is a finding.
struct FuzzTarget: Sendable {
    let name: String
    let summary: String
    var setUp: @Sendable () throws -> Void = {}
    let run: @Sendable ([UInt8]) -> Void
}

/// A broken invariant: libFuzzer records the input that caused it.
func violated(_ what: String) -> Never {
    FileHandle.standardError.write(Data("invariant violated: \(what)\n".utf8))
    abort()
}

/// Where inputs become files (the parsers read paths, as the CLI does): a tmpfs when there is one.
enum Scratch {
    static let folder: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = "\(base)/quill-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// Writes `bytes` to `name` in the scratch folder and returns its path.
    static func file(_ name: String, _ bytes: some Collection<UInt8>) -> String {
        let path = "\(folder)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// A fresh folder for inputs that are directories (a Hugging Face checkpoint).
    static func directory(_ name: String) -> URL {
        let url = URL(fileURLWithPath: "\(folder)/\(name)")
        try? FileManager.default.removeItem(at: url)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The assets a target reads besides its input (real tokenizers, the server's model), from
/// QUILL_FUZZ_ASSETS (default: Quill's cache, ~/.cache/quill).
enum Assets {
    static let root = ProcessInfo.processInfo.environment["QUILL_FUZZ_ASSETS"] ?? "\(NSHomeDirectory())/.cache/quill"
    static var tokenizers: String { "\(root)/tokenizers" }
    /// The tiny model with SmolLM2's real tokenizer and chat template that `Fuzz/make_seeds.py` writes.
    static var serverModel: String { ProcessInfo.processInfo.environment["QUILL_FUZZ_MODEL"] ?? "\(root)/fuzz/server-model.gguf" }
}

/// Texts every tokenizer under test encodes: English, Chinese, emoji, special-token look-alikes.
let sampleTexts = [
    "Hello, world! It's 3.14 o'clock.", "春眠不觉晓，处处闻啼鸟。", "emoji 🙂👍🏽 and\ttabs\n\nnew lines",
    "<s>[INST] Hello [/INST]", "<|im_start|>user\nhi<|im_end|>", "  leading spaces", "",
]

/// Splits an input into `count` parts at its first `count - 1` zero bytes (the rest is the last part).
func parts(_ bytes: [UInt8], _ count: Int) -> [ArraySlice<UInt8>] {
    var result: [ArraySlice<UInt8>] = []
    var rest = bytes[...]
    while result.count < count - 1, let zero = rest.firstIndex(of: 0) {
        result.append(rest[..<zero])
        rest = rest[(zero + 1)...]
    }
    result.append(rest)
    while result.count < count { result.append([]) }
    return result
}

/// Encodes and decodes the sample texts: a tokenizer that loaded must work on any text.
func exercise(_ tokenizer: Tokenizer) {
    for text in sampleTexts {
        let ids = tokenizer.encode(text)
        _ = tokenizer.decode(ids)
        _ = tokenizer.encodeWithOffsets(text, pair: "a pair")
    }
    _ = tokenizer.decode([0, 1, 2, -1, Int32.max, Int32.min])
    if let template = tokenizer.chatTemplate, let parsed = try? ChatTemplate(template) {
        _ = try? parsed.render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
    }
}

/// Runs a loaded model on a few tokens: a model that loaded must run (or refuse) without a trap.
func exercise(_ model: any LanguageModel) {
    guard model.vocabularySize > 0, model.contextLength >= 2 else { return }
    var cache = model.makeCache(capacity: 4)
    _ = try? model.forward([0, Int32(model.vocabularySize - 1)], cache: &cache)
}

/// What `quill train` does with a model file: load it for training (fp32, or QLoRA's quantized
/// base with adapters) and take a step forward and back.
func exerciseTraining(_ path: String, quantizedBase: Bool) {
    guard let model = try? TrainableModel(loading: path, quantizedBase: quantizedBase) else { return }
    if quantizedBase { try? model.attach(LoRAConfiguration(rank: 1)) }
    _ = try? model.step(tokens: [0, 0], targets: [0, -1], batch: 1, length: 2, normalizer: 1)
}

enum FuzzTargets {
    static let all: [FuzzTarget] = [gguf, safetensors, huggingFace, tokenizerJSON, vocabularyFiles, encode, jinja, records, corpus, text,
                                    hub, importanceMatrix, ServerFuzz.target, ReviewFuzz.target]

    /// An importance matrix as `quill quantize --imatrix` reads it (GGUF, or the .dat format when
    /// the bytes do not start with GGUF's magic), then the weighted quantizers run with each
    /// entry's weights on a row of that width.
    static let importanceMatrix = FuzzTarget(name: "imatrix", summary: "importance matrices (llama-imatrix's GGUF and .dat) and the quantizers weighted by them") { bytes in
        guard let matrix = try? ImportanceMatrix(path: Scratch.file("imatrix.gguf", bytes)) else { return }
        for name in matrix.entries.keys.sorted().prefix(8) {
            guard let weights = matrix.importance(for: name) else { violated("\(name): an entry without weights"); continue }
            if weights.count != matrix.entries[name]!.sums.count { violated("\(name): \(weights.count) weights for \(matrix.entries[name]!.sums.count) sums") }
            guard weights.count % 256 == 0, weights.count <= 4096 else { continue }
            let row = (0..<weights.count).map { sin(Float($0) * 0.37) }
            for type in [GGMLType.q4_0, .q5_1, .q2_K, .q3_K, .q4_K, .q6_K] {
                var out = [UInt8](repeating: 0, count: type.byteCount(row.count))
                row.withUnsafeBufferPointer { x in
                    weights.withUnsafeBufferPointer { w in
                        out.withUnsafeMutableBytes { Quantize.row(type, from: x.baseAddress!, into: $0.baseAddress!, count: row.count, importance: w.baseAddress!) }
                    }
                }
            }
        }
    }

    /// What `quill pull` reads from a Hub: the first byte picks the revision route's JSON, a HEAD
    /// answer's headers ("Name: value" lines, then a status), or a model reference as `-m` takes it.
    static let hub = FuzzTarget(name: "hub", summary: "Hugging Face Hub answers (revision JSON, file headers) and ORG/NAME references") { bytes in
        guard let kind = bytes.first else { return }
        let rest = Data(bytes.dropFirst())
        let url = URL(string: "http://127.0.0.1/org/name/resolve/main/model.gguf")!
        switch kind % 3 {
        case 0:
            guard let (commit, files) = try? HubClient.revision(from: rest, url: url.absoluteString) else { return }
            if !HubCache.isCommitHash(commit) { violated("commit \(commit) is not a hash") }
            for path in files where path.hasPrefix("/") || path.split(separator: "/").contains("..") { violated("\(path) leaves the snapshot") }
        case 1:
            var headers: [String: String] = [:]
            for line in String(decoding: rest, as: UTF8.self).split(separator: "\n") {
                let pair = line.split(separator: ":", maxSplits: 1)
                if pair.count == 2 { headers[pair[0].lowercased()] = pair[1].trimmingCharacters(in: .whitespaces) }
            }
            let status = [200, 302, 307][Int(bytes.count % 3)]
            guard let file = try? HubClient.fileMetadata(path: "model.gguf", url: url, status: status, headers: headers) else { return }
            if file.etag.contains("/") || file.etag.contains(".") || file.size < 0 { violated("ETag \(file.etag), size \(file.size)") }
        default:
            let reference = String(decoding: rest, as: UTF8.self)
            if let (repo, _) = try? HubClient.parse(reference) {
                if repo.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) { violated("\(repo) climbs out of the cache") }
                let cache = HubCache(root: URL(fileURLWithPath: Scratch.folder).appendingPathComponent("hub"))
                _ = try? QuillCache.resolveModel(reference, hubCache: cache)
            }
        }
    }

    static let gguf = FuzzTarget(name: "gguf", summary: "GGUF files: header, metadata, tensors, tokenizer, model, the model loaded for training") { bytes in
        let path = Scratch.file("input.gguf", bytes)
        guard let file = try? GGUFFile(path: path) else { return }
        for tensor in file.tensors { _ = file.data(of: tensor).reduce(0, &+) }
        if let tokenizer = try? Tokenizer(gguf: file) { exercise(tokenizer) }
        if let model = try? ModelLoader.model(gguf: file) { exercise(model) }
        exerciseTraining(path, quantizedBase: bytes.count % 2 == 1)
    }

    static let safetensors = FuzzTarget(name: "safetensors", summary: "safetensors files: header and every tensor") { bytes in
        guard let file = try? SafetensorsFile(path: Scratch.file("model.safetensors", bytes)) else { return }
        for name in file.tensors.keys { _ = try? file.floats(name) }
    }

    /// config.json, a zero byte, then model.safetensors: a whole Hugging Face checkpoint.
    static let huggingFace = FuzzTarget(name: "hf-checkpoint", summary: "Hugging Face folders: config.json + model.safetensors, for inference and training") { bytes in
        let p = parts(bytes, 2)
        let folder = Scratch.directory("checkpoint")
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("config.json").path, contents: Data(p[0]))
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("model.safetensors").path, contents: Data(p[1]))
        if let (model, _) = try? ModelLoader.load(folder.path) { exercise(model) }
        exerciseTraining(folder.path, quantizedBase: false)
    }

    /// tokenizer.json, optionally a zero byte and tokenizer_config.json.
    static let tokenizerJSON = FuzzTarget(name: "tokenizer-json", summary: "tokenizer.json (+ tokenizer_config.json)") { bytes in
        let p = parts(bytes, 2)
        guard let tokenizer = try? Tokenizer(tokenizerJSON: Data(p[0]), config: p[1].isEmpty ? nil : Data(p[1])) else { return }
        exercise(tokenizer)
    }

    /// The first byte picks the format: vocab.json + merges.txt (split at a zero byte), a tiktoken
    /// rank file, a WordPiece vocab.txt, a SentencePiece .model.
    static let vocabularyFiles = FuzzTarget(name: "vocab-files", summary: "vocab.json + merges.txt, tiktoken, WordPiece vocab.txt, SentencePiece .model") { bytes in
        guard let kind = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        let tokenizer: Tokenizer?
        switch kind % 4 {
        case 0:
            let p = parts(body, 2)
            tokenizer = try? Tokenizer(gpt2Vocab: URL(fileURLWithPath: Scratch.file("vocab.json", p[0])),
                                       merges: URL(fileURLWithPath: Scratch.file("merges.txt", p[1])))
        case 1: tokenizer = try? Tokenizer(tiktoken: URL(fileURLWithPath: Scratch.file("ranks.tiktoken", body)))
        case 2: tokenizer = try? Tokenizer(wordPieceVocab: URL(fileURLWithPath: Scratch.file("vocab.txt", body)))
        default: tokenizer = try? Tokenizer(sentencePieceModel: URL(fileURLWithPath: Scratch.file("tokenizer.model", body)))
        }
        if let tokenizer { exercise(tokenizer) }
    }

    /// Real tokenizers on any bytes. Byte-level BPE (GPT-2, cl100k) must give back exactly the text
    /// it encoded; every tokenizer refuses invalid UTF-8 and decodes any ids without a trap.
    nonisolated(unsafe) static var realTokenizers: [(name: String, tokenizer: Tokenizer, lossless: Bool)] = []
    static let encode = FuzzTarget(name: "encode", summary: "real tokenizers (GPT-2, cl100k, bert-base-chinese, Mistral) on any text", setUp: {
        let root = URL(fileURLWithPath: Assets.tokenizers)
        realTokenizers = [
            ("gpt2", try Tokenizer(gpt2Vocab: root.appendingPathComponent("gpt2/vocab.json"), merges: root.appendingPathComponent("gpt2/merges.txt")), true),
            ("cl100k", try Tokenizer(tiktoken: root.appendingPathComponent("cl100k_base.tiktoken")), true),
            ("bert-base-chinese", try Tokenizer(wordPieceVocab: root.appendingPathComponent("bert-base-chinese/vocab.txt")), false),
            ("mistral", try Tokenizer(sentencePieceModel: root.appendingPathComponent("mistral/tokenizer.model.v1")), false),
        ]
    }) { bytes in
        guard let kind = bytes.first else { return }
        let (name, tokenizer, lossless) = realTokenizers[Int(kind) % realTokenizers.count]
        let body = Array(bytes.dropFirst())
        _ = try? tokenizer.encode(bytes: body, source: "input")
        let text = String(decoding: body, as: UTF8.self)
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        let decoded = tokenizer.decode(ids)
        if lossless && decoded != text { violated("\(name): decode(encode(text)) != text for \(Array(text.utf8))") }
        _ = tokenizer.encodeWithOffsets(text)
        // the same bytes read as token ids
        let raw = body.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        _ = tokenizer.decode(raw)
        _ = tokenizer.decodeBytes(raw, skipSpecialTokens: true)
    }

    static let jinja = FuzzTarget(name: "jinja", summary: "chat templates: the Jinja parser and interpreter") { bytes in
        guard let template = try? ChatTemplate(String(decoding: bytes, as: UTF8.self)) else { return }
        let messages = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "写一首诗"),
                        ChatMessage(role: "assistant", content: "好。"), ChatMessage(role: "user", content: "<b>again</b>")]
        _ = try? template.render(messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>",
                                 variables: ["tools": .array([]), "custom": .string("x")])
    }

    /// JSONL (or .txt when the first byte is odd) as `quill train`, `quill eval` and `quill review` read it.
    nonisolated(unsafe) static var recordTokenizer: Tokenizer?
    static let records = FuzzTarget(name: "records", summary: "training / evaluation / review JSONL and text records", setUp: {
        let root = URL(fileURLWithPath: Assets.tokenizers)
        recordTokenizer = try Tokenizer(gpt2Vocab: root.appendingPathComponent("gpt2/vocab.json"), merges: root.appendingPathComponent("gpt2/merges.txt"))
    }) { bytes in
        guard let kind = bytes.first, let tokenizer = recordTokenizer else { return }
        let path = Scratch.file(kind % 2 == 0 ? "records.jsonl" : "records.txt", bytes.dropFirst())
        if let records = try? ExampleRecords.read(path) {
            let template = try! ChatTemplate(ChatTemplate.chatML)
            for case .success(.chat(let turns)) in records.map(\.record) {
                _ = try? ExampleRecords.chatPieces(turns, template: template, tokenizer: tokenizer)
            }
        }
        if let data = try? EvaluationDataReader(tokenizer: tokenizer, length: 16) { _ = try? data.read(path) }
        _ = try? StudyFiles.prompts(path)
        if let outputs = try? StudyFiles.outputs(path) { _ = try? StudyFiles.matched([(path, outputs), (path, outputs)]) }
    }

    /// A corpus file of the kind the first byte picks, through `quill prepare`'s reader, cleaning,
    /// quality filters, language guess and near-duplicate signature.
    static let corpus = FuzzTarget(name: "corpus", summary: "quill prepare's inputs: JSONL, text, HTML, CSV, TSV, gzip") { bytes in
        guard let kind = bytes.first else { return }
        let extensions = ["jsonl", "txt", "html", "csv", "tsv", "jsonl.gz", "txt.gz", "md"]
        let path = Scratch.file("corpus.\(extensions[Int(kind) % extensions.count])", bytes.dropFirst())
        let cleaning = TextCleaning(), filters = QualityFilters(), signer = NearDuplicates.Index(NearDuplicates())
        try? CorpusReader().forEachDocument(in: path) { document in
            let text = cleaning.clean(document.isHTML ? HTMLText().extract(document.text).text : document.text)
            _ = filters.check(text)
            _ = Script.language(of: text)
            _ = signer.signature(text)
        }
    }

    /// Raw bytes through the encoding detector, and as text through the HTML extractor.
    static let text = FuzzTarget(name: "text", summary: "the encoding detector and the HTML extractor") { bytes in
        let decoded = TextDecoding.decode(bytes)
        _ = HTMLText().extract(decoded.text)
        _ = HTMLText(dropBoilerplate: false).extract(String(decoding: bytes, as: UTF8.self))
    }
}
