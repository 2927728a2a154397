/// Byte-pair encoding, as Hugging Face `tokenizers` runs it: a piece starts as one symbol per
/// scalar (or per byte, after the ByteLevel pre-tokenizer), then the adjacent pair with the lowest
/// merge rank is merged until no pair merges.
public struct BPEModel: Sendable {
    package let vocab: [String: Int32]
    package let tokens: [String]
    package let merges: PairTable
    /// The merges in rank order, as token strings (what `tokenizer.json` stores).
    package let mergeList: [(String, String)]
    package let unkId: Int32?
    package let fuseUnk: Bool
    package let byteFallback: Bool
    package let ignoreMerges: Bool
    package let continuingSubwordPrefix: String?
    package let endOfWordSuffix: String?
    /// Byte-level symbol ids: the id of GPT-2's unicode stand-in for each byte, or -1.
    package let byteSymbols: [Int32]
    /// `<0xXX>` ids for byte fallback, or -1.
    package let fallbackBytes: [Int32]
    /// Ids of the single-scalar tokens, for the first-symbol lookup without building a String.
    private let scalarIds: [UInt32: Int32]

    /// - Parameters:
    ///   - merges: pairs of token strings, in rank order.
    ///   - tokens: every token by id, where the source lists them (GGUF, SentencePiece): Swift
    ///     compares strings by canonical equivalence, so a vocabulary with both "Å" (U+00C5) and
    ///     "Å" (U+212B) keeps one of them as a dictionary key; the list keeps both.
    package init(vocab: [String: Int32], merges: [(String, String)], unkToken: String? = nil,
                 fuseUnk: Bool = false, byteFallback: Bool = false, ignoreMerges: Bool = false,
                 continuingSubwordPrefix: String? = nil, endOfWordSuffix: String? = nil, tokens: [String]? = nil,
                 source: String = "BPE") throws(TokenizerError) {
        let prefixLength = continuingSubwordPrefix?.count ?? 0
        var idMerges: [(Int32, Int32, Int32)] = []
        idMerges.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = vocab[a], let ib = vocab[b] else {
                throw .malformed(source: source, at: "model.merges[\(rank)]",
                                 problem: "merge \"\(a) \(b)\" uses a token missing from the vocabulary")
            }
            let mergedString = a + (prefixLength > 0 && b.hasPrefix(continuingSubwordPrefix!)
                ? String(b.dropFirst(prefixLength)) : b)
            guard let merged = vocab[mergedString] else {
                throw .malformed(source: source, at: "model.merges[\(rank)]",
                                 problem: "merged token \"\(mergedString)\" is missing from the vocabulary")
            }
            idMerges.append((ia, ib, merged))
        }
        try self.init(vocab: vocab, idMerges: idMerges, unkToken: unkToken, fuseUnk: fuseUnk, byteFallback: byteFallback,
                      ignoreMerges: ignoreMerges, continuingSubwordPrefix: continuingSubwordPrefix,
                      endOfWordSuffix: endOfWordSuffix, tokens: tokens, source: source)
    }

    /// - Parameter idMerges: (left, right, merged) token ids, in rank order.
    package init(vocab: [String: Int32], idMerges: [(Int32, Int32, Int32)], unkToken: String? = nil,
                 fuseUnk: Bool = false, byteFallback: Bool = false, ignoreMerges: Bool = false,
                 continuingSubwordPrefix: String? = nil, endOfWordSuffix: String? = nil, tokens listed: [String]? = nil,
                 source: String = "BPE") throws(TokenizerError) {
        self.vocab = vocab
        var tokens = try tokenList(vocab, source: source)
        if let listed, listed.count >= tokens.count { tokens = listed }
        self.tokens = tokens
        var table = PairTable(capacity: idMerges.count)
        for (rank, (a, b, merged)) in idMerges.enumerated() { table.insert(a, b, rank: Int32(rank), merged: merged) }
        self.merges = table
        self.mergeList = idMerges.map { (tokens[Int($0.0)], tokens[Int($0.1)]) }
        self.unkId = unkToken.flatMap { vocab[$0] }
        self.fuseUnk = fuseUnk
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
        self.continuingSubwordPrefix = continuingSubwordPrefix.flatMap { $0.isEmpty ? nil : $0 }
        self.endOfWordSuffix = endOfWordSuffix.flatMap { $0.isEmpty ? nil : $0 }
        self.byteSymbols = ByteLevelAlphabet.byteToScalar.map { vocab[String(Character($0))] ?? -1 }
        self.fallbackBytes = (0..<256).map { vocab[ByteLevelAlphabet.fallbackToken(UInt8($0))] ?? -1 }
        var scalars: [UInt32: Int32] = [:]
        for (t, id) in vocab {
            let us = t.unicodeScalars
            if us.count == 1 { scalars[us.first!.value] = id }
        }
        self.scalarIds = scalars
    }

    /// Encodes one piece, appending token ids and each token's length in bytes of the piece.
    package func encode(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, byteLevel: Bool,
                        ids: inout [Int32], lengths: inout [Int32]) {
        if ignoreMerges {
            let word = byteLevel ? ByteLevelAlphabet.mapped(p, range) : String(decoding: UnsafeBufferPointer(start: p + range.lowerBound, count: range.count), as: UTF8.self)
            if let id = vocab[word] { ids.append(id); lengths.append(Int32(range.count)); return }
        }
        let start = ids.count
        initialSymbols(p, range, byteLevel: byteLevel, ids: &ids, lengths: &lengths)
        let n = ids.count - start
        if n < 2 || merges.count == 0 { return }
        if n <= 48 { mergeSmall(&ids, &lengths, from: start) } else { mergeLarge(&ids, &lengths, from: start) }
    }

    private func initialSymbols(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, byteLevel: Bool,
                                ids: inout [Int32], lengths: inout [Int32]) {
        let affixed = continuingSubwordPrefix != nil || endOfWordSuffix != nil
        var lastWasUnk = false
        var i = range.lowerBound
        while i < range.upperBound {
            let length = byteLevel ? 1 : utf8Length(leadByte: p[i])
            let isFirst = i == range.lowerBound, isLast = i + length == range.upperBound
            var id: Int32 = -1
            if affixed {
                var s = byteLevel ? ByteLevelAlphabet.mapped(p, i..<(i + 1))
                    : String(decoding: UnsafeBufferPointer(start: p + i, count: length), as: UTF8.self)
                if !isFirst, let prefix = continuingSubwordPrefix { s = prefix + s }
                if isLast, let suffix = endOfWordSuffix { s += suffix }
                id = vocab[s] ?? -1
            } else if byteLevel {
                id = byteSymbols[Int(p[i])]
            } else {
                id = scalarIds[decodeScalar(p, i).value] ?? -1
            }
            if id >= 0 {
                ids.append(id); lengths.append(Int32(length)); lastWasUnk = false
            } else if byteFallback, (i..<(i + length)).allSatisfy({ fallbackBytes[Int(p[$0])] >= 0 }) {
                for k in i..<(i + length) { ids.append(fallbackBytes[Int(p[k])]); lengths.append(1) }
                lastWasUnk = false
            } else if let unk = unkId {
                if fuseUnk && lastWasUnk { lengths[lengths.count - 1] += Int32(length) }
                else { ids.append(unk); lengths.append(Int32(length)) }
                lastWasUnk = true
            }
            i += length
        }
    }

    /// Quadratic merging for short pieces: rescanning a few pairs beats a heap.
    private func mergeSmall(_ ids: inout [Int32], _ lengths: inout [Int32], from start: Int) {
        while true {
            var bestRank = Int32.max, bestIndex = -1, bestId: Int32 = 0
            var i = start
            while i + 1 < ids.count {
                if let m = merges.lookup(ids[i], ids[i + 1]), m.rank < bestRank {
                    bestRank = m.rank; bestIndex = i; bestId = m.merged
                }
                i += 1
            }
            if bestIndex < 0 { return }
            ids[bestIndex] = bestId
            lengths[bestIndex] += lengths[bestIndex + 1]
            ids.remove(at: bestIndex + 1)
            lengths.remove(at: bestIndex + 1)
        }
    }

    /// Heap-driven merging for long pieces (a SentencePiece "word" can be a whole paragraph).
    private func mergeLarge(_ ids: inout [Int32], _ lengths: inout [Int32], from start: Int) {
        let n = ids.count - start
        var symbol = Array(ids[start...])
        var length = Array(lengths[start...])
        var next = (0..<n).map { $0 + 1 }
        var prev = (0..<n).map { $0 - 1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        for i in 0..<(n - 1) {
            if let m = merges.lookup(symbol[i], symbol[i + 1]) { heap.push(rank: m.rank, position: i) }
        }
        while let (rank, i) = heap.pop() {
            guard alive[i], next[i] < n else { continue }
            let j = next[i]
            guard let m = merges.lookup(symbol[i], symbol[j]), m.rank == rank else { continue }
            symbol[i] = m.merged
            length[i] += length[j]
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0, let left = merges.lookup(symbol[prev[i]], symbol[i]) {
                heap.push(rank: left.rank, position: prev[i])
            }
            if next[i] < n, let right = merges.lookup(symbol[i], symbol[next[i]]) {
                heap.push(rank: right.rank, position: i)
            }
        }
        ids.removeSubrange(start...)
        lengths.removeSubrange(start...)
        var i = 0
        while i < n {
            ids.append(symbol[i]); lengths.append(length[i])
            i = next[i]
        }
    }
}

/// Token ids Quill accepts from a file: 0 ..< 2^24 (the largest real vocabularies hold about 2^18),
/// so a hostile id can neither index before a table nor make one of billions of entries.
package enum TokenIds {
    package static let limit = 1 << 24
    package static func valid(_ id: Int) -> Bool { id >= 0 && id < limit }
}

/// id → token string, from a token → id vocabulary (ids missing from it stay "").
package func tokenList(_ vocab: [String: Int32], source: String) throws(TokenizerError) -> [String] {
    if let (token, id) = vocab.first(where: { !TokenIds.valid(Int($0.value)) }) {
        throw .malformed(source: source, at: "vocab[\"\(token)\"]", problem: "token id \(id) is outside 0..<\(TokenIds.limit)")
    }
    var tokens = [String](repeating: "", count: (vocab.values.max().map { Int($0) } ?? -1) + 1)
    for (t, id) in vocab { tokens[Int(id)] = t }
    return tokens
}

/// (rank, position) packed so that integer order is lowest rank first, leftmost on ties.
struct MergeHeap {
    private var heap = BinaryHeap<UInt64>()
    mutating func push(rank: Int32, position: Int) {
        heap.push(UInt64(UInt32(rank)) << 32 | UInt64(UInt32(position)))
    }
    mutating func pop() -> (Int32, Int)? {
        heap.pop().map { (Int32($0 >> 32), Int($0 & 0xFFFF_FFFF)) }
    }
}

/// GPT-2's reversible map from bytes to printable unicode scalars ("Ġ" is the space byte).
public enum ByteLevelAlphabet {
    public static let byteToScalar: [Unicode.Scalar] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var table = [UInt32](repeating: 0, count: 256)
        for b in printable { table[b] = UInt32(b) }
        var n: UInt32 = 0
        for b in 0..<256 where !printable.contains(b) {
            table[b] = 256 + n; n += 1; printable.append(b)
        }
        return table.map { Unicode.Scalar($0)! }
    }()

    public static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    static func mapped(_ p: UnsafePointer<UInt8>, _ range: Range<Int>) -> String {
        mapped(UnsafeBufferPointer(start: p + range.lowerBound, count: range.count))
    }

    public static func mapped(_ bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToScalar[Int(b)]) }
        return String(s)
    }

    static func fallbackToken(_ b: UInt8) -> String {
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }
}
