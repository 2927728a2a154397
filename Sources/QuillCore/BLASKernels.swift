import CQuillKernels
import Foundation

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
}
