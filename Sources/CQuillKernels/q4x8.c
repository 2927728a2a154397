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
//
// Prompts and batches of four rows or more run, where AVX-512 VNNI is present, on a four-row
// kernel: the nibbles are unsigned already, so vpdpbusd sums them against the int8 activations
// in int32 with no int16 stage, and each loaded weight vector meets four rows instead of two.
// Q4_0's 8·Σy per row and block is summed once per call into a table. QUILL_NO_VNNI=1 keeps AVX2.
#include "quill_kernels.h"
#include "blocks.h"
#include <math.h>
#include <stdlib.h>

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


// NR activation rows (one: decoding; four: prompts and batches). Each row's low and high nibbles
// of even and odd steps add into four sums (four vpdpbusd chains for one row, sixteen for four,
// against its four-cycle latency);
// `ysum8` holds 8·Σy of each row's blocks (Q4_0) or nothing (Q4_1). The float steps are the
// twin's, in its order.
#define Q4X8_VNNI(NAME, NR)                                                                              \
VNNI static void NAME(const block_q4x8 *x, const block_q8_1 *const *ys, const int32_t *const *ysum8, int64_t nb, \
                      float *const *outs) {                                                              \
    const __m256i mask = _mm256_set1_epi8(0x0F);                                                         \
    __m256 acc[NR];                                                                                      \
    for (int r = 0; r < NR; r++) acc[r] = _mm256_setzero_ps();                                           \
    for (int64_t b = 0; b < nb; b++) {                                                                   \
        __m256i lo_sum[NR][2], hi_sum[NR][2];                                                            \
        for (int r = 0; r < NR; r++) for (int e = 0; e < 2; e++) { lo_sum[r][e] = _mm256_setzero_si256(); hi_sum[r][e] = _mm256_setzero_si256(); } \
        for (int k = 0; k < 4; k++) {                                                                    \
            const __m256i v = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * k));                  \
            const __m256i lo = _mm256_and_si256(v, mask), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask); \
            for (int r = 0; r < NR; r++) {                                                               \
                int32_t l, h;                                                                            \
                memcpy(&l, ys[r][b].qs + 4 * k, 4); memcpy(&h, ys[r][b].qs + 16 + 4 * k, 4);             \
                lo_sum[r][k % 2] = _mm256_dpbusd_epi32(lo_sum[r][k % 2], lo, _mm256_set1_epi32(l));      \
                hi_sum[r][k % 2] = _mm256_dpbusd_epi32(hi_sum[r][k % 2], hi, _mm256_set1_epi32(h));      \
            }                                                                                            \
        }                                                                                                \
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x[b].d));                     \
        for (int r = 0; r < NR; r++) {                                                                   \
            __m256i isum = _mm256_add_epi32(_mm256_add_epi32(lo_sum[r][0], lo_sum[r][1]),                \
                                            _mm256_add_epi32(hi_sum[r][0], hi_sum[r][1]));               \
            if (ysum8) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(ysum8[r][b]));                    \
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(_cvtsh_ss(ys[r][b].d))), _mm256_cvtepi32_ps(isum), acc[r]); \
            if (!ysum8) acc[r] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x[b].m)), \
                                                 _mm256_set1_ps(_cvtsh_ss(ys[r][b].s)), acc[r]);          \
        }                                                                                                \
    }                                                                                                    \
    for (int r = 0; r < NR; r++) _mm256_storeu_ps(outs[r], acc[r]);                                      \
}
Q4X8_VNNI(gemv1_q4x8_vnni, 1)
Q4X8_VNNI(gemv4_q4x8_vnni, 4)
#endif

typedef void (*gemv_fn)(const void *, const void *, int64_t, int, float *);
typedef void (*gemv2_fn)(const void *, const void *, const void *, int64_t, int, float *, float *);
typedef void (*tabled_fn)(const block_q4x8 *, const block_q8_1 *const *, const int32_t *const *, int64_t, float *const *);
// one, two: rows as they are (two where present); tabled_one, tabled_four (VNNI): rows with
// Q4_0's table of 8·Σy
typedef struct { gemv_fn one; gemv2_fn two; tabled_fn tabled_one, tabled_four; } q4x8_kernels;
static q4x8_kernels kernels = {quill_gemv_q4x8_ref, NULL, NULL, NULL};
static const char *isa = "scalar";

static int kernels_on(const char *name, q4x8_kernels *k) {
    *k = (q4x8_kernels){quill_gemv_q4x8_ref, NULL, NULL, NULL};
#ifdef QUILL_X86
    if (!strcmp(name, "avx2") && cpu_has_avx2()) { *k = (q4x8_kernels){gemv_q4x8_avx2, gemv2_q4x8_avx2, NULL, NULL}; return 1; }
    if (!strcmp(name, "avx512vnni") && cpu_has_avx2() && cpu_has_avx512_vnni()) {
        *k = (q4x8_kernels){gemv_q4x8_avx2, gemv2_q4x8_avx2, gemv1_q4x8_vnni, gemv4_q4x8_vnni};
        return 1;
    }
#endif
    return !strcmp(name, "scalar");
}

__attribute__((constructor)) static void choose_q4x8_kernel(void) {
    if (!getenv("QUILL_NO_VNNI") && kernels_on("avx512vnni", &kernels)) isa = "avx512vnni";
    else if (kernels_on("avx2", &kernels)) isa = "avx2";
}

const char *quill_q4x8_isa(void) { return isa; }

void quill_gemv_q4x8(const void *w, const void *y, int64_t cols, int centered, float *out) { kernels.one(w, y, cols, centered, out); }

// 8·Σy of each block of n activation rows (Q4_0's centring), into sums[n][nb]. Only the VNNI
// kernels ask, so AVX2 is there to sum with.
#ifdef QUILL_X86
AVX2
#endif
static void block_sums8(const uint8_t *xq, size_t x_stride, int64_t n, int64_t nb, int32_t *sums) {
    for (int64_t i = 0; i < n; i++) {
        const block_q8_1 *y = (const block_q8_1 *)(xq + (size_t)i * x_stride);
        for (int64_t b = 0; b < nb; b++) {
#ifdef QUILL_X86
            sums[i * nb + b] = 8 * sum_q8(y[b].qs);
#else
            int s = 0;
            for (int j = 0; j < 32; j++) s += y[b].qs[j];
            sums[i * nb + b] = 8 * s;
#endif
        }
    }
}

// One product call: the activations, Q4_0's table of block sums where the VNNI kernels take it,
// and whether they can run (Q4_1 needs no table; Q4_0 without one, for want of memory, cannot).
typedef struct {
    const q4x8_kernels *k;
    const uint8_t *w, *xq;
    const int32_t *sums8;
    size_t x_stride, out_stride, group_bytes;
    float *out;
    int64_t cols;
    int centered, tabled;
} q4x8_call;

// Rows [i, i + nr) of the activations against group g (nr 1, 2 or 4).
static void q4x8_rows(void *context, int64_t g, int64_t i, int nr) {
    const q4x8_call *c = context;
    const uint8_t *group = c->w + (size_t)g * c->group_bytes;
    const int64_t nb = c->cols / 32;
    const tabled_fn tabled = !c->tabled ? NULL : nr == 4 ? c->k->tabled_four : nr == 1 ? c->k->tabled_one : NULL;
    if (tabled) {
        const block_q8_1 *ys[4];
        const int32_t *ysum8[4];
        float *outs[4];
        for (int r = 0; r < nr; r++) {
            ys[r] = (const block_q8_1 *)(c->xq + (size_t)(i + r) * c->x_stride);
            ysum8[r] = c->centered ? c->sums8 + (i + r) * nb : NULL;
            outs[r] = c->out + (size_t)(i + r) * c->out_stride + g * 8;
        }
        tabled((const block_q4x8 *)group, ys, c->centered ? ysum8 : NULL, nb, outs);
        return;
    }
    for (int r = 0; r < nr;) {
        const uint8_t *y = c->xq + (size_t)(i + r) * c->x_stride;
        float *o = c->out + (size_t)(i + r) * c->out_stride + g * 8;
        if (nr - r >= 2 && c->k->two) {
            c->k->two(group, y, y + c->x_stride, c->cols, c->centered, o, o + c->out_stride);
            r += 2;
        } else {
            c->k->one(group, y, c->cols, c->centered, o);
            r += 1;
        }
    }
}

// Groups [group_begin, group_end) against n activation rows on the given kernels, blocked for
// the caches (for_each_tile): four rows at a time where the VNNI kernels run, then two, then one.
static void matvec(const q4x8_kernels *k, const void *w, const void *xq, size_t x_stride, int64_t n, float *out,
                   size_t out_stride, int64_t cols, int centered, int64_t group_begin, int64_t group_end) {
    const int64_t nb = cols / 32;
    int32_t local[1024], *sums8 = NULL;   // a token's table on the stack; a prompt's on the heap
    if (k->tabled_one && centered) sums8 = n * nb <= 1024 ? local : malloc((size_t)(n * nb) * sizeof *sums8);
    if (sums8) block_sums8(xq, x_stride, n, nb, sums8);
    q4x8_call call = {k, w, xq, sums8, x_stride, out_stride, (size_t)nb * sizeof(block_q4x8), out, cols, centered,
                      k->tabled_one && (!centered || sums8)};
    for_each_tile(call.group_bytes, group_begin, group_end, n, (k->two ? 1u << 2 : 0) | (call.tabled && k->tabled_four ? 1u << 4 : 0),
                  q4x8_rows, &call);
    if (sums8 != local) free(sums8);
}

int quill_gemv_q4x8_on(const char *name, const void *w, const void *y, int64_t cols, int centered, int nr, float *const *outs) {
    q4x8_kernels k;
    if (nr < 1 || nr > 4 || nr == 3 || !kernels_on(name, &k) || (nr == 4 && !k.tabled_four)) return 0;
    // nr copies of the row, side by side, and one output row each
    const size_t stride = (size_t)(cols / 32) * sizeof(block_q8_1);
    uint8_t *xq = malloc((size_t)nr * stride);
    float *out = malloc((size_t)nr * 8 * sizeof *out);
    if (!xq || !out) { free(xq); free(out); return 0; }
    for (int r = 0; r < nr; r++) memcpy(xq + r * stride, y, stride);
    matvec(&k, w, xq, stride, nr, out, 8, cols, centered, 0, 1);
    for (int r = 0; r < nr; r++) memcpy(outs[r], out + 8 * r, 8 * sizeof *out);
    free(xq); free(out);
    return 1;
}

void quill_matvec_q4x8(const void *w, const void *xq, size_t x_stride, int64_t n, float *out, size_t out_stride,
                       int64_t cols, int centered, int64_t group_begin, int64_t group_end) {
    matvec(&kernels, w, xq, x_stride, n, out, out_stride, cols, centered, group_begin, group_end);
}
