// Matrix multiplication, the layer where nearly all the arithmetic happens.
// Legend: N = rows of the input (B*T tokens), C = input channels, OC = output channels.
// Weights are stored as checkpoints store them: [OC, C] row-major (a Linear's weight).
//
// BLAS runs single-threaded and our pool splits the output channels: one set of threads for
// the whole engine. Letting OpenBLAS start its own threads beside the pool's made the two fight
// for the same 2 cores (a tenth of prefill went to the scheduler).

#if canImport(Accelerate)
import Accelerate
#else
import COpenBLAS
#endif

public enum Matmul {
    /// out[N, OC] = inp[N, C] · weight[OC, C]ᵀ (+ bias[OC]), output channels split over the pool.
    public static func forward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                               _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                               n: Int, c: Int, oc: Int, pool: ThreadPool = .shared) {
        forEachSlice(oc: oc, n: n, c: c, pool: pool) { rows in
            product(out + rows.lowerBound, ldOut: oc, inp, weight + rows.lowerBound * c, bias.map { $0 + rows.lowerBound },
                    n: n, c: c, oc: rows.count)
        }
    }

    /// Splits OC into slices of whole 16-row groups and runs `body` on each in parallel: one per
    /// thread once the other side has 128+ rows (each slice packs that whole side again in
    /// BLAS), a few per thread below, two for a single row. Small products stay on the calling
    /// thread.
    public static func forEachSlice(oc: Int, n: Int, c: Int, pool: ThreadPool = .shared, _ body: (Range<Int>) -> Void) {
        let work = n * c * oc
        let slices = work < 1 << 16 ? 1 : min(pool.threads * (n == 1 ? 2 : n >= 128 ? 1 : 4), max(1, oc / 16))
        pool.parallelFor(slices) { s in
            let begin = oc * s / slices / 16 * 16, end = s == slices - 1 ? oc : oc * (s + 1) / slices / 16 * 16
            if begin < end { body(begin..<end) }
        }
    }

    /// One single-threaded BLAS product into a strided output: out[i, o] (row stride ldOut) =
    /// inp[N, C] · weight[OC, C]ᵀ + bias. Safe to call from inside a pool job.
    public static func product(_ out: UnsafeMutablePointer<Float>, ldOut: Int, _ inp: UnsafePointer<Float>,
                               _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, n: Int, c: Int, oc: Int) {
        _ = singleThreaded
        if n == 1 {   // sgemm with one row is slow in OpenBLAS
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(oc), Int32(c), 1, weight, Int32(c), inp, 1, 0, out, 1)
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(oc), Int32(c),
                        1, inp, Int32(c), weight, Int32(c), 0, out, Int32(ldOut))
        }
        if let bias {
            for i in 0..<n { for o in 0..<oc { out[i * ldOut + o] += bias[o] } }
        }
    }

    /// C[M, N] = alpha · op(A) · op(B) + beta · C with leading dimensions, single-threaded:
    /// op(A) is A[K, M]ᵀ when `transposeA`, else A[M, K]; op(B) is B[N, K]ᵀ when `transposeB`,
    /// else B[K, N]. For attention's blocks, where Q, K and V are strided views of the per-token
    /// rows, and for the slices of backward products.
    public static func gemm(_ cOut: UnsafeMutablePointer<Float>, ldc: Int, _ a: UnsafePointer<Float>, lda: Int,
                            _ b: UnsafePointer<Float>, ldb: Int, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0,
                            transposeA: Bool = false, transposeB: Bool) {
        _ = singleThreaded
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, cOut, Int32(ldc))
    }

    /// The gradients of `forward`, accumulated: dinp[N, C] += dout[N, OC] · weight[OC, C];
    /// dweight[OC, C] += doutᵀ · inp; dbias[OC] += Σ_rows dout. A nil destination is skipped
    /// (a frozen weight has no dweight). Rows of dinp and of dweight are split over the pool.
    /// `scale` multiplies every gradient (a LoRA adapter's s = α / r).
    public static func backward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                                dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                n: Int, c: Int, oc: Int, pool: ThreadPool = .shared, scale: Float = 1) {
        if let dinp {
            forEachSlice(oc: n, n: oc, c: c, pool: pool) { rows in
                gemm(dinp + rows.lowerBound * c, ldc: c, dout + rows.lowerBound * oc, lda: oc, weight, ldb: c,
                     m: rows.count, n: c, k: oc, alpha: scale, beta: 1, transposeB: false)
            }
        }
        if let dweight {
            forEachSlice(oc: oc, n: n, c: c, pool: pool) { rows in
                gemm(dweight + rows.lowerBound * c, ldc: c, dout + rows.lowerBound, lda: oc, inp, ldb: c,
                     m: rows.count, n: c, k: n, alpha: scale, beta: 1, transposeA: true, transposeB: false)
                if let dbias {
                    for o in rows {
                        var sum: Float = 0
                        for i in 0..<n { sum += dout[i * oc + o] }
                        dbias[o] += sum * scale
                    }
                }
            }
        } else if let dbias {
            for i in 0..<n { for o in 0..<oc { dbias[o] += dout[i * oc + o] * scale } }
        }
    }

    /// The plain loops of `backward`, in Double: its reference twin.
    public static func backwardReference(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                                         dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                         inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, n: Int, c: Int, oc: Int) {
        if let dinp {
            for i in 0..<n { for k in 0..<c {
                var sum = 0.0
                for o in 0..<oc { sum += Double(dout[i * oc + o]) * Double(weight[o * c + k]) }
                dinp[i * c + k] += Float(sum)
            } }
        }
        if let dweight {
            for o in 0..<oc { for k in 0..<c {
                var sum = 0.0
                for i in 0..<n { sum += Double(dout[i * oc + o]) * Double(inp[i * c + k]) }
                dweight[o * c + k] += Float(sum)
            } }
        }
        if let dbias {
            for o in 0..<oc {
                var sum = 0.0
                for i in 0..<n { sum += Double(dout[i * oc + o]) }
                dbias[o] += Float(sum)
            }
        }
    }

    private static let singleThreaded: Void = {
        #if !canImport(Accelerate)
        openblas_set_num_threads(1)
        #endif
    }()

    /// The plain loop, as an algorithmic reference for `forward` (accumulates in Double).
    public static func reference(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                                 _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                 n: Int, c: Int, oc: Int) {
        for i in 0..<n {
            for o in 0..<oc {
                var sum = Double(bias?[o] ?? 0)
                for k in 0..<c { sum += Double(inp[i * c + k]) * Double(weight[o * c + k]) }
                out[i * oc + o] = Float(sum)
            }
        }
    }
}
