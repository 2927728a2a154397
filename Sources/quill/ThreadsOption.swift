import ArgumentParser
import Foundation
import QuillCore

/// `--threads N`, as every command that computes takes it: the threads of Quill's pool (model
/// products, training, scoring), of `quill prepare`'s per-document work and of batch tokenizing.
/// Without it, `QUILL_THREADS` (for containers whose CPU limit is below the machine's cores),
/// else every core. Benchmarks give Quill and its peer the same count with it.
struct ThreadsOption: ParsableArguments {
    @Option(help: "Threads to compute on (default: QUILL_THREADS, else every core).") var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
        if threads == nil, let text = ProcessInfo.processInfo.environment["QUILL_THREADS"], (Int(text) ?? 0) < 1 {
            throw ValidationError("QUILL_THREADS must be a whole number of at least 1 (got \"\(text)\")")
        }
    }

    /// The count chosen, handed to the shared pool before any parallel work starts.
    @discardableResult
    func apply() -> Int {
        if let count = threads ?? ProcessInfo.processInfo.environment["QUILL_THREADS"].flatMap({ Int($0) }) {
            ThreadPool.useThreads(count)
        }
        return ThreadPool.defaultThreads
    }
}
