/* test_engine.c - the generation loop (engine.h) on a synth model, CPU.
 *
 * - The same greedy request gives the same text twice, and the stop rules
 *   end it as documented (max_tokens: "length", a stop string: "stop").
 * - The engine's refusals carry the kind the server maps to an HTTP status
 *   (util/err.h): an empty prompt and bad sampling settings are BAD_INPUT,
 *   a prompt longer than the context is TOO_LONG.
 * - Opening reports the load's progress (backend.h): from 0 to every byte
 *   of the weights, never backwards.
 * - Log-probabilities (gen params' n_probs): each sampled token's, and the
 *   top ones, are the log-softmax of the logits the model gives for that
 *   position, recomputed here from m40_engine_seq_logits, within 1e-5.
 * - Grammars (gen params' grammar): whatever the model prefers, greedy or
 *   sampled, the text is a whole sentence of the grammar and ends when the
 *   grammar does; a JSON schema's output parses and holds the schema's
 *   properties; a character spelled by several byte tokens comes out
 *   whole; a grammar of the empty text ends before the first token.
 * - Context shift: with it a full context drops its oldest half and the
 *   text goes on, the same as a prompt of what is left would continue;
 *   without it (or with nothing to drop) the text ends there.
 * - The prompt cache (engine_batch.h's check_prompt_cache): a shared
 *   prefix is kept, and the text is the same bytes as without the cache,
 *   also when the prefix holds generated tokens.
 * - Batching: 8 requests at once (prompts of mixed lengths, greedy and
 *   seeded sampling) each give byte for byte the text they give alone, and
 *   the steps carried several requests' tokens at once.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "engine_batch.h"
#include "engine/engine.h"
#include "grammar/json_schema.h"
#include "model/synth.h"
#include "quant/ggml_types.h"

typedef struct progress_log {
    int calls, backwards;
    uint64_t first, last, total;
} progress_log;

static void on_progress(void *user, uint64_t done, uint64_t total) {
    progress_log *p = user;
    if (p->calls == 0)
        p->first = done;
    else if (done < p->last || total != p->total)
        p->backwards++;
    p->last = done;
    p->total = total;
    p->calls++;
}

static void test_greedy_is_repeatable(m40_engine *e) {
    m40_gen_params p = greedy(12);
    text_buf a = {.len = 0}, b = {.len = 0};
    m40_gen_stats st;
    m40_err err = {0};
    CHECK(m40_engine_generate(e, 0, "Hello world", 11, &p, collect, &a, &st, &err) == 0);
    CHECK(st.n_gen == 12 && st.finish == M40_FINISH_LENGTH && st.n_prompt > 1);
    CHECK(m40_engine_generate(e, 0, "Hello world", 11, &p, collect, &b, &st, &err) == 0);
    CHECK(a.len > 0 && a.len == b.len && memcmp(a.s, b.s, a.len) == 0);

    /* a stop string taken from the text itself ends it there, excluded */
    if (a.len > 4) {
        char stop[3] = {a.s[a.len - 3], a.s[a.len - 2], '\0'};
        const char *stops[1] = {stop};
        p.stop = stops;
        p.n_stop = 1;
        text_buf c = {.len = 0};
        CHECK(m40_engine_generate(e, 0, "Hello world", 11, &p, collect, &c, &st, &err) == 0);
        CHECK(st.finish == M40_FINISH_STOP && strstr(c.s, stop) == NULL);
        CHECK(c.len < a.len && memcmp(c.s, a.s, c.len) == 0);
    }
}

static void test_refusals_have_kinds(m40_engine *e) {
    m40_gen_params p = greedy(4);
    m40_err err = {0};
    p.add_special = 0; /* no BOS: the empty text is no tokens at all */
    CHECK(m40_engine_generate(e, 0, "", 0, &p, NULL, NULL, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "empty");
    CHECK(err.kind == M40_ERR_BAD_INPUT);

    char long_text[400];
    for (size_t i = 0; i + 1 < sizeof long_text; i++)
        long_text[i] = (char)('a' + (i * 7) % 26); /* byte tokens: one per letter or so */
    long_text[sizeof long_text - 1] = '\0';
    p = greedy(4);
    m40_err_clear(&err);
    CHECK(m40_engine_generate(e, 0, long_text, strlen(long_text), &p, NULL, NULL, NULL, &err) ==
          -1);
    CHECK_CONTAINS(err.msg, "the context holds 64");
    CHECK(err.kind == M40_ERR_TOO_LONG);

    p = greedy(4);
    p.sampling.top_p = 2.0f;
    m40_err_clear(&err);
    CHECK(m40_engine_generate(e, 0, "x", 1, &p, NULL, NULL, NULL, &err) == -1);
    CHECK(err.kind == M40_ERR_BAD_INPUT);

    /* a bad piece is refused on its own, before it could share a step */
    int32_t bad = m40_engine_model(e)->cfg.n_vocab, next;
    CHECK(m40_engine_step_greedy(e, 0, &bad, 1, 0, &next, &err) == -1);
    CHECK(err.kind == M40_ERR_BAD_INPUT);
    int32_t ok_tok = 5;
    CHECK(m40_engine_step_greedy(e, 0, &ok_tok, 1, 64, &next, &err) == -1);
    CHECK(err.kind == M40_ERR_TOO_LONG);
    CHECK(m40_engine_step_greedy(e, 1, &ok_tok, 1, 0, &next, &err) == -1);
    CHECK_CONTAINS(err.msg, "slot 1 outside");
}

typedef struct prob_log {
    m40_token_prob p[8];
    int n;
} prob_log;

static int keep_prob(void *user, const m40_token_prob *p) {
    prob_log *l = user;
    if (l->n < 8)
        l->p[l->n++] = *p;
    return 0;
}

static void test_logprobs(m40_engine *e) {
    enum { N_PROMPT = 4, N_GEN = 3, TOP = 4 };
    const m40_token prompt[N_PROMPT] = {1, 17, 300, 42};
    m40_gen_params p = greedy(N_GEN);
    prob_log got = {.n = 0};
    p.n_probs = TOP;
    p.on_prob = keep_prob;
    p.prob_user = &got;
    p.ignore_eos = 1;
    m40_gen_stats st;
    m40_err err = {0};
    CHECK(m40_engine_generate_ids(e, 0, prompt, N_PROMPT, &p, NULL, NULL, &st, &err) == 0);
    CHECK(got.n == N_GEN && st.n_gen == N_GEN);
    /* the reference: the whole sequence's logits, position by position */
    int32_t nv = m40_engine_model(e)->cfg.n_vocab, n = N_PROMPT + N_GEN - 1;
    m40_token ids[N_PROMPT + N_GEN];
    memcpy(ids, prompt, sizeof prompt);
    for (int i = 0; i < got.n; i++)
        ids[N_PROMPT + i] = got.p[i].token;
    float *logits = malloc((size_t)n * nv * sizeof *logits);
    m40_engine_seq *seq = NULL;
    CHECK(logits && m40_engine_seq_begin(e, 0, &seq, &err) == 0);
    CHECK(seq && m40_engine_seq_logits(seq, ids, n, 0, logits, &err) == 0);
    m40_engine_seq_end(seq);
    for (int i = 0; logits && i < got.n; i++) {
        const float *row = logits + (size_t)(N_PROMPT - 1 + i) * nv;
        double max = row[0], sum = 0.0;
        for (int32_t k = 1; k < nv; k++)
            max = row[k] > max ? row[k] : max;
        for (int32_t k = 0; k < nv; k++)
            sum += exp(row[k] - max);
        const m40_token_prob *tp = &got.p[i];
        double want = row[tp->token] - max - log(sum);
        CHECK(fabs(tp->logprob - want) < 1e-5);
        CHECK(tp->n_top == TOP && tp->top[0] == tp->token); /* greedy: the most likely */
        for (int k = 0; k < tp->n_top; k++) {
            CHECK(fabs(tp->top_logprob[k] - (row[tp->top[k]] - max - log(sum))) < 1e-5);
            CHECK(k == 0 || tp->top_logprob[k] <= tp->top_logprob[k - 1]);
        }
        /* nothing outside the top list beats its last entry */
        int beaten = 0;
        for (int32_t k = 0; k < nv; k++) {
            int in = 0;
            for (int t = 0; t < tp->n_top; t++)
                in |= tp->top[t] == k;
            beaten += !in && row[k] > row[tp->top[tp->n_top - 1]];
        }
        CHECK(beaten == 0);
    }
    free(logits);
}

typedef struct id_log {
    m40_token ids[1024];
    int n;
} id_log;

static int log_id(void *user, const m40_token_prob *p) {
    id_log *l = user;
    if (l->n < 1024)
        l->ids[l->n++] = p->token;
    return 0;
}

/* Context shift: a full context keeps n_keep tokens, drops the oldest half
 * of the rest and goes on; what follows a shift is what a prompt of the
 * tokens left (and the token sampled before it) gives. */
static void test_context_shift(m40_engine *e) {
    const char *prompt = "Once upon a time";
    m40_gen_params p = greedy(150);
    p.context_shift = 1;
    p.n_probs = 0;
    p.on_prob = log_id;
    static id_log gen;
    gen.n = 0;
    p.prob_user = &gen;
    text_buf a = {.len = 0}, b = {.len = 0};
    m40_gen_stats st;
    m40_err err = {0};
    CHECK(m40_engine_generate(e, 0, prompt, strlen(prompt), &p, collect, &a, &st, &err) == 0);
    CHECK(st.n_gen == 150 && st.finish == M40_FINISH_LENGTH && st.n_shifts >= 2);
    CHECK(gen.n == 150);
    id_log again = {.n = 0};
    p.prob_user = &again;
    CHECK(m40_engine_generate(e, 0, prompt, strlen(prompt), &p, collect, &b, &st, &err) == 0);
    CHECK(a.len == b.len && !memcmp(a.s, b.s, a.len)); /* repeatable */
    /* the tokens fed before the first shift: the prompt, then the first
     * n_ctx - n_prompt sampled ones; the shift keeps the newer half */
    m40_tokens ids = {0};
    CHECK(m40_tokenize(m40_engine_tokenizer(e), prompt, strlen(prompt), M40_TOKENIZE_ADD_SPECIAL,
                       &ids, &err) == 0);
    int n_ctx = m40_engine_n_ctx(e), np = (int)ids.n;
    static m40_token fed[1024];
    int n_fed = 0;
    for (int i = 0; i < np; i++)
        fed[n_fed++] = ids.ids[i];
    for (int i = 0; n_fed < n_ctx; i++)
        fed[n_fed++] = gen.ids[i];
    int drop = n_ctx / 2, first = n_ctx - np; /* gen[first]: sampled, fed after the shift */
    static m40_token shifted[1024];
    int n = 0;
    for (int i = drop; i < n_ctx; i++)
        shifted[n++] = fed[i];
    shifted[n++] = gen.ids[first];
    m40_gen_params q = greedy(20);
    q.n_probs = 0;
    q.on_prob = log_id;
    id_log after = {.n = 0};
    q.prob_user = &after;
    text_buf c = {.len = 0};
    CHECK(m40_engine_generate_ids(e, 0, shifted, (size_t)n, &q, collect, &c, NULL, &err) == 0);
    CHECK(after.n == 20 && !memcmp(after.ids, gen.ids + first + 1, 20 * sizeof(m40_token)));
    m40_tokens_free(&ids);
    /* without it the full context ends the text; nothing to drop ends it too */
    p.context_shift = 0;
    p.on_prob = NULL;
    p.n_probs = -1;
    CHECK(m40_engine_generate(e, 0, prompt, strlen(prompt), &p, collect, &b, &st, &err) == 0);
    CHECK(st.finish == M40_FINISH_CONTEXT && st.n_shifts == 0 && st.n_gen == n_ctx - np + 1);
    p.context_shift = 1;
    p.n_keep = n_ctx; /* keep everything: no room */
    CHECK(m40_engine_generate(e, 0, prompt, strlen(prompt), &p, collect, &b, &st, &err) == 0);
    CHECK(st.finish == M40_FINISH_CONTEXT && st.n_shifts == 0);
}

/* Generates under `gbnf` greedily and with two seeds; each text must be a
 * whole sentence of it. Returns the greedy text in *first. */
static void check_constrained(m40_engine *e, const char *gbnf, text_buf *first) {
    m40_grammar *g = NULL;
    m40_err err = {0};
    CHECK(m40_grammar_parse(gbnf, strlen(gbnf), &g, &err) == 0);
    for (int run = 0; run < 3 && g; run++) {
        m40_gen_params p = greedy(400);
        if (run > 0) {
            p.sampling.temperature = 1.0f;
            p.sampling.top_k = 0;
            p.sampling.top_p = 1.0f;
            p.sampling.min_p = 0.0f;
            p.sampling.seed = (uint64_t)run;
        }
        p.grammar = g;
        text_buf out = {.len = 0};
        m40_gen_stats st;
        CHECK(m40_engine_generate(e, 0, "Answer:", 7, &p, collect, &out, &st, &err) == 0);
        CHECK(st.finish == M40_FINISH_STOP);
        m40_grammar_state *s = NULL;
        CHECK(m40_grammar_state_create(g, &s, &err) == 0);
        int whole =
            m40_grammar_state_accept(s, out.s, out.len, &err) == 0 && m40_grammar_state_complete(s);
        CHECK(whole);
        if (!whole)
            fprintf(stderr, "not a sentence of the grammar: [%s]\n", out.s);
        m40_grammar_state_free(s);
        if (run == 0 && first)
            *first = out;
    }
    m40_grammar_free(g);
}

static void test_grammar(const char *path) {
    m40_engine_options eo = {.model_path = path,
                             .backend = {.device = M40_DEVICE_CPU, .n_ctx = 512, .n_threads = 2}};
    m40_engine *e = NULL;
    m40_err err = {0};
    CHECK(m40_engine_open(&e, &eo, NULL, 0, &err) == 0);
    if (!e)
        return;
    check_constrained(e, "root ::= \"[\" [a-z]{1,6} ( \",\" [a-z]{1,6} )? \"]\"", NULL);
    const char *schema = "{\"type\":\"object\",\"properties\":{\"color\":{\"enum\":[\"red\","
                         "\"blue\"]},\"n\":{\"type\":\"integer\"},\"ok\":{\"type\":"
                         "\"boolean\"}},\"required\":[\"color\",\"n\",\"ok\"]}";
    cJSON *sj = cJSON_Parse(schema);
    char *gbnf = NULL;
    CHECK(m40_json_schema_to_gbnf(sj, &gbnf, &err) == 0);
    text_buf doc = {.len = 0};
    if (gbnf)
        check_constrained(e, gbnf, &doc);
    cJSON *d = cJSON_Parse(doc.s);
    CHECK(d != NULL);
    const cJSON *color = cJSON_GetObjectItemCaseSensitive(d, "color");
    CHECK(cJSON_IsString(color) &&
          (!strcmp(color->valuestring, "red") || !strcmp(color->valuestring, "blue")));
    CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(d, "n")));
    CHECK(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(d, "ok")));
    cJSON_Delete(d);
    cJSON_Delete(sj);
    free(gbnf);
    /* U+4E2D has no token of its own: three byte tokens spell it, the
     * grammar's state carrying the unfinished character between them */
    text_buf zh = {.len = 0};
    check_constrained(e, "root ::= \"\\u4e2d\"", &zh);
    CHECK(!strcmp(zh.s, "\xe4\xb8\xad"));
    /* a grammar whose only sentence is empty ends before the first token */
    m40_grammar *g = NULL;
    CHECK(m40_grammar_parse("root ::= \"\"", 11, &g, &err) == 0);
    m40_gen_params p = greedy(8);
    p.grammar = g;
    text_buf out = {.len = 0};
    m40_gen_stats st;
    CHECK(m40_engine_generate(e, 0, "Answer:", 7, &p, collect, &out, &st, &err) == 0);
    CHECK(out.len == 0 && st.n_gen == 0 && st.finish == M40_FINISH_STOP);
    m40_grammar_free(g);
    m40_engine_close(e);
}

/* -c 0: the trained context (the CPU takes all of it); the VRAM plan sizes
 * the cache by its types, and the fit is the largest multiple of 256 whose
 * plan, with 256 MiB to spare, fits the free memory given. */
static void test_context_sizes(const char *path) {
    m40_engine_options eo = {
        .model_path = path,
        .backend = {.device = M40_DEVICE_CPU, .n_ctx = M40_CTX_TRAINED, .n_threads = 2}};
    m40_engine *e = NULL;
    m40_err err = {0};
    CHECK(m40_engine_open(&e, &eo, NULL, 0, &err) == 0);
    if (!e)
        return;
    const m40_model *m = m40_engine_model(e);
    const m40_model_config *c = &m->cfg;
    CHECK(c->n_ctx_train > 0 && m40_engine_n_ctx(e) == c->n_ctx_train);
    m40_backend_options bo = {.n_ctx = 4096, .n_slots = 2, .n_batch = 512};
    size_t rows = 2 * (size_t)c->n_layer * 4096, kv_dim = (size_t)(c->n_head_kv * c->head_dim);
    CHECK(m40_backend_plan_vram(m, &bo).kv == rows * 2 * kv_dim * 2); /* f16 K and V */
    bo.kv_type = M40_KV_Q8_0;
    CHECK(m40_backend_plan_vram(m, &bo).kv == rows * 2 * (kv_dim / 32 * 34));
    bo.kv_type_v = M40_KV_F32;
    bo.kv_v_set = 1;
    CHECK(m40_backend_plan_vram(m, &bo).kv == rows * (kv_dim / 32 * 34 + kv_dim * 4));
    /* a budget between the plans of 1024 and 1280 positions fits 1024 */
    bo.n_ctx = 1024;
    m40_backend_memory p0 = m40_backend_plan_vram(m, &bo);
    bo.n_ctx = 1280;
    m40_backend_memory p1 = m40_backend_plan_vram(m, &bo);
    size_t reserve = (size_t)256 << 20, total0 = p0.weights + p0.kv + p0.scratch;
    size_t total1 = p1.weights + p1.kv + p1.scratch;
    CHECK(total1 > total0);
    bo.n_ctx = 8192;
    CHECK(m40_backend_fit_ctx(m, &bo, total0 + reserve) == 1024);
    CHECK(m40_backend_fit_ctx(m, &bo, total1 + reserve - 1) == 1024);
    CHECK(m40_backend_fit_ctx(m, &bo, total1 + reserve) == 1280);
    CHECK(m40_backend_fit_ctx(m, &bo, reserve) == 0);
    CHECK(m40_backend_fit_ctx(m, &bo, SIZE_MAX / 2) == 8192); /* never past what was asked */
    m40_engine_close(e);
}

int main(void) {
    char dir[] = "/tmp/m40-test-engine-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/tiny.gguf", dir);
    m40_synth_options so = {.shape = "tiny", .type = M40_GGML_Q8_0, .out_path = path, .seed = 5};
    m40_err err = {0};
    CHECK(m40_synth_write(&so, NULL, &err) == 0);
    progress_log log = {0};
    m40_engine_options eo = {.model_path = path,
                             .backend = {.device = M40_DEVICE_CPU,
                                         .n_ctx = 64,
                                         .n_threads = 2,
                                         .progress = on_progress,
                                         .progress_user = &log}};
    m40_engine *e = NULL;
    CHECK(m40_engine_open(&e, &eo, NULL, 0, &err) == 0);
    /* every tensor's bytes: less than the file, more than 90% of it here */
    CHECK(log.calls >= 2 && log.first == 0 && log.last == log.total && !log.backwards);
    CHECK(e && log.total < m40_engine_model(e)->file_bytes &&
          log.total > m40_engine_model(e)->file_bytes / 10 * 9);
    if (e) {
        test_greedy_is_repeatable(e);
        test_refusals_have_kinds(e);
        test_logprobs(e);
        test_context_shift(e);
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    m40_engine_close(e);
    test_grammar(path);
    test_context_sizes(path);
    check_batched_equals_alone(path, M40_DEVICE_CPU);
    check_prompt_cache(path, M40_DEVICE_CPU, 1);
    check_prompt_store(path, M40_DEVICE_CPU, 1);
    unlink(path);
    rmdir(dir);
    return check_report();
}
