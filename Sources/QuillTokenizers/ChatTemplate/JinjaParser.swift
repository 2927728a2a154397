/// A template error: what went wrong and on which line of the template.
public struct JinjaError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public let line: Int
    /// Set when the template itself called raise_exception (a conversation it refuses).
    public let raisedByTemplate: Bool
    public var description: String { raisedByTemplate ? "chat template: \(message)" : "chat template, line \(line): \(message)" }
}

indirect enum JinjaExpr {
    case literal(JinjaValue)
    case name(String)
    case attribute(JinjaExpr, String)
    case item(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)])
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)])
    case test(JinjaExpr, String, [JinjaExpr], negated: Bool)
    case not(JinjaExpr)
    case negate(JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr)
    case ternary(JinjaExpr, JinjaExpr, JinjaExpr?)
    case list([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
}

indirect enum JinjaNode {
    case text(String)
    case output(JinjaExpr, line: Int)
    case ifBlock([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    case forBlock(targets: [String], iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], line: Int)
    case set(target: JinjaExpr, value: JinjaExpr, line: Int)
    case setBlock(name: String, body: [JinjaNode])
    case macro(name: String, parameters: [(String, JinjaExpr?)], body: [JinjaNode])
}

/// Template source → nodes, with Jinja's whitespace control (`{%-`, `-%}`) and the
/// `trim_blocks` / `lstrip_blocks` settings Hugging Face renders chat templates with.
struct JinjaParser {
    enum Token: Equatable { case name(String), string(String), int(Int), double(Double), op(String), end }
    enum Segment { case text(String), block([Token], line: Int), variable([Token], line: Int) }

    private var tokens: [Token] = []
    private var at = 0
    private var depth = 0
    private var line = 1

    static func parse(_ source: String) throws(JinjaError) -> [JinjaNode] {
        let segments = try segment(source)
        var index = 0
        let (nodes, stop) = try parseNodes(segments, &index, until: [])
        if let stop { throw JinjaError(message: "unexpected {% \(stop) %}", line: 0, raisedByTemplate: false) }
        return nodes
    }

    // MARK: Segments and whitespace

    static func segment(_ source: String) throws(JinjaError) -> [Segment] {
        let s = Array(source.unicodeScalars)
        var segments: [Segment] = []
        var text = String.UnicodeScalarView()
        var i = 0, line = 1
        var trimNextNewline = false, stripNext = false
        func flushText(stripRight: Bool, lstripBlock: Bool) {
            var t = String(text)
            text = String.UnicodeScalarView()
            if stripNext { t = String(t.unicodeScalars.drop { $0.properties.isWhitespace }); stripNext = false }
            if trimNextNewline { if t.hasPrefix("\n") { t.removeFirst() } else if t.hasPrefix("\r\n") { t.removeFirst() }; trimNextNewline = false }
            if stripRight {
                while let last = t.unicodeScalars.last, last.properties.isWhitespace { t.unicodeScalars.removeLast() }
            } else if lstripBlock {
                // spaces and tabs between the line start and a block tag go
                var scalars = Array(t.unicodeScalars)
                var k = scalars.count
                while k > 0 && (scalars[k - 1] == " " || scalars[k - 1] == "\t") { k -= 1 }
                let atLineStart = k == 0 ? (segments.isEmpty || segments.last.map { if case .text(let p) = $0 { return p.hasSuffix("\n") || p.isEmpty } else { return false } } ?? true) : scalars[k - 1] == "\n"
                if atLineStart { scalars.removeSubrange(k...); t = String(String.UnicodeScalarView(scalars)) }
            }
            if !t.isEmpty { segments.append(.text(t)) }
        }
        while i < s.count {
            if s[i] == "{", i + 1 < s.count, s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#" {
                let kind = s[i + 1]
                let close: Unicode.Scalar = kind == "{" ? "}" : kind == "%" ? "%" : "#"
                let stripLeft = i + 2 < s.count && s[i + 2] == "-"
                let keepLeft = i + 2 < s.count && s[i + 2] == "+"
                flushText(stripRight: stripLeft, lstripBlock: kind != "{" && !keepLeft)
                var j = i + 2 + (stripLeft || keepLeft ? 1 : 0)
                let start = j, startLine = line
                var inString: Unicode.Scalar? = nil
                while j + 1 < s.count {
                    if let q = inString { if s[j] == "\\" { j += 2; continue }; if s[j] == q { inString = nil } }
                    else if kind != "#" && (s[j] == "'" || s[j] == "\"") { inString = s[j] }
                    else if s[j] == close && s[j + 1] == "}" { break }
                    if s[j] == "\n" { line += 1 }
                    j += 1
                }
                guard j + 1 < s.count else {
                    throw JinjaError(message: "unclosed \(kind == "{" ? "{{" : kind == "%" ? "{%" : "{#")", line: startLine, raisedByTemplate: false)
                }
                var end = j
                let stripRight = end > start && s[end - 1] == "-"
                if stripRight { end -= 1 }
                if kind != "#" {
                    let inner = String(String.UnicodeScalarView(s[start..<end]))
                    let tokens = try tokenize(inner, line: startLine)
                    segments.append(kind == "{" ? .variable(tokens, line: startLine) : .block(tokens, line: startLine))
                }
                stripNext = stripRight
                trimNextNewline = kind != "{" && !stripRight
                i = j + 2
                continue
            }
            if s[i] == "\n" { line += 1 }
            text.append(s[i])
            i += 1
        }
        flushText(stripRight: false, lstripBlock: false)
        return segments
    }

    static func tokenize(_ source: String, line: Int) throws(JinjaError) -> [Token] {
        let s = Array(source.unicodeScalars)
        var out: [Token] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            if c.properties.isWhitespace { i += 1; continue }
            if c == "'" || c == "\"" {
                var value = String.UnicodeScalarView()
                i += 1
                while i < s.count && s[i] != c {
                    if s[i] == "\\" && i + 1 < s.count {
                        i += 1
                        switch s[i] {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "r": value.append("\r")
                        default: value.append(s[i])
                        }
                    } else { value.append(s[i]) }
                    i += 1
                }
                guard i < s.count else { throw JinjaError(message: "unterminated string", line: line, raisedByTemplate: false) }
                i += 1
                out.append(.string(String(value)))
            } else if c.properties.numericType != nil && c.value < 128 {
                var j = i
                while j < s.count && (s[j].value >= 48 && s[j].value <= 57) { j += 1 }
                if j + 1 < s.count && s[j] == "." && s[j + 1].value >= 48 && s[j + 1].value <= 57 {
                    j += 1
                    while j < s.count && (s[j].value >= 48 && s[j].value <= 57) { j += 1 }
                    out.append(.double(Double(String(String.UnicodeScalarView(s[i..<j])))!))
                } else {
                    guard let n = Int(String(String.UnicodeScalarView(s[i..<j]))) else {
                        throw JinjaError(message: "integer literal too large", line: line, raisedByTemplate: false)
                    }
                    out.append(.int(n))
                }
                i = j
            } else if c == "_" || c.properties.isAlphabetic {
                var j = i
                while j < s.count && (s[j] == "_" || s[j].properties.isAlphabetic || (s[j].value >= 48 && s[j].value <= 57)) { j += 1 }
                out.append(.name(String(String.UnicodeScalarView(s[i..<j]))))
                i = j
            } else {
                let two = i + 1 < s.count ? String(String.UnicodeScalarView([c, s[i + 1]])) : ""
                if ["==", "!=", "<=", ">=", "//", "**"].contains(two) { out.append(.op(two)); i += 2 }
                else if "+-*/%~<>=()[]{}.,:|".unicodeScalars.contains(c) { out.append(.op(String(c))); i += 1 }
                else { throw JinjaError(message: "unexpected character \"\(c)\"", line: line, raisedByTemplate: false) }
            }
        }
        return out
    }

    // MARK: Statements

    /// Blocks and expressions nest at most this deep (the parser recurses; a template is outside input).
    static let maxDepth = 200

    static func parseNodes(_ segments: [Segment], _ index: inout Int, until stops: Set<String>, depth: Int = 0)
        throws(JinjaError) -> ([JinjaNode], String?) {
        guard depth <= maxDepth else {
            throw JinjaError(message: "blocks nested more than \(maxDepth) deep", line: 0, raisedByTemplate: false)
        }
        var nodes: [JinjaNode] = []
        while index < segments.count {
            let segment = segments[index]
            index += 1
            switch segment {
            case .text(let t): nodes.append(.text(t))
            case let .variable(tokens, line):
                var p = JinjaParser(tokens: tokens, line: line)
                nodes.append(.output(try p.expression(), line: line))
                try p.expectEnd()
            case let .block(tokens, line):
                guard case .name(let keyword)? = tokens.first else {
                    throw JinjaError(message: "empty block tag", line: line, raisedByTemplate: false)
                }
                if stops.contains(keyword) { index -= 1; return (nodes, keyword) }
                var p = JinjaParser(tokens: Array(tokens.dropFirst()), line: line)
                switch keyword {
                case "if":
                    var branches: [(JinjaExpr, [JinjaNode])] = []
                    var condition = try p.expression(); try p.expectEnd()
                    var otherwise: [JinjaNode] = []
                    while true {
                        let (body, stop) = try parseNodes(segments, &index, until: ["elif", "else", "endif"], depth: depth + 1)
                        guard let stop else { throw JinjaError(message: "{% if %} without {% endif %}", line: line, raisedByTemplate: false) }
                        branches.append((condition, body))
                        guard case let .block(stopTokens, stopLine) = segments[index] else { break }
                        index += 1
                        if stop == "elif" {
                            var q = JinjaParser(tokens: Array(stopTokens.dropFirst()), line: stopLine)
                            condition = try q.expression(); try q.expectEnd()
                        } else if stop == "else" {
                            let (body, end) = try parseNodes(segments, &index, until: ["endif"], depth: depth + 1)
                            guard end != nil else { throw JinjaError(message: "{% else %} without {% endif %}", line: stopLine, raisedByTemplate: false) }
                            otherwise = body; index += 1; break
                        } else { break }
                    }
                    nodes.append(.ifBlock(branches, otherwise: otherwise))
                case "for":
                    var targets = [try p.name()]
                    while p.accept(.op(",")) { targets.append(try p.name()) }
                    try p.expect(.name("in"))
                    let iterable = try p.expression(allowTernary: false)
                    var filter: JinjaExpr? = nil
                    if p.accept(.name("if")) { filter = try p.expression() }
                    _ = p.accept(.name("recursive"))
                    try p.expectEnd()
                    let (body, stop) = try parseNodes(segments, &index, until: ["else", "endfor"], depth: depth + 1)
                    guard let stop else { throw JinjaError(message: "{% for %} without {% endfor %}", line: line, raisedByTemplate: false) }
                    index += 1
                    var otherwise: [JinjaNode] = []
                    if stop == "else" {
                        let (elseBody, end) = try parseNodes(segments, &index, until: ["endfor"], depth: depth + 1)
                        guard end != nil else { throw JinjaError(message: "{% for %} without {% endfor %}", line: line, raisedByTemplate: false) }
                        otherwise = elseBody; index += 1
                    }
                    nodes.append(.forBlock(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, line: line))
                case "set":
                    var target: JinjaExpr = .name(try p.name())
                    if p.accept(.op(".")) { target = .attribute(target, try p.name()) }
                    if p.accept(.op("=")) {
                        nodes.append(.set(target: target, value: try p.expression(), line: line))
                        try p.expectEnd()
                    } else {
                        try p.expectEnd()
                        guard case .name(let name) = target else { throw JinjaError(message: "bad set block", line: line, raisedByTemplate: false) }
                        let (body, stop) = try parseNodes(segments, &index, until: ["endset"], depth: depth + 1)
                        guard stop != nil else { throw JinjaError(message: "{% set %} without {% endset %}", line: line, raisedByTemplate: false) }
                        index += 1
                        nodes.append(.setBlock(name: name, body: body))
                    }
                case "macro":
                    let name = try p.name()
                    var parameters: [(String, JinjaExpr?)] = []
                    try p.expect(.op("("))
                    while !p.accept(.op(")")) {
                        let parameter = try p.name()
                        parameters.append((parameter, p.accept(.op("=")) ? try p.expression() : nil))
                        _ = p.accept(.op(","))
                    }
                    let (body, stop) = try parseNodes(segments, &index, until: ["endmacro"], depth: depth + 1)
                    guard stop != nil else { throw JinjaError(message: "{% macro %} without {% endmacro %}", line: line, raisedByTemplate: false) }
                    index += 1
                    nodes.append(.macro(name: name, parameters: parameters, body: body))
                case "generation", "endgeneration":
                    break   // HF's marker for assistant-token masks; renders its content unchanged
                default:
                    throw JinjaError(message: "unknown or misplaced tag {% \(keyword) %}", line: line, raisedByTemplate: false)
                }
            }
        }
        return (nodes, nil)
    }

    // MARK: Expressions (lowest precedence first)

    init(tokens: [Token], line: Int) { self.tokens = tokens; self.line = line }

    var current: Token { at < tokens.count ? tokens[at] : .end }

    mutating func accept(_ t: Token) -> Bool {
        if current == t { at += 1; return true }
        return false
    }

    func fail(_ message: String) -> JinjaError { JinjaError(message: message, line: line, raisedByTemplate: false) }

    mutating func expect(_ t: Token) throws(JinjaError) {
        guard accept(t) else { throw fail("expected \(t), found \(current)") }
    }

    mutating func expectEnd() throws(JinjaError) {
        guard current == .end else { throw fail("unexpected \(current)") }
    }

    mutating func name() throws(JinjaError) -> String {
        guard case .name(let n) = current else { throw fail("expected a name, found \(current)") }
        at += 1
        return n
    }

    /// Enters one level of a recursive rule; past `maxDepth` the expression is refused.
    mutating func enter() throws(JinjaError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("expression nested more than \(Self.maxDepth) deep") }
    }

    mutating func expression(allowTernary: Bool = true) throws(JinjaError) -> JinjaExpr {
        try enter()
        defer { depth -= 1 }
        let value = try or()
        if allowTernary && accept(.name("if")) {
            let condition = try or()
            let otherwise = accept(.name("else")) ? try expression() : nil
            return .ternary(condition, value, otherwise)
        }
        return value
    }

    mutating func or() throws(JinjaError) -> JinjaExpr {
        var left = try and()
        while accept(.name("or")) { left = .binary("or", left, try and()) }
        return left
    }

    mutating func and() throws(JinjaError) -> JinjaExpr {
        var left = try notExpression()
        while accept(.name("and")) { left = .binary("and", left, try notExpression()) }
        return left
    }

    mutating func notExpression() throws(JinjaError) -> JinjaExpr {
        try enter()
        defer { depth -= 1 }
        return accept(.name("not")) ? .not(try notExpression()) : try comparison()
    }

    mutating func comparison() throws(JinjaError) -> JinjaExpr {
        var left = try concat()
        while true {
            if case .op(let o) = current, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                at += 1; left = .binary(o, left, try concat())
            } else if accept(.name("in")) {
                left = .binary("in", left, try concat())
            } else if current == .name("not"), at + 1 < tokens.count, tokens[at + 1] == .name("in") {
                at += 2; left = .not(.binary("in", left, try concat()))
            } else if accept(.name("is")) {
                let negated = accept(.name("not"))
                let test = try name()
                var args: [JinjaExpr] = []
                if accept(.op("(")) {
                    while !accept(.op(")")) { args.append(try expression()); _ = accept(.op(",")) }
                } else if case .string = current { args.append(try primary()) }
                else if case .int = current { args.append(try primary()) }
                left = .test(left, test, args, negated: negated)
            } else { return left }
        }
    }

    mutating func concat() throws(JinjaError) -> JinjaExpr {
        var left = try sum()
        while accept(.op("~")) { left = .binary("~", left, try sum()) }
        return left
    }

    mutating func sum() throws(JinjaError) -> JinjaExpr {
        var left = try product()
        while case .op(let o) = current, o == "+" || o == "-" { at += 1; left = .binary(o, left, try product()) }
        return left
    }

    mutating func product() throws(JinjaError) -> JinjaExpr {
        var left = try unary()
        while case .op(let o) = current, ["*", "/", "//", "%"].contains(o) { at += 1; left = .binary(o, left, try unary()) }
        return left
    }

    mutating func unary() throws(JinjaError) -> JinjaExpr {
        try enter()
        defer { depth -= 1 }
        if accept(.op("-")) { return .negate(try unary()) }
        if accept(.op("+")) { return try unary() }
        return try filtered()
    }

    mutating func filtered() throws(JinjaError) -> JinjaExpr {
        var value = try postfix(try primary())
        while accept(.op("|")) {
            let filter = try name()
            var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
            if accept(.op("(")) { try arguments(&args, &kwargs) }
            value = .filter(value, filter, args, kwargs)
        }
        return value
    }

    mutating func arguments(_ args: inout [JinjaExpr], _ kwargs: inout [(String, JinjaExpr)]) throws(JinjaError) {
        while !accept(.op(")")) {
            if case .name(let n) = current, at + 1 < tokens.count, tokens[at + 1] == .op("=") {
                at += 2; kwargs.append((n, try expression()))
            } else { args.append(try expression()) }
            if !accept(.op(",")) { try expect(.op(")")); return }
        }
    }

    mutating func postfix(_ base: JinjaExpr) throws(JinjaError) -> JinjaExpr {
        var value = base
        while true {
            if accept(.op(".")) { value = .attribute(value, try name()) }
            else if accept(.op("[")) {
                var parts: [JinjaExpr?] = [nil]
                var isSlice = false
                while !accept(.op("]")) {
                    if accept(.op(":")) { isSlice = true; parts.append(nil) }
                    else { parts[parts.count - 1] = try expression() }
                }
                if isSlice {
                    while parts.count < 3 { parts.append(nil) }
                    value = .slice(value, parts[0], parts[1], parts[2])
                } else {
                    guard let index = parts[0] else { throw fail("empty subscript") }
                    value = .item(value, index)
                }
            } else if accept(.op("(")) {
                var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
                try arguments(&args, &kwargs)
                value = .call(value, args, kwargs)
            } else { return value }
        }
    }

    mutating func primary() throws(JinjaError) -> JinjaExpr {
        let token = current
        at += 1
        switch token {
        case .string(var s):
            while case .string(let more) = current { s += more; at += 1 }   // adjacent literals join
            return .literal(.string(s))
        case .int(let i): return .literal(.int(i))
        case .double(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            let inner = try expression()
            if accept(.op(",")) {
                var items = [inner]
                while !accept(.op(")")) { items.append(try expression()); _ = accept(.op(",")) }
                return .list(items)
            }
            try expect(.op(")"))
            return inner
        case .op("["):
            var items: [JinjaExpr] = []
            while !accept(.op("]")) { items.append(try expression()); _ = accept(.op(",")) }
            return .list(items)
        case .op("{"):
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while !accept(.op("}")) {
                let key = try expression(); try expect(.op(":"))
                pairs.append((key, try expression())); _ = accept(.op(","))
            }
            return .dict(pairs)
        default:
            throw fail("unexpected \(token)")
        }
    }
}
