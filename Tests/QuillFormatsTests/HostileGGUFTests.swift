import Foundation
import Testing
import QuillFormats

/// GGUF files made to hurt the reader: each is a clear error naming the problem, never a crash,
/// a trap or an attacker-sized allocation.
@Suite struct HostileGGUFTests {
    /// Little-endian GGUF bytes, written field by field.
    struct Bytes {
        var data = Data("GGUF".utf8)
        init(tensors: UInt64, pairs: UInt64) { u32(3); u64(tensors); u64(pairs) }
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); data.append(contentsOf: Array(s.utf8)) }
    }

    func read(_ bytes: Bytes) throws -> GGUFError? {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("quill-hostile-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).gguf")
        try bytes.data.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        do { _ = try GGUFFile(path: url.path); return nil } catch { return error }
    }

    @Test func deeplyNestedArraysAreRefused() throws {
        var b = Bytes(tensors: 0, pairs: 1)
        b.string("nested")
        b.u32(9)                                   // array
        for _ in 0..<100_000 { b.u32(9); b.u64(1) } // of array (1 element) ... 100,000 deep
        b.u32(0); b.u64(0)                          // of uint8, empty
        let error = try #require(try read(b))
        print("nested arrays: \(error)")
        guard case .malformed(_, _, let problem) = error else { Issue.record("\(error)"); return }
        #expect(problem.contains("nested more than 8 deep"))
    }

    @Test func attackerSizedCountsAreRefused() throws {
        var manyTensors = Bytes(tensors: 1 << 40, pairs: 0)
        manyTensors.u64(0)
        guard case .truncated? = try read(manyTensors) else { Issue.record("a 2^40 tensor count was accepted"); return }

        var longArray = Bytes(tensors: 0, pairs: 1)
        longArray.string("tokens")
        longArray.u32(9); longArray.u32(10); longArray.u64(1 << 36)   // 2^36 uint64 elements in a file of 50 bytes
        longArray.u64(7)
        guard case .truncated? = try read(longArray) else { Issue.record("a 2^36-element array was accepted"); return }
    }

    @Test func shapesPastIntMaxAreRefused() throws {
        var b = Bytes(tensors: 1, pairs: 0)
        b.string("blk.0.attn_q.weight")
        b.u32(3); b.u64(1 << 31); b.u64(1 << 31); b.u64(1 << 31)   // 2^93 elements
        b.u32(0)                                                    // F32
        b.u64(0)
        let error = try #require(try read(b))
        guard case .malformed(_, _, let problem) = error else { Issue.record("\(error)"); return }
        #expect(problem.contains("more elements than can be addressed"))

        var farOffset = Bytes(tensors: 1, pairs: 0)
        farOffset.string("t")
        farOffset.u32(1); farOffset.u64(32); farOffset.u32(0); farOffset.u64(UInt64(Int.max / 2))
        guard case .truncated? = try read(farOffset) else { Issue.record("an offset past the file was accepted"); return }
    }
}
