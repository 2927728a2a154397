// Elementwise exponentials and one-query attention: the SiLU-gated MLP activation, softmax's
// exp-and-sum, and a decoding step's attention for one head. expf in a loop was 10% of prompt
// processing; the AVX2 kernels evaluate eight exponentials at once (a degree-6 polynomial on
// [-ln2/2, ln2/2] and an exponent shift, within 2 ulp of libm's expf), and the plain twins use expf.
#include "quill_kernels.h"
#include "blocks.h"
#include <math.h>

// --- plain twins ------------------------------------------------------------------------------

void quill_silu_mul_ref(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = gate[i] / (1 + expf(-gate[i])) * up[i];
}

double quill_log_sum_exp_ref(const float *x, int64_t n) {
    if (n <= 0) return -INFINITY;
    float max = x[0];
    for (int64_t i = 1; i < n; i++) if (x[i] > max) max = x[i];
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)expf(x[i] - max);
    return (double)max + log(sum);
}

float quill_exp_sum_ref(float *x, int64_t n, float shift) {
    float sum = 0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - shift); sum += x[i]; }
    return sum;
}

void quill_attend_one_ref(const float *q, const float *keys, const float *values, size_t kv_stride, int64_t count,
                          int64_t hs, float scale, float *scores, float *out) {
    float max = -INFINITY;
    for (int64_t t = 0; t < count; t++) {
        float dot = 0;
        for (int64_t d = 0; d < hs; d++) dot += q[d] * keys[t * kv_stride + d];
        scores[t] = dot * scale;
        max = fmaxf(max, scores[t]);
    }
    const float inverse = 1 / quill_exp_sum_ref(scores, count, max);
    for (int64_t d = 0; d < hs; d++) out[d] = 0;
    for (int64_t t = 0; t < count; t++) {
        const float p = scores[t] * inverse;
        for (int64_t d = 0; d < hs; d++) out[d] += p * values[t * kv_stride + d];
    }
}

// training: the SiLU- and GELU-gated activations' gradients, and GPT-2's tanh GELU forward and backward
void quill_silu_mul_backward_ref(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float s = 1 / (1 + expf(-gate[i])), silu = gate[i] * s;
        dup[i] = dout[i] * silu;
        dgate[i] = dout[i] * up[i] * s * (1 + gate[i] * (1 - s));
    }
}

#define GELU_SCALE 0.7978845608028654f   /* sqrt(2/pi) */
// gelu(v) = ½v(1 + tanh y) = v·σ(2y), y = √(2/π)(v + 0.044715v³): the sigmoid form has no
// cancellation where tanh y nears -1 (v below about -3), so the product keeps its relative precision
void quill_gelu_mul_ref(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float v = gate[i], y = GELU_SCALE * (v + 0.044715f * v * v * v);
        out[i] = v / (1 + expf(-2 * y)) * up[i];
    }
}

// the GeGLU's gradients: with g = v·σ(2y), g' = σ(2y) + 2v·σ(2y)(1 − σ(2y))·y'(v)
void quill_gelu_mul_backward_ref(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float v = gate[i], y = GELU_SCALE * (v + 0.044715f * v * v * v);
        const float s = 1 / (1 + expf(-2 * y)), slope = GELU_SCALE * (1 + 3 * 0.044715f * v * v);
        dup[i] = dout[i] * v * s;
        dgate[i] = dout[i] * up[i] * (s + 2 * v * s * (1 - s) * slope);
    }
}

void quill_gelu_tanh_ref(float *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        out[i] = 0.5f * v * (1 + tanhf(GELU_SCALE * (v + 0.044715f * v * v * v)));
    }
}

void quill_gelu_tanh_backward_ref(float *dx, const float *dout, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i], t = tanhf(GELU_SCALE * (v + 0.044715f * v * v * v));
        const float local = 0.5f * (1 + t) + 0.5f * v * (1 - t * t) * GELU_SCALE * (1 + 3 * 0.044715f * v * v);
        dx[i] += local * dout[i];
    }
}

// --- AVX2 -------------------------------------------------------------------------------------
#ifdef QUILL_X86

// e^x for 8 lanes: x = n·ln2 + r, |r| ≤ ln2/2, e^r by its Taylor polynomial, 2^n into the exponent
AVX2 static inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-87.3365447505531f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);        // ln2 in two parts: hi exact,
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);             // lo the rest
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX2 static inline __m256 sigmoid8(__m256 g) {
    return _mm256_div_ps(_mm256_set1_ps(1), _mm256_add_ps(_mm256_set1_ps(1), exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

AVX2 static void silu_mul_avx2(float *out, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid8(g)), _mm256_loadu_ps(up + i)));
    }
    quill_silu_mul_ref(out + i, gate + i, up + i, n - i);
}

// the largest value (max_ps, as the twin's comparisons for finite values), then Σ e^(x - max) with
// each lane's exponentials added in double
AVX2 static double log_sum_exp_avx2(const float *x, int64_t n) {
    if (n < 8) return quill_log_sum_exp_ref(x, n);
    __m256 m8 = _mm256_loadu_ps(x);
    int64_t i = 8;
    for (; i + 8 <= n; i += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(x + i));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    float max = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    for (; i < n; i++) if (x[i] > max) max = x[i];
    const __m256 shift = _mm256_set1_ps(max);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(lo, hi));
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) sum += (double)expf(x[i] - max);
    return (double)max + log(sum);
}

AVX2 static float exp_sum_avx2(float *x, int64_t n, float shift) {
    __m256 sum = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(shift)));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    return hsum8(sum) + quill_exp_sum_ref(x + i, n - i, shift);
}

// head sizes that are multiples of 8 up to 256: q and the output stay in registers / on the stack,
// four keys at a time give four independent FMA chains
AVX2 static void attend_one_avx2(const float *q, const float *keys, const float *values, size_t kv_stride, int64_t count,
                                 int64_t hs, float scale, float *scores, float *out) {
    const int lanes = (int)(hs / 8);
    __m256 qv[32], acc[32];
    for (int l = 0; l < lanes; l++) qv[l] = _mm256_loadu_ps(q + 8 * l);
    float max = -INFINITY;
    int64_t t = 0;
    for (; t + 4 <= count; t += 4) {
        const float *k = keys + t * kv_stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int l = 0; l < lanes; l++) {
            a0 = _mm256_fmadd_ps(qv[l], _mm256_loadu_ps(k + 8 * l), a0);
            a1 = _mm256_fmadd_ps(qv[l], _mm256_loadu_ps(k + kv_stride + 8 * l), a1);
            a2 = _mm256_fmadd_ps(qv[l], _mm256_loadu_ps(k + 2 * kv_stride + 8 * l), a2);
            a3 = _mm256_fmadd_ps(qv[l], _mm256_loadu_ps(k + 3 * kv_stride + 8 * l), a3);
        }
        // four horizontal sums at once
        const __m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3), h = _mm256_hadd_ps(h01, h23);
        const __m128 s = _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)), _mm_set1_ps(scale));
        _mm_storeu_ps(scores + t, s);
        for (int j = 0; j < 4; j++) max = fmaxf(max, scores[t + j]);
    }
    for (; t < count; t++) {
        __m256 a = _mm256_setzero_ps();
        for (int l = 0; l < lanes; l++) a = _mm256_fmadd_ps(qv[l], _mm256_loadu_ps(keys + t * kv_stride + 8 * l), a);
        scores[t] = hsum8(a) * scale;
        max = fmaxf(max, scores[t]);
    }
    const float inverse = 1 / exp_sum_avx2(scores, count, max);
    for (int l = 0; l < lanes; l++) acc[l] = _mm256_setzero_ps();
    for (t = 0; t < count; t++) {
        const __m256 p = _mm256_set1_ps(scores[t] * inverse);
        const float *v = values + t * kv_stride;
        for (int l = 0; l < lanes; l++) acc[l] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * l), acc[l]);
    }
    for (int l = 0; l < lanes; l++) _mm256_storeu_ps(out + 8 * l, acc[l]);
}

// tanh(y) = 1 - 2 / (e^{2y} + 1), saturating correctly at both ends through exp8's clamp
AVX2 static inline __m256 tanh8(__m256 y) {
    const __m256 e = exp8(_mm256_add_ps(y, y));
    return _mm256_sub_ps(_mm256_set1_ps(1), _mm256_div_ps(_mm256_set1_ps(2), _mm256_add_ps(e, _mm256_set1_ps(1))));
}

AVX2 static void silu_mul_backward_avx2(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i), d = _mm256_loadu_ps(dout + i), s = sigmoid8(g);
        _mm256_storeu_ps(dup + i, _mm256_mul_ps(d, _mm256_mul_ps(g, s)));
        const __m256 local = _mm256_mul_ps(s, _mm256_fmadd_ps(g, _mm256_sub_ps(one, s), one));
        _mm256_storeu_ps(dgate + i, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(up + i)), local));
    }
    quill_silu_mul_backward_ref(dgate + i, dup + i, dout + i, gate + i, up + i, n - i);
}

AVX2 static inline __m256 gelu_inner8(__m256 v) {
    const __m256 cube = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), _mm256_mul_ps(v, v));
    return tanh8(_mm256_mul_ps(_mm256_set1_ps(GELU_SCALE), _mm256_add_ps(v, cube)));
}

AVX2 static void gelu_tanh_avx2(float *out, const float *x, int64_t n) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, gelu_inner8(v))));
    }
    quill_gelu_tanh_ref(out + i, x + i, n - i);
}

AVX2 static void gelu_mul_avx2(float *out, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(gate + i);
        const __m256 cube = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), _mm256_mul_ps(v, v));
        const __m256 twice = _mm256_mul_ps(_mm256_set1_ps(2 * GELU_SCALE), _mm256_add_ps(v, cube));   // 2y
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(v, sigmoid8(twice)), _mm256_loadu_ps(up + i)));
    }
    quill_gelu_mul_ref(out + i, gate + i, up + i, n - i);
}

AVX2 static void gelu_mul_backward_avx2(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(gate + i), d = _mm256_loadu_ps(dout + i), vv = _mm256_mul_ps(v, v);
        const __m256 twice = _mm256_mul_ps(_mm256_set1_ps(2 * GELU_SCALE), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), _mm256_mul_ps(vv, v), v));
        const __m256 s = sigmoid8(twice);
        const __m256 slope = _mm256_mul_ps(_mm256_set1_ps(2 * GELU_SCALE), _mm256_fmadd_ps(_mm256_set1_ps(3 * 0.044715f), vv, one));
        const __m256 local = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(v, s), _mm256_sub_ps(one, s)), slope, s);
        _mm256_storeu_ps(dup + i, _mm256_mul_ps(d, _mm256_mul_ps(v, s)));
        _mm256_storeu_ps(dgate + i, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(up + i)), local));
    }
    quill_gelu_mul_backward_ref(dgate + i, dup + i, dout + i, gate + i, up + i, n - i);
}

AVX2 static void gelu_tanh_backward_avx2(float *dx, const float *dout, const float *x, int64_t n) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i), t = gelu_inner8(v);
        const __m256 sech2 = _mm256_fnmadd_ps(t, t, one);
        const __m256 slope = _mm256_mul_ps(_mm256_set1_ps(GELU_SCALE), _mm256_fmadd_ps(_mm256_set1_ps(3 * 0.044715f), _mm256_mul_ps(v, v), one));
        const __m256 local = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(half, v), sech2), slope, _mm256_mul_ps(half, _mm256_add_ps(one, t)));
        _mm256_storeu_ps(dx + i, _mm256_fmadd_ps(local, _mm256_loadu_ps(dout + i), _mm256_loadu_ps(dx + i)));
    }
    quill_gelu_tanh_backward_ref(dx + i, dout + i, x + i, n - i);
}
#endif

// --- dispatch ---------------------------------------------------------------------------------

static void (*silu_mul)(float *, const float *, const float *, int64_t) = quill_silu_mul_ref;
static float (*exp_sum)(float *, int64_t, float) = quill_exp_sum_ref;
static double (*log_sum_exp)(const float *, int64_t) = quill_log_sum_exp_ref;
static void (*silu_mul_backward)(float *, float *, const float *, const float *, const float *, int64_t) = quill_silu_mul_backward_ref;
static void (*gelu_mul)(float *, const float *, const float *, int64_t) = quill_gelu_mul_ref;
static void (*gelu_mul_backward)(float *, float *, const float *, const float *, const float *, int64_t) = quill_gelu_mul_backward_ref;
static void (*gelu_tanh)(float *, const float *, int64_t) = quill_gelu_tanh_ref;
static void (*gelu_tanh_backward)(float *, const float *, const float *, int64_t) = quill_gelu_tanh_backward_ref;
static int fast_attention = 0;

__attribute__((constructor)) static void choose_activation_kernels(void) {
#ifdef QUILL_X86
    if (cpu_has_avx2()) { silu_mul = silu_mul_avx2; exp_sum = exp_sum_avx2; log_sum_exp = log_sum_exp_avx2; fast_attention = 1;
        silu_mul_backward = silu_mul_backward_avx2; gelu_tanh = gelu_tanh_avx2; gelu_mul = gelu_mul_avx2;
        gelu_mul_backward = gelu_mul_backward_avx2; gelu_tanh_backward = gelu_tanh_backward_avx2; }
#endif
}

void quill_silu_mul(float *out, const float *gate, const float *up, int64_t n) { silu_mul(out, gate, up, n); }
float quill_exp_sum(float *x, int64_t n, float shift) { return exp_sum(x, n, shift); }
double quill_log_sum_exp(const float *x, int64_t n) { return log_sum_exp(x, n); }
void quill_silu_mul_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    silu_mul_backward(dgate, dup, dout, gate, up, n);
}
void quill_gelu_tanh(float *out, const float *x, int64_t n) { gelu_tanh(out, x, n); }
void quill_gelu_mul(float *out, const float *gate, const float *up, int64_t n) { gelu_mul(out, gate, up, n); }
void quill_gelu_tanh_backward(float *dx, const float *dout, const float *x, int64_t n) { gelu_tanh_backward(dx, dout, x, n); }
void quill_gelu_mul_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    gelu_mul_backward(dgate, dup, dout, gate, up, n);
}

void quill_attend_one(const float *q, const float *keys, const float *values, size_t kv_stride, int64_t count,
                      int64_t hs, float scale, float *scores, float *out) {
#ifdef QUILL_X86
    if (fast_attention && hs % 8 == 0 && hs <= 256) {
        attend_one_avx2(q, keys, values, kv_stride, count, hs, scale, scores, out);
        return;
    }
#endif
    quill_attend_one_ref(q, keys, values, kv_stride, count, hs, scale, scores, out);
}

int quill_cpu_has_avx512(void) {
#ifdef QUILL_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}
