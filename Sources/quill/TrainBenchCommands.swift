import ArgumentParser
import Foundation
import QuillFormats
import QuillTokenizers

extension TokenizeCommand {
    struct Train: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Train a byte-level BPE vocabulary (not yet).")
        func run() async throws { throw ValidationError("not yet") }
    }
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Benchmark encoding speed (not yet).")
        func run() async throws { throw ValidationError("not yet") }
    }
}
