import Foundation

/// A value inside a chat template: the JSON-like data Jinja templates see, with Python's
/// truthiness, equality and printing (what `{{ x }}` shows).
public indirect enum JinjaValue: Sendable, Equatable {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    /// Keys keep their insertion order, as Python dicts do.
    case object(JinjaObject)
    /// A mutable attribute bag shared by reference (`namespace()`).
    case namespace(JinjaNamespace)

    public init(_ any: Any?) {
        switch any {
        case nil, is NSNull: self = .none
        case let v as JinjaValue: self = v
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .int(i)
        case let d as Double: self = .double(d)
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map { JinjaValue($0) })
        case let o as [String: Any]:
            self = .object(JinjaObject(o.sorted { $0.key < $1.key }.map { ($0.key, JinjaValue($0.value)) }))
        default: self = .string("\(any!)")
        }
    }

    var isTruthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .object(let o): !o.pairs.isEmpty
        case .namespace: true
        }
    }

    /// How `{{ value }}` prints it (Python's str()).
    var text: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): d == d.rounded() && abs(d) < 1e16 ? String(format: "%.1f", d) : String(d)
        case .string(let s): s
        case .array(let a): "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case .object(let o): "{" + o.pairs.map { "'\($0.0)': \($0.1.repr)" }.joined(separator: ", ") + "}"
        case .namespace: "<Namespace>"
        }
    }

    /// Python's repr(), used inside printed lists and dicts.
    var repr: String {
        if case .string(let s) = self { return "'" + s.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'") + "'" }
        return text
    }

    var typeName: String {
        switch self {
        case .undefined: "undefined"
        case .none: "none"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "string"
        case .array: "list"
        case .object: "dict"
        case .namespace: "namespace"
        }
    }

    public static func == (a: JinjaValue, b: JinjaValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.int(x), .double(y)), let (.double(y), .int(x)): return Double(x) == y
        case let (.bool(x), .int(y)), let (.int(y), .bool(x)): return (x ? 1 : 0) == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.pairs.count == y.pairs.count && x.pairs.allSatisfy { p in y[p.0] == p.1 }
        case let (.namespace(x), .namespace(y)): return x === y
        default: return false
        }
    }

    /// JSON text, as HF's `tojson` filter writes it (non-ASCII kept, keys in insertion order);
    /// nil when values nest deeper than `maxDepth` (a namespace can hold itself).
    func json(indent: Int?, level: Int = 0, maxDepth: Int = .max) -> String? {
        guard level <= maxDepth else { return nil }
        let pad = indent.map { "\n" + String(repeating: " ", count: $0 * (level + 1)) } ?? ""
        let close = indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
        let comma = indent == nil ? ", " : ","
        switch self {
        case .undefined, .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double: return text
        case .string(let s): return Self.jsonString(s)
        case .array(let a):
            if a.isEmpty { return "[]" }
            var items: [String] = []
            for x in a {
                guard let item = x.json(indent: indent, level: level + 1, maxDepth: maxDepth) else { return nil }
                items.append(pad + item)
            }
            return "[" + items.joined(separator: comma) + close + "]"
        case .object(let o):
            if o.pairs.isEmpty { return "{}" }
            var items: [String] = []
            for (k, x) in o.pairs {
                guard let item = x.json(indent: indent, level: level + 1, maxDepth: maxDepth) else { return nil }
                items.append(pad + Self.jsonString(k) + ": " + item)
            }
            return "{" + items.joined(separator: comma) + close + "}"
        case .namespace(let ns): return JinjaValue.object(JinjaObject(ns.values)).json(indent: indent, level: level, maxDepth: maxDepth)
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

public struct JinjaObject: Sendable, Equatable {
    public var pairs: [(String, JinjaValue)]
    public init(_ pairs: [(String, JinjaValue)]) { self.pairs = pairs }
    public subscript(key: String) -> JinjaValue? { pairs.first { $0.0 == key }?.1 }
    public static func == (a: JinjaObject, b: JinjaObject) -> Bool { JinjaValue.object(a) == JinjaValue.object(b) }
}

public final class JinjaNamespace: @unchecked Sendable {
    // @unchecked: a namespace lives inside one render call on one thread.
    var values: [(String, JinjaValue)]
    init(_ values: [(String, JinjaValue)]) { self.values = values }
    subscript(key: String) -> JinjaValue? {
        get { values.first { $0.0 == key }?.1 }
        set {
            if let i = values.firstIndex(where: { $0.0 == key }) { values[i].1 = newValue ?? .none }
            else { values.append((key, newValue ?? .none)) }
        }
    }
}
