import Foundation
import QuillTokenizers

/// Token shards for training: one flat little-endian file per split (`tokens/train.bin`),
/// uint16 when the vocabulary fits in 65,536 ids, else uint32, documents back to back; and a
/// JSON index beside it (`tokens/train.json`) with the element type, the vocabulary size, the
/// token count and the document boundaries (`offsets`: document i is tokens
/// offsets[i]..<offsets[i+1]).
public struct TokenShardWriter {
    public struct Index: Codable, Sendable, Equatable {
        public var dtype: String
        public var vocab_size: Int
        public var documents: Int
        public var tokens: Int
        public var offsets: [Int]
    }

    let handle: FileHandle
    let indexURL: URL
    let wide: Bool
    var index: Index

    public init(directory: String, split: String, vocabularySize: Int) throws {
        let dir = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let bin = dir.appendingPathComponent("\(split).bin")
        _ = FileManager.default.createFile(atPath: bin.path, contents: nil)
        handle = try FileHandle(forWritingTo: bin)
        indexURL = dir.appendingPathComponent("\(split).json")
        wide = vocabularySize > 65_536
        index = Index(dtype: wide ? "uint32" : "uint16", vocab_size: vocabularySize, documents: 0, tokens: 0, offsets: [0])
    }

    public mutating func append(_ ids: [Int32]) throws {
        var bytes = [UInt8]()
        bytes.reserveCapacity(ids.count * (wide ? 4 : 2))
        for id in ids {
            let v = UInt32(bitPattern: id)
            bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8 & 0xFF))
            if wide { bytes.append(UInt8(v >> 16 & 0xFF)); bytes.append(UInt8(v >> 24)) }
        }
        try handle.write(contentsOf: bytes)
        index.documents += 1
        index.tokens += ids.count
        index.offsets.append(index.tokens)
    }

    /// Closes the data file and writes the index.
    public func finish() throws {
        try handle.close()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(index).write(to: indexURL)
    }

    /// Reads a shard back: the ids of every document.
    public static func read(directory: String, split: String) throws -> [[Int32]] {
        try TokenShard(indexPath: (directory as NSString).appendingPathComponent("\(split).json")).documents
    }
}

/// A token shard read back (the one reader of them) and checked against its index before any
/// id is used: a known element type, a byte count that matches the token count, offsets that
/// start at 0, never go back and end at the last token, and ids inside the vocabulary.
public struct TokenShard: Sendable {
    public let tokens: [Int32]
    public let offsets: [Int]

    public init(indexPath: String) throws(DataIssue) {
        func issue(_ file: String, _ problem: String) -> DataIssue { DataIssue(file: file, line: 0, problem: problem) }
        guard let json = FileContents.data(atPath: indexPath) else { throw issue(indexPath, "cannot read the index") }
        let index: TokenShardWriter.Index
        do { index = try JSONDecoder().decode(TokenShardWriter.Index.self, from: json) } catch {
            throw issue(indexPath, "not a token-shard index (dtype, vocab_size, documents, tokens, offsets): \(error)")
        }
        let width: Int
        switch index.dtype {
        case "uint16": width = 2
        case "uint32": width = 4
        default: throw issue(indexPath, "dtype \"\(index.dtype)\": expected uint16 or uint32")
        }
        let bin = String(indexPath.dropLast(".json".count)) + ".bin"
        guard let data = FileContents.data(atPath: bin) else { throw issue(bin, "cannot read the shard") }
        guard index.tokens >= 0, index.tokens <= data.count / width, data.count == index.tokens * width else {
            throw issue(bin, "holds \(data.count) bytes, the index says \(index.tokens) \(index.dtype) tokens")
        }
        guard index.offsets.first == 0, index.offsets.last == index.tokens, index.offsets.count == index.documents + 1,
              zip(index.offsets, index.offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw issue(indexPath, "offsets must start at 0, never decrease, end at the token count and number documents + 1")
        }
        let tokens: [Int32] = data.withUnsafeBytes { raw in
            width == 4 ? raw.bindMemory(to: UInt32.self).map { Int32(bitPattern: UInt32(littleEndian: $0)) }
                       : raw.bindMemory(to: UInt16.self).map { Int32(UInt16(littleEndian: $0)) }
        }
        if index.vocab_size > 0, let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= index.vocab_size }) {
            throw issue(bin, "token \(bad) is \(tokens[bad]), outside the vocabulary of \(index.vocab_size)")
        }
        self.tokens = tokens
        offsets = index.offsets
    }

    /// The ids of every document.
    public var documents: [[Int32]] {
        zip(offsets, offsets.dropFirst()).map { Array(tokens[$0..<$1]) }
    }
}

/// The token shards of the three splits, filled a batch of kept documents at a time (the batch
/// tokenized on all cores, appended in order).
struct SplitTokenShards {
    let tokenizer: Tokenizer
    var shards: [String: TokenShardWriter] = [:]

    init(tokenizer: Tokenizer, output: String) throws {
        self.tokenizer = tokenizer
        for split in ["train", "validation", "test"] {
            shards[split] = try TokenShardWriter(directory: (output as NSString).appendingPathComponent("tokens"), split: split,
                                                 vocabularySize: tokenizer.vocabularySize)
        }
    }

    /// Appends each document to its split's shard; returns the number of tokens written.
    mutating func append(_ documents: [(split: String, text: String)]) throws -> Int {
        let tokenizer = self.tokenizer
        var count = 0
        for (k, ids) in concurrentMap(documents.map(\.text), { tokenizer.encode($0, addSpecialTokens: false) }).enumerated() {
            try shards[documents[k].split]!.append(ids)
            count += ids.count
        }
        return count
    }

    func finish() throws { for shard in shards.values { try shard.finish() } }
}
