import Foundation
import Testing
@testable import QuillData
import QuillTokenizers

@Suite struct TextDecodingTests {
    static let gbk: [UInt8] = [0xB4,0xB2,0xC7,0xB0,0xC3,0xF7,0xD4,0xC2,0xB9,0xE2,0xA3,0xAC,0xD2,0xC9,0xCA,0xC7,0xB5,0xD8,0xC9,0xCF,0xCB,0xAA,0xA1,0xA3,0xBE,0xD9,0xCD,0xB7,0xCD,0xFB,0xC3,0xF7,0xD4,0xC2,0xA3,0xAC,0xB5,0xCD,0xCD,0xB7,0xCB,0xBC,0xB9,0xCA,0xCF,0xE7,0xA1,0xA3]
    static let big5: [UInt8] = [0xA7,0xC9,0xAB,0x65,0xA9,0xFA,0xA4,0xEB,0xA5,0xFA,0xA1,0x41,0xBA,0xC3,0xAC,0x4F,0xA6,0x61,0xA4,0x57,0xC1,0xF7,0xA1,0x43,0xC1,0x7C,0xC0,0x59,0xB1,0xE6,0xA9,0xFA,0xA4,0xEB,0xA1,0x41,0xA7,0x43,0xC0,0x59,0xAB,0xE4,0xAC,0x47,0xB6,0x6D,0xA1,0x43]

    @Test func detectsEachEncoding() {
        let gbk = TextDecoding.decode(Self.gbk)
        #expect(gbk.encoding == .gb18030 && gbk.invalidBytes == 0)
        #expect(gbk.text == "床前明月光，疑是地上霜。举头望明月，低头思故乡。")
        let big5 = TextDecoding.decode(Self.big5)
        #expect(big5.encoding == .big5 && big5.text == "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。")
        let utf16 = TextDecoding.decode([0xFF, 0xFE] + Array("Hi 世界".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        #expect(utf16.encoding == .utf16LE && utf16.text == "Hi 世界")
        let latin = TextDecoding.decode(Array("Caf".utf8) + [0xE9] + Array(" cr".utf8) + [0xE8] + Array("me br".utf8) + [0xFB] + Array("l".utf8) + [0xE9, 0x93])
        #expect(latin.encoding == .latin1 && latin.text == "Café crème brûlé\u{201C}")
        let bom = TextDecoding.decode([0xEF, 0xBB, 0xBF] + Array("x".utf8))
        #expect(bom.encoding == .utf8BOM && bom.text == "x")
    }

    @Test func undecodableBytesAreCounted() {
        var bytes = Array("床前明月光，疑是地上霜。举头望明月，低头思故乡。".utf8)
        bytes.insert(0xFF, at: 9)
        let d = TextDecoding.decode(bytes, as: .utf8)
        #expect(d.invalidBytes == 1 && d.text.contains("\u{FFFD}"))
    }
}

@Suite struct TextCleaningTests {
    @Test func cleaningSteps() {
        let c = TextCleaning()
        #expect(TextCleaning.removeControlCharacters("\u{1B}[31mred\u{1B}[0m text\u{07}\r\nnext") == "red text\nnext")
        #expect(TextCleaning.halfWidthASCII("ＡＢＣ１２３　中文，标点。") == "ABC123 中文，标点。")
        #expect(TextCleaning.replaceContacts("see https://example.com/a?b=1. Mail me@mail.example.org or call +86 138 0013 8000, (555) 123-4567.", mask: true)
                == "see <URL>. Mail <EMAIL> or call <PHONE>, <PHONE>.")
        #expect(TextCleaning.replaceContacts("in 1990 1991 1992 there were 12,345 people", mask: true) == "in 1990 1991 1992 there were 12,345 people")
        #expect(TextCleaning.replaceContacts("访问 www.example.cn 了解更多", mask: false) == "访问  了解更多")
        let gutenberg = "The Project Gutenberg eBook\nlicence\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nBody text.\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\nmore licence"
        #expect(c.clean(gutenberg) == "Body text.")
        #expect(c.clean("  a   b \n\n\n\n c\t\td  ") == "a b\n\nc d")
        // NFC: e + combining acute → é
        #expect(c.clean("Cafe\u{301} time") == "Caf\u{E9} time")
    }

    @Test func languagesByScript() {
        #expect(Script.language(of: "床前明月光，疑是地上霜。") == "zh")
        #expect(Script.language(of: "これは日本語の文章です。漢字もあります。") == "ja")
        #expect(Script.language(of: "한국어 문장입니다") == "ko")
        #expect(Script.language(of: "Привет, как дела?") == "ru")
        #expect(Script.language(of: "مرحبا بالعالم") == "ar")
        #expect(Script.language(of: "The quick brown fox") == "latin")
        #expect(Script.language(of: "1234 !!") == "und")
    }

    @Test func qualityRulesHaveChineseVariants() {
        let f = QualityFilters()
        let english = String(repeating: "The committee met on Tuesday to discuss the budget of the town and the library. ", count: 1)
            + "It decided that the funds should be used to improve the park, the roads and the school, and that the work would start in spring with the help of volunteers from every part of the town."
        #expect(f.check(english) == nil)
        let chinese = "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？人不知而不愠，不亦君子乎？其为人也孝弟，而好犯上者，鲜矣；不好犯上，而好作乱者，未之有也。君子务本，本立而道生。"
        #expect(f.check(chinese) == nil, "\(f.check(chinese)!)")
        #expect(f.check(String(repeating: "我们的商品买一送一，限时抢购！\n", count: 12))?.reason == "duplicate_lines")
        #expect(f.check(String(repeating: "我们的商品买一送一，限时抢购！", count: 12))?.reason.hasPrefix("top_") == true)
        #expect(f.check("short")?.reason == "too_short")
        #expect(f.check(String(repeating: "### ... ", count: 40))?.reason != nil)
    }
}

/// Every input document is kept or dropped with a reason, for a corpus of everything that goes
/// wrong in practice: binary junk, empty files, legacy encodings, broken HTML, bad JSONL and CSV
/// records, gzip (one corrupt, one cut short), exact and near duplicates.
@Suite struct PreparationAccountingTests {
    @Test func inEqualsKeptPlusDropped() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quill-prepare-\(getpid())")
        let out = dir.appendingPathComponent("out")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("in/sub"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: dir.appendingPathComponent("in/\(name)")) }
        let story = "The old lighthouse keeper climbed the narrow stairs every evening to light the great lamp. For forty years he had watched the ships pass the rocks, and not one had been lost while he kept the light burning through storms and fog. The villagers said he never slept, but he only smiled and told them that the sea was his friend."
        let poem = String(repeating: "床前明月光，疑是地上霜。举头望明月，低头思故乡。春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。", count: 1)
            + "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。红豆生南国，春来发几枝。愿君多采撷，此物最相思。"
        try write("story.txt", Array(story.utf8))
        try write("story-copy.md", Array(story.utf8))                                               // exact duplicate
        try write("story-edit.txt", Array(story.replacingOccurrences(of: "forty", with: "fifty").utf8))   // near duplicate
        try write("poem-gbk.txt", TextDecoding.iconvEncode(poem, to: "GB18030"))
        try write("empty.txt", [])
        try write("blank.txt", Array("  \n\n ".utf8))
        try write("junk.bin", (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ $0 >> 3) })
        try write("sub/broken.html", Array("<html><body><nav>Home</nav><p>\(story.uppercased()) <b>unclosed <i>".utf8))
        try write("records.jsonl", Array("{\"text\": \"\(poem)\"}\n{bad json\n{\"title\": \"no text\"}\n\n{\"text\": \"tiny\"}\n".utf8))
        try write("table.csv", Array("id,text\n1,\"\(story.replacingOccurrences(of: "lamp", with: "lantern, "))\"\n2,short\n3\n".utf8))
        try write("story.txt.gz", try gzip(Array(story.utf8)))
        try write("corrupt.txt.gz", [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02])
        // a gzip stream cut short: the lines before the cut are read, the cut is a drop reason
        let lines = (0..<40).map { "{\"text\": \"\(story) Record \($0).\"}" }.joined(separator: "\n")
        let compressed = try gzip(Array(lines.utf8))
        try write("cut.jsonl.gz", Array(compressed.prefix(compressed.count * 2 / 3)))
        try write("utf16.txt", [0xFF, 0xFE] + Array(poem.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })

        var p = CorpusPreparation()
        p.filters?.minWords = 20
        p.validationFraction = 0; p.testFraction = 0
        let report = try p.run(inputs: [dir.appendingPathComponent("in").path], output: out.path)
        print(report.summary)
        let kept = try String(contentsOf: out.appendingPathComponent("train.jsonl"), encoding: .utf8).split(separator: "\n").count
        let dropped = try String(contentsOf: out.appendingPathComponent("dropped.jsonl"), encoding: .utf8).split(separator: "\n").count
        #expect(report.documentsIn == report.documentsKept + report.documentsDropped)
        #expect(kept == report.documentsKept && dropped == report.documentsDropped)
        #expect(report.dropped["corrupt_gzip"]?.count == 2)
        #expect(report.documentsIn > 19)   // every record before the cut, and the cut itself
        for reason in ["binary", "empty", "invalid_json", "missing_field", "corrupt_gzip", "exact_duplicate", "near_duplicate", "too_short"] {
            #expect(report.dropped[reason] != nil, "no document dropped as \(reason)")
        }
        #expect(report.encodings["GB18030"] == 1 && report.encodings["UTF-16LE"] == 1)
        let page = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        for (reason, r) in report.dropped { #expect(page.contains("<h3>\(reason): \(r.count) ("), "report.html lacks \(reason)") }
        #expect(page.contains("In = kept + dropped: \(report.documentsIn) = "))
        #expect(!page.contains("does not add up") && !page.contains("<b>unclosed"))   // excerpts are escaped
    }

    /// `--shard i/N` runs merged give the same counts as one run: duplicates across parts are
    /// found by the merge.
    @Test func shardsMergeToOneRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quill-shards-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("in"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stories = [
            "The old lighthouse keeper climbed the narrow stairs every evening to light the great lamp, and for forty years he watched the ships pass the rocks while the villagers slept in their small houses by the harbour.",
            "In the spring the farmers of the valley planted barley and beans, and their children carried water from the river to the fields until the long summer days turned the green hills to gold.",
            "The merchant counted his coins by candlelight and wrote letters to his brother across the sea, asking about the price of silk, the health of their mother and the news from the king's court.",
            "When the snow closed the mountain pass, the monks in the monastery copied old books by hand, sang at midnight and shared their bread with the travellers who knocked at the heavy wooden gate.",
        ]
        for i in 0..<8 {   // files 0-3 distinct; 4-7 copies (exact, or with a note added) that land in the other part
            let text = i < 4 ? stories[i] : (i % 2 == 1 ? "A note. " : "") + stories[(i + 1) % 4]
            try Data(text.utf8).write(to: dir.appendingPathComponent("in/\(i).txt"))
        }
        var p = CorpusPreparation()
        p.filters?.minWords = 20
        p.validationFraction = 0; p.testFraction = 0   // ids depend on the temporary path: keep every split in train
        p.tokenizer = try BPETrainer(vocabularySize: 300).train(stories)
        let whole = try p.run(inputs: [dir.appendingPathComponent("in").path], output: dir.appendingPathComponent("whole").path)
        var parts: [String] = []
        for i in 0..<2 {
            p.shard = (i, 2)
            let out = dir.appendingPathComponent("part\(i)").path
            _ = try p.run(inputs: [dir.appendingPathComponent("in").path], output: out)
            parts.append(out)
        }
        p.shard = nil
        let merged = try p.merge(shards: parts, output: dir.appendingPathComponent("merged").path)
        #expect(try String(contentsOf: URL(fileURLWithPath: parts[0]).appendingPathComponent("train.jsonl"), encoding: .utf8)
            .split(separator: "\n").count == 4)   // each part alone sees no duplicate
        #expect(merged.documentsIn == whole.documentsIn && merged.documentsIn == 8)
        #expect(merged.documentsKept == whole.documentsKept && whole.documentsKept == 4)
        #expect(merged.documentsIn == merged.documentsKept + merged.documentsDropped)
        let dropped = try String(contentsOf: dir.appendingPathComponent("merged/dropped.jsonl"), encoding: .utf8).split(separator: "\n").count
        #expect(dropped == merged.documentsDropped)
        // the merged corpus's token shards hold exactly its kept documents, as one run's do
        let mergedTokens = try TokenShardWriter.read(directory: dir.appendingPathComponent("merged/tokens").path, split: "train")
        let wholeTokens = try TokenShardWriter.read(directory: dir.appendingPathComponent("whole/tokens").path, split: "train")
        #expect(mergedTokens.count == 4 && Set(mergedTokens) == Set(wholeTokens))
        #expect(merged.tokensOut == whole.tokensOut && merged.tokensIn == whole.tokensIn)
    }

    /// Traditional to Simplified against OpenCC itself (`opencc -c t2s.json`, fixture made by
    /// make_t2s_fixture.py): Debian Reference in zh-tw, and a sentence around every phrase of
    /// OpenCC's phrase table. Needs the dictionaries scripts/setup exports.
    @Test func traditionalToSimplifiedMatchesOpenCC() throws {
        let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        let input = try String(contentsOf: fixtures.appendingPathComponent("t2s-input.txt"), encoding: .utf8).split(separator: "\n")
        let expected = try String(contentsOf: fixtures.appendingPathComponent("t2s-opencc.txt"), encoding: .utf8).split(separator: "\n")
        let conversion = try ChineseConversion.traditionalToSimplified()
        var differing = 0
        for (line, want) in zip(input, expected) where conversion.convert(String(line)) != want {
            if differing < 3 { print("t2s: \(line)\n  quill:  \(conversion.convert(String(line)))\n  opencc: \(want)") }
            differing += 1
        }
        print("t2s: \(input.count) lines, \(differing) differ from OpenCC")
        #expect(input.count == expected.count && input.count > 800)
        #expect(differing == 0)
        #expect(conversion.convert("Hello 這是測試, 乾坤大挪移") == "Hello 这是测试, 乾坤大挪移")
    }

    func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("quill-gz-\(getpid())")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url); try? FileManager.default.removeItem(atPath: url.path + ".gz") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-kf", url.path]
        try process.run(); process.waitUntilExit()
        return Array(try Data(contentsOf: URL(fileURLWithPath: url.path + ".gz")))
    }
}
