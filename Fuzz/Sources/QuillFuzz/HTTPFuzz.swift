import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import QuillReview
import QuillServer

/// The routes served on a real socket on this machine (Hummingbird's server, an ephemeral port)
/// and asked by AsyncHTTPClient, as a client on the network would ask them; kept alive across
/// inputs, `send` blocks the fuzzer's thread until the response is complete. (The router test
/// mode, with no sockets, kept ~8 KB of every request: a test channel per request, never closed.)
final class RouterClient: @unchecked Sendable {
    // @unchecked: `client` is written once, before `ready` is signalled, and only read afterwards.
    private var client: (any TestClientProtocol)?
    private let ready = DispatchSemaphore(value: 0)

    init(_ router: Router<BasicRequestContext>) {
        let app = Application(router: router)
        Task.detached {
            do {
                try await app.test(.ahc(.http)) { client in
                    self.client = client
                    self.ready.signal()
                    while true { try await Task.sleep(for: .seconds(3600)) }
                }
            } catch {
                violated("the router test client stopped: \(error)")
            }
        }
        ready.wait()
    }

    struct Reply { var status: HTTPResponse.Status; var contentType: String?; var body: [UInt8] }

    func send(_ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], body: [UInt8]) -> Reply? {
        guard let client else { return nil }
        nonisolated(unsafe) var reply: Reply?
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            defer { done.signal() }
            guard let response = try? await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(bytes: body)) else { return }
            reply = Reply(status: response.status, contentType: response.headers[.contentType], body: Array(buffer: response.body))
        }
        done.wait()
        return reply
    }

    /// Input bytes as the last part of a URI (percent-encoded as `allowed` requires).
    static func uriPart(_ bytes: [UInt8], _ allowed: CharacterSet) -> String {
        String(decoding: bytes, as: UTF8.self).addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// What every answer must be: never a 500, and JSON where it says JSON.
    static func check(_ reply: Reply?, _ what: String) {
        guard let reply else { return }
        if reply.status == .internalServerError { violated("500 from \(what): \(String(decoding: reply.body, as: UTF8.self))") }
        if reply.contentType?.hasPrefix("application/json") == true, (try? JSONSerialization.jsonObject(with: Data(reply.body))) == nil {
            violated("\(what) answered \(reply.status.code) with a body that is not JSON: \(String(decoding: reply.body.prefix(300), as: UTF8.self))")
        }
    }
}

/// `quill serve`'s routes with a real (tiny) model: the first byte picks the route, the rest is
/// the request body (or, for the GET routes, the path's last part).
enum ServerFuzz {
    nonisolated(unsafe) static var client: RouterClient?
    static let posts = ["/generate", "/generate_stream", "/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"]
    static let gets = ["/v1/models/", "/docs/assets/"]

    static let target = FuzzTarget(name: "server", summary: "quill serve's request bodies on every route", setUp: {
        var options = ServerOptions(modelPath: Assets.serverModel, modelName: "fuzz")
        options.limits.parallel = 2
        options.maxBodyBytes = 64 << 10
        let server = QuillServer(options: options)
        try server.loadModel()
        client = RouterClient(server.makeRouter())
    }) { bytes in
        guard let kind = bytes.first, let client else { return }
        let body = Array(bytes.dropFirst())
        let routes = posts.count + gets.count
        let route = Int(kind) % routes
        if route < posts.count {
            RouterClient.check(client.send(.post, posts[route], headers: [.contentType: "application/json"], body: body), posts[route])
        } else {
            let uri = gets[route - posts.count] + RouterClient.uriPart(body, .urlPathAllowed)
            RouterClient.check(client.send(.get, uri, body: []), uri)
        }
    }
}

/// `quill review serve`'s routes on a real study in SQLite: the first byte picks the route; the
/// harness sends the right CSRF token and admin key and replaces "TOKEN" in the body with a real
/// reviewer's token, so the bytes reach the body's reader.
enum ReviewFuzz {
    nonisolated(unsafe) static var client: RouterClient?
    nonisolated(unsafe) static var app: ReviewApp?
    nonisolated(unsafe) static var reviewer: Reviewer?

    static let target = FuzzTarget(name: "review", summary: "quill review's request bodies and links", setUp: {
        let path = "\(Scratch.folder)/review.sqlite"
        try? FileManager.default.removeItem(atPath: path)
        let store = try ReviewStore(path: path, create: true)
        let study = try store.create(StudyDraft(
            name: "fuzz", systems: [.init(name: "a", source: "a.jsonl"), .init(name: "b", source: "b.jsonl"), .init(name: "c", source: "c.jsonl")],
            prompts: [("1", "写一首诗"), ("2", "A poem"), ("3", "<b>bold</b>")],
            outputs: [["甲", "one", "x"], ["乙", "two", "y"], ["丙", "three", "z"]]))
        let app = ReviewApp(store: store, study: study)
        reviewer = try store.addReviewer(to: study, name: "fuzzer")
        ReviewFuzz.app = app
        client = RouterClient(app.makeRouter())
    }) { bytes in
        guard let kind = bytes.first, let client, let app, let reviewer else { return }
        var body = Array(bytes.dropFirst())
        body = Array(String(decoding: body, as: UTF8.self).replacingOccurrences(of: "TOKEN", with: reviewer.token).utf8)
        let admin: HTTPFields = [.authorization: "Bearer \(app.study.adminToken)", .contentType: "application/json"]
        let csrf = HTTPField.Name("X-CSRF-Token")!
        let reply: RouterClient.Reply?, what: String
        switch kind % 6 {
        case 0: (reply, what) = (client.send(.post, "/api/join", headers: [csrf: app.joinToken, .contentType: "application/json"], body: body), "/api/join")
        case 1: (reply, what) = (client.send(.post, "/api/vote", headers: [csrf: reviewer.csrf, .contentType: "application/json"], body: body), "/api/vote")
        case 2: (reply, what) = (client.send(.post, "/api/reviewers", headers: admin, body: body), "/api/reviewers")
        case 3: (reply, what) = (client.send(.post, "/api/studies", headers: admin, body: body), "/api/studies")
        default:
            let tail = RouterClient.uriPart(body, .urlQueryAllowed)
            what = kind % 6 == 4 ? "/api/next?token=\(tail)" : "/r/\(tail)"
            reply = client.send(.get, what, body: [])
        }
        RouterClient.check(reply, what)
    }
}
