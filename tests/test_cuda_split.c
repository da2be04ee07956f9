/* test_cuda_split.c - how a decode query's context is split over the
 * attention kernel's blocks (backend/cuda/ops.c's m40_cuda_attn_decode_chunk
 * and m40_cuda_attn_decode_splits; docs/long-context.md).
 *
 * Host arithmetic only, so it runs without a GPU. What it pins down:
 * a split length is a power of two the kernels' shared memory holds; it is
 * one per power-of-two bucket of positions (a decode graph is kept per
 * bucket, and a row beside other rows must split as it does alone); the
 * scratch bound covers every position up to it; and the lengths measured
 * best on an H100 are the ones picked there.
 */
#include "backend/cuda/ops.h"
#include "check.h"

static const m40_cuda_attn_dims shapes[] = {
    {32, 32, 128, 132},                /* Llama-2-7B on an H100 */
    {32, 8, 128, 132},                 /* Llama-3-8B */
    {32, 8, 64, 132},                  /* Llama-3.2-1B */
    {8, 1, 256, 132},                  /* Gemma: one KV head of 256 */
    {16, 1, 128, 132},                 /* 16 query heads per KV head */
    {32, 32, 128, 24},                 /* Llama-2-7B on a Tesla M40 */
    {32, 8, 128, 24},   {4, 2, 64, 0}, /* an SM count not known */
};

static int bucket_end(int n) {
    int end = M40_ATTN_CHUNK_DECODE;
    while (end < n)
        end *= 2;
    return end;
}

static void test_chunk_is_a_power_of_two_that_fits(void) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const m40_cuda_attn_dims *d = &shapes[i];
        const int group = d->n_head / d->n_head_kv;
        for (int n = 1; n <= 70000; n += n < 5000 ? 1 : 37) {
            const int c = m40_cuda_attn_decode_chunk(d, n);
            CHECK(c >= M40_ATTN_CHUNK_DECODE && c <= M40_ATTN_CHUNK_DECODE_MAX);
            CHECK((c & (c - 1)) == 0);
            /* the kernels keep group * (hd + chunk) floats in 48 KiB */
            CHECK((long long)group * (d->head_dim + c) * 4 <= 48 * 1024);
        }
    }
}

static void test_chunk_is_one_per_bucket(void) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const m40_cuda_attn_dims *d = &shapes[i];
        int last = 0;
        for (int n = 1; n <= 70000; n++) {
            const int c = m40_cuda_attn_decode_chunk(d, n);
            CHECK(c == m40_cuda_attn_decode_chunk(d, bucket_end(n)));
            CHECK(c >= last); /* never shorter further on */
            last = c;
        }
    }
}

static void test_splits_bound_every_position_below(void) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const m40_cuda_attn_dims *d = &shapes[i];
        int most = 0;
        for (int n = 1; n <= 70000; n++) {
            const int s = m40_cuda_attn_splits(n, m40_cuda_attn_decode_chunk(d, n));
            most = s > most ? s : most;
            /* exactly the most splits of any position up to n: the rows'
             * grid and the scratch are sized by it */
            CHECK(m40_cuda_attn_decode_splits(d, n) == most);
        }
    }
}

static void test_the_measured_lengths(void) {
    /* bench_kernels --attn on an H100 (132 SMs), the fastest split per
     * context (docs/long-context.md) */
    const m40_cuda_attn_dims *l7 = &shapes[0], *l8 = &shapes[1], *m40 = &shapes[5];
    CHECK(m40_cuda_attn_decode_chunk(l7, 512) == 32);
    CHECK(m40_cuda_attn_decode_chunk(l7, 4096) == 128);
    CHECK(m40_cuda_attn_decode_chunk(l7, 16384) == 512);
    CHECK(m40_cuda_attn_decode_chunk(l7, 32768) == 1024);
    CHECK(m40_cuda_attn_decode_chunk(l8, 4096) == 64);
    CHECK(m40_cuda_attn_decode_chunk(l8, 16384) == 256);
    CHECK(m40_cuda_attn_decode_chunk(l8, 32768) == 512);
    /* 24 SMs fill with fewer, longer splits */
    CHECK(m40_cuda_attn_decode_chunk(m40, 16384) == 4096);
    CHECK(m40_cuda_attn_decode_chunk(m40, 512) == 128);
}

static void test_the_scratch_bound_holds_for_any_gpu(void) {
    /* the lanes' scratch is planned before the GPU is open, for
     * M40_ATTN_DECODE_MAX_SMS: a GPU with more SMs must split no more */
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        m40_cuda_attn_dims most = shapes[i], more = shapes[i];
        most.sm_count = M40_ATTN_DECODE_MAX_SMS;
        more.sm_count = 4 * M40_ATTN_DECODE_MAX_SMS;
        for (int n = 1; n <= 140000; n = n * 3 / 2 + 1) {
            CHECK(m40_cuda_attn_decode_splits(&more, n) <= m40_cuda_attn_decode_splits(&most, n));
            /* and the planned bound is the most of any SM count up to it */
            CHECK(m40_cuda_attn_decode_splits(&shapes[i], n) <=
                  m40_cuda_attn_decode_splits(&most, n));
        }
    }
}

int main(void) {
    test_chunk_is_a_power_of_two_that_fits();
    test_chunk_is_one_per_bucket();
    test_splits_bound_every_position_below();
    test_the_measured_lengths();
    test_the_scratch_bound_holds_for_any_gpu();
    return check_report();
}
