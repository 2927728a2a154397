import ArgumentParser
import Foundation
import QuillData
import QuillFormats

/// `quill prepare`: clean, filter and deduplicate a raw corpus (one call into QuillData).
struct PrepareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Clean, filter and deduplicate raw text (txt, md, html, jsonl, csv; gzip; any encoding) into train/validation/test JSONL with a report.")

    @Argument(help: "Files, folders or globs (with --merge: the output folders of --shard runs, in shard order).") var inputs: [String]
    @Option(help: "Run part i of N (0-based), e.g. 0/4: file k goes to part k mod N; then --merge the parts.") var shard: String?
    @Flag(help: "Join the outputs of --shard runs, deduplicating across them.") var merge = false
    @Option(name: [.customShort("o"), .customLong("output")], help: "Output folder.") var output: String
    @Option(help: "Documents per text file: auto (one per file), file, line, paragraph.") var unit: CorpusReader.Unit = .auto
    @Option(name: .customLong("text-field"), help: "JSONL field holding the text.") var textField = "text"
    @Option(help: "CSV/TSV column holding the text (header name or 0-based index).") var column: String?
    @Flag(name: .customLong("html-records"), help: "JSONL/CSV records hold HTML pages: extract their text.") var htmlRecords = false
    @Option(help: "Force an encoding: UTF-8, UTF-16LE, UTF-16BE, GB18030, Big5, Windows-1252 (default: detect per file).")
    var encoding: String?
    @Option(help: "Unicode normalization: nfc, nfkc, none.") var normalize: TextCleaning.Normalization = .nfc
    @Option(help: "Links, e-mail addresses, phone numbers: remove, mask, keep.") var contacts: TextCleaning.Contacts = .remove
    @Flag(name: .customLong("keep-boilerplate"), help: "Keep navigation, headers and footers of HTML pages.") var keepBoilerplate = false
    @Flag(name: .customLong("keep-full-width"), help: "Leave full-width ASCII letters and digits as they are.") var keepFullWidth = false
    @Flag(name: .customLong("keep-gutenberg"), help: "Leave Project Gutenberg headers and footers.") var keepGutenberg = false
    @Flag(name: .customLong("t2s"), help: "Convert Traditional Chinese to Simplified (OpenCC's dictionaries, from the cache).") var t2s = false
    @Option(help: "Folder holding OpenCC's TSPhrases.txt and TSCharacters.txt (implies --t2s).") var opencc: String?
    @Option(name: .customLong("repeated-lines"), help: "Remove lines found in this many documents or more (0: off).") var repeatedLines = 10
    @Flag(name: .customLong("no-filters"), help: "Skip the length, quality and repetition filters.") var noFilters = false
    @Option(name: .customLong("min-chars"), help: "Shortest document kept, in characters.") var minCharacters = 50
    @Option(name: .customLong("min-words"), help: "Fewest words (CJK: characters) kept.") var minWords = 50
    @Option(help: "Keep only these languages, comma-separated (zh, ja, ko, latin, ru, ar, ...).") var languages: String?
    @Flag(name: .customLong("no-dedup"), help: "Keep exact and near duplicates.") var noDedup = false
    @Option(name: .customLong("near-threshold"), help: "MinHash similarity that makes a near duplicate.") var nearThreshold = 0.4
    @Option(name: .customLong("minhash-permutations"), help: "MinHash signature length.") var permutations = 128
    @Option(name: .customLong("minhash-bands"), help: "LSH bands (must divide the permutations).") var bands = 32
    @Option(name: .customLong("ngram"), help: "Shingle n-gram length in words (CJK: in characters).") var ngram = 2
    @Option(help: "Fraction of documents for validation.") var validation = 0.01
    @Option(help: "Fraction of documents for test.") var test = 0.01
    @Option(help: "Tokenizer for token counts and training shards (GGUF, HF directory, tokenizer.json; \"default\": the default model's).")
    var tokenizer: String?

    @OptionGroup var threads: ThreadsOption

    func run() async throws {
        threads.apply()
        var p = CorpusPreparation()
        p.reader.unit = unit
        p.reader.textField = textField
        p.reader.column = column
        p.reader.recordsAreHTML = htmlRecords
        if let encoding {
            guard let e = TextDecoding.Encoding.allCases.first(where: { $0.rawValue.lowercased() == encoding.lowercased() }) else {
                throw ValidationError("unknown encoding \(encoding); known: \(TextDecoding.Encoding.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            p.reader.encoding = e
        }
        p.html.dropBoilerplate = !keepBoilerplate
        p.cleaning.normalization = normalize
        p.cleaning.contacts = contacts
        p.cleaning.halfWidthASCII = !keepFullWidth
        p.cleaning.stripGutenberg = !keepGutenberg
        p.repeatedLineDocuments = repeatedLines > 0 ? repeatedLines : nil
        if noFilters { p.filters = nil } else {
            p.filters!.minCharacters = minCharacters
            p.filters!.minWords = minWords
        }
        p.languages = languages.map { Set($0.split(separator: ",").map(String.init)) }
        p.exactDeduplication = !noDedup
        if noDedup { p.nearDuplicates = nil } else {
            guard permutations > 0, bands > 0, permutations % bands == 0, ngram > 0 else {
                throw ValidationError("--minhash-bands (\(bands)) must divide --minhash-permutations (\(permutations)), both positive")
            }
            p.nearDuplicates!.threshold = nearThreshold
            p.nearDuplicates!.permutations = permutations
            p.nearDuplicates!.bands = bands
            p.nearDuplicates!.wordNgram = ngram
            p.nearDuplicates!.characterNgram = ngram
        }
        if let tokenizer {
            p.tokenizer = try TokenizerLoader.load(tokenizer == "default" ? QuillCache.defaultModel.path : try QuillCache.resolveModel(tokenizer))
        }
        p.validationFraction = validation
        p.testFraction = test
        if let shard {
            let parts = shard.split(separator: "/").compactMap { Int($0) }
            guard parts.count == 2, parts[1] > 0, (0..<parts[1]).contains(parts[0]) else {
                throw ValidationError("--shard takes i/N with 0 <= i < N, e.g. 0/4; got \(shard)")
            }
            p.shard = (parts[0], parts[1])
        }
        if t2s || opencc != nil {
            p.traditionalToSimplified = try opencc.map { try ChineseConversion(traditionalToSimplifiedIn: $0) }
                ?? ChineseConversion.traditionalToSimplified()
        }
        if merge {
            let report = try p.merge(shards: inputs, output: output)
            print(report.summary)
            print("merged \(inputs.count) parts into \(output)")
            return
        }
        let bars = [ProgressBar("read, clean      ", unit: .bytes), ProgressBar("filter, dedup    ", unit: .count("docs"))]
        var last = [(0, 0), (0, 0)]
        let report = try p.run(inputs: inputs, output: output) { progress in
            if progress.pass == 2 { bars[0].finish(last[0].0, of: last[0].1) }
            last[progress.pass - 1] = (progress.done, progress.total)
            bars[progress.pass - 1].update(progress.done, of: progress.total)
        }
        for (bar, (done, total)) in zip(bars, last) { bar.finish(done, of: total) }
        print(report.summary)
        print("wrote \(output)/{train,validation,test,dropped}.jsonl, report.json, report.html" + (tokenizer != nil ? " and tokens/" : ""))
    }
}

extension CorpusReader.Unit: ExpressibleByArgument {}
extension TextCleaning.Normalization: ExpressibleByArgument {}
extension TextCleaning.Contacts: ExpressibleByArgument {}
