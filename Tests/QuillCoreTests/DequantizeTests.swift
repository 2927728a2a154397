import Foundation
import Testing
import QuillCore
import QuillFormats

/// Dequantization of every GGUF type against gguf-py (bit-exact with ggml), bit for bit.
/// Fixtures/make_quant_fixtures.py made the expected values.
@Suite struct DequantizeTests {
    static func fixture(_ name: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/quant/\(name)", withExtension: nil))
        return try Data(contentsOf: url)
    }

    static func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    @Test(arguments: [GGMLType.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
    func matchesReferenceBitForBit(_ type: GGMLType) throws {
        let name = "\(type)".lowercased()
        let blocks = try Self.fixture("\(name).blocks")
        let expected = Self.floats(try Self.fixture("\(name).f32"))
        let (perBlock, bytes) = type.blockLayout
        #expect(blocks.count / bytes * perBlock == expected.count)
        let got = blocks.withUnsafeBytes { Dequantize.array(type, $0, count: expected.count) }
        let differing = zip(got, expected).filter { $0.bitPattern != $1.bitPattern }.count
        print("\(type): \(expected.count - differing)/\(expected.count) values bit-identical to gguf-py")
        #expect(differing == 0)
    }

    @Test(arguments: ["blk.0.attn_q.weight", "token_embd.weight"])
    func realSmolLM2Rows(_ tensorName: String) throws {
        let file = try GGUFFile(path: QuillCache.defaultModel.path)
        let tensor = try #require(file.tensor(named: tensorName))
        let expected = Self.floats(try Self.fixture("smollm2.\(tensorName).f32"))
        let got = Dequantize.array(tensor.type, file.data(of: tensor), count: expected.count)
        #expect(got.map(\.bitPattern) == expected.map(\.bitPattern))
        print("\(tensorName) (\(tensor.type)): first \(expected.count) values bit-identical to gguf-py")
    }

    @Test func halfConversionRoundTripsEveryFiniteHalf() {
        var mismatches = 0
        for bits in UInt16.min...UInt16.max {
            let f = floatFromHalf(bits)
            if f.isNaN { continue }
            if halfFromFloat(f) != bits { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(halfFromFloat(65520) == 0x7C00)          // rounds up to infinity
        #expect(halfFromFloat(1 + 1.0 / 2048) == 0x3C00) // halfway: ties to even
    }
}
