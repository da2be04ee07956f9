/* backend.h - what the engine asks of a backend: run tokens, get logits.
 *
 * A backend holds the model's weights in its own memory (or maps them), a
 * KV cache of n_slots sequences of n_ctx positions, and runs the one
 * forward pass of its kind (cpu/forward.c, cuda/forward.c). Everything
 * outside src/backend/ sees only this header: an opaque m40_backend and the
 * functions below, which dispatch to the implementation backend.c picked.
 * Nothing outside src/backend/ includes a header of cpu/ or cuda/.
 *
 * Owns: nothing itself; each implementation owns its state.
 * Touches: nothing; knows nothing of scheduling, the server or the CLI.
 */
#ifndef M40_BACKEND_BACKEND_H
#define M40_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/err.h"

typedef enum m40_device_kind {
    M40_DEVICE_AUTO = 0, /* CUDA when usable, otherwise the CPU (with a notice) */
    M40_DEVICE_CPU = 1,
    M40_DEVICE_CUDA = 2,
} m40_device_kind;

/* What the KV cache stores (llama.cpp's --cache-type-k / -v). */
typedef enum m40_kv_type {
    M40_KV_F16 = 0,  /* the precision policy's default */
    M40_KV_F32 = 1,  /* twice the memory; no rounding of keys and values */
    M40_KV_Q8_0 = 2, /* 34 bytes per 32 values */
    M40_KV_Q4_0 = 3, /* 18 bytes per 32 values */
} m40_kv_type;

/* The GGML type a cache of this kind stores. */
uint32_t m40_kv_ggml_type(m40_kv_type t);

/* Called while a backend loads: `done` of `total` bytes of weights are in
 * place (uploaded to the GPU, or read into memory). The first call has done
 * 0, the last done == total. Drawing it is the caller's business. */
typedef void (*m40_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct m40_backend_options {
    m40_device_kind device;
    int32_t gpu;           /* CUDA ordinal, -1: automatic */
    int32_t n_ctx;         /* positions per sequence; M40_CTX_TRAINED: see below */
    int32_t n_slots;       /* sequences */
    int32_t n_batch;       /* most tokens per forward chunk */
    int32_t n_threads;     /* CPU threads, 0: default */
    m40_kv_type kv_type;   /* the keys' (and the values', unless kv_v_set) */
    m40_kv_type kv_type_v; /* the values', with kv_v_set (--cache-type-v) */
    int32_t kv_v_set;
    /* Switches one backend offers for measurements, comma-separated; a
     * backend refuses one it does not know. CUDA: "no-graphs" (launch each
     * kernel of a decode step), "one-stream" (decode steps share the prompt
     * stream), "no-batch", "pieces-of-4", "tiled-attn" (every prompt
     * chunk's attention in one pass per tile of queries, not only chunks
     * of 16 tokens or more when that is the default), "split-attn" (none),
     * "vec-attn" / "scalar-attn" (the split kernel's eight-elements-a-load
     * form where it applies / never), "prompt-gemv" / "prompt-gemm" (every
     * prompt chunk's products through the batched mat-vec / through
     * dequantize + GEMM, instead of by the chunk's block length),
     * "batch-rows-4" / "-8" / "-16" (rows a block of the repacked
     * batched mat-vecs, instead of by the GPU). NULL or "": none. */
    const char *switches;
    m40_progress_fn progress; /* NULL: no reports */
    void *progress_user;
} m40_backend_options;

/* n_ctx: the model's trained context (llama.cpp's -c 0): all of it on the
 * CPU; on CUDA, when its cache does not fit the free VRAM, the largest
 * multiple of 256 that does (m40_backend_n_ctx says which, and the notice
 * of m40_backend_create says so). */
#define M40_CTX_TRAINED (-1)

typedef struct m40_backend m40_backend;

/* Creates the backend `opts->device` names for `model`. AUTO tries CUDA and
 * falls back to the CPU only when CUDA is unusable, saying so in *notice
 * (a line for the user; empty otherwise). CUDA asked for and unusable is an
 * error. */
int m40_backend_create(m40_backend **out, const m40_model *model, const m40_backend_options *opts,
                       char *notice, size_t notice_cap, m40_err *err);
void m40_backend_destroy(m40_backend *be);

/* Positions per slot. */
int32_t m40_backend_n_ctx(const m40_backend *be);

/* "cpu" or "cuda". */
const char *m40_backend_name(const m40_backend *be);
/* One line: "NVIDIA H100 80GB HBM3 (sm_90), cuBLAS on", "CPU, 16 threads". */
const char *m40_backend_describe(const m40_backend *be);

/* Runs tokens[0..n) of `slot` at positions pos0.. and writes the last
 * token's logits to logits[n_vocab] (host memory). Positions before pos0
 * must have been run already. n may exceed n_batch (it runs in chunks). */
int m40_backend_forward(m40_backend *be, int32_t slot, const int32_t *tokens, int32_t n,
                        int32_t pos0, float *logits, m40_err *err);

/* A batch: tokens of several sequences run by one forward (llama.cpp's
 * llama_batch). Row i is token[i] at position pos[i] of slot slot[i]. The
 * rows of one slot are consecutive in the batch and at consecutive
 * positions, each continuing what the slot holds (positions before a
 * slot's first row have been run). want[i] says what row i gives back:
 * nothing, its logits, or (a backend with has_greedy) only their argmax.
 *
 * Batch invariance: each row's logits, and what it leaves in the KV cache,
 * are bit for bit what running the same tokens of that slot alone, in the
 * same pieces, gives: no row's arithmetic depends on the other rows. */
enum { M40_WANT_NONE = 0, M40_WANT_LOGITS = 1, M40_WANT_ARGMAX = 2 };
typedef struct m40_batch {
    int32_t n;
    const int32_t *token, *slot, *pos; /* [n] */
    const uint8_t *want;               /* [n] M40_WANT_* */
} m40_batch;

/* Runs the batch: the logits of the WANT_LOGITS rows go, in row order, to
 * logits[][n_vocab], the argmax of the WANT_ARGMAX rows to argmax[]. A
 * batch that breaks the rules above (a slot, position or token out of
 * range, a slot's rows apart or not consecutive, an argmax asked of a
 * backend without has_greedy) is refused before anything runs. */
int m40_backend_forward_batch(m40_backend *be, const m40_batch *b, float *logits, int32_t *argmax,
                              m40_err *err);

/* Nonzero when the backend can pick the greedy token itself, so that only
 * the argmax crosses back (m40_backend_forward_greedy); otherwise callers
 * take the logits and pick on the host. */
int m40_backend_has_greedy(const m40_backend *be);
/* The same as m40_backend_forward, giving the argmax of the last logits. */
int m40_backend_forward_greedy(m40_backend *be, int32_t slot, const int32_t *tokens, int32_t n,
                               int32_t pos0, int32_t *token, m40_err *err);

/* Nonzero when a single-token forward may run at the same time as a
 * forward of several tokens (on another slot, from another thread): the
 * CUDA backend runs them on separate streams. Otherwise callers must run
 * one forward at a time. */
int m40_backend_concurrent_decode(const m40_backend *be);

/* Memory a backend holds, by kind (bytes; on CUDA, VRAM). */
typedef struct m40_backend_memory {
    size_t weights, kv, scratch;
} m40_backend_memory;
m40_backend_memory m40_backend_memory_used(const m40_backend *be);
/* What the CUDA backend would allocate for `model` under `opts` (n_ctx
 * positive), computed without a GPU (for `info` and the fit check); the
 * KV cache sized for its types, whether CUDA takes them yet or not. */
m40_backend_memory m40_backend_plan_vram(const m40_model *model, const m40_backend_options *opts);
/* The largest context (a multiple of 256, at most opts->n_ctx) whose plan
 * fits in free_bytes with 256 MiB to spare (CUDA's context, graphs and
 * libraries take some beyond the plan); 0: none does. */
int32_t m40_backend_fit_ctx(const m40_model *model, const m40_backend_options *opts,
                            size_t free_bytes);

/* The device's copy bandwidth (device to device, read + write bytes per
 * second / 1e9), measured on two 256 MiB buffers: bench's yardstick for
 * the weights read per second. 0 (and success) on a backend that has no
 * device memory of its own (the CPU). */
int m40_backend_copy_bandwidth(m40_backend *be, double *gb_per_s, m40_err *err);

/* Reads position `pos` of layer `layer` of `slot` back from the KV cache as
 * FP32 (k and v: n_head_kv * head_dim floats each): a view for layout
 * tests. Fails (UNSUPPORTED) on a backend without it. */
int m40_backend_read_kv(m40_backend *be, int32_t slot, int32_t layer, int32_t pos, float *k,
                        float *v, m40_err *err);

/* A slot's K/V of positions [0, n) copied to host memory and back: the
 * prompt cache's host-RAM store (--cache-ram) keeps an evicted slot's
 * cache this way and puts a prefix of it back later. The copy is bytes in
 * the backend's own layout (per layer, the K rows then the V rows), good
 * only for a backend of the same model and options; a restored prefix is
 * bit for bit what the slot held when it was saved. Only for a slot no
 * forward is running on (other slots may be running). */
size_t m40_backend_kv_bytes(const m40_backend *be, int32_t n);
int m40_backend_kv_save(m40_backend *be, int32_t slot, int32_t n, void *dst, m40_err *err);
/* Puts positions [0, n) of a copy of n_saved >= n positions into slot. */
int m40_backend_kv_restore(m40_backend *be, int32_t slot, const void *src, int32_t n_saved,
                           int32_t n, m40_err *err);

/* ---- CUDA devices, for `info` -------------------------------------------- */

#define M40_BACKEND_MAX_GPUS 16

typedef struct m40_gpu_summary {
    int ordinal;    /* what --gpu takes */
    char name[128]; /* "Tesla M40 24GB" */
    int cc_major, cc_minor, sm_count;
    size_t vram_free, vram_total; /* bytes */
    int supported;                /* compute capability 5.2 or newer */
} m40_gpu_summary;

typedef struct m40_gpu_report {
    int driver_version; /* 12040 for CUDA 12.4; 0: no driver found */
    int n_gpus;         /* -1: the devices could not be listed */
    m40_gpu_summary gpus[M40_BACKEND_MAX_GPUS];
    int selected;     /* index into gpus of the device a backend would use; -1: none */
    int cublas_on;    /* whether cuBLAS loaded on it */
    char cublas[384]; /* "libcublas.so.12, version 120401", or why it is off */
} m40_gpu_report;

/* Finds the driver, lists the devices and opens the one a CUDA backend
 * would use (`gpu` as --gpu: an ordinal or -1), loading the kernels and
 * cuBLAS as creating a backend does, then closes it again. Fills what it
 * learnt before any failure; returns -1 with the reason CUDA is unusable. */
int m40_backend_probe_gpus(int gpu, m40_gpu_report *r, m40_err *err);

#endif /* M40_BACKEND_BACKEND_H */
