import Foundation
import Hummingbird
import NIOCore

/// An error as OpenAI shapes it, `{"error": {"message", "type", "param", "code"}}`, with its
/// HTTP status (and `Retry-After` for a full queue).
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    public var retryAfter: Int?
    /// The connection cannot carry another request (see `QuillServer.cancelledIfClientLeaves`).
    public var closesConnection = false

    public init(_ status: HTTPResponse.Status, _ message: String, type: String? = nil, param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type ?? (status.code >= 500 ? "server_error" : "invalid_request_error")
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public static func invalid(_ param: String, _ message: String) -> APIError {
        APIError(.badRequest, "\(param): \(message)", param: param, code: "invalid_value")
    }

    public var json: JSONValue {
        ["error": ["message": .string(message), "type": .string(type), "param": JSONValue(param), "code": JSONValue(code)]]
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if closesConnection { headers[.connection] = "close" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json.data)))
    }
}

/// A JSON request body read field by field, each wrong field a 400 that names it and says why.
public struct JSONFields: Sendable {
    public let object: [String: JSONValue]

    /// The body of `request`, at most `maxBytes` (413 beyond).
    public static func read(_ request: inout Request, maxBytes: Int) async throws -> JSONFields {
        let tooLarge = APIError(.contentTooLarge, "the request body is larger than \(maxBytes) bytes", code: "body_too_large")
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBytes { throw tooLarge }
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: maxBytes) } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
        return try JSONFields(Data(buffer.readableBytesView))
    }

    public init(_ data: Data) throws(APIError) {
        guard !data.isEmpty else { throw APIError(.badRequest, "the request body is empty; expected a JSON object", code: "invalid_json") }
        if String(validating: data, as: UTF8.self) == nil {
            let valid = (0...data.count).last { String(validating: data.prefix($0), as: UTF8.self) != nil } ?? 0
            throw APIError(.badRequest, "the request body is not valid UTF-8 (from byte \(valid))", code: "invalid_utf8")
        }
        let parsed: JSONValue
        do { parsed = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw APIError(.badRequest, "the request body is not valid JSON: \(Self.describe(error))", code: "invalid_json")
        }
        guard case .object(let object) = parsed else {
            throw APIError(.badRequest, "the request body must be a JSON object, got \(parsed.kind)", code: "invalid_json")
        }
        self.object = object
    }

    init(object: [String: JSONValue]) { self.object = object }

    static func describe(_ error: Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            return (context.underlyingError.map { "\($0)" } ?? context.debugDescription)
        }
        return "\(error)"
    }

    /// The value of `key`; nil when it is missing, or null and `nullable` (a null where the
    /// schema allows none is a wrong type, as the typed getters say).
    func value(_ key: String, nullable: Bool = false) -> JSONValue? {
        guard let v = object[key], !(v == .null && nullable) else { return nil }
        return v
    }

    /// A field the API allows to be null (`logprobs`, `suffix`).
    func nullable(_ key: String) -> JSONFields {
        var copy = object
        if copy[key] == .null { copy[key] = nil }
        return JSONFields(object: copy)
    }

    /// Rejects fields this route does not know (a typo should not pass silently).
    public func onlyKnown(_ known: Set<String>) throws(APIError) {
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIError.invalid(unknown, "unknown field; known fields are \(known.sorted().joined(separator: ", "))")
        }
    }

    public func string(_ key: String) throws(APIError) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw .invalid(key, "expected a string, got \(v.kind)") }
        return s
    }

    public func bool(_ key: String) throws(APIError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw .invalid(key, "expected true or false, got \(v.kind)") }
        return b
    }

    public func int(_ key: String, in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let v = value(key) else { return nil }
        let i: Int
        switch v {
        case .int(let n): i = n
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: i = Int(d)
        default: throw .invalid(key, "expected an integer, got \(v.kind)")
        }
        guard range.contains(i) else { throw .invalid(key, "\(i) is out of range \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    public func number(_ key: String, in range: ClosedRange<Double>) throws(APIError) -> Double? {
        guard let v = value(key) else { return nil }
        let d: Double
        switch v {
        case .int(let n): d = Double(n)
        case .double(let x): d = x
        default: throw .invalid(key, "expected a number, got \(v.kind)")
        }
        guard d.isFinite, range.contains(d) else { throw .invalid(key, "\(d) is out of range \(range.lowerBound)...\(range.upperBound)") }
        return d
    }

    /// A string or an array of strings (`stop`).
    func strings(_ key: String, max: Int) throws(APIError) -> [String]? {
        guard let v = value(key) else { return nil }
        if case .string(let s) = v { return [s] }
        guard case .array(let a) = v else { throw .invalid(key, "expected a string or an array of strings, got \(v.kind)") }
        let strings = a.compactMap(\.stringValue)
        guard strings.count == a.count else { throw .invalid(key, "expected an array of strings") }
        guard a.count <= max else { throw .invalid(key, "at most \(max) entries, got \(a.count)") }
        return strings
    }

    public func object(_ key: String) throws(APIError) -> [String: JSONValue]? {
        guard let v = value(key) else { return nil }
        guard case .object(let o) = v else { throw .invalid(key, "expected an object, got \(v.kind)") }
        return o
    }

    public func array(_ key: String) throws(APIError) -> [JSONValue]? {
        guard let v = value(key) else { return nil }
        guard case .array(let a) = v else { throw .invalid(key, "expected an array, got \(v.kind)") }
        return a
    }
}
