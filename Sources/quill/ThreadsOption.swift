import ArgumentParser
import Foundation
import QuillCore

/// `--threads N`, as every command that computes takes it: the threads of Quill's pool (model
/// products, training, scoring), of `quill prepare`'s per-document work and of batch tokenizing.
/// Without it, `QUILL_THREADS` (for containers whose CPU limit is below the machine's cores),
/// else every core. Benchmarks give Quill and its peer the same count with it.
struct ThreadsOption: ParsableArguments {
    @Option(help: "Threads to compute on (default: QUILL_THREADS, else every core).") var threads: Int?

    /// What the user asked for, with where it was asked (nil: every core).
    private var requested: (count: Int?, source: String)? {
        if let threads { return (threads, "--threads (\(threads))") }
        return ProcessInfo.processInfo.environment["QUILL_THREADS"].map { (Int($0), "QUILL_THREADS (\"\($0)\")") }
    }

    func validate() throws {
        if let requested, (requested.count ?? 0) < 1 {
            throw ValidationError("\(requested.source) must be a whole number of at least 1")
        }
    }

    /// The count chosen, handed to the shared pool before any parallel work starts.
    @discardableResult
    func apply() -> Int {
        if let count = requested?.count { ThreadPool.useThreads(count) }
        return ThreadPool.defaultThreads
    }
}
