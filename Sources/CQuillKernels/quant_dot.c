#include "quill_kernels.h"
#include "blocks.h"
#include <math.h>

// --- activation quantization (ggml's quantize_row_q8_0_ref / q8_1_ref) ---------------------------

// one block of 32: int8 values, their scale d, and the sum of the int8 values
static inline float quantize_block(const float *x, int8_t *qs, int *sum) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    *sum = 0;
    for (int j = 0; j < 32; j++) { qs[j] = (int8_t)roundf(x[j] * id); *sum += qs[j]; }
    return d;
}

// a block's scale d and its int8 values from one of the two block quantizers below
typedef float (*block_fn)(const float *, int8_t *, int *);

static void quantize_row_q8_0_with(block_fn quantize, const float *x, void *vy, int64_t k) {
    block_q8_0 *y = vy;
    int sum;
    for (int64_t i = 0; i < k / 32; i++) y[i].d = float_to_half(quantize(x + i * 32, y[i].qs, &sum));
}

static void quantize_row_q8_1_with(block_fn quantize, const float *x, void *vy, int64_t k) {
    block_q8_1 *y = vy;
    int sum;
    for (int64_t i = 0; i < k / 32; i++) {
        const float d = quantize(x + i * 32, y[i].qs, &sum);
        y[i].d = float_to_half(d);
        y[i].s = float_to_half(d * (float)sum);
    }
}

void quill_quantize_row_q8_0_ref(const float *x, void *y, int64_t k) { quantize_row_q8_0_with(quantize_block, x, y, k); }
void quill_quantize_row_q8_1_ref(const float *x, void *y, int64_t k) { quantize_row_q8_1_with(quantize_block, x, y, k); }

// --- plain twins ------------------------------------------------------------------------------

float quill_vec_dot_q4_0_q8_0_ref(int64_t n, const void *vx, const void *vy) {
    const block_q4_0 *x = vx; const block_q8_0 *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int s = 0;
        for (int j = 0; j < 16; j++) {
            s += ((x[i].qs[j] & 0x0F) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sum += (float)s * (half_to_float(x[i].d) * half_to_float(y[i].d));
    }
    return sum;
}

float quill_vec_dot_q4_1_q8_1_ref(int64_t n, const void *vx, const void *vy) {
    const block_q4_1 *x = vx; const block_q8_1 *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int s = 0;
        for (int j = 0; j < 16; j++) s += (x[i].qs[j] & 0x0F) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        sum += (half_to_float(x[i].d) * half_to_float(y[i].d)) * (float)s + half_to_float(x[i].m) * half_to_float(y[i].s);
    }
    return sum;
}

float quill_vec_dot_q8_0_q8_0_ref(int64_t n, const void *vx, const void *vy) {
    const block_q8_0 *x = vx; const block_q8_0 *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int s = 0;
        for (int j = 0; j < 32; j++) s += x[i].qs[j] * y[i].qs[j];
        sum += (float)s * (half_to_float(x[i].d) * half_to_float(y[i].d));
    }
    return sum;
}

static inline float bf16_to_float(uint16_t h) { uint32_t bits = (uint32_t)h << 16; float f; memcpy(&f, &bits, 4); return f; }

float quill_vec_dot_f16_f32_ref(int64_t n, const void *vx, const void *vy) {
    const uint16_t *x = vx; const float *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += half_to_float(x[i]) * y[i];
    return sum;
}

static void convert_f16_ref(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = half_to_float(x[i]);
}

float quill_vec_dot_bf16_f32_ref(int64_t n, const void *vx, const void *vy) {
    const uint16_t *x = vx; const float *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += bf16_to_float(x[i]) * y[i];
    return sum;
}

// --- AVX2 -------------------------------------------------------------------------------------
#ifdef QUILL_X86

// Σ over 32 lanes of unsigned a × signed b, as 8 int32 sums → float
AVX2 static inline __m256 dot_u8_s8(__m256i a, __m256i b) {
    const __m256i pairs = _mm256_maddubs_epi16(a, b);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// F16C conversion: one instruction instead of the portable bit juggling
AVX2 static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

AVX2 static void convert_f16_avx2(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = h2f(x[i]);
}

// roundf (halves away from zero, the twin's rounding) exactly: truncate, then step away from
// zero where the dropped fraction is at least one half (x - trunc(x) is exact)
AVX2 static inline __m256 round_half_away(__m256 v) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 fraction = _mm256_andnot_ps(sign_bit, _mm256_sub_ps(v, t));
    const __m256 away = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign_bit));
    return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(fraction, _mm256_set1_ps(0.5f), _CMP_GE_OQ), away));
}

// quantize_block, 8 lanes at a time: the same d, values and sum
AVX2 static float quantize_block_avx2(const float *x, int8_t *qs, int *sum) {
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 v[4], amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_loadu_ps(x + 8 * j);
        amax = _mm256_max_ps(amax, _mm256_and_ps(v[j], magnitude));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float d = _mm_cvtss_f32(m) / 127, id = d ? 1.0f / d : 0.0f;
    __m256i q[4], total = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        q[j] = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v[j], _mm256_set1_ps(id))));
        total = _mm256_add_epi32(total, q[j]);
    }
    // 32 int32 → 32 int8: the packs interleave 128-bit lanes, the permute puts them back in order
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)qs, _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(1, 0, 3, 2)));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(2, 3, 0, 1)));
    *sum = _mm_cvtsi128_si32(t);
    return d;
}

AVX2 static float vec_dot_q4_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const block_q4_0 *x = vx; const block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i qx = _mm256_sub_epi8(unpack_nibbles(x[i].qs), _mm256_set1_epi8(8));
        const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        // |qx|·sign(qy, qx): maddubs needs an unsigned left operand
        const __m256 p = dot_u8_s8(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), p, acc);
    }
    return hsum8(acc);
}

AVX2 static float vec_dot_q4_1_q8_1_avx2(int64_t n, const void *vx, const void *vy) {
    const block_q4_1 *x = vx; const block_q8_1 *y = vy;
    // two blocks per step into two accumulators: the fmadd chain, not the loads, limits one
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float mins = 0;
    const int64_t nb = n / 32;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const __m256 p0 = dot_u8_s8(unpack_nibbles(x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs));
        const __m256 p1 = dot_u8_s8(unpack_nibbles(x[i + 1].qs), _mm256_loadu_si256((const __m256i *)y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d)), p1, acc1);
        mins += h2f(x[i].m) * h2f(y[i].s) + h2f(x[i + 1].m) * h2f(y[i + 1].s);
    }
    for (; i < nb; i++) {
        const __m256 p = dot_u8_s8(unpack_nibbles(x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), p, acc0);
        mins += h2f(x[i].m) * h2f(y[i].s);
    }
    return hsum8(_mm256_add_ps(acc0, acc1)) + mins;
}

AVX2 static float vec_dot_q8_0_q8_0_avx2(int64_t n, const void *vx, const void *vy) {
    const block_q8_0 *x = vx; const block_q8_0 *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const int64_t nb = n / 32;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const __m256i qx0 = _mm256_loadu_si256((const __m256i *)x[i].qs), qy0 = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256i qx1 = _mm256_loadu_si256((const __m256i *)x[i + 1].qs), qy1 = _mm256_loadu_si256((const __m256i *)y[i + 1].qs);
        const __m256 p0 = dot_u8_s8(_mm256_sign_epi8(qx0, qx0), _mm256_sign_epi8(qy0, qx0));
        const __m256 p1 = dot_u8_s8(_mm256_sign_epi8(qx1, qx1), _mm256_sign_epi8(qy1, qx1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d)), p1, acc1);
    }
    for (; i < nb; i++) {
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs), qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256 p = dot_u8_s8(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), p, acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

// 16-bit floats widened 8 at a time (F16C for f16, a shift for bf16), four FMA chains
#define DOT_HALF_AVX2(name, widen, scalar)                                                         \
AVX2 static float name(int64_t n, const void *vx, const void *vy) {                              \
    const uint16_t *x = vx; const float *y = vy;                                                   \
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
    int64_t i = 0;                                                                                 \
    for (; i + 32 <= n; i += 32) {                                                                 \
        for (int u = 0; u < 4; u++) {                                                              \
            const __m128i h = _mm_loadu_si128((const __m128i *)(x + i + 8 * u));                 \
            acc[u] = _mm256_fmadd_ps(widen(h), _mm256_loadu_ps(y + i + 8 * u), acc[u]);          \
        }                                                                                          \
    }                                                                                              \
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))); \
    for (; i < n; i++) sum += scalar(x[i]) * y[i];                                                 \
    return sum;                                                                                    \
}
AVX2 static inline __m256 widen_f16(__m128i h) { return _mm256_cvtph_ps(h); }
AVX2 static inline __m256 widen_bf16(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
DOT_HALF_AVX2(vec_dot_f16_f32_avx2, widen_f16, half_to_float)
DOT_HALF_AVX2(vec_dot_bf16_f32_avx2, widen_bf16, bf16_to_float)
#endif

// --- dispatch ---------------------------------------------------------------------------------

typedef float (*dot_fn)(int64_t, const void *, const void *);
static dot_fn dot_q4_0 = quill_vec_dot_q4_0_q8_0_ref;
static dot_fn dot_q4_1 = quill_vec_dot_q4_1_q8_1_ref;
static dot_fn dot_q8_0 = quill_vec_dot_q8_0_q8_0_ref;
static dot_fn dot_f16 = quill_vec_dot_f16_f32_ref;
static dot_fn dot_bf16 = quill_vec_dot_bf16_f32_ref;
static void (*convert_f16)(const uint16_t *, float *, int64_t) = convert_f16_ref;
static block_fn quantize_q8 = quantize_block;
static const char *isa = "scalar";

__attribute__((constructor)) static void choose_kernels(void) {
#ifdef QUILL_X86
    if (cpu_has_avx2()) {
        dot_q4_0 = vec_dot_q4_0_q8_0_avx2;
        dot_q4_1 = vec_dot_q4_1_q8_1_avx2;
        dot_q8_0 = vec_dot_q8_0_q8_0_avx2;
        dot_f16 = vec_dot_f16_f32_avx2;
        dot_bf16 = vec_dot_bf16_f32_avx2;
        convert_f16 = convert_f16_avx2;
        quantize_q8 = quantize_block_avx2;
        isa = "avx2";
    }
#endif
}

const char *quill_kernel_isa(void) { return isa; }

void quill_quantize_row_q8_0(const float *x, void *y, int64_t k) { quantize_row_q8_0_with(quantize_q8, x, y, k); }
void quill_quantize_row_q8_1(const float *x, void *y, int64_t k) { quantize_row_q8_1_with(quantize_q8, x, y, k); }

float quill_vec_dot_q4_0_q8_0(int64_t n, const void *x, const void *y) { return dot_q4_0(n, x, y); }
float quill_vec_dot_q4_1_q8_1(int64_t n, const void *x, const void *y) { return dot_q4_1(n, x, y); }
float quill_vec_dot_q8_0_q8_0(int64_t n, const void *x, const void *y) { return dot_q8_0(n, x, y); }
float quill_vec_dot_f16_f32(int64_t n, const void *x, const void *y) { return dot_f16(n, x, y); }
float quill_vec_dot_bf16_f32(int64_t n, const void *x, const void *y) { return dot_bf16(n, x, y); }

int quill_activation_type(int weight_type) {
    switch (weight_type) {
    case QUILL_Q4_0: case QUILL_Q5_0: case QUILL_Q8_0: return QUILL_Q8_0;
    case QUILL_Q4_1: case QUILL_Q5_1: return QUILL_Q8_1;
    case QUILL_Q4_K: case QUILL_Q5_K: case QUILL_Q6_K: return QUILL_Q8_K;
    case QUILL_F16: case QUILL_BF16: return QUILL_F32;
    default: return -1;
    }
}

void quill_matvec(int weight_type, const void *w, size_t row_bytes, const void *xq, size_t x_stride, int64_t n,
                  float *out, size_t out_stride, int64_t cols, int64_t row_begin, int64_t row_end) {
    dot_fn dot;
    switch (weight_type) {
    case QUILL_Q4_0: dot = dot_q4_0; break;
    case QUILL_Q4_1: dot = dot_q4_1; break;
    case QUILL_Q5_0: dot = quill_vec_dot_q5_0_q8_0; break;   // kquants.c, dispatched there
    case QUILL_Q5_1: dot = quill_vec_dot_q5_1_q8_1; break;
    case QUILL_Q4_K: dot = quill_vec_dot_q4_K_q8_K; break;
    case QUILL_Q5_K: dot = quill_vec_dot_q5_K_q8_K; break;
    case QUILL_Q6_K: dot = quill_vec_dot_q6_K_q8_K; break;
    case QUILL_F16: dot = dot_f16; break;
    case QUILL_BF16: dot = dot_bf16; break;
    default: dot = dot_q8_0;
    }
    const uint8_t *rows = w, *end = rows + (size_t)row_end * row_bytes, *x = xq;
    const size_t ahead = 2048;   // bytes: the hardware prefetcher alone leaves the first loads of a row waiting
    for (int64_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = rows + (size_t)r * row_bytes;
        for (size_t b = 0; b < row_bytes; b += 64) if (row + ahead + b < end) __builtin_prefetch(row + ahead + b);
        // the row comes from memory once; the activation rows after the first find it in L1
        for (int64_t i = 0; i < n; i++) out[(size_t)i * out_stride + r] = dot(cols, row, x + (size_t)i * x_stride);
    }
}

void quill_convert_f16_row(const uint16_t *x, float *y, int64_t n) { convert_f16(x, y, n); }

void quill_convert_bf16_row(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = bf16_to_float(x[i]);   // a shift: the compiler vectorizes it
}
