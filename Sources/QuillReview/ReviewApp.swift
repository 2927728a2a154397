import Foundation
import HTTPTypes
import Hummingbird
import QuillServer

/// `quill review serve`: one study's judging pages, its vote API and its results, served with
/// Hummingbird. Reviewers come by their own link (`/r/TOKEN`) or enter a name on `/`; every
/// write carries a CSRF token the page was given (`X-CSRF-Token`); results need the study's
/// admin key. Pages load no script or style from elsewhere (Content-Security-Policy: 'self').
public struct ReviewApp: Sendable {
    public let store: ReviewStore
    public let study: Study
    /// Bootstrap resamples for the results page.
    public var resamples = 1000
    public var maxBodyBytes = 64 << 10
    /// Largest body of `POST /api/studies` (prompts and every system's answers).
    public var maxStudyBytes = 32 << 20
    /// The CSRF token of the join form; new with every server.
    public let joinToken = ReviewStore.token()

    public init(store: ReviewStore, study: Study) {
        self.store = store
        self.study = study
    }

    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("health") { _, _ -> Response in (["status": "ok"] as JSONValue).response() }
        router.get("/") { _, _ -> Response in
            html(ReviewPages.join(study: study.name, csrf: joinToken))
        }
        router.get("assets/{file}") { _, context -> Response in
            guard let (type, text) = ReviewPages.assets[context.parameters.get("file") ?? ""] else {
                throw APIError(.notFound, "no such asset", code: "not_found")
            }
            return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("api/join") { request, _ -> Response in
            var request = request
            try checkCSRF(request, expected: joinToken)
            let fields = try await JSONFields.read(&request, maxBytes: maxBodyBytes)
            try fields.onlyKnown(["name"])
            guard let name = try fields.string("name") else { throw APIError.invalid("name", "required: your name") }
            let reviewer = try await run { try store.addReviewer(to: study, name: name) }
            return (["token": .string(reviewer.token), "url": .string("/r/\(reviewer.token)")] as JSONValue).response()
        }
        router.get("r/{token}") { _, context -> Response in
            guard let reviewer = try await run({ try store.reviewer(token: context.parameters.get("token") ?? "") }),
                  reviewer.studyId == study.id else {
                return html(ReviewPages.message(title: "Unknown link · 链接无效", text: ReviewError.unknownReviewer.description), status: .notFound)
            }
            return html(ReviewPages.judge(study: study.name, reviewer: reviewer))
        }
        router.get("api/next") { request, _ -> Response in
            let reviewer = try await reviewer(request.uri.queryParameters.get("token"))
            return try await next(reviewer)
        }
        router.post("api/vote") { request, _ -> Response in
            var request = request
            let fields = try await JSONFields.read(&request, maxBytes: maxBodyBytes)
            try fields.onlyKnown(["token", "comparison", "verdict", "comment"])
            let reviewer = try await reviewer(try fields.string("token"))
            try checkCSRF(request, expected: reviewer.csrf)
            guard let comparison = try fields.int("comparison", in: 1...Int.max) else { throw APIError.invalid("comparison", "required") }
            let verdictText = try fields.string("verdict") ?? ""
            guard let verdict = Verdict(rawValue: verdictText) else {
                throw APIError.invalid("verdict", "expected one of \(Verdict.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let comment = try fields.string("comment") ?? ""
            _ = try await run { try store.vote(reviewer, comparison: Int64(comparison), verdict: verdict, comment: comment) }
            return try await next(reviewer)
        }
        router.get("results") { request, _ -> Response in
            try checkAdmin(request)
            let (human, judge) = try await results()
            return html(ReviewPages.results(study: study, human: human, judge: judge))
        }
        router.get("api/results") { request, _ -> Response in
            try checkAdmin(request)
            let (human, judge) = try await results()
            let data = try ReviewResults.json(human: human, judge: judge)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data)))
        }
        router.post("api/reviewers") { request, _ -> Response in
            var request = request
            try checkAdmin(request)
            let fields = try await JSONFields.read(&request, maxBytes: maxBodyBytes)
            try fields.onlyKnown(["name"])
            guard let name = try fields.string("name") else { throw APIError.invalid("name", "required: the reviewer's name") }
            let reviewer = try await run { try store.addReviewer(to: study, name: name) }
            return (["name": .string(reviewer.name), "token": .string(reviewer.token), "url": .string("/r/\(reviewer.token)")] as JSONValue).response()
        }
        router.post("api/studies") { request, _ -> Response in
            var request = request
            try checkAdmin(request)
            let draft = try Self.draft(try await JSONFields.read(&request, maxBytes: maxStudyBytes))
            let created = try await run { try store.create(draft) }
            return (["name": .string(created.name), "admin_key": .string(created.adminToken), "systems": .int(created.systems.count),
                     "prompts": .int(created.prompts), "comparisons": .int(created.comparisons)] as JSONValue).response(status: .created)
        }
        return router
    }

    /// A study from a request body: `{"name", "prompts": ["..." | {"id", "prompt"}], "systems":
    /// [{"name", "outputs": ["...", one per prompt], "source"?}], "per_reviewer"?, "seed"?}`.
    static func draft(_ fields: JSONFields) throws -> StudyDraft {
        try fields.onlyKnown(["name", "prompts", "systems", "per_reviewer", "seed"])
        guard let name = try fields.string("name") else { throw APIError.invalid("name", "required: the study's name") }
        guard let promptList = try fields.array("prompts"), !promptList.isEmpty else { throw APIError.invalid("prompts", "required: a non-empty array") }
        var prompts: [(key: String, text: String)] = []
        for (i, p) in promptList.enumerated() {
            switch p {
            case .string(let text): prompts.append(("\(i + 1)", text))
            case .object(let o):
                guard case .string(let text)? = o["prompt"] else { throw APIError.invalid("prompts", "entry \(i) has no string \"prompt\"") }
                let key: String
                switch o["id"] {
                case .string(let id)?: key = id
                case .int(let id)?: key = String(id)
                case nil: key = "\(i + 1)"
                default: throw APIError.invalid("prompts", "entry \(i): \"id\" is not a string or an integer")
                }
                prompts.append((key, text))
            default: throw APIError.invalid("prompts", "entry \(i) is not a string or an object")
            }
        }
        guard let systemList = try fields.array("systems") else { throw APIError.invalid("systems", "required: an array of {name, outputs}") }
        var systems: [StudyDraft.System] = [], outputs: [[String]] = []
        for (i, v) in systemList.enumerated() {
            guard case .object(let o) = v, case .string(let systemName)? = o["name"], case .array(let answers)? = o["outputs"] else {
                throw APIError.invalid("systems", "entry \(i) is not {\"name\": string, \"outputs\": [string]}")
            }
            let texts = answers.compactMap(\.stringValue)
            guard texts.count == answers.count, texts.count == prompts.count else {
                throw APIError.invalid("systems", "entry \(i) (\(systemName)) needs \(prompts.count) string outputs, one per prompt")
            }
            systems.append(.init(name: systemName, source: o["source"]?.stringValue ?? "POST /api/studies"))
            outputs.append(texts)
        }
        let perReviewer = try fields.int("per_reviewer", in: 1...1_000_000)
        let seed = try fields.int("seed", in: 0...Int.max) ?? 1
        return StudyDraft(name: name, systems: systems, prompts: prompts, outputs: outputs, comparisonsPerReviewer: perReviewer, seed: UInt64(seed))
    }

    /// The reviewer's next comparison (or none) with their progress, as JSON.
    func next(_ reviewer: Reviewer) async throws -> Response {
        let (progress, assignment) = try await run { try store.next(for: reviewer) }
        var body: [String: JSONValue] = ["done": .int(progress.done), "total": .int(progress.total), "comparison": .null]
        if let a = assignment {
            body["comparison"] = ["id": .int(Int(a.comparison)), "prompt": .string(a.prompt), "left": .string(a.left), "right": .string(a.right)]
        }
        return JSONValue.object(body).response()
    }

    public func results() async throws -> (human: ReviewResults, judge: ReviewResults) {
        let votes = try await run { try store.votes(of: study) }
        return ReviewResults.byKind(votes: votes, systems: study.systems.map(\.name), resamples: resamples)
    }

    func reviewer(_ token: String?) async throws -> Reviewer {
        guard let token, !token.isEmpty else { throw APIError(.unauthorized, "missing reviewer token", param: "token", code: "missing_token") }
        guard let reviewer = try await run({ try store.reviewer(token: token) }), reviewer.studyId == study.id else {
            throw APIError(.unauthorized, ReviewError.unknownReviewer.description, param: "token", code: "unknown_token")
        }
        return reviewer
    }

    func checkCSRF(_ request: Request, expected: String) throws {
        guard let sent = request.headers[Self.csrfHeader], constantTimeEqual(sent, expected) else {
            throw APIError(.forbidden, "missing or wrong X-CSRF-Token header; reload the page", code: "csrf")
        }
    }

    /// The admin key as `?key=` or `Authorization: Bearer`.
    func checkAdmin(_ request: Request) throws {
        let bearer = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let key = bearer ?? request.uri.queryParameters.get("key") else {
            throw APIError(.unauthorized, "the study's admin key is required (?key= or Authorization: Bearer)", code: "missing_key")
        }
        guard constantTimeEqual(key, study.adminToken) else { throw APIError(.forbidden, "wrong admin key", code: "wrong_key") }
    }

    /// Runs blocking database work off the cooperative threads; store errors become 4xx.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
            }
        } catch let error as ReviewError {
            switch error {
            case .unknownReviewer: throw APIError(.unauthorized, error.description, param: "token", code: "unknown_token")
            case .notAssigned: throw APIError(.notFound, error.description, param: "comparison", code: "not_assigned")
            case .alreadyVoted: throw APIError(.conflict, error.description, param: "comparison", code: "already_voted")
            case .nameTaken: throw APIError(.conflict, error.description, param: "name", code: "name_taken")
            case .studyExists: throw APIError(.conflict, error.description, param: "name", code: "study_exists")
            case .invalid(let field, _): throw APIError(.badRequest, error.description, param: field, code: "invalid_value")
            default: throw APIError(.badRequest, error.description)
            }
        }
    }
}

func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
}

func html(_ page: String, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [
        .contentType: "text/html; charset=utf-8",
        .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        .xContentTypeOptions: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
    ], body: .init(byteBuffer: ByteBuffer(string: page)))
}

extension ReviewApp {
    /// Serves until SIGTERM or SIGINT; `onReady` gets the port (0 asks for any free one).
    public func run(host: String, port: Int, onReady: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let app = Application(router: makeRouter(), configuration: .init(address: .hostname(host, port: port), serverName: "quill-review"),
                              onServerRunning: { channel in onReady(channel.localAddress?.port ?? 0) })
        try await app.runService()
    }
}
