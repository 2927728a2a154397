/// A token that is matched in the raw text before pre-tokenization (`added_tokens` in
/// `tokenizer.json`; control and user-defined tokens in GGUF).
public struct AddedToken: Sendable, Equatable {
    public var content: String
    public var id: Int32
    public var special: Bool
    public var lstrip = false
    public var rstrip = false
    /// Matched on normalized text rather than the raw input.
    public var normalized = false
    /// Matched only when not inside a word.
    public var singleWord = false

    public init(content: String, id: Int32, special: Bool, lstrip: Bool = false, rstrip: Bool = false,
                normalized: Bool = false, singleWord: Bool = false) {
        self.content = content; self.id = id; self.special = special; self.lstrip = lstrip
        self.rstrip = rstrip; self.normalized = normalized; self.singleWord = singleWord
    }
}

/// Finds added tokens in text, leftmost-longest, with a byte trie.
package struct AddedTokenMatcher: Sendable {
    private struct Node: Sendable { var children: [UInt8: Int32] = [:]; var token: Int32 = -1 }
    private var nodes = [Node()]
    private var firstBytes = [Bool](repeating: false, count: 256)
    package let tokens: [AddedToken]

    package init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        for (index, token) in tokens.enumerated() where !token.content.isEmpty {
            var node = 0
            for b in token.content.utf8 {
                if let child = nodes[node].children[b] { node = Int(child) }
                else {
                    nodes.append(Node())
                    nodes[node].children[b] = Int32(nodes.count - 1)
                    node = nodes.count - 1
                }
            }
            if nodes[node].token < 0 { nodes[node].token = Int32(index) }
            firstBytes[Int(token.content.utf8.first!)] = true
        }
    }

    package var isEmpty: Bool { nodes.count == 1 }

    /// Splits `bytes[range]` into text runs and matched tokens (the token index). A match's range
    /// is the token's own text; whitespace that `lstrip`/`rstrip` swallow belongs to no segment.
    package func split(_ bytes: [UInt8], _ range: Range<Int>) -> [(range: Range<Int>, token: Int?)] {
        if isEmpty { return [(range, nil)] }
        var out: [(range: Range<Int>, token: Int?)] = []
        var cursor = range.lowerBound
        var i = range.lowerBound
        while i < range.upperBound {
            guard firstBytes[Int(bytes[i])], let (tokenIndex, end) = longestMatch(bytes, i, range.upperBound)
            else { i += 1; continue }
            let token = tokens[tokenIndex]
            if token.singleWord && !isWordBoundary(bytes, i, end, range) { i += 1; continue }
            var start = i, stop = end
            if token.lstrip {
                while start > cursor, isSpace(bytes, before: start) { start -= spaceLength(bytes, before: start) }
            }
            if token.rstrip {
                while stop < range.upperBound, let l = spaceLength(bytes, at: stop) { stop += l }
            }
            if start > cursor { out.append((cursor..<start, nil)) }
            out.append((i..<end, tokenIndex))
            cursor = stop
            i = stop
        }
        if cursor < range.upperBound { out.append((cursor..<range.upperBound, nil)) }
        return out
    }

    private func longestMatch(_ bytes: [UInt8], _ start: Int, _ end: Int) -> (Int, Int)? {
        var node = 0
        var best: (Int, Int)? = nil
        var i = start
        while i < end, let child = nodes[node].children[bytes[i]] {
            node = Int(child)
            i += 1
            if nodes[node].token >= 0 { best = (Int(nodes[node].token), i) }
        }
        return best
    }

    private func isWordBoundary(_ bytes: [UInt8], _ start: Int, _ end: Int, _ range: Range<Int>) -> Bool {
        bytes.withUnsafeBufferPointer { buf in
            let p = buf.baseAddress!
            if start > range.lowerBound {
                var k = start - 1
                while k > range.lowerBound && bytes[k] & 0xC0 == 0x80 { k -= 1 }
                if Self.isWordScalar(decodeScalar(p, k).value) { return false }
            }
            if end < range.upperBound, Self.isWordScalar(decodeScalar(p, end).value) { return false }
            return true
        }
    }

    private static func isWordScalar(_ v: UInt32) -> Bool {
        v == 0x5F || !UnicodeClasses.of(v).isDisjoint(with: [.letter, .number, .mark])
    }

    private func isSpace(_ bytes: [UInt8], before i: Int) -> Bool { spaceLength(bytes, before: i) > 0 }

    private func spaceLength(_ bytes: [UInt8], before i: Int) -> Int {
        var k = i - 1
        while k > 0 && bytes[k] & 0xC0 == 0x80 { k -= 1 }
        guard k >= 0, let l = spaceLength(bytes, at: k), k + l == i else { return 0 }
        return l
    }

    private func spaceLength(_ bytes: [UInt8], at i: Int) -> Int? {
        bytes.withUnsafeBufferPointer { buf in
            let (v, l) = decodeScalar(buf.baseAddress!, i)
            return UnicodeClasses.of(v).contains(.whitespace) ? l : nil
        }
    }
}
