// How fast the machine's cores read memory: a 1 GiB buffer read five times with 256-bit loads, split
// across N threads. Decoding a model is bound by this figure once its kernels keep up
// (README: the 1.5B model reads 980 MB per token).
//
//     cc -O2 -mavx2 -pthread Benchmarks/memory_bandwidth.c -o /tmp/memory_bandwidth
//     /tmp/memory_bandwidth 1; /tmp/memory_bandwidth 2
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BYTES (1UL << 30)
#define PASSES 5
static char *buffer;
static int threads;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void *read_part(void *arg) {
    const size_t part = BYTES / threads, first = (size_t)(long)arg * part;
    __m256i acc = _mm256_setzero_si256();
    for (int pass = 0; pass < PASSES; pass++) {
        for (size_t i = first; i < first + part; i += 128) {
            for (int k = 0; k < 128; k += 32) acc = _mm256_xor_si256(acc, _mm256_load_si256((const __m256i *)(buffer + i + k)));
        }
    }
    return (void *)(long)_mm256_extract_epi32(acc, 0);   // keeps the loads
}

int main(int argc, char **argv) {
    threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) { fprintf(stderr, "usage: %s THREADS (1-64)\n", argv[0]); return 1; }
    buffer = aligned_alloc(64, BYTES);
    for (size_t i = 0; i < BYTES; i += 4096) buffer[i] = (char)i;   // every page present before timing
    pthread_t workers[64];
    const double start = now();
    for (long t = 0; t < threads; t++) pthread_create(&workers[t], NULL, read_part, (void *)t);
    for (int t = 0; t < threads; t++) pthread_join(workers[t], NULL);
    printf("%d thread%s: %.1f GB/s\n", threads, threads == 1 ? "" : "s", (double)PASSES * BYTES / (now() - start) / 1e9);
    return 0;
}
