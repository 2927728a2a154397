import Foundation
import Testing
import QuillCore
import QuillFormats

/// The GGUF writer against Quill's reader, and the quantizer's per-tensor types against
/// llama-quantize's on the real models (Fixtures/make_quantization_plans.py).
@Suite struct GGUFWriterTests {
    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("quill-\(getpid())-\(name)").path
    }

    @Test func metadataAndTensorsRoundTrip() throws {
        let path = Self.temporary("roundtrip.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")),
            ("general.name", .string("小模型 test")),
            ("llama.block_count", .uint32(2)),
            ("llama.rope.freq_base", .float32(10000)),
            ("tokenizer.ggml.add_bos_token", .bool(true)),
            ("tokenizer.ggml.tokens", .array(.string, [.string("<s>"), .string("你好"), .string("")])),
            ("nested", .array(.array, [.array(.int32, [.int32(-1), .int32(2)]), .array(.int32, [])])),
            ("big", .uint64(1 << 40)), ("f", .float64(-0.5)), ("i8", .int8(-3)), ("u16", .uint16(65535)),
        ]
        var writer = GGUFWriter(metadata: metadata)
        let values = (0..<(64 * 3)).map { Float($0) * 0.25 - 7 }
        writer.append(GGUFWriter.Tensor(name: "a.weight", dimensions: [64, 3], type: .q8_0) { out in
            values.withUnsafeBufferPointer { Quantize.row(.q8_0, from: $0.baseAddress!, into: out.baseAddress!, count: values.count) }
        })
        writer.append(GGUFWriter.Tensor(name: "b.bias", dimensions: [5], type: .f32) { out in
            [Float](arrayLiteral: 1, 2, 3, 4, 5).withUnsafeBytes { out.copyMemory(from: $0) }
        })
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        #expect(file.metadataKeys == metadata.map(\.key))
        for (key, value) in metadata { #expect(file.metadata[key] == value, "\(key)") }
        #expect(file.tensors.map(\.name) == ["a.weight", "b.bias"])
        #expect(file.tensors.allSatisfy { (file.dataOffset + $0.offset) % 32 == 0 })
        let a = try #require(file.tensor(named: "a.weight"))
        let back = Dequantize.array(.q8_0, file.data(of: a), count: values.count)
        #expect(zip(back, values).allSatisfy { abs($0 - $1) <= 41.0 / 254 })   // half a step of the largest block's scale
        #expect(Array(file.data(of: try #require(file.tensor(named: "b.bias"))).bindMemory(to: Float.self)) == [1, 2, 3, 4, 5])
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == writer.fileSize)
    }

    @Test func aFailingTensorLeavesNoFile() throws {
        let path = Self.temporary("failing.gguf")
        struct Broken: Error {}
        var writer = GGUFWriter(metadata: [("general.architecture", .string("llama"))])
        writer.append(GGUFWriter.Tensor(name: "x", dimensions: [4], type: .f32) { _ in throw Broken() })
        #expect(throws: Broken.self) { try writer.write(to: path) }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
            .filter { $0.contains("quill-\(getpid())-failing") }
        #expect(leftovers.isEmpty)
    }

    @Test func refusesWhenTheFileSystemIsTooSmall() throws {
        var writer = GGUFWriter()
        writer.append(GGUFWriter.Tensor(name: "huge", dimensions: [1 << 20, 1 << 22], type: .f32) { _ in Issue.record("wrote") })
        // 16 TiB of tensor data on any test machine's temporary directory
        #expect(throws: FileWriteError.self) { try writer.write(to: Self.temporary("huge.gguf")) }
        do { try writer.write(to: Self.temporary("huge.gguf")) } catch { #expect("\(error)".contains("free; nothing was written")) }
    }

    /// A damaged weight (a NaN) is named with its row, and no output appears; a Q4_K source is
    /// not quantized again without permission, but dequantized to F16 freely.
    @Test func quantizerRefusesDamagedAndRequantizedTensors() throws {
        let source = Self.temporary("nan.gguf"), output = Self.temporary("nan-out.gguf")
        defer { for p in [source, output] { try? FileManager.default.removeItem(atPath: p) } }
        var writer = GGUFWriter(metadata: [("general.architecture", .string("llama")), ("llama.block_count", .uint32(1))])
        writer.append(GGUFWriter.Tensor(name: "blk.0.attn_q.weight", dimensions: [256, 4], type: .f32) { out in
            let values = out.bindMemory(to: Float.self)
            for i in values.indices { values[i] = Float(i % 7) - 3 }
            values[2 * 256 + 5] = .nan
        })
        try writer.write(to: source)
        #expect {
            try GGUFQuantizer.quantize(try GGUFFile(path: source), to: output, options: .init(fileType: .q8_0))
        } throws: { "\($0)".contains("blk.0.attn_q.weight has a NaN or infinite value in row 2") }
        #expect(!FileManager.default.fileExists(atPath: output))

        let q4K = Self.temporary("q4k.gguf"), f16 = Self.temporary("q4k-f16.gguf")
        defer { for p in [q4K, f16] { try? FileManager.default.removeItem(atPath: p) } }
        var quantized = GGUFWriter(metadata: [("general.architecture", .string("llama")), ("llama.block_count", .uint32(1))])
        quantized.append(GGUFWriter.Tensor(name: "blk.0.attn_q.weight", dimensions: [256, 4], type: .q4_K) { out in
            let values = (0..<1024).map { Float($0 % 7) - 3 }
            Quantize.rows(.q4_K, from: values, into: out.baseAddress!, rows: 4, columns: 256)
        })
        try quantized.write(to: q4K)
        #expect {
            try GGUFQuantizer.quantize(try GGUFFile(path: q4K), to: output, options: .init(fileType: .q8_0))
        } throws: { "\($0)".contains("is already Q4_K") && "\($0)".contains("--allow-requantize") }
        try GGUFQuantizer.quantize(try GGUFFile(path: q4K), to: f16, options: .init(fileType: .f16))
        let back = try GGUFFile(path: f16)
        #expect(back.tensors.first?.type == .f16 && back.metadata["general.file_type"] == .uint32(1))
    }

    struct Plans: Decodable {
        let tensors: String
        let types: [String: String]
    }

    static let models = ["SmolLM2-135M-Instruct.Q4_1.gguf", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "gemma-3-270m-q4_k_m.gguf"]

    @Test(arguments: models)
    func tensorTypesEqualLlamaQuantizes(_ model: String) throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/quantization-plans", withExtension: "json"))
        let plans = try JSONDecoder().decode([String: Plans].self, from: Data(contentsOf: url))
        let expected = try #require(plans[model])
        let path = QuillCache.root.appendingPathComponent("models/\(model)").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(path): run QUILL_MODELS=all scripts/setup"])
        }
        let file = try GGUFFile(path: path)
        for (name, types) in expected.types.sorted(by: { $0.key < $1.key }) {
            // "Q4_0+imatrix": the mix llama-quantize --imatrix chooses
            let fileType = String(name.prefix { $0 != "+" })
            var options = GGUFQuantizer.Options(fileType: try #require(GGUFFileType(name: fileType)))
            options.allowRequantize = true
            options.plan.hasImportanceMatrix = name.hasSuffix("+imatrix")
            let entries: [GGUFQuantizationPlan.Entry] = GGUFQuantizer.plan(for: file, options: options).entries
            let names = entries.map { $0.name }.joined(separator: " ")
            #expect(names == expected.tensors, "\(model) \(name): tensor order")
            let theirs = types.split(separator: " ").map(String.init)
            var differing: [String] = []
            for (entry, type) in zip(entries, theirs) where entry.to.name != type { differing.append("\(entry.name): \(entry.to.name) vs \(type)") }
            #expect(differing.isEmpty, "\(model) \(name): \(differing.prefix(5))")
        }
        print("\(model): the types of \(file.tensors.count) tensors equal llama-quantize's for \(expected.types.count) file types (with and without an importance matrix)")
    }

    @Test func fileTypeNamesAndAliases() {
        #expect(GGUFFileType(name: "q4_k") == .q4_K_M)
        #expect(GGUFFileType(name: "Q5_K") == .q5_K_M)
        #expect(GGUFFileType(name: "Q3_K") == .q3_K_M)
        #expect(GGUFFileType(name: "Q4_K_S")?.code == 14)
        #expect(GGUFFileType(name: "IQ2_XXS") == nil)
    }
}
