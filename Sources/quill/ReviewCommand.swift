import ArgumentParser
import Foundation
import QuillData
import QuillModels
import QuillReview

/// `quill review`: blind side-by-side review of systems' answers by people (and optionally an
/// automatic judge), stored in a SQLite file, with Bradley-Terry ratings.
struct ReviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "Blind side-by-side human review of generated writing, with Bradley-Terry ratings.",
        discussion: """
        quill review new poems --prompts prompts.jsonl -m base.gguf -m base.gguf --adapter runs/x/adapter
        quill review serve poems          (prints the admin results link; reviewers join at / or by their link)
        quill review link poems alice     (a per-reviewer link)
        quill review results poems [--json]
        quill review export poems --csv votes.csv
        quill review judge poems --judge-url http://127.0.0.1:8080 --judge-model qwen   (an automatic judge, reported apart)
        Studies live in one SQLite file: --database, default $QUILL_REVIEW_DB or ./quill-review.sqlite.
        """,
        subcommands: [New.self, Serve.self, Link.self, Results.self, Export.self, JudgeCommand.self])

    struct Database: ParsableArguments {
        @Option(help: "The review database (default: $QUILL_REVIEW_DB or ./quill-review.sqlite).") var database: String?
        var path: String { database ?? ProcessInfo.processInfo.environment["QUILL_REVIEW_DB"] ?? "quill-review.sqlite" }
        func open(create: Bool = false) throws -> ReviewStore { try ReviewStore(path: path, create: create) }
    }

    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a study: each system answers each prompt (-m ... [--adapter ...]) or answers come from files (--outputs).",
            discussion: "Each -m is a system; an --adapter right after it applies to that model. Name them with --name, in order.")
        @Argument(help: "The study's name.") var study: String
        @OptionGroup var database: Database
        @Option(help: "JSONL prompts: {\"prompt\": ...} or {\"messages\": [...]}, with an optional id.") var prompts: String?
        @Option(name: [.customShort("m"), .customLong("model")], help: "A model to answer the prompts (repeatable).") var models: [String] = []
        @Option(help: "A PEFT LoRA adapter for the model named just before it.") var adapter: [String] = []
        @Option(parsing: .upToNextOption, help: "JSONL answers written elsewhere, one file per system ({prompt or id, output}).")
        var outputs: [String] = []
        @Option(name: .customLong("name"), help: "The systems' names, in order (repeatable; default: the files').") var names: [String] = []
        @Flag(help: "Send plain prompts through each model's chat template as a user turn.") var chat = false
        @Option(name: .customLong("max-tokens"), help: "New tokens per answer at most.") var maxTokens = 256
        @Option(help: "Sampling temperature (0: greedy).") var temperature: Float = 0.7
        @Option(name: .customLong("top-p")) var topP: Float = 0.95
        @Option(name: .customLong("top-k")) var topK = 40
        @Option(name: .customLong("repeat-penalty")) var repeatPenalty: Float = 1.1
        @Option(help: "Seed: prompt i is sampled with seed + i, the same for every system.") var seed: UInt64 = 1
        @Option(name: .customLong("per-reviewer"), help: "Comparisons per reviewer (default: all).") var perReviewer: Int?

        @OptionGroup var threads: ThreadsOption

        func run() async throws {
            threads.apply()
            guard outputs.isEmpty != models.isEmpty else { throw ValidationError("give either -m models (with --prompts) or --outputs files") }
            if let perReviewer, perReviewer < 1 { throw ValidationError("--per-reviewer must be at least 1") }
            var systems: [StudyDraft.System] = []
            let studyPrompts: [StudyPrompt]
            var answers: [[String]] = []
            if !outputs.isEmpty {
                let files = try outputs.map { (path: $0, rows: try StudyFiles.outputs($0)) }
                let matched = try StudyFiles.matched(files)
                studyPrompts = matched.prompts
                answers = matched.outputs
                systems = outputs.map { StudyDraft.System(name: (($0 as NSString).lastPathComponent as NSString).deletingPathExtension, source: $0) }
            } else {
                guard let prompts else { throw ValidationError("--prompts is required with -m") }
                guard maxTokens >= 1, temperature >= 0 else { throw ValidationError("--max-tokens must be at least 1 and --temperature not negative") }
                studyPrompts = try StudyFiles.prompts(prompts)
                for system in try ModelSystem.paired(models: models, adapters: adapter, after: ["new"]) {
                    let (model, tokenizer) = try ModelOption.load(system.model, adapter: system.adapter)
                    var options = GenerationOptions()
                    options.maxNewTokens = maxTokens
                    options.sampling.temperature = temperature
                    options.sampling.topP = topP
                    options.sampling.topK = topK
                    options.sampling.repetitionPenalty = repeatPenalty
                    let writer = AnswerWriter(model: model, tokenizer: tokenizer, options: options, chat: chat, seed: seed)
                    var written: [String] = []
                    let started = Date()
                    for (i, prompt) in studyPrompts.enumerated() {
                        written.append(try writer.answer(prompt, index: i))
                        FileHandle.standardError.write(Data("\r\(system.name): \(i + 1)/\(studyPrompts.count) answers (\(Int(Date().timeIntervalSince(started))) s)".utf8))
                    }
                    FileHandle.standardError.write(Data("\n".utf8))
                    answers.append(written)
                    let source = try ModelOption.path(system.model) + (system.adapter.map { " + \($0)" } ?? "")
                    systems.append(StudyDraft.System(name: system.name, source: source, settings: writer.settings))
                }
            }
            if !names.isEmpty {
                guard names.count == systems.count else { throw ValidationError("\(names.count) --name for \(systems.count) systems") }
                for i in systems.indices { systems[i].name = names[i] }
            }
            let draft = StudyDraft(name: study, systems: systems, prompts: studyPrompts.map { ($0.key, $0.text) }, outputs: answers,
                                   comparisonsPerReviewer: perReviewer, seed: seed)
            let created = try database.open(create: true).create(draft)
            print("study \(created.name): \(created.systems.count) systems (\(created.systems.map(\.name).joined(separator: ", "))), "
                  + "\(created.prompts) prompts, \(created.comparisons) comparisons in \(database.path)")
            print("admin key: \(created.adminToken)")
            print("serve it: quill review serve \(created.name)" + (database.database.map { " --database \($0)" } ?? ""))
        }
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Serve a study's judging pages and results in the browser.")
        @Argument(help: "The study's name.") var study: String
        @OptionGroup var database: Database
        @Option(help: "Address to listen on.") var host = "127.0.0.1"
        @Option(help: "Port (0: any free port).") var port = 8090
        @Option(name: .customLong("reviewer"), help: "Make a link for this reviewer at start (repeatable).") var reviewers: [String] = []
        @Option(help: "Bootstrap resamples on the results page.") var bootstrap = 1000

        func run() async throws {
            let store = try database.open()
            let found = try store.study(named: study)
            var app = ReviewApp(store: store, study: found)
            app.resamples = bootstrap
            let links = try reviewers.map { try store.addReviewer(to: found, name: $0) }
            let host = host
            try await app.run(host: host, port: port) { port in
                let base = "http://\(host):\(port)"
                var lines = ["quill review: \(found.name) on \(base)", "  reviewers join at \(base)/",
                             "  results (admin): \(base)/results?key=\(found.adminToken)"]
                lines += links.map { "  link for \($0.name): \(base)/r/\($0.token)" }
                FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            }
        }
    }

    struct Link: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a per-reviewer link (prints its path with the token).")
        @Argument(help: "The study's name.") var study: String
        @Argument(help: "The reviewer's name.") var name: String
        @OptionGroup var database: Database
        func run() async throws {
            let store = try database.open()
            let reviewer = try store.addReviewer(to: try store.study(named: study), name: name)
            print("/r/\(reviewer.token)")
        }
    }

    struct Results: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ratings, pairs, position bias and agreement of a study's votes.")
        @Argument(help: "The study's name.") var study: String
        @OptionGroup var database: Database
        @Flag(help: "Print JSON for scripts.") var json = false
        @Option(help: "Bootstrap resamples.") var bootstrap = 1000
        @Option(help: "Seed of the bootstrap draws.") var seed: UInt64 = 0
        @Option(help: "Hold this system at a rating, as NAME=RATING (default: mean 1000).") var anchor: String?

        func run() async throws {
            let store = try database.open()
            let found = try store.study(named: study)
            let names = found.systems.map(\.name)
            var fixed: BradleyTerry.Anchor?
            if let anchor {
                let parts = anchor.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let i = names.firstIndex(of: parts[0]), let rating = Double(parts[1]) else {
                    throw ValidationError("--anchor \(anchor): expected NAME=RATING with NAME one of \(names.joined(separator: ", "))")
                }
                fixed = BradleyTerry.Anchor(system: i, rating: rating)
            }
            guard bootstrap >= 1 else { throw ValidationError("--bootstrap must be at least 1") }
            let votes = try store.votes(of: found)
            let (human, judge) = ReviewResults.byKind(votes: votes, systems: names, anchor: fixed, resamples: bootstrap, seed: seed)
            if json {
                print(String(decoding: try ReviewResults.json(human: human, judge: judge, pretty: true), as: UTF8.self))
                return
            }
            print("study \(found.name): \(found.systems.count) systems, \(found.prompts) prompts, \(found.comparisons) comparisons")
            human.lines.forEach { print($0) }
            if judge.votes > 0 { judge.lines.forEach { print($0) } }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write every vote of a study as CSV or JSONL.")
        @Argument(help: "The study's name.") var study: String
        @OptionGroup var database: Database
        @Option(help: "Write CSV here (- for standard output).") var csv: String?
        @Option(help: "Write JSONL here (- for standard output).") var jsonl: String?

        func run() async throws {
            guard (csv == nil) != (jsonl == nil) else { throw ValidationError("give one of --csv FILE or --jsonl FILE") }
            let store = try database.open()
            let votes = try store.votes(of: try store.study(named: study))
            var text = ""
            if csv != nil {
                func field(_ s: String) -> String {
                    s.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
                }
                text = "id,study,reviewer,reviewer_kind,comparison,prompt_key,left_system,right_system,verdict,winner,comment,created_at\n"
                for v in votes {
                    text += [String(v.id), v.study, v.reviewer, v.reviewerKind, String(v.comparison), v.prompt, v.leftSystem, v.rightSystem,
                             v.verdict, v.winner ?? "", v.comment, v.createdAt].map(field).joined(separator: ",") + "\n"
                }
            } else {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                for v in votes { text += String(decoding: try encoder.encode(v), as: UTF8.self) + "\n" }
            }
            let destination = csv ?? jsonl!
            if destination == "-" { FileHandle.standardOutput.write(Data(text.utf8)) } else {
                try Data(text.utf8).write(to: URL(fileURLWithPath: destination), options: .atomic)
                FileHandle.standardError.write(Data("\(votes.count) votes written to \(destination)\n".utf8))
            }
        }
    }

    struct JudgeCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "judge",
            abstract: "Let a model behind an OpenAI-compatible chat endpoint judge every comparison (twice, sides swapped).",
            discussion: "Agreeing verdicts name the better answer; a disagreement is a tie (MT-Bench's rule). Judge votes are reported apart.")
        @Argument(help: "The study's name.") var study: String
        @OptionGroup var database: Database
        @Option(name: .customLong("judge-url"), help: "The endpoint's base URL (POST BASE/v1/chat/completions).") var judgeURL: String
        @Option(name: .customLong("judge-model"), help: "The model name to send.") var judgeModel: String
        @Option(name: .customLong("api-key"), help: "Bearer key for the endpoint (default: $OPENAI_API_KEY).") var apiKey: String?
        @Option(name: .customLong("max-tokens"), help: "Tokens per judgment at most.") var maxTokens = 512

        func run() async throws {
            guard let url = URL(string: judgeURL), url.scheme == "http" || url.scheme == "https" else {
                throw ValidationError("--judge-url \(judgeURL): expected an http(s) URL")
            }
            let store = try database.open()
            let found = try store.study(named: study)
            var judge = Judge(url: url, model: judgeModel, apiKey: apiKey ?? ProcessInfo.processInfo.environment["OPENAI_API_KEY"])
            judge.maxTokens = maxTokens
            let verdicts = try await judge.run(store: store, study: found) { done, total in
                FileHandle.standardError.write(Data("\rjudging: \(done)/\(total)".utf8))
            }
            FileHandle.standardError.write(Data("\n".utf8))
            let counts = Dictionary(grouping: verdicts, by: \.rawValue).mapValues(\.count)
            print("judge \(judgeModel): \(verdicts.count) comparisons judged (" + Verdict.allCases.map { "\($0.rawValue) \(counts[$0.rawValue] ?? 0)" }.joined(separator: ", ") + ")")
        }
    }
}
