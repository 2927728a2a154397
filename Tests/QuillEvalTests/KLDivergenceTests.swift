import Foundation
import Testing
import QuillFormats
import QuillModels
import QuillTokenizers
@testable import QuillEval

/// llama.cpp's `.kld` files and its KL-divergence statistics.
struct KLDivergenceTests {
    /// Rows of logits shaped like a language model's: a few likely tokens, a long tail.
    static func logits(rows: Int, vocabulary: Int, seed: UInt64) -> [Float] {
        var state = seed
        func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        return (0..<(rows * vocabulary)).map { i in
            let id = i % vocabulary
            return 12 * uniform() * uniform() - 6 + (id % 97 == 0 ? 8 : 0)
        }
    }

    static func exactLogSoftmax(_ row: ArraySlice<Float>) -> [Double] {
        let m = Double(row.max()!)
        let z = log(row.reduce(0.0) { $0 + exp(Double($1) - m) }) + m
        return row.map { Double($0) - z }
    }

    static func temporaryFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("quill-kld-\(UUID().uuidString).kld")
    }

    /// A file written and read back: its header, tokens, and every log-probability within half a
    /// quantization step of the exact value (those more than 16 nats below the best are 0 there).
    @Test func fileRoundTrip() throws {
        let context = 16, vocabulary = 301, chunks = 3, rows = LogProbabilityFile.rowsPerChunk(context: context)
        let tokens = (0..<(chunks * context)).map { Int32(($0 * 7) % vocabulary) }
        let all = Self.logits(rows: chunks * rows, vocabulary: vocabulary, seed: 3)
        let url = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: url) }
        try AtomicFile.write(to: url) { handle in
            var writer = try LogProbabilityFile.Writer(handle: handle, context: context, vocabulary: vocabulary, chunks: chunks, tokens: tokens[...])
            for c in 0..<chunks {
                try all.withUnsafeBufferPointer {
                    try writer.append(UnsafeBufferPointer(rebasing: $0[(c * rows * vocabulary)..<((c + 1) * rows * vocabulary)]))
                }
            }
        }
        let size = try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        #expect(size == 20 + 4 * chunks * context + 2 * chunks * rows * (302 + 4))
        let reader = try LogProbabilityFile.Reader(path: url.path)
        #expect(reader.context == context && reader.vocabulary == vocabulary && reader.chunks == chunks && reader.tokens == tokens)
        var worst = 0.0
        for c in 0..<chunks {
            let encoded = try reader.nextChunk()
            for r in 0..<rows {
                let logitRow = all[((c * rows + r) * vocabulary)..<((c * rows + r + 1) * vocabulary)]
                let exact = Self.exactLogSoftmax(logitRow)
                let width = LogProbabilityFile.rowWidth(vocabulary: vocabulary)
                encoded.withUnsafeBufferPointer { buffer in
                    let row = UnsafeBufferPointer(rebasing: buffer[(r * width)..<((r + 1) * width)])
                    let (scale, minimum) = LogProbabilityFile.header(of: row)
                    #expect(scale > 0 && scale <= 16 / 65535 * 1.0001)
                    for i in 0..<vocabulary where exact[i] > Double(minimum) + 1e-3 {
                        worst = max(worst, abs(Double(LogProbabilityFile.logProbability(row, at: i)) - exact[i]) / Double(scale))
                    }
                    #expect(row[width - 1] == 0, "padding")
                }
            }
        }
        print("largest |log p error| \(worst) quantization steps")
        #expect(worst < 0.55)
        #expect(throws: LogProbabilityFile.Failure.self) { _ = try reader.nextChunk() }
    }

    /// Mean KL divergence, top-token agreement and Δp against a direct double-precision
    /// computation over the whole vocabulary, for a model against itself (≈ 0) and against a
    /// perturbed copy.
    @Test func statisticsMatchADirectComputation() throws {
        let vocabulary = 500, rows = 120
        let base = Self.logits(rows: rows, vocabulary: vocabulary, seed: 5)
        let noise = Self.logits(rows: rows, vocabulary: vocabulary, seed: 9)
        let other = zip(base, noise).map { $0 + 0.05 * $1 }
        let targets = (0..<rows).map { ($0 * 31) % vocabulary }
        let width = LogProbabilityFile.rowWidth(vocabulary: vocabulary)
        var encoded = [UInt16](repeating: 0, count: rows * width)
        for r in 0..<rows {
            base.withUnsafeBufferPointer { b in
                encoded.withUnsafeMutableBufferPointer { e in
                    LogProbabilityFile.encode(UnsafeBufferPointer(rebasing: b[(r * vocabulary)..<((r + 1) * vocabulary)]),
                                              into: UnsafeMutableBufferPointer(rebasing: e[(r * width)..<((r + 1) * width)]))
                }
            }
        }
        func statistics(_ model: [Float]) -> KLDivergence {
            var s = KLDivergence()
            for r in 0..<rows {
                model.withUnsafeBufferPointer { m in
                    encoded.withUnsafeBufferPointer { e in
                        s.add(UnsafeBufferPointer(rebasing: m[(r * vocabulary)..<((r + 1) * vocabulary)]),
                              base: UnsafeBufferPointer(rebasing: e[(r * width)..<((r + 1) * width)]), target: targets[r])
                    }
                }
            }
            return s
        }
        let itself = statistics(base)
        #expect(itself.sameTop == rows)
        #expect(itself.meanKLD < 1e-7, "\(itself.meanKLD)")
        let perturbed = statistics(other)
        var kld = 0.0, sameTop = 0, sumPDiff2 = 0.0
        for r in 0..<rows {
            let p = Self.exactLogSoftmax(base[(r * vocabulary)..<((r + 1) * vocabulary)])
            let q = Self.exactLogSoftmax(other[(r * vocabulary)..<((r + 1) * vocabulary)])
            kld += zip(p, q).reduce(0.0) { $0 + exp($1.0) * ($1.0 - $1.1) }
            if p.firstIndex(of: p.max()!) == q.firstIndex(of: q.max()!) { sameTop += 1 }
            let d = exp(q[targets[r]]) - exp(p[targets[r]])
            sumPDiff2 += d * d
        }
        kld /= Double(rows)
        print("mean KLD \(perturbed.meanKLD) vs direct \(kld); same top \(perturbed.sameTop) vs \(sameTop); RMS Δp \(perturbed.rmsPDiff) vs \((sumPDiff2 / Double(rows)).squareRoot())")
        #expect(abs(perturbed.meanKLD - kld) / kld < 1e-3)
        #expect(perturbed.sameTop == sameTop)
        #expect(abs(perturbed.rmsPDiff / (sumPDiff2 / Double(rows)).squareRoot() - 1) < 2e-4)
        #expect(perturbed.summaryLines.contains { $0.hasPrefix("Mean    KLD: ") })
        #expect(perturbed.summaryLines.contains { $0.hasPrefix("Same top p: ") })
    }

    /// Files that are not what their header says are refused with the reason, before anything is
    /// allocated from the header.
    @Test func hostileFilesAreRefused() throws {
        func header(context: Int32, vocabulary: Int32, chunks: Int32, magic: String = "_logits_") -> Data {
            var d = Data(magic.utf8)
            for v in [context, vocabulary, chunks] { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
            return d
        }
        let cases: [(Data, String)] = [
            (Data(), "not a file of log-probabilities"),
            (header(context: 16, vocabulary: 10, chunks: 1, magic: "_LOGITS_"), "not a file of log-probabilities"),
            (header(context: 0, vocabulary: 10, chunks: 1), "must be positive"),
            (header(context: 16, vocabulary: -1, chunks: 1), "must be positive"),
            (header(context: .max, vocabulary: .max, chunks: .max), "needs 9223372036854775807 bytes"),
            (header(context: 16, vocabulary: 10, chunks: 1) + Data(count: 64), "(truncated?)"),
            (header(context: 4, vocabulary: 2, chunks: 1) + Data([9, 0, 0, 0] + [UInt8](repeating: 0, count: 12 + 2 * 6)), "token 9 at position 0 is outside"),
        ]
        for (bytes, problem) in cases {
            let url = Self.temporaryFile()
            defer { try? FileManager.default.removeItem(at: url) }
            try bytes.write(to: url)
            do {
                _ = try LogProbabilityFile.Reader(path: url.path)
                Issue.record("accepted a bad file (\(problem))")
            } catch let failure as LogProbabilityFile.Failure {
                #expect(failure.problem.contains(problem), "\(failure.problem)")
            }
        }
    }

    struct References: Decodable {
        struct Figures: Decodable { let mean_kld: Double; let same_top: Double; let ppl_q: Double; let ppl_base: Double }
        let text: String, context: Int, chunks: Int
        let llama_cpp_q4_1_vs_f32: Figures
    }

    /// SmolLM2's Q4_1 file on Quill's int8 kernels against its fp32 run (the base file written and
    /// read back through llama.cpp's format), beside llama.cpp's own Q4_1 run against its F32
    /// copy of the file (Benchmarks/kld_vs_llamacpp.py --fixture). The kernels differ (Quill's
    /// Q4_1 × Q8 products are not llama.cpp's), so the figures are near, not equal. Measured on an
    /// AVX-512 machine: +2.6% mean KLD, +0.2 points same top p here (OpenBLAS's own kernel choice
    /// for the fp32 attention products), +6.5% and +0.6 points from `quill eval` (which picks
    /// OpenBLAS's SkylakeX kernels); held to 15% and 1.5 points.
    @Test func int8KernelsBesideLlamaCpp() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/kld-references", withExtension: "json"))
        let reference = try JSONDecoder().decode(References.self, from: Data(contentsOf: url))
        let file = try GGUFFile(path: QuillCache.defaultModel.path)
        let tokenizer = try Tokenizer(gguf: file)
        let fp32 = try LlamaModel(gguf: file, weights: .dense)
        let int8 = try LlamaModel(gguf: file, weights: .quantized, denseBatchThreshold: .max)
        let text = try String(contentsOf: QuillCache.root.appendingPathComponent("texts/\(reference.text)"), encoding: .utf8)
        let perplexity = Perplexity(context: reference.context, maxChunks: reference.chunks)
        let tokens = try perplexity.tokenize(text, tokenizer: tokenizer), bos = Perplexity.chunkBos(tokenizer)
        let url2 = Self.temporaryFile()
        defer { try? FileManager.default.removeItem(at: url2) }
        _ = try perplexity.measure(fp32, tokens: tokens, bos: bos, writingLogProbabilitiesTo: url2)
        let statistics = try Perplexity.klDivergence(int8, base: LogProbabilityFile.Reader(path: url2.path), bos: bos)
        let theirs = reference.llama_cpp_q4_1_vs_f32
        print(String(format: "Quill int8 vs fp32: mean KLD %.6f, same top p %.3f%%, PPL %.4f / %.4f; llama.cpp Q4_1 vs F32: %.6f, %.3f%%, %.4f / %.4f",
                     statistics.meanKLD, 100 * statistics.sameTopFraction, statistics.perplexity, statistics.basePerplexity,
                     theirs.mean_kld, theirs.same_top, theirs.ppl_q, theirs.ppl_base))
        #expect(statistics.count == reference.chunks * LogProbabilityFile.rowsPerChunk(context: reference.context))
        #expect(abs(statistics.basePerplexity - theirs.ppl_base) / theirs.ppl_base < 2e-4)
        #expect(abs(statistics.meanKLD - theirs.mean_kld) / theirs.mean_kld < 0.15)
        #expect(abs(100 * statistics.sameTopFraction - theirs.same_top) < 1.5)
    }
}
