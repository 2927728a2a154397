// Dot products for the 5-bit types (Q5_0, Q5_1, against Q8_0 / Q8_1 activations) and the
// k-quants (Q4_K, Q5_K, Q6_K, against Q8_K activations: 256 values, an fp32 scale and the sums
// of each 16). Every kernel reads the blocks as they lie in the file; the plain twins spell out
// each value, the AVX2 kernels unpack 32 values into bytes and multiply them with maddubs.
#include "quill_kernels.h"
#include "blocks.h"
#include <math.h>
#include <stddef.h>

_Static_assert(sizeof(block_q5_0) == 22 && sizeof(block_q5_1) == 24, "32-value block sizes");
_Static_assert(sizeof(block_q4_K) == 144 && sizeof(block_q5_K) == 176 && sizeof(block_q6_K) == 210
               && sizeof(block_q8_K) == 292, "256-value block sizes");

// --- activation quantization (ggml's quantize_row_q8_K_ref) -------------------------------------

void quill_quantize_row_q8_K_ref(const float *x, void *vy, int64_t k) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < k / 256; i++, x += 256) {
        float amax = 0, max = 0;   // the value of largest magnitude, with its sign
        for (int j = 0; j < 256; j++) if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        if (amax == 0) { memset(&y[i], 0, sizeof y[i]); continue; }
        const float iscale = -127.0f / max;   // that value becomes -127
        for (int j = 0; j < 256; j++) {
            const int v = (int)lrintf(iscale * x[j]);   // nearest, ties to even
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += y[i].qs[16 * g + j];
            y[i].bsums[g] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

// --- unpacking shared by twins and kernels ------------------------------------------------------

// Q4_K / Q5_K: sub-block j's 6-bit scale and min, packed in 12 bytes
static inline void scale_min_k4(int j, const uint8_t *q, int *scale, int *min) {
    if (j < 4) { *scale = q[j] & 63; *min = q[j + 4] & 63; }
    else {
        *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Σ over the 8 sub-blocks of min × (the sum of the activations it covers)
static inline int k4_mins(const uint8_t *scales, const int16_t *bsums) {
    int total = 0, scale, min;
    for (int j = 0; j < 8; j++) { scale_min_k4(j, scales, &scale, &min); total += min * (bsums[2 * j] + bsums[2 * j + 1]); }
    return total;
}

// --- plain twins ------------------------------------------------------------------------------

// Σ (v_j − offset) · y_j over one block of 32 five-bit values: nibble j (low for 0-15, high for
// 16-31) with bit j of qh as the fifth bit; offset 16 for Q5_0 (centred), 0 for Q5_1
static inline int q5_block_dot(const uint8_t *qs, const uint8_t *qh_bytes, const int8_t *y, int offset) {
    uint32_t qh; memcpy(&qh, qh_bytes, 4);
    int s = 0;
    for (int j = 0; j < 16; j++) {
        const int lo = ((qs[j] & 0x0F) | ((qh >> j & 1) << 4)) - offset;
        const int hi = ((qs[j] >> 4) | ((qh >> (j + 16) & 1) << 4)) - offset;
        s += lo * y[j] + hi * y[j + 16];
    }
    return s;
}

float quill_vec_dot_q5_0_q8_0_ref(int64_t n, const void *vx, const void *vy) {
    const block_q5_0 *x = vx; const block_q8_0 *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        sum += (float)q5_block_dot(x[i].qs, x[i].qh, y[i].qs, 16) * (half_to_float(x[i].d) * half_to_float(y[i].d));
    }
    return sum;
}

float quill_vec_dot_q5_1_q8_1_ref(int64_t n, const void *vx, const void *vy) {
    const block_q5_1 *x = vx; const block_q8_1 *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        sum += (half_to_float(x[i].d) * half_to_float(y[i].d)) * (float)q5_block_dot(x[i].qs, x[i].qh, y[i].qs, 0)
             + half_to_float(x[i].m) * half_to_float(y[i].s);
    }
    return sum;
}

// Q4_K and Q5_K: each 64 values are 32 bytes of nibbles (low: sub-block 2c, high: 2c + 1), plus
// for Q5_K bit 2c / 2c + 1 of each qh byte as the fifth bit
// (both blocks start with d, dmin and the scales; Q5_K's qh comes before the nibbles)
static float dot_k4_k5_ref(int64_t n, const void *vx, int fifth_bit, const block_q8_K *y) {
    const size_t block_bytes = fifth_bit ? sizeof(block_q5_K) : sizeof(block_q4_K);
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        const block_q5_K *block = (const void *)((const uint8_t *)vx + i * block_bytes);
        const uint8_t *scales = block->scales, *qh = fifth_bit ? block->qh : NULL;
        const uint8_t *qs = fifth_bit ? block->qs : ((const block_q4_K *)(const void *)block)->qs;
        const uint16_t d = block->d, dmin = block->dmin;
        int sumi = 0;
        for (int c = 0; c < 4; c++) {
            int s0 = 0, s1 = 0, sc0, m0, sc1, m1;
            for (int l = 0; l < 32; l++) {
                const int lo = (qs[32 * c + l] & 0x0F) | (qh ? (qh[l] >> (2 * c) & 1) << 4 : 0);
                const int hi = (qs[32 * c + l] >> 4) | (qh ? (qh[l] >> (2 * c + 1) & 1) << 4 : 0);
                s0 += lo * y[i].qs[64 * c + l];
                s1 += hi * y[i].qs[64 * c + 32 + l];
            }
            scale_min_k4(2 * c, scales, &sc0, &m0);
            scale_min_k4(2 * c + 1, scales, &sc1, &m1);
            sumi += sc0 * s0 + sc1 * s1;
        }
        sum += y[i].d * half_to_float(d) * (float)sumi - y[i].d * half_to_float(dmin) * (float)k4_mins(scales, y[i].bsums);
    }
    return sum;
}

float quill_vec_dot_q4_K_q8_K_ref(int64_t n, const void *x, const void *y) { return dot_k4_k5_ref(n, x, 0, y); }
float quill_vec_dot_q5_K_q8_K_ref(int64_t n, const void *x, const void *y) { return dot_k4_k5_ref(n, x, 1, y); }

// Q6_K: each 128 values are 64 bytes of nibbles and 32 bytes of 2-bit pairs; value v of the
// block (0-255) has scale scales[v / 16]
float quill_vec_dot_q6_K_q8_K_ref(int64_t n, const void *vx, const void *vy) {
    const block_q6_K *x = vx; const block_q8_K *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int sumi = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                const int q[4] = {
                    ((ql[l] & 0x0F) | (qh[l] & 3) << 4) - 32,
                    ((ql[l + 32] & 0x0F) | (qh[l] >> 2 & 3) << 4) - 32,
                    ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32,
                    ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32,
                };
                for (int k = 0; k < 4; k++) {
                    const int v = 128 * h + 32 * k + l;
                    sumi += x[i].scales[v / 16] * q[k] * y[i].qs[v];
                }
            }
        }
        sum += half_to_float(x[i].d) * y[i].d * (float)sumi;
    }
    return sum;
}

// --- AVX2 -------------------------------------------------------------------------------------
#ifdef QUILL_X86

// unsigned a × signed b over 32 bytes, pairs weighted by 16-bit `w` → 8 int32
AVX2 static inline __m256i dot_weighted(__m256i a, __m256i b, __m256i w) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), w);
}

// the 32 bits of qh as 32 bytes of 0x10 (bit set) or 0
AVX2 static inline __m256i fifth_bits(const uint8_t *qh) {
    uint32_t bits; memcpy(&bits, qh, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    // byte k keeps bit k % 8 of its source byte: all others set, then compare with all-ones
    const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
                                          _mm256_set1_epi64x(-1));
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

AVX2 static float vec_dot_q5_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const block_q5_0 *x = vx; const block_q8_0 *y = vy;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i qx = _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles(x[i].qs), fifth_bits(x[i].qh)), _mm256_set1_epi8(16));
        const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        // |qx| · sign(qy, qx): maddubs needs an unsigned left operand
        const __m256i p = dot_weighted(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum8(acc);
}

AVX2 static float vec_dot_q5_1_q8_1_avx2(int64_t n, const void *vx, const void *vy) {
    const block_q5_1 *x = vx; const block_q8_1 *y = vy;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i qx = _mm256_or_si256(unpack_nibbles(x[i].qs), fifth_bits(x[i].qh));
        const __m256i p = dot_weighted(qx, _mm256_loadu_si256((const __m256i *)y[i].qs), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d)), _mm256_cvtepi32_ps(p), acc);
        mins += _cvtsh_ss(x[i].m) * _cvtsh_ss(y[i].s);
    }
    return hsum8(acc) + mins;
}

// Q4_K (qh NULL) and Q5_K: per 64 values, one load of 32 nibble bytes gives two sub-blocks;
// each sub-block's scale weights its pairs in madd, integer sums until the block's end
AVX2 static float dot_k4_k5_avx2(int64_t n, const void *vx, int fifth_bit, const block_q8_K *y) {
    const size_t block_bytes = fifth_bit ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        const block_q5_K *block = (const void *)((const uint8_t *)vx + i * block_bytes);
        const uint8_t *scales = block->scales;
        const uint8_t *qs = fifth_bit ? block->qs : ((const block_q4_K *)(const void *)block)->qs;
        int sc[8], m;
        for (int j = 0; j < 8; j++) scale_min_k4(j, scales, &sc[j], &m);
        const __m256i qh = fifth_bit ? _mm256_loadu_si256((const __m256i *)block->qh) : _mm256_setzero_si256();
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            if (fifth_bit) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
            }
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c + 32));
            sumi = _mm256_add_epi32(sumi, dot_weighted(lo, y0, _mm256_set1_epi16((short)sc[2 * c])));
            sumi = _mm256_add_epi32(sumi, dot_weighted(hi, y1, _mm256_set1_epi16((short)sc[2 * c + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * _cvtsh_ss(block->d)), _mm256_cvtepi32_ps(sumi), acc);
        mins += y[i].d * _cvtsh_ss(block->dmin) * (float)k4_mins(scales, y[i].bsums);
    }
    return hsum8(acc) - mins;
}

AVX2 static float vec_dot_q4_K_q8_K_avx2(int64_t n, const void *x, const void *y) { return dot_k4_k5_avx2(n, x, 0, y); }
AVX2 static float vec_dot_q5_K_q8_K_avx2(int64_t n, const void *x, const void *y) { return dot_k4_k5_avx2(n, x, 1, y); }

// Q6_K: values unpacked as unsigned 0-63; the offset of 32 comes back as 32 · Σ scale · bsum
AVX2 static float vec_dot_q6_K_q8_K_avx2(int64_t n, const void *vx, const void *vy) {
    const block_q6_K *x = vx; const block_q8_K *y = vy;
    const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    float offsets = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(hb, low2), 4)),
                _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), low2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), low2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), low2), 4)),
            };
            for (int k = 0; k < 4; k++) {
                const int g = 8 * h + 2 * k;   // the 16-value groups of these 32 values
                const __m256i w = _mm256_set_m128i(_mm_set1_epi16(x[i].scales[g + 1]), _mm_set1_epi16(x[i].scales[g]));
                const __m256i a = _mm256_loadu_si256((const __m256i *)(y[i].qs + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, dot_weighted(q[k], a, w));
            }
        }
        int offset = 0;
        for (int g = 0; g < 16; g++) offset += x[i].scales[g] * y[i].bsums[g];
        const float d = _cvtsh_ss(x[i].d) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        offsets += d * (float)(32 * offset);
    }
    return hsum8(acc) - offsets;
}
// The same bytes as the twin: the first value of largest magnitude sets the scale, products
// rounded to nearest even (vroundps, as lrintf in the default mode), the sums of each 16 from
// the int32 values before they are narrowed.
AVX2 static void quantize_row_q8_K_avx2(const float *x, void *vy, int64_t k) {
    block_q8_K *y = vy;
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < k / 256; i++, x += 256) {
        __m256 amax8 = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8) amax8 = _mm256_max_ps(amax8, _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(x + j)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
        if (amax == 0) { memset(&y[i], 0, sizeof y[i]); continue; }
        float max = 0;
        for (int j = 0; j < 256; j++) if (fabsf(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.0f / max;
        const __m256 scale = _mm256_set1_ps(iscale);
        for (int g = 0; g < 16; g++) {
            __m256i v[2];
            for (int h = 0; h < 2; h++) {
                const __m256 p = _mm256_round_ps(_mm256_mul_ps(scale, _mm256_loadu_ps(x + 16 * g + 8 * h)),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                v[h] = _mm256_min_epi32(_mm256_cvtps_epi32(p), _mm256_set1_epi32(127));
            }
            __m256i sum = _mm256_add_epi32(v[0], v[1]);
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
            y[i].bsums[g] = (int16_t)_mm_cvtsi128_si32(s4);
            // int32 → int16 → int8 (values within ±127: nothing saturates), lanes back in order
            const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[0], v[1]), 0xD8);
            const __m128i b8 = _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
            _mm_storeu_si128((__m128i *)(y[i].qs + 16 * g), b8);
        }
        y[i].d = 1 / iscale;
    }
}
#endif

// --- dispatch ---------------------------------------------------------------------------------

typedef void (*quantize_fn)(const float *, void *, int64_t);
static quantize_fn quantize_q8_K = quill_quantize_row_q8_K_ref;
void quill_quantize_row_q8_K(const float *x, void *y, int64_t k) { quantize_q8_K(x, y, k); }

typedef float (*dot_fn)(int64_t, const void *, const void *);
static dot_fn dot_q5_0 = quill_vec_dot_q5_0_q8_0_ref;
static dot_fn dot_q5_1 = quill_vec_dot_q5_1_q8_1_ref;
static dot_fn dot_q4_K = quill_vec_dot_q4_K_q8_K_ref;
static dot_fn dot_q5_K = quill_vec_dot_q5_K_q8_K_ref;
static dot_fn dot_q6_K = quill_vec_dot_q6_K_q8_K_ref;

__attribute__((constructor)) static void choose_kquant_kernels(void) {
#ifdef QUILL_X86
    if (cpu_has_avx2()) {
        quantize_q8_K = quantize_row_q8_K_avx2;
        dot_q5_0 = vec_dot_q5_0_q8_0_avx2;
        dot_q5_1 = vec_dot_q5_1_q8_1_avx2;
        dot_q4_K = vec_dot_q4_K_q8_K_avx2;
        dot_q5_K = vec_dot_q5_K_q8_K_avx2;
        dot_q6_K = vec_dot_q6_K_q8_K_avx2;
    }
#endif
}

float quill_vec_dot_q5_0_q8_0(int64_t n, const void *x, const void *y) { return dot_q5_0(n, x, y); }
float quill_vec_dot_q5_1_q8_1(int64_t n, const void *x, const void *y) { return dot_q5_1(n, x, y); }
float quill_vec_dot_q4_K_q8_K(int64_t n, const void *x, const void *y) { return dot_q4_K(n, x, y); }
float quill_vec_dot_q5_K_q8_K(int64_t n, const void *x, const void *y) { return dot_q5_K(n, x, y); }
float quill_vec_dot_q6_K_q8_K(int64_t n, const void *x, const void *y) { return dot_q6_K(n, x, y); }
