import Foundation

/// A JSON value with the path that led to it, so every loading error can say where it was.
struct JSONNode {
    let value: Any?
    let path: String
    let source: String

    static func parse(_ data: Data, source: String) throws(TokenizerError) -> JSONNode {
        do {
            return JSONNode(value: try JSONText.object(data, options: [.fragmentsAllowed]),
                            path: "", source: source)
        } catch {
            let reason = (error as NSError).userInfo["NSDebugDescription"] as? String ?? "\(error)"
            throw .malformed(source: source, at: "", problem: "not valid JSON: \(reason)")
        }
    }

    var isNull: Bool { value == nil || value is NSNull }

    subscript(key: String) -> JSONNode {
        let child = (value as? [String: Any])?[key]
        return JSONNode(value: child, path: path.isEmpty ? key : "\(path).\(key)", source: source)
    }

    func fail(_ problem: String) -> TokenizerError { .malformed(source: source, at: path, problem: problem) }

    func object() throws(TokenizerError) -> [String: Any] {
        guard let o = value as? [String: Any] else { throw fail("expected an object, found \(kind)") }
        return o
    }

    func array() throws(TokenizerError) -> [JSONNode] {
        guard let a = value as? [Any] else { throw fail("expected an array, found \(kind)") }
        return a.enumerated().map { JSONNode(value: $1, path: "\(path)[\($0)]", source: source) }
    }

    func string() throws(TokenizerError) -> String {
        guard let s = value as? String else { throw fail("expected a string, found \(kind)") }
        return s
    }

    func string(default d: String?) throws(TokenizerError) -> String? { isNull ? d : try string() }

    func bool(default d: Bool) throws(TokenizerError) -> Bool {
        if isNull { return d }
        if let b = value as? Bool { return b }
        throw fail("expected true or false, found \(kind)")
    }

    func int() throws(TokenizerError) -> Int {
        if let i = value as? Int { return i }
        if let d = value as? Double, d == d.rounded(), abs(d) < 1e15 { return Int(d) }
        throw fail("expected an integer, found \(kind)")
    }

    func int(default d: Int) throws(TokenizerError) -> Int { isNull ? d : try int() }

    /// A token id: an integer in 0 ..< `TokenIds.limit`.
    func tokenId() throws(TokenizerError) -> Int32 {
        let i = try int()
        guard TokenIds.valid(i) else { throw fail("token id \(i) is outside 0..<\(TokenIds.limit)") }
        return Int32(i)
    }

    func type(_ supported: [String]) throws(TokenizerError) -> String {
        let t = try self["type"].string()
        guard supported.contains(t) else {
            throw .unknownComponent(source: source, at: "\(path).type", found: t, supported: supported)
        }
        return t
    }

    var kind: String {
        switch value {
        case nil, is NSNull: return "null"
        case is String: return "a string"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNumber: return "a number"
        default: return "\(Swift.type(of: value!))"
        }
    }
}
