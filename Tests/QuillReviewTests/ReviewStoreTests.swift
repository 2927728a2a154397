import Foundation
import QuillData
import QuillTestSupport
import Testing
@testable import QuillReview

func temporaryDatabase(_ tag: String = #function) -> String {
    let safe = tag.filter { $0.isLetter || $0.isNumber }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("quill-review-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite").path
    return path
}

/// A study of `systems` systems over `prompts` prompts, each answer naming its system and prompt.
func draft(_ name: String = "poems", systems: Int = 3, prompts: Int = 6) -> StudyDraft {
    StudyDraft(name: name, systems: (0..<systems).map { .init(name: "s\($0)", source: "test") },
               prompts: (0..<prompts).map { ("p\($0)", "写一首诗 \($0)\nline two") },
               outputs: (0..<systems).map { s in (0..<prompts).map { "answer of s\(s) to p\($0)" } }, seed: 7)
}

@Suite struct ReviewStoreTests {
    @Test func reviewerOrderCoversPairsEvenlyWithoutRepeats() throws {
        let store = try ReviewStore(path: temporaryDatabase(), create: true)
        let study = try store.create(draft())
        #expect(study.comparisons == 18 && study.prompts == 6 && study.systems.map(\.name) == ["s0", "s1", "s2"])
        for name in ["ana", "李雷"] {
            let reviewer = try store.addReviewer(to: study, name: name)
            var seen: Set<Int64> = [], pairsSeen: [[Int64]] = [], firstOnLeft = 0
            while let a = try store.next(for: reviewer).assignment {
                #expect(!seen.contains(a.comparison), "a comparison comes once")
                seen.insert(a.comparison)
                pairsSeen.append([a.leftSystem, a.rightSystem].sorted())
                if a.leftSystem < a.rightSystem { firstOnLeft += 1 }
                #expect(a.left.hasPrefix("answer of") && a.prompt.contains("\n"))
                _ = try store.vote(reviewer, comparison: a.comparison, verdict: .tie)
            }
            #expect(seen.count == 18)
            // every window of 3 consecutive comparisons holds the 3 pairs once each
            for start in stride(from: 0, to: 18, by: 3) { #expect(Set(pairsSeen[start..<start + 3]).count == 3) }
            #expect((3...15).contains(firstOnLeft), "sides are drawn per comparison, not fixed: the pair's first system was left \(firstOnLeft) of 18 times")
            #expect(try store.next(for: reviewer).progress == .init(done: 18, total: 18))
        }
        #expect(try store.votes(of: study).count == 36)
    }

    @Test func votesAreCheckedAndSurviveReopening() throws {
        let path = temporaryDatabase()
        do {
            let store = try ReviewStore(path: path, create: true)
            let study = try store.create(draft())
            let reviewer = try store.addReviewer(to: study, name: "ana")
            let first = try #require(try store.next(for: reviewer).assignment)
            #expect(try store.vote(reviewer, comparison: first.comparison, verdict: .left, comment: "<script>alert(1)</script>") == .init(done: 1, total: 18))
            #expect(throws: ReviewError.alreadyVoted(comparison: first.comparison)) {
                try store.vote(reviewer, comparison: first.comparison, verdict: .right)
            }
            #expect(throws: ReviewError.notAssigned(comparison: 9999)) { try store.vote(reviewer, comparison: 9999, verdict: .left) }
            #expect(throws: ReviewError.self) { try store.vote(reviewer, comparison: 2, verdict: .left, comment: String(repeating: "长", count: 2000)) }
            #expect(throws: ReviewError.nameTaken("ana")) { try store.addReviewer(to: study, name: " ana ") }
        }
        let reopened = try ReviewStore(path: path)
        let votes = try reopened.votes(of: try reopened.study(named: "poems"))
        #expect(votes.count == 1 && votes[0].verdict == "left" && votes[0].winner == votes[0].leftSystem && votes[0].comment.hasPrefix("<script>"))
    }

    @Test func badStudiesLeaveNothingHalfWritten() throws {
        let path = temporaryDatabase()
        #expect(throws: ReviewError.noDatabase(path: path)) { try ReviewStore(path: path) }
        let store = try ReviewStore(path: path, create: true)
        var repeated = draft()
        repeated.prompts[3].key = "p0"
        #expect(throws: ReviewError.self) { try store.create(repeated) }
        #expect(try store.studyNames().isEmpty, "the failed study left no rows")
        _ = try store.create(draft())
        #expect(throws: ReviewError.studyExists(name: "poems")) { try store.create(draft()) }
        #expect(throws: ReviewError.unknownStudy(name: "nope", known: ["poems"])) { try store.study(named: "nope") }
        var one = draft()
        one.systems.removeLast(2)
        one.outputs.removeLast(2)
        #expect(throws: ReviewError.self) { try store.create(one) }
    }

    @Test func studyFilesSayFileAndLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quill-review-files-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let prompts = dir.appendingPathComponent("prompts.jsonl").path
        try Data("{\"prompt\": \"春天\"}\n\n{\"prompt\": 3}\n".utf8).write(to: URL(fileURLWithPath: prompts))
        #expect(throws: DataIssue(file: prompts, line: 3, problem: "\"prompt\" is not a string")) { try StudyFiles.prompts(prompts) }
        try Data("{\"id\": 1, \"prompt\": \"春天\"}\n{\"id\": 1, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n".utf8).write(to: URL(fileURLWithPath: prompts))
        #expect(throws: DataIssue(file: prompts, line: 2, problem: "id \"1\" repeats line 1's")) { try StudyFiles.prompts(prompts) }
        try Data("{\"id\": \"a\", \"prompt\": \"春天\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"ref\"}]}\n".utf8)
            .write(to: URL(fileURLWithPath: prompts))
        let read = try StudyFiles.prompts(prompts)
        #expect(read.map(\.key) == ["a", "line 2"] && read[1].messages?.count == 1 && read[1].text == "hi")

        let a = dir.appendingPathComponent("a.jsonl").path, b = dir.appendingPathComponent("b.jsonl").path
        try Data("{\"prompt\": \"x\", \"output\": \"1\"}\n{\"prompt\": \"y\", \"output\": \"2\"}\n".utf8).write(to: URL(fileURLWithPath: a))
        try Data("{\"prompt\": \"y\", \"completion\": \"4\"}\n{\"prompt\": \"x\", \"completion\": \"3\"}\n".utf8).write(to: URL(fileURLWithPath: b))
        let matched = try StudyFiles.matched([(a, try StudyFiles.outputs(a)), (b, try StudyFiles.outputs(b))])
        #expect(matched.prompts.map(\.text) == ["x", "y"] && matched.outputs == [["1", "2"], ["3", "4"]])
        try Data("{\"prompt\": \"x\", \"output\": \"3\"}\n{\"prompt\": \"z\", \"output\": \"4\"}\n".utf8).write(to: URL(fileURLWithPath: b))
        #expect(throws: DataIssue.self) { try StudyFiles.matched([(a, try StudyFiles.outputs(a)), (b, try StudyFiles.outputs(b))]) }
        try (Data("{\"prompt\": \"x\", \"output\": \"3\"}\n".utf8) + Data([0xFF, 0x0A])).write(to: URL(fileURLWithPath: b))
        #expect(throws: DataIssue(file: b, line: 2, problem: "not valid UTF-8")) { try StudyFiles.outputs(b) }
    }

    @Test func resultsCountPairsBiasAndAgreement() throws {
        func vote(_ reviewer: String, _ comparison: Int64, _ left: String, _ right: String, _ verdict: String, kind: String = "human") -> VoteRecord {
            VoteRecord(id: 0, study: "s", reviewer: reviewer, reviewerKind: kind, comparison: comparison, prompt: "p", leftSystem: left, rightSystem: right,
                       verdict: verdict, winner: nil, comment: "", createdAt: "")
        }
        let votes = [vote("a", 1, "base", "tuned", "right"), vote("b", 1, "tuned", "base", "left"), vote("a", 2, "tuned", "base", "left"),
                     vote("b", 2, "base", "tuned", "tie"), vote("a", 3, "base", "tuned", "skip"), vote("judge", 1, "base", "tuned", "left", kind: "judge")]
        let r = ReviewResults(votes: votes, systems: ["base", "tuned"], kind: "human", resamples: 100)
        #expect(r.votes == 4 && r.skipped == 1)
        #expect(r.pairs == [ReviewResults.Pair(first: "base", second: "tuned", firstWins: 0, ties: 1, secondWins: 3, firstWinRate: 0.125,
                                                firstWinRateInterval: BradleyTerry.wilson(0.5, 4))])
        #expect(r.leftWins == 2 && r.decisive == 3)
        #expect(r.agreement.pairs == 2 && r.agreement.rate == 0.5 && r.agreement.pairsWithoutTies == 1 && r.agreement.rateWithoutTies == 1)
        #expect(r.ratings[0].system == "tuned")
        let judge = ReviewResults(votes: votes, systems: ["base", "tuned"], kind: "judge", resamples: 10)
        #expect(judge.votes == 1 && judge.pairs[0].firstWins == 1)
    }
}
