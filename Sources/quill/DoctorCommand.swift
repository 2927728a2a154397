import ArgumentParser
import Foundation
import QuillTraining

/// `quill doctor`: the machine, the cache, and whether a model and a job fit.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the machine and the model cache, and whether a model fits a training or serving job.",
        discussion: """
        quill doctor                                              the machine and the cache
        quill doctor -m qwen2.5-coder-1.5b --train lora --batch-size 4 --sequence-length 256
        quill doctor -m model.gguf --serve --parallel 8 --context 2048
        Exits 1 when a check fails; each failed check says how to fix it.
        """)

    @Option(name: [.customShort("m"), .customLong("model")], help: "A GGUF file, Hugging Face directory or cached model to check a job for.")
    var model: String?
    @Option(help: "Training method to size: full, lora or qlora.") var train: Doctor.TrainingMethod?
    @Option(name: .customLong("rank"), help: "LoRA rank (default 8).") var rank = 8
    @Option(name: .customLong("batch-size"), help: "Sequences per step (default 4).") var batchSize = 4
    @Option(name: .customLong("sequence-length"), help: "Tokens per sequence (default 256).") var sequenceLength = 256
    @Flag(help: "Size serving the model.") var serve = false
    @Option(help: "Sequences served at once (default 8).") var parallel = 8
    @Option(help: "Tokens of context per served sequence (default 2048).") var context = 2048
    @Flag(name: .customLong("no-hash"), help: "List the cached models without checking their sha256.") var noHash = false
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        guard rank > 0, batchSize > 0, sequenceLength > 0, parallel > 0, context > 0 else {
            throw ValidationError("--rank, --batch-size, --sequence-length, --parallel and --context must be at least 1")
        }
        if (train != nil || serve) && model == nil { throw ValidationError("--train and --serve size a model: give it with -m") }
    }

    func run() throws {
        let machine = Doctor.machine()
        var checks = Doctor.machineChecks(machine) + Doctor.cacheChecks(hash: !noHash)
        if let model {
            let path = try ModelOption.path(model)
            if let train {
                checks.append(try Doctor.trainingCheck(model: path, method: train, rank: rank, batch: batchSize, length: sequenceLength))
            }
            if serve { checks.append(try Doctor.servingCheck(model: path, parallel: parallel, context: context)) }
        }
        if json {
            struct Report: Encodable { let machine: Doctor.Machine; let checks: [Doctor.Check] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(Report(machine: machine, checks: checks)), as: UTF8.self))
        } else {
            for check in checks {
                let mark = switch check.status { case .ok: "ok  "; case .warning: "warn"; case .failed: "FAIL"; case .info: "    " }
                print("\(mark) \(check.area.padding(toLength: 8, withPad: " ", startingAt: 0)) \(check.detail)")
                if let fix = check.fix { print("              fix: \(fix)") }
            }
        }
        if checks.contains(where: { $0.status == .failed }) { throw ExitCode(1) }
    }
}

extension Doctor.TrainingMethod: ExpressibleByArgument {}
