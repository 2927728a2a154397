// Inner loops that need CPU intrinsics Swift cannot reach: int8 dot products of quantized
// weights with quantized activations. Each fast kernel has a plain C twin (`_ref`) that tests
// hold it to, and the dispatching entry point picks the best one the CPU supports at run time.
#ifndef QUILL_KERNELS_H
#define QUILL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ggml type codes used by these kernels
enum { QUILL_F32 = 0, QUILL_F16 = 1, QUILL_Q4_0 = 2, QUILL_Q4_1 = 3, QUILL_Q5_0 = 6, QUILL_Q5_1 = 7, QUILL_Q8_0 = 8, QUILL_Q8_1 = 9,
       QUILL_Q2_K = 10, QUILL_Q3_K = 11, QUILL_Q4_K = 12, QUILL_Q5_K = 13, QUILL_Q6_K = 14, QUILL_Q8_K = 15, QUILL_BF16 = 30 };

// Activations → blocks of 32: Q8_0 (f16 d, int8 q[32]) and Q8_1 (f16 d, f16 d·Σq, int8 q[32]).
void quill_quantize_row_q8_0(const float *x, void *y, int64_t k);
void quill_quantize_row_q8_1(const float *x, void *y, int64_t k);
// Their plain twins (the dispatching ones above use AVX2 where present, with the same bytes out).
void quill_quantize_row_q8_0_ref(const float *x, void *y, int64_t k);
void quill_quantize_row_q8_1_ref(const float *x, void *y, int64_t k);
// ... and → blocks of 256 for the k-quants: Q8_K (fp32 d, int8 q[256], int16 sums of each 16).
void quill_quantize_row_q8_K(const float *x, void *y, int64_t k);
void quill_quantize_row_q8_K_ref(const float *x, void *y, int64_t k);

// Weights → a block type for writing model files (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K…Q6_K): the
// arithmetic of ggml's quantizers, so files equal llama-quantize's and gguf-py's. `importance`: NULL,
// or one weight per value of the row (its column's mean squared activation, from an importance
// matrix) for llama-quantize --imatrix's weighted fits (Q8_0 ignores it); x is then one whole row,
// whose mean square the 32-blocks' weights use. n is a whole number of blocks; returns 0, or -1 for
// another type or length.
int quill_quantize_row(int type, const float *x, void *y, int64_t n, const float *importance);
// The same on one instruction set ("plain": one group at a time; "avx2": eight groups in the lanes of
// a register, where the K-quants spend their time): -2 where the CPU lacks it. For tests.
int quill_quantize_row_on(const char *isa, int type, const float *x, void *y, int64_t n, const float *importance);

// Dot products of n elements: weights `x` in their type, activations `y` in the matching
// type (Q8_1 for Q4_1 and Q5_1, Q8_0 for Q4_0, Q5_0 and Q8_0, Q8_K for Q4_K, Q5_K and Q6_K,
// F32 for F16 and BF16).
float quill_vec_dot_q4_0_q8_0(int64_t n, const void *x, const void *y);
float quill_vec_dot_q4_1_q8_1(int64_t n, const void *x, const void *y);
float quill_vec_dot_q8_0_q8_0(int64_t n, const void *x, const void *y);
float quill_vec_dot_q4_0_q8_0_ref(int64_t n, const void *x, const void *y);
float quill_vec_dot_q4_1_q8_1_ref(int64_t n, const void *x, const void *y);
float quill_vec_dot_q8_0_q8_0_ref(int64_t n, const void *x, const void *y);
float quill_vec_dot_q5_0_q8_0(int64_t n, const void *x, const void *y);
float quill_vec_dot_q5_1_q8_1(int64_t n, const void *x, const void *y);
float quill_vec_dot_q4_K_q8_K(int64_t n, const void *x, const void *y);
float quill_vec_dot_q5_K_q8_K(int64_t n, const void *x, const void *y);
float quill_vec_dot_q6_K_q8_K(int64_t n, const void *x, const void *y);
float quill_vec_dot_q5_0_q8_0_ref(int64_t n, const void *x, const void *y);
float quill_vec_dot_q5_1_q8_1_ref(int64_t n, const void *x, const void *y);
float quill_vec_dot_q4_K_q8_K_ref(int64_t n, const void *x, const void *y);
float quill_vec_dot_q5_K_q8_K_ref(int64_t n, const void *x, const void *y);
float quill_vec_dot_q6_K_q8_K_ref(int64_t n, const void *x, const void *y);

// 16-bit float weights times fp32 activations (no activation rounding).
float quill_vec_dot_f16_f32(int64_t n, const void *x, const void *y);
float quill_vec_dot_bf16_f32(int64_t n, const void *x, const void *y);
float quill_vec_dot_f16_f32_ref(int64_t n, const void *x, const void *y);
float quill_vec_dot_bf16_f32_ref(int64_t n, const void *x, const void *y);

// 16-bit floats to fp32 (F16C where present): the prompt path's weight conversion.
void quill_convert_f16_row(const uint16_t *x, float *y, int64_t n);
void quill_convert_bf16_row(const uint16_t *x, float *y, int64_t n);

// The activation type a weight type multiplies with, or -1 if the type has no kernel here.
int quill_activation_type(int weight_type);

// out[i · out_stride + r] = dot(row r of w, activation row i) for rows [row_begin, row_end)
// (row_bytes apart) and n activation rows (x_stride bytes apart); each weight row is read once.
void quill_matvec(int weight_type, const void *w, size_t row_bytes, const void *xq, size_t x_stride, int64_t n,
                  float *out, size_t out_stride, int64_t cols, int64_t row_begin, int64_t row_end);

// Q4_0 / Q4_1 rows repacked eight at a time (q4x8.c): `groups` groups of 8 rows from `src`
// (rows row_bytes apart) into dst (groups × cols/32 × 160 bytes).
void quill_repack_q4x8(int type, const void *src, size_t row_bytes, int64_t groups, int64_t cols, void *dst);
// One group of 8 rows back to fp32 [8, cols]; `centered` for Q4_0 (x = d·(q-8)).
void quill_dequantize_q4x8(const void *w, int64_t cols, int centered, float *out);
// out[0..<8] = the group's 8 rows · y (Q8_1 activations): dispatching kernel and its plain twin.
void quill_gemv_q4x8(const void *w, const void *y, int64_t cols, int centered, float *out);
void quill_gemv_q4x8_ref(const void *w, const void *y, int64_t cols, int centered, float *out);
// Groups [group_begin, group_end) times n activation rows (x_stride bytes apart) into
// out[i · out_stride + 8g ...].
void quill_matvec_q4x8(const void *w, const void *xq, size_t x_stride, int64_t n, float *out, size_t out_stride,
                       int64_t cols, int centered, int64_t group_begin, int64_t group_end);
// The instruction set the q4x8 kernels dispatch to ("avx512vnni", "avx2" or "scalar"); and, for
// tests, one group against nr (1, 2 or 4) copies of y on a named variant (0 where this CPU or
// that variant lacks it).
const char *quill_q4x8_isa(void);
int quill_gemv_q4x8_on(const char *isa, const void *w, const void *y, int64_t cols, int centered, int nr, float *const *outs);

// Q8_0 (or Q5_0, widened to int8) rows repacked eight at a time the same way (q8x8.c; groups ×
// cols/32 × 272 bytes), with Q8_0 activations: repack, dequantize a group, one group times y
// (kernel and twin), and groups [group_begin, group_end) times n activation rows.
void quill_repack_q8x8(int type, const void *src, size_t row_bytes, int64_t groups, int64_t cols, void *dst);
void quill_dequantize_q8x8(const void *w, int64_t cols, float *out);
void quill_gemv_q8x8(const void *w, const void *y, int64_t cols, float *out);
void quill_gemv_q8x8_ref(const void *w, const void *y, int64_t cols, float *out);
void quill_matvec_q8x8(const void *w, const void *xq, size_t x_stride, int64_t n, float *out, size_t out_stride,
                       int64_t cols, int64_t group_begin, int64_t group_end);
// The instruction set the q8x8 kernels dispatch to ("avx512vnni", "avx2" or "scalar"); and, for
// tests, one group times the same y in nr (1, 2 or 4) outputs on a named variant: 0 where this
// CPU lacks it.
const char *quill_q8x8_isa(void);
int quill_gemv_q8x8_on(const char *isa, const void *w, const void *y, int64_t cols, int nr, float *const *outs);

// Q4_K / Q6_K rows repacked eight at a time (kx8.c: groups × cols/256 × the type's group block
// bytes, 1184 or 1680) with Q8_K activations: repack, dequantize a group to fp32 [8, cols], one
// group times y (the plain twin), groups [group_begin, group_end) times n activation rows, the
// instruction set chosen, and one group on a named variant for tests (nr outputs, 1 to 8; 0 where
// this CPU lacks it).
size_t quill_kx8_group_block_bytes(int type);
void quill_repack_kx8(int type, const void *src, size_t row_bytes, int64_t groups, int64_t cols, void *dst);
void quill_dequantize_kx8(int type, const void *w, int64_t cols, float *out);
void quill_gemv_kx8_ref(int type, const void *w, const void *y, int64_t cols, float *out);
void quill_matvec_kx8(int type, const void *w, const void *xq, size_t x_stride, int64_t n, float *out, size_t out_stride,
                      int64_t cols, int64_t group_begin, int64_t group_end);
const char *quill_kx8_isa(void);
int quill_gemv_kx8_on(const char *isa, int type, const void *w, const void *y, int64_t cols, int nr, float *const *outs);

// activations.c: out = silu(gate) · up; x[i] = e^(x[i] - shift) returning Σ (softmax's middle);
// one query row of one head over `count` keys and values (rows kv_stride floats apart):
// out[hs] = softmax(q·kᵀ · scale) · v, with room for `count` floats in `scores`.
void quill_silu_mul(float *out, const float *gate, const float *up, int64_t n);
float quill_exp_sum(float *x, int64_t n, float shift);
void quill_attend_one(const float *q, const float *keys, const float *values, size_t kv_stride, int64_t count,
                      int64_t hs, float scale, float *scores, float *out);
void quill_silu_mul_ref(float *out, const float *gate, const float *up, int64_t n);
// out = gelu(gate) · up with GELU's tanh approximation (Gemma's GeGLU), and its plain twin
void quill_gelu_mul(float *out, const float *gate, const float *up, int64_t n);
void quill_gelu_mul_ref(float *out, const float *gate, const float *up, int64_t n);
// log Σ e^x over n values, the exponentials (of x - max) summed in double: a log-softmax's
// normalizer over a vocabulary; and its plain twin (expf)
double quill_log_sum_exp(const float *x, int64_t n);
double quill_log_sum_exp_ref(const float *x, int64_t n);

// training: dgate, dup = the gradients of silu(gate) · up or gelu(gate) · up given dout; GPT-2's tanh GELU
// (out = gelu(x)) and its backward (dx += gelu'(x) · dout)
void quill_silu_mul_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
void quill_gelu_mul_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
void quill_gelu_tanh(float *out, const float *x, int64_t n);
void quill_gelu_tanh_backward(float *dx, const float *dout, const float *x, int64_t n);
void quill_silu_mul_backward_ref(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
void quill_gelu_mul_backward_ref(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);
void quill_gelu_tanh_ref(float *out, const float *x, int64_t n);
void quill_gelu_tanh_backward_ref(float *dx, const float *dout, const float *x, int64_t n);
float quill_exp_sum_ref(float *x, int64_t n, float shift);
void quill_attend_one_ref(const float *q, const float *keys, const float *values, size_t kv_stride, int64_t count,
                          int64_t hs, float scale, float *scores, float *out);

// Whether the CPU runs AVX-512 (F, DQ, BW, VL): which OpenBLAS kernel set to ask for.
int quill_cpu_has_avx512(void);

// A spin-wait hint (x86 PAUSE), for the thread pool's short waits.
static inline void quill_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// Freed blocks up to `bytes` stay in the heap for the next allocation instead of going back to
// the kernel, which zeroes every page again on the next fault (glibc; elsewhere nothing).
void quill_reuse_large_blocks(size_t bytes);

// Which implementation the dispatcher chose: "avx2" or "scalar".
const char *quill_kernel_isa(void);

#ifdef __cplusplus
}
#endif
#endif
