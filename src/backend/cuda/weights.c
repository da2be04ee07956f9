/* weights.c - the model's weights in VRAM: where each tensor goes, the
 * upload, and the rewrite of Q4_0 / Q8_0 into the fast kernels' layout.
 * See cuda_internal.h; the forward pass (forward.c) reads what this places.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "gguf/gguf.h"

/* ---- placement -----------------------------------------------------------
 * Every tensor the model uses is uploaded in its GGUF type, 256-byte
 * aligned, in file order per layer, except that Wk and Wv follow Wq with no
 * gap (and Wup follows Wgate) when their types and row sizes match: the
 * three (two) then form one matrix with the rows of all, which one mat-vec
 * launch multiplies. Same for the Q/K/V biases. */

static size_t tensor_bytes(const m40_weight *w) {
    return w->data ? w->row_bytes * (size_t)w->rows : 0;
}

static int same_layout(const m40_weight *a, const m40_weight *b) {
    return a->data && b->data && a->type == b->type && a->cols == b->cols &&
           a->row_bytes == b->row_bytes;
}

/* Places w at *off (aligned, unless glued to the tensor before it). With
 * base != 0 fills d and records the tensor for m40_cuda_upload_weights. */
static void place(m40_cuda *cu, m40_dptr base, size_t *off, const m40_weight *w, dweight *d,
                  int glue) {
    if (!w->data)
        return;
    if (!glue)
        *off = m40_cuda_align256(*off);
    if (base) {
        d->type = w->type;
        d->cols = (int)w->cols;
        d->rows = (int)w->rows;
        d->row_bytes = (int64_t)w->row_bytes;
        d->ptr = base + *off;
        cu->placed[cu->n_placed].w = w;
        cu->placed[cu->n_placed].d = d;
        cu->n_placed++;
    }
    *off += tensor_bytes(w);
}

/* The n matrices parts[], placed back to back, viewed as one. */
static dweight fused_view(const dweight *const *parts, int n) {
    dweight f = *parts[0];
    for (int i = 1; i < n; i++)
        f.rows += parts[i]->rows;
    return f;
}

/* Lays the weights out from base (0: only measure); returns the bytes. */
size_t m40_cuda_layout_weights(m40_cuda *cu, m40_dptr base) {
    const m40_model *m = cu->model;
    size_t off = 0;
    dweight scratch_view;
    cu->n_placed = 0;
#define VIEW(field) (base ? &(field) : &scratch_view)
    place(cu, base, &off, &m->tok_embd, VIEW(cu->tok_embd), 0);
    int tied = m->output.data == m->tok_embd.data;
    if (!tied)
        place(cu, base, &off, &m->output, VIEW(cu->output), 0);
    else if (base)
        cu->output = cu->tok_embd;
    place(cu, base, &off, &m->output_norm, VIEW(cu->output_norm), 0);
    /* Llama 3's rope_freqs, or LongRoPE's long or short factors, as the
     * context picks them (m40_model_rope_factors) */
    const m40_weight *factors = &m->rope_freqs;
    if (m->cfg.rope_longrope)
        factors = m40_model_rope_factors(m, cu->opt.n_ctx) == m->rope_long.data ? &m->rope_long
                                                                                : &m->rope_short;
    place(cu, base, &off, factors, VIEW(cu->rope_freqs), 0);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const m40_layer *L = &m->layers[l];
        dlayer *D = base ? &cu->layers[l] : NULL;
        int qkv = same_layout(&L->wq, &L->wk) && same_layout(&L->wq, &L->wv);
        int biases = L->bq.data && L->bk.data && L->bv.data;
        int no_bias = !L->bq.data && !L->bk.data && !L->bv.data;
        int gu = same_layout(&L->w_gate, &L->w_up);
        place(cu, base, &off, &L->attn_norm, VIEW(D->attn_norm), 0);
        place(cu, base, &off, &L->wq, VIEW(D->wq), 0);
        place(cu, base, &off, &L->wk, VIEW(D->wk), qkv);
        place(cu, base, &off, &L->wv, VIEW(D->wv), qkv);
        place(cu, base, &off, &L->bq, VIEW(D->bq), 0);
        place(cu, base, &off, &L->bk, VIEW(D->bk), biases);
        place(cu, base, &off, &L->bv, VIEW(D->bv), biases);
        place(cu, base, &off, &L->q_norm, VIEW(D->q_norm), 0);
        place(cu, base, &off, &L->k_norm, VIEW(D->k_norm), 0);
        place(cu, base, &off, &L->wo, VIEW(D->wo), 0);
        place(cu, base, &off, &L->attn_post_norm, VIEW(D->attn_post_norm), 0);
        place(cu, base, &off, &L->ffn_norm, VIEW(D->ffn_norm), 0);
        place(cu, base, &off, &L->w_gate, VIEW(D->gate), 0);
        place(cu, base, &off, &L->w_up, VIEW(D->up), gu);
        place(cu, base, &off, &L->w_down, VIEW(D->down), 0);
        place(cu, base, &off, &L->router, VIEW(D->router), 0);
        place(cu, base, &off, &L->gate_exps, VIEW(D->gate_exps), 0);
        place(cu, base, &off, &L->up_exps, VIEW(D->up_exps), 0);
        place(cu, base, &off, &L->down_exps, VIEW(D->down_exps), 0);
        place(cu, base, &off, &L->ffn_post_norm, VIEW(D->ffn_post_norm), 0);
        if (!base)
            continue;
        if (qkv && (biases || no_bias)) {
            const dweight *w3[] = {&D->wq, &D->wk, &D->wv};
            D->wqkv = fused_view(w3, 3);
            if (biases) {
                D->bqkv = D->bq;
                D->bqkv.cols = D->bq.cols + D->bk.cols + D->bv.cols;
                D->bqkv.row_bytes = (int64_t)D->bqkv.cols * (int64_t)sizeof(float);
            }
        }
        if (gu) {
            const dweight *w2[] = {&D->gate, &D->up};
            D->wgu = fused_view(w2, 2);
        }
    }
#undef VIEW
    return m40_cuda_align256(off);
}

/* Rewrites every Q4_0 / Q8_0 / Q6_K matrix into the aligned layout the
 * fast kernels read (kernels/repack.cu), through one temporary buffer as
 * large as the largest such matrix. A tied output shares token_embd's
 * bytes, so it is repacked once.
 *
 * The temporary is the key cache when it is large enough, else the
 * scratch, else an allocation of its own: both are empty until the first
 * forward (they hold garbage until written anyway), and the fit check
 * (check_fit, m40_cuda_fit_ctx) does not count a temporary. The largest
 * matrix is often a Q6_K output: ~430 MiB for a 128k vocabulary at 4096
 * columns, more than M40_CUDA_FIT_RESERVE, so a context sized to fill
 * the card would leave no room for one. */
static int repack_tmp(m40_cuda *cu, size_t bytes, m40_dptr *tmp, int *own, m40_err *err) {
    *own = 0;
    if (cu->kv_bytes / 2 >= bytes) {
        *tmp = cu->k_cache;
        return 0;
    }
    if (cu->scratch_bytes >= bytes) {
        *tmp = cu->scratch;
        return 0;
    }
    *own = 1;
    return m40_gpu_alloc(&cu->gpu, tmp, bytes, err);
}

int m40_cuda_repack_weights(m40_cuda *cu, m40_err *err) {
    int n_layer = cu->model->cfg.n_layer;
    size_t max_bytes = 0, n_list = 0;
    dweight **list = calloc((size_t)n_layer * 7 + 2, sizeof *list);
    if (!list)
        return m40_errf(err, "out of memory");
    list[n_list++] = &cu->tok_embd;
    if (cu->output.ptr != cu->tok_embd.ptr)
        list[n_list++] = &cu->output;
    for (int l = 0; l < n_layer; l++) {
        dlayer *D = &cu->layers[l];
        /* a fused view is repacked as one matrix, in place of its parts */
        if (D->wqkv.ptr) {
            list[n_list++] = &D->wqkv;
        } else {
            list[n_list++] = &D->wq;
            list[n_list++] = &D->wk;
            list[n_list++] = &D->wv;
        }
        list[n_list++] = &D->wo;
        if (D->wgu.ptr) {
            list[n_list++] = &D->wgu;
        } else {
            list[n_list++] = &D->gate;
            list[n_list++] = &D->up;
        }
        list[n_list++] = &D->down;
    }
    for (size_t i = 0; i < n_list; i++) {
        size_t b = (size_t)list[i]->row_bytes * (size_t)list[i]->rows;
        if (m40_cuda_can_repack(list[i]) && b > max_bytes)
            max_bytes = b;
    }
    int rc = 0;
    if (max_bytes) {
        m40_dptr tmp = 0;
        int own = 0;
        rc = repack_tmp(cu, max_bytes, &tmp, &own, err);
        for (size_t i = 0; rc == 0 && i < n_list; i++)
            rc = m40_cuda_repack(&cu->lanes[0].ops, list[i], tmp, err);
        if (rc == 0) /* repacks read tmp: finish before it is freed or written */
            rc = m40_gpu_sync(&cu->gpu, err);
        if (own)
            m40_gpu_free(&cu->gpu, tmp);
    }
    if (cu->output.ptr == cu->tok_embd.ptr)
        cu->output.repacked = cu->tok_embd.repacked;
    free(list);
    return rc;
}

int m40_cuda_check_model(m40_cuda *cu, m40_err *err) {
    const m40_gguf *g = cu->model->gguf;
    const m40_model_config *c = &cu->model->cfg;
    if (c->n_expert > 0 && c->has_post_norms)
        return m40_errk(err, M40_ERR_UNSUPPORTED,
                        "%s: experts with post-norms: no model has them, nor the CUDA backend",
                        m40_arch_name(c->arch));
    if (cu->model->cfg.head_dim > 256)
        return m40_errk(err, M40_ERR_UNSUPPORTED,
                        "head_dim %d: the CUDA attention handles at most 256",
                        cu->model->cfg.head_dim);
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++) {
        const m40_gguf_tensor *t = m40_gguf_tensor_at(g, i);
        if (t->n_dims >= 2 && !m40_cuda_type_supported(&cu->lanes[0].ops, t->type))
            return m40_errk(err, M40_ERR_UNSUPPORTED,
                            "tensor '%.*s' has type %s, which the CUDA backend cannot run",
                            (int)t->name.len, t->name.ptr, m40_ggml_type_name(t->type));
    }
    return 0;
}

/* Copies every placed tensor up in 64 MiB pieces, reporting the bytes done
 * after each (opt.progress). */
int m40_cuda_upload_weights(m40_cuda *cu, m40_err *err) {
    uint64_t total = 0, done = 0;
    size_t piece = (size_t)64 << 20;
    for (size_t i = 0; i < cu->n_placed; i++)
        total += tensor_bytes(cu->placed[i].w);
    if (cu->opt.progress)
        cu->opt.progress(cu->opt.progress_user, 0, total);
    for (size_t i = 0; i < cu->n_placed; i++) {
        const char *src = cu->placed[i].w->data;
        size_t bytes = tensor_bytes(cu->placed[i].w);
        for (size_t at = 0; at < bytes; at += piece) {
            size_t n = bytes - at < piece ? bytes - at : piece;
            if (m40_gpu_upload(&cu->gpu, cu->placed[i].d->ptr + at, src + at, n, err))
                return m40_err_wrap(err, "uploading %s", cu->placed[i].w->name);
            done += n;
            if (cu->opt.progress)
                cu->opt.progress(cu->opt.progress_user, done, total);
        }
    }
    return 0;
}
