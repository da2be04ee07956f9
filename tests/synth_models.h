/* synth_models.h - running a check on synth models of a few shapes and
 * weight types, each written to a temporary directory and removed after.
 */
#ifndef M40_TESTS_SYNTH_MODELS_H
#define M40_TESTS_SYNTH_MODELS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "model/synth.h"

typedef struct synth_case {
    const char *shape; /* a name from model/shapes.h */
    uint32_t type;     /* m40_ggml_type of the matrices */
} synth_case;

/* Writes cases[0..n) with `seed` and calls check(path) on each. Returns 0,
 * or 1 when no temporary directory could be made. */
static inline int for_each_synth(const synth_case *cases, size_t n, uint64_t seed,
                                 void (*check)(const char *path)) {
    char dir[] = "/tmp/m40-test-synth-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    for (size_t i = 0; i < n; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/m%zu.gguf", dir, i);
        m40_synth_options o = {
            .shape = cases[i].shape, .type = cases[i].type, .out_path = path, .seed = seed};
        m40_err err = {0};
        CHECK(m40_synth_write(&o, NULL, &err) == 0);
        if (err.msg[0])
            fprintf(stderr, "%s\n", err.msg);
        else
            check(path);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

#endif /* M40_TESTS_SYNTH_MODELS_H */
