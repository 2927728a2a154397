// Q4_0 and Q4_1 weights repacked eight rows at a time, for decoding. In the file each row's
// blocks lie one after another, so a dot product ends with a horizontal sum per row and per
// block scale conversions; interleaved, one 256-bit register holds four elements of each of eight
// rows, the activation's four matching int8 values are broadcast, and a block of eight rows
// costs 8 byte-multiplies, one widening, and one vector of scales: a third of the instructions.
//
//   block_q4x8 (160 bytes = eight 20-byte Q4_1 blocks): f16 d[8], f16 m[8], qs[128] where
//   qs[32k + 4r + j] = row r's qs[4k + j] (k, j < 4): low nibble element 4k+j, high 16+4k+j.
//
// Q4_0 (x = d·(q-8)) keeps m unused and subtracts 8·Σy in the integer sum, exactly as its row
// kernel does. Activations are Q8_1 blocks (d, s = d·Σq, int8 q[32]).
#include "quill_kernels.h"
#include "blocks.h"
#include <math.h>

typedef struct { uint16_t d[8], m[8]; uint8_t qs[128]; } block_q4x8;

void quill_repack_q4x8(int type, const void *src, size_t row_bytes, int64_t groups, int64_t cols, void *dst) {
    const int64_t nb = cols / 32;
    const size_t block_bytes = type == QUILL_Q4_1 ? 20 : 18, qs_offset = type == QUILL_Q4_1 ? 4 : 2;
    block_q4x8 *out = dst;
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t b = 0; b < nb; b++) {
            block_q4x8 *o = out + g * nb + b;
            for (int r = 0; r < 8; r++) {
                const uint8_t *blk = (const uint8_t *)src + (size_t)(g * 8 + r) * row_bytes + (size_t)b * block_bytes;
                memcpy(&o->d[r], blk, 2);
                if (type == QUILL_Q4_1) memcpy(&o->m[r], blk + 2, 2); else o->m[r] = 0;
                for (int k = 0; k < 4; k++) memcpy(o->qs + 32 * k + 4 * r, blk + qs_offset + 4 * k, 4);
            }
        }
    }
}

void quill_dequantize_q4x8(const void *w, int64_t cols, int centered, float *out) {
    const block_q4x8 *x = w;
    for (int64_t b = 0; b < cols / 32; b++) {
        for (int r = 0; r < 8; r++) {
            const float d = half_to_float(x[b].d[r]), m = half_to_float(x[b].m[r]);
            float *y = out + r * cols + b * 32;
            for (int k = 0; k < 4; k++) {
                for (int j = 0; j < 4; j++) {
                    const uint8_t q = x[b].qs[32 * k + 4 * r + j];
                    if (centered) { y[4 * k + j] = (float)((q & 0x0F) - 8) * d; y[16 + 4 * k + j] = (float)((q >> 4) - 8) * d; }
                    else { y[4 * k + j] = d * (float)(q & 0x0F) + m; y[16 + 4 * k + j] = d * (float)(q >> 4) + m; }
                }
            }
        }
    }
}

// --- plain twin: the same sums in the same order ----------------------------------------------

void quill_gemv_q4x8_ref(const void *w, const void *vy, int64_t cols, int centered, float *out) {
    const block_q4x8 *x = w; const block_q8_1 *y = vy;
    float acc[8] = {0};
    for (int64_t b = 0; b < cols / 32; b++) {
        int ysum = 0;
        for (int j = 0; j < 32; j++) ysum += y[b].qs[j];
        const float dy = half_to_float(y[b].d), sy = half_to_float(y[b].s);
        for (int r = 0; r < 8; r++) {
            int s = 0;
            for (int k = 0; k < 4; k++) {
                for (int j = 0; j < 4; j++) {
                    const uint8_t q = x[b].qs[32 * k + 4 * r + j];
                    s += (q & 0x0F) * y[b].qs[4 * k + j] + (q >> 4) * y[b].qs[16 + 4 * k + j];
                }
            }
            if (centered) s -= 8 * ysum;
            acc[r] = fmaf(half_to_float(x[b].d[r]) * dy, (float)s, acc[r]);
            if (!centered) acc[r] = fmaf(half_to_float(x[b].m[r]), sy, acc[r]);
        }
    }
    memcpy(out, acc, sizeof acc);
}

// --- AVX2 -------------------------------------------------------------------------------------
#ifdef QUILL_X86

// The sum of a block's 32 int8 activations (Q4_0's weights are centred on 8: 8·sum comes off).
AVX2 static inline int sum_q8(const int8_t *qy) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)qy);
    const __m256i pairs = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
    return _mm_cvtsi128_si32(t);
}

AVX2 static void gemv_q4x8_avx2(const void *w, const void *vy, int64_t cols, int centered, float *out) {
    const block_q4x8 *x = w; const block_q8_1 *y = vy;
    const __m256i mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < cols / 32; b++) {
        const int8_t *qy = y[b].qs;
        __m256i s16 = _mm256_setzero_si256();   // at most 8·2·15·127 = 30480: fits int16
        for (int k = 0; k < 4; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * k));
            int32_t lo, hi;
            memcpy(&lo, qy + 4 * k, 4); memcpy(&hi, qy + 16 + 4 * k, 4);
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_and_si256(v, mask), _mm256_set1_epi32(lo)));
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), mask), _mm256_set1_epi32(hi)));
        }
        __m256i isum = _mm256_madd_epi16(s16, ones);
        if (centered) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * sum_q8(qy)));
        const __m256 dy = _mm256_set1_ps(_cvtsh_ss(y[b].d));
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x[b].d));
        acc = _mm256_fmadd_ps(_mm256_mul_ps(d, dy), _mm256_cvtepi32_ps(isum), acc);
        if (!centered) acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x[b].m)),
                                             _mm256_set1_ps(_cvtsh_ss(y[b].s)), acc);
    }
    _mm256_storeu_ps(out, acc);
}

// Two activation rows against one 8-row group: the weights are loaded and unpacked once and
// meet both rows (a batch of sequences decoding together). Each row's arithmetic is the
// one-row kernel's, in the same order, so the results are bit for bit the same.
AVX2 static void gemv2_q4x8_avx2(const void *w, const void *vy0, const void *vy1, int64_t cols, int centered,
                                 float *out0, float *out1) {
    const block_q4x8 *x = w; const block_q8_1 *ys[2] = {vy0, vy1};
    const __m256i mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < cols / 32; b++) {
        __m256i lo[4], hi[4];
        for (int k = 0; k < 4; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * k));
            lo[k] = _mm256_and_si256(v, mask);
            hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x[b].d));
        const __m256 m = centered ? _mm256_setzero_ps() : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x[b].m));
        for (int r = 0; r < 2; r++) {
            const block_q8_1 *y = ys[r];
            const int8_t *qy = y[b].qs;
            __m256i s16 = _mm256_setzero_si256();
            for (int k = 0; k < 4; k++) {
                int32_t l, h;
                memcpy(&l, qy + 4 * k, 4); memcpy(&h, qy + 16 + 4 * k, 4);
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(lo[k], _mm256_set1_epi32(l)));
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(hi[k], _mm256_set1_epi32(h)));
            }
            __m256i isum = _mm256_madd_epi16(s16, ones);
            if (centered) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * sum_q8(qy)));
            const __m256 dy = _mm256_set1_ps(_cvtsh_ss(y[b].d));
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, dy), _mm256_cvtepi32_ps(isum), acc[r]);
            if (!centered) acc[r] = _mm256_fmadd_ps(m, _mm256_set1_ps(_cvtsh_ss(y[b].s)), acc[r]);
        }
    }
    _mm256_storeu_ps(out0, acc[0]);
    _mm256_storeu_ps(out1, acc[1]);
}
#endif

typedef void (*gemv_fn)(const void *, const void *, int64_t, int, float *);
typedef void (*gemv2_fn)(const void *, const void *, const void *, int64_t, int, float *, float *);
static gemv_fn gemv = quill_gemv_q4x8_ref;
static gemv2_fn gemv2 = NULL;   // without it, two one-row calls

__attribute__((constructor)) static void choose_q4x8_kernel(void) {
#ifdef QUILL_X86
    if (cpu_has_avx2()) { gemv = gemv_q4x8_avx2; gemv2 = gemv2_q4x8_avx2; }
#endif
}

void quill_gemv_q4x8(const void *w, const void *y, int64_t cols, int centered, float *out) { gemv(w, y, cols, centered, out); }

void quill_matvec_q4x8(const void *w, const void *xq, size_t x_stride, int64_t n, float *out, size_t out_stride,
                       int64_t cols, int centered, int64_t group_begin, int64_t group_end) {
    const size_t group_bytes = (size_t)(cols / 32) * sizeof(block_q4x8);
    for (int64_t g = group_begin; g < group_end; g++) {
        const uint8_t *group = (const uint8_t *)w + (size_t)g * group_bytes;
        int64_t i = 0;
        if (gemv2) {
            for (; i + 1 < n; i += 2) {
                gemv2(group, (const uint8_t *)xq + i * x_stride, (const uint8_t *)xq + (i + 1) * x_stride, cols, centered,
                      out + i * out_stride + g * 8, out + (i + 1) * out_stride + g * 8);
            }
        }
        for (; i < n; i++) {
            gemv(group, (const uint8_t *)xq + i * x_stride, cols, centered, out + i * out_stride + g * 8);
        }
    }
}
