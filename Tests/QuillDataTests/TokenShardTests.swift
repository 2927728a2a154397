import Foundation
import Testing
import QuillData

/// A token shard is checked against its index before any id is used.
@Suite struct TokenShardTests {
    func shard(_ index: String, bytes: [UInt8]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quill-shard-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(index.utf8).write(to: dir.appendingPathComponent("train.json"))
        try Data(bytes).write(to: dir.appendingPathComponent("train.bin"))
        return dir.appendingPathComponent("train.json").path
    }

    @Test func goodShardReadsBack() throws {
        let path = try shard(#"{"dtype": "uint16", "vocab_size": 300, "documents": 2, "tokens": 3, "offsets": [0, 1, 3]}"#, bytes: [1, 0, 2, 1, 44, 0])
        #expect(try TokenShard(indexPath: path).documents == [[1], [258, 44]])
    }

    @Test(arguments: [
        (#"{"dtype": "uint16", "vocab_size": 300, "documents": 1, "tokens": 3, "offsets": [0, 9]}"#, "offsets"),
        (#"{"dtype": "uint16", "vocab_size": 300, "documents": 2, "tokens": 3, "offsets": [0, 2, 1]}"#, "offsets"),
        (#"{"dtype": "uint16", "vocab_size": 300, "documents": 1, "tokens": 4, "offsets": [0, 4]}"#, "bytes"),
        (#"{"dtype": "uint16", "vocab_size": 100, "documents": 1, "tokens": 3, "offsets": [0, 3]}"#, "outside the vocabulary"),
        (#"{"dtype": "int8", "vocab_size": 300, "documents": 1, "tokens": 3, "offsets": [0, 3]}"#, "dtype"),
        (#"{"dtype": "uint16", "tokens": 3}"#, "not a token-shard index"),
    ])
    func hostileIndexesAreClearErrors(index: String, says: String) throws {
        let path = try shard(index, bytes: [1, 0, 2, 1, 44, 0])
        do {
            _ = try TokenShard(indexPath: path)
            Issue.record("accepted \(index)")
        } catch let error as DataIssue {
            #expect(error.problem.contains(says), "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
