// Matrix multiplication, the layer where nearly all the arithmetic happens.
// Legend: N = rows of the input (B*T tokens), C = input channels, OC = output channels.
// Weights are stored as checkpoints store them: [OC, C] row-major (a Linear's weight).

#if canImport(Accelerate)
import Accelerate
#else
import COpenBLAS
#endif

public enum Matmul {
    /// out[N, OC] = inp[N, C] · weight[OC, C]ᵀ (+ bias[OC]) on BLAS; sgemv when N == 1, since
    /// sgemm with one row is slow in OpenBLAS.
    public static func forward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                               _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                               n: Int, c: Int, oc: Int) {
        if n == 1 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(oc), Int32(c), 1, weight, Int32(c), inp, 1, 0, out, 1)
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(oc), Int32(c),
                        1, inp, Int32(c), weight, Int32(c), 0, out, Int32(oc))
        }
        if let bias {
            for i in 0..<n { for o in 0..<oc { out[i * oc + o] += bias[o] } }
        }
    }

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
