/* test_arch_reference.c - the CPU forward of each architecture beyond the
 * default model's against Hugging Face transformers.
 *
 *   test_arch_reference FIXTURE.json...   (tests/fixtures/forward/<shape>.json)
 *
 * A fixture (scripts/reference/make_arch_fixtures.py) names a synth model
 * (shape, weight type, seed: random weights, F32 so nothing is lost to
 * quantization), the FNV-1a 64 hash of that file, a sequence of token ids
 * and the logits transformers computes at every position in float32. The
 * test writes the same file, checks its hash (a change to synth shows here,
 * not as a wrong forward), runs the whole sequence through the CPU backend
 * as one batch wanting every row, and requires each position's logits within
 * 1e-3 of that position's largest |logit| (the KV cache is FP16 by policy;
 * transformers keeps it in FP32).
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend/backend.h"
#include "check.h"
#include "model/model.h"
#include "model/synth.h"
#include "quant/ggml_types.h"

static uint64_t fnv1a64(const char *path) {
    size_t len = 0;
    char *buf = check_read_file(path, &len);
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; buf && i < len; i++) {
        h ^= (unsigned char)buf[i];
        h *= 0x100000001B3ull;
    }
    free(buf);
    return h;
}

static uint32_t type_by_name(const char *name) {
    for (uint32_t t = 0; t < M40_GGML_TYPE_COUNT; t++) {
        if (!strcmp(m40_ggml_type_name(t), name))
            return t;
    }
    return UINT32_MAX;
}

/* The logits of every position of `tokens` on the CPU, [n][n_vocab]. */
static float *cpu_logits(const m40_model *m, const int32_t *tokens, int32_t n, m40_err *err) {
    m40_backend_options o = {.device = M40_DEVICE_CPU, .n_ctx = n, .n_slots = 1, .n_batch = n};
    m40_backend *be = NULL;
    int32_t *slot = calloc((size_t)n, sizeof *slot), *pos = malloc((size_t)n * sizeof *pos);
    uint8_t *want = malloc((size_t)n);
    float *logits = malloc((size_t)n * (size_t)m->cfg.n_vocab * sizeof *logits);
    int ok = slot && pos && want && logits && m40_backend_create(&be, m, &o, NULL, 0, err) == 0;
    for (int32_t i = 0; ok && i < n; i++) {
        pos[i] = i;
        want[i] = M40_WANT_LOGITS;
    }
    m40_batch b = {.n = n, .token = tokens, .slot = slot, .pos = pos, .want = want};
    ok = ok && m40_backend_forward_batch(be, &b, logits, NULL, err) == 0;
    m40_backend_destroy(be);
    free(slot), free(pos), free(want);
    if (!ok) {
        free(logits);
        return NULL;
    }
    return logits;
}

static void check_fixture(const char *fixture_path) {
    char *text = check_read_file(fixture_path, NULL);
    cJSON *fx = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(fx != NULL);
    if (!fx)
        return;
    const char *shape = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fx, "shape"));
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fx, "type"));
    const char *hash = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fx, "fnv1a64"));
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(fx, "seed");
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(fx, "tokens");
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(fx, "logits");
    CHECK(shape && type && hash && cJSON_IsNumber(seed) && cJSON_IsArray(tokens) &&
          cJSON_IsArray(want));
    char dir[] = "/tmp/m40-test-arch-XXXXXX", path[256];
    if (!shape || !type || !hash || !cJSON_IsArray(tokens) || !cJSON_IsArray(want) ||
        !mkdtemp(dir)) {
        cJSON_Delete(fx);
        return;
    }
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    m40_synth_options so = {.shape = shape,
                            .type = type_by_name(type),
                            .out_path = path,
                            .seed = (uint64_t)seed->valuedouble};
    m40_err err = {0};
    m40_model *m = NULL;
    CHECK(m40_synth_write(&so, NULL, &err) == 0);
    char got_hash[17];
    snprintf(got_hash, sizeof got_hash, "%016llx", (unsigned long long)fnv1a64(path));
    if (strcmp(got_hash, hash) != 0)
        fprintf(stderr,
                "%s: synth wrote another file (FNV-1a %s, the fixture's %s): "
                "regenerate the fixture\n",
                shape, got_hash, hash);
    CHECK(strcmp(got_hash, hash) == 0);
    CHECK(m40_model_load(&m, path, &err) == 0);
    int32_t n = cJSON_GetArraySize(tokens);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (int32_t i = 0; ids && i < n; i++)
        ids[i] = (int32_t)cJSON_GetArrayItem(tokens, i)->valuedouble;
    float *got = m && ids ? cpu_logits(m, ids, n, &err) : NULL;
    if (!got)
        fprintf(stderr, "%s: %s\n", shape, err.msg);
    CHECK(got != NULL && cJSON_GetArraySize(want) == n);
    double worst = 0.0;
    for (int32_t t = 0; got && t < n && t < cJSON_GetArraySize(want); t++) {
        const cJSON *row = cJSON_GetArrayItem(want, t);
        int32_t nv = m->cfg.n_vocab;
        CHECK(cJSON_GetArraySize(row) == nv);
        double mag = 1e-30, diff = 0.0;
        for (int32_t v = 0; v < nv && v < cJSON_GetArraySize(row); v++) {
            double w = cJSON_GetArrayItem(row, v)->valuedouble;
            mag = fmax(mag, fabs(w));
            diff = fmax(diff, fabs(w - got[(size_t)t * nv + v]));
        }
        worst = fmax(worst, diff / mag);
    }
    printf("%s: max |m40-llm - transformers| / max |logit| = %.3g over %d positions\n", shape,
           worst, n);
    CHECK(got && worst < 1e-3);
    free(got);
    free(ids);
    m40_model_free(m);
    unlink(path);
    rmdir(dir);
    cJSON_Delete(fx);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_arch_reference FIXTURE.json...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++)
        check_fixture(argv[i]);
    return check_report();
}
