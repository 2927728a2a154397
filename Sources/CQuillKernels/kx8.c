// Q4_K and Q6_K weights repacked eight rows at a time, as q4x8.c / q8x8.c do for the 32-value
// types: one 256-bit register holds four values of each of eight rows, an activation row's four
// matching int8 values are broadcast, and each loaded (and unpacked) weight vector meets up to
// four activation rows. The same kernel serves decoding (one row, or a batch of sequences) and
// prompts (hundreds of rows, tiled so that a weight group stays in L1 while it meets them): no
// fp32 copy of a weight is made. Activations are Q8_K (fp32 d per 256, int8 q, sums of each
// 16), as for the row kernels, so the integer sums are the row kernels' own, exactly.
//
//   block_q4Kx8 (1184 bytes, eight Q4_K super-blocks of 1152): f16 d[8], f16 dmin[8],
//   uint8 sc[8][8], uint8 m[8][8] (sub-block j's 6-bit scale and min of row r at [j][r], unpacked),
//   qs[1024] where qs[256c + 32k + 4r + i] = row r's qs[32c + 4k + i] (c < 4, k < 8, i < 4): the
//   low nibble is value 64c + 4k + i, the high one value 64c + 32 + 4k + i.
//
//   block_q6Kx8 (1680 bytes = eight Q6_K super-blocks): f16 d[8], int8 sc[16][8],
//   ql[1024] where ql[512h + 256p + 32s + 4r + i] = row r's ql[64h + 32p + 4s + i],
//   qh[512] where qh[256h + 32s + 4r + i] = row r's qh[32h + 4s + i] (h, p < 2, s < 8, i < 4).
//   Value 128h + 32k + 4s + i is ql's low nibble (k = 0: p = 0, k = 1: p = 1) or high nibble
//   (k = 2: p = 0, k = 3: p = 1) with bits 2k, 2k + 1 of the qh byte above it, minus 32.
//
// Q4_K: w = d·sc·q − dmin·m, so Σ w·a = d·da·Σ_j sc_j Σ q·a − dmin·da·Σ_j m_j·(sum of a over j).
// Q6_K: w = d·sc·(q − 32), so Σ w·a = d·da·(Σ_g sc_g Σ q·a − 32 Σ_g sc_g·(sum of a over g)).
// q is unsigned (0-15, 0-63), the left operand maddubs and vpdpbusd want; no sign tricks.
#include "quill_kernels.h"
#include "blocks.h"
#include <math.h>
#include <stdlib.h>

typedef struct { uint16_t d[8], dmin[8]; uint8_t sc[8][8], m[8][8]; uint8_t qs[1024]; } block_q4Kx8;
typedef struct { uint16_t d[8]; int8_t sc[16][8]; uint8_t ql[1024], qh[512]; } block_q6Kx8;
_Static_assert(sizeof(block_q4Kx8) == 1184 && sizeof(block_q6Kx8) == 1680, "interleaved k-quant sizes");

size_t quill_kx8_group_block_bytes(int type) {
    return type == QUILL_Q4_K ? sizeof(block_q4Kx8) : type == QUILL_Q6_K ? sizeof(block_q6Kx8) : 0;
}

// --- repacking and dequantization ---------------------------------------------------------------

static void repack_q4K(const block_q4_K *const rows[8], block_q4Kx8 *o) {
    for (int r = 0; r < 8; r++) {
        const block_q4_K *x = rows[r];
        o->d[r] = x->d; o->dmin[r] = x->dmin;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = x->scales;
            o->sc[j][r] = j < 4 ? q[j] & 63 : (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
            o->m[j][r] = j < 4 ? q[j + 4] & 63 : (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
        for (int c = 0; c < 4; c++) {
            for (int k = 0; k < 8; k++) memcpy(o->qs + 256 * c + 32 * k + 4 * r, x->qs + 32 * c + 4 * k, 4);
        }
    }
}

static void repack_q6K(const block_q6_K *const rows[8], block_q6Kx8 *o) {
    for (int r = 0; r < 8; r++) {
        const block_q6_K *x = rows[r];
        o->d[r] = x->d;
        for (int g = 0; g < 16; g++) o->sc[g][r] = x->scales[g];
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 8; s++) {
                for (int p = 0; p < 2; p++) memcpy(o->ql + 512 * h + 256 * p + 32 * s + 4 * r, x->ql + 64 * h + 32 * p + 4 * s, 4);
                memcpy(o->qh + 256 * h + 32 * s + 4 * r, x->qh + 32 * h + 4 * s, 4);
            }
        }
    }
}

void quill_repack_kx8(int type, const void *src, size_t row_bytes, int64_t groups, int64_t cols, void *dst) {
    const int64_t nb = cols / 256;
    const size_t out_bytes = quill_kx8_group_block_bytes(type), in_bytes = type == QUILL_Q4_K ? sizeof(block_q4_K) : sizeof(block_q6_K);
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t b = 0; b < nb; b++) {
            const void *rows[8];
            for (int r = 0; r < 8; r++) rows[r] = (const uint8_t *)src + (size_t)(g * 8 + r) * row_bytes + (size_t)b * in_bytes;
            void *o = (uint8_t *)dst + (size_t)(g * nb + b) * out_bytes;
            if (type == QUILL_Q4_K) repack_q4K((const block_q4_K *const *)rows, o); else repack_q6K((const block_q6_K *const *)rows, o);
        }
    }
}

// value v (0-255) of row r in a Q6_K group block, 0-63 (the −32 is the caller's)
static inline int q6_value(const block_q6Kx8 *x, int r, int v) {
    const int h = v / 128, k = v % 128 / 32, l = v % 32, s = l / 4, i = l % 4;
    const uint8_t ql = x->ql[512 * h + 256 * (k & 1) + 32 * s + 4 * r + i], qh = x->qh[256 * h + 32 * s + 4 * r + i];
    return (k < 2 ? ql & 0x0F : ql >> 4) | (qh >> (2 * k) & 3) << 4;
}

// value v of row r in a Q4_K group block, 0-15
static inline int q4_value(const block_q4Kx8 *x, int r, int v) {
    const int c = v / 64, high = v % 64 >= 32, l = v % 32;
    const uint8_t q = x->qs[256 * c + 32 * (l / 4) + 4 * r + l % 4];
    return high ? q >> 4 : q & 0x0F;
}

void quill_dequantize_kx8(int type, const void *w, int64_t cols, float *out) {
    for (int64_t b = 0; b < cols / 256; b++) {
        for (int r = 0; r < 8; r++) {
            float *y = out + r * cols + b * 256;
            if (type == QUILL_Q4_K) {
                const block_q4Kx8 *x = (const block_q4Kx8 *)w + b;
                const float d = half_to_float(x->d[r]), dmin = half_to_float(x->dmin[r]);
                for (int v = 0; v < 256; v++) y[v] = d * (float)x->sc[v / 32][r] * (float)q4_value(x, r, v) - dmin * (float)x->m[v / 32][r];
            } else {
                const block_q6Kx8 *x = (const block_q6Kx8 *)w + b;
                const float d = half_to_float(x->d[r]);
                for (int v = 0; v < 256; v++) y[v] = d * (float)x->sc[v / 16][r] * (float)(q6_value(x, r, v) - 32);
            }
        }
    }
}

// --- plain twins: the same integer sums, the same float operations in the same order ------------

static void gemv_q4Kx8_ref(const block_q4Kx8 *x, const block_q8_K *y, int64_t nb, float *out) {
    float acc[8] = {0};
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < 8; r++) {
            int isum = 0, msum = 0;
            for (int j = 0; j < 8; j++) {
                int s = 0;
                for (int l = 0; l < 32; l++) s += q4_value(&x[b], r, 32 * j + l) * y[b].qs[32 * j + l];
                isum += x[b].sc[j][r] * s;
                msum += x[b].m[j][r] * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
            }
            acc[r] = fmaf(half_to_float(x[b].d[r]) * y[b].d, (float)isum, acc[r]);
            acc[r] = fmaf(-(half_to_float(x[b].dmin[r]) * y[b].d), (float)msum, acc[r]);
        }
    }
    memcpy(out, acc, sizeof acc);
}

static void gemv_q6Kx8_ref(const block_q6Kx8 *x, const block_q8_K *y, int64_t nb, float *out) {
    float acc[8] = {0};
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < 8; r++) {
            int isum = 0, osum = 0;
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += q6_value(&x[b], r, 16 * g + l) * y[b].qs[16 * g + l];
                isum += x[b].sc[g][r] * s;
                osum += x[b].sc[g][r] * y[b].bsums[g];
            }
            acc[r] = fmaf(half_to_float(x[b].d[r]) * y[b].d, (float)(isum - 32 * osum), acc[r]);
        }
    }
    memcpy(out, acc, sizeof acc);
}

void quill_gemv_kx8_ref(int type, const void *w, const void *y, int64_t cols, float *out) {
    if (type == QUILL_Q4_K) gemv_q4Kx8_ref(w, y, cols / 256, out); else gemv_q6Kx8_ref(w, y, cols / 256, out);
}

// --- AVX2 and AVX-512 VNNI ----------------------------------------------------------------------
#ifdef QUILL_X86

// Asks for every cache line of a group block before its first load. The Q6_K kernels read a
// block's lines out of order (ql, ql 256 bytes on, qh, back to ql...), which the hardware
// prefetchers do not follow: with all its lines requested at once, a Q6_K matrix streams from
// memory at 18-19 GB/s on one Zen 3 core instead of 8.7 (the 1.5B model's output head, 191 MB).
// Q4_K reads its blocks in order and gains nothing from it.
AVX2 static inline void prefetch_block(const void *block, int bytes) {
    for (int line = 0; line < bytes; line += 64) _mm_prefetch((const char *)block + line, _MM_HINT_T0);
}

// eight bytes, each twice: 16 int16 lanes with row r's value at lanes 2r and 2r + 1 (the pair
// maddubs leaves for row r), zero-extended (u8) or sign-extended (i8)
AVX2 static inline __m256i pairs_u8(const uint8_t *eight) {
    const __m128i b = _mm_loadl_epi64((const __m128i *)eight);
    return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(b, b));
}
AVX2 static inline __m256i pairs_i8(const int8_t *eight) {
    const __m128i b = _mm_loadl_epi64((const __m128i *)eight);
    return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(b, b));
}
// rows' bytes from two arrays side by side: lane 2r = a[r], 2r + 1 = b[r]
AVX2 static inline __m256i zip_u8(const uint8_t *a, const uint8_t *b) {
    return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)a), _mm_loadl_epi64((const __m128i *)b)));
}
AVX2 static inline __m256i zip_i8(const int8_t *a, const int8_t *b) {
    return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)a), _mm_loadl_epi64((const __m128i *)b)));
}
AVX2 static inline __m256i broadcast4(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return _mm256_set1_epi32(v); }
// two int16 sums as one int32 lane: low half a, high half b (the pair madd meets with zip_*)
AVX2 static inline __m256i broadcast_pair(int a, int b) { return _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16)); }

// Q4_K, one group block of 8 rows against NR activation rows. SUB(sum, vec, act, scale) adds
// one sub-block's four steps... see the two variants below: AVX2 keeps each sub-block's
// maddubs sums in int16 (8 steps · 2 · 15 · 127 = 30480 fits) and weights them by the scales
// in one madd; VNNI sums in int32 with vpdpbusd and multiplies by the scales once.
#define Q4K_KERNEL(NAME, TARGET, NR, VNNI_SUMS)                                                        \
TARGET static void NAME(const block_q4Kx8 *x, const block_q8_K *const *ys, int64_t nb, float *const *outs) { \
    enum { CHAINS = NR == 1 && VNNI_SUMS ? 2 : 1 };   /* one row: even and odd steps apart (vpdpbusd's latency) */ \
    const __m256i low4 = _mm256_set1_epi8(0x0F);                                                        \
    __m256 acc[NR];                                                                                     \
    for (int r = 0; r < NR; r++) acc[r] = _mm256_setzero_ps();                                          \
    for (int64_t b = 0; b < nb; b++) {                                                                  \
        const block_q4Kx8 *w = x + b;                                                                   \
        __m256i isum[NR], msum[NR];                                                                     \
        for (int r = 0; r < NR; r++) { isum[r] = _mm256_setzero_si256(); msum[r] = _mm256_setzero_si256(); } \
        for (int c = 0; c < 4; c++) {                                                                   \
            __m256i lo_sum[NR][CHAINS], hi_sum[NR][CHAINS];                                             \
            for (int r = 0; r < NR; r++) for (int e = 0; e < CHAINS; e++) {                             \
                lo_sum[r][e] = _mm256_setzero_si256(); hi_sum[r][e] = _mm256_setzero_si256();           \
            }                                                                                           \
            for (int k = 0; k < 8; k++) {                                                               \
                const __m256i v = _mm256_loadu_si256((const __m256i *)(w->qs + 256 * c + 32 * k));     \
                const __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4); \
                for (int r = 0; r < NR; r++) {                                                          \
                    const int8_t *a = ys[r][b].qs + 64 * c + 4 * k;                                     \
                    __m256i *lo_s = &lo_sum[r][k % CHAINS], *hi_s = &hi_sum[r][k % CHAINS];             \
                    if (VNNI_SUMS) {                                                                    \
                        *lo_s = _mm256_dpbusd_epi32(*lo_s, lo, broadcast4(a));                          \
                        *hi_s = _mm256_dpbusd_epi32(*hi_s, hi, broadcast4(a + 32));                     \
                    } else {                                                                            \
                        *lo_s = _mm256_add_epi16(*lo_s, _mm256_maddubs_epi16(lo, broadcast4(a)));       \
                        *hi_s = _mm256_add_epi16(*hi_s, _mm256_maddubs_epi16(hi, broadcast4(a + 32)));  \
                    }                                                                                   \
                }                                                                                       \
            }                                                                                           \
            for (int r = 0; r < NR; r++) for (int e = 1; e < CHAINS; e++) {   /* CHAINS > 1: VNNI's int32 sums */ \
                lo_sum[r][0] = _mm256_add_epi32(lo_sum[r][0], lo_sum[r][e]);                            \
                hi_sum[r][0] = _mm256_add_epi32(hi_sum[r][0], hi_sum[r][e]);                            \
            }                                                                                           \
            if (VNNI_SUMS) {                                                                            \
                const __m256i s0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)w->sc[2 * c]));  \
                const __m256i s1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)w->sc[2 * c + 1])); \
                for (int r = 0; r < NR; r++) {                                                          \
                    isum[r] = _mm256_add_epi32(isum[r], _mm256_add_epi32(_mm256_mullo_epi32(lo_sum[r][0], s0), \
                                                                         _mm256_mullo_epi32(hi_sum[r][0], s1))); \
                }                                                                                       \
            } else {                                                                                    \
                const __m256i s0 = pairs_u8(w->sc[2 * c]), s1 = pairs_u8(w->sc[2 * c + 1]);             \
                for (int r = 0; r < NR; r++) {                                                          \
                    isum[r] = _mm256_add_epi32(isum[r], _mm256_add_epi32(_mm256_madd_epi16(lo_sum[r][0], s0), \
                                                                         _mm256_madd_epi16(hi_sum[r][0], s1))); \
                }                                                                                       \
            }                                                                                           \
            const __m256i mins = zip_u8(w->m[2 * c], w->m[2 * c + 1]);                                   \
            for (int r = 0; r < NR; r++) {                                                              \
                const int16_t *bs = ys[r][b].bsums + 4 * c;                                             \
                msum[r] = _mm256_add_epi32(msum[r], _mm256_madd_epi16(mins, broadcast_pair(bs[0] + bs[1], bs[2] + bs[3]))); \
            }                                                                                           \
        }                                                                                               \
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w->d));                      \
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w->dmin));                \
        for (int r = 0; r < NR; r++) {                                                                  \
            const __m256 da = _mm256_set1_ps(ys[r][b].d);                                               \
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, da), _mm256_cvtepi32_ps(isum[r]), acc[r]);         \
            acc[r] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, da), _mm256_cvtepi32_ps(msum[r]), acc[r]);     \
        }                                                                                               \
    }                                                                                                   \
    for (int r = 0; r < NR; r++) _mm256_storeu_ps(outs[r], acc[r]);                                     \
}

// Q6_K: step s of run k in half h, the 6-bit values (0-63) of eight rows, four each: ql's low
// nibble (k = 0, 1) or high nibble (k = 2, 3) with bits 2k, 2k + 1 of the qh byte moved to bits
// 4-5. k is a constant wherever this is inlined, so the shifts are chosen at compile time.
AVX2 static inline __attribute__((always_inline)) __m256i q6_step(const block_q6Kx8 *w, int h, int k, int s) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30);
    const __m256i l = _mm256_loadu_si256((const __m256i *)(w->ql + 512 * h + 256 * (k & 1) + 32 * s));
    const __m256i hb = _mm256_loadu_si256((const __m256i *)(w->qh + 256 * h + 32 * s));
    const __m256i lo = _mm256_and_si256(k < 2 ? l : _mm256_srli_epi16(l, 4), low4);
    const __m256i hi = k == 0 ? _mm256_slli_epi16(hb, 4) : k == 1 ? _mm256_slli_epi16(hb, 2) : k == 2 ? hb : _mm256_srli_epi16(hb, 2);
    return _mm256_or_si256(lo, _mm256_and_si256(hi, bits45));
}

// One 16-value group (g = 8h + 2k + half: steps 4·half .. 4·half + 3 of run k) against NR rows,
// added to isum. AVX2: maddubs sums of two steps fit int16 (2 · 2 · 63 · 127 = 32004), then the
// group's scale weights them in one madd; VNNI: four steps of vpdpbusd in int32, then one
// multiply by the scales. Every loop has constant bounds and unrolls, so the sums stay in registers.
#define Q6K_GROUP(NAME, TARGET, NR, VNNI_SUMS)                                                         \
TARGET static inline __attribute__((always_inline)) void NAME(const block_q6Kx8 *w, const int8_t *const *a, int h, \
                                                              int k, int half, __m256i *isum) {        \
    const int8_t *sc = w->sc[8 * h + 2 * k + half];                                                     \
    const int offset = 128 * h + 32 * k + 16 * half;                                                    \
    if (VNNI_SUMS) {                                                                                    \
        __m256i part[NR];                                                                               \
        for (int r = 0; r < NR; r++) part[r] = _mm256_setzero_si256();                                  \
        for (int t = 0; t < 4; t++) {                                                                   \
            const __m256i q = q6_step(w, h, k, 4 * half + t);                                          \
            for (int r = 0; r < NR; r++) part[r] = _mm256_dpbusd_epi32(part[r], q, broadcast4(a[r] + offset + 4 * t)); \
        }                                                                                               \
        const __m256i scale = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)sc));              \
        for (int r = 0; r < NR; r++) isum[r] = _mm256_add_epi32(isum[r], _mm256_mullo_epi32(part[r], scale)); \
    } else {                                                                                            \
        const __m256i scale = pairs_i8(sc);                                                             \
        for (int t = 0; t < 4; t += 2) {                                                                \
            const __m256i q0 = q6_step(w, h, k, 4 * half + t), q1 = q6_step(w, h, k, 4 * half + t + 1); \
            for (int r = 0; r < NR; r++) {                                                              \
                const __m256i two = _mm256_add_epi16(_mm256_maddubs_epi16(q0, broadcast4(a[r] + offset + 4 * t)), \
                                                     _mm256_maddubs_epi16(q1, broadcast4(a[r] + offset + 4 * t + 4))); \
                isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(two, scale));                     \
            }                                                                                           \
        }                                                                                               \
    }                                                                                                   \
}

// Q6_K against NR activation rows: Σ w·a = d·da·(Σ_g sc_g Σ q·a − 32 Σ_g sc_g·(sum of a over g)).
// The runs k = 0..3 are spelled out so that each inlined group unpacks with constant shifts.
#define Q6K_KERNEL(NAME, GROUP, TARGET, NR)                                                            \
TARGET static void NAME(const block_q6Kx8 *x, const block_q8_K *const *ys, int64_t nb, float *const *outs) { \
    __m256 acc[NR];                                                                                     \
    for (int r = 0; r < NR; r++) acc[r] = _mm256_setzero_ps();                                          \
    for (int64_t b = 0; b < nb; b++) {                                                                  \
        const block_q6Kx8 *w = x + b;                                                                   \
        prefetch_block(w, sizeof *w);                                                                   \
        const int8_t *a[NR];                                                                            \
        __m256i isum[NR];                                                                               \
        for (int r = 0; r < NR; r++) { a[r] = ys[r][b].qs; isum[r] = _mm256_setzero_si256(); }          \
        for (int h = 0; h < 2; h++) {                                                                   \
            for (int half = 0; half < 2; half++) {                                                      \
                GROUP(w, a, h, 0, half, isum); GROUP(w, a, h, 1, half, isum);                           \
                GROUP(w, a, h, 2, half, isum); GROUP(w, a, h, 3, half, isum);                           \
            }                                                                                           \
        }                                                                                               \
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w->d));                      \
        for (int r = 0; r < NR; r++) {                                                                  \
            __m256i osum = _mm256_setzero_si256();                                                      \
            for (int t = 0; t < 8; t++) {                                                               \
                osum = _mm256_add_epi32(osum, _mm256_madd_epi16(zip_i8(w->sc[2 * t], w->sc[2 * t + 1]), \
                                        broadcast_pair(ys[r][b].bsums[2 * t], ys[r][b].bsums[2 * t + 1]))); \
            }                                                                                           \
            const __m256i total = _mm256_sub_epi32(isum[r], _mm256_slli_epi32(osum, 5));                \
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(ys[r][b].d)), _mm256_cvtepi32_ps(total), acc[r]); \
        }                                                                                               \
    }                                                                                                   \
    for (int r = 0; r < NR; r++) _mm256_storeu_ps(outs[r], acc[r]);                                     \
}

Q6K_GROUP(q6K_group_1_avx2, AVX2, 1, 0)
Q6K_GROUP(q6K_group_4_avx2, AVX2, 4, 0)
Q6K_GROUP(q6K_group_1_vnni, VNNI, 1, 1)
Q6K_GROUP(q6K_group_8_vnni, VNNI, 8, 1)
Q6K_GROUP(q6K_group_4_vnni, VNNI, 4, 1)
Q4K_KERNEL(q4K_1_avx2, AVX2, 1, 0)
Q4K_KERNEL(q4K_4_avx2, AVX2, 4, 0)
Q4K_KERNEL(q4K_1_vnni, VNNI, 1, 1)
Q4K_KERNEL(q4K_4_vnni, VNNI, 4, 1)
Q6K_KERNEL(q6K_1_avx2, q6K_group_1_avx2, AVX2, 1)
Q6K_KERNEL(q6K_4_avx2, q6K_group_4_avx2, AVX2, 4)
Q6K_KERNEL(q6K_1_vnni, q6K_group_1_vnni, VNNI, 1)
// With AVX-512's 32 vector registers, eight activation rows share each unpacked Q6_K step: the
// unpacking (five instructions a step) weighs half as much, 1.2x the four-row kernel on a Zen 4
// core. Q4_K's unpacking is cheaper and its eight-row sums would not fit the registers.
Q6K_KERNEL(q6K_8_vnni, q6K_group_8_vnni, VNNI, 8)
Q6K_KERNEL(q6K_4_vnni, q6K_group_4_vnni, VNNI, 4)
#endif

// --- dispatch -----------------------------------------------------------------------------------

typedef void (*kx8_fn)(const void *, const block_q8_K *const *, int64_t, float *const *);
typedef struct { kx8_fn one, four, eight; } kx8_kernels;   // by activation rows at once; eight where it pays
static kx8_kernels q4K, q6K;                        // empty: the plain twin
static const char *isa = "scalar";

static int kernels_on(const char *name, kx8_kernels *k4, kx8_kernels *k6) {
#ifdef QUILL_X86
    if (!strcmp(name, "avx2") && cpu_has_avx2()) {
        *k4 = (kx8_kernels){(kx8_fn)q4K_1_avx2, (kx8_fn)q4K_4_avx2};
        *k6 = (kx8_kernels){(kx8_fn)q6K_1_avx2, (kx8_fn)q6K_4_avx2};
        return 1;
    }
    if (!strcmp(name, "avx512vnni") && cpu_has_avx2() && cpu_has_avx512_vnni()) {
        *k4 = (kx8_kernels){(kx8_fn)q4K_1_vnni, (kx8_fn)q4K_4_vnni};
        *k6 = (kx8_kernels){(kx8_fn)q6K_1_vnni, (kx8_fn)q6K_4_vnni, (kx8_fn)q6K_8_vnni};
        return 1;
    }
#endif
    (void)k4; (void)k6;
    return !strcmp(name, "scalar");
}

__attribute__((constructor)) static void choose_kx8_kernels(void) {
    if (!getenv("QUILL_NO_VNNI") && kernels_on("avx512vnni", &q4K, &q6K)) isa = "avx512vnni";
    else if (kernels_on("avx2", &q4K, &q6K)) isa = "avx2";
}

const char *quill_kx8_isa(void) { return isa; }

// One group block row of weights against nr activation rows on the given kernels.
static void run(int type, const kx8_kernels *k, const void *group, const block_q8_K *const *ys, int nr, int64_t cols,
                float *const *outs) {
    const kx8_fn fn = nr == 8 ? k->eight : nr == 4 ? k->four : nr == 1 ? k->one : NULL;
    if (fn) { fn(group, ys, cols / 256, outs); return; }
    for (int r = 0; r < nr; r++) {
        if (k->one) { k->one(group, ys + r, cols / 256, outs + r); } else { quill_gemv_kx8_ref(type, group, ys[r], cols, outs[r]); }
    }
}

int quill_gemv_kx8_on(const char *name, int type, const void *w, const void *y, int64_t cols, int nr, float *const *outs) {
    kx8_kernels k4 = {0}, k6 = {0};
    if (nr < 1 || nr > 8 || !kernels_on(name, &k4, &k6)) return 0;
    const block_q8_K *ys[8] = {y, y, y, y, y, y, y, y};
    run(type, type == QUILL_Q4_K ? &k4 : &k6, w, ys, nr, cols, outs);
    return 1;
}

// Groups [group_begin, group_end) against n activation rows, blocked for the caches
// (for_each_tile), eight or four rows at a time per group.
typedef struct { int type; const kx8_kernels *k; const uint8_t *w, *xq; size_t x_stride, group_bytes, out_stride; float *out; int64_t cols; } kx8_call;

static void kx8_rows(void *context, int64_t g, int64_t i, int nr) {
    const kx8_call *c = context;
    const block_q8_K *ys[8];
    float *outs[8];
    for (int r = 0; r < nr; r++) {
        ys[r] = (const block_q8_K *)(c->xq + (size_t)(i + r) * c->x_stride);
        outs[r] = c->out + (size_t)(i + r) * c->out_stride + g * 8;
    }
    run(c->type, c->k, c->w + (size_t)g * c->group_bytes, ys, nr, c->cols, outs);
}

void quill_matvec_kx8(int type, const void *w, const void *xq, size_t x_stride, int64_t n, float *out, size_t out_stride,
                      int64_t cols, int64_t group_begin, int64_t group_end) {
    const kx8_kernels *k = type == QUILL_Q4_K ? &q4K : &q6K;
    kx8_call call = {type, k, w, xq, x_stride, (size_t)(cols / 256) * quill_kx8_group_block_bytes(type), out_stride, out, cols};
    for_each_tile(call.group_bytes, group_begin, group_end, n, 1u << 4 | (k->eight ? 1u << 8 : 0), kx8_rows, &call);
}
