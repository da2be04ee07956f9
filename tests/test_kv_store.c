/* test_kv_store.c - the prompt cache's host-RAM store (engine/kv_store.h)
 * as its header specifies it: the budget, least recently used first out, an
 * entry that begins a newer one leaves, the longest shared prefix comes
 * back (at most `limit`, only when it beats `better_than`), an entry copied
 * back whole leaves, and a failed copy changes nothing.
 *
 * An entry's "K/V" here is a malloc'd block of the bytes of its tokens, so
 * a copy can be checked against the tokens it stands for.
 */
#include <stdlib.h>

#include "check.h"
#include "engine/kv_store.h"

/* tokens[0..n) = base, base + 1, ... with the K/V block of n * 4 bytes. */
static size_t put_run(m40_kv_store *s, int32_t base, int32_t n, int *kept) {
    m40_token t[64];
    for (int32_t i = 0; i < n; i++)
        t[i] = base + i;
    void *kv = malloc((size_t)n * 4);
    memcpy(kv, t, (size_t)n * 4);
    *kept = m40_kv_store_put(s, t, n, kv, (size_t)n * 4);
    return (size_t)n * 4 + (size_t)n * sizeof(m40_token); /* what the entry costs */
}

typedef struct copy_log {
    int calls, fail;
    int32_t n_saved, n;
    m40_token first; /* the copy's first token */
} copy_log;

static int log_copy(void *user, const void *kv, int32_t n_saved, int32_t n, m40_err *err) {
    copy_log *c = user;
    c->calls++;
    if (c->fail)
        return m40_errf(err, "copy failed");
    c->n_saved = n_saved;
    c->n = n;
    memcpy(&c->first, kv, sizeof c->first);
    return 0;
}

/* restore() of tokens base .. base + n - 1, limit n, better_than 0. */
static int32_t restore_run(m40_kv_store *s, int32_t base, int32_t n, copy_log *c, m40_token *out) {
    m40_token t[64];
    for (int32_t i = 0; i < n; i++)
        t[i] = base + i;
    m40_err err = {0};
    return m40_kv_store_restore(s, t, n, n, 0, log_copy, c, out, &err);
}

static void test_budget(void) {
    m40_kv_store *s = NULL;
    m40_err err = {0};
    CHECK(m40_kv_store_create(&s, 100, &err) == 0);
    int kept;
    put_run(s, 0, 20, &kept); /* 160 bytes: more than the whole budget */
    CHECK(kept == 0);
    put_run(s, 0, 10, &kept); /* 80 */
    CHECK(kept == 1);
    m40_kv_store_stats st = m40_kv_store_get_stats(s);
    CHECK(st.entries == 1 && st.bytes == 80 && st.budget == 100 && st.saved == 1);
    put_run(s, 100, 5, &kept); /* 40: the first entry leaves for it */
    st = m40_kv_store_get_stats(s);
    CHECK(kept == 1 && st.entries == 1 && st.bytes == 40 && st.evicted == 1);
    m40_kv_store_destroy(s);
}

static void test_least_recently_used_leaves_first(void) {
    m40_kv_store *s = NULL;
    m40_err err = {0};
    size_t one = (size_t)8 * (4 + sizeof(m40_token));
    CHECK(m40_kv_store_create(&s, 2 * one, &err) == 0);
    int kept;
    copy_log c = {0};
    m40_token out[64];
    put_run(s, 0, 8, &kept);   /* A */
    put_run(s, 100, 8, &kept); /* B */
    /* A is used (a prefix of it comes back), so B is now the older */
    CHECK(restore_run(s, 0, 4, &c, out) == 4 && c.first == 0 && c.n == 4 && c.n_saved == 8);
    put_run(s, 200, 8, &kept); /* C: B leaves */
    CHECK(kept == 1);
    CHECK(restore_run(s, 100, 4, &c, out) == 0);
    CHECK(restore_run(s, 200, 4, &c, out) == 4 && c.first == 200);
    CHECK(restore_run(s, 0, 4, &c, out) == 4 && c.first == 0);
    m40_kv_store_destroy(s);
}

static void test_prefixes(void) {
    m40_kv_store *s = NULL;
    m40_err err = {0};
    CHECK(m40_kv_store_create(&s, SIZE_MAX, &err) == 0);
    int kept;
    put_run(s, 0, 10, &kept);
    put_run(s, 0, 6, &kept); /* a prefix of what the store holds: not kept */
    CHECK(kept == 0 && m40_kv_store_get_stats(s).entries == 1);
    put_run(s, 0, 20, &kept); /* holds all the first did: the first leaves */
    m40_kv_store_stats st = m40_kv_store_get_stats(s);
    CHECK(kept == 1 && st.entries == 1 && st.evicted == 1 && st.bytes == 20 * 8);
    put_run(s, 0, 20, &kept); /* the same again */
    CHECK(kept == 0 && m40_kv_store_get_stats(s).entries == 1);
    m40_kv_store_destroy(s);
}

static void test_restore_choice(void) {
    m40_kv_store *s = NULL;
    m40_err err = {0};
    CHECK(m40_kv_store_create(&s, SIZE_MAX, &err) == 0);
    int kept;
    /* A: 0..9, B: 0..4 then 50..54 (shares 5 with A) */
    put_run(s, 0, 10, &kept);
    m40_token b[10] = {0, 1, 2, 3, 4, 50, 51, 52, 53, 54};
    void *kv = malloc(sizeof b);
    memcpy(kv, b, sizeof b);
    CHECK(m40_kv_store_put(s, b, 10, kv, sizeof b) == 1);
    copy_log c = {0};
    m40_token out[64] = {0};
    m40_token p[12] = {0, 1, 2, 3, 4, 50, 51, 52, 99, 99, 99, 99};
    /* the longest shared prefix is B's 8 */
    CHECK(m40_kv_store_restore(s, p, 12, 12, 0, log_copy, &c, out, &err) == 8);
    CHECK(c.n == 8 && c.n_saved == 10 && out[5] == 50 && out[7] == 52);
    /* at most limit tokens count */
    CHECK(m40_kv_store_restore(s, p, 12, 6, 0, log_copy, &c, out, &err) == 6 && c.n == 6);
    /* nothing beats what the slot keeps already */
    int calls = c.calls;
    CHECK(m40_kv_store_restore(s, p, 12, 12, 8, log_copy, &c, out, &err) == 0);
    CHECK(c.calls == calls);
    /* a failed copy: -1, the entry stays, the caller's tokens untouched */
    c.fail = 1;
    out[0] = -7;
    CHECK(m40_kv_store_restore(s, p, 12, 12, 0, log_copy, &c, out, &err) == -1);
    CHECK(out[0] == -7 && m40_kv_store_get_stats(s).entries == 2);
    CHECK_CONTAINS(err.msg, "copy failed");
    c.fail = 0;
    /* a whole entry comes back: it leaves (the slot holds it now) */
    m40_token q[14] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    CHECK(m40_kv_store_restore(s, q, 14, 12, 0, log_copy, &c, out, &err) == 10);
    m40_kv_store_stats st = m40_kv_store_get_stats(s);
    CHECK(st.entries == 1 && st.restored == 3 && st.tokens_restored == 8 + 6 + 10);
    m40_kv_store_destroy(s);
}

int main(void) {
    test_budget();
    test_least_recently_used_leaves_first();
    test_prefixes();
    test_restore_choice();
    return check_report();
}
