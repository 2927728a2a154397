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
        let dir = URL(fileURLWithPath: directory)
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: dir.appendingPathComponent("\(split).json")))
        let data = [UInt8](try Data(contentsOf: dir.appendingPathComponent("\(split).bin")))
        let width = index.dtype == "uint32" ? 4 : 2
        let ids = (0..<(data.count / width)).map { i -> Int32 in
            var v: UInt32 = 0
            for b in 0..<width { v |= UInt32(data[i * width + b]) << (8 * b) }
            return Int32(bitPattern: v)
        }
        return (0..<index.documents).map { Array(ids[index.offsets[$0]..<index.offsets[$0 + 1]]) }
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
