/* test_gpu_forward.c - the CUDA forward pass against the CPU reference.
 *
 *   test_gpu_forward MODEL.gguf [MODEL.gguf ...]
 *
 * For each model: a prompt is run through both backends (prefill), then
 * DECODE_STEPS tokens one at a time (greedy, from the CPU's logits, fed to
 * both); at every step max |cuda - cpu| / max |cpu| of the logits must stay
 * below 1e-3. Then, on the GPU alone, prefill-then-decode must equal
 * running the same tokens one by one: within 1e-4 relative with an FP32 KV
 * cache (the same function computed two ways), within 1e-3 with the
 * default FP16 cache (whose roundings the two orders of summation flip
 * differently; docs/cuda_parity_and_kv_layout.md), and the greedy path
 * (argmax on the GPU) must pick the CPU's tokens; decode steps on their
 * own stream, beside another thread's prompt, must equal the one-stream
 * results bit for bit (check_lanes); and a batch of two sequences' prompt
 * chunks and decode tokens must give each row what running its sequence
 * alone, in the same pieces, gives, bit for bit (check_batch); and decode
 * steps of up to 11 sequences at once, at positions up to past 1024 (where
 * a row's attention splits change length), through the batched kernels,
 * with graphs and without, must give each row's logits, argmax and KV
 * entries exactly as the row alone (check_rows); and q8_0 / q4_0 caches
 * store the CPU quantizer's bytes and stay near the CPU (check_kv_quant).
 * Run with
 * M40LLM_ENABLE_CUBLAS=0 and =1 to cover both prefill GEMMs.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"
#include "check.h"
#include "gpu_test.h"
#include "model/model.h"
#include "quant/quant.h"

#define PROMPT_LEN   19
#define DECODE_STEPS 8

static double rel_diff(const float *a, const float *b, int n) {
    double worst = 0.0, mag = 1e-30;
    for (int i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
        mag = fmax(mag, fabs((double)b[i]));
    }
    return worst / mag;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* `switches`: the backend's measurement switches (backend.h), or NULL. */
static int make_opt(m40_backend **be, const m40_model *m, m40_device_kind kind, m40_kv_type kv,
                    const char *switches, m40_err *err) {
    char notice[256];
    m40_backend_options o = {.device = kind,
                             .gpu = -1,
                             .n_ctx = 128,
                             .n_slots = 2,
                             .n_batch = 16,
                             .switches = switches,
                             .kv_type = kv};
    return m40_backend_create(be, m, &o, notice, sizeof notice, err);
}

static int make_kv(m40_backend **be, const m40_model *m, m40_device_kind kind, m40_kv_type kv,
                   m40_err *err) {
    return make_opt(be, m, kind, kv, NULL, err);
}

static int make(m40_backend **be, const m40_model *m, m40_device_kind kind, m40_err *err) {
    return make_kv(be, m, kind, M40_KV_F16, err);
}

/* Prefill-then-decode against token by token with an FP32 KV cache: the
 * two paths sum in different orders (SGEMM vs mat-vec, attention splits),
 * so their FP32 results differ by ~1e-7; with FP16 KV those differences
 * flip some stored roundings (a 5e-4 step each), which is why the FP16
 * check below is looser. Returns the relative logit difference. */
static double prefill_vs_tokens_f32(const m40_model *m, const int32_t *toks, int n_prompt,
                                    int n_all) {
    m40_backend *be = NULL;
    m40_err err = {0};
    int nv = m->cfg.n_vocab;
    float *a = malloc((size_t)nv * 4), *b = malloc((size_t)nv * 4);
    double pd = 1.0;
    int ok = a && b && !make_kv(&be, m, M40_DEVICE_CUDA, M40_KV_F32, &err) &&
             !m40_backend_forward(be, 0, toks, n_prompt, 0, a, &err);
    for (int i = n_prompt; ok && i < n_all; i++)
        ok = !m40_backend_forward(be, 0, &toks[i], 1, i, a, &err);
    for (int i = 0; ok && i < n_all; i++)
        ok = !m40_backend_forward(be, 1, &toks[i], 1, i, b, &err);
    if (ok)
        pd = rel_diff(b, a, nv);
    else
        fprintf(stderr, "kv f32: %s\n", err.msg);
    CHECK(ok);
    m40_backend_destroy(be);
    free(a), free(b);
    return pd;
}

/* A forward of toks[0..n) on slot 1 at position 0, run on another thread:
 * the server creates the backend on its main thread and runs it from
 * workers, and check_lanes runs a prompt beside decode steps. */
typedef struct thread_job {
    m40_backend *be;
    const int32_t *toks;
    int n;
    float *logits;
    int rc;
    m40_err err;
} thread_job;

static void *forward_on_thread(void *arg) {
    thread_job *j = arg;
    j->rc = m40_backend_forward(j->be, 1, j->toks, j->n, 0, j->logits, &j->err);
    return NULL;
}

/* Decode steps on their own stream (the decode lane) compute exactly what
 * they compute on the prefill stream (--one-stream): the same kernels on
 * other buffers. And while another thread runs a prompt on slot 1, slot 0's
 * decode steps give the same logits, bit for bit, as with nothing beside
 * them, and so does the prompt. */
static void check_lanes(const m40_model *m, const int32_t *toks, int n_all) {
    m40_backend *one = NULL, *two = NULL;
    m40_err err = {0};
    int nv = m->cfg.n_vocab, n_long = 100;
    float *ref = malloc((size_t)nv * 4), *got = malloc((size_t)nv * 4);
    float *pre_ref = malloc((size_t)nv * 4), *pre_got = malloc((size_t)nv * 4);
    int32_t *long_toks = malloc((size_t)n_long * sizeof *long_toks);
    int ok = ref && got && pre_ref && pre_got && long_toks &&
             !make_opt(&one, m, M40_DEVICE_CUDA, M40_KV_F16, "one-stream", &err) &&
             !make_opt(&two, m, M40_DEVICE_CUDA, M40_KV_F16, NULL, &err);
    CHECK(ok && !m40_backend_concurrent_decode(one) && m40_backend_concurrent_decode(two));
    for (int i = 0; ok && i < n_long; i++)
        long_toks[i] = toks[(i * 7) % n_all];
    for (int i = 0; ok && i < n_all; i++)
        ok = !m40_backend_forward(one, 0, &toks[i], 1, i, ref, &err);
    ok = ok && !m40_backend_forward(one, 1, long_toks, n_long, 0, pre_ref, &err);
    CHECK(ok);
    thread_job job = {.be = two, .toks = long_toks, .n = n_long, .logits = pre_got, .rc = -1};
    pthread_t th;
    int started = ok && pthread_create(&th, NULL, forward_on_thread, &job) == 0;
    CHECK(!ok || started);
    for (int i = 0; started && ok && i < n_all; i++)
        ok = !m40_backend_forward(two, 0, &toks[i], 1, i, got, &err);
    if (started)
        CHECK(pthread_join(th, NULL) == 0 && job.rc == 0);
    if (started && job.rc)
        fprintf(stderr, "prompt beside decode: %s\n", job.err.msg);
    if (!ok && err.msg[0])
        fprintf(stderr, "lanes: %s\n", err.msg);
    CHECK(ok);
    if (ok && started && job.rc == 0) {
        CHECK(memcmp(ref, got, (size_t)nv * 4) == 0);
        CHECK(memcmp(pre_ref, pre_got, (size_t)nv * 4) == 0);
    }
    m40_backend_destroy(one);
    m40_backend_destroy(two);
    free(ref), free(got), free(pre_ref), free(pre_got), free(long_toks);
}

/* Batch invariance on CUDA (backend.h's m40_batch): slot 0's prompt in two
 * pieces and slot 1's prompt, then one decode token each, run as three
 * batches mixing the slots, against each slot's pieces run alone. */
static void check_batch(const m40_model *m, const int32_t *toks) {
    m40_backend *alone = NULL, *batched = NULL;
    m40_err err = {0};
    int nv = m->cfg.n_vocab;
    float *ref = malloc((size_t)5 * nv * 4), *got = malloc((size_t)2 * nv * 4);
    int ok = ref && got && !make(&alone, m, M40_DEVICE_CUDA, &err) &&
             !make(&batched, m, M40_DEVICE_CUDA, &err);
    /* alone: slot 0 = toks[0..10), toks[10..19), toks[19]; slot 1 = toks[0..5), toks[5] */
    float *r[5];
    for (int i = 0; i < 5; i++)
        r[i] = ref ? ref + (size_t)i * nv : NULL;
    ok = ok && !m40_backend_forward(alone, 0, toks, 10, 0, r[0], &err) &&
         !m40_backend_forward(alone, 0, toks + 10, 9, 10, r[1], &err) &&
         !m40_backend_forward(alone, 0, toks + 19, 1, 19, r[2], &err) &&
         !m40_backend_forward(alone, 1, toks, 5, 0, r[3], &err) &&
         !m40_backend_forward(alone, 1, toks + 5, 1, 5, r[4], &err);
    /* batched: [s0 0..10) ; [s1 0..5), s0 10..19) ; [s0 19, s1 5] */
    int32_t tk[16], sl[16], ps[16];
    uint8_t wt[16];
    int n = 0;
#define ROW(s, p, w) (tk[n] = toks[p], sl[n] = (s), ps[n] = (p), wt[n] = (w), n++)
    for (int p = 0; p < 10; p++)
        ROW(0, p, p == 9);
    m40_batch b1 = {.n = n, .token = tk, .slot = sl, .pos = ps, .want = wt};
    ok = ok && !m40_backend_forward_batch(batched, &b1, got, NULL, &err);
    CHECK(ok && memcmp(got, r[0], (size_t)nv * 4) == 0);
    n = 0;
    for (int p = 0; p < 5; p++)
        ROW(1, p, p == 4);
    for (int p = 10; p < 19; p++)
        ROW(0, p, p == 18);
    m40_batch b2 = {.n = n, .token = tk, .slot = sl, .pos = ps, .want = wt};
    ok = ok && !m40_backend_forward_batch(batched, &b2, got, NULL, &err);
    CHECK(ok && memcmp(got, r[3], (size_t)nv * 4) == 0 &&
          memcmp(got + nv, r[1], (size_t)nv * 4) == 0);
    n = 0;
    ROW(0, 19, 1);
    ROW(1, 5, 1);
#undef ROW
    m40_batch b3 = {.n = n, .token = tk, .slot = sl, .pos = ps, .want = wt};
    ok = ok && !m40_backend_forward_batch(batched, &b3, got, NULL, &err);
    CHECK(ok && memcmp(got, r[2], (size_t)nv * 4) == 0 &&
          memcmp(got + nv, r[4], (size_t)nv * 4) == 0);
    if (!ok)
        fprintf(stderr, "batch: %s\n", err.msg);
    m40_backend_destroy(alone);
    m40_backend_destroy(batched);
    free(ref), free(got);
}

/* Decode rows of many sequences in one step against each row alone: 11
 * slots with prompts of 3..53 tokens and one of 1040, then steps over all
 * of them, a few of them and all again (batches of 11, 3, 2, 11: the
 * batched mat-vec's pieces of 2..8 inputs), half the rows wanting logits
 * and half an argmax. Every logit, argmax and KV entry must be identical. */
#define ROWS_SLOTS 11
#define ROWS_LONG  1040
static void check_rows_with(const m40_model *m, const char *switches, m40_kv_type kv) {
    m40_backend *alone = NULL, *batched = NULL;
    m40_err err = {0};
    const int nv = m->cfg.n_vocab, kv_dim = m->cfg.n_head_kv * m->cfg.head_dim;
    m40_backend_options o = {.device = M40_DEVICE_CUDA,
                             .gpu = -1,
                             .n_ctx = 1088,
                             .n_slots = ROWS_SLOTS,
                             .n_batch = 16,
                             .kv_type = kv};
    char notice[256];
    int ok = !m40_backend_create(&alone, m, &o, notice, sizeof notice, &err);
    o.switches = switches;
    ok = ok && !m40_backend_create(&batched, m, &o, notice, sizeof notice, &err);
    int32_t *prompt = malloc(ROWS_LONG * sizeof *prompt);
    float *ref = malloc((size_t)ROWS_SLOTS * nv * 4), *got = malloc((size_t)ROWS_SLOTS * nv * 4);
    float *k0 = malloc((size_t)kv_dim * 4), *v0 = malloc((size_t)kv_dim * 4);
    float *k1 = malloc((size_t)kv_dim * 4), *v1 = malloc((size_t)kv_dim * 4);
    ok = ok && prompt && ref && got && k0 && v0 && k1 && v1;
    unsigned seed = 5;
    for (int i = 0; ok && i < ROWS_LONG; i++)
        prompt[i] = (int32_t)((gpu_test_rand(&seed) + 1.0f) * 0.5f * (float)(nv - 1));
    int32_t len[ROWS_SLOTS], next[ROWS_SLOTS];
    for (int s = 0; ok && s < ROWS_SLOTS; s++) {
        len[s] = s == ROWS_SLOTS - 1 ? ROWS_LONG : 3 + 5 * s;
        ok = !m40_backend_forward(alone, s, prompt, len[s], 0, ref, &err) &&
             !m40_backend_forward(batched, s, prompt, len[s], 0, got, &err);
        next[s] = argmax(ref, nv);
    }
    CHECK(ok);
    static const int step_slots[][ROWS_SLOTS + 1] = {
        {11, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
        {3, 10, 2, 7},
        {2, 4, 10},
        {11, 3, 1, 4, 10, 5, 9, 2, 6, 0, 8, 7},
    };
    int32_t tk[ROWS_SLOTS], sl[ROWS_SLOTS], ps[ROWS_SLOTS], am[ROWS_SLOTS], solo_am[ROWS_SLOTS];
    uint8_t wt[ROWS_SLOTS];
    for (size_t st = 0; ok && st < sizeof step_slots / sizeof step_slots[0]; st++) {
        int n = step_slots[st][0], n_logits = 0, n_am = 0;
        for (int i = 0; i < n; i++) {
            int s = step_slots[st][1 + i];
            sl[i] = s, tk[i] = next[s], ps[i] = len[s];
            wt[i] = (i + (int)st) % 2 ? M40_WANT_ARGMAX : M40_WANT_LOGITS;
            /* alone: the row by itself, the way a lone request would run it */
            if (wt[i] == M40_WANT_LOGITS)
                ok = ok && !m40_backend_forward(alone, s, &tk[i], 1, ps[i],
                                                ref + (size_t)n_logits++ * nv, &err);
            else
                ok = ok && !m40_backend_forward_greedy(alone, s, &tk[i], 1, ps[i], &solo_am[n_am++],
                                                       &err);
        }
        m40_batch b = {.n = n, .token = tk, .slot = sl, .pos = ps, .want = wt};
        ok = ok && !m40_backend_forward_batch(batched, &b, got, am, &err);
        CHECK(ok && memcmp(got, ref, (size_t)n_logits * nv * 4) == 0);
        CHECK(ok && memcmp(am, solo_am, (size_t)n_am * sizeof *am) == 0);
        for (int i = 0, l = 0, a = 0; ok && i < n; i++) {
            int s = sl[i];
            next[s] = wt[i] == M40_WANT_LOGITS ? argmax(ref + (size_t)l++ * nv, nv) : solo_am[a++];
            /* what the row left in the cache, on the first and last layer */
            for (int layer = 0; layer < m->cfg.n_layer;
                 layer += m->cfg.n_layer - 1 ? m->cfg.n_layer - 1 : 1) {
                ok = !m40_backend_read_kv(alone, s, layer, len[s], k0, v0, &err) &&
                     !m40_backend_read_kv(batched, s, layer, len[s], k1, v1, &err);
                CHECK(ok && memcmp(k0, k1, (size_t)kv_dim * 4) == 0 &&
                      memcmp(v0, v1, (size_t)kv_dim * 4) == 0);
            }
            len[s]++;
        }
    }
    if (!ok)
        fprintf(stderr, "decode rows (%s, KV type %d): %s\n", switches ? switches : "graphs",
                (int)kv, err.msg);
    m40_backend_destroy(alone);
    m40_backend_destroy(batched);
    free(prompt), free(ref), free(got), free(k0), free(v0), free(k1), free(v1);
}

static void check_rows(const m40_model *m) {
    check_rows_with(m, NULL, M40_KV_F16);
    check_rows_with(m, "no-graphs", M40_KV_F16);
}

/* The KV cache layout, read back through m40_backend_read_kv: slot 0
 * (prefill then decode) and slot 1 (token by token) hold the same n_all
 * positions, so every (layer, position) must match between the slots up to
 * FP16 rounding steps, be non-zero, and reads outside the cache must fail. */
static void check_kv_layout(m40_backend *gpu, const m40_model *m, int n_all) {
    int kv_dim = m->cfg.n_head_kv * m->cfg.head_dim;
    float *k0 = malloc((size_t)kv_dim * 4), *v0 = malloc((size_t)kv_dim * 4);
    float *k1 = malloc((size_t)kv_dim * 4), *v1 = malloc((size_t)kv_dim * 4);
    m40_err err = {0};
    double worst = 0.0, mag = 0.0;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        for (int p = 0; p < n_all; p++) {
            int ok = !m40_backend_read_kv(gpu, 0, l, p, k0, v0, &err) &&
                     !m40_backend_read_kv(gpu, 1, l, p, k1, v1, &err);
            CHECK(ok);
            if (!ok)
                break;
            double row_mag = 0.0;
            for (int i = 0; i < kv_dim; i++) {
                worst = fmax(worst, fmax(fabs(k0[i] - k1[i]), fabs(v0[i] - v1[i])));
                row_mag = fmax(row_mag, fmax(fabs(k0[i]), fabs(v0[i])));
            }
            CHECK(row_mag > 0.0);
            mag = fmax(mag, row_mag);
        }
    }
    if (worst > 1e-2 * mag)
        fprintf(stderr, "KV slot 0 vs slot 1: max diff %.3g of max %.3g\n", worst, mag);
    CHECK(worst <= 1e-2 * mag);
    CHECK(m40_backend_read_kv(gpu, 2, 0, 0, k0, v0, &err) != 0);
    CHECK(m40_backend_read_kv(gpu, 0, m->cfg.n_layer, 0, k0, v0, &err) != 0);
    CHECK(m40_backend_read_kv(gpu, 0, 0, 128, k0, v0, &err) != 0);
    CHECK(m40_backend_read_kv(gpu, 0, 0, -1, k0, v0, &err) != 0);
    free(k0), free(v0), free(k1), free(v1);
}

/* A quantized KV cache on CUDA (kv_quant.cu). Its promise: the bytes
 * stored are the CPU quantizer's of the keys and values the FP32 cache
 * would hold. Layer 0's K/V depend on the tokens alone (later layers read
 * the cache, so they differ between cache types), so each of its rows,
 * prefilled and decoded, must read back as the FP32 cache's row quantized
 * and dequantized on the host, bit for bit. The logits stay near the CPU's
 * with the same cache type: the FP32 sums' ~1e-6 differences only matter
 * where they flip a quant, which moves one value by one step (1/127 of its
 * block's largest magnitude for q8_0, 1/8 for q4_0), so the bounds allow a
 * few such flips: 1e-2 (q8_0) and 5e-2 (q4_0) of the largest logit. Then
 * decode rows of many sequences in one step equal each row alone, as for
 * FP16 (check_rows). */
static void check_kv_quant(const m40_model *m, const int32_t *toks, int n_prompt, int n_all) {
    const m40_kv_type types[] = {M40_KV_Q8_0, M40_KV_Q4_0};
    const double bound[] = {1e-2, 5e-2};
    const int nv = m->cfg.n_vocab, kv_dim = m->cfg.n_head_kv * m->cfg.head_dim;
    /* a quantized cache needs whole blocks per head; and its kernels do
     * not depend on the weights: models of two weight types cover them */
    uint32_t wt = m->layers[0].wq.type;
    if (m->cfg.head_dim % 32 != 0 || (wt != M40_GGML_F16 && wt != M40_GGML_Q4_0))
        return;
    float *lf = malloc((size_t)nv * 4), *lq = malloc((size_t)nv * 4), *lc = malloc((size_t)nv * 4);
    float *kf = malloc((size_t)kv_dim * 4), *vf = malloc((size_t)kv_dim * 4);
    float *kq = malloc((size_t)kv_dim * 4), *vq = malloc((size_t)kv_dim * 4);
    float *kr = malloc((size_t)kv_dim * 4), *vr = malloc((size_t)kv_dim * 4);
    unsigned char *blk = malloc((size_t)kv_dim * 2);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        m40_backend *f32 = NULL, *q = NULL, *cpu = NULL;
        m40_err err = {0};
        uint32_t gt = m40_kv_ggml_type(types[t]);
        int ok = lf && lq && lc && kf && vf && kq && vq && kr && vr && blk &&
                 !make_kv(&f32, m, M40_DEVICE_CUDA, M40_KV_F32, &err) &&
                 !make_kv(&q, m, M40_DEVICE_CUDA, types[t], &err) &&
                 !make_kv(&cpu, m, M40_DEVICE_CPU, types[t], &err) &&
                 !m40_backend_forward(f32, 0, toks, n_prompt, 0, lf, &err) &&
                 !m40_backend_forward(q, 0, toks, n_prompt, 0, lq, &err) &&
                 !m40_backend_forward(cpu, 0, toks, n_prompt, 0, lc, &err);
        double worst = ok ? rel_diff(lq, lc, nv) : 1.0;
        for (int i = n_prompt; ok && i < n_all; i++) {
            ok = !m40_backend_forward(f32, 0, &toks[i], 1, i, lf, &err) &&
                 !m40_backend_forward(q, 0, &toks[i], 1, i, lq, &err) &&
                 !m40_backend_forward(cpu, 0, &toks[i], 1, i, lc, &err);
            worst = fmax(worst, ok ? rel_diff(lq, lc, nv) : 1.0);
        }
        int same = ok;
        for (int p = 0; ok && p < n_all; p++) {
            ok = !m40_backend_read_kv(f32, 0, 0, p, kf, vf, &err) &&
                 !m40_backend_read_kv(q, 0, 0, p, kq, vq, &err) &&
                 !m40_quantize_row(gt, kf, blk, kv_dim, &err) &&
                 !m40_dequantize_row(gt, blk, kr, kv_dim, &err) &&
                 !m40_quantize_row(gt, vf, blk, kv_dim, &err) &&
                 !m40_dequantize_row(gt, blk, vr, kv_dim, &err);
            if (ok && (memcmp(kq, kr, (size_t)kv_dim * 4) || memcmp(vq, vr, (size_t)kv_dim * 4))) {
                if (same)
                    fprintf(stderr, "KV type %d: layer 0 position %d is not the CPU's bytes\n",
                            (int)types[t], p);
                same = 0;
            }
        }
        CHECK(ok && same);
        if (worst >= bound[t])
            fprintf(stderr, "KV type %d: relative logit diff to the CPU %.3g\n", (int)types[t],
                    worst);
        CHECK(ok && worst < bound[t]);
        if (!ok)
            fprintf(stderr, "KV type %d: %s\n", (int)types[t], err.msg);
        printf("  KV %s: layer 0 rows %s the CPU quantizer's, logits within %.3g of the CPU's\n",
               m40_ggml_type_name(gt), same ? "equal" : "DIFFER from", worst);
        m40_backend_destroy(f32);
        m40_backend_destroy(q);
        m40_backend_destroy(cpu);
        if (ok)
            check_rows_with(m, NULL, types[t]);
    }
    free(lf), free(lq), free(lc), free(kf), free(vf), free(kq), free(vq), free(kr), free(vr);
    free(blk);
}

/* The prompt's attention by every path the CUDA backend has, whatever the
 * defaults (ops.h's M40_CUDA_*_BY_DEFAULT): "tiled-attn" sends both of
 * the prompt's chunks (16 tokens and 3) through the tiled kernel
 * (attn_tile.cu), "split-attn" through the split kernel, "vec-attn" and
 * "scalar-attn" pick the split kernel's eight-elements-a-load form (F16,
 * Q8_0, Q4_0 caches of head_dim 64/128/256) or its per-element one. Each
 * gives the CPU's logits within 1e-3, and with a q8_0 cache within
 * check_kv_quant's 1e-2. */
static void check_attn_path(const m40_model *m, const int32_t *toks, m40_kv_type kv,
                            const char *switches, double bound) {
    m40_backend *cpu = NULL, *gpu = NULL;
    m40_err err = {0};
    const int nv = m->cfg.n_vocab;
    float *a = malloc((size_t)nv * 4), *b = malloc((size_t)nv * 4);
    int ok = a && b && !make_kv(&cpu, m, M40_DEVICE_CPU, kv, &err) &&
             !make_opt(&gpu, m, M40_DEVICE_CUDA, kv, switches, &err) &&
             !m40_backend_forward(cpu, 0, toks, PROMPT_LEN, 0, a, &err) &&
             !m40_backend_forward(gpu, 0, toks, PROMPT_LEN, 0, b, &err);
    double d = ok ? rel_diff(b, a, nv) : 1.0;
    if (!ok || d >= bound)
        fprintf(stderr, "attention by %s, KV type %d: %s, relative logit diff %.3g\n",
                switches ? switches : "default", (int)kv, err.msg, d);
    CHECK(ok && d < bound);
    m40_backend_destroy(cpu);
    m40_backend_destroy(gpu);
    free(a), free(b);
}

static void check_attn_paths(const m40_model *m, const int32_t *toks) {
    static const char *const paths[] = {"tiled-attn", "split-attn,vec-attn",
                                        "split-attn,scalar-attn", "tiled-attn,vec-attn"};
    for (int i = 0; i < 4; i++)
        check_attn_path(m, toks, M40_KV_F16, paths[i], 1e-3);
    if (m->cfg.head_dim % 32 == 0)
        for (int i = 0; i < 4; i++)
            check_attn_path(m, toks, M40_KV_Q8_0, paths[i], 1e-2);
    /* and the prompt's products by either path, whatever the crossover
     * (forward.c's M40_CUDA_PROMPT_GEMV): the batched mat-vec, or
     * dequantize + GEMM even for chunks the crossover gives the mat-vec */
    check_attn_path(m, toks, M40_KV_F16, "prompt-gemv", 1e-3);
    check_attn_path(m, toks, M40_KV_F16, "prompt-gemm", 1e-3);
}

static void test_model(const char *path) {
    m40_err err = {0};
    m40_model *m = NULL;
    m40_backend *cpu = NULL, *gpu = NULL;
    float *lc = NULL, *lg = NULL, *lg2 = NULL;
    if (m40_model_load(&m, path, &err) || make(&cpu, m, M40_DEVICE_CPU, &err) ||
        make(&gpu, m, M40_DEVICE_CUDA, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        CHECK(0);
        goto done;
    }
    const int nv = m->cfg.n_vocab;
    lc = malloc((size_t)nv * 4), lg = malloc((size_t)nv * 4), lg2 = malloc((size_t)nv * 4);
    int32_t toks[PROMPT_LEN + DECODE_STEPS];
    unsigned seed = 77;
    for (int i = 0; i < PROMPT_LEN; i++)
        toks[i] = (int32_t)((gpu_test_rand(&seed) + 1.0f) * 0.5f * (float)(nv - 1));
    /* prefill (longer than n_batch: chunked) then decode, on slot 0 */
    double worst = 0.0;
    int ok = !m40_backend_forward(cpu, 0, toks, PROMPT_LEN, 0, lc, &err) &&
             !m40_backend_forward(gpu, 0, toks, PROMPT_LEN, 0, lg, &err);
    CHECK(ok);
    for (int s = 0; ok && s <= DECODE_STEPS; s++) {
        double d = rel_diff(lg, lc, nv);
        worst = fmax(worst, d);
        if (d >= 1e-3)
            fprintf(stderr, "%s: step %d: relative logit diff %.3g\n", path, s, d);
        CHECK(d < 1e-3);
        if (s == DECODE_STEPS)
            break;
        int32_t next = argmax(lc, nv);
        toks[PROMPT_LEN + s] = next;
        ok = !m40_backend_forward(cpu, 0, &next, 1, PROMPT_LEN + s, lc, &err) &&
             !m40_backend_forward(gpu, 0, &next, 1, PROMPT_LEN + s, lg, &err);
        CHECK(ok);
    }
    /* slot 1 on the GPU: the same tokens one at a time, greedy path at the end */
    int n_all = PROMPT_LEN + DECODE_STEPS;
    for (int i = 0; ok && i < n_all; i++)
        ok = !m40_backend_forward(gpu, 1, &toks[i], 1, i, lg2, &err);
    CHECK(ok);
    /* lg holds slot 0's logits after the same n_all tokens (prefill + decode) */
    double pd = rel_diff(lg2, lg, nv);
    if (pd >= 1e-3)
        fprintf(stderr, "%s: prefill+decode vs token-by-token (FP16 KV): %.3g\n", path, pd);
    CHECK(pd < 1e-3);
    double pd32 = ok ? prefill_vs_tokens_f32(m, toks, PROMPT_LEN, n_all) : 1.0;
    if (pd32 >= 1e-4)
        fprintf(stderr, "%s: prefill+decode vs token-by-token (FP32 KV): %.3g\n", path, pd32);
    CHECK(pd32 < 1e-4);
    if (ok)
        check_kv_layout(gpu, m, n_all);
    if (ok)
        check_lanes(m, toks, n_all);
    if (ok)
        check_batch(m, toks);
    if (ok)
        check_rows(m);
    if (ok)
        check_kv_quant(m, toks, PROMPT_LEN, n_all);
    if (ok)
        check_attn_paths(m, toks);
    int32_t g = -1, probe = toks[n_all - 1];
    ok = ok && !m40_backend_forward_greedy(gpu, 1, &probe, 1, n_all - 1, &g, &err);
    CHECK(ok && g == argmax(lg2, nv));
    if (err.msg[0])
        fprintf(stderr, "%s: %s\n", path, err.msg);
    thread_job job = {.be = gpu, .toks = toks, .n = 1, .logits = lg2, .rc = -1};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, forward_on_thread, &job) == 0 && pthread_join(th, NULL) == 0);
    if (job.rc)
        fprintf(stderr, "%s: forward from another thread: %s\n", path, job.err.msg);
    CHECK(job.rc == 0);
    printf("%s: %s, max relative logit diff %.3g over %d steps, prefill/decode %.3g "
           "(FP32 KV: %.3g)\n",
           path, m40_backend_describe(gpu), worst, DECODE_STEPS + 1, pd, pd32);
done:
    free(lc), free(lg), free(lg2);
    m40_backend_destroy(cpu);
    m40_backend_destroy(gpu);
    m40_model_free(m);
}

int main(int argc, char **argv) {
    m40_gpu probe;
    gpu_test_open(&probe); /* exits 77 with the skip line when there is no GPU */
    m40_gpu_close(&probe);
    if (argc < 2) {
        fprintf(stderr, "usage: test_gpu_forward MODEL.gguf...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++)
        test_model(argv[i]);
    return check_report();
}
