import Foundation
import Testing
import QuillCore
@testable import QuillFormats

/// llama.cpp's importance matrix files (GGUF and the older .dat), and `GGUFQuantizer` with one.
/// Against llama-imatrix and llama-quantize themselves: Tests/FormatChecks/check_imatrix.py.
@Suite struct ImportanceMatrixTests {
    static func temporary(_ name: String) -> String { GGUFWriterTests.temporary("imatrix-\(name)") }

    static func sample() -> ImportanceMatrix {
        var matrix = ImportanceMatrix(datasets: ["calibration.txt"], chunkCount: 3, chunkSize: 4)
        let rows: [Float] = (0..<(6 * 8)).map { Float($0 % 7) - 2.5 }
        rows.withUnsafeBufferPointer { x in
            matrix.accumulate("blk.0.attn_q.weight", x.baseAddress!, rows: 6, columns: 8)
            matrix.accumulate("blk.0.attn_q.weight", x.baseAddress!, rows: 6, columns: 8)
            matrix.accumulate("blk.0.ffn_down.weight", x.baseAddress!, rows: 3, columns: 16)
        }
        return matrix
    }

    @Test func writtenAndReadBack() throws {
        let matrix = Self.sample(), path = Self.temporary("roundtrip.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try matrix.write(to: path)
        let file = try GGUFFile(path: path)
        // llama-imatrix's layout: the metadata in its order, tensors by name, sums [columns, 1], counts [1, 1]
        #expect(file.metadataKeys == ["general.type", "imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"])
        #expect(file.tensors.map(\.name) == ["blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts",
                                            "blk.0.ffn_down.weight.in_sum2", "blk.0.ffn_down.weight.counts"])
        #expect(file.tensors.map(\.dimensions) == [[8, 1], [1, 1], [16, 1], [1, 1]])
        let back = try ImportanceMatrix(path: path)
        #expect(back.entries == matrix.entries && back.datasets == ["calibration.txt"] && back.chunkCount == 3 && back.chunkSize == 4)
        let q = try #require(back.entries["blk.0.attn_q.weight"])
        #expect(q.counts == [12])
        // column j saw (j % 7 - 2.5)², (j+8) % 7 ..., twice over
        let direct = (0..<8).map { j in 2 * (0..<6).reduce(Float(0)) { s, r in let x = Float((r * 8 + j) % 7) - 2.5; return s + x * x } }
        #expect(q.sums == direct)
        #expect(back.importance(for: "blk.0.attn_q.weight") == direct.map { $0 / 12 })
        #expect(back.importance(for: "output.weight") == nil)
    }

    /// The .dat format: sums already divided by the token counts, times the calls.
    @Test func readsTheLegacyFormat() throws {
        var bytes = Data()
        func int32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        int32(1)
        int32(Int32("blk.3.ffn_up.weight".utf8.count)); bytes.append(contentsOf: Array("blk.3.ffn_up.weight".utf8))
        int32(4)          // calls
        int32(3)          // values
        for v: Float in [8, 2, 0.5] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        int32(10); int32(5); bytes.append(contentsOf: Array("wiki2".utf8))
        let matrix = try ImportanceMatrix(legacy: bytes, path: "x.dat")
        #expect(matrix.isLegacy && matrix.chunkCount == 10 && matrix.datasets == ["wiki2"])
        #expect(matrix.importance(for: "blk.3.ffn_up.weight") == [2, 0.5, 0.125])
        // without the optional tail
        let short = try ImportanceMatrix(legacy: bytes.prefix(bytes.count - 13), path: "x.dat")
        #expect(short.chunkCount == 0 && short.datasets.isEmpty && short.entries.count == 1)
        // cut anywhere inside an entry: an error naming what was being read
        for cut in [3, 6, 20, 30, 35] {
            #expect(throws: ImportanceMatrix.Failure.self) { try ImportanceMatrix(legacy: bytes.prefix(cut), path: "x.dat") }
        }
        var hostile = bytes
        hostile.replaceSubrange(4..<8, with: [0xFF, 0xFF, 0xFF, 0x7F])   // a name of 2 GB
        #expect { try ImportanceMatrix(legacy: hostile, path: "x.dat") } throws: { "\($0)".contains("ends at byte") }
    }

    /// What llama-quantize would refuse, refused with the reason.
    @Test func refusesBrokenMatrices() throws {
        func written(_ tensors: [(String, [Int], GGMLType, [Float])], metadata: [(String, GGUFValue)]? = nil) throws -> String {
            let path = Self.temporary("broken-\(UUID().uuidString).gguf")
            var writer = GGUFWriter(metadata: metadata ?? [("general.type", .string("imatrix")), ("imatrix.datasets", .array(.string, [])),
                                                          ("imatrix.chunk_count", .uint32(1)), ("imatrix.chunk_size", .uint32(512))])
            for (name, dimensions, type, values) in tensors {
                writer.append(.init(name: name, dimensions: dimensions, type: type) { out in
                    if type == .f32 { values.withUnsafeBytes { out.copyMemory(from: $0) } } else { _ = out.initializeMemory(as: UInt8.self, repeating: 0) }
                })
            }
            try writer.write(to: path)
            return path
        }
        let cases: [(String, [(String, [Int], GGMLType, [Float])], [(String, GGUFValue)]?)] = [
            ("sums without counts", [("a.in_sum2", [4, 1], .f32, [1, 2, 3, 4])], nil),
            ("must be F32", [("a.in_sum2", [4, 1], .f16, []), ("a.counts", [1, 1], .f32, [2])], nil),
            ("not finite", [("a.in_sum2", [4, 1], .f32, [1, .nan, 3, 4]), ("a.counts", [1, 1], .f32, [2])], nil),
            ("do not divide", [("a.in_sum2", [3, 1], .f32, [1, 2, 3]), ("a.counts", [2, 1], .f32, [2, 2])], nil),
            ("negative", [("a.in_sum2", [4, 1], .f32, [1, 2, 3, 4]), ("a.counts", [1, 1], .f32, [-2])], nil),
            ("not imatrix", [("a.in_sum2", [4, 1], .f32, [1, 2, 3, 4]), ("a.counts", [1, 1], .f32, [2])], [("general.type", .string("model"))]),
            ("is missing", [("a.in_sum2", [4, 1], .f32, [1, 2, 3, 4]), ("a.counts", [1, 1], .f32, [2])], [("general.type", .string("imatrix"))]),
        ]
        for (says, tensors, metadata) in cases {
            let path = try written(tensors, metadata: metadata)
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect { try ImportanceMatrix(path: path) } throws: { "\($0)".contains(says) && "\($0)".contains(path) }
        }
    }

    /// A matrix made for another model is refused before a byte is written; the written file
    /// records the matrix as llama-quantize does, after general.file_type.
    @Test func quantizerUsesAndRecordsTheMatrix() throws {
        let source = Self.temporary("source.gguf"), output = Self.temporary("q4_0.gguf"), matrixPath = Self.temporary("m.gguf")
        defer { for p in [source, output, matrixPath] { try? FileManager.default.removeItem(atPath: p) } }
        let weights: [Float] = (0..<(4 * 64)).map { sin(Float($0) * 0.37) }
        var writer = GGUFWriter(metadata: [("general.architecture", .string("llama")), ("llama.block_count", .uint32(1))])
        writer.append(.init(name: "blk.0.attn_q.weight", dimensions: [64, 4], type: .f32) { out in weights.withUnsafeBytes { out.copyMemory(from: $0) } })
        try writer.write(to: source)
        var matrix = ImportanceMatrix(datasets: ["calibration.txt"], chunkCount: 2, chunkSize: 512)
        matrix.entries["blk.0.attn_q.weight"] = .init(sums: (0..<64).map { Float($0 % 5) + 0.5 }, counts: [16])
        try matrix.write(to: matrixPath)
        var options = GGUFQuantizer.Options(fileType: .q4_0)
        options.importanceMatrix = (try ImportanceMatrix(path: matrixPath), matrixPath)
        #expect(options.plan.hasImportanceMatrix)
        try GGUFQuantizer.quantize(try GGUFFile(path: source), to: output, options: options)
        let file = try GGUFFile(path: output)
        #expect(Array(file.metadataKeys.suffix(6)) == ["general.quantization_version", "general.file_type", "quantize.imatrix.file",
                                                       "quantize.imatrix.dataset", "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count"])
        #expect(file.metadata["quantize.imatrix.entries_count"]?.int == 1 && file.metadata["quantize.imatrix.chunks_count"]?.int == 2)
        // the bytes are the weighted quantizer's, row by row
        let importance = try #require(matrix.importance(for: "blk.0.attn_q.weight"))
        var expected = [UInt8](repeating: 0, count: GGMLType.q4_0.byteCount(weights.count))
        weights.withUnsafeBufferPointer { x in
            importance.withUnsafeBufferPointer { w in
                expected.withUnsafeMutableBytes { Quantize.rows(.q4_0, from: x.baseAddress!, into: $0.baseAddress!, rows: 4, columns: 64, importance: w.baseAddress!) }
            }
        }
        let tensor = try #require(file.tensor(named: "blk.0.attn_q.weight"))
        #expect([UInt8](file.data(of: tensor)) == expected)

        matrix.entries["blk.0.attn_q.weight"] = .init(sums: [1, 2, 3], counts: [1])
        try matrix.write(to: matrixPath)
        options.importanceMatrix = (try ImportanceMatrix(path: matrixPath), matrixPath)
        try? FileManager.default.removeItem(atPath: output)
        #expect { try GGUFQuantizer.quantize(try GGUFFile(path: source), to: output, options: options) } throws: {
            "\($0)".contains("3 values for blk.0.attn_q.weight") && "\($0)".contains("64")
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
