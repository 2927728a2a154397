import Foundation
import QuillCore
import QuillTokenizers

/// `quill prepare`: raw files in, a clean deduplicated corpus out, with an account of every
/// document. Two passes over the inputs: the first counts in how many documents each short line
/// appears (share buttons, copyright lines and slogans repeat across a site), the second cleans,
/// filters, deduplicates and writes. Outputs in the output folder:
///
/// - `train.jsonl`, `validation.jsonl`, `test.jsonl`: `{"id", "text", "source", "position",
///   "language", "encoding"}`, split by a stable hash of the id;
/// - `dropped.jsonl`: every dropped document's id, source, position, reason and detail;
/// - `report.json`: counts in and out, per drop reason (with examples), encodings, languages,
///   and `report.html`, the same as a page to read;
/// - with a tokenizer, `tokens/{train,validation,test}.{bin,json}` (see `TokenShardWriter`).
public struct CorpusPreparation: Sendable {
    public var reader = CorpusReader()
    public var html = HTMLText()
    public var cleaning = TextCleaning()
    /// Traditional Chinese to Simplified (OpenCC's dictionaries), after cleaning; nil leaves it.
    public var traditionalToSimplified: ChineseConversion?
    public var filters: QualityFilters? = QualityFilters()
    /// Lines (under 200 characters) found in at least this many documents are removed from all of them.
    public var repeatedLineDocuments: Int? = 10
    /// Keep only these languages (`Script.language` codes); nil keeps all.
    public var languages: Set<String>?
    public var exactDeduplication = true
    public var nearDuplicates: NearDuplicates? = NearDuplicates()
    public var validationFraction = 0.01, testFraction = 0.01
    /// Token counts in the report and token shards for the kept documents.
    public var tokenizer: Tokenizer?
    /// Run one part of the input on one worker: file k goes to shard k mod count. A `merge` of
    /// the parts' outputs finishes deduplication across them.
    public var shard: (index: Int, count: Int)?

    public init() {}

    /// How far a run is: pass 1 (read, decode, extract and clean) counts bytes of the input
    /// files as stored; pass 2 (filter, deduplicate, write) counts documents.
    public struct Progress: Sendable {
        public var pass: Int
        public var done: Int, total: Int
    }

    public struct Report: Codable, Sendable {
        public struct Example: Codable, Sendable { public var source: String; public var position: Int; public var detail: String; public var excerpt: String }
        public struct Reason: Codable, Sendable { public var count = 0; public var examples: [Example] = [] }
        public var files = 0
        public var documentsIn = 0, documentsKept = 0, documentsDropped = 0
        public var charactersIn = 0, charactersOut = 0
        /// With a tokenizer: tokens of every input document as read, and of the kept cleaned text.
        public var tokensIn: Int?, tokensOut: Int?
        public var dropped: [String: Reason] = [:]
        public var encodings: [String: Int] = [:]
        public var invalidBytes = 0
        public var languages: [String: Int] = [:]
        public var repeatedLinesRemoved = 0
        public var splits: [String: Int] = ["train": 0, "validation": 0, "test": 0]
        public var seconds = 0.0

        /// The readable summary `quill prepare` prints.
        public var summary: String {
            var lines = [String(format: "%d files, %d documents in: %d kept, %d dropped (%.1f s)", files, documentsIn, documentsKept,
                                documentsDropped, seconds),
                         "characters: \(charactersIn) in, \(charactersOut) out"
                            + (tokensIn.map { ", tokens: \($0) in, \(tokensOut ?? 0) out" } ?? ""),
                         "splits: train \(splits["train"]!), validation \(splits["validation"]!), test \(splits["test"]!)",
                         "encodings: " + encodings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                            + (invalidBytes > 0 ? " (\(invalidBytes) undecodable bytes replaced)" : ""),
                         "languages kept: " + languages.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "),
                         "repeated boilerplate lines removed: \(repeatedLinesRemoved)"]
            if !dropped.isEmpty {
                lines.append("dropped:")
                for (reason, r) in dropped.sorted(by: { $0.value.count > $1.value.count }) {
                    lines.append("  \(reason.padding(toLength: 28, withPad: " ", startingAt: 0)) \(r.count)"
                                 + (r.examples.first.map { "   e.g. \(($0.source as NSString).lastPathComponent)#\($0.position): \($0.detail)" } ?? ""))
                }
            }
            return lines.joined(separator: "\n")
        }
    }

    /// A stable id for a document: 16 hex digits of a hash of its source and position.
    public static func id(source: String, position: Int) -> String {
        String(format: "%016llx", FNV1a.hash("\(source)#\(position)".utf8))
    }

    /// The split an id falls in.
    func split(of id: String) -> String {
        let u = Double(FNV1a.hash(id.utf8, seed: 0x8422_2325_CBF2_9CE4) >> 11) / Double(1 << 53)
        return u < validationFraction ? "validation" : u < validationFraction + testFraction ? "test" : "train"
    }

    /// Raw text to the text filters see: HTML extracted, cleaning applied.
    func cleaned(_ doc: RawDocument) -> String {
        let text = cleaning.clean(doc.isHTML ? html.extract(doc.text).text : doc.text)
        return traditionalToSimplified?.convert(text) ?? text
    }

    static func lineKey(_ line: Substring) -> UInt64? {
        guard line.count >= 3 && line.count < 200 else { return nil }
        return FNV1a.hash(line.utf8)
    }

    /// What pass 1 keeps of a document in memory (its cleaned text goes to a spill file).
    struct Pending {
        var file: Int, position: Int
        var encoding: TextDecoding.Encoding?
        var invalidBytes: Int, rawCharacters: Int, rawTokens: Int
        var failure: RawDocument.Failure?
        var bytes: Int
    }

    public func run(inputs: [String], output: String, progress: (Progress) -> Void = { _ in }) throws -> Report {
        let start = Date()
        var files = try CorpusReader.files(inputs)
        if let shard { files = files.enumerated().filter { $0.offset % shard.count == shard.index }.map(\.element) }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var report = Report()
        report.files = files.count
        let tokenizer = self.tokenizer

        // pass 1: read, decode, extract and clean, all cores on batches of documents; cleaned
        // texts go to a spill file (memory stays bounded), and each short line's document count
        // is kept for the repeated-line rule
        let spillURL = URL(fileURLWithPath: output).appendingPathComponent(".prepare-\(getpid()).spill")
        _ = FileManager.default.createFile(atPath: spillURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: spillURL) }
        let spill = try FileHandle(forWritingTo: spillURL)
        var pending: [Pending] = []
        var lineDocuments: [UInt64: Int] = [:]
        var batch: [(file: Int, doc: RawDocument)] = [], batchBytes = 0
        func flush() throws {
            let cleanedTexts = concurrentMap(batch.map(\.doc)) { $0.failure == nil ? cleaned($0) : "" }
            if repeatedLineDocuments != nil {
                let keys = concurrentMap(cleanedTexts) { Set($0.split(separator: "\n").compactMap(Self.lineKey)) }
                for set in keys { for k in set { lineDocuments[k, default: 0] += 1 } }
            }
            let rawTokens = tokenizer.map { t in concurrentMap(batch.map(\.doc.text)) { t.encode($0, addSpecialTokens: false).count } }
            var bytes: [UInt8] = []
            for (i, (file, doc)) in batch.enumerated() {
                let utf8 = Array(cleanedTexts[i].utf8)
                bytes += utf8
                pending.append(Pending(file: file, position: doc.position, encoding: doc.encoding, invalidBytes: doc.invalidBytes,
                                       rawCharacters: doc.text.unicodeScalars.count, rawTokens: rawTokens?[i] ?? 0,
                                       failure: doc.failure, bytes: utf8.count))
            }
            try spill.write(contentsOf: bytes)
            batch = []; batchBytes = 0
        }
        let sizes = files.map { ((try? FileManager.default.attributesOfItem(atPath: $0)[.size]) as? Int) ?? 0 }
        let totalBytes = sizes.reduce(0, +)
        var bytesBefore = 0
        for (f, file) in files.enumerated() {
            var encoding: TextDecoding.Encoding?
            try reader.forEachDocument(in: file, consumed: { progress(Progress(pass: 1, done: bytesBefore + $0, total: totalBytes)) }) { doc in
                if encoding == nil { encoding = doc.encoding }
                batch.append((f, doc))
                batchBytes += doc.text.utf8.count
                if batch.count >= 512 || batchBytes >= 8 << 20 { try flush() }
            }
            if let encoding { report.encodings[encoding.rawValue, default: 0] += 1 }
            bytesBefore += sizes[f]
            progress(Progress(pass: 1, done: bytesBefore, total: totalBytes))
        }
        try flush()
        try spill.close()
        let repeated = Set(lineDocuments.filter { $0.value >= (repeatedLineDocuments ?? .max) }.keys)
        lineDocuments = [:]

        // pass 2: repeated lines, language and quality filters on all cores, then deduplication
        // and writing in input order
        let writers = try Self.openWriters(output)
        defer { for w in writers.values { try? w.close() } }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        var dedup = Deduplicator(self)
        var shards = try tokenizer.map { try SplitTokenShards(tokenizer: $0, output: output) }
        if tokenizer != nil { report.tokensIn = 0; report.tokensOut = 0 }

        func drop(_ doc: Pending, _ reason: String, _ detail: String, excerpt: String) throws {
            report.documentsDropped += 1
            var r = report.dropped[reason] ?? Report.Reason()
            r.count += 1
            if r.examples.count < 3 {
                r.examples.append(.init(source: files[doc.file], position: doc.position, detail: detail, excerpt: String(excerpt.prefix(200))))
            }
            report.dropped[reason] = r
            let record = DroppedRecord(id: Self.id(source: files[doc.file], position: doc.position), source: files[doc.file],
                                       position: doc.position, reason: reason, detail: detail)
            try writers["dropped"]!.write(contentsOf: encoder.encode(record) + [0x0A])
        }

        let reader = try FileHandle(forReadingFrom: spillURL)
        defer { try? reader.close() }
        var next = 0
        while next < pending.count {
            let chunk = Array(pending[next..<min(next + 512, pending.count)])
            let data = try reader.read(upToCount: chunk.reduce(0) { $0 + $1.bytes }) ?? Data()
            var texts: [String] = [], offset = 0
            for doc in chunk {
                texts.append(String(decoding: data[(data.startIndex + offset)..<(data.startIndex + offset + doc.bytes)], as: UTF8.self))
                offset += doc.bytes
            }
            let judged = concurrentMap(Array(zip(chunk.map(\.failure), texts))) { failure, cleanedText -> (text: String, language: String, failure: (String, String)?) in
                if let failure { return ("", "und", (failure.reason, failure.detail)) }
                var text = cleanedText
                if !repeated.isEmpty {
                    text = TextCleaning.normalizeWhitespace(text.split(separator: "\n", omittingEmptySubsequences: false)
                        .filter { line in Self.lineKey(line).map { !repeated.contains($0) } ?? true }.joined(separator: "\n"))
                }
                if text.isEmpty { return (text, "und", ("empty_after_cleaning", "no text left after cleaning")) }
                let language = Script.language(of: text)
                if let languages, !languages.contains(language) { return (text, language, ("language", "language \(language)")) }
                if let failure = filters?.check(text) { return (text, language, failure) }
                return (text, language, nil)
            }
            var kept: [(split: String, text: String)] = []
            for (doc, p) in zip(chunk, judged) {
                report.documentsIn += 1
                report.charactersIn += doc.rawCharacters
                report.invalidBytes += doc.invalidBytes
                if tokenizer != nil { report.tokensIn! += doc.rawTokens }
                if let (reason, detail) = p.failure { try drop(doc, reason, detail, excerpt: p.text); continue }
                let source = files[doc.file]
                let id = Self.id(source: source, position: doc.position)
                if let (reason, detail) = dedup.check(p.text, id: id) { try drop(doc, reason, detail, excerpt: p.text); continue }
                let split = split(of: id)
                let record = KeptRecord(id: id, text: p.text, source: source, position: doc.position, language: p.language,
                                        encoding: doc.encoding?.rawValue ?? "")
                try writers[split]!.write(contentsOf: encoder.encode(record) + [0x0A])
                report.splits[split, default: 0] += 1
                report.documentsKept += 1
                report.charactersOut += p.text.unicodeScalars.count
                report.languages[p.language, default: 0] += 1
                if tokenizer != nil { kept.append((split, p.text)) }
            }
            if shards != nil { report.tokensOut! += try shards!.append(kept) }
            next += chunk.count
            progress(Progress(pass: 2, done: next, total: pending.count))
        }
        try shards?.finish()
        report.repeatedLinesRemoved = repeated.count
        report.seconds = Date().timeIntervalSince(start)
        try report.write(to: output)
        return report
    }

    /// Joins the outputs of `--shard i/N` runs (given in shard order) into one: their reports
    /// add up, their dropped documents are kept, and exact and near deduplication runs again
    /// across the parts (a document is checked against every earlier part's kept ones). With a
    /// tokenizer, token shards are written for the merged corpus.
    public func merge(shards: [String], output: String) throws -> Report {
        let start = Date()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var report = Report()
        report.splits = ["train": 0, "validation": 0, "test": 0]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        let writers = try Self.openWriters(output)
        defer { for w in writers.values { try? w.close() } }
        var dedup = Deduplicator(self)
        var tokens = try tokenizer.map { try SplitTokenShards(tokenizer: $0, output: output) }
        if tokenizer != nil { report.tokensOut = 0 }
        for dir in shards {
            let part = try JSONDecoder().decode(Report.self, from: FileContents.read(URL(fileURLWithPath: dir).appendingPathComponent("report.json").path))
            report.files += part.files
            report.documentsIn += part.documentsIn
            report.documentsDropped += part.documentsDropped
            report.charactersIn += part.charactersIn
            report.invalidBytes += part.invalidBytes
            report.repeatedLinesRemoved += part.repeatedLinesRemoved
            for (k, v) in part.encodings { report.encodings[k, default: 0] += v }
            for (k, v) in part.dropped {
                var r = report.dropped[k] ?? Report.Reason()
                r.count += v.count
                r.examples = Array((r.examples + v.examples).prefix(3))
                report.dropped[k] = r
            }
            if let t = part.tokensIn { report.tokensIn = (report.tokensIn ?? 0) + t }
            let dropped = try FileContents.read(URL(fileURLWithPath: dir).appendingPathComponent("dropped.jsonl").path)
            try writers["dropped"]!.write(contentsOf: dropped)
            for split in ["train", "validation", "test"] {
                var kept: [(split: String, text: String)] = []
                let url = URL(fileURLWithPath: dir).appendingPathComponent("\(split).jsonl")
                for line in String(decoding: try FileContents.read(url.path), as: UTF8.self).split(separator: "\n") {
                    let record = try JSONDecoder().decode(KeptRecord.self, from: Data(line.utf8))
                    func drop(_ reason: String, _ detail: String) throws {
                        report.documentsDropped += 1
                        var r = report.dropped[reason] ?? Report.Reason()
                        r.count += 1
                        if r.examples.count < 3 {
                            r.examples.append(.init(source: record.source, position: record.position, detail: detail, excerpt: String(record.text.prefix(200))))
                        }
                        report.dropped[reason] = r
                        let d = DroppedRecord(id: record.id, source: record.source, position: record.position, reason: reason, detail: detail)
                        try writers["dropped"]!.write(contentsOf: encoder.encode(d) + [0x0A])
                    }
                    if let (reason, detail) = dedup.check(record.text, id: record.id) { try drop(reason, detail + " (across parts)"); continue }
                    try writers[split]!.write(contentsOf: Data(line.utf8) + [0x0A])
                    report.documentsKept += 1
                    report.splits[split, default: 0] += 1
                    report.charactersOut += record.text.unicodeScalars.count
                    report.languages[record.language, default: 0] += 1
                    if tokens != nil {
                        kept.append((split, record.text))
                        if kept.count == 512 { report.tokensOut! += try tokens!.append(kept); kept = [] }
                    }
                }
                if tokens != nil { report.tokensOut! += try tokens!.append(kept) }
            }
        }
        try tokens?.finish()
        report.seconds = Date().timeIntervalSince(start)
        try report.write(to: output)
        return report
    }

    static func openWriters(_ output: String) throws -> [String: FileHandle] {
        var writers: [String: FileHandle] = [:]
        for name in ["train", "validation", "test", "dropped"] {
            let path = (output as NSString).appendingPathComponent("\(name).jsonl")
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            writers[name] = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        }
        return writers
    }

    /// Exact (normalized text) and near (MinHash) deduplication over documents taken in order:
    /// the first of a group is kept and remembered.
    struct Deduplicator {
        var exact: Set<UInt64>?
        var near: NearDuplicates.Index?
        var nearIds: [String] = []

        init(_ p: CorpusPreparation) {
            exact = p.exactDeduplication ? [] : nil
            near = p.nearDuplicates.map { NearDuplicates.Index($0) }
        }

        /// Why `text` is a duplicate, or nil (and it is remembered as kept).
        mutating func check(_ text: String, id: String) -> (reason: String, detail: String)? {
            if exact != nil {
                let h = FNV1a.hash(text.lowercased().utf8.lazy.filter { $0 != 0x20 && $0 != 0x0A })
                if !exact!.insert(h).inserted { return ("exact_duplicate", "same normalized text as an earlier document") }
            }
            if near != nil {   // in place: a copy of the index would be copied again on insert
                let signature = near!.signature(text)
                if let (of, similarity) = near!.match(signature) {
                    return ("near_duplicate", String(format: "%.2f similar to %@", similarity, nearIds[of]))
                }
                near!.insert(signature, id: nearIds.count)
                nearIds.append(id)
            }
            return nil
        }
    }

    struct KeptRecord: Codable { var id, text, source: String; var position: Int; var language, encoding: String }
    struct DroppedRecord: Codable { var id, source: String; var position: Int; var reason, detail: String }

}

/// `transform` over `items` on the shared thread pool (`--threads` of them), each index claimed
/// by one thread, results in order. `transform` must not use the pool itself.
func concurrentMap<T: Sendable, R>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
    guard items.count > 1 else { return items.map(transform) }
    return [R](unsafeUninitializedCapacity: items.count) { buffer, initialized in
        let base = UncheckedPointer(pointer: buffer.baseAddress!)
        ThreadPool.shared.parallelFor(items.count) { i in (base.pointer + i).initialize(to: transform(items[i])) }
        initialized = items.count
    }
}

private struct UncheckedPointer<R>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<R>
}
