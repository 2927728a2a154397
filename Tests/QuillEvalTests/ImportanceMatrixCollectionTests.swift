import Foundation
import Testing
import QuillCore
import QuillFormats
import QuillModels
import QuillTokenizers
@testable import QuillEval

/// `quill eval --imatrix` (llama-imatrix's protocol) on SmolLM2. Against llama-imatrix itself:
/// Tests/FormatChecks/check_imatrix.py.
struct ImportanceMatrixCollectionTests {
    /// Two chunks of 32 tokens: an entry for every weight product of every block with the token
    /// count, one input shared by q, k and v (and by gate and up), and the first layer's attention
    /// input equal to RMSNorm of the embedding rows computed here directly.
    @Test func sumsTheSquaresOfEveryProductsInput() throws {
        let file = try GGUFFile(path: QuillCache.defaultModel.path)
        let model = try LlamaModel(gguf: file, weights: .dense), tokenizer = try Tokenizer(gguf: file)
        let context = 32, config = model.config, c = config.hiddenSize
        let perplexity = Perplexity(context: context, maxChunks: 2)
        let text = String(repeating: "Friends, Romans, countrymen, lend me your ears; 朋友们，罗马人，同胞们。 ", count: 8)
        let tokens = try perplexity.tokenize(text, tokenizer: tokenizer), bos = Perplexity.chunkBos(tokenizer)
        var seen: [Int] = []
        let matrix = try perplexity.importanceMatrix(model, tokens: tokens, bos: bos, datasets: ["test"]) { done, _ in seen.append(done) }
        #expect(seen == [1, 2] && matrix.chunkCount == 2 && matrix.chunkSize == context && matrix.datasets == ["test"])

        let kinds = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        let products = Set(file.tensors.map(\.name).filter { name in name.hasPrefix("blk.") && kinds.contains { name.contains(".\($0).") } })
        #expect(Set(matrix.entries.keys) == products && products.count == 7 * config.layers)
        for (name, entry) in matrix.entries {
            #expect(entry.counts == [Int64(2 * context)], "\(name)")
            #expect(entry.sums.count == file.tensor(named: name)?.dimensions[0], "\(name): one sum per column")
        }
        for l in 0..<config.layers {
            let q = matrix.entries["blk.\(l).attn_q.weight"]!.sums
            #expect(q == matrix.entries["blk.\(l).attn_k.weight"]!.sums && q == matrix.entries["blk.\(l).attn_v.weight"]!.sums)
            #expect(matrix.entries["blk.\(l).ffn_gate.weight"]!.sums == matrix.entries["blk.\(l).ffn_up.weight"]!.sums)
        }

        // layer 0's q input: RMSNorm(embedding row) × attn_norm, squared and summed over both chunks
        let embedding = try #require(file.tensor(named: "token_embd.weight")), norm = try #require(file.tensor(named: "blk.0.attn_norm.weight"))
        let normWeight = Dequantize.array(norm.type, file.data(of: norm), count: c)
        let rowBytes = embedding.type.byteCount(c)
        var expected = [Double](repeating: 0, count: c)
        for chunk in 0..<2 {
            var input = Array(tokens[(chunk * context)..<((chunk + 1) * context)])
            if let bos { input[0] = bos }
            for t in input {
                var row = [Float](repeating: 0, count: c)
                Dequantize.row(embedding.type, from: file.data(of: embedding).baseAddress! + Int(t) * rowBytes, into: &row, count: c)
                let meanSquare = row.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(c)
                let scale = 1 / (meanSquare + Double(config.rmsNormEpsilon)).squareRoot()
                for j in 0..<c { let x = Double(row[j]) * scale * Double(normWeight[j]); expected[j] += x * x }
            }
        }
        let got = matrix.entries["blk.0.attn_q.weight"]!.sums
        let error = zip(got, expected).reduce(0.0) { $0 + abs(Double($1.0) - $1.1) } / expected.reduce(0, +)
        print(String(format: "blk.0.attn_q.weight: sums within %.2e of a direct computation (relative L1)", error))
        #expect(error < 1e-6)   // measured 1.35e-7 (the direct sums in fp64)
    }
}
