/* replay.h - a fuzz target's harness as a plain program: it runs
 * LLVMFuzzerTestOneInput once per file of the directories or files on its
 * command line (the seed corpus), so every build, ASan's included, replays
 * the corpus without libFuzzer. Include it once, under M40_FUZZ_REPLAY,
 * after the target's LLVMFuzzerTestOneInput. */
#ifndef M40_TESTS_FUZZ_REPLAY_H
#define M40_TESTS_FUZZ_REPLAY_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/file.h"

/* Runs one file; returns 0 when it could be read. */
static int replay_file(const char *path) {
    m40_err err = {0};
    char *text;
    size_t n;
    if (m40_read_file(path, &text, &n, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    /* Exactly n bytes, so that ASan sees any read past the input. */
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf) {
        if (n)
            memcpy(buf, text, n);
        LLVMFuzzerTestOneInput(buf, n);
    }
    free(buf);
    free(text);
    return buf ? 0 : -1;
}

static int replay(const char *path, int *count) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: not found\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (replay(full, count))
            rc = -1;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv) {
    int count = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        if (replay(argv[i], &count))
            rc = 1;
    }
    printf("%d inputs replayed\n", count);
    if (count == 0) {
        fprintf(stderr, "no inputs (give files or directories)\n");
        return 1;
    }
    return rc;
}

#endif /* M40_TESTS_FUZZ_REPLAY_H */
