import Foundation
import QuillTestSupport
import Testing
@testable import QuillReview

/// The review app over real HTTP: tokens, CSRF, votes, conflicts, escaping, results.
@Suite(.serialized) struct ReviewServerTests {
    func withApp(_ draft: StudyDraft = draft(), _ body: (HTTPTestClient, ReviewStore, Study) async throws -> Void) async throws {
        let store = try ReviewStore(path: temporaryDatabase(), create: true)
        let study = try store.create(draft)
        var app = ReviewApp(store: store, study: study)
        app.resamples = 50
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { [app] in try await app.run(host: "127.0.0.1", port: 0) { continuation.yield($0) } }
        defer { task.cancel() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { Issue.record("the server did not start"); return }
        try await body(HTTPTestClient(port: port), store, study)
    }

    /// The data-csrf attribute of a page.
    func csrf(_ page: String) -> String {
        guard let range = page.range(of: #"data-csrf=""#) else { return "" }
        return String(page[range.upperBound...].prefix { $0 != "\"" })
    }

    @Test func joinVoteAndConflicts() async throws {
        try await withApp { client, store, study in
            let index = try await client.request("GET", "/")
            #expect(index.status == 200 && index.headers["content-security-policy"]?.contains("default-src 'self'") == true)
            let joinCSRF = csrf(index.text)
            #expect(joinCSRF.count == 32)
            #expect(try await client.request("POST", "/api/join", body: #"{"name": "ana"}"#).status == 403, "no CSRF token")
            let joined = try await client.request("POST", "/api/join", body: #"{"name": "ana"}"#, headers: ["X-CSRF-Token": joinCSRF])
            #expect(joined.status == 200, "\(joined.text)")
            let token = try #require(joined.json["token"] as? String)
            #expect(try await client.request("POST", "/api/join", body: #"{"name": "ana"}"#, headers: ["X-CSRF-Token": joinCSRF]).status == 409)

            let page = try await client.request("GET", "/r/\(token)")
            #expect(page.status == 200)
            let reviewerCSRF = csrf(page.text)
            #expect(try await client.request("GET", "/r/nonsense").status == 404)

            let next = try await client.request("GET", "/api/next?token=\(token)")
            let comparison = try #require((next.json["comparison"] as? [String: Any])?["id"] as? Int)
            #expect(next.json["done"] as? Int == 0 && next.json["total"] as? Int == 18)
            func vote(_ body: String, csrf: String? = nil) async throws -> HTTPTestClient.Reply {
                try await client.request("POST", "/api/vote", body: body, headers: ["X-CSRF-Token": csrf ?? reviewerCSRF])
            }
            #expect(try await vote(#"{"token": "\#(token)", "comparison": \#(comparison), "verdict": "left"}"#, csrf: joinCSRF).status == 403)
            #expect(try await vote(#"{"token": "wrong", "comparison": \#(comparison), "verdict": "left"}"#).status == 401)
            #expect(try await vote(#"{"comparison": \#(comparison), "verdict": "left"}"#).status == 401)
            #expect(try await vote(#"{"token": "\#(token)", "comparison": \#(comparison), "verdict": "best"}"#).status == 400)
            let long = String(repeating: "x", count: 5000)
            let tooLong = try await vote(#"{"token": "\#(token)", "comparison": \#(comparison), "verdict": "left", "comment": "\#(long)"}"#)
            #expect(tooLong.status == 400 && (tooLong.json["error"] as? [String: Any])?["param"] as? String == "comment")
            let huge = try await vote(#"{"token": "\#(token)", "comparison": \#(comparison), "verdict": "left", "comment": "\#(String(repeating: "x", count: 70_000))"}"#)
            #expect(huge.status == 413)
            #expect(try store.votes(of: study).isEmpty, "no refused vote was stored")

            let ok = try await vote(#"{"token": "\#(token)", "comparison": \#(comparison), "verdict": "left", "comment": "好"}"#)
            #expect(ok.status == 200 && ok.json["done"] as? Int == 1)
            #expect(try await vote(#"{"token": "\#(token)", "comparison": \#(comparison), "verdict": "right"}"#).status == 409)
            #expect(try await vote(#"{"token": "\#(token)", "comparison": 999999, "verdict": "right"}"#).status == 404)
            #expect(try store.votes(of: study).count == 1)
        }
    }

    @Test func resultsNeedTheAdminKeyAndEscapeEverything() async throws {
        var hostile = draft(prompts: 2)
        hostile.systems[0].name = "<b>base</b>"
        hostile.prompts[0].text = "<script>alert(1)</script>"
        try await withApp(hostile) { client, store, study in
            #expect(try await client.request("GET", "/results").status == 401)
            #expect(try await client.request("GET", "/results?key=wrong").status == 403)
            let reviewer = try store.addReviewer(to: study, name: "<img src=x>")
            while let a = try store.next(for: reviewer).assignment { _ = try store.vote(reviewer, comparison: a.comparison, verdict: .right) }
            let page = try await client.request("GET", "/results?key=\(study.adminToken)")
            #expect(page.status == 200 && page.text.contains("<svg") && page.text.contains("&lt;b&gt;base&lt;/b&gt;") && !page.text.contains("<b>base"))
            #expect(page.text.contains("<td>s1</td><td>s2</td><td>") && page.text.contains("<td>s1</td><td>") && !page.text.contains("GRDB"),
                    "the tables hold plain strings")
            let json = try await client.request("GET", "/api/results", headers: ["Authorization": "Bearer \(study.adminToken)"])
            #expect(((json.json["human"] as? [String: Any])?["votes"] as? Int) == 6)
            let judging = try await client.request("GET", "/r/\(reviewer.token)")
            #expect(judging.text.contains("data-name=\"&lt;img src=x&gt;\"") && !judging.text.contains("<img src=x>"))
            let added = try await client.request("POST", "/api/reviewers", body: #"{"name": "bo"}"#, headers: ["Authorization": "Bearer \(study.adminToken)"])
            #expect(added.status == 200 && (added.json["url"] as? String)?.hasPrefix("/r/") == true)
            #expect(try await client.request("POST", "/api/reviewers", body: #"{"name": "eve"}"#).status == 401)

            // the admin key creates studies in the same database, whole or not at all
            let admin = ["Authorization": "Bearer \(study.adminToken)"]
            let body = #"{"name": "imported", "prompts": ["写诗", {"id": "b", "prompt": "two"}], "systems": [{"name": "x", "outputs": ["1", "2"]}, {"name": "y", "outputs": ["3", "4"]}]}"#
            #expect(try await client.request("POST", "/api/studies", body: body).status == 401)
            let created = try await client.request("POST", "/api/studies", body: body, headers: admin)
            #expect(created.status == 201 && created.json["comparisons"] as? Int == 2 && (created.json["admin_key"] as? String)?.count == 32)
            #expect(try await client.request("POST", "/api/studies", body: body, headers: admin).status == 409)
            let short = body.replacingOccurrences(of: #"["3", "4"]"#, with: #"["3"]"#).replacingOccurrences(of: "imported", with: "other")
            let refused = try await client.request("POST", "/api/studies", body: short, headers: admin)
            #expect(refused.status == 400 && (refused.json["error"] as? [String: Any])?["param"] as? String == "systems")
            #expect(try store.studyNames() == ["poems", "imported"])
        }
    }
}
