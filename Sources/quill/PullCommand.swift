import ArgumentParser
import Foundation
import QuillHub

/// `quill pull ORG/NAME[@REVISION]`: a model from the Hugging Face Hub into the cache that
/// huggingface_hub and transformers use, so `-m ORG/NAME` finds it in every command.
struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Download a model from the Hugging Face Hub into the shared Hugging Face cache.",
        discussion: """
        The cache is huggingface_hub's ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub): \
        transformers, huggingface_hub and Quill share its files. HF_ENDPOINT, HF_TOKEN (or the token \
        huggingface-cli login saved) and HF_HUB_OFFLINE are honoured. Downloads resume where an interrupted \
        run stopped and every file is checked against its ETag; the revision names the new snapshot only \
        once it is complete. Then: quill generate -m ORG/NAME (or ORG/NAME/FILE.gguf).

          quill pull HuggingFaceTB/SmolLM2-135M-Instruct
          quill pull bartowski/SmolLM2-135M-Instruct-GGUF --include '*Q4_K_M.gguf'
          quill pull Qwen/Qwen2.5-0.5B-Instruct@main --exclude '*.bin' --exclude '*.pth'
        """)

    @Argument(help: "ORG/NAME, optionally @REVISION (a branch, tag or commit).") var repository: String
    @Option(help: "Branch, tag or commit (overrides @REVISION; default main).") var revision: String?
    @Option(help: "Only files matching this pattern (fnmatch, as huggingface_hub's allow_patterns); repeatable.")
    var include: [String] = []
    @Option(help: "Leave out files matching this pattern; repeatable.") var exclude: [String] = []

    func run() async throws {
        let (repo, atRevision) = try HubClient.parse(repository)
        let revision = revision ?? atRevision ?? "main"
        let hub = HubClient()
        let progress = PullProgress(bar: ProgressBar("\(repo)", unit: .bytes))
        let pulled = try await hub.pull(repo, revision: revision, include: include, exclude: exclude) { event in
            switch event {
            case let .listed(commit, files, bytes):
                progress.start(total: bytes)
                print("\(repo)@\(revision): commit \(commit), \(files) files, \(String(format: "%.1f", Double(bytes) / 1e6)) MB")
            case let .progress(path, done, _):
                progress.advance(path, to: done)
            case let .finished(path, size, downloaded):
                progress.advance(path, to: size)
                let how = downloaded == 0 ? "in the cache" : downloaded < size ? "resumed, \(downloaded) bytes fetched" : "downloaded"
                progress.note("  \(path) (\(size) bytes): \(how)")
            }
        }
        progress.finish()
        if let reason = pulled.fromCacheBecause { print("from the cache (\(reason))") }
        if pulled.files.isEmpty { print("warning: no files matched") }
        print(pulled.snapshot.path)
    }
}

/// Bytes done across files downloaded at once, on one progress bar.
final class PullProgress: @unchecked Sendable {
    // @unchecked: the lock guards every field
    private let lock = NSLock()
    private let bar: ProgressBar
    private var done: [String: Int] = [:]
    private var total = 0

    init(bar: ProgressBar) { self.bar = bar }

    func start(total: Int) {
        lock.lock(); defer { lock.unlock() }
        self.total = total
    }

    func advance(_ path: String, to bytes: Int) {
        lock.lock(); defer { lock.unlock() }
        done[path] = bytes
        bar.update(done.values.reduce(0, +), of: total)
    }

    /// A line of its own above the bar.
    func note(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        FileHandle.standardError.write(Data(((bar.interactive ? "\r\u{1B}[K" : "") + line + "\n").utf8))
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        bar.finish(total, of: total)
    }
}
