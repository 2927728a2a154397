import Foundation
import Testing
import QuillFormats
import QuillTokenizers

/// Model files the fuzzers (scripts/fuzz) found to trap the loaders, each now a clear error.
@Suite struct HostileFilesTests {
    func temporary(_ data: Data, _ ext: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("quill-hostile-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).\(ext)")
        try data.write(to: url)
        return url
    }

    @Test func safetensorsHeaderLengthPastIntMaxIsRefused() throws {
        var data = Data()
        withUnsafeBytes(of: UInt64(0xFFFF_FFFF_FFFF_FF00).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array("{}      ".utf8))
        let url = try temporary(data, "safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: url.path) }
    }

    /// A GGUF holding only tokenizer metadata.
    func tokenizerGGUF(tokens: [String], types: [Int32], scores: [Float]?, bos: UInt32) throws -> URL {
        var b = HostileGGUFTests.Bytes(tensors: 0, pairs: scores == nil ? 4 : 5)
        b.string("tokenizer.ggml.model"); b.u32(8); b.string("llama")
        b.string("tokenizer.ggml.tokens"); b.u32(9); b.u32(8); b.u64(UInt64(tokens.count)); tokens.forEach { b.string($0) }
        b.string("tokenizer.ggml.token_type"); b.u32(9); b.u32(5); b.u64(UInt64(types.count)); types.forEach { b.u32(UInt32(bitPattern: $0)) }
        if let scores {
            b.string("tokenizer.ggml.scores"); b.u32(9); b.u32(6); b.u64(UInt64(scores.count)); scores.forEach { b.u32($0.bitPattern) }
        }
        b.string("tokenizer.ggml.bos_token_id"); b.u32(4); b.u32(bos)
        return try temporary(b.data, "gguf")
    }

    @Test func ggufTokenizerArraysOfDifferentLengthsAreRefused() throws {
        let tokens = ["<unk>", "<s>", "</s>", "▁", "a", "▁a"]
        let fewerTypes = try tokenizerGGUF(tokens: tokens, types: [2, 3, 3], scores: nil, bos: 1)
        let fewerScores = try tokenizerGGUF(tokens: tokens, types: [2, 3, 3, 1, 1, 1], scores: [0, 0], bos: 1)
        let farBos = try tokenizerGGUF(tokens: tokens, types: [2, 3, 3, 1, 1, 1], scores: [0, 0, 0, -3, -2, -1], bos: 4_000_000_000)
        defer { for url in [fewerTypes, fewerScores, farBos] { try? FileManager.default.removeItem(at: url) } }
        for (url, words) in [(fewerTypes, "3 token types for 6 tokens"), (fewerScores, "2 scores for 6 tokens")] {
            do { _ = try Tokenizer(ggufPath: url.path); Issue.record("\(words): loaded") }
            catch { #expect("\(error)".contains(words), "\(error)") }
        }
        let tokenizer = try Tokenizer(ggufPath: farBos.path)
        #expect(tokenizer.bosTokenId == nil)
        #expect(tokenizer.encode("a") == [5])
    }
}
