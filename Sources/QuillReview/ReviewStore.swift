import Foundation
import QuillCore
import GRDB
import QuillModels

/// What can go wrong with a study; each case says what and where.
public enum ReviewError: Error, Equatable, CustomStringConvertible {
    case noDatabase(path: String)
    case unknownStudy(name: String, known: [String])
    case studyExists(name: String)
    case invalidStudy(String)
    case unknownReviewer
    case nameTaken(String)
    case notAssigned(comparison: Int64)
    case alreadyVoted(comparison: Int64)
    case invalid(field: String, problem: String)

    public var description: String {
        switch self {
        case .noDatabase(let path): "no review database at \(path); create a study first (quill review new)"
        case let .unknownStudy(name, known):
            "no study named \"\(name)\"" + (known.isEmpty ? "; there are none yet (quill review new)" : "; studies: \(known.joined(separator: ", "))")
        case .studyExists(let name): "a study named \"\(name)\" exists already; choose another name"
        case .invalidStudy(let problem): problem
        case .unknownReviewer: "unknown reviewer token; use the link the study's author gave you"
        case .nameTaken(let name): "the name \"\(name)\" is taken in this study; choose another, or open your own link"
        case .notAssigned(let id): "comparison \(id) is not one of this reviewer's comparisons"
        case .alreadyVoted(let id): "this reviewer has already voted on comparison \(id)"
        case let .invalid(field, problem): "\(field): \(problem)"
        }
    }
}

/// A study as the author made it: systems, prompts and each system's answer to each prompt.
public struct StudyDraft: Sendable {
    public struct System: Sendable {
        public var name: String
        /// Where the answers came from (a model path and adapter, or an outputs file).
        public var source: String
        /// How they were made (sampling settings, seed), as JSON.
        public var settings: String
        public init(name: String, source: String, settings: String = "{}") {
            self.name = name
            self.source = source
            self.settings = settings
        }
    }
    public var name: String
    public var systems: [System]
    /// Each prompt's key (its `id`, or its line) and the text reviewers see.
    public var prompts: [(key: String, text: String)]
    /// outputs[system][prompt].
    public var outputs: [[String]]
    /// Comparisons each reviewer is given (nil: every comparison of the study).
    public var comparisonsPerReviewer: Int?
    public var seed: UInt64

    public init(name: String, systems: [System], prompts: [(key: String, text: String)], outputs: [[String]],
                comparisonsPerReviewer: Int? = nil, seed: UInt64 = 0) {
        self.name = name
        self.systems = systems
        self.prompts = prompts
        self.outputs = outputs
        self.comparisonsPerReviewer = comparisonsPerReviewer
        self.seed = seed
    }
}

public struct Study: Sendable, Equatable {
    public struct System: Sendable, Equatable, Codable {
        public var id: Int64
        public var name: String
        public var source: String
        public var settings: String
    }
    public var id: Int64
    public var name: String
    public var adminToken: String
    public var systems: [System]
    public var prompts: Int
    public var comparisons: Int
    public var seed: UInt64
}

public struct Reviewer: Sendable, Equatable {
    public enum Kind: String, Sendable { case human, judge }
    init(id: Int64, studyId: Int64, name: String, token: String, csrf: String, kind: Kind) {
        (self.id, self.studyId, self.name, self.token, self.csrf, self.kind) = (id, studyId, name, token, csrf, kind)
    }
    init(row: Row) {
        self.init(id: row["id"], studyId: row["study_id"], name: row["name"], token: row["token"], csrf: row["csrf"],
                  kind: Kind(rawValue: row["kind"]) ?? .human)
    }
    public var id: Int64
    public var studyId: Int64
    public var name: String
    public var token: String
    /// Sent back with every vote (`X-CSRF-Token`): a page of another origin cannot read it.
    public var csrf: String
    public var kind: Kind
}

/// A comparison as one reviewer sees it: the sides as drawn for them.
public struct Assignment: Sendable, Equatable {
    public var comparison: Int64
    public var prompt: String
    public var left: String
    public var right: String
    public var leftSystem: Int64
    public var rightSystem: Int64
}

public enum Verdict: String, Sendable, CaseIterable, Codable {
    case left, right, tie, bothBad = "both_bad", skip
}

/// One stored vote, in system terms and as shown.
public struct VoteRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var study: String
    public var reviewer: String
    public var reviewerKind: String
    public var comparison: Int64
    public var prompt: String
    public var leftSystem: String
    public var rightSystem: String
    public var verdict: String
    /// The better system's name; nil for a tie, both bad or skip.
    public var winner: String?
    public var comment: String
    public var createdAt: String

    enum CodingKeys: String, CodingKey {
        case id, study, reviewer, reviewerKind = "reviewer_kind", comparison, prompt = "prompt_key", leftSystem = "left_system",
             rightSystem = "right_system", verdict, winner, comment, createdAt = "created_at"
    }
}

/// Studies in one SQLite file (GRDB, WAL, `synchronous = FULL`): a vote acknowledged to a
/// browser has been committed to disk. Every write is one transaction: a study is created
/// whole or not at all, and a vote is stored once per reviewer and comparison.
public final class ReviewStore: Sendable {
    public let path: String
    let pool: DatabasePool
    public static let maxComment = 4000
    public static let maxName = 80

    /// Opens the database at `path`; `create` makes it if missing (else a missing file is
    /// `ReviewError.noDatabase`).
    public init(path: String, create: Bool = false) throws {
        if !create && !FileManager.default.fileExists(atPath: path) { throw ReviewError.noDatabase(path: path) }
        self.path = path
        var config = Configuration()
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        config.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: config)
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE study (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
                    admin_token TEXT NOT NULL, seed INTEGER NOT NULL, per_reviewer INTEGER);
                CREATE TABLE system (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES study(id), position INTEGER NOT NULL,
                    name TEXT NOT NULL, source TEXT NOT NULL, settings TEXT NOT NULL, UNIQUE (study_id, name));
                CREATE TABLE prompt (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES study(id), position INTEGER NOT NULL,
                    key TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (study_id, key));
                CREATE TABLE output (prompt_id INTEGER NOT NULL REFERENCES prompt(id), system_id INTEGER NOT NULL REFERENCES system(id),
                    text TEXT NOT NULL, PRIMARY KEY (prompt_id, system_id));
                CREATE TABLE comparison (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES study(id),
                    prompt_id INTEGER NOT NULL REFERENCES prompt(id), first_system_id INTEGER NOT NULL REFERENCES system(id),
                    second_system_id INTEGER NOT NULL REFERENCES system(id), UNIQUE (prompt_id, first_system_id, second_system_id));
                CREATE TABLE reviewer (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES study(id), name TEXT NOT NULL,
                    token TEXT NOT NULL UNIQUE, csrf TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('human', 'judge')),
                    created_at TEXT NOT NULL, UNIQUE (study_id, name));
                CREATE TABLE assignment (reviewer_id INTEGER NOT NULL REFERENCES reviewer(id), position INTEGER NOT NULL,
                    comparison_id INTEGER NOT NULL REFERENCES comparison(id), left_system_id INTEGER NOT NULL REFERENCES system(id),
                    PRIMARY KEY (reviewer_id, position), UNIQUE (reviewer_id, comparison_id));
                CREATE TABLE vote (id INTEGER PRIMARY KEY, reviewer_id INTEGER NOT NULL REFERENCES reviewer(id),
                    comparison_id INTEGER NOT NULL REFERENCES comparison(id), left_system_id INTEGER NOT NULL REFERENCES system(id),
                    right_system_id INTEGER NOT NULL REFERENCES system(id),
                    verdict TEXT NOT NULL CHECK (verdict IN ('left', 'right', 'tie', 'both_bad', 'skip')),
                    comment TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (reviewer_id, comparison_id));
                """)
        }
        return m
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    /// 128 random bits as 32 hex digits, from the system's generator.
    static func token() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max, using: &g)) }.joined()
    }

    // MARK: studies

    /// Creates a study whole: its systems, prompts, outputs and every comparison (each prompt
    /// with each pair of systems).
    public func create(_ draft: StudyDraft) throws -> Study {
        guard !draft.name.isEmpty, draft.name.count <= Self.maxName else {
            throw ReviewError.invalidStudy("a study's name is 1 to \(Self.maxName) characters")
        }
        guard draft.systems.count >= 2 else { throw ReviewError.invalidStudy("a study compares at least two systems, got \(draft.systems.count)") }
        guard Set(draft.systems.map(\.name)).count == draft.systems.count else {
            throw ReviewError.invalidStudy("system names must differ: \(draft.systems.map(\.name).joined(separator: ", "))")
        }
        guard !draft.prompts.isEmpty else { throw ReviewError.invalidStudy("a study needs at least one prompt") }
        guard draft.outputs.count == draft.systems.count, draft.outputs.allSatisfy({ $0.count == draft.prompts.count }) else {
            throw ReviewError.invalidStudy("every system needs one output per prompt")
        }
        let admin = Self.token()
        do {
            try pool.write { db in
                try db.execute(sql: "INSERT INTO study (name, created_at, admin_token, seed, per_reviewer) VALUES (?, ?, ?, ?, ?)",
                               arguments: [draft.name, Self.now(), admin, Int64(bitPattern: draft.seed), draft.comparisonsPerReviewer])
                let study = db.lastInsertedRowID
                var systems: [Int64] = []
                for (i, s) in draft.systems.enumerated() {
                    try db.execute(sql: "INSERT INTO system (study_id, position, name, source, settings) VALUES (?, ?, ?, ?, ?)",
                                   arguments: [study, i, s.name, s.source, s.settings])
                    systems.append(db.lastInsertedRowID)
                }
                for (p, prompt) in draft.prompts.enumerated() {
                    try db.execute(sql: "INSERT INTO prompt (study_id, position, key, text) VALUES (?, ?, ?, ?)",
                                   arguments: [study, p, prompt.key, prompt.text])
                    let promptId = db.lastInsertedRowID
                    for (s, system) in systems.enumerated() {
                        try db.execute(sql: "INSERT INTO output (prompt_id, system_id, text) VALUES (?, ?, ?)",
                                       arguments: [promptId, system, draft.outputs[s][p]])
                    }
                    for a in 0..<systems.count { for b in (a + 1)..<systems.count {
                        try db.execute(sql: "INSERT INTO comparison (study_id, prompt_id, first_system_id, second_system_id) VALUES (?, ?, ?, ?)",
                                       arguments: [study, promptId, systems[a], systems[b]])
                    } }
                }
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            if try pool.read({ db in try Bool.fetchOne(db, sql: "SELECT 1 FROM study WHERE name = ?", arguments: [draft.name]) }) == true {
                throw ReviewError.studyExists(name: draft.name)
            }
            throw ReviewError.invalidStudy("prompt keys must differ (\(error.message ?? "constraint"))")
        }
        return try study(named: draft.name)
    }

    public func studyNames() throws -> [String] {
        try pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM study ORDER BY id") }
    }

    public func study(named name: String) throws -> Study {
        let found: Study? = try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM study WHERE name = ?", arguments: [name]) else { return nil }
            let id: Int64 = row["id"]
            let systems = try Row.fetchAll(db, sql: "SELECT * FROM system WHERE study_id = ? ORDER BY position", arguments: [id]).map {
                Study.System(id: $0["id"], name: $0["name"], source: $0["source"], settings: $0["settings"])
            }
            let prompts = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM prompt WHERE study_id = ?", arguments: [id]) ?? 0
            let comparisons = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM comparison WHERE study_id = ?", arguments: [id]) ?? 0
            return Study(id: id, name: row["name"], adminToken: row["admin_token"], systems: systems, prompts: prompts,
                         comparisons: comparisons, seed: UInt64(bitPattern: row["seed"] as Int64))
        }
        guard let found else { throw ReviewError.unknownStudy(name: name, known: try studyNames()) }
        return found
    }

    // MARK: reviewers

    /// A new reviewer with their own token and their comparisons in order: the study's
    /// comparisons grouped by pair of systems, each group shuffled, then dealt round-robin over
    /// the pairs (so any prefix covers every pair evenly), sides drawn at random; seeded by the
    /// study's seed and the reviewer, and cut at the study's per-reviewer count (a judge gets all).
    public func addReviewer(to study: Study, name: String, kind: Reviewer.Kind = .human) throws -> Reviewer {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= Self.maxName else { throw ReviewError.invalid(field: "name", problem: "1 to \(Self.maxName) characters") }
        let token = Self.token(), csrf = Self.token()
        do {
            return try pool.write { db in
                try db.execute(sql: "INSERT INTO reviewer (study_id, name, token, csrf, kind, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [study.id, name, token, csrf, kind.rawValue, Self.now()])
                let id = db.lastInsertedRowID
                let rows = try Row.fetchAll(db, sql: """
                    SELECT c.id, c.first_system_id, c.second_system_id FROM comparison c JOIN prompt p ON p.id = c.prompt_id
                    WHERE c.study_id = ? ORDER BY p.position, c.id
                    """, arguments: [study.id])
                let perReviewer = try Int.fetchOne(db, sql: "SELECT per_reviewer FROM study WHERE id = ?", arguments: [study.id])
                var rng = SplitMix64(seed: study.seed ^ (UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15))
                let order = Self.order(rows.map { (id: $0["id"] as Int64, pair: [$0["first_system_id"] as Int64, $0["second_system_id"] as Int64]) },
                                       using: &rng)
                for (position, c) in order.prefix(kind == .judge ? order.count : perReviewer ?? order.count).enumerated() {
                    let left = c.pair[Int(rng.next() & 1)]
                    try db.execute(sql: "INSERT INTO assignment (reviewer_id, position, comparison_id, left_system_id) VALUES (?, ?, ?, ?)",
                                   arguments: [id, position, c.id, left])
                }
                return Reviewer(id: id, studyId: study.id, name: name, token: token, csrf: csrf, kind: kind)
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw ReviewError.nameTaken(name)
        }
    }

    /// Comparisons grouped by pair, shuffled within and across pairs, dealt round-robin.
    static func order(_ comparisons: [(id: Int64, pair: [Int64])], using rng: inout SplitMix64) -> [(id: Int64, pair: [Int64])] {
        var groups: [[Int64]: [(id: Int64, pair: [Int64])]] = [:]
        for c in comparisons { groups[c.pair, default: []].append(c) }
        var lists = groups.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { groups[$0]!.shuffled(using: &rng) }
        lists.shuffle(using: &rng)
        var dealt: [(id: Int64, pair: [Int64])] = []
        for round in 0..<(lists.map(\.count).max() ?? 0) {
            for list in lists where round < list.count { dealt.append(list[round]) }
        }
        return dealt
    }

    public func reviewer(token: String) throws -> Reviewer? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM reviewer WHERE token = ?", arguments: [token]).map(Reviewer.init(row:))
        }
    }

    public func reviewers(of study: Study) throws -> [Reviewer] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM reviewer WHERE study_id = ? ORDER BY id", arguments: [study.id]).map(Reviewer.init(row:))
        }
    }

    // MARK: judging

    public struct Progress: Sendable, Equatable {
        public var done: Int
        public var total: Int
    }

    /// The reviewer's first comparison without a vote, and how far they are.
    public func next(for reviewer: Reviewer) throws -> (progress: Progress, assignment: Assignment?) {
        try pool.read { db in
            let progress = try Self.progress(db, reviewer.id)
            let row = try Row.fetchOne(db, sql: """
                SELECT a.comparison_id, a.left_system_id, CASE a.left_system_id WHEN c.first_system_id THEN c.second_system_id ELSE c.first_system_id END AS right_system_id,
                       p.text AS prompt, l.text AS left_text, r.text AS right_text
                FROM assignment a JOIN comparison c ON c.id = a.comparison_id JOIN prompt p ON p.id = c.prompt_id
                JOIN output l ON l.prompt_id = c.prompt_id AND l.system_id = a.left_system_id
                JOIN output r ON r.prompt_id = c.prompt_id AND r.system_id = CASE a.left_system_id WHEN c.first_system_id THEN c.second_system_id ELSE c.first_system_id END
                WHERE a.reviewer_id = ? AND NOT EXISTS (SELECT 1 FROM vote v WHERE v.reviewer_id = a.reviewer_id AND v.comparison_id = a.comparison_id)
                ORDER BY a.position LIMIT 1
                """, arguments: [reviewer.id])
            return (progress, row.map {
                Assignment(comparison: $0["comparison_id"], prompt: $0["prompt"], left: $0["left_text"], right: $0["right_text"],
                           leftSystem: $0["left_system_id"], rightSystem: $0["right_system_id"])
            })
        }
    }

    static func progress(_ db: Database, _ reviewer: Int64) throws -> Progress {
        Progress(done: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM vote WHERE reviewer_id = ?", arguments: [reviewer]) ?? 0,
                 total: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM assignment WHERE reviewer_id = ?", arguments: [reviewer]) ?? 0)
    }

    /// Stores a vote on one of the reviewer's comparisons, with the sides as they were shown.
    /// Returns when the transaction is on disk.
    public func vote(_ reviewer: Reviewer, comparison: Int64, verdict: Verdict, comment: String = "") throws -> Progress {
        guard comment.utf8.count <= Self.maxComment else {
            throw ReviewError.invalid(field: "comment", problem: "at most \(Self.maxComment) bytes, got \(comment.utf8.count)")
        }
        return try pool.write { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT a.left_system_id, c.first_system_id, c.second_system_id FROM assignment a JOIN comparison c ON c.id = a.comparison_id
                WHERE a.reviewer_id = ? AND a.comparison_id = ?
                """, arguments: [reviewer.id, comparison]) else { throw ReviewError.notAssigned(comparison: comparison) }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM vote WHERE reviewer_id = ? AND comparison_id = ?", arguments: [reviewer.id, comparison]) == true {
                throw ReviewError.alreadyVoted(comparison: comparison)
            }
            let left: Int64 = row["left_system_id"], first: Int64 = row["first_system_id"], second: Int64 = row["second_system_id"]
            try db.execute(sql: """
                INSERT INTO vote (reviewer_id, comparison_id, left_system_id, right_system_id, verdict, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [reviewer.id, comparison, left, left == first ? second : first, verdict.rawValue, comment, Self.now()])
            return try Self.progress(db, reviewer.id)
        }
    }

    /// Every vote of the study, oldest first.
    public func votes(of study: Study) throws -> [VoteRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT v.id, r.name AS reviewer, r.kind, v.comparison_id, p.key, l.name AS left_name, rt.name AS right_name, v.verdict,
                       v.comment, v.created_at
                FROM vote v JOIN reviewer r ON r.id = v.reviewer_id JOIN comparison c ON c.id = v.comparison_id
                JOIN prompt p ON p.id = c.prompt_id JOIN system l ON l.id = v.left_system_id JOIN system rt ON rt.id = v.right_system_id
                WHERE r.study_id = ? ORDER BY v.id
                """, arguments: [study.id]).map { row in
                let verdict: String = row["verdict"]
                let left: String = row["left_name"], right: String = row["right_name"]
                return VoteRecord(id: row["id"], study: study.name, reviewer: row["reviewer"], reviewerKind: row["kind"], comparison: row["comparison_id"],
                                  prompt: row["key"], leftSystem: left, rightSystem: right, verdict: verdict,
                                  winner: verdict == "left" ? left : verdict == "right" ? right : nil, comment: row["comment"], createdAt: row["created_at"])
            }
        }
    }
}
