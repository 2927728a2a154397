import CQuillKernels

/// How the process's allocator treats large blocks.
public enum ProcessMemory {
    /// Keeps freed large blocks (up to `bytes` each, 32 MiB at most) in the heap for the next
    /// allocation instead of handing them back to the kernel. Scoring allocates the same
    /// activations for every chunk; returned to the kernel, every page of them is faulted in and
    /// zeroed again each time (page faults are dear in a virtual machine). Peak memory is
    /// unchanged: the blocks are the ones the next chunk needs. glibc only; elsewhere nothing.
    public static func reuseLargeBlocks(upTo bytes: Int = 32 << 20) {
        quill_reuse_large_blocks(bytes)
    }
}
