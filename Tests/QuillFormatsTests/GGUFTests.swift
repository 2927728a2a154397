import Foundation
import Testing
import QuillFormats

/// The GGUF reader against facts the `gguf` Python package (llama.cpp's reader) prints for the
/// default model: 272 tensors (210 Q4_1, 61 F32, 1 Q8_0), token_embd.weight [576, 49152] Q8_0
/// at absolute offset 1,785,664, 30,081,024 bytes.
@Suite struct GGUFTests {
    static func smolLM2() throws -> GGUFFile {
        let path = QuillCache.defaultModel.path
        guard FileManager.default.fileExists(atPath: path) else { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(path): run scripts/setup"]) }
        return try GGUFFile(path: path)
    }

    @Test func readsMetadataAndTensorTable() throws {
        let file = try Self.smolLM2()
        #expect(file.version == 3)
        #expect(try file.string("general.architecture") == "llama")
        #expect(file.metadata["llama.block_count"]?.int == 30)
        #expect(file.metadata["llama.embedding_length"]?.int == 576)
        #expect(file.metadata["llama.attention.head_count"]?.int == 9)
        #expect(file.metadata["llama.attention.head_count_kv"]?.int == 3)
        #expect(file.tensors.count == 272)
        let counts = Dictionary(grouping: file.tensors, by: \.type).mapValues(\.count)
        #expect(counts == [.q4_1: 210, .f32: 61, .q8_0: 1])
        let embedding = try #require(file.tensor(named: "token_embd.weight"))
        #expect(embedding.dimensions == [576, 49152])
        #expect(embedding.type == .q8_0)
        #expect(file.dataOffset + embedding.offset == 1_785_664)
        #expect(embedding.byteCount == 30_081_024)
        #expect(file.dataOffset % file.alignment == 0)
    }

    @Test func tensorDataIsMappedNotCopied() throws {
        let file = try Self.smolLM2()
        let norm = try #require(file.tensor(named: "output_norm.weight"))
        let data = file.data(of: norm)
        #expect(data.count == 576 * 4)
        let values = data.bindMemory(to: Float.self)
        #expect(values.allSatisfy { $0.isFinite } && values.contains { $0 != 0 })
    }

    @Test func typedAccessorsSayWhatIsWrong() throws {
        let file = try Self.smolLM2()
        #expect(throws: GGUFError.missingKey(path: file.path, key: "no.such.key")) { try file.string("no.such.key") }
        #expect(throws: GGUFError.self) { try file.string("llama.block_count") }
    }
}
