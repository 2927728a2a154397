import Foundation

/// Renders parsed template nodes: Jinja's scoping (a for-loop body has its own scope, so
/// templates use `namespace()` to carry values out), Python-flavoured values, and the filters,
/// tests and methods real chat templates call.
///
/// A template is outside input (it comes with the model file), so rendering is bounded the way
/// jinja2's sandbox bounds it: `range()` of at most 100,000 items, macros nested at most 100 deep,
/// strings (the output among them) of at most 16 MB, values nested at most 100 deep, and a
/// budget of work (expressions, statements, items copied) after which the render stops.
final class JinjaInterpreter {
    static let maxRange = 100_000
    static let maxCallDepth = 100
    static let maxStringBytes = 16 << 20
    static let maxNesting = 100
    static let workBudget = 4_000_000

    private var scopes: [[String: JinjaValue]]
    private var macros: [String: ([(String, JinjaExpr?)], [JinjaNode])] = [:]
    private var output = ""
    private var line = 0
    private var work = 0
    private var callDepth = 0
    /// Every namespace this render made: a namespace may hold itself (`{% set ns.me = ns %}`), a
    /// reference cycle that is broken when the render ends (namespaces never leave it).
    private var namespaces: [JinjaNamespace] = []

    private let now: Date

    init(globals: [String: JinjaValue], now: Date) { scopes = [globals]; self.now = now }

    func render(_ nodes: [JinjaNode]) throws(JinjaError) -> String {
        defer { for namespace in namespaces { namespace.values = [] } }
        try run(nodes)
        return output
    }

    private func fail(_ message: String) -> JinjaError { JinjaError(message: message, line: line, raisedByTemplate: false) }

    /// Counts `units` of work against the budget.
    private func spend(_ units: Int = 1) throws(JinjaError) {
        work += units
        if work > Self.workBudget { throw fail("the template did more than \(Self.workBudget) steps of work (a loop that does not end?)") }
    }

    /// A string result, refused when it is over the size limit.
    private func bounded(_ s: String) throws(JinjaError) -> JinjaValue {
        guard s.utf8.count <= Self.maxStringBytes else { throw fail("a string of more than \(Self.maxStringBytes >> 20) MB") }
        try spend(s.utf8.count >> 10)
        return .string(s)
    }

    /// `s` repeated `count` times (Python's `s * n`: nothing for n <= 0), within the size limit.
    private func repeated(_ s: String, _ count: Int) throws(JinjaError) -> String {
        guard count > 0, !s.isEmpty else { return "" }
        guard count <= Self.maxStringBytes / s.utf8.count else { throw fail("a string of more than \(Self.maxStringBytes >> 20) MB") }
        return String(repeating: s, count: count)
    }

    /// Nesting of lists and dicts, refused past the limit (a deeper value would take the stack to compare or free).
    private func checkNesting(_ v: JinjaValue, depth: Int = 0) throws(JinjaError) {
        guard depth < Self.maxNesting else { throw fail("values nested more than \(Self.maxNesting) deep") }
        switch v {
        case .array(let a):
            try spend(a.count)
            for x in a { try checkNesting(x, depth: depth + 1) }
        case .object(let o):
            try spend(o.pairs.count)
            for (_, x) in o.pairs { try checkNesting(x, depth: depth + 1) }
        default: break
        }
    }

    private func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return .undefined
    }

    private func run(_ nodes: [JinjaNode]) throws(JinjaError) {
        for node in nodes {
            try spend()
            switch node {
            case .text(let t): output += t
            case let .output(expr, l):
                line = l
                output += try eval(expr).text
                if output.utf8.count > Self.maxStringBytes { throw fail("output of more than \(Self.maxStringBytes >> 20) MB") }
            case let .ifBlock(branches, otherwise):
                var taken = false
                for (condition, body) in branches where try eval(condition).isTruthy {
                    try run(body); taken = true; break
                }
                if !taken { try run(otherwise) }
            case let .forBlock(targets, iterable, filter, body, otherwise, l):
                line = l
                var items = try iterate(try eval(iterable))
                if let filter {
                    var kept: [JinjaValue] = []
                    for item in items {
                        scopes.append(try bind(targets, item))
                        let keep = try eval(filter).isTruthy
                        scopes.removeLast()
                        if keep { kept.append(item) }
                    }
                    items = kept
                }
                if items.isEmpty { try run(otherwise); continue }
                for (i, item) in items.enumerated() {
                    var scope = try bind(targets, item)
                    scope["loop"] = .object(JinjaObject([
                        ("index", .int(i + 1)), ("index0", .int(i)), ("revindex", .int(items.count - i)),
                        ("revindex0", .int(items.count - i - 1)), ("first", .bool(i == 0)),
                        ("last", .bool(i == items.count - 1)), ("length", .int(items.count)),
                        ("previtem", i > 0 ? items[i - 1] : .undefined),
                        ("nextitem", i + 1 < items.count ? items[i + 1] : .undefined),
                    ]))
                    scopes.append(scope)
                    defer { scopes.removeLast() }
                    try run(body)
                }
            case let .set(target, value, l):
                line = l
                let v = try eval(value)
                switch target {
                case .name(let n): scopes[scopes.count - 1][n] = v
                case let .attribute(.name(n), attribute):
                    guard case .namespace(let ns) = lookup(n) else { throw fail("cannot set \(attribute) on \(n): not a namespace") }
                    ns[attribute] = v
                default: throw fail("cannot assign to this target")
                }
            case let .setBlock(name, body):
                let saved = output
                output = ""
                try run(body)
                let captured = output
                output = saved
                scopes[scopes.count - 1][name] = .string(captured)
            case let .macro(name, parameters, body):
                macros[name] = (parameters, body)
            }
        }
    }

    private func bind(_ targets: [String], _ item: JinjaValue) throws(JinjaError) -> [String: JinjaValue] {
        if targets.count == 1 { return [targets[0]: item] }
        guard case .array(let parts) = item, parts.count == targets.count else {
            throw fail("cannot unpack \(item.typeName) into \(targets.count) names")
        }
        return Dictionary(uniqueKeysWithValues: zip(targets, parts).map { ($0, $1) })
    }

    private func iterate(_ v: JinjaValue) throws(JinjaError) -> [JinjaValue] {
        switch v {
        case .array(let a): return a
        case .object(let o): return o.pairs.map { .string($0.0) }
        case .string(let s): return s.map { .string(String($0)) }
        case .undefined, .none: return []
        default: throw fail("\(v.typeName) is not iterable")
        }
    }

    // MARK: Expressions

    func eval(_ e: JinjaExpr) throws(JinjaError) -> JinjaValue {
        try spend()
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case let .attribute(base, name): return attribute(try eval(base), name)
        case let .item(base, index):
            return try subscriptValue(try eval(base), try eval(index))
        case let .slice(base, start, stop, step):
            return try slice(try eval(base), try evalOptional(start), try evalOptional(stop), try evalOptional(step))
        case let .call(callee, args, kwargs):
            return try call(callee, try evalAll(args), try evalKeywords(kwargs))
        case let .filter(value, name, args, kwargs):
            return try filter(name, try eval(value), try evalAll(args), try evalKeywords(kwargs))
        case let .test(value, name, args, negated):
            let result = try test(name, try eval(value), try evalAll(args))
            return .bool(negated ? !result : result)
        case .not(let x): return .bool(!(try eval(x)).isTruthy)
        case .negate(let x):
            switch try eval(x) {
            case .int(let i):
                guard i != .min else { throw fail("integer overflow") }
                return .int(-i)
            case .double(let d): return .double(-d)
            case let v: throw fail("cannot negate \(v.typeName)")
            }
        case let .binary(op, l, r): return try binary(op, l, r)
        case let .ternary(condition, value, otherwise):
            return try eval(condition).isTruthy ? try eval(value) : try otherwise.map(eval) ?? .undefined
        case .list(let items):
            let list = JinjaValue.array(try items.map(eval))
            try checkNesting(list)
            return list
        case .dict(let pairs):
            var out: [(String, JinjaValue)] = []
            for (k, v) in pairs { out.append((try eval(k).text, try eval(v))) }
            let dict = JinjaValue.object(JinjaObject(out))
            try checkNesting(dict)
            return dict
        }
    }

    private func evalAll(_ exprs: [JinjaExpr]) throws(JinjaError) -> [JinjaValue] {
        var out: [JinjaValue] = []
        for e in exprs { out.append(try eval(e)) }
        return out
    }

    private func evalOptional(_ e: JinjaExpr?) throws(JinjaError) -> JinjaValue? {
        guard let e else { return nil }
        return try eval(e)
    }

    private func evalKeywords(_ pairs: [(String, JinjaExpr)]) throws(JinjaError) -> [(String, JinjaValue)] {
        var out: [(String, JinjaValue)] = []
        for (k, e) in pairs { out.append((k, try eval(e))) }
        return out
    }

    private func subscriptValue(_ base: JinjaValue, _ index: JinjaValue) throws(JinjaError) -> JinjaValue {
        switch (base, index) {
        case let (.array(a), .int(i)):
            let k = i < 0 ? a.count + i : i
            return k >= 0 && k < a.count ? a[k] : .undefined
        case let (.string(s), .int(i)):
            let chars = Array(s)
            let k = i < 0 ? chars.count + i : i
            return k >= 0 && k < chars.count ? .string(String(chars[k])) : .undefined
        case let (.object(o), .string(k)): return o[k] ?? .undefined
        case let (.namespace(ns), .string(k)): return ns[k] ?? .undefined
        case (.undefined, _), (.none, _): return .undefined
        default: return .undefined
        }
    }

    private func slice(_ base: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws(JinjaError) -> JinjaValue {
        func indices(_ count: Int) throws(JinjaError) -> [Int] {
            let s = step.flatMap { if case .int(let i) = $0 { i } else { nil } } ?? 1
            guard s != 0 else { throw fail("slice step cannot be zero") }
            func clamp(_ v: JinjaValue?, _ fallback: Int) -> Int {
                guard case .int(var i)? = v else { return fallback }
                if i < 0 { i += count }
                return s > 0 ? min(max(i, 0), count) : min(max(i, -1), count - 1)
            }
            let lo = clamp(start, s > 0 ? 0 : count - 1), hi = clamp(stop, s > 0 ? count : -1)
            return Array(stride(from: lo, to: hi, by: s))
        }
        switch base {
        case .array(let a): return .array(try indices(a.count).map { a[$0] })
        case .string(let str):
            let chars = Array(str)
            return .string(String(try indices(chars.count).map { chars[$0] }))
        default: return .undefined
        }
    }

    private func binary(_ op: String, _ l: JinjaExpr, _ r: JinjaExpr) throws(JinjaError) -> JinjaValue {
        if op == "and" { let a = try eval(l); return a.isTruthy ? try eval(r) : a }
        if op == "or" { let a = try eval(l); return a.isTruthy ? a : try eval(r) }
        let a = try eval(l), b = try eval(r)
        switch op {
        case "==": return .bool(a == b)
        case "!=": return .bool(a != b)
        case "~": return try bounded(a.text + b.text)
        case "in":
            switch b {
            case .string(let s): return .bool(s.contains(a.text))
            case .array(let arr): return .bool(arr.contains(a))
            case .object(let o): return .bool(o[a.text] != nil)
            case .namespace(let ns): return .bool(ns[a.text] != nil)
            default: return .bool(false)
            }
        case "<", "<=", ">", ">=":
            let ordered: Bool
            switch (a, b) {
            case let (.string(x), .string(y)): ordered = op == "<" ? x < y : op == "<=" ? x <= y : op == ">" ? x > y : x >= y
            default:
                guard let x = number(a), let y = number(b) else { throw fail("cannot compare \(a.typeName) and \(b.typeName)") }
                ordered = op == "<" ? x < y : op == "<=" ? x <= y : op == ">" ? x > y : x >= y
            }
            return .bool(ordered)
        case "+":
            switch (a, b) {
            case let (.string(x), .string(y)): return try bounded(x + y)
            case let (.array(x), .array(y)):
                try spend(x.count + y.count)
                return .array(x + y)
            case let (.int(x), .int(y)):
                let (sum, overflow) = x.addingReportingOverflow(y)
                if overflow { throw fail("integer overflow") }
                return .int(sum)
            default:
                guard let x = number(a), let y = number(b) else { throw fail("cannot add \(a.typeName) and \(b.typeName)") }
                return .double(x + y)
            }
        case "-", "*", "/", "//", "%":
            if case let (.int(x), .int(y)) = (a, b), op != "/" {
                if (op == "//" || op == "%") && y == 0 { throw fail("division by zero") }
                let (result, overflow): (Int, Bool)
                switch op {
                case "-": (result, overflow) = x.subtractingReportingOverflow(y)
                case "*": (result, overflow) = x.multipliedReportingOverflow(by: y)
                case "//":   // Python's floor division
                    let (q, o) = x.dividedReportingOverflow(by: y)
                    let r = x.remainderReportingOverflow(dividingBy: y).partialValue
                    (result, overflow) = (q - (r != 0 && (x < 0) != (y < 0) ? 1 : 0), o)
                default:     // Python's modulo takes the divisor's sign
                    let r = y == -1 ? 0 : x % y
                    (result, overflow) = (r != 0 && (r < 0) != (y < 0) ? r + y : r, false)
                }
                if overflow { throw fail("integer overflow") }
                return .int(result)
            }
            if op == "*", case let (.string(s), .int(n)) = (a, b) { return .string(try repeated(s, n)) }
            guard let x = number(a), let y = number(b) else { throw fail("cannot apply \(op) to \(a.typeName) and \(b.typeName)") }
            switch op {
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/": return .double(x / y)
            case "//": return .double((x / y).rounded(.down))
            default: return .double(x.truncatingRemainder(dividingBy: y))
            }
        default: throw fail("unknown operator \(op)")
        }
    }

    private func number(_ v: JinjaValue) -> Double? {
        switch v {
        case .int(let i): Double(i)
        case .double(let d): d
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    // MARK: Calls, methods, filters, tests

    private func call(_ callee: JinjaExpr, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws(JinjaError) -> JinjaValue {
        if case let .attribute(base, method) = callee {
            return try self.method(try eval(base), method, args)
        }
        guard case .name(let name) = callee else { throw fail("this value cannot be called") }
        if let (parameters, body) = macros[name] {
            guard callDepth < Self.maxCallDepth else { throw fail("macros called more than \(Self.maxCallDepth) deep") }
            callDepth += 1
            defer { callDepth -= 1 }
            var scope: [String: JinjaValue] = [:]
            for (i, (parameter, defaultValue)) in parameters.enumerated() {
                if let given = kwargs.first(where: { $0.0 == parameter }) { scope[parameter] = given.1 }
                else if i < args.count { scope[parameter] = args[i] }
                else { scope[parameter] = try evalOptional(defaultValue) ?? .undefined }
            }
            let saved = output
            output = ""
            scopes.append(scope)
            defer { scopes.removeLast() }
            try run(body)
            let result = output
            output = saved
            return .string(result)
        }
        switch name {
        case "raise_exception":
            throw JinjaError(message: args.first?.text ?? "error", line: line, raisedByTemplate: true)
        case "range":
            let ints = args.compactMap { if case .int(let i) = $0 { i } else { nil } }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3 where ints[2] != 0: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw fail("range() takes 1 to 3 integers")
            }
            // the item count without overflow: (stop - start) / step, rounded up, in Double first
            let span = (Double(stop) - Double(start)) / Double(step)
            guard span <= Double(Self.maxRange) else { throw fail("range() of more than \(Self.maxRange) items") }
            guard span > 0 else { return .array([]) }
            try spend(Int(span.rounded(.up)))
            return .array(stride(from: start, to: stop, by: step).map { .int($0) })
        case "namespace", "dict":
            var values = kwargs
            if case .object(let o)? = args.first { values = o.pairs + values }
            guard name == "namespace" else { return .object(JinjaObject(values)) }
            let namespace = JinjaNamespace(values)
            namespaces.append(namespace)
            return .namespace(namespace)
        case "strftime_now":
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.dateFormat = Self.dateFormat(args.first?.text ?? "%Y-%m-%d")
            formatter.timeZone = TimeZone(identifier: "UTC")
            return .string(formatter.string(from: now))
        default:
            throw fail("unknown function \(name)()")
        }
    }

    /// strftime directives the templates use, as DateFormatter patterns.
    static func dateFormat(_ f: String) -> String {
        f.replacingAll("%d", with: "dd").replacingAll("%b", with: "MMM").replacingAll("%B", with: "MMMM")
            .replacingAll("%Y", with: "yyyy").replacingAll("%m", with: "MM").replacingAll("%H", with: "HH")
            .replacingAll("%M", with: "mm").replacingAll("%S", with: "ss").replacingAll("%A", with: "EEEE")
    }

    private func method(_ value: JinjaValue, _ name: String, _ args: [JinjaValue]) throws(JinjaError) -> JinjaValue {
        switch (value, name) {
        case let (.string(s), "strip"): return .string(strip(s, args.first?.text, left: true, right: true))
        case let (.string(s), "lstrip"): return .string(strip(s, args.first?.text, left: true, right: false))
        case let (.string(s), "rstrip"): return .string(strip(s, args.first?.text, left: false, right: true))
        case let (.string(s), "upper"): return .string(s.uppercased())
        case let (.string(s), "lower"): return .string(s.lowercased())
        case let (.string(s), "title"): return .string(s.capitalized)
        case let (.string(s), "capitalize"): return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case let (.string(s), "startswith"): return .bool(args.contains { s.hasPrefix($0.text) })
        case let (.string(s), "endswith"): return .bool(args.contains { s.hasSuffix($0.text) })
        case let (.string(s), "replace"):
            guard args.count >= 2 else { throw fail("replace() needs two arguments") }
            return .string(s.replacingAll(args[0].text, with: args[1].text))
        case let (.string(s), "split"):
            if let separator = args.first, case .string(let sep) = separator {
                return .array(s.components(separatedBy: sep).map { .string($0) })
            }
            return .array(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
        case let (.string(s), "count"): return .int(args.first.map { s.components(separatedBy: $0.text).count - 1 } ?? 0)
        case let (.string(s), "find"): return .int(args.first.flatMap { s.range(of: $0.text) }.map { s.distance(from: s.startIndex, to: $0.lowerBound) } ?? -1)
        case let (.object(o), "items"): return .array(o.pairs.map { .array([.string($0.0), $0.1]) })
        case let (.object(o), "keys"): return .array(o.pairs.map { .string($0.0) })
        case let (.object(o), "values"): return .array(o.pairs.map { $0.1 })
        case let (.object(o), "get"): return o[args.first?.text ?? ""] ?? (args.count > 1 ? args[1] : .none)
        default: throw fail("\(value.typeName) has no method \(name)()")
        }
    }

    private func strip(_ s: String, _ chars: String?, left: Bool, right: Bool) -> String {
        let remove: (Character) -> Bool = chars.map { set in { set.contains($0) } } ?? { $0.isWhitespace }
        var out = Substring(s)
        if left { out = out.drop(while: remove) }
        if right { while let last = out.last, remove(last) { out = out.dropLast() } }
        return String(out)
    }

    private func attribute(_ v: JinjaValue, _ name: String) -> JinjaValue {
        switch v {
        case .object(let o): o[name] ?? .undefined
        case .namespace(let ns): ns[name] ?? .undefined
        default: .undefined
        }
    }

    private func filter(_ name: String, _ v: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws(JinjaError) -> JinjaValue {
        func kw(_ key: String) -> JinjaValue? { kwargs.first { $0.0 == key }?.1 }
        switch name {
        case "trim": return .string(strip(v.text, args.first?.text, left: true, right: true))
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.count)
            case .array(let a): return .int(a.count)
            case .object(let o): return .int(o.pairs.count)
            default: return .int(0)
            }
        case "tojson":
            let indent = (kw("indent") ?? args.first).flatMap { if case .int(let i) = $0 { i } else { nil } }
            guard let json = v.json(indent: indent.map { min(max($0, 0), 64) }, maxDepth: Self.maxNesting) else {
                throw fail("tojson: values nested more than \(Self.maxNesting) deep (a namespace that holds itself?)")
            }
            return try bounded(json)
        case "string": return .string(v.text)
        case "upper": return .string(v.text.uppercased())
        case "lower": return .string(v.text.lowercased())
        case "title": return .string(v.text.capitalized)
        case "capitalize": return .string(v.text.prefix(1).uppercased() + v.text.dropFirst().lowercased())
        case "safe", "e", "escape": return v
        case "default", "d":
            let useForFalsy = (kw("boolean") ?? (args.count > 1 ? args[1] : .bool(false))).isTruthy
            if case .undefined = v { return args.first ?? .string("") }
            if useForFalsy && !v.isTruthy { return args.first ?? .string("") }
            return v
        case "first": return try iterate(v).first ?? .undefined
        case "last": return try iterate(v).last ?? .undefined
        case "list": return .array(try iterate(v))
        case "reverse":
            if case .string(let s) = v { return .string(String(s.reversed())) }
            return .array(try iterate(v).reversed())
        case "join":
            let separator = (kw("d") ?? args.first)?.text ?? ""
            let items = try iterate(v)
            guard separator.isEmpty || items.count <= Self.maxStringBytes / separator.utf8.count else {
                throw fail("a string of more than \(Self.maxStringBytes >> 20) MB")
            }
            return try bounded(items.map(\.text).joined(separator: separator))
        case "items":
            guard case .object(let o) = v else { return .array([]) }
            return .array(o.pairs.map { .array([.string($0.0), $0.1]) })
        case "replace":
            guard args.count >= 2 else { throw fail("replace needs two arguments") }
            let (text, old, new) = (v.text, args[0].text, args[1].text)
            if new.utf8.count > old.utf8.count, (text.utf8.count + 1) * (new.utf8.count + 1) > Self.maxStringBytes {
                let occurrences = old.isEmpty ? text.count + 1 : text.components(separatedBy: old).count - 1
                guard text.utf8.count + occurrences * (new.utf8.count - old.utf8.count) <= Self.maxStringBytes else {
                    throw fail("a string of more than \(Self.maxStringBytes >> 20) MB")
                }
            }
            return try bounded(text.replacingAll(old, with: new))
        case "int":
            if let n = number(v) {
                guard let i = Int(exactly: n.rounded(.towardZero)) else { throw fail("cannot convert \(n) to an integer") }
                return .int(i)
            }
            return .int(Int(v.text.trimmingCharacters(in: .whitespaces)) ?? 0)
        case "float": return .double(number(v) ?? Double(v.text) ?? 0)
        case "abs":
            if case .int(let i) = v {
                guard i != .min else { throw fail("integer overflow") }
                return .int(abs(i))
            }
            return .double(abs(number(v) ?? 0))
        case "indent":
            let width = args.first.flatMap { if case .int(let i) = $0 { i } else { nil } } ?? 4
            let first = (kw("first") ?? (args.count > 1 ? args[1] : .bool(false))).isTruthy
            let lines = v.text.components(separatedBy: "\n")
            guard width <= 0 || lines.count <= Self.maxStringBytes / width else { throw fail("a string of more than \(Self.maxStringBytes >> 20) MB") }
            let pad = try repeated(" ", width)
            return try bounded(lines.enumerated().map { i, l in (i == 0 && !first) || l.isEmpty ? l : pad + l }.joined(separator: "\n"))
        case "map":
            let items = try iterate(v)
            if let attr = kw("attribute") { return .array(items.map { attribute($0, attr.text) }) }
            guard let f = args.first?.text else { return .array(items) }
            return .array(try items.map { (x: JinjaValue) throws(JinjaError) -> JinjaValue in try filter(f, x, Array(args.dropFirst()), []) })
        case "select", "reject":
            let items = try iterate(v)
            let testName = args.first?.text ?? "truthy"
            var kept: [JinjaValue] = []
            for x in items {
                let pass = args.isEmpty ? x.isTruthy : try test(testName, x, Array(args.dropFirst()))
                if pass == (name == "select") { kept.append(x) }
            }
            return .array(kept)
        case "selectattr", "rejectattr":
            let items = try iterate(v)
            guard let attr = args.first?.text else { throw fail("\(name) needs an attribute name") }
            var kept: [JinjaValue] = []
            for x in items {
                let a = attribute(x, attr)
                let pass = args.count > 1 ? try test(args[1].text, a, Array(args.dropFirst(2))) : a.isTruthy
                if pass == (name == "selectattr") { kept.append(x) }
            }
            return .array(kept)
        case "unique":
            var seen: [JinjaValue] = []
            for x in try iterate(v) where !seen.contains(x) { seen.append(x) }
            return .array(seen)
        case "dictsort":
            guard case .object(let o) = v else { return .array([]) }
            return .array(o.pairs.sorted { $0.0 < $1.0 }.map { .array([.string($0.0), $0.1]) })
        default: throw fail("unknown filter \(name)")
        }
    }

    private func test(_ name: String, _ v: JinjaValue, _ args: [JinjaValue]) throws(JinjaError) -> Bool {
        switch name {
        case "defined": if case .undefined = v { return false }; return true
        case "undefined": if case .undefined = v { return true }; return false
        case "none": if case .none = v { return true }; return false
        case "string": if case .string = v { return true }; return false
        case "number": switch v { case .int, .double: return true; default: return false }
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "mapping": switch v { case .object, .namespace: return true; default: return false }
        case "iterable": switch v { case .array, .object, .string: return true; default: return false }
        case "sequence": switch v { case .array, .string, .object: return true; default: return false }
        case "true": return v == .bool(true)
        case "false": return v == .bool(false)
        case "odd", "even":
            guard case .int(let i) = v else { return false }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case .int(let i) = v, case .int(let d)? = args.first, d != 0 else { return false }
            return d == -1 || i % d == 0
        case "equalto", "eq", "==": return v == (args.first ?? .undefined)
        case "ne", "!=": return v != (args.first ?? .undefined)
        case "in":
            guard let container = args.first else { return false }
            switch container {
            case .array(let a): return a.contains(v)
            case .string(let s): return s.contains(v.text)
            case .object(let o): return o[v.text] != nil
            default: return false
            }
        case "lower": return v.text == v.text.lowercased()
        case "upper": return v.text == v.text.uppercased()
        case "truthy": return v.isTruthy
        default: throw fail("unknown test \(name)")
        }
    }
}
