import Foundation

/// The pieces of a SentencePiece `.model` file (a `ModelProto` protobuf), read without a
/// protobuf library: only the fields a BPE tokenizer needs.
struct SentencePieceModelFile {
    enum PieceType: Int { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }
    var pieces: [(piece: String, score: Float, type: PieceType)] = []
    var modelType = 1            // 1 unigram, 2 BPE, 3 word, 4 char
    var addDummyPrefix = true
    var unkId = 0, bosId = 1, eosId = 2, padId = -1

    init(_ data: Data, source: String) throws(TokenizerError) {
        var reader = ProtobufReader(bytes: [UInt8](data), source: source)
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, 2):
                var sub = ProtobufReader(bytes: try reader.message(), source: source)
                var piece = "", score: Float = 0, type = PieceType.normal
                while let (f, w) = try sub.nextField() {
                    switch (f, w) {
                    case (1, 2): piece = String(decoding: try sub.message(), as: UTF8.self)
                    case (2, 5): score = Float(bitPattern: try sub.fixed32())
                    case (3, 0): type = PieceType(rawValue: Int(truncatingIfNeeded: try sub.varint())) ?? .normal
                    default: try sub.skip(w)
                    }
                }
                pieces.append((piece, score, type))
            case (2, 2):
                var sub = ProtobufReader(bytes: try reader.message(), source: source)
                while let (f, w) = try sub.nextField() {
                    switch (f, w) {
                    case (3, 0): modelType = Int(truncatingIfNeeded: try sub.varint())
                    case (40, 0): unkId = Int(Int32(truncatingIfNeeded: try sub.varint()))
                    case (41, 0): bosId = Int(Int32(truncatingIfNeeded: try sub.varint()))
                    case (42, 0): eosId = Int(Int32(truncatingIfNeeded: try sub.varint()))
                    case (43, 0): padId = Int(Int32(truncatingIfNeeded: try sub.varint()))
                    default: try sub.skip(w)
                    }
                }
            case (3, 2):
                var sub = ProtobufReader(bytes: try reader.message(), source: source)
                while let (f, w) = try sub.nextField() {
                    if (f, w) == (3, 0) { addDummyPrefix = try sub.varint() != 0 } else { try sub.skip(w) }
                }
            default: try reader.skip(wire)
            }
        }
        if pieces.isEmpty { throw .malformed(source: source, at: "", problem: "no pieces: not a SentencePiece model") }
    }
}

struct ProtobufReader {
    let buffer: [UInt8]
    let source: String
    var at = 0

    init(bytes: [UInt8], source: String) { self.buffer = bytes; self.source = source }

    mutating func nextField() throws(TokenizerError) -> (Int, Int)? {
        if at >= buffer.count { return nil }
        let key = try varint()
        return (Int(key >> 3), Int(key & 7))
    }

    mutating func varint() throws(TokenizerError) -> UInt64 {
        var value: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard at < buffer.count, shift < 64 else { throw truncated() }
            let b = buffer[at]; at += 1
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func fixed32() throws(TokenizerError) -> UInt32 {
        guard at + 4 <= buffer.count else { throw truncated() }
        defer { at += 4 }
        return UInt32(buffer[at]) | UInt32(buffer[at + 1]) << 8 | UInt32(buffer[at + 2]) << 16 | UInt32(buffer[at + 3]) << 24
    }

    mutating func message() throws(TokenizerError) -> [UInt8] {
        // a length past what is left (or past Int.max) is a truncated or hostile message
        guard let n = Int(exactly: try varint()), n <= buffer.count - at else { throw truncated() }
        defer { at += n }
        return Array(buffer[at..<(at + n)])
    }

    mutating func skip(_ wire: Int) throws(TokenizerError) {
        switch wire {
        case 0: _ = try varint()
        case 1: guard at + 8 <= buffer.count else { throw truncated() }; at += 8
        case 2: _ = try message()
        case 5: _ = try fixed32()
        default: throw .malformed(source: source, at: "byte \(at)", problem: "unsupported protobuf wire type \(wire)")
        }
    }

    func truncated() -> TokenizerError {
        .malformed(source: source, at: "byte \(at)", problem: "truncated protobuf message")
    }
}

extension Tokenizer {
    /// A SentencePiece `.model` of BPE type (Llama 2, Mistral), as Hugging Face converts it:
    /// merges derived from the piece scores, byte fallback, `▁` for spaces.
    public init(sentencePieceModel url: URL) throws(TokenizerError) {
        let file = try SentencePieceModelFile(try readFile(url), source: url.lastPathComponent)
        guard file.modelType == 2 else {
            throw .malformed(source: url.lastPathComponent, at: "trainer_spec.model_type",
                             problem: "model type \(file.modelType) is not BPE (2); only BPE SentencePiece models are supported")
        }
        try self.init(scoredPieces: file.pieces.map { ($0.piece, $0.score, $0.type.rawValue) },
                      unkId: file.unkId, bosId: file.bosId, eosId: file.eosId, padId: file.padId,
                      addSpacePrefix: file.addDummyPrefix, addBos: true, byteFallback: true,   // as HF's LlamaConverter
                      source: url.lastPathComponent)
    }

    /// A SentencePiece-style BPE tokenizer from pieces with scores and types (1 normal, 2 unknown,
    /// 3 control, 4 user-defined, 6 byte): the shape of both `.model` files and GGUF `llama` vocabularies.
    package init(scoredPieces: [(String, Float, Int)], unkId: Int, bosId: Int, eosId: Int, padId: Int,
                 addSpacePrefix: Bool, addBos: Bool, addEos: Bool = false, byteFallback: Bool,
                 source: String) throws(TokenizerError) {
        var vocab: [String: Int32] = [:]
        for (i, p) in scoredPieces.enumerated() where vocab[p.0] == nil { vocab[p.0] = Int32(i) }
        // Higher score merges first; Float scores order pieces, the id breaks ties.
        let order = scoredPieces.indices.sorted {
            scoredPieces[$0].1 != scoredPieces[$1].1 ? scoredPieces[$0].1 > scoredPieces[$1].1 : $0 < $1
        }
        var rank = [Int32](repeating: 0, count: scoredPieces.count)
        for (r, i) in order.enumerated() { rank[i] = Int32(r) }
        let mergeable = scoredPieces.enumerated().filter { $0.element.2 == 1 || $0.element.2 == 4 }
        let merges = Self.mergesFromSplits(mergeable.map { ($0.element.0, rank[$0.offset]) }, known: vocab)
        let unk = unkId >= 0 && unkId < scoredPieces.count ? scoredPieces[unkId].0 : nil
        let model = try BPEModel(vocab: vocab, idMerges: merges, unkToken: unk, fuseUnk: true,
                                 byteFallback: byteFallback, tokens: scoredPieces.map(\.0), source: source)
        var added: [AddedToken] = []
        for (i, p) in scoredPieces.enumerated() where p.2 == 2 || p.2 == 3 || p.2 == 4 {
            added.append(AddedToken(content: p.0, id: Int32(i), special: p.2 != 4))
        }
        let normalizer: Normalizer = .sequence((addSpacePrefix ? [.prepend("▁")] : [])
            + [.replace(pattern: try PatternMatcher(.string(" ")), content: "▁")])
        var single: [PostProcessor.TemplatePiece] = []
        var specials: [String: [Int32]] = [:]
        if addBos, bosId >= 0, bosId < scoredPieces.count {
            single.append(.special(scoredPieces[bosId].0, typeId: 0)); specials[scoredPieces[bosId].0] = [Int32(bosId)]
        }
        single.append(.sequence(second: false, typeId: 0))
        if addEos, eosId >= 0, eosId < scoredPieces.count {
            single.append(.special(scoredPieces[eosId].0, typeId: 0)); specials[scoredPieces[eosId].0] = [Int32(eosId)]
        }
        let pair = single + single.map { if case .sequence = $0 { return .sequence(second: true, typeId: 1) } else { return $0 } }
        self.init(normalizer: normalizer, preTokenizer: nil, model: .bpe(model),
                  postProcessor: .template(single: single, pair: pair, specialTokens: specials),
                  decoder: .sequence([.replace(pattern: "▁", content: " "), .byteFallback, .fuse,
                                      .strip(content: " ", start: addSpacePrefix ? 1 : 0, stop: 0)]),
                  addedTokens: added)
        // an id the file names but holds no piece for is no token (files say -1 for none)
        func piece(_ id: Int) -> Int32? { scoredPieces.indices.contains(id) ? Int32(id) : nil }
        bosTokenId = piece(bosId)
        eosTokenId = piece(eosId)
        padTokenId = piece(padId)
        unkTokenId = piece(unkId)
    }
}
