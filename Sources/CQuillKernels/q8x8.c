// Q8_0 weights repacked eight rows at a time (the layout q4x8.c gives Q4_0 / Q4_1), for the
// output head and Q8_0 models while decoding several sequences together; Q5_0 weights too,
// widened to int8 (1.5x their memory, for a kernel that no longer unpacks 5-bit values). Row by
// row, a batch of n sequences costs n dot products per row, each ending in a horizontal sum;
// interleaved, one 256-bit register holds four elements of each of eight rows, a sequence's four
// matching int8 values are broadcast, and each loaded weight vector meets every sequence of the
// batch.
//
//   block_q8x8 (272 bytes = eight 34-byte Q8_0 blocks): f16 d[8], int8 qs[256] where
//   qs[32k + 4r + j] = row r's qs[4k + j] (k < 8, j < 4).
//
// Activations are Q8_0 blocks (d, int8 q[32]), as the row kernel takes them. Dispatch: AVX-512
// VNNI where present (QUILL_NO_VNNI=1 in the environment keeps AVX2, for comparisons), else AVX2,
// else the plain twin.
//
// vpdpbusd multiplies unsigned bytes by signed ones. One or two activation rows (decoding) take
// the sign trick: |w| against y with w's sign, two sign flips per row and step. Four rows at a
// time (prompts, batches) make the activations unsigned once per call instead (a ^ 0x80 is
// a + 128 as a byte), keep the weights signed, and take 128·Σw off each block's sum:
// Σ(a + 128)·w − 128·Σw = Σa·w, the same integers. Σw costs one vpdpbusd per step against a
// vector of ones, shared by the four rows: 1.35x the signed kernel on a Zen 4 core (90 to 122
// GMAC/s, 32 activation rows against a 2048 × 640 matrix).
#include "quill_kernels.h"
#include "blocks.h"
#include <math.h>
#include <stdlib.h>

typedef struct { uint16_t d[8]; int8_t qs[256]; } block_q8x8;

// One block of a Q8_0 or Q5_0 row as its scale and 32 int8 values (Q5_0's 5-bit q - 16 fits,
// with the same scale: the dot products are Q5_0's own, exactly).
static uint16_t block_as_int8(int type, const uint8_t *row, int64_t b, int8_t *q) {
    if (type == QUILL_Q5_0) {
        const block_q5_0 *blk = (const block_q5_0 *)row + b;
        uint32_t qh;
        memcpy(&qh, blk->qh, 4);
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)(((blk->qs[j] & 0x0F) | ((qh >> j & 1) << 4)) - 16);
            q[j + 16] = (int8_t)(((blk->qs[j] >> 4) | ((qh >> (j + 16) & 1) << 4)) - 16);
        }
        return blk->d;
    }
    const block_q8_0 *blk = (const block_q8_0 *)row + b;
    memcpy(q, blk->qs, 32);
    return blk->d;
}

void quill_repack_q8x8(int type, const void *src, size_t row_bytes, int64_t groups, int64_t cols, void *dst) {
    const int64_t nb = cols / 32;
    block_q8x8 *out = dst;
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t b = 0; b < nb; b++) {
            block_q8x8 *o = out + g * nb + b;
            for (int r = 0; r < 8; r++) {
                int8_t q[32];
                o->d[r] = block_as_int8(type, (const uint8_t *)src + (size_t)(g * 8 + r) * row_bytes, b, q);
                for (int k = 0; k < 8; k++) memcpy(o->qs + 32 * k + 4 * r, q + 4 * k, 4);
            }
        }
    }
}

void quill_dequantize_q8x8(const void *w, int64_t cols, float *out) {
    const block_q8x8 *x = w;
    for (int64_t b = 0; b < cols / 32; b++) {
        for (int r = 0; r < 8; r++) {
            const float d = half_to_float(x[b].d[r]);
            for (int k = 0; k < 8; k++) {
                for (int j = 0; j < 4; j++) out[r * cols + b * 32 + 4 * k + j] = (float)x[b].qs[32 * k + 4 * r + j] * d;
            }
        }
    }
}

// --- plain twin: the same sums in the same order ----------------------------------------------

void quill_gemv_q8x8_ref(const void *w, const void *vy, int64_t cols, float *out) {
    const block_q8x8 *x = w; const block_q8_0 *y = vy;
    float acc[8] = {0};
    for (int64_t b = 0; b < cols / 32; b++) {
        const float dy = half_to_float(y[b].d);
        for (int r = 0; r < 8; r++) {
            int s = 0;
            for (int k = 0; k < 8; k++) {
                for (int j = 0; j < 4; j++) s += x[b].qs[32 * k + 4 * r + j] * y[b].qs[4 * k + j];
            }
            acc[r] = fmaf(half_to_float(x[b].d[r]) * dy, (float)s, acc[r]);
        }
    }
    memcpy(out, acc, sizeof acc);
}

// --- AVX2 -------------------------------------------------------------------------------------
#ifdef QUILL_X86

// One 8-row group against NR activation rows, the sums kept in registers. maddubs takes an
// unsigned left operand: |w| against y with w's sign. A pair of products fits int16
// (2·128·127); the eight steps of a block do not, so each step widens to int32 (madd) before
// adding, or with VNNI multiplies, pairs and adds in one instruction (vpdpbusd, the same int32
// sums: nothing saturates). STEP(sum, |w|, ±y) adds one step to the int32 sums.
#define Q8X8_ROWS(NAME, TARGET, NR, STEP, CHAINS)                                                          \
TARGET static void NAME(const block_q8x8 *x, const block_q8_0 *const *ys, int64_t nb, float *const *outs) { \
    __m256 acc[NR];                                                                                  \
    for (int r = 0; r < NR; r++) acc[r] = _mm256_setzero_ps();                                       \
    for (int64_t b = 0; b < nb; b++) {                                                               \
        __m256i isum[NR], odd[NR];   /* CHAINS 2: even and odd steps apart, against vpdpbusd's latency */ \
        for (int r = 0; r < NR; r++) { isum[r] = _mm256_setzero_si256(); odd[r] = _mm256_setzero_si256(); } \
        for (int k = 0; k < 8; k++) {                                                                \
            const __m256i v = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * k));             \
            const __m256i magnitude = _mm256_sign_epi8(v, v);                                        \
            for (int r = 0; r < NR; r++) {                                                           \
                int32_t four;                                                                        \
                memcpy(&four, ys[r][b].qs + 4 * k, 4);                                               \
                __m256i *sum = k % CHAINS ? &odd[r] : &isum[r];                                      \
                *sum = STEP(*sum, magnitude, _mm256_sign_epi8(_mm256_set1_epi32(four), v));          \
            }                                                                                        \
        }                                                                                            \
        if (CHAINS == 2) for (int r = 0; r < NR; r++) isum[r] = _mm256_add_epi32(isum[r], odd[r]);   \
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x[b].d));                \
        for (int r = 0; r < NR; r++) {                                                               \
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(_cvtsh_ss(ys[r][b].d))),        \
                                     _mm256_cvtepi32_ps(isum[r]), acc[r]);                           \
        }                                                                                            \
    }                                                                                                \
    for (int r = 0; r < NR; r++) _mm256_storeu_ps(outs[r], acc[r]);                                  \
}

#define STEP_AVX2(sum, u, s) _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)))
Q8X8_ROWS(gemv1_q8x8_avx2, AVX2, 1, STEP_AVX2, 1)
Q8X8_ROWS(gemv2_q8x8_avx2, AVX2, 2, STEP_AVX2, 1)
Q8X8_ROWS(gemv4_q8x8_avx2, AVX2, 4, STEP_AVX2, 1)

#define STEP_VNNI(sum, u, s) _mm256_dpbusd_epi32(sum, u, s)
Q8X8_ROWS(gemv1_q8x8_vnni, VNNI, 1, STEP_VNNI, 2)
Q8X8_ROWS(gemv2_q8x8_vnni, VNNI, 2, STEP_VNNI, 2)

// Four activation rows made unsigned (a + 128) against the signed weights. Each row's even and
// odd steps add into two sums, so that eight vpdpbusd chains run at once (its latency is four
// cycles); they meet, and 128·Σw comes off, before the block's scales.
VNNI static void gemv4_q8x8_vnni_unsigned(const block_q8x8 *x, const block_q8_0 *const *ys, int64_t nb, float *const *outs) {
    const __m256i ones = _mm256_set1_epi8(1);
    __m256 acc[4];
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i even[4], odd[4], wsum = _mm256_setzero_si256();
        for (int r = 0; r < 4; r++) { even[r] = _mm256_setzero_si256(); odd[r] = _mm256_setzero_si256(); }
        for (int k = 0; k < 8; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * k));
            wsum = _mm256_dpbusd_epi32(wsum, ones, v);
            for (int r = 0; r < 4; r++) {
                int32_t four;
                memcpy(&four, ys[r][b].qs + 4 * k, 4);
                __m256i *sum = k % 2 ? &odd[r] : &even[r];
                *sum = _mm256_dpbusd_epi32(*sum, _mm256_set1_epi32(four), v);
            }
        }
        const __m256i offset = _mm256_slli_epi32(wsum, 7);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x[b].d));
        for (int r = 0; r < 4; r++) {
            const __m256i isum = _mm256_sub_epi32(_mm256_add_epi32(even[r], odd[r]), offset);
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(_cvtsh_ss(ys[r][b].d))), _mm256_cvtepi32_ps(isum), acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) _mm256_storeu_ps(outs[r], acc[r]);
}
#endif

typedef void (*rows_fn)(const block_q8x8 *, const block_q8_0 *const *, int64_t, float *const *);
// by activation rows at once (1, 2, 4; empty: the plain twin per row), and whether rows[4] takes
// activations made unsigned (a ^ 0x80)
typedef struct { rows_fn rows[5]; int four_unsigned; } q8x8_kernels;
static q8x8_kernels kernels;
static const char *isa = "scalar";

static int kernels_on(const char *name, q8x8_kernels *k) {
    *k = (q8x8_kernels){{0}, 0};
#ifdef QUILL_X86
    if (!strcmp(name, "avx2") && cpu_has_avx2()) {
        *k = (q8x8_kernels){{NULL, gemv1_q8x8_avx2, gemv2_q8x8_avx2, NULL, gemv4_q8x8_avx2}, 0};
        return 1;
    }
    if (!strcmp(name, "avx512vnni") && cpu_has_avx2() && cpu_has_avx512_vnni()) {
        *k = (q8x8_kernels){{NULL, gemv1_q8x8_vnni, gemv2_q8x8_vnni, NULL, gemv4_q8x8_vnni_unsigned}, 1};
        return 1;
    }
#endif
    return !strcmp(name, "scalar");
}

__attribute__((constructor)) static void choose_q8x8_kernel(void) {
    if (!getenv("QUILL_NO_VNNI") && kernels_on("avx512vnni", &kernels)) isa = "avx512vnni";
    else if (kernels_on("avx2", &kernels)) isa = "avx2";
}

const char *quill_q8x8_isa(void) { return isa; }

void quill_gemv_q8x8(const void *w, const void *y, int64_t cols, float *out) {
    if (!kernels.rows[1]) { quill_gemv_q8x8_ref(w, y, cols, out); return; }
    const block_q8_0 *ys[1] = {y};
    float *outs[1] = {out};
    kernels.rows[1](w, ys, cols / 32, outs);
}

// n activation rows of nb blocks made unsigned, a + 128 as a byte, the scales as they were
static void make_unsigned(const uint8_t *xq, size_t x_stride, int64_t n, int64_t nb, block_q8_0 *out) {
    for (int64_t i = 0; i < n; i++) {
        const block_q8_0 *row = (const block_q8_0 *)(xq + (size_t)i * x_stride);
        for (int64_t b = 0; b < nb; b++) {
            out[i * nb + b].d = row[b].d;
            for (int j = 0; j < 32; j += 8) {   // eight bytes at a time: the blocks' 34-byte stride defeats vectorizing
                uint64_t eight;
                memcpy(&eight, row[b].qs + j, 8);
                eight ^= 0x8080808080808080u;
                memcpy(out[i * nb + b].qs + j, &eight, 8);
            }
        }
    }
}

// Groups [group_begin, group_end) against n activation rows, blocked for the caches
// (for_each_tile), four rows at a time, then two, then one. Where the four-row kernel takes
// unsigned activations, the rows are made unsigned once, into a scratch buffer.
typedef struct { const q8x8_kernels *k; const block_q8x8 *w; const uint8_t *xq; const block_q8_0 *shifted; size_t x_stride, out_stride; float *out; int64_t cols; } q8x8_call;

static void q8x8_rows(void *context, int64_t g, int64_t i, int nr) {
    const q8x8_call *c = context;
    const int64_t nb = c->cols / 32;
    const block_q8_0 *ys[4];
    float *outs[4];
    for (int r = 0; r < nr; r++) {
        ys[r] = nr == 4 && c->shifted ? c->shifted + (i + r) * nb : (const block_q8_0 *)(c->xq + (size_t)(i + r) * c->x_stride);
        outs[r] = c->out + (size_t)(i + r) * c->out_stride + g * 8;
    }
    const block_q8x8 *group = c->w + g * nb;
    if (c->k->rows[nr]) c->k->rows[nr](group, ys, nb, outs);
    else for (int r = 0; r < nr; r++) quill_gemv_q8x8_ref(group, ys[r], c->cols, outs[r]);
}

static void matvec(const q8x8_kernels *k, const void *w, const void *xq, size_t x_stride, int64_t n, float *out,
                   size_t out_stride, int64_t cols, int64_t group_begin, int64_t group_end) {
    const int64_t nb = cols / 32;
    block_q8_0 *shifted = k->four_unsigned && n >= 4 ? malloc((size_t)n * (size_t)nb * sizeof *shifted) : NULL;
    if (shifted) make_unsigned(xq, x_stride, n, nb, shifted);
    const int four = !k->four_unsigned || shifted;   // without the scratch (no memory), two rows at a time
    q8x8_call call = {k, w, xq, shifted, x_stride, out_stride, out, cols};
    for_each_tile((size_t)nb * sizeof(block_q8x8), group_begin, group_end, n, 1u << 2 | (four ? 1u << 4 : 0), q8x8_rows, &call);
    free(shifted);
}

int quill_gemv_q8x8_on(const char *name, const void *w, const void *y, int64_t cols, int nr, float *const *outs) {
    q8x8_kernels k;
    if (nr < 1 || nr > 4 || nr == 3 || !kernels_on(name, &k) || !k.rows[nr]) return 0;
    // nr copies of the row, side by side, and one output row each
    const size_t stride = (size_t)(cols / 32) * sizeof(block_q8_0);
    uint8_t *xq = malloc((size_t)nr * stride);
    float *out = malloc((size_t)nr * 8 * sizeof *out);
    if (!xq || !out) { free(xq); free(out); return 0; }
    for (int r = 0; r < nr; r++) memcpy(xq + r * stride, y, stride);
    matvec(&k, w, xq, stride, nr, out, 8, cols, 0, 1);
    for (int r = 0; r < nr; r++) memcpy(outs[r], out + 8 * r, 8 * sizeof *out);
    free(xq); free(out);
    return 1;
}

void quill_matvec_q8x8(const void *w, const void *xq, size_t x_stride, int64_t n, float *out, size_t out_stride,
                       int64_t cols, int64_t group_begin, int64_t group_end) {
    matvec(&kernels, w, xq, x_stride, n, out, out_stride, cols, group_begin, group_end);
}
