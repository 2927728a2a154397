import Foundation
import QuillTokenizers

extension Tokenizer {
    /// This tokenizer as GGUF metadata (`tokenizer.ggml.*` and `tokenizer.chat_template`), the
    /// keys llama.cpp's converter writes:
    /// - byte-level BPE (GPT-2, SmolLM, Llama 3, Qwen2) as `gpt2`: tokens, token types, merges,
    ///   and `pre`, the pre-tokenizer llama.cpp runs, set explicitly;
    /// - SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma) as `llama`: tokens,
    ///   token types and scores that rank every piece by the merge that makes it.
    ///
    /// `vocabularySize`: the model's embedding rows; ids the tokenizer has no token for are
    /// written as `[PAD<id>]`, unused, as llama.cpp's converter pads them.
    ///
    /// The result is checked by reading it back as `Tokenizer(ggufMetadata:)` does (and as
    /// llama.cpp does): it must encode a set of probe texts (English, Chinese, code, digits,
    /// whitespace runs, emoji, special tokens) to the same ids as this tokenizer. `pre` is the
    /// first of llama.cpp's pre-tokenizer names for which that holds; none is a refusal.
    public func ggufMetadata(vocabularySize: Int? = nil, source: String) throws -> [(key: String, value: GGUFValue)] {
        guard case .bpe(let bpe) = model else {
            throw TokenizerError.unknownComponent(source: source, at: "model", found: "WordPiece",
                                                  supported: ["byte-level BPE", "SentencePiece-style BPE with byte fallback"])
        }
        let count = max(vocabularySize ?? 0, self.vocabularySize)
        let unk = unkTokenId ?? bpe.unkId
        let sentencePiece = !usesByteLevel && bpe.byteFallback
        guard usesByteLevel || sentencePiece else {
            throw TokenizerError.unknownComponent(source: source, at: "model", found: "BPE without byte-level mapping or byte fallback",
                                                  supported: ["byte-level BPE", "SentencePiece-style BPE with byte fallback"])
        }
        var added: [Int32: AddedToken] = [:]
        for token in addedTokens { added[token.id] = token }
        var tokens: [GGUFValue] = [], types: [GGUFValue] = []
        tokens.reserveCapacity(count); types.reserveCapacity(count)
        for id in 0..<count {
            let token = self.token(for: Int32(id))
            tokens.append(.string(token ?? "[PAD\(id)]"))
            let type = Self.ggufTokenType(id: Int32(id), token: token, added: added[Int32(id)], unk: unk, sentencePiece: sentencePiece)
            types.append(.int32(Int32(type.rawValue)))
        }
        let metadata: [(key: String, value: GGUFValue)] = [("tokenizer.ggml.model", .string(sentencePiece ? "llama" : "gpt2"))]
        var afterPre: [(key: String, value: GGUFValue)] = [("tokenizer.ggml.tokens", .array(.string, tokens))]
        if sentencePiece {
            // a piece's score ranks the merge that makes it: the earlier the merge, the higher
            var scores = (0..<count).map { -Float(bpe.mergeList.count + $0) }
            for (rank, pair) in bpe.mergeList.enumerated() {
                if let id = bpe.vocab[pair.0 + pair.1], Int(id) < count, scores[Int(id)] < -Float(rank) { scores[Int(id)] = -Float(rank) }
            }
            afterPre.append(("tokenizer.ggml.scores", .array(.float32, scores.map { .float32($0) })))
            afterPre.append(("tokenizer.ggml.token_type", .array(.int32, types)))
        } else {
            afterPre.append(("tokenizer.ggml.token_type", .array(.int32, types)))
            afterPre.append(("tokenizer.ggml.merges", .array(.string, bpe.mergeList.map { .string("\($0.0) \($0.1)") })))
        }
        for (key, id) in [("bos_token_id", bosTokenId), ("eos_token_id", eosTokenId), ("unknown_token_id", unk), ("padding_token_id", padTokenId)] {
            if let id { afterPre.append(("tokenizer.ggml.\(key)", .uint32(UInt32(id)))) }
        }
        let (addsBos, addsEos) = addedSpecialTokens
        afterPre.append(("tokenizer.ggml.add_bos_token", .bool(addsBos)))
        afterPre.append(("tokenizer.ggml.add_eos_token", .bool(addsEos)))
        if sentencePiece { afterPre.append(("tokenizer.ggml.add_space_prefix", .bool(addsSpacePrefix(bpe)))) }
        if let chatTemplate { afterPre.append(("tokenizer.chat_template", .string(chatTemplate))) }

        // first the name whose pre-tokenizer cuts text into the same pieces, then any that gives the same ids
        let candidates = (sentencePiece ? ["default"] : Self.preferredPreNames + PreTokenizerPresets.supported)
            .filter { sentencePiece || bpe.ignoreMerges == PreTokenizerPresets.ignoreMergesNames.contains($0) }
        var firstDifference = "", sameIds: [(key: String, value: GGUFValue)]?
        for pre in candidates {
            let written = metadata + [("tokenizer.ggml.pre", .string(pre))] + afterPre
            let readBack = try Tokenizer(ggufMetadata: Dictionary(written, uniquingKeysWith: { a, _ in a }), path: source)
            if let difference = differs(from: readBack) {
                if firstDifference.isEmpty { firstDifference = difference }
                continue
            }
            if sentencePiece || Self.probes.allSatisfy({ preTokenize($0) == readBack.preTokenize($0) }) { return written }
            sameIds = sameIds ?? written
        }
        if let sameIds { return sameIds }
        throw TokenizerError.malformed(source: source, at: "tokenizer",
                                       problem: sentencePiece
                                           ? "its GGUF form would encode differently: \(firstDifference)"
                                           : "no pre-tokenizer llama.cpp knows splits text as this tokenizer does (\(firstDifference))")
    }

    /// The names tried first, one per distinct behaviour, as llama.cpp's converter names them for
    /// the models people use most.
    static let preferredPreNames = ["gpt-2", "smollm", "llama-bpe", "qwen2"]

    /// Texts a GGUF form of a tokenizer must encode as the tokenizer does: llama.cpp's own
    /// pre-tokenizer check string and the cases where tokenizers differ.
    static let probes = [
        "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u{200D}🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
        "The quick brown fox jumps over the lazy dog. It's 2024-06-01, and the price is $1,234.56!",
        "床前明月光，疑是地上霜。举头望明月，低头思故乡。我们在北京大学学习人工智能。",
        "def add(a, b):\n    return a + b  # sum\n\n\tif x >= 10: print(f\"{x:>8}\")\n",
        " leading space,  double  spaces,   and trailing   ",
        "Ünïcödé ﬁ ligature, Ｆｕｌｌ－ｗｉｄｔｈ, é vs e\u{301}, 한국어 텍스트, العربية, हिन्दी",
    ]

    /// A description of the first probe `other` encodes differently, or nil when none does.
    package func differs(from other: Tokenizer) -> String? {
        let specials = addedTokens.filter(\.special).prefix(4).map(\.content).joined(separator: "hi ")
        for text in Self.probes + [specials + " text " + specials] {
            for withSpecials in [false, true] {
                let mine = encode(text, addSpecialTokens: withSpecials), theirs = other.encode(text, addSpecialTokens: withSpecials)
                if mine != theirs {
                    let at = zip(mine, theirs).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(mine.count, theirs.count)
                    return "\(text.prefix(24).debugDescription)…: token \(at) is \(mine.dropFirst(at).first.map(String.init) ?? "none"), would be \(theirs.dropFirst(at).first.map(String.init) ?? "none")"
                }
            }
        }
        return nil
    }

    /// Whether bytes are mapped to printable characters (GPT-2's byte-level scheme).
    var usesByteLevel: Bool {
        func decoderUses(_ d: Decoder?) -> Bool {
            switch d {
            case .byteLevel: true
            case .sequence(let steps): steps.contains { decoderUses($0) }
            default: false
            }
        }
        func preTokenizerUses(_ p: PreTokenizer?) -> Bool {
            switch p {
            case .byteLevel: true
            case .sequence(let steps): steps.contains { preTokenizerUses($0) }
            default: false
            }
        }
        return decoderUses(decoder) || preTokenizerUses(preTokenizer)
    }

    /// Whether encoding with special tokens adds BOS in front and EOS behind (what the post-processor does).
    var addedSpecialTokens: (bos: Bool, eos: Bool) {
        let plain = encode("a", addSpecialTokens: false), full = encode("a", addSpecialTokens: true)
        let bos = bosTokenId.map { full.first == $0 && plain.first != $0 } ?? false
        let eos = eosTokenId.map { full.last == $0 && plain.last != $0 } ?? false
        return (bos, eos)
    }

    /// Whether a "▁" is put in front of the text (SentencePiece's add_dummy_prefix).
    func addsSpacePrefix(_ bpe: BPEModel) -> Bool {
        guard let id = bpe.vocab["▁a"], let plain = bpe.vocab["a"] else { return false }
        let ids = encode("a", addSpecialTokens: false)
        return ids.contains(id) && !ids.contains(plain)
    }

    /// llama.cpp's token types (`llama_token_type`).
    enum GGUFTokenType: Int { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    static func ggufTokenType(id: Int32, token: String?, added: AddedToken?, unk: Int32?, sentencePiece: Bool) -> GGUFTokenType {
        guard let token else { return .unused }
        if let added {
            if sentencePiece && id == unk { return .unknown }
            return added.special ? .control : .userDefined
        }
        if sentencePiece {
            if id == unk { return .unknown }
            if token.utf8.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"), UInt8(token.dropFirst(3).dropLast(), radix: 16) != nil {
                return .byte
            }
        }
        return .normal
    }
}
