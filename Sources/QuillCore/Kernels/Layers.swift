// Forward passes of the layers Llama-family and GPT-2 models share, over contiguous Float
// buffers (backward passes join them with training). Legend: N = tokens (B*T), C = channels,
// NH = query heads, NKV = key/value heads, HS = head size, V = vocabulary.

import CQuillKernels
import Foundation

public enum Layers {
    /// x = cap · tanh(x / cap) in place: logit soft-capping (Gemma's `final_logit_softcapping`).
    public static func softcap(_ x: UnsafeMutableBufferPointer<Float>, cap: Float) {
        for i in x.indices { x[i] = cap * tanh(x[i] / cap) }
    }

    /// RMSNorm: out[N, C] = x / sqrt(mean(x²) + eps) · weight
    public static func rmsnorm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                               _ weight: UnsafePointer<Float>, n: Int, c: Int, eps: Float) {
        for i in 0..<n {
            let row = x + i * c, o = out + i * c
            let scale = 1 / (sumOfSquares(row, count: c) / Float(c) + eps).squareRoot()
            for k in 0..<c { o[k] = row[k] * scale * weight[k] }
        }
    }

    /// Σ x² in eight lanes, then across them (a serial Float sum does not vectorize).
    @inline(__always) static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD8<Float>.zero, k = 0
        while k + 8 <= count {
            let v = UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self)
            lanes += v * v
            k += 8
        }
        var sum = lanes.sum()
        while k < count { sum += x[k] * x[k]; k += 1 }
        return sum
    }

    /// LayerNorm: out[N, C] = (x - mean) / sqrt(var + eps) · weight + bias
    public static func layernorm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                 _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                                 n: Int, c: Int, eps: Float) {
        for i in 0..<n {
            let row = x + i * c, o = out + i * c
            var mean: Float = 0
            for k in 0..<c { mean += row[k] }
            mean /= Float(c)
            var variance: Float = 0
            for k in 0..<c { let d = row[k] - mean; variance += d * d }
            let scale = 1 / (variance / Float(c) + eps).squareRoot()
            for k in 0..<c { o[k] = (row[k] - mean) * scale * weight[k] + bias[k] }
        }
    }

    /// How a head's channels pair up for rotation.
    public enum RopePairing: Sendable {
        /// (x[2i], x[2i+1]): GGUF `llama` files, whose q/k rows were permuted for it.
        case adjacent
        /// (x[i], x[i + HS/2]): Hugging Face's rotate_half, GPT-NeoX, Qwen2 GGUF.
        case halves
    }

    /// The rotation angles of N rows: cos and sin of position · frequency for each of HS/2 pairs,
    /// times the attention factor. Computed once per forward pass, they serve q and k of every
    /// layer that rotates with the same frequencies.
    public struct RotaryAngles: Sendable {
        public let rows: Int, pairs: Int
        var cosine: [Float], sine: [Float]   // [N, HS/2]

        /// `direction` -1 gives the opposite angles (the transpose: RoPE's backward).
        public init(positions: UnsafePointer<Int32>, n: Int, inverseFrequencies: [Float], attentionFactor: Float = 1,
                    direction: Float = 1) {
            rows = n; pairs = inverseFrequencies.count
            cosine = [Float](repeating: 0, count: n * pairs); sine = cosine
            for i in 0..<n {
                let pos = Float(positions[i])
                for j in 0..<pairs {
                    let angle = pos * inverseFrequencies[j]
                    cosine[i * pairs + j] = Float(cos(Double(angle))) * attentionFactor
                    sine[i * pairs + j] = direction * Float(sin(Double(angle))) * attentionFactor
                }
            }
        }
    }

    /// Rotary position embedding in place on x[N, heads, HS]; `inverseFrequencies` has HS/2
    /// entries (scaling already applied), `positions` one per row.
    public static func rope(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, n: Int, heads: Int,
                            headSize: Int, inverseFrequencies: [Float], pairing: RopePairing, attentionFactor: Float = 1) {
        let angles = RotaryAngles(positions: positions, n: n, inverseFrequencies: inverseFrequencies, attentionFactor: attentionFactor)
        rope(x, angles: angles, heads: heads, headSize: headSize, pairing: pairing)
    }

    /// Rotates each pair of x[N, heads, HS] by its row's angles.
    public static func rope(_ x: UnsafeMutablePointer<Float>, angles: RotaryAngles, heads: Int, headSize: Int, pairing: RopePairing) {
        let half = headSize / 2
        precondition(angles.pairs == half, "rotary angles for \(angles.pairs) pairs, heads of \(headSize)")
        angles.cosine.withUnsafeBufferPointer { cosines in
            angles.sine.withUnsafeBufferPointer { sines in
                for i in 0..<angles.rows {
                    let cosine = cosines.baseAddress! + i * half, sine = sines.baseAddress! + i * half
                    for h in 0..<heads {
                        let v = x + (i * heads + h) * headSize
                        for j in 0..<half {
                            let (a, b) = pairing == .adjacent ? (2 * j, 2 * j + 1) : (j, j + half)
                            let x0 = v[a], x1 = v[b]
                            v[a] = x0 * cosine[j] - x1 * sine[j]
                            v[b] = x0 * sine[j] + x1 * cosine[j]
                        }
                    }
                }
            }
        }
    }

    /// SiLU-gated MLP activation: out = silu(gate) · up, over count elements.
    public static func swiglu(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                              _ up: UnsafePointer<Float>, count: Int) {
        quill_silu_mul(out, gate, up, Int64(count))   // AVX2 exponentials; twin quill_silu_mul_ref
    }

    /// GELU-gated MLP activation (Gemma's GeGLU): out = gelu(gate) · up, GELU's tanh form.
    public static func geglu(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                             _ up: UnsafePointer<Float>, count: Int) {
        quill_gelu_mul(out, gate, up, Int64(count))   // AVX2 exponentials; twin quill_gelu_mul_ref
    }

    /// Causal attention for one sequence over its KV cache.
    /// q[N, NH, HS] for positions start..<start+N; keys/values[ctx, NKV, HS] hold positions
    /// 0..<start+N; out[N, NH, HS]. Query head h reads key/value head h / (NH / NKV).
    /// `window` limits each query to the last `window` positions (Mistral's sliding window).
    /// Heads run in parallel on the pool; the scalar twin is `attentionReference`.
    public static func attention(_ out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                 keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                 start: Int, n: Int, heads: Int, kvHeads: Int, headSize: Int,
                                 window: Int? = nil, pool: ThreadPool = .shared) {
        // attention is the only layer that mixes information across time
        if n >= 16 {
            return blockedAttention(out, q: q, keys: keys, values: values, start: start, n: n, heads: heads,
                                    kvHeads: kvHeads, headSize: headSize, window: window, pool: pool)
        }
        let group = heads / kvHeads
        let scale = 1 / Float(headSize).squareRoot()
        let kvStride = kvHeads * headSize
        pool.parallelFor(heads) { h in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: start + n) { scores in
                let kvh = h / group
                for i in 0..<n {
                    let last = start + i
                    let first = window.map { max(0, last - $0 + 1) } ?? 0
                    quill_attend_one(q + (i * heads + h) * headSize, keys + first * kvStride + kvh * headSize,
                                     values + first * kvStride + kvh * headSize, kvStride, Int64(last - first + 1),
                                     Int64(headSize), scale, scores.baseAddress!, out + (i * heads + h) * headSize)
                }
            }
        }
    }

    /// One decoding step of several sequences: row b of q [B, NH, HS] attends over its own
    /// cache, `keys[b]` / `values[b]` holding positions 0...positions[b]. All (sequence, head)
    /// pairs share one parallel loop: a loop per sequence would be too small to split.
    public static func decodeAttention(_ out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                       keys: [UnsafePointer<Float>], values: [UnsafePointer<Float>], positions: [Int],
                                       heads: Int, kvHeads: Int, headSize: Int, window: Int? = nil, pool: ThreadPool = .shared) {
        let group = heads / kvHeads, qStride = heads * headSize
        let scale = 1 / Float(headSize).squareRoot()
        let kvStride = kvHeads * headSize
        let longest = (positions.max() ?? 0) + 1
        pool.parallelFor(positions.count * heads) { unit in
            let b = unit / heads, h = unit % heads, kvh = h / group
            let last = positions[b]
            let first = window.map { max(0, last - $0 + 1) } ?? 0
            withUnsafeTemporaryAllocation(of: Float.self, capacity: longest) { scores in
                quill_attend_one(q + b * qStride + h * headSize, keys[b] + first * kvStride + kvh * headSize,
                                 values[b] + first * kvStride + kvh * headSize, kvStride, Int64(last - first + 1),
                                 Int64(headSize), scale, scores.baseAddress!, out + b * qStride + h * headSize)
            }
        }
    }

    /// Attention for a prompt: blocks of 64 queries of one head, each as two BLAS products
    /// (scores = Q·Kᵀ over the keys the block can see, then P·V) around a masked softmax.
    /// Q, K and V are read in place as strided views of the per-token rows.
    static func blockedAttention(_ out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                 keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                 start: Int, n: Int, heads: Int, kvHeads: Int, headSize: Int,
                                 window: Int?, pool: ThreadPool) {
        let group = heads / kvHeads, block = 64, blocks = (n + block - 1) / block
        let scale = 1 / Float(headSize).squareRoot()
        let kvStride = kvHeads * headSize, qStride = heads * headSize
        // the last blocks see the most keys: hand them out first
        pool.parallelFor(heads * blocks) { unit in
            let b = blocks - 1 - unit / heads, h = unit % heads, kvh = h / group
            let i0 = b * block, rows = min(n, i0 + block) - i0
            let last = start + i0 + rows - 1                      // the block's last position
            let first = window.map { max(0, start + i0 - $0 + 1) } ?? 0
            let span = last - first + 1
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * span) { buffer in
                let scores = buffer.baseAddress!
                Matmul.gemm(scores, ldc: span, q + i0 * qStride + h * headSize, lda: qStride,
                            keys + first * kvStride + kvh * headSize, ldb: kvStride,
                            m: rows, n: span, k: headSize, alpha: scale, transposeB: true)
                for r in 0..<rows {
                    let position = start + i0 + r
                    let from = (window.map { max(0, position - $0 + 1) } ?? 0) - first, to = position - first
                    let row = scores + r * span
                    var maxScore = -Float.infinity
                    for t in from...to { maxScore = max(maxScore, row[t]) }
                    let inverse = 1 / quill_exp_sum(row + from, Int64(to - from + 1), maxScore)
                    for t in 0..<from { row[t] = 0 }
                    for t in from...to { row[t] *= inverse }
                    for t in (to + 1)..<span { row[t] = 0 }
                }
                Matmul.gemm(out + i0 * qStride + h * headSize, ldc: qStride, scores, lda: span,
                            values + first * kvStride + kvh * headSize, ldb: kvStride,
                            m: rows, n: headSize, k: span, transposeB: false)
            }
        }
    }

    /// The plain loop: an algorithmic reference for `attention`, and the fallback for odd head sizes.
    public static func attentionReference(_ out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                          keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                          start: Int, n: Int, heads: Int, kvHeads: Int, headSize: Int,
                                          window: Int? = nil) {
        let group = heads / kvHeads
        let scale = 1 / Float(headSize).squareRoot()
        let kvStride = kvHeads * headSize
        var scores = [Float](repeating: 0, count: start + n)
        for i in 0..<n {
            let last = start + i
            let first = window.map { max(0, last - $0 + 1) } ?? 0
            for h in 0..<heads {
                let qh = q + (i * heads + h) * headSize
                let kvh = h / group
                var maxScore = -Float.infinity
                for t in first...last {
                    let k = keys + t * kvStride + kvh * headSize
                    var dot: Float = 0
                    for d in 0..<headSize { dot += qh[d] * k[d] }
                    scores[t] = dot * scale
                    maxScore = max(maxScore, scores[t])
                }
                var sum: Float = 0
                for t in first...last { scores[t] = exp(scores[t] - maxScore); sum += scores[t] }
                let o = out + (i * heads + h) * headSize
                for d in 0..<headSize { o[d] = 0 }
                for t in first...last {
                    let p = scores[t] / sum
                    let v = values + t * kvStride + kvh * headSize
                    for d in 0..<headSize { o[d] += p * v[d] }
                }
            }
        }
    }
}
