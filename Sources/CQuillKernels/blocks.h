// Shared by the kernel files, not exported: ggml's block layouts, f16 conversion, and the CPU
// check the dispatchers use.
#ifndef QUILL_BLOCKS_H
#define QUILL_BLOCKS_H

#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QUILL_X86 1
#define AVX2 __attribute__((target("avx2,fma,f16c")))
// AVX2 plus AVX-512 VNNI on 256-bit registers (vpdpbusd ymm)
#define VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))
#endif

// Block layouts (ggml-common.h): f16 fields are IEEE binary16 bit patterns.
typedef struct { uint16_t d; uint8_t qs[16]; } block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } block_q4_1;
typedef struct { uint16_t d; int8_t qs[32]; } block_q8_0;
typedef struct { uint16_t d, s; int8_t qs[32]; } block_q8_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
// super-blocks of 256 (k-quants): 8 sub-blocks of 32 with 6-bit scales and mins (Q4_K, Q5_K),
// or 16 of 16 with int8 scales (Q6_K); Q8_K keeps an fp32 scale and the sums of each 16 values
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } block_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } block_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } block_q6_K;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } block_q8_K;

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) bits = sign | 0x7F800000u | man << 13;
    else if (exp) bits = sign | (exp + 112) << 23 | man << 13;
    else if (!man) bits = sign;
    else { float f = (float)man * 5.9604644775390625e-8f; return sign ? -f : f; }
    float f; memcpy(&f, &bits, 4); return f;
}

// round to nearest even, as ggml's FP32_TO_FP16 on x86 (F16C)
static inline uint16_t float_to_half(float f) {
    uint32_t bits; memcpy(&bits, &f, 4);
    uint16_t sign = (bits >> 16) & 0x8000;
    int32_t exp = (bits >> 23) & 0xFF;
    uint32_t man = bits & 0x7FFFFF;
    if (exp == 0xFF) return sign | 0x7C00 | (man ? 0x200 | (man >> 13) : 0);
    int32_t e = exp - 127 + 15;
    if (e >= 0x1F) return sign | 0x7C00;
    if (e <= 0) {
        if (e < -10) return sign;
        man |= 0x800000;
        uint32_t shift = 14 - e, half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = (uint32_t)e << 10 | man >> 13, rem = man & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return sign | (uint16_t)half;
}

// The cache blocking every interleaved kernel shares (q4x8.c, q8x8.c, kx8.c): groups [begin, end)
// of group_bytes each in blocks of about 64 KB (they stay in L2 while every activation row meets
// them, instead of streaming a whole matrix from L3 or memory once per tile: 1.25x on a 1.5B
// model's prompts; blocks of 32-256 KB measure the same), the n activation rows in tiles of 16
// (in L1 while a tile meets the block's groups), each group against the widest run of rows that
// `widths` allows (bit w set: w rows at once; one row always) as rows(context, group, row, count).
typedef void (*tile_rows_fn)(void *context, int64_t group, int64_t row, int count);
static inline void for_each_tile(size_t group_bytes, int64_t begin, int64_t end, int64_t n, unsigned widths,
                                 tile_rows_fn rows, void *context) {
    const int64_t block = (int64_t)((64u << 10) / group_bytes) > 1 ? (int64_t)((64u << 10) / group_bytes) : 1, tile_rows = 16;
    for (int64_t first = begin; first < end; first += block)
    for (int64_t tile = 0; tile < n; tile += tile_rows) {
        const int64_t tile_end = n < tile + tile_rows ? n : tile + tile_rows, last = end < first + block ? end : first + block;
        for (int64_t g = first; g < last; g++) {
            for (int64_t i = tile; i < tile_end;) {
                int count = tile_end - i < 8 ? (int)(tile_end - i) : 8;
                while (count > 1 && !(widths >> count & 1)) count--;
                rows(context, g, i, count);
                i += count;
            }
        }
    }
}

#ifdef QUILL_X86
// AVX2 with FMA and F16C: what every fast kernel here needs.
static inline int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

// AVX-512 VNNI on 256-bit registers (vpdpbusd ymm): Ice Lake, Zen 4 and later
static inline int cpu_has_avx512_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
}

// the sum of 8 lanes
AVX2 static inline float hsum8(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

// 16 bytes of nibbles → 32 bytes: low nibbles (elements 0-15), then high nibbles (16-31)
AVX2 static inline __m256i unpack_nibbles(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs), mask = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), mask), _mm_and_si128(b, mask));
}
#endif

#endif
