import Foundation
import Testing
import QuillCore
import QuillEval
import QuillFormats
import QuillModels
@testable import QuillTraining

/// `quill doctor`'s checks: the training estimate from shapes alone equals the one `quill train`
/// makes from the loaded model, and the cache check catches a damaged model file.
@Suite struct DoctorTests {
    @Test(arguments: [Doctor.TrainingMethod.full, .lora, .qlora])
    func trainingEstimateEqualsTheLoadedModels(_ method: Doctor.TrainingMethod) throws {
        let path = QuillCache.defaultModel.path
        let check = try Doctor.trainingCheck(model: path, method: method, rank: 8, batch: 2, length: 128)
        let model = try TrainableModel(loading: path, quantizedBase: method == .qlora)
        if method != .full { try model.attach(LoRAConfiguration(rank: 8), seed: 0) }
        model.activationMemory = method == .full ? .lean : .keep
        let loaded = MemoryEstimate(model: model, batch: 2, length: 128)
        print("\(method): \(check.detail)")
        #expect(check.detail.contains("needs \(loaded)"))
        #expect(check.status == .ok)
    }

    @Test func cacheCheckCatchesADamagedModel() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("quill-doctor-\(getpid())")
        let models = root.appendingPathComponent("models")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        let good = Data("a model".utf8), name = QuillCache.defaultModel.lastPathComponent
        try good.write(to: models.appendingPathComponent(name))
        try Data("other".utf8).write(to: models.appendingPathComponent("other.gguf"))
        let digest = try FileDigest.sha256(models.appendingPathComponent(name).path)
        try Data("\(digest)  \(name)\n\(String(repeating: "0", count: 64))  other.gguf\n".utf8).write(to: models.appendingPathComponent("SHA256SUMS"))
        let checks = Doctor.cacheChecks(root: root).filter { $0.area == "cache" }
        #expect(checks.count == 2)
        #expect(checks.first { $0.detail.hasPrefix(name) }?.status == .ok)
        let damaged = try #require(checks.first { $0.detail.hasPrefix("other.gguf") })
        #expect(damaged.status == .failed && damaged.fix?.contains("scripts/setup") == true)
        // no default model at all: a failure that says how to get it
        try FileManager.default.removeItem(at: models.appendingPathComponent(name))
        #expect(Doctor.cacheChecks(root: root).contains { $0.status == .failed && $0.detail.contains("default model") })
    }

    @Test func machineReportNamesTheKernels() {
        let machine = Doctor.machine()
        #expect(machine.cores >= 1)
        #if arch(x86_64) && os(Linux)
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        #expect(machine.features.contains("avx2") == cpuinfo.contains(" avx2"))
        #endif
        #expect(machine.kernels.contains("row products"))
        #expect(Doctor.machineChecks(machine).contains { $0.area == "kernels" })
    }
}
