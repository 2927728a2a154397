// What Swift's Glibc module does not reach: the allocator's thresholds (malloc.h).
#include "quill_kernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void quill_reuse_large_blocks(size_t bytes) {
#if defined(__GLIBC__)
    const int most = bytes > (32u << 20) ? 32 << 20 : (int)bytes;   // glibc refuses more than 32 MiB
    mallopt(M_MMAP_THRESHOLD, most);   // blocks up to `bytes` come from the heap...
    mallopt(M_TRIM_THRESHOLD, 2 * most);   // ...and its top is not handed back after each
#else
    (void)bytes;
#endif
}
