import ArgumentParser
import Foundation
import QuillCore

@main
struct Quill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quill",
        abstract: "Prepare text, tokenize, fine-tune, evaluate and serve your own writing model.",
        version: "0.1.0",
        subcommands: [DoctorCommand.self, PrepareCommand.self, TokenizeCommand.self, GenerateCommand.self, ChatCommand.self, EvalCommand.self, PerplexityCommand.self,
                      BenchCommand.self, TrainCommand.self, QuantizeCommand.self, ExportCommand.self, PullCommand.self, ServeCommand.self, ReviewCommand.self]
    )

    static func main() async {
        selectBLASKernels()
        await main(nil)
    }

    /// OpenBLAS picks its kernels when it loads, from `OPENBLAS_CORETYPE`: before anything else,
    /// re-execute once with the kernel set this CPU runs fastest. `QUILL_OPENBLAS_CORETYPE`
    /// overrides the choice (`keep` leaves the environment as it is).
    static func selectBLASKernels() {
        #if os(Linux)
        let environment = ProcessInfo.processInfo.environment
        if environment["QUILL_BLAS_SELECTED"] != nil { return }
        let requested = environment["QUILL_OPENBLAS_CORETYPE"]
        if requested == "keep" { return }
        guard let wanted = requested ?? BLASKernels.preferredCoreType, environment["OPENBLAS_CORETYPE"] != wanted else { return }
        setenv("OPENBLAS_CORETYPE", wanted, 1)
        setenv("QUILL_BLAS_SELECTED", "1", 1)
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &argv)   // returns only if it failed: then run as we are
        #endif
    }
}
