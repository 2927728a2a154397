// Weight quantizers: fp32 rows into ggml's block types, for writing GGUF files.
//
// The arithmetic is that of ggml's reference quantizers ("for deterministic creation of model
// files"), operation for operation in fp32 and without fused multiply-adds, so that a file made
// here does not depend on the CPU that made it:
//   Q4_0, Q5_0   d = (the value of largest magnitude) / -8 or -16, q = trunc(x/d + 8.5 or 16.5)
//   Q4_1, Q5_1   d = (max - min) / 15 or 31, m = min, q = trunc((x - m)/d + 0.5)
//   Q8_0         d = max|x| / 127, q = round(x/d)             (the activation quantizer)
//   Q2_K, Q4_K, Q5_K   per group of 16 or 32: a scale and a min fitted by weighted least squares
//                      over a grid of candidate scales; then 4- or 6-bit scales and mins against
//                      the super-block's d and dmin, and q recomputed against the rounded scales
//   Q3_K, Q6_K   per group of 16: a symmetric scale fitted by least squares weighted with x²;
//                then 6- or 8-bit signed scales against d, and q recomputed
// Where the CPU has AVX2, the group fits (where the time goes: Q2_K, Q4_K, Q5_K and Q6_K, and with
// an importance matrix every type's) run eight groups at once, one per lane, each lane the plain
// fit's operations in its order: the same bytes.
#pragma STDC FP_CONTRACT OFF

#include "quill_kernels.h"
#include "blocks.h"
#include <float.h>
#include <math.h>

typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } block_q3_K;

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

// round half to even, for |x| < 2^22: adding 1.5·2^23 leaves the rounded integer in the low
// mantissa bits (lrintf gives the same but is a call into libm where errno may be set)
static inline int nearest(float x) {
    const float shifted = x + 12582912.f;
    int32_t bits; memcpy(&bits, &shifted, 4);
    return (bits & 0x007fffff) - 0x00400000;
}

// a group whose largest magnitude is below this is all zeros
static const float group_epsilon = 1e-15f;

// --- blocks of 32 ---------------------------------------------------------------------------------

// the value of largest magnitude among n (the first, on ties), signed
static inline float signed_extreme(const float *x, int n) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++) if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    return max;
}

// Q4_1 / Q5_1: d = (max - min) / levels and m = min into the block's f16 fields; returns 1/d
// (0 for a constant block) and the min
static inline float affine_scale(const float *x, float levels, uint16_t *d_out, uint16_t *m_out, float *min_out) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) { if (x[j] < min) min = x[j]; if (x[j] > max) max = x[j]; }
    const float d = (max - min) / levels;
    *d_out = float_to_half(d);
    *m_out = float_to_half(min);
    *min_out = min;
    return d ? 1.0f / d : 0.0f;
}

static void q4_0_block(const float *x, block_q4_0 *y) {
    const float d = signed_extreme(x, 32) / -8, id = d ? 1.0f / d : 0.0f;
    y->d = float_to_half(d);
    for (int j = 0; j < 16; j++) {
        const uint8_t lo = MIN(15, (int8_t)(x[j] * id + 8.5f)), hi = MIN(15, (int8_t)(x[j + 16] * id + 8.5f));
        y->qs[j] = lo | hi << 4;
    }
}

static void q4_1_block(const float *x, block_q4_1 *y) {
    float min;
    const float id = affine_scale(x, 15, &y->d, &y->m, &min);
    for (int j = 0; j < 16; j++) {
        const uint8_t lo = MIN(15, (int8_t)((x[j] - min) * id + 0.5f)), hi = MIN(15, (int8_t)((x[j + 16] - min) * id + 0.5f));
        y->qs[j] = lo | hi << 4;
    }
}

// the low nibbles into qs, the fifth bits into qh (bit j for element j)
static inline void pack_five_bits(const uint8_t *q, uint8_t *qs, uint8_t *qh_bytes) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4;
        qh |= (uint32_t)(q[j] >> 4) << j | (uint32_t)(q[j + 16] >> 4) << (j + 16);
    }
    memcpy(qh_bytes, &qh, 4);
}

static void q5_0_block(const float *x, block_q5_0 *y) {
    const float d = signed_extreme(x, 32) / -16, id = d ? 1.0f / d : 0.0f;
    y->d = float_to_half(d);
    uint8_t q[32];
    for (int j = 0; j < 32; j++) q[j] = MIN(31, (int8_t)(x[j] * id + 16.5f));
    pack_five_bits(q, y->qs, y->qh);
}

static void q5_1_block(const float *x, block_q5_1 *y) {
    float min;
    const float id = affine_scale(x, 31, &y->d, &y->m, &min);
    uint8_t q[32];
    for (int j = 0; j < 32; j++) q[j] = (uint8_t)((x[j] - min) * id + 0.5f);
    pack_five_bits(q, y->qs, y->qh);
}

// --- fitting one group's scale (and min) ----------------------------------------------------------

// Asymmetric: x ≈ scale·L - min with L in [0, nmax] and min ≥ 0, minimising Σ w·err (err the
// absolute or the squared difference). Starts from the plain min/max grid, then tries nstep + 1
// candidate grids (nmax + rmin + rdelta·is levels over the range), refitting scale and min by
// weighted least squares for each and keeping the best. Returns the scale; *min_out gets min.
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *min_out,
                           float rmin, float rdelta, int nstep, int absolute) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *min_out = -min;
        return 0;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = nearest(iscale * (x[i] - min));
        L[i] = (uint8_t)MAX(0, MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = absolute ? fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    uint8_t candidate[32];
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);   // min as improved so far
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = MAX(0, MIN(nmax, nearest(iscale * (x[i] - min))));
            candidate[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (this_min > 0) { this_min = 0; this_scale = sum_xl / sum_l2; }
        float error = 0;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * candidate[i] + this_min - x[i];
            diff = absolute ? fabsf(diff) : diff * diff;
            error += w[i] * diff;
        }
        if (error < best_error) {
            memcpy(L, candidate, (size_t)n);
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    *min_out = -min;
    return scale;
}

#if QUILL_X86
// eight int32 levels in [0, 255] as eight bytes
AVX2 static inline void store_levels(__m256i levels, uint8_t *out) {
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(levels), _mm256_extracti128_si256(levels, 1));
    _mm_storel_epi64((__m128i *)out, _mm_packus_epi16(words, _mm_setzero_si128()));
}

// fit_scale_min for eight groups at once, one per lane of a ymm register: xt and wt hold element
// i of group g at [i * 8 + g]. Every lane runs the plain version's operations in its order (no
// fused multiply-adds, branches as masks), so the results are the same bits.
AVX2 static void fit_scale_min_x8(int n, int nmax, const float *xt, const float *wt, uint8_t *L, int l_stride,
                                  float *scale_out, float *min_out, float rmin, float rdelta, int nstep, int absolute) {
    const __m256 zero = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f), magic = _mm256_set1_ps(12582912.f);
    const __m256i mantissa = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
    const __m256i lo = _mm256_setzero_si256(), hi = _mm256_set1_epi32(nmax);
    // nearest(v) clamped to [0, nmax], as an integer and as a float
#define LEVEL(v, li, lf) do { \
        li = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(v, magic)), mantissa), bias); \
        li = _mm256_min_epi32(_mm256_max_epi32(li, lo), hi); lf = _mm256_cvtepi32_ps(li); } while (0)
#define ERROR_TERM(d) (absolute ? _mm256_andnot_ps(sign, d) : _mm256_mul_ps(d, d))
    __m256 min = _mm256_loadu_ps(xt), max = min, sum_w = _mm256_loadu_ps(wt), sum_x = _mm256_mul_ps(sum_w, min);
    for (int i = 1; i < n; i++) {
        const __m256 x = _mm256_loadu_ps(xt + 8 * i), w = _mm256_loadu_ps(wt + 8 * i);
        min = _mm256_blendv_ps(min, x, _mm256_cmp_ps(x, min, _CMP_LT_OQ));
        max = _mm256_blendv_ps(max, x, _mm256_cmp_ps(x, max, _CMP_GT_OQ));
        sum_w = _mm256_add_ps(sum_w, w);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(w, x));
    }
    min = _mm256_blendv_ps(min, zero, _mm256_cmp_ps(min, zero, _CMP_GT_OQ));
    const __m256 flat = _mm256_cmp_ps(max, min, _CMP_EQ_OQ);
    __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)nmax), _mm256_sub_ps(max, min)), scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale);
    __m256 best_error = zero;
    __m256i li;
    __m256 lf;
    uint8_t best[32][8], candidate[32][8];
    for (int i = 0; i < n; i++) {
        const __m256 x = _mm256_loadu_ps(xt + 8 * i), w = _mm256_loadu_ps(wt + 8 * i);
        LEVEL(_mm256_mul_ps(iscale, _mm256_sub_ps(x, min)), li, lf);
        store_levels(li, best[i]);
        const __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, lf), min), x);
        best_error = _mm256_add_ps(best_error, _mm256_mul_ps(w, ERROR_TERM(diff)));
    }
    for (int is = 0; nstep >= 1 && is <= nstep; is++) {
        iscale = _mm256_div_ps(_mm256_set1_ps(rmin + rdelta * is + nmax), _mm256_sub_ps(max, min));   // min as improved so far
        __m256 sum_l = zero, sum_l2 = zero, sum_xl = zero;
        for (int i = 0; i < n; i++) {
            const __m256 x = _mm256_loadu_ps(xt + 8 * i), w = _mm256_loadu_ps(wt + 8 * i);
            LEVEL(_mm256_mul_ps(iscale, _mm256_sub_ps(x, min)), li, lf);
            store_levels(li, candidate[i]);
            const __m256 wl = _mm256_mul_ps(w, lf);
            sum_l = _mm256_add_ps(sum_l, wl);
            sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, lf));
            sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, x));
        }
        const __m256 det = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
        const __m256 solvable = _mm256_cmp_ps(det, zero, _CMP_GT_OQ);
        if (!_mm256_movemask_ps(solvable)) continue;
        __m256 this_scale = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), det);
        __m256 this_min = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), det);
        const __m256 positive = _mm256_cmp_ps(this_min, zero, _CMP_GT_OQ);
        this_min = _mm256_blendv_ps(this_min, zero, positive);
        this_scale = _mm256_blendv_ps(this_scale, _mm256_div_ps(sum_xl, sum_l2), positive);
        __m256 error = zero;
        for (int i = 0; i < n; i++) {
            const __m256 x = _mm256_loadu_ps(xt + 8 * i), w = _mm256_loadu_ps(wt + 8 * i);
            const __m128i c8 = _mm_loadl_epi64((const __m128i *)candidate[i]);
            const __m256 cf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c8));
            const __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale, cf), this_min), x);
            error = _mm256_add_ps(error, _mm256_mul_ps(w, ERROR_TERM(diff)));
        }
        const __m256 better = _mm256_and_ps(solvable, _mm256_cmp_ps(error, best_error, _CMP_LT_OQ));
        const int lanes = _mm256_movemask_ps(better);
        if (!lanes) continue;
        best_error = _mm256_blendv_ps(best_error, error, better);
        scale = _mm256_blendv_ps(scale, this_scale, better);
        min = _mm256_blendv_ps(min, this_min, better);
        for (int i = 0; i < n; i++)
            for (int g = 0; g < 8; g++) if (lanes >> g & 1) best[i][g] = candidate[i][g];
    }
#undef LEVEL
#undef ERROR_TERM
    scale = _mm256_blendv_ps(scale, zero, flat);
    const int flat_lanes = _mm256_movemask_ps(flat);
    float scales[8], mins[8];
    _mm256_storeu_ps(scales, scale);
    _mm256_storeu_ps(mins, _mm256_xor_ps(min, sign));
    for (int g = 0; g < 8; g++) {
        scale_out[g] = scales[g];
        min_out[g] = mins[g];
        for (int i = 0; i < n; i++) L[g * l_stride + i] = flat_lanes >> g & 1 ? 0 : best[i][g];
    }
}
#endif

#if QUILL_X86
// Groups first..first+7 of n values (and their weights, x² where w is NULL) into lanes: element i
// of group g at [i * 8 + g], as the _x8 fits read them
static inline void groups_to_lanes(int n, int first, const float *x, const float *w, float *xt, float *wt) {
    for (int g = 0; g < 8; g++)
        for (int i = 0; i < n; i++) {
            const float v = x[(first + g) * n + i];
            xt[i * 8 + g] = v;
            wt[i * 8 + g] = w ? w[(first + g) * n + i] : v * v;
        }
}
#endif

// fit_scale_min over `groups` consecutive groups of n, eight lanes at a time where `wide` (n ≤ 32)
static void fit_groups(int wide, int groups, int n, int nmax, const float *x, const float *w, uint8_t *L,
                       float *scales, float *mins, float rmin, float rdelta, int nstep, int absolute) {
#if QUILL_X86
    if (wide) {
        const int whole = groups / 8 * 8;
        for (int first = 0; first < whole; first += 8) {
            float xt[32 * 8], wt[32 * 8];
            groups_to_lanes(n, first, x, w, xt, wt);
            fit_scale_min_x8(n, nmax, xt, wt, L + first * n, n, scales + first, mins + first, rmin, rdelta, nstep, absolute);
        }
        for (int g = whole; g < groups; g++)   // the last few, as the plain fit (the same bits)
            scales[g] = fit_scale_min(n, nmax, x + g * n, w + g * n, L + g * n, &mins[g], rmin, rdelta, nstep, absolute);
        return;
    }
#endif
    (void)wide;
    for (int g = 0; g < groups; g++)
        scales[g] = fit_scale_min(n, nmax, x + g * n, w + g * n, L + g * n, &mins[g], rmin, rdelta, nstep, absolute);
}

// The symmetric fits' first grid: the largest magnitude at -nmax, levels l in [-nmax, nmax-1]
// into L, and the weighted sums Σw·x·l and Σw·l² (w: the given weights, or x² where none).
// Returns the signed extreme; 0 (and L all zero) for a group of zeros.
static float symmetric_first_grid(int n, int nmax, const float *x, const float *weights, int8_t *L, float *sumlx, float *suml2) {
    const float max = signed_extreme(x, n);
    if (fabsf(max) < group_epsilon) { memset(L, 0, (size_t)n); return 0; }
    const float iscale = -nmax / max;
    *sumlx = *suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = MAX(-nmax, MIN(nmax - 1, nearest(iscale * x[i])));
        L[i] = (int8_t)l;
        const float w = weights ? weights[i] : x[i] * x[i];
        *sumlx += w * x[i] * l;
        *suml2 += w * l * l;
    }
    return max;
}

// Symmetric, for Q6_K (and, with importance weights, Q4_0, Q5_0 and Q3_K): x ≈ scale·(L - nmax)
// with L - nmax in [-nmax, nmax-1], least squares weighted by `weights` (x² where NULL). After
// the first grid, 18 more (nmax ± 0.1..0.9 levels on the largest magnitude) are tried.
static float fit_scale_symmetric(int n, int nmax, const float *x, const float *weights, int8_t *L) {
    float sumlx, suml2;
    const float max = symmetric_first_grid(n, nmax, x, weights, L, &sumlx, &suml2);
    if (!max) return 0;
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        const float iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = MAX(-nmax, MIN(nmax - 1, nearest(iscale * x[i])));
            const float w = weights ? weights[i] : x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)MAX(-nmax, MIN(nmax - 1, nearest(iscale * x[i])));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    for (int i = 0; i < n; i++) L[i] += nmax;
    return scale;
}

#if QUILL_X86
// One grid of the symmetric fit in eight lanes: levels l = clamp(nearest(iscale·x), -nmax, nmax-1)
// into L[i][g], and the weighted sums Σw·x·l and Σw·l², element by element as the plain fit.
AVX2 static inline void symmetric_grid_x8(int n, int nmax, __m256 iscale, const float *xt, const float *wt, int8_t L[32][8],
                                          __m256 *sumlx, __m256 *suml2) {
    const __m256 magic = _mm256_set1_ps(12582912.f);
    const __m256i mantissa = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
    const __m256i lo = _mm256_set1_epi32(-nmax), hi = _mm256_set1_epi32(nmax - 1);
    __m256 sx = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    for (int i = 0; i < n; i++) {
        const __m256 x = _mm256_loadu_ps(xt + 8 * i), w = _mm256_loadu_ps(wt + 8 * i);
        __m256i li = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(iscale, x), magic)), mantissa), bias);
        li = _mm256_min_epi32(_mm256_max_epi32(li, lo), hi);
        const __m256 lf = _mm256_cvtepi32_ps(li);
        int32_t l32[8];
        _mm256_storeu_si256((__m256i *)l32, li);
        for (int g = 0; g < 8; g++) L[i][g] = (int8_t)l32[g];
        sx = _mm256_add_ps(sx, _mm256_mul_ps(_mm256_mul_ps(w, x), lf));
        s2 = _mm256_add_ps(s2, _mm256_mul_ps(_mm256_mul_ps(w, lf), lf));
    }
    *sumlx = sx;
    *suml2 = s2;
}

// fit_scale_symmetric for eight groups at once, one per lane (xt, wt: element i of group g at
// [i * 8 + g], wt the weights, x² where the caller had none): each lane the plain fit's operations
// in its order, branches as masks, so the scales and levels are the same bits.
AVX2 static void fit_scale_symmetric_x8(int n, int nmax, const float *xt, const float *wt, int8_t *L, int l_stride, float *scale_out) {
    const __m256 zero = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f);
    // the signed extreme: the first element of largest magnitude
    __m256 amax = zero, max = zero;
    for (int i = 0; i < n; i++) {
        const __m256 x = _mm256_loadu_ps(xt + 8 * i), ax = _mm256_andnot_ps(sign, x), larger = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = _mm256_blendv_ps(amax, ax, larger);
        max = _mm256_blendv_ps(max, x, larger);
    }
    const __m256 flat = _mm256_cmp_ps(amax, _mm256_set1_ps(group_epsilon), _CMP_LT_OQ);
    int8_t best[32][8], candidate[32][8];
    __m256 sumlx, suml2;
    // the first grid: the extreme at -nmax
    symmetric_grid_x8(n, nmax, _mm256_div_ps(_mm256_set1_ps((float)-nmax), max), xt, wt, best, &sumlx, &suml2);
    __m256 scale = _mm256_blendv_ps(_mm256_div_ps(sumlx, suml2), zero, _mm256_cmp_ps(suml2, zero, _CMP_EQ_OQ));
    __m256 best_fit = _mm256_mul_ps(scale, sumlx);
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        symmetric_grid_x8(n, nmax, _mm256_div_ps(_mm256_set1_ps(-(nmax + 0.1f * is)), max), xt, wt, candidate, &sumlx, &suml2);
        const __m256 better = _mm256_and_ps(_mm256_cmp_ps(suml2, zero, _CMP_GT_OQ),
                                            _mm256_cmp_ps(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best_fit, suml2), _CMP_GT_OQ));
        const int lanes = _mm256_movemask_ps(_mm256_andnot_ps(flat, better));
        if (!lanes) continue;
        const __m256 this_scale = _mm256_div_ps(sumlx, suml2);
        scale = _mm256_blendv_ps(scale, this_scale, better);
        best_fit = _mm256_blendv_ps(best_fit, _mm256_mul_ps(this_scale, sumlx), better);
        for (int i = 0; i < n; i++)
            for (int g = 0; g < 8; g++) if (lanes >> g & 1) best[i][g] = candidate[i][g];
    }
    const int flat_lanes = _mm256_movemask_ps(flat);
    float scales[8];
    _mm256_storeu_ps(scales, scale);
    for (int g = 0; g < 8; g++) {
        const int empty = flat_lanes >> g & 1;
        scale_out[g] = empty ? 0 : scales[g];
        for (int i = 0; i < n; i++) L[g * l_stride + i] = empty ? 0 : (int8_t)(best[i][g] + nmax);
    }
}
#endif

// fit_scale_symmetric over `groups` consecutive groups of n (weights w, or x² where NULL), eight
// lanes at a time where `wide` (n ≤ 32)
static void fit_groups_symmetric(int wide, int groups, int n, int nmax, const float *x, const float *w, int8_t *L, float *scales) {
#if QUILL_X86
    if (wide) {
        const int whole = groups / 8 * 8;
        for (int first = 0; first < whole; first += 8) {
            float xt[32 * 8], wt[32 * 8];
            groups_to_lanes(n, first, x, w, xt, wt);
            fit_scale_symmetric_x8(n, nmax, xt, wt, L + first * n, n, scales + first);
        }
        for (int g = whole; g < groups; g++)
            scales[g] = fit_scale_symmetric(n, nmax, x + g * n, w ? w + g * n : NULL, L + g * n);
        return;
    }
#endif
    (void)wide;
    for (int g = 0; g < groups; g++) scales[g] = fit_scale_symmetric(n, nmax, x + g * n, w ? w + g * n : NULL, L + g * n);
}

// Symmetric, for Q3_K: the first grid, then up to five passes that move single elements to the
// level that most improves the weighted fit. L is left in [-nmax, nmax-1] + nmax.
static float fit_scale_symmetric_refined(int n, int nmax, const float *x, int8_t *L) {
    float sumlx, suml2;
    if (!symmetric_first_grid(n, nmax, x, NULL, L, &sumlx, &suml2)) return 0;
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (!(slx > 0)) continue;
            float sl2 = suml2 - w * L[i] * L[i];
            const int l = MAX(-nmax, MIN(nmax - 1, nearest(x[i] * sl2 / slx)));
            if (l == L[i]) continue;
            slx += w * x[i] * l;
            sl2 += w * l * l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)l; sumlx = slx; suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] += nmax;
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// --- with an importance matrix: the pieces -------------------------------------------------------
//
// llama-quantize --imatrix: each column's importance (the mean square of the activations that
// meet it, from llama-imatrix or `quill eval --imatrix`) weights the fits, as ggml's `_impl`
// quantizers do, operation for operation, so a file equals llama-quantize's with the same matrix.

// Each value's weight: its column's importance times √(σ² + x²), σ² a mean square of the values
static inline void importance_weights(int n, const float *x, const float *importance, float sigma2, float *w) {
    for (int i = 0; i < n; i++) w[i] = importance[i] * sqrtf(sigma2 + x[i] * x[i]);
}

static inline float sum_of_squares(int64_t n, const float *x) {
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i] * x[i];
    return sum;
}

static inline float sum_of(int n, const float *x) {
    float sum = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    return sum;
}

// The scales (or mins) of a super-block's groups as levels of one scale: x ≈ scale·L, L in
// [0, nmax], least squares weighted by each group's total weight w: 9 candidate grids around
// nmax over the largest value, then up to five passes that move single levels. Returns the
// scale. (ggml's make_qp_quants; negative x do not occur, and wrap into L as they do there.)
static float fit_scale_positive(int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float max = 0;
    for (int i = 0; i < n; i++) max = MAX(max, x[i]);
    if (max < group_epsilon) { memset(L, 0, (size_t)n); return 0; }
    float iscale = nmax / max;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)nearest(iscale * x[i]);
    const float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - scale * L[i];
        best_error += w[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * is + nmax) / max, scale_is = 1 / iscale_is;
        float error = 0;
        for (int i = 0; i < n; i++) {
            const int l = MIN(nmax, nearest(iscale_is * x[i]));
            const float diff = x[i] - scale_is * l;
            error += w[i] * diff * diff;
        }
        if (error < best_error) { best_error = error; iscale = iscale_is; }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = MIN(nmax, nearest(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += w[i] * x[i] * l;
        suml2 += w[i] * l * l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * L[i], sl2 = suml2 - w[i] * L[i] * L[i];
            if (!(slx > 0 && sl2 > 0)) continue;
            const int l = MIN(nmax, nearest(x[i] * sl2 / slx));
            if (l == L[i]) continue;
            slx += w[i] * x[i] * l;
            sl2 += w[i] * l * l;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (uint8_t)l; sumlx = slx; suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// --- blocks of 32 with an importance matrix: σ² is the whole row's mean square --------------------

// Q4_0 / Q5_0: up to eight blocks' symmetric fits at once
static void symmetric_blocks_weighted(int blocks, int nmax, const float *x, const float *importance, float sigma2,
                                      int8_t *L, float *scales, int wide) {
    float w[256];
    importance_weights(32 * blocks, x, importance, sigma2, w);
    fit_groups_symmetric(wide, blocks, 32, nmax, x, w, L, scales);
}

static void q4_0_blocks_weighted(int blocks, const float *x, const float *importance, float sigma2, block_q4_0 *y, int wide) {
    float scales[8];
    int8_t L[256];
    symmetric_blocks_weighted(blocks, 8, x, importance, sigma2, L, scales, wide);
    for (int b = 0; b < blocks; b++) {
        y[b].d = float_to_half(scales[b]);
        for (int j = 0; j < 16; j++) y[b].qs[j] = (uint8_t)(L[32 * b + j] | L[32 * b + j + 16] << 4);
    }
}

static void q5_0_blocks_weighted(int blocks, const float *x, const float *importance, float sigma2, block_q5_0 *y, int wide) {
    float scales[8];
    int8_t L[256];
    symmetric_blocks_weighted(blocks, 16, x, importance, sigma2, L, scales, wide);
    for (int b = 0; b < blocks; b++) {
        y[b].d = float_to_half(scales[b]);
        pack_five_bits((const uint8_t *)L + 32 * b, y[b].qs, y[b].qh);
    }
}

// Q4_1 / Q5_1: up to eight blocks' asymmetric fits at once (37 grids each)
static void affine_blocks_weighted(int blocks, int nmax, const float *x, const float *importance, float sigma2,
                                   uint8_t *L, float *scales, float *mins, int wide) {
    float w[256];
    importance_weights(32 * blocks, x, importance, sigma2, w);
    fit_groups(wide, blocks, 32, nmax, x, w, L, scales, mins, -0.9f, 0.05f, 36, 0);
}

static void q4_1_blocks_weighted(int blocks, const float *x, const float *importance, float sigma2, block_q4_1 *y, int wide) {
    uint8_t L[256];
    float scales[8], mins[8];
    affine_blocks_weighted(blocks, 15, x, importance, sigma2, L, scales, mins, wide);
    for (int b = 0; b < blocks; b++) {
        y[b].d = float_to_half(scales[b]);
        y[b].m = float_to_half(-mins[b]);
        for (int j = 0; j < 16; j++) y[b].qs[j] = L[32 * b + j] | L[32 * b + j + 16] << 4;
    }
}

static void q5_1_blocks_weighted(int blocks, const float *x, const float *importance, float sigma2, block_q5_1 *y, int wide) {
    uint8_t L[256];
    float scales[8], mins[8];
    affine_blocks_weighted(blocks, 31, x, importance, sigma2, L, scales, mins, wide);
    for (int b = 0; b < blocks; b++) {
        y[b].d = float_to_half(scales[b]);
        y[b].m = float_to_half(-mins[b]);
        pack_five_bits(L + 32 * b, y[b].qs, y[b].qh);
    }
}

// --- super-blocks of 256 --------------------------------------------------------------------------
//
// Each K-quant fits its groups (with the importance where there is one, σ² then the super-block's),
// then quantizes the group scales, then requantizes the values against the rounded scales.

// four 2-bit values per byte: byte l of each 32 holds elements l, l+32, l+64, l+96 of a 128
static inline void pack_two_bits(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < 256; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6;
}

static void q2_K_block(const float *x, const float *importance, block_q2_K *y, int wide) {
    uint8_t L[256];
    float scales[16], mins[16], w[256];
    if (importance) {
        importance_weights(256, x, importance, sum_of_squares(256, x) / 256, w);
        fit_groups(wide, 16, 16, 3, x, w, L, scales, mins, -0.9f, 0.05f, 36, 0);
        float group_weight[16];
        uint8_t ls[16], lm[16];
        for (int j = 0; j < 16; j++) group_weight[j] = sum_of(16, w + 16 * j);
        y->d = float_to_half(fit_scale_positive(16, 15, scales, ls, group_weight));
        y->dmin = float_to_half(fit_scale_positive(16, 15, mins, lm, group_weight));
        for (int j = 0; j < 16; j++) y->scales[j] = (uint8_t)(ls[j] | lm[j] << 4);
    } else {
        float max_scale = 0, max_min = 0;
        for (int i = 0; i < 256; i++) w[i] = fabsf(x[i]);
        fit_groups(wide, 16, 16, 3, x, w, L, scales, mins, -0.5f, 0.1f, 15, 1);
        for (int j = 0; j < 16; j++) {
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(y->scales, 0, 16);
        y->d = float_to_half(max_scale > 0 ? max_scale / 15.f : 0.f);
        y->dmin = float_to_half(max_min > 0 ? max_min / 15.f : 0.f);
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; j++) y->scales[j] = (uint8_t)nearest(iscale * scales[j]);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < 16; j++) y->scales[j] |= (uint8_t)(nearest(iscale * mins[j]) << 4);
        }
    }
    for (int j = 0; j < 16; j++) {
        const float d = half_to_float(y->d) * (y->scales[j] & 0xF);
        if (!d) continue;
        const float dm = half_to_float(y->dmin) * (y->scales[j] >> 4);
        for (int i = 0; i < 16; i++) L[16 * j + i] = (uint8_t)MAX(0, MIN(3, nearest((x[16 * j + i] + dm) / d)));
    }
    pack_two_bits(L, y->qs);
}

static void q3_K_block(const float *x, const float *importance, block_q3_K *y, int wide) {
    int8_t L[256];
    float scales[16];
    memset(y->scales, 0, 12);
    if (importance) {
        float w[256], group_weight[16];
        int8_t ls[16];
        importance_weights(256, x, importance, 2 * sum_of_squares(256, x) / 256, w);
        for (int j = 0; j < 16; j++) group_weight[j] = sum_of(16, w + 16 * j);
        fit_groups_symmetric(wide, 16, 16, 4, x, w, L, scales);
        // the 16 scales as signed 6-bit levels of one scale, fitted with the groups' weights
        const float d = fit_scale_symmetric(16, 32, scales, group_weight, ls);
        for (int j = 0; j < 16; j++) {
            const int l = ls[j];
            if (j < 8) y->scales[j] = l & 0xF; else y->scales[j - 8] |= (l & 0xF) << 4;
            y->scales[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
        }
        y->d = float_to_half(d);
    } else {
        for (int j = 0; j < 16; j++) scales[j] = fit_scale_symmetric_refined(16, 4, x + 16 * j, L + 16 * j);
        const float max_scale = signed_extreme(scales, 16);
        if (max_scale) {
            // 16 six-bit scales: low nibbles in bytes 0-7 (two each), the top two bits in bytes 8-11
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                const int l = MAX(-32, MIN(31, (int8_t)nearest(iscale * scales[j]))) + 32;
                if (j < 8) y->scales[j] = l & 0xF; else y->scales[j - 8] |= (l & 0xF) << 4;
                y->scales[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
            }
            y->d = float_to_half(1 / iscale);
        } else {
            y->d = float_to_half(0.f);
        }
    }
    for (int j = 0; j < 16; j++) {
        const int low = j < 8 ? y->scales[j] & 0xF : y->scales[j - 8] >> 4;
        const int sc = (low | ((y->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
        const float d = half_to_float(y->d) * sc;
        if (!d) continue;
        for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(MAX(-4, MIN(3, nearest(x[16 * j + i] / d))) + 4);
    }
    // the third bit of element j goes to hmask[j % 32], bit j / 32; the low two bits to qs
    memset(y->hmask, 0, 32);
    uint8_t low[256];
    for (int j = 0; j < 256; j++) {
        if (L[j] > 3) y->hmask[j % 32] |= (uint8_t)(1 << (j / 32));
        low[j] = (uint8_t)(L[j] > 3 ? L[j] - 4 : L[j]);
    }
    pack_two_bits(low, y->qs);
}

// Q4_K and Q5_K: eight groups of 32 with 6-bit scales and mins, packed as dequantization reads
// them: group j < 4 in the low six bits of bytes j and j+4; j ≥ 4 in the nibbles of byte j+4 and
// the top two bits of bytes j-4 and j
static inline void pack_k_scales(const uint8_t *ls, const uint8_t *lm, uint8_t *packed) {
    for (int j = 0; j < 4; j++) {
        packed[j] = ls[j];
        packed[j + 4] = lm[j];
    }
    for (int j = 4; j < 8; j++) {
        packed[j + 4] = (ls[j] & 0xF) | (lm[j] & 0xF) << 4;
        packed[j - 4] |= (ls[j] >> 4) << 6;
        packed[j] |= (lm[j] >> 4) << 6;
    }
}

static inline void unpack_k_scale(int j, const uint8_t *packed, uint8_t *scale, uint8_t *min) {
    if (j < 4) {
        *scale = packed[j] & 63;
        *min = packed[j + 4] & 63;
    } else {
        *scale = (packed[j + 4] & 0xF) | (packed[j - 4] >> 6) << 4;
        *min = (packed[j + 4] >> 4) | (packed[j] >> 6) << 4;
    }
}

// The groups fitted, the scales and mins quantized and packed, the values requantized into L
static void fit_k_groups(const float *x, const float *importance, int nmax, float rmin, int nstep, uint8_t *L,
                         uint16_t *d_out, uint16_t *dmin_out, uint8_t *packed, int wide) {
    float scales[8], mins[8], w[256];
    uint8_t ls[8], lm[8];
    if (importance) {
        const float sigma2 = 2 * sum_of_squares(256, x) / 256;
        float group_weight[8];
        importance_weights(256, x, importance, sigma2, w);
        fit_groups(wide, 8, 32, nmax, x, w, L, scales, mins, -0.9f, 0.05f, 36, 0);
        for (int j = 0; j < 8; j++) group_weight[j] = sum_of(32, w + 32 * j);
        *d_out = float_to_half(fit_scale_positive(8, 63, scales, ls, group_weight));
        *dmin_out = float_to_half(fit_scale_positive(8, 63, mins, lm, group_weight));
        if (nmax == 31)   // Q5_K clamps the levels; Q4_K does not (they never exceed 63 but by wrapping)
            for (int j = 0; j < 8; j++) { ls[j] = MIN(63, ls[j]); lm[j] = MIN(63, lm[j]); }
    } else {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
            const float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) w[32 * j + l] = av_x + fabsf(x[32 * j + l]);
        }
        fit_groups(wide, 8, 32, nmax, x, w, L, scales, mins, rmin, 0.1f, nstep, 0);
        for (int j = 0; j < 8; j++) {
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < 8; j++) {
            ls[j] = MIN(63, (uint8_t)nearest(inv_scale * scales[j]));
            lm[j] = MIN(63, (uint8_t)nearest(inv_min * mins[j]));
        }
        *d_out = float_to_half(max_scale / 63.f);
        *dmin_out = float_to_half(max_min / 63.f);
    }
    pack_k_scales(ls, lm, packed);
    for (int j = 0; j < 8; j++) {
        uint8_t scale, min;
        unpack_k_scale(j, packed, &scale, &min);
        const float d = half_to_float(*d_out) * scale;
        if (!d) continue;
        const float dm = half_to_float(*dmin_out) * min;
        for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)MAX(0, MIN(nmax, nearest((x[32 * j + i] + dm) / d)));
    }
}

static void q4_K_block(const float *x, const float *importance, block_q4_K *y, int wide) {
    uint8_t L[256];
    fit_k_groups(x, importance, 15, -1.f, 20, L, &y->d, &y->dmin, y->scales, wide);
    for (int j = 0; j < 256; j += 64)
        for (int l = 0; l < 32; l++) y->qs[j / 2 + l] = L[j + l] | L[j + l + 32] << 4;
}

static void q5_K_block(const float *x, const float *importance, block_q5_K *y, int wide) {
    uint8_t L[256];
    fit_k_groups(x, importance, 31, -0.5f, 15, L, &y->d, &y->dmin, y->scales, wide);
    // low nibbles as Q4_K; the fifth bit of group g's element l goes to qh[l], bit g
    memset(y->qh, 0, 32);
    for (int j = 0; j < 256; j += 64)
        for (int l = 0; l < 32; l++) {
            const uint8_t a = L[j + l], b = L[j + l + 32];
            y->qs[j / 2 + l] = (a & 0xF) | (b & 0xF) << 4;
            y->qh[l] |= (uint8_t)((a >> 4) << (j / 32) | (b >> 4) << (j / 32 + 1));
        }
}

// with an importance matrix, each group's fit is weighted by the importance alone
static void q6_K_block(const float *x, const float *importance, block_q6_K *y, int wide) {
    int8_t L[256];
    float scales[16];
    fit_groups_symmetric(wide, 16, 16, 32, x, importance, L, scales);
    const float max_scale = signed_extreme(scales, 16);
    if (fabsf(max_scale) < group_epsilon) { memset(y, 0, sizeof *y); return; }
    const float iscale = -128.f / max_scale;
    y->d = float_to_half(1 / iscale);
    for (int j = 0; j < 16; j++) y->scales[j] = (int8_t)MIN(127, nearest(iscale * scales[j]));
    for (int j = 0; j < 16; j++) {
        const float d = half_to_float(y->d) * y->scales[j];
        if (!d) continue;
        for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(MAX(-32, MIN(31, nearest(x[16 * j + i] / d))) + 32);
    }
    // per 128: ql holds the low nibbles of (l, l+64) and (l+32, l+96); qh the top two bits of all four
    for (int j = 0; j < 256; j += 128) {
        uint8_t *ql = y->ql + j / 2, *qh = y->qh + j / 4;
        const uint8_t *q = (const uint8_t *)L + j;
        for (int l = 0; l < 32; l++) {
            ql[l] = (q[l] & 0xF) | (q[l + 64] & 0xF) << 4;
            ql[l + 32] = (q[l + 32] & 0xF) | (q[l + 96] & 0xF) << 4;
            qh[l] = q[l] >> 4 | (q[l + 32] >> 4) << 2 | (q[l + 64] >> 4) << 4 | (q[l + 96] >> 4) << 6;
        }
    }
}

// --- entry points ---------------------------------------------------------------------------------

static int quantize_row(int type, const float *x, void *y, int64_t n, const float *importance, int wide) {
    if (importance && (type == QUILL_Q4_0 || type == QUILL_Q4_1 || type == QUILL_Q5_0 || type == QUILL_Q5_1)) {
        // the 32-blocks weight by the whole row's mean square
        if (n % 32) return -1;
        const float sigma2 = sum_of_squares(n, x) / n;
        for (int64_t i = 0; i < n / 32; i += 8) {
            const int blocks = (int)MIN(8, n / 32 - i);
            const float *xb = x + 32 * i, *ib = importance + 32 * i;
            switch (type) {
            case QUILL_Q4_0: q4_0_blocks_weighted(blocks, xb, ib, sigma2, (block_q4_0 *)y + i, wide); break;
            case QUILL_Q5_0: q5_0_blocks_weighted(blocks, xb, ib, sigma2, (block_q5_0 *)y + i, wide); break;
            case QUILL_Q4_1: q4_1_blocks_weighted(blocks, xb, ib, sigma2, (block_q4_1 *)y + i, wide); break;
            default: q5_1_blocks_weighted(blocks, xb, ib, sigma2, (block_q5_1 *)y + i, wide); break;
            }
        }
        return 0;
    }
    switch (type) {
#define BLOCKS(size, block_t, ...) \
        if (n % (size)) return -1; \
        for (int64_t i = 0; i < n / (size); i++) { \
            const float *xb = x + i * (size), *ib = importance ? importance + i * (size) : NULL; (void)ib; \
            block_t *yb = (block_t *)y + i; __VA_ARGS__; } \
        return 0;
    case QUILL_Q4_0: BLOCKS(32, block_q4_0, q4_0_block(xb, yb))
    case QUILL_Q4_1: BLOCKS(32, block_q4_1, q4_1_block(xb, yb))
    case QUILL_Q5_0: BLOCKS(32, block_q5_0, q5_0_block(xb, yb))
    case QUILL_Q5_1: BLOCKS(32, block_q5_1, q5_1_block(xb, yb))
    case QUILL_Q2_K: BLOCKS(256, block_q2_K, q2_K_block(xb, ib, yb, wide))
    case QUILL_Q3_K: BLOCKS(256, block_q3_K, q3_K_block(xb, ib, yb, wide))
    case QUILL_Q4_K: BLOCKS(256, block_q4_K, q4_K_block(xb, ib, yb, wide))
    case QUILL_Q5_K: BLOCKS(256, block_q5_K, q5_K_block(xb, ib, yb, wide))
    case QUILL_Q6_K: BLOCKS(256, block_q6_K, q6_K_block(xb, ib, yb, wide))
#undef BLOCKS
    case QUILL_Q8_0:   // takes no importance
        if (n % 32) return -1;
        if (wide) quill_quantize_row_q8_0(x, y, n);   // the activation quantizer: AVX2 where present, the same bytes
        else quill_quantize_row_q8_0_ref(x, y, n);
        return 0;
    default:
        return -1;
    }
}

#if QUILL_X86
static int wide_available(void) { return cpu_has_avx2(); }
#else
static int wide_available(void) { return 0; }
#endif

int quill_quantize_row(int type, const float *x, void *y, int64_t n, const float *importance) {
    return quantize_row(type, x, y, n, importance, wide_available());
}

int quill_quantize_row_on(const char *isa, int type, const float *x, void *y, int64_t n, const float *importance) {
    if (!strcmp(isa, "plain")) return quantize_row(type, x, y, n, importance, 0);
    if (!strcmp(isa, "avx2") && wide_available()) return quantize_row(type, x, y, n, importance, 1);
    return -2;
}
