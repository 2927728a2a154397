import Foundation
import Testing
import QuillCore
import QuillFormats
@testable import QuillModels
import QuillTokenizers

/// SmolLM2 (GGUF Q4_1) against llama.cpp, two ways. Quill's fp32 path (weights dequantized) has
/// as exact peer llama.cpp on an F32 copy of the same file (made by llama.cpp's own quantize
/// tool): logits within 5e-2, the same top-1 everywhere. Quill's int8 kernels (Q4_1 weights times
/// Q8_1 activations, as llama.cpp does it) are held to llama.cpp on the Q4_1 file itself.
@Suite(.serialized) struct LlamaParityTests {
    struct Reference: Decodable {
        struct Passage: Decodable { let tokens: [Int32]; let top_ids: [[Int]]; let top_logits: [[Float]] }
        struct Greedy: Decodable { let prompt: String; let prompt_tokens: [Int32]; let generated: [Int32]; let top2_gap: [Float] }
        let q4_1: [String: Passage]
        let f32: [String: Passage]
        let greedy: [Greedy]
    }

    static let reference: Reference = {
        let url = Bundle.module.url(forResource: "Fixtures/llamacpp", withExtension: "json")!
        return try! JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }()

    static let file = try! GGUFFile(path: QuillCache.defaultModel.path)
    static let model = try! LlamaModel(gguf: file, weights: .dense)
    static let quantizedModel = try! LlamaModel(gguf: file, weights: .quantized, denseBatchThreshold: .max)
    static let tokenizer = try! Tokenizer(gguf: file)

    static func compare(_ passage: Reference.Passage, _ logits: [Float], vocab: Int) -> (top1: Int, maxDiff: Float) {
        var sameTop1 = 0
        var maxDiff: Float = 0
        for (i, ids) in passage.top_ids.enumerated() {
            let row = Array(logits[(i * vocab)..<((i + 1) * vocab)])
            if Sampler.argmax(row) == ids[0] { sameTop1 += 1 }
            for (j, id) in ids.enumerated() { maxDiff = max(maxDiff, abs(row[id] - passage.top_logits[i][j])) }
        }
        return (sameTop1, maxDiff)
    }

    @Test(arguments: ["english", "chinese"])
    func teacherForcedLogits(_ name: String) throws {
        let exact = try #require(Self.reference.f32[name])
        let quantized = try #require(Self.reference.q4_1[name])
        #expect(exact.tokens == quantized.tokens)
        var cache = Self.model.makeCache(capacity: exact.tokens.count)
        let logits = try Self.model.forward(exact.tokens, cache: &cache, allLogits: true)
        let vocab = Self.model.config.vocabularySize, n = exact.tokens.count
        var qcache = Self.quantizedModel.makeCache(capacity: exact.tokens.count)
        let qlogits = try Self.quantizedModel.forward(exact.tokens, cache: &qcache, allLogits: true)
        let f32 = Self.compare(exact, logits, vocab: vocab)
        let q = Self.compare(quantized, qlogits, vocab: vocab)
        let cross = Self.compare(quantized, logits, vocab: vocab)
        print("\(name), \(n) positions: fp32 path vs llama.cpp F32: top-1 \(f32.top1)/\(n), max |Δlogit| \(f32.maxDiff); "
              + "int8 kernels vs llama.cpp Q4_1: top-1 \(q.top1)/\(n), max |Δlogit| \(q.maxDiff) "
              + "(fp32 path vs llama.cpp Q4_1: top-1 \(cross.top1)/\(n), max |Δlogit| \(cross.maxDiff))")
        #expect(Double(f32.top1) >= 0.99 * Double(n))
        #expect(f32.maxDiff < 5e-2)
        // Not yet the 99%: llama.cpp also keeps its KV cache in f16 and rounds activations
        // its own way; today the int8 path is as close to llama.cpp Q4_1 as llama.cpp's F32 run is.
        #expect(Double(q.top1) >= 0.90 * Double(n))
        #expect(q.maxDiff < 2.5)
    }

    @Test func tokenizerAgreesWithLlamaCpp() {
        for passage in Self.reference.f32.values {
            let text = Self.tokenizer.decode(passage.tokens)
            #expect(Self.tokenizer.encode(text, addSpecialTokens: false) == passage.tokens)
        }
        for g in Self.reference.greedy {
            #expect(Self.tokenizer.encode(g.prompt, addSpecialTokens: false) == g.prompt_tokens, "\(g.prompt)")
        }
    }

    /// Greedy continuations equal llama.cpp's (F32 copy) token for token, up to the first near-tie
    /// (two best logits within 1e-2), where rounding may pick either.
    @Test func greedyContinuations() throws {
        var compared = 0, total = 0
        for g in Self.reference.greedy {
            var options = GenerationOptions()
            options.maxNewTokens = g.generated.count
            options.sampling = .greedy
            options.stopTokenIds = [2]
            let result = try Generator(model: Self.model, tokenizer: Self.tokenizer).generate(promptIds: g.prompt_tokens, options: options)
            var agreed = 0
            for (i, expected) in g.generated.enumerated() {
                if g.top2_gap[i] < 1e-2 { break }
                guard i < result.tokens.count else { break }
                #expect(result.tokens[i] == expected, "\(g.prompt.debugDescription) step \(i)")
                if result.tokens[i] != expected { break }
                agreed += 1
            }
            compared += agreed; total += g.generated.count
            print("\(g.prompt.debugDescription): \(agreed)/\(g.generated.count) greedy tokens equal to llama.cpp F32")
        }
        #expect(compared >= total / 2)
    }
}

@Suite struct SamplingTests {
    @Test func seededSamplingIsReproducibleAndGreedyIsArgmax() {
        let logits: [Float] = (0..<50).map { Float(($0 * 37) % 17) / 4 }
        var p = SamplingParameters(); p.seed = 11; p.temperature = 1; p.topK = 0; p.topP = 1; p.minP = 0
        var a = Sampler(p), b = Sampler(p)
        let first = (0..<20).map { _ in a.sample(logits, history: []) }
        #expect(first == (0..<20).map { _ in b.sample(logits, history: []) })
        #expect(Set(first).count > 1)
        var g = Sampler(.greedy)
        #expect(g.sample(logits, history: []) == Int32(Sampler.argmax(logits)))
        p.topK = 1
        var k = Sampler(p)
        #expect(k.sample(logits, history: []) == Int32(Sampler.argmax(logits)))
    }

    /// The heap selection keeps exactly the first k of a stable descending sort, ties included.
    @Test func topKSelectionEqualsSortingPrefix() {
        var rng = SeededGenerator(seed: 21)
        let logits = (0..<5_000).map { _ in Float(Int.random(in: 0..<300, using: &rng)) / 10 }   // many ties
        for k in [1, 7, 40, 299] {
            let expected = Set(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(k))
            #expect(Set(Sampler.top(k, of: logits)) == expected, "k = \(k)")
        }
    }

    @Test func penaltiesAndBiasMoveTheChoice() {
        var logits = [Float](repeating: 0, count: 10); logits[3] = 2; logits[4] = 1.9
        var p = SamplingParameters.greedy
        p.repetitionPenalty = 1.5
        var s = Sampler(p)
        #expect(s.sample(logits, history: [3]) == 4)     // 2 / 1.5 < 1.9
        p.repetitionPenalty = 1; p.logitBias = [7: 5]
        s = Sampler(p)
        #expect(s.sample(logits, history: []) == 7)
    }

    @Test func logprobsAreNormalised() {
        let logits: [Float] = [1, 2, 3, 0.5]
        let lp = TokenLogprob(logits: logits, id: 2, top: 2)
        let logSum = logits[2] - lp.logprob
        let total = logits.map { exp($0 - logSum) }.reduce(0, +)
        #expect(abs(total - 1) < 1e-5)
        #expect(lp.top.map(\.id) == [2, 1])
    }
}

@Suite struct KernelTests {
    /// Small products on the calling thread, larger ones split over the pool in 16-row slices
    /// (250 output channels: the last slice takes the remainder).
    @Test(arguments: [1, 7], [80, 250])
    func blasMatmulMatchesReference(_ n: Int, oc: Int) {
        var rng = SeededGenerator(seed: 7)
        let c = 296
        let x = (0..<(n * c)).map { _ in Float.random(in: -1...1, using: &rng) }
        let w = (0..<(oc * c)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<oc).map { _ in Float.random(in: -1...1, using: &rng) }
        var fast = [Float](repeating: 0, count: n * oc), slow = fast
        Matmul.forward(&fast, x, w, b, n: n, c: c, oc: oc)
        Matmul.reference(&slow, x, w, b, n: n, c: c, oc: oc)
        let maxDiff = zip(fast, slow).map { abs($0 - $1) }.max()!
        #expect(maxDiff < 1e-4)
    }

    @Test func ropePairingsAreTheSameRotationUnderPermutation() {
        // rotate-half on x equals adjacent-pair rotation on x with halves interleaved (GGUF's permutation)
        let hs = 8
        let x: [Float] = (0..<hs).map { Float($0) + 1 }
        let interleaved: [Float] = (0..<hs).map { i in x[(i % 2) * (hs / 2) + i / 2] }
        let inv = (0..<(hs / 2)).map { Float(1 / pow(10000.0, Double(2 * $0) / Double(hs))) }
        var a = x, b = interleaved
        Layers.rope(&a, positions: [5], n: 1, heads: 1, headSize: hs, inverseFrequencies: inv, pairing: .halves)
        Layers.rope(&b, positions: [5], n: 1, heads: 1, headSize: hs, inverseFrequencies: inv, pairing: .adjacent)
        let back: [Float] = (0..<hs).map { i in b[(i % (hs / 2)) * 2 + i / (hs / 2)] }
        #expect(zip(a, back).allSatisfy { abs($0 - $1) < 1e-5 })
    }
}

@Suite struct AttentionKernelTests {
    /// The parallel SIMD attention (decode) and the blocked BLAS attention (prompts of 16 tokens
    /// or more) against their scalar twin, with GQA and sliding windows shorter and longer than a block.
    @Test(arguments: [nil, 5, 70] as [Int?], [4, 100])
    func matchesReference(_ window: Int?, n: Int) {
        var rng = SeededGenerator(seed: 3)
        let heads = 6, kvHeads = 2, hs = 16, start = 9, ctx = start + n
        let q = (0..<(n * heads * hs)).map { _ in Float.random(in: -1...1, using: &rng) }
        let k = (0..<(ctx * kvHeads * hs)).map { _ in Float.random(in: -1...1, using: &rng) }
        let v = (0..<(ctx * kvHeads * hs)).map { _ in Float.random(in: -1...1, using: &rng) }
        var fast = [Float](repeating: 0, count: n * heads * hs), slow = fast
        Layers.attention(&fast, q: q, keys: k, values: v, start: start, n: n, heads: heads, kvHeads: kvHeads, headSize: hs, window: window)
        Layers.attentionReference(&slow, q: q, keys: k, values: v, start: start, n: n, heads: heads, kvHeads: kvHeads, headSize: hs, window: window)
        #expect(zip(fast, slow).allSatisfy { abs($0 - $1) < 1e-5 })
    }
}
