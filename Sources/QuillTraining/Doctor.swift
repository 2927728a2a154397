import Foundation
import QuillCore
import QuillEval
import QuillFormats
import QuillModels
import QuillTokenizers

/// `quill doctor`: the machine as Quill sees it, its cache of models, and whether a model and a
/// job (training, serving) fit, each failed check with how to fix it.
public enum Doctor {
    /// One line of the report.
    public struct Check: Codable, Sendable {
        public enum Status: String, Codable, Sendable { case ok, warning, failed, info }
        public var area: String
        public var status: Status
        public var detail: String
        /// What to do about a warning or a failure.
        public var fix: String?

        public init(_ area: String, _ status: Status, _ detail: String, fix: String? = nil) {
            self.area = area; self.status = status; self.detail = detail; self.fix = fix
        }
    }

    // MARK: The machine

    public struct Machine: Codable, Sendable {
        public var cpu: String
        public var architecture: String
        public var cores: Int
        /// The vector features Quill's kernels use, as /proc/cpuinfo names them.
        public var features: [String]
        public var kernels: String
        public var blas: String
        public var memoryBytes: Int?
        public var availableMemoryBytes: Int?
        public var gpus: [String]
    }

    /// The features that choose kernels, in the order they matter (x86, then Arm).
    static let interestingFeatures = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                                      "avx_vnni", "asimd", "asimddp", "i8mm", "sve"]

    public static func machine() -> Machine {
        let cpuinfo = FileContents.text(atPath: "/proc/cpuinfo") ?? ""
        func field(_ name: String) -> String? {
            cpuinfo.split(separator: "\n").first { $0.hasPrefix(name) }.flatMap { $0.split(separator: ":", maxSplits: 1).last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let flags = Set((field("flags") ?? field("Features") ?? "").split(separator: " ").map(String.init))
        var architecture = "unknown"
        var system = utsname()
        if uname(&system) == 0 {
            architecture = withUnsafeBytes(of: &system.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        #if os(macOS)
        let features = architecture == "arm64" ? ["asimd", "asimddp"] : []
        #else
        let features = interestingFeatures.filter(flags.contains)
        #endif
        return Machine(cpu: field("model name") ?? field("Model") ?? field("Hardware") ?? architecture, architecture: architecture,
                       cores: ProcessInfo.processInfo.activeProcessorCount, features: features,
                       kernels: BLASKernels.quillKernels, blas: BLASKernels.description,
                       memoryBytes: Int(exactly: ProcessInfo.processInfo.physicalMemory), availableMemoryBytes: ProcessMemory.availableBytes,
                       gpus: gpus())
    }

    /// GPUs the system shows (NVIDIA's driver, AMD's compute device, Apple's Metal), named.
    static func gpus() -> [String] {
        var found: [String] = []
        if let version = FileContents.text(atPath: "/proc/driver/nvidia/version")?.split(separator: "\n").first {
            found.append("NVIDIA driver: \(version.trimmingCharacters(in: .whitespaces))")
        } else if FileManager.default.fileExists(atPath: "/dev/nvidia0") {
            found.append("NVIDIA device /dev/nvidia0")
        }
        if FileManager.default.fileExists(atPath: "/dev/kfd") { found.append("AMD compute device /dev/kfd (ROCm)") }
        #if os(macOS) && arch(arm64)
        found.append("Apple GPU (Metal)")
        #endif
        return found
    }

    public static func machineChecks(_ m: Machine) -> [Check] {
        func gb(_ b: Int) -> String { String(format: "%.1f GB", Double(b) / 1e9) }
        var checks = [Check("cpu", .info, "\(m.cpu) (\(m.architecture)), \(m.cores) cores; \(m.features.isEmpty ? "no vector features Quill uses" : m.features.joined(separator: " "))")]
        let vector = m.features.contains("avx2") || m.features.contains("asimd")
        checks.append(Check("kernels", vector ? .ok : .warning, "Quill: \(m.kernels); BLAS: \(m.blas)",
                            fix: vector ? nil : "this CPU has neither AVX2 nor NEON: Quill runs its plain C kernels, several times slower"))
        if let total = m.memoryBytes {
            let available = m.availableMemoryBytes.map { ", \(gb($0)) available" } ?? ""
            let low = (m.availableMemoryBytes ?? total) < 2_000_000_000
            checks.append(Check("memory", low ? .warning : .ok, "\(gb(total)) in all\(available)",
                                fix: low ? "under 2 GB free: close other programs, or use a smaller model and LoRA" : nil))
        }
        let gpuNote = "Quill computes on the CPU today and does not use it"
        checks.append(Check("gpu", .info, m.gpus.isEmpty ? "none found (Quill computes on the CPU)" : "\(m.gpus.joined(separator: "; ")): \(gpuNote)"))
        return checks
    }

    // MARK: The cache

    /// Free space at the cache, and each cached model against the sha256 setup recorded for it
    /// (`models/SHA256SUMS`; `hash: false` only lists them).
    public static func cacheChecks(hash: Bool = true, root: URL = QuillCache.root) -> [Check] {
        let models = root.appendingPathComponent("models")
        var checks: [Check] = []
        if let free = DiskSpace.available(at: root.path) {
            let low = free < 2_000_000_000
            checks.append(Check("disk", low ? .warning : .ok, String(format: "%.1f GB free at %@", Double(free) / 1e9, root.path),
                                fix: low ? "under 2 GB free where models are cached: free some space or point QUILL_CACHE elsewhere" : nil))
        }
        var recorded: [String: String] = [:]
        for line in (FileContents.text(atPath: models.appendingPathComponent("SHA256SUMS").path) ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { recorded[parts[1]] = parts[0] }
        }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: models.path)) ?? [])
            .filter { $0.hasSuffix(".gguf") }.sorted()
        let defaultModel = models.appendingPathComponent(QuillCache.defaultModel.lastPathComponent)
        if !files.contains(defaultModel.lastPathComponent) {
            checks.append(Check("cache", .failed, "the default model \(defaultModel.path) is missing",
                                fix: "run scripts/setup (it fetches SmolLM2 and checks its sha256)"))
        }
        for name in files {
            let path = models.appendingPathComponent(name).path
            let size = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? 0
            let label = String(format: "%@ (%.0f MB)", name, Double(size) / 1e6)
            guard let expected = recorded[name] else {
                checks.append(Check("cache", .info, "\(label): no recorded sha256 (not fetched by setup)"))
                continue
            }
            guard hash else { checks.append(Check("cache", .info, "\(label): sha256 not checked (--no-hash)")); continue }
            let actual = (try? FileDigest.sha256(path)) ?? "unreadable"
            checks.append(actual == expected
                ? Check("cache", .ok, "\(label): sha256 matches its publisher's")
                : Check("cache", .failed, "\(label): sha256 \(actual.prefix(16))…, expected \(expected.prefix(16))… (damaged or truncated)",
                        fix: "delete \(path) and run scripts/setup again (QUILL_MODELS=all for the bigger models)"))
        }
        return checks
    }

    // MARK: Will it fit

    public enum TrainingMethod: String, Codable, Sendable, CaseIterable { case full, lora, qlora }

    /// A training run's memory, from the model's shapes alone (the weights are not read): the
    /// estimate `quill train` prints and checks before it starts.
    public static func trainingCheck(model path: String, method: TrainingMethod, rank: Int = 8, batch: Int, length: Int,
                                     activations: TrainableModel.ActivationMemory? = nil) throws -> Check {
        let model = try TrainableModel(loading: path, quantizedBase: method == .qlora, readValues: false)
        var configuration: LoRAConfiguration?
        if method != .full {
            var lora = LoRAConfiguration()
            lora.rank = rank
            try model.attach(lora, seed: 0)
            configuration = lora
        }
        model.activationMemory = activations ?? (configuration == nil ? .lean : .keep)
        let estimate = MemoryEstimate(model: model, batch: batch, length: length)
        let job = "\(method == .full ? "full fine-tuning" : method == .lora ? "LoRA r\(rank)" : "QLoRA r\(rank)"), batch \(batch) x \(length)"
        do {
            try estimate.check(lora: method != .full, accumulation: 1)
        } catch {
            let message = "\(error)"
            let available = ProcessMemory.availableBytes.map { String(format: ", %.2f GB available", Double($0) / 1e9) } ?? ""
            return Check("fit", .failed, "\(job): needs \(estimate)\(available)",
                         fix: message.range(of: "Try: ").map { "try " + message[$0.upperBound...] } ?? message)
        }
        let available = ProcessMemory.availableBytes.map { String(format: " of %.2f GB available", Double($0) / 1e9) } ?? ""
        return Check("fit", .ok, "\(job): needs \(estimate)\(available): fits")
    }

    /// Serving at full use (memory grows to this as sequences fill their context): the weights as loaded plus the KV cache of `parallel` sequences of `context` tokens
    /// (fp32 keys and values per layer), plus the runtime's 200 MB.
    public static func servingCheck(model path: String, parallel: Int, context: Int) throws -> Check {
        let model = try TrainableModel(loading: path, readValues: false)
        let s = model.shape
        let kvPerToken = s.layers * 2 * s.kvDim * 4
        let weights = Self.weightBytes(path)
        let kv = kvPerToken * parallel * context
        let total = weights + kv + 200_000_000
        func gb(_ b: Int) -> String { String(format: "%.2f GB", Double(b) / 1e9) }
        let job = "serving \(parallel) sequences of \(context) tokens: needs up to \(gb(total)) (weights \(gb(weights)), KV cache \(gb(kv)), \(kvPerToken / 1024) KB per token)"
        if let available = ProcessMemory.availableBytes, total > available {
            return Check("fit", .failed, "\(job), \(gb(available)) available",
                         fix: "lower --parallel or --kv-cache-tokens (the KV cache is \(gb(kvPerToken)) per 1000 tokens x 1000), or a smaller model")
        }
        return Check("fit", .ok, "\(job): fits")
    }

    /// What the weights take in memory for inference: a GGUF file's tensors as stored (quantized
    /// types stay quantized), a Hugging Face directory's in fp32.
    static func weightBytes(_ path: String) -> Int {
        if let file = try? GGUFFile(path: path) { return file.tensors.reduce(0) { $0 + $1.byteCount } }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path))?.filter { $0.hasSuffix(".safetensors") } ?? []
        return files.compactMap { try? SafetensorsFile(path: (path as NSString).appendingPathComponent($0)) }
            .reduce(0) { $0 + $1.tensors.values.reduce(0) { $0 + $1.elementCount * 4 } }
    }
}
