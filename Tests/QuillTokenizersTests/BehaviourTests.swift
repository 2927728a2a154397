import Foundation
import Testing
import QuillTokenizers
import QuillFormats

@Suite struct StreamingDecoderTests {
    /// Every prefix of the stream is valid text, and the pieces add up to the full decode:
    /// a Chinese character or an emoji split over byte-level tokens is held back until complete.
    @Test(arguments: ["smollm2", "mistral"])
    func neverEmitsPartialCharacters(_ name: String) throws {
        let tokenizer = name == "smollm2"
            ? try Tokenizer(ggufPath: try Assets.path("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
            : try Tokenizer(sentencePieceModel: URL(fileURLWithPath: try Assets.path("tokenizers/mistral/tokenizer.model.v1")))
        let samples = ["床前明月光，疑是地上霜。举头望明月，低头思故乡。", "家庭 👨‍👩‍👧‍👦 and 🏳️‍🌈 flags 🇨🇳!",
                       "Ελληνικά, ไทย, हिन्दी, العربية", "plain English text"]
        var splitCharacters = 0
        for text in samples {
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            var stream = tokenizer.makeStreamingDecoder()
            var pieces: [String] = []
            for id in ids {
                let piece = stream.push(id)
                #expect(!piece.unicodeScalars.contains("\u{FFFD}"), "\(name): emitted a replacement character for \(text)")
                if piece.isEmpty { splitCharacters += 1 }
                pieces.append(piece)
            }
            pieces.append(stream.finish())
            #expect(pieces.joined() == tokenizer.decode(ids, skipSpecialTokens: true), "\(name): \(pieces)")
        }
        print("\(name) streaming: \(splitCharacters) tokens held back until their character was complete")
        if name == "smollm2" { #expect(splitCharacters > 0) }   // byte-level: CJK needs several tokens
    }
}

@Suite struct EncodingBehaviourTests {
    let smol: Tokenizer

    init() throws { smol = try Tokenizer(ggufPath: try Assets.path("models/SmolLM2-135M-Instruct.Q4_1.gguf")) }

    @Test func offsetsPointBackIntoTheInput() {
        let text = "Hello, 世界! <|im_start|>user"
        let encoding = smol.encodeWithOffsets(text)
        let bytes = Array(text.utf8)
        #expect(encoding.ids.count == encoding.offsets.count)
        #expect(encoding.offsets.first == 0..<5)
        #expect(encoding.offsets.last?.upperBound == bytes.count)
        // consecutive, covering every byte exactly once for a byte-level tokenizer without normalizer
        var cursor = 0
        for r in encoding.offsets { #expect(r.lowerBound == cursor); cursor = r.upperBound }
        let special = encoding.ids.firstIndex(of: smol.id(for: "<|im_start|>")!)!
        #expect(String(decoding: bytes[encoding.offsets[special]], as: UTF8.self) == "<|im_start|>")
    }

    @Test func offsetsThroughANormalizer() throws {
        let mistral = try Tokenizer(sentencePieceModel: URL(fileURLWithPath: try Assets.path("tokenizers/mistral/tokenizer.model.v1")))
        let text = "The cat 你好"
        let e = mistral.encodeWithOffsets(text, addSpecialTokens: false)
        let bytes = Array(text.utf8)
        let pieces = e.offsets.map { String(decoding: bytes[$0], as: UTF8.self) }
        #expect(pieces.joined() == text)
        #expect(pieces.contains(" cat"))
    }

    @Test func batchEqualsOneByOne() {
        let lines = Array(Fixtures.corpus.prefix(500))
        #expect(smol.encodeBatch(lines, threads: 3) == lines.map { smol.encode($0) })
    }

    @Test func specialTokensAreMatchedWholeAndSkippable() {
        let ids = smol.encode("<|im_start|>user\n你好<|im_end|>")
        #expect(ids.first == 1 && ids.last == 2)
        #expect(smol.decode(ids, skipSpecialTokens: true) == "user\n你好")
        #expect(smol.decode(ids) == "<|im_start|>user\n你好<|im_end|>")
    }

    @Test func bertAddsClsAndSep() throws {
        let bert = try Tokenizer(contentsOf: Fixtures.url("bert-base-chinese.tokenizer.json"))
        let e = bert.encodeWithOffsets("你好", pair: "世界")
        #expect(e.ids == [101, 872, 1962, 102, 686, 4518, 102])
        #expect(e.typeIds == [0, 0, 0, 0, 1, 1, 1])
        #expect(e.specialTokensMask == [1, 0, 0, 1, 0, 0, 1])
    }
}

/// Bad input gives an error that says what and where, never a crash.
@Suite struct BadInputTests {
    func loadJSON(_ json: String) -> TokenizerError? {
        do { _ = try Tokenizer(tokenizerJSON: Data(json.utf8)); return nil }
        catch { return error }
    }

    /// Found by the vocab-files fuzz campaign (1,693 executions): a SentencePiece .model whose piece
    /// type (or a length) is a varint past Int.max trapped in the protobuf reader. Values are read
    /// as protobuf reads them (an unknown type is a normal piece), lengths checked against what is left.
    @Test func sentencePieceVarintsPastIntMaxAreNotACrash() throws {
        let huge: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]   // 2^64 - 1
        // pieces { piece: "a", type: 2^64 - 1 }, then a pieces field whose length is 2^64 - 1
        let piece: [UInt8] = [0x0A, 0x01, 0x61, 0x18] + huge
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("quill-huge-varint-\(getpid()).model")
        defer { try? FileManager.default.removeItem(at: url) }
        let bpe: [UInt8] = [0x12, 0x02, 0x18, 0x02]   // trainer_spec { model_type: BPE }
        try Data([0x0A, UInt8(piece.count)] + piece + bpe).write(to: url)
        let tokenizer = try Tokenizer(sentencePieceModel: url)
        #expect(tokenizer.id(for: "a") == 0)
        try Data([0x0A, UInt8(piece.count)] + piece + bpe + [0x0A] + huge).write(to: url)
        #expect(throws: TokenizerError.self) { try Tokenizer(sentencePieceModel: url) }
    }

    /// Foundation's JSONSerialization on Linux drops a U+FEFF that starts a string (raw, not
    /// escaped): Gemma's vocabulary has "\u{FEFF}\u{FEFF}", text may start with one. JSONText keeps it.
    @Test func aByteOrderMarkStartingAStringIsKept() throws {
        func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }
        let raw = "\u{FEFF}[\"\u{FEFF}x\", {\"\u{FEFF}\u{FEFF}\": \"a\u{FEFF}\"}, \"\\uFEFF\"]"   // the first one marks the file
        let parsed = try #require(try JSONText.object(Data(raw.utf8)) as? [Any])
        #expect(scalars(parsed[0] as! String) == [0xFEFF, 0x78])
        let object = try #require(parsed[1] as? [String: String])
        #expect(object.keys.map(scalars) == [[0xFEFF, 0xFEFF]] && object.values.map(scalars) == [[0x61, 0xFEFF]])
        #expect(scalars(parsed[2] as! String) == [0xFEFF])
        #expect(throws: (any Error).self) { try JSONText.object(Data("[1] \u{FEFF}".utf8)) }   // outside a string: not JSON
        let tokenizer = try Tokenizer(tokenizerJSON: Data(#"{"model": {"type": "BPE", "vocab": {"\#u{FEFF}": 0, "\#u{FEFF}\#u{FEFF}": 1, "a": 2}, "merges": ["\#u{FEFF} \#u{FEFF}"]}}"#.utf8))
        #expect(tokenizer.id(for: "\u{FEFF}\u{FEFF}") == 1 && tokenizer.token(for: 1).map(scalars) == [0xFEFF, 0xFEFF])
        #expect(tokenizer.encode("\u{FEFF}\u{FEFF}a\u{FEFF}", addSpecialTokens: false) == [1, 2, 0])
    }

    @Test func malformedJSONSaysWhere() {
        let e = loadJSON(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []"#)
        #expect(e.map { "\($0)".contains("not valid JSON") } == true, "\(String(describing: e))")
    }

    @Test func unknownComponentListsWhatIsSupported() {
        let e = loadJSON(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Sparkles"}}"#)
        guard case let .unknownComponent(_, at, found, supported)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(at == "pre_tokenizer.type" && found == "Sparkles" && supported.contains("ByteLevel"))
        print("unknown component error: \(e!)")
    }

    @Test func wrongValueTypeNamesThePath() {
        let e = loadJSON(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Strip", "strip_left": "yes"}}"#)
        #expect(e.map { "\($0)".contains("normalizer.strip_left") } == true, "\(String(describing: e))")
    }

    @Test func mergeWithUnknownTokenIsReported() {
        let e = loadJSON(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}}"#)
        #expect(e.map { "\($0)".contains("model.merges[0]") } == true, "\(String(describing: e))")
    }

    @Test func invalidUTF8GivesTheByteOffset() throws {
        let smol = try Tokenizer(ggufPath: try Assets.path("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        let bytes: [UInt8] = Array("好的 ok ".utf8) + [0xFF, 0x41]
        #expect(throws: TokenizerError.invalidUTF8(source: "input.txt", byteOffset: 10)) {
            try smol.encode(bytes: bytes, source: "input.txt")
        }
    }

    @Test func truncatedGGUFIsAClearError() throws {
        let source = try Assets.path("vocab-tests/ggml-vocab-gpt-2.gguf")
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("quill-truncated-\(getpid()).gguf")
        defer { try? FileManager.default.removeItem(at: cut) }
        for length in [0, 3, 12, 100, data.count / 2] {
            try data.prefix(length).write(to: cut)
            do {
                _ = try Tokenizer(ggufPath: cut.path)
                Issue.record("a GGUF cut to \(length) bytes loaded")
            } catch let error as GGUFError {
                #expect("\(error)".contains(cut.lastPathComponent))
                if length == data.count / 2 { print("truncated GGUF: \(error)") }
            }
        }
    }

    @Test func notAGGUF() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quill-not-\(getpid()).gguf")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("{\"hello\": 1}".utf8).write(to: file)
        #expect(throws: GGUFError.self) { try GGUFFile(path: file.path) }
    }

    @Test func missingFile() {
        #expect(throws: (any Error).self) { try TokenizerLoader.load("/nonexistent/tokenizer.json") }
    }
}
