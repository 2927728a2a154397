// The layers' training passes: forwards that keep what their backward needs, and the backwards,
// each beside its forward. Gradients are accumulated (`+=`) into dinp / dweight buffers the
// caller zeroed, as in llm.c, so a tensor read by two layers (a tied embedding, the residual
// stream) simply receives both contributions. Legend: B = sequences, T = their length,
// N = B*T rows, C = channels, NH / NKV = query / key-value heads, HS = head size, V = vocabulary.

import CQuillKernels
import Foundation

extension Layers {
    // MARK: normalization

    /// RMSNorm that keeps rstd[N] = 1 / sqrt(mean(x²) + eps) for the backward.
    public static func rmsnormForward(_ out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                      _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, n: Int, c: Int, eps: Float,
                                      pool: ThreadPool = .shared) {
        forEachRowChunk(n, pool: pool) { rows in
            for i in rows {
                let row = x + i * c, o = out + i * c
                var sum: Float = 0
                for k in 0..<c { sum += row[k] * row[k] }
                let scale = 1 / (sum / Float(c) + eps).squareRoot()
                rstd[i] = scale
                for k in 0..<c { o[k] = row[k] * scale * weight[k] }
            }
        }
    }

    /// y = x · r · w with r = rstd: dw += Σ_rows dy · x · r; dx += r · (dy·w) − x · r³ / C · Σ_k dy·w·x.
    public static func rmsnormBackward(dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                                       dout: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                       rstd: UnsafePointer<Float>, n: Int, c: Int, pool: ThreadPool = .shared) {
        accumulatingRowChunks(n, width: dweight == nil ? 0 : c, pool: pool) { rows, dw in
            for i in rows {
                let row = x + i * c, dy = dout + i * c, d = dx + i * c, r = rstd[i]
                var dot: Float = 0
                for k in 0..<c { dot += dy[k] * weight[k] * row[k] }
                let correction = dot * r * r * r / Float(c)
                for k in 0..<c {
                    d[k] += r * dy[k] * weight[k] - row[k] * correction
                    dw?[k] += dy[k] * row[k] * r
                }
            }
        } reduce: { sum in
            for k in 0..<c { dweight![k] += sum[k] }
        }
    }

    /// LayerNorm that keeps mean[N] and rstd[N] for the backward.
    public static func layernormForward(_ out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                                        rstd: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                        _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                                        n: Int, c: Int, eps: Float, pool: ThreadPool = .shared) {
        forEachRowChunk(n, pool: pool) { rows in
            for i in rows {
                let row = x + i * c, o = out + i * c
                var m: Float = 0
                for k in 0..<c { m += row[k] }
                m /= Float(c)
                var variance: Float = 0
                for k in 0..<c { let d = row[k] - m; variance += d * d }
                let s = 1 / (variance / Float(c) + eps).squareRoot()
                mean[i] = m
                rstd[i] = s
                for k in 0..<c { o[k] = (row[k] - m) * s * weight[k] + bias[k] }
            }
        }
    }

    /// With x̂ = (x − mean) · rstd and g = dy · w: dx += rstd · (g − mean(g) − x̂ · mean(g · x̂));
    /// dw += Σ dy · x̂; db += Σ dy.
    public static func layernormBackward(dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                                         dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                         x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, n: Int, c: Int,
                                         pool: ThreadPool = .shared) {
        let trains = dweight != nil
        accumulatingRowChunks(n, width: trains ? 2 * c : 0, pool: pool) { rows, partial in
            for i in rows {
                let row = x + i * c, dy = dout + i * c, d = dx + i * c, m = mean[i], s = rstd[i]
                var meanG: Float = 0, meanGX: Float = 0
                for k in 0..<c {
                    let g = dy[k] * weight[k]
                    meanG += g
                    meanGX += g * (row[k] - m) * s
                }
                meanG /= Float(c)
                meanGX /= Float(c)
                for k in 0..<c {
                    let normed = (row[k] - m) * s
                    d[k] += s * (dy[k] * weight[k] - meanG - normed * meanGX)
                    if let partial {
                        partial[k] += dy[k] * normed
                        partial[c + k] += dy[k]
                    }
                }
            }
        } reduce: { sum in
            for k in 0..<c { dweight![k] += sum[k]; dbias?[k] += sum[c + k] }
        }
    }

    // MARK: position and activations

    /// The backward of `rope`: a rotation's transpose rotates by the opposite angle.
    public static func ropeBackward(_ dx: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, n: Int, heads: Int,
                                    headSize: Int, inverseFrequencies: [Float], pairing: RopePairing, attentionFactor: Float = 1) {
        let angles = RotaryAngles(positions: positions, n: n, inverseFrequencies: inverseFrequencies,
                                  attentionFactor: attentionFactor, direction: -1)
        rope(dx, angles: angles, heads: heads, headSize: headSize, pairing: pairing)
    }

    /// dgate, dup (overwritten) of out = silu(gate) · up.
    public static func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                                      dout: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                      count: Int, pool: ThreadPool = .shared) {
        forEachSpan(count, pool: pool) { from, length in
            quill_silu_mul_backward(dgate + from, dup + from, dout + from, gate + from, up + from, length)
        }
    }

    /// dgate, dup (overwritten) of out = gelu_tanh(gate) · up (Gemma's GeGLU).
    public static func gegluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                                     dout: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                     count: Int, pool: ThreadPool = .shared) {
        forEachSpan(count, pool: pool) { from, length in
            quill_gelu_mul_backward(dgate + from, dup + from, dout + from, gate + from, up + from, length)
        }
    }

    /// out = gelu_tanh(x), out of place (the backward needs x).
    public static func geluForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, pool: ThreadPool = .shared) {
        forEachSpan(count, pool: pool) { from, length in quill_gelu_tanh(out + from, x + from, length) }
    }

    /// dx += gelu_tanh'(x) · dout.
    public static func geluBackward(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                    count: Int, pool: ThreadPool = .shared) {
        forEachSpan(count, pool: pool) { from, length in quill_gelu_tanh_backward(dx + from, dout + from, x + from, length) }
    }

    // MARK: attention

    /// Causal self-attention of B sequences of T tokens for training: q [N, NH, HS], k and v
    /// [N, NKV, HS] (after RoPE); out [N, NH, HS]. Each (sequence, head) is two BLAS products
    /// around a masked softmax. The probabilities are not kept: the backward recomputes them
    /// (one more T×T×HS product per head, against B·NH·T² floats per layer held until then).
    /// Scores are scaled by `scale`, 1/√HS unless given (Gemma's `query_pre_attn_scalar`^-½).
    public static func causalAttentionForward(_ out: UnsafeMutablePointer<Float>,
                                              q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                              batch: Int, length t: Int, heads: Int, kvHeads: Int, headSize hs: Int,
                                              window: Int? = nil, scale: Float? = nil, pool: ThreadPool = .shared) {
        let group = heads / kvHeads, qDim = heads * hs, kvDim = kvHeads * hs
        pool.parallelFor(batch * heads) { unit in
            let b = unit / heads, h = unit % heads, kvh = h / group
            withUnsafeTemporaryAllocation(of: Float.self, capacity: t * t) { buffer in
                let p = buffer.baseAddress!
                attentionProbabilities(p, q: q + b * t * qDim + h * hs, k: k + b * t * kvDim + kvh * hs,
                                       length: t, headSize: hs, qStride: qDim, kvStride: kvDim, window: window, scale: scale)
                Matmul.gemm(out + b * t * qDim + h * hs, ldc: qDim, p, lda: t, v + b * t * kvDim + kvh * hs, ldb: kvDim,
                            m: t, n: hs, k: t, transposeB: false)
            }
        }
    }

    /// p[T, T] = the causal softmax of one head's scaled scores (zero above the diagonal and
    /// outside the window).
    static func attentionProbabilities(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                       length t: Int, headSize hs: Int, qStride: Int, kvStride: Int, window: Int?, scale: Float?) {
        Matmul.gemm(p, ldc: t, q, lda: qStride, k, ldb: kvStride, m: t, n: t, k: hs, alpha: scale ?? 1 / Float(hs).squareRoot(),
                    transposeB: true)
        for i in 0..<t {
            let row = p + i * t, first = window.map { max(0, i - $0 + 1) } ?? 0
            var maxScore = -Float.infinity
            for j in first...i { maxScore = max(maxScore, row[j]) }
            let inverse = 1 / quill_exp_sum(row + first, Int64(i - first + 1), maxScore)
            for j in 0..<first { row[j] = 0 }
            for j in first...i { row[j] *= inverse }
            for j in (i + 1)..<t { row[j] = 0 }
        }
    }

    /// The backward of `causalAttentionForward`: dq [N, NH, HS] is written; dk, dv [N, NKV, HS]
    /// are written too (the heads of a group add into their shared key / value head, so one
    /// parallel unit owns a (sequence, key-value head) pair). With S the scaled scores and P
    /// their softmax (recomputed): dP = dO·Vᵀ, dV = Pᵀ·dO, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
    /// dQ = dS·K·scale, dK = dSᵀ·Q·scale. With `out`, the forward's output P·V is written there
    /// too (the output projection's weight gradient needs it; recomputing it here costs one
    /// product per head instead of keeping [N, NH·HS] per layer).
    public static func causalAttentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                               dv: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>? = nil,
                                               dout: UnsafePointer<Float>,
                                               q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                               batch: Int, length t: Int, heads: Int, kvHeads: Int, headSize hs: Int,
                                               window: Int? = nil, scale: Float? = nil, pool: ThreadPool = .shared) {
        let group = heads / kvHeads, qDim = heads * hs, kvDim = kvHeads * hs
        let scale = scale ?? 1 / Float(hs).squareRoot()
        pool.parallelFor(batch * kvHeads) { unit in
            let b = unit / kvHeads, kvh = unit % kvHeads
            let kb = k + b * t * kvDim + kvh * hs, vb = v + b * t * kvDim + kvh * hs
            let dkb = dk + b * t * kvDim + kvh * hs, dvb = dv + b * t * kvDim + kvh * hs
            for i in 0..<t { for d in 0..<hs { dkb[i * kvDim + d] = 0; dvb[i * kvDim + d] = 0 } }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * t * t) { buffer in
                let p = buffer.baseAddress!, dp = p + t * t
                for h in (kvh * group)..<((kvh + 1) * group) {
                    let qb = q + b * t * qDim + h * hs, dqb = dq + b * t * qDim + h * hs, dob = dout + b * t * qDim + h * hs
                    attentionProbabilities(p, q: qb, k: kb, length: t, headSize: hs, qStride: qDim, kvStride: kvDim, window: window, scale: scale)
                    if let out {
                        Matmul.gemm(out + b * t * qDim + h * hs, ldc: qDim, p, lda: t, vb, ldb: kvDim, m: t, n: hs, k: t, transposeB: false)
                    }
                    Matmul.gemm(dp, ldc: t, dob, lda: qDim, vb, ldb: kvDim, m: t, n: t, k: hs, transposeB: true)
                    Matmul.gemm(dvb, ldc: kvDim, p, lda: t, dob, ldb: qDim, m: t, n: hs, k: t, beta: 1,
                                transposeA: true, transposeB: false)
                    for i in 0..<t {
                        let pr = p + i * t, dr = dp + i * t
                        var dot: Float = 0
                        for j in 0...i { dot += pr[j] * dr[j] }
                        for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) }
                        for j in (i + 1)..<t { dr[j] = 0 }
                    }
                    Matmul.gemm(dqb, ldc: qDim, dp, lda: t, kb, ldb: kvDim, m: t, n: hs, k: t, alpha: scale, transposeB: false)
                    Matmul.gemm(dkb, ldc: kvDim, dp, lda: t, qb, ldb: qDim, m: t, n: hs, k: t, alpha: scale, beta: 1,
                                transposeA: true, transposeB: false)
                }
            }
        }
    }

    /// The plain loops of `causalAttentionForward` (no BLAS, no window), in Double: its twin.
    public static func causalAttentionForwardReference(_ out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
                                                       q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                                       batch: Int, length t: Int, heads: Int, kvHeads: Int, headSize hs: Int) {
        let group = heads / kvHeads, qDim = heads * hs, kvDim = kvHeads * hs
        let scale = 1 / Double(hs).squareRoot()
        for b in 0..<batch { for h in 0..<heads {
            let kvh = h / group, p = probabilities + (b * heads + h) * t * t
            for i in 0..<t {
                var scores = [Double](repeating: 0, count: i + 1)
                for j in 0...i {
                    var dot = 0.0
                    for d in 0..<hs { dot += Double(q[(b * t + i) * qDim + h * hs + d]) * Double(k[(b * t + j) * kvDim + kvh * hs + d]) }
                    scores[j] = dot * scale
                }
                let m = scores.max()!
                let total = scores.reduce(0) { $0 + exp($1 - m) }
                for j in 0..<t { p[i * t + j] = j <= i ? Float(exp(scores[j] - m) / total) : 0 }
                for d in 0..<hs {
                    var sum = 0.0
                    for j in 0...i { sum += Double(p[i * t + j]) * Double(v[(b * t + j) * kvDim + kvh * hs + d]) }
                    out[(b * t + i) * qDim + h * hs + d] = Float(sum)
                }
            }
        } }
    }

    // MARK: loss

    /// Softmax cross-entropy of logits [N, V] against targets [N] (negative = ignored), divided
    /// by `normalizer` (the number of target tokens of the whole optimizer step, so micro-batches
    /// add up to one mean). Overwrites the logits with dloss/dlogits and returns the rows' summed
    /// loss (undivided, in Double) and the count of targets seen.
    public static func crossEntropyBackward(_ logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>,
                                            n: Int, vocabulary v: Int, normalizer: Float,
                                            pool: ThreadPool = .shared) -> (loss: Double, count: Int) {
        let chunks = min(n, pool.threads * 4)
        var losses = [Double](repeating: 0, count: chunks), counts = [Int](repeating: 0, count: chunks)
        losses.withUnsafeMutableBufferPointer { lossBuffer in
            counts.withUnsafeMutableBufferPointer { countBuffer in
                pool.parallelFor(chunks) { chunk in
                    for i in (n * chunk / chunks)..<(n * (chunk + 1) / chunks) {
                        let row = logits + i * v, target = Int(targets[i])
                        guard target >= 0 else { for j in 0..<v { row[j] = 0 }; continue }
                        var maxLogit = -Float.infinity
                        for j in 0..<v { maxLogit = max(maxLogit, row[j]) }
                        let picked = row[target]
                        let sum = quill_exp_sum(row, Int64(v), maxLogit)
                        lossBuffer[chunk] += Double(log(sum)) + Double(maxLogit) - Double(picked)
                        countBuffer[chunk] += 1
                        let factor = 1 / (sum * normalizer)
                        for j in 0..<v { row[j] *= factor }
                        row[target] -= 1 / normalizer
                    }
                }
            }
        }
        return (losses.reduce(0, +), counts.reduce(0, +))
    }

    /// dtable[V, C] += the rows of dout [N, C] at their tokens (an embedding lookup's backward).
    public static func embeddingBackward(_ dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                         tokens: UnsafePointer<Int32>, n: Int, c: Int) {
        for i in 0..<n {
            let row = dtable + Int(tokens[i]) * c, d = dout + i * c
            for k in 0..<c { row[k] += d[k] }
        }
    }

    // MARK: parallel helpers

    /// body(rows) over N rows split into a few chunks per thread.
    static func forEachRowChunk(_ n: Int, pool: ThreadPool, _ body: (Range<Int>) -> Void) {
        let chunks = min(n, pool.threads * 4)
        guard chunks > 1 else { return body(0..<n) }
        pool.parallelFor(chunks) { chunk in body((n * chunk / chunks)..<(n * (chunk + 1) / chunks)) }
    }

    /// body(from, length) over `count` elements in spans of whole 64-element pieces, a few per
    /// thread (the elementwise C kernels).
    static func forEachSpan(_ count: Int, pool: ThreadPool, _ body: (Int, Int64) -> Void) {
        forEachRowChunk(count / 64 + 1, pool: pool) { pieces in
            let from = pieces.lowerBound * 64, to = min(count, pieces.upperBound * 64)
            if from < to { body(from, Int64(to - from)) }
        }
    }

    /// Row chunks that each sum into their own zeroed partial [width], then `reduce` gets the
    /// partials' sum. A chunk per thread, so the sums do not depend on timing.
    static func accumulatingRowChunks(_ n: Int, width: Int, pool: ThreadPool,
                                      _ body: (Range<Int>, UnsafeMutablePointer<Float>?) -> Void,
                                      reduce: (UnsafePointer<Float>) -> Void) {
        let chunks = max(1, min(n, pool.threads))
        var partials = [Float](repeating: 0, count: chunks * width)
        partials.withUnsafeMutableBufferPointer { buffer in
            pool.parallelFor(chunks) { chunk in
                body((n * chunk / chunks)..<(n * (chunk + 1) / chunks), width == 0 ? nil : buffer.baseAddress! + chunk * width)
            }
            guard width > 0 else { return }
            let sum = buffer.baseAddress!
            for chunk in 1..<max(1, chunks) { for k in 0..<width { sum[k] += sum[chunk * width + k] } }
            reduce(sum)
        }
    }
}
