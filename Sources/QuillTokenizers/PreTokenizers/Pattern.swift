/// A split or replace pattern from `tokenizer.json`: a literal string or an Oniguruma-style regex.
public enum Pattern: Sendable, Equatable {
    case string(String)
    case regex(String)
}

/// A compiled pattern. The regex families that real tokenizers use run as hand-written scanners;
/// any other pattern goes to the general regex engine.
public final class PatternMatcher: Sendable {
    package enum Kind: Sendable {
        case literal([UInt8])
        case scanner(WordScanner)
        case general(GeneralRegex)
        case never
    }
    package let kind: Kind
    /// The pattern as written, for saving the tokenizer back to `tokenizer.json`.
    public let pattern: Pattern

    static let never = PatternMatcher(kind: .never, pattern: .string(""))
    private init(kind: Kind, pattern: Pattern) { self.kind = kind; self.pattern = pattern }

    public init(_ pattern: Pattern) throws(TokenizerError) {
        self.pattern = pattern
        switch pattern {
        case .string(let s): kind = s.isEmpty ? .never : .literal(Array(s.utf8))
        case .regex(let source):
            if let scanner = WordScanner(pattern: source) { kind = .scanner(scanner) }
            else { kind = .general(try GeneralRegex(source)) }
        }
    }

    package func matches(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, into out: inout [Range<Int>]) {
        switch kind {
        case .never: return
        case .literal(let needle):
            let n = needle.count
            var i = start
            while i + n <= end {
                var hit = true
                for k in 0..<n where p[i + k] != needle[k] { hit = false; break }
                if hit { out.append(i..<(i + n)); i += n } else { i += 1 }
            }
        case .scanner(let scanner):
            var i = start
            while i < end {
                let j = scanner.match(p, i, end)
                out.append(i..<j)
                i = j
            }
        case .general(let regex):
            regex.matches(p, start, end, into: &out)
        }
    }
}

/// Hand-written scanners for the GPT-2 and cl100k (Llama 3, Qwen2) pre-tokenizer regexes.
/// Each alternative is tried in the regex's order at the current position, greedy, with the
/// backtracking of `\s+(?!\S)` and `\s*[\r\n]+` worked out by hand. These patterns match every
/// scalar, so scanning never skips text.
package struct WordScanner: Sendable {
    package enum Family: Sendable { case gpt2, cl100k }
    let family: Family
    /// Longest run of \p{N} one match takes (cl100k: 3, Qwen2: 1; GPT-2: unbounded).
    let digitLimit: Int

    package static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    package static let cl100kPattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    package static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    package init(family: Family, digitLimit: Int) {
        self.family = family
        self.digitLimit = digitLimit
    }

    package init?(pattern: String) {
        switch pattern {
        case Self.gpt2Pattern: self.init(family: .gpt2, digitLimit: .max)
        case Self.cl100kPattern: self.init(family: .cl100k, digitLimit: 3)
        case Self.qwen2Pattern: self.init(family: .cl100k, digitLimit: 1)
        default: return nil
        }
    }

    @inline(__always)
    private func classAt(_ p: UnsafePointer<UInt8>, _ i: Int) -> (ScalarClass, UInt32, Int) {
        let b = p[i]
        if b < 0x80 { return (asciiClass[Int(b)], UInt32(b), 1) }
        let (v, l) = decodeScalar(p, i)
        return (UnicodeClasses.of(v), v, l)
    }

    /// Returns the end of the match that starts at `i` (always > i).
    package func match(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        if let j = contraction(p, i, end) { return j }
        let (c0, v0, l0) = classAt(p, i)
        switch family {
        case .gpt2:
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            var start = i
            var cls = c0
            if v0 == 0x20 && i + 1 < end {
                let (c1, _, _) = classAt(p, i + 1)
                if !c1.contains(.whitespace) { start = i + 1; cls = c1 }
            }
            if cls.contains(.letter) { return run(p, start, end, .letter) }
            if cls.contains(.number) { return run(p, start, end, .number) }
            if !cls.contains(.whitespace) { return runOther(p, start, end) }
            return whitespace(p, i, end, newlines: false)
        case .cl100k:
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if c0.contains(.letter) { return run(p, i, end, .letter) }
            let isNewline = v0 == 0x0A || v0 == 0x0D
            if !isNewline && !c0.contains(.number) && i + l0 < end {
                let (c1, _, _) = classAt(p, i + l0)
                if c1.contains(.letter) { return run(p, i + l0, end, .letter) }
            }
            // `\p{N}{1,3}`
            if c0.contains(.number) {
                var j = i, n = 0
                while j < end && n < digitLimit {
                    let (c, _, l) = classAt(p, j)
                    if !c.contains(.number) { break }
                    j += l; n += 1
                }
                return j
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            var start = i
            var cls = c0
            if v0 == 0x20 && i + 1 < end {
                let (c1, _, _) = classAt(p, i + 1)
                if !c1.contains(.whitespace) && !c1.contains(.letter) && !c1.contains(.number) {
                    start = i + 1; cls = c1
                }
            }
            if !cls.contains(.whitespace) {
                var j = runOther(p, start, end)
                while j < end && (p[j] == 0x0A || p[j] == 0x0D) { j += 1 }
                return j
            }
            return whitespace(p, i, end, newlines: true)
        }
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, case-insensitive for cl100k.
    @inline(__always)
    private func contraction(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int? {
        guard p[i] == 0x27, i + 1 < end else { return nil }
        let fold = family == .cl100k
        func lower(_ k: Int) -> UInt32? {
            guard k < end else { return nil }
            let b = p[k]
            if b < 0x80 { return UInt32(fold && (0x41...0x5A).contains(b) ? b + 32 : b) }
            // Oniguruma folds U+017F LATIN SMALL LETTER LONG S to 's', U+212A KELVIN SIGN to 'k'.
            if fold && b == 0xC5 && k + 1 < end && p[k + 1] == 0xBF { return 0x73 }
            return nil
        }
        let l1 = p[i + 1] == 0xC5 ? 2 : 1
        switch lower(i + 1) {
        case 0x73, 0x74, 0x6D, 0x64: return i + 1 + l1   // s t m d
        case 0x72, 0x76: return lower(i + 2) == 0x65 ? i + 3 : nil   // re ve
        case 0x6C: return lower(i + 2) == 0x6C ? i + 3 : nil            // ll
        default: return nil
        }
    }

    @inline(__always)
    private func run(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int, _ want: ScalarClass) -> Int {
        var j = i
        while j < end {
            let (c, _, l) = classAt(p, j)
            if !c.contains(want) { break }
            j += l
        }
        return j
    }

    /// A run of `[^\s\p{L}\p{N}]`.
    @inline(__always)
    private func runOther(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var j = i
        while j < end {
            let (c, _, l) = classAt(p, j)
            if c.contains(.whitespace) || c.contains(.letter) || c.contains(.number) { break }
            j += l
        }
        return j
    }

    /// `\s*[\r\n]+` (cl100k only), then `\s+(?!\S)`, then `\s+`, starting on whitespace at `i`.
    private func whitespace(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int, newlines: Bool) -> Int {
        var j = i
        var lastNewline = -1
        var lastStart = i
        while j < end {
            let (c, v, l) = classAt(p, j)
            if !c.contains(.whitespace) { break }
            if v == 0x0A || v == 0x0D { lastNewline = j }
            lastStart = j
            j += l
        }
        if newlines && lastNewline >= 0 { return lastNewline + 1 }
        if j == end { return j }
        // followed by \S: give back the last whitespace scalar, unless that leaves nothing
        return lastStart > i ? lastStart : j
    }
}

private let asciiClass: [ScalarClass] = (0..<128).map { UnicodeClasses.compute(Unicode.Scalar(UInt8($0))) }
