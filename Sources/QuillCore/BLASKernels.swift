import CQuillKernels
import Foundation
#if canImport(COpenBLAS)
import COpenBLAS
#endif

/// Which of OpenBLAS's kernel sets suits this CPU. OpenBLAS reads `OPENBLAS_CORETYPE` once, when
/// the library loads, so the choice has to be made in the environment before the process
/// starts: the `quill` executable re-executes itself once with it set (see `Quill.main`).
/// On Zen 4/5 and recent Intel CPUs the AVX-512 kernels (SkylakeX) run sgemm about twice as
/// fast as the AVX2 ones (Haswell) that environments often pin for safety.
public enum BLASKernels {
    /// The core type to ask for, or nil to leave OpenBLAS's own choice (no AVX-512, or not Linux).
    public static var preferredCoreType: String? {
        #if os(Linux) && arch(x86_64)
        return quill_cpu_has_avx512() != 0 ? "SkylakeX" : nil
        #else
        return nil
        #endif
    }

    /// The BLAS library and the kernel set it runs ("OpenBLAS 0.3.21 ... (SkylakeX kernels)").
    public static var description: String {
        #if canImport(COpenBLAS)
        let config = openblas_get_config().map { String(cString: $0).trimmingCharacters(in: .whitespaces) } ?? "OpenBLAS"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return "\(config) (\(core) kernels)"
        #else
        return "Accelerate"
        #endif
    }

    /// The instruction sets Quill's own kernels run on here: row products, and the interleaved
    /// int8 kernels of Q4_0/Q4_1, Q8_0/Q5_0 and Q4_K/Q6_K (prompts and batches).
    public static var quillKernels: String {
        let rows = String(cString: quill_kernel_isa())
        let interleaved = [quill_q4x8_isa(), quill_q8x8_isa(), quill_kx8_isa()].map { String(cString: $0) }
        return "row products \(rows); interleaved int8 tiles \(Set(interleaved).sorted().joined(separator: ", "))"
    }
}
