/// The text a reader sees in a page's main content: headings, paragraphs, lists and tables as
/// lines of text, entities decoded; scripts, styles, forms, navigation, headers, footers,
/// sidebars and other boilerplate dropped. Tolerant of broken HTML (unclosed and stray tags,
/// unterminated comments): it never fails, it only keeps less.
///
/// ```swift
/// let page = HTMLText().extract("<nav>Home</nav><p>Hello &amp; welcome</p>")
/// page.text   // "Hello & welcome"
/// ```
public struct HTMLText: Sendable {
    /// Drop navigation, headers, footers, sidebars, share bars, ads and the like (by element
    /// and by class / id / role words). Off: every visible element's text is kept.
    public var dropBoilerplate = true

    public init(dropBoilerplate: Bool = true) { self.dropBoilerplate = dropBoilerplate }

    public struct Page: Sendable, Equatable {
        public var title: String?
        public var text: String
    }

    public func extract(_ html: String) -> Page {
        var parser = Parser(bytes: Array(html.utf8), dropBoilerplate: dropBoilerplate)
        parser.run()
        return Page(title: parser.title, text: String(decoding: parser.output.finish(), as: UTF8.self))
    }

    // MARK: - element classes

    /// Never visible, or not content: dropped with everything inside.
    static let droppedElements: Set<String> = [
        "head", "script", "style", "noscript", "template", "form", "button", "select", "option", "textarea",
        "iframe", "svg", "canvas", "object", "embed", "audio", "video", "map", "dialog",
    ]
    /// Page furniture in HTML5's own terms: dropped when boilerplate is.
    static let furnitureElements: Set<String> = ["nav", "header", "footer", "aside", "menu"]
    /// Words of class / id / role values that mark furniture.
    static let furnitureWords: Set<String> = [
        "nav", "navbar", "navigation", "navheader", "navfooter", "navlinks", "menu", "menubar", "breadcrumb", "breadcrumbs",
        "header", "footer", "sidebar", "share", "sharing", "social", "cookie", "cookies", "consent", "banner",
        "ad", "ads", "advert", "adverts", "advertisement", "sponsor", "sponsored", "promo", "comments", "related",
        "subscribe", "newsletter", "popup", "modal", "pagination", "pager", "toolbar", "skip", "copyright",
        "contentinfo",
    ]
    /// Elements whose own class never drops them (a `<body class="has-sidebar">` is still the page).
    static let neverFurniture: Set<String> = ["html", "body", "main", "article"]
    /// Elements that start and end a line of text.
    static let blockElements: Set<String> = [
        "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd",
        "table", "tr", "thead", "tbody", "tfoot", "caption", "pre", "blockquote", "figure", "figcaption", "address",
        "center", "fieldset", "legend", "details", "summary", "body", "html", "title",
    ]
    /// Elements that are followed by a blank line, not just a line break.
    static let paragraphElements: Set<String> = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table", "ul", "ol", "dl"]
    static let voidElements: Set<String> = [
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
    ]

    // MARK: - output

    /// Text with whitespace collapsed: runs of spaces become one, line and paragraph breaks are
    /// requested and written only before the next text, so empty elements leave no blank lines.
    struct Output {
        var bytes: [UInt8] = []
        var pendingSpace = false
        var pendingBreak = 0   // 0 none, 1 line, 2 blank line

        mutating func space() { pendingSpace = true }
        mutating func lineBreak(_ kind: Int) { pendingBreak = max(pendingBreak, kind) }

        mutating func text<S: Sequence>(_ s: S, preformatted: Bool) where S.Element == UInt8 {
            for b in s {
                let isSpace = b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0C
                if isSpace && !preformatted { pendingSpace = true; continue }
                if preformatted && b == 0x0A { pendingSpace = false; flushBreak(); bytes.append(0x0A); continue }
                if preformatted && b == 0x0D { continue }
                flushBreak()
                if pendingSpace, let last = bytes.last, last != 0x0A { bytes.append(0x20) }
                pendingSpace = false
                bytes.append(b)
            }
        }

        private mutating func flushBreak() {
            guard pendingBreak > 0 else { return }
            if !bytes.isEmpty {
                while bytes.last == 0x20 { bytes.removeLast() }
                // preformatted text may already end in more newlines than the break asks for
                let newlines = bytes.reversed().prefix(while: { $0 == 0x0A }).count
                if newlines < pendingBreak { bytes.append(contentsOf: repeatElement(0x0A, count: pendingBreak - newlines)) }
            }
            pendingBreak = 0
            pendingSpace = false
        }

        mutating func finish() -> [UInt8] {
            while let last = bytes.last, last == 0x20 || last == 0x0A { bytes.removeLast() }
            return bytes
        }
    }

    // MARK: - parser

    struct Parser {
        let bytes: [UInt8]
        let dropBoilerplate: Bool
        var i = 0
        var output = Output()
        var title: String?
        /// Open elements: name, whether it drops its content, whether it is preformatted.
        var stack: [(name: String, dropped: Bool, pre: Bool)] = []
        var droppedDepth = 0, preDepth = 0

        init(bytes: [UInt8], dropBoilerplate: Bool) {
            self.bytes = bytes
            self.dropBoilerplate = dropBoilerplate
        }

        mutating func run() {
            var textStart = 0
            while i < bytes.count {
                guard bytes[i] == UInt8(ascii: "<") else { i += 1; continue }
                emitText(textStart..<i)
                markup()
                textStart = i
            }
            emitText(textStart..<bytes.count)
        }

        mutating func emitText(_ range: Range<Int>) {
            guard !range.isEmpty, droppedDepth == 0 else { return }
            output.text(HTMLText.decodeEntities(bytes[range]), preformatted: preDepth > 0)
        }

        /// At "<": a comment, doctype, processing instruction, start or end tag. A "<" that
        /// starts none of them is text.
        mutating func markup() {
            let next = i + 1 < bytes.count ? bytes[i + 1] : 0
            if next == UInt8(ascii: "!") {
                if starts(with: "<!--", at: i) { i = find("-->", from: i + 4).map { $0 + 3 } ?? bytes.count; return }
                if starts(with: "<![CDATA[", at: i) {
                    let end = find("]]>", from: i + 9) ?? bytes.count
                    if droppedDepth == 0 { output.text(bytes[(i + 9)..<end], preformatted: preDepth > 0) }
                    i = min(end + 3, bytes.count); return
                }
                i = find(">", from: i).map { $0 + 1 } ?? bytes.count; return
            }
            if next == UInt8(ascii: "?") { i = find(">", from: i).map { $0 + 1 } ?? bytes.count; return }
            let closing = next == UInt8(ascii: "/")
            var j = i + (closing ? 2 : 1)
            let nameStart = j
            while j < bytes.count, Self.isNameByte(bytes[j]) { j += 1 }
            guard j > nameStart, Self.isLetter(bytes[nameStart]) else {   // "a < b": text
                if droppedDepth == 0 { output.text([UInt8(ascii: "<")], preformatted: preDepth > 0) }
                i += 1; return
            }
            let name = String(decoding: bytes[nameStart..<j].map(Self.lower), as: UTF8.self)
            let (attributes, selfClosing, end) = readAttributes(from: j)
            i = end
            if closing { endTag(name) } else { startTag(name, attributes: attributes, selfClosing: selfClosing) }
        }

        mutating func startTag(_ name: String, attributes: [String: String], selfClosing: Bool) {
            if name == "title" || name == "script" || name == "style" || name == "textarea" {
                // raw text up to the matching end tag
                let end = findEndTag(name, from: i)
                if name == "title", title == nil {
                    title = String(decoding: HTMLText.decodeEntities(bytes[i..<end]), as: UTF8.self)
                        .split(whereSeparator: \.isWhitespace).joined(separator: " ")
                }
                i = find(">", from: end).map { $0 + 1 } ?? bytes.count
                return
            }
            switch name {
            case "br": if droppedDepth == 0 { output.lineBreak(1) }; return
            case "hr": if droppedDepth == 0 { output.lineBreak(2) }; return
            case "td", "th": if droppedDepth == 0 { output.space() }
            default: break
            }
            if HTMLText.voidElements.contains(name) || selfClosing { return }
            // a new <p> or <li> closes an open one of its kind
            if name == "p" || name == "li" || name == "dt" || name == "dd" || name == "tr" || name == "td" || name == "th" || name == "option",
               let top = stack.last, top.name == name { pop(count: 1) }
            let dropped = HTMLText.droppedElements.contains(name) || (dropBoilerplate && isFurniture(name, attributes))
            let pre = name == "pre" || name == "listing" || name == "plaintext"
            stack.append((name, dropped, pre))
            if dropped { droppedDepth += 1 }
            if pre { preDepth += 1 }
            if droppedDepth == 0, HTMLText.blockElements.contains(name) {
                output.lineBreak(HTMLText.paragraphElements.contains(name) ? 2 : 1)
            }
        }

        mutating func endTag(_ name: String) {
            guard let index = stack.lastIndex(where: { $0.name == name }) else { return }   // stray: ignored
            pop(count: stack.count - index)
        }

        mutating func pop(count: Int) {
            for _ in 0..<count {
                let e = stack.removeLast()
                if e.dropped { droppedDepth -= 1 }
                if e.pre { preDepth -= 1 }
                if droppedDepth == 0, HTMLText.blockElements.contains(e.name) {
                    output.lineBreak(HTMLText.paragraphElements.contains(e.name) ? 2 : 1)
                }
            }
        }

        func isFurniture(_ name: String, _ attributes: [String: String]) -> Bool {
            if HTMLText.furnitureElements.contains(name) { return true }
            if HTMLText.neverFurniture.contains(name) { return false }
            if attributes["hidden"] != nil || attributes["aria-hidden"] == "true" { return true }
            if let style = attributes["style"]?.lowercased().filter({ !$0.isWhitespace }),
               style.contains("display:none") || style.contains("visibility:hidden") { return true }
            for key in ["class", "id", "role"] {
                guard let value = attributes[key] else { continue }
                let words = value.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber })
                if words.contains(where: { HTMLText.furnitureWords.contains(String($0)) }) { return true }
            }
            return false
        }

        /// Attributes up to the tag's ">" (quoted values may hold ">"); names lowercased.
        func readAttributes(from start: Int) -> (attributes: [String: String], selfClosing: Bool, end: Int) {
            var attributes: [String: String] = [:]
            var j = start, selfClosing = false
            while j < bytes.count {
                let b = bytes[j]
                if b == UInt8(ascii: ">") { return (attributes, selfClosing, j + 1) }
                if b == UInt8(ascii: "/") { selfClosing = true; j += 1; continue }
                if Self.isSpace(b) { j += 1; continue }
                selfClosing = false
                let nameStart = j
                while j < bytes.count, !Self.isSpace(bytes[j]), bytes[j] != UInt8(ascii: "="), bytes[j] != UInt8(ascii: ">"),
                      bytes[j] != UInt8(ascii: "/") || j == nameStart { j += 1 }
                let name = String(decoding: bytes[nameStart..<j].map(Self.lower), as: UTF8.self)
                while j < bytes.count, Self.isSpace(bytes[j]) { j += 1 }
                var value = ""
                if j < bytes.count, bytes[j] == UInt8(ascii: "=") {
                    j += 1
                    while j < bytes.count, Self.isSpace(bytes[j]) { j += 1 }
                    if j < bytes.count, bytes[j] == UInt8(ascii: "\"") || bytes[j] == UInt8(ascii: "'") {
                        let quote = bytes[j]
                        let end = bytes[(j + 1)...].firstIndex(of: quote) ?? bytes.count
                        value = String(decoding: HTMLText.decodeEntities(bytes[(j + 1)..<end]), as: UTF8.self)
                        j = min(end + 1, bytes.count)
                    } else {
                        let valueStart = j
                        while j < bytes.count, !Self.isSpace(bytes[j]), bytes[j] != UInt8(ascii: ">") { j += 1 }
                        value = String(decoding: bytes[valueStart..<j], as: UTF8.self)
                    }
                }
                if !name.isEmpty, attributes[name] == nil { attributes[name] = value }
            }
            return (attributes, selfClosing, bytes.count)
        }

        func starts(with literal: StaticString, at position: Int) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { return false }
            return literal.withUTF8Buffer { pattern in
                (0..<count).allSatisfy { Self.lower(bytes[position + $0]) == Self.lower(pattern[$0]) }
            }
        }

        func find(_ literal: StaticString, from position: Int) -> Int? {
            var p = position
            while p < bytes.count {
                if starts(with: literal, at: p) { return p }
                p += 1
            }
            return nil
        }

        /// Where "</name" starts (case-insensitive), or the end of the input.
        func findEndTag(_ name: String, from position: Int) -> Int {
            let pattern = Array("</\(name)".utf8)
            var p = position
            while p + pattern.count <= bytes.count {
                if bytes[p] == UInt8(ascii: "<"), (0..<pattern.count).allSatisfy({ Self.lower(bytes[p + $0]) == pattern[$0] }) {
                    return p
                }
                p += 1
            }
            return bytes.count
        }

        static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
        static func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }
        static func isNameByte(_ b: UInt8) -> Bool { isLetter(b) || (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "-") || b == UInt8(ascii: ":") || b == UInt8(ascii: "_") }
        static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0C }
    }
}
