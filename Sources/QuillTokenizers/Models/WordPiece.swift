/// WordPiece (BERT): greedy longest match from the left; pieces after the first carry `##`.
public struct WordPieceModel: Sendable {
    package let vocab: [String: Int32]
    package let tokens: [String]
    package let unkId: Int32
    package let prefix: String
    package let maxInputCharsPerWord: Int

    package init(vocab: [String: Int32], unkToken: String, prefix: String = "##",
                 maxInputCharsPerWord: Int = 100, source: String = "WordPiece") throws(TokenizerError) {
        guard let unk = vocab[unkToken] else {
            throw .malformed(source: source, at: "model.unk_token",
                             problem: "unknown token \"\(unkToken)\" is not in the vocabulary")
        }
        self.vocab = vocab
        self.tokens = try tokenList(vocab, source: source)
        self.unkId = unk
        self.prefix = prefix
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    package func encode(_ p: UnsafePointer<UInt8>, _ range: Range<Int>,
                        ids: inout [Int32], lengths: inout [Int32]) {
        var bounds: [Int] = []   // byte offset of each scalar, plus the end
        var i = range.lowerBound
        while i < range.upperBound { bounds.append(i); i += utf8Length(leadByte: p[i]) }
        bounds.append(range.upperBound)
        let scalarCount = bounds.count - 1
        if scalarCount > maxInputCharsPerWord {
            ids.append(unkId); lengths.append(Int32(range.count)); return
        }
        let mark = ids.count
        var start = 0
        while start < scalarCount {
            var end = scalarCount
            var found: Int32 = -1
            while end > start {
                var s = String(decoding: UnsafeBufferPointer(start: p + bounds[start],
                                                             count: bounds[end] - bounds[start]), as: UTF8.self)
                if start > 0 { s = prefix + s }
                if let id = vocab[s] { found = id; break }
                end -= 1
            }
            if found < 0 {
                ids.removeSubrange(mark...); lengths.removeSubrange(mark...)
                ids.append(unkId); lengths.append(Int32(range.count)); return
            }
            ids.append(found); lengths.append(Int32(bounds[end] - bounds[start]))
            start = end
        }
    }
}

/// The model that turns one pre-tokenized piece into token ids.
public enum TokenModel: Sendable {
    case bpe(BPEModel)
    case wordPiece(WordPieceModel)

    package var tokens: [String] {
        switch self { case .bpe(let m): m.tokens; case .wordPiece(let m): m.tokens }
    }
    package var vocab: [String: Int32] {
        switch self { case .bpe(let m): m.vocab; case .wordPiece(let m): m.vocab }
    }
}
