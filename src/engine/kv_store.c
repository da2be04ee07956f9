/* kv_store.c - see kv_store.h. The entries are a list, most recently used
 * first; a store holds few (each is a whole chat's K/V), so every lookup
 * is a walk of it. */
#include "engine/kv_store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *next, *prev;
    m40_token *tokens;
    int32_t n;
    void *kv;
    size_t bytes; /* the K/V copy and the tokens */
} entry;

struct m40_kv_store {
    pthread_mutex_t mu;
    entry *head, *tail; /* most recently used first */
    m40_kv_store_stats st;
};

int m40_kv_store_create(m40_kv_store **out, size_t budget, m40_err *err) {
    m40_kv_store *s = calloc(1, sizeof *s);
    if (!s)
        return m40_errf(err, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->st.budget = budget;
    *out = s;
    return 0;
}

static void entry_free(entry *x) {
    free(x->tokens);
    free(x->kv);
    free(x);
}

static void unlink_entry(m40_kv_store *s, entry *x) {
    if (x->prev)
        x->prev->next = x->next;
    else
        s->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        s->tail = x->prev;
    x->next = x->prev = NULL;
}

static void push_front(m40_kv_store *s, entry *x) {
    x->prev = NULL;
    x->next = s->head;
    if (s->head)
        s->head->prev = x;
    else
        s->tail = x;
    s->head = x;
}

static void drop(m40_kv_store *s, entry *x) {
    unlink_entry(s, x);
    s->st.bytes -= x->bytes;
    s->st.entries--;
    entry_free(x);
}

void m40_kv_store_destroy(m40_kv_store *s) {
    if (!s)
        return;
    while (s->head)
        drop(s, s->head);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* How many leading tokens a and b share. */
static int32_t common_prefix(const m40_token *a, int32_t na, const m40_token *b, int32_t nb) {
    int32_t k = 0;
    while (k < na && k < nb && a[k] == b[k])
        k++;
    return k;
}

int m40_kv_store_put(m40_kv_store *s, const m40_token *tokens, int32_t n, void *kv,
                     size_t kv_bytes) {
    size_t bytes = kv_bytes + (size_t)n * sizeof *tokens;
    if (n <= 0 || bytes > s->st.budget) {
        free(kv);
        return 0;
    }
    entry *x = calloc(1, sizeof *x);
    m40_token *t = malloc((size_t)n * sizeof *t);
    if (!x || !t) {
        free(x), free(t), free(kv);
        return 0;
    }
    memcpy(t, tokens, (size_t)n * sizeof *t);
    *x = (entry){.tokens = t, .n = n, .kv = kv, .bytes = bytes};
    pthread_mutex_lock(&s->mu);
    for (entry *e = s->head, *next; e; e = next) {
        next = e->next;
        int32_t k = common_prefix(e->tokens, e->n, t, n);
        if (k == n) { /* already held, as this entry's prefix or whole */
            unlink_entry(s, e);
            push_front(s, e);
            pthread_mutex_unlock(&s->mu);
            entry_free(x);
            return 0;
        }
        if (k == e->n) { /* the new entry holds all this one did */
            drop(s, e);
            s->st.evicted++;
        }
    }
    while (s->st.bytes + bytes > s->st.budget) {
        drop(s, s->tail);
        s->st.evicted++;
    }
    push_front(s, x);
    s->st.bytes += bytes;
    s->st.entries++;
    s->st.saved++;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

int32_t m40_kv_store_restore(m40_kv_store *s, const m40_token *ids, int32_t n_ids, int32_t limit,
                             int32_t better_than, m40_kv_store_copy_fn copy, void *user,
                             m40_token *tokens_out, m40_err *err) {
    if (limit > n_ids)
        limit = n_ids;
    pthread_mutex_lock(&s->mu);
    entry *best = NULL;
    int32_t len = better_than;
    for (entry *e = s->head; e; e = e->next) { /* ties: the most recent */
        int32_t k = common_prefix(e->tokens, e->n, ids, limit);
        if (k > len)
            best = e, len = k;
    }
    int32_t rc = 0;
    if (best) {
        rc = copy(user, best->kv, best->n, len, err) ? -1 : len;
        if (rc > 0) {
            memcpy(tokens_out, best->tokens, (size_t)len * sizeof *tokens_out);
            s->st.restored++;
            s->st.tokens_restored += (uint64_t)len;
            unlink_entry(s, best);
            push_front(s, best);
            if (len == best->n)
                drop(s, best);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

m40_kv_store_stats m40_kv_store_get_stats(m40_kv_store *s) {
    pthread_mutex_lock(&s->mu);
    m40_kv_store_stats st = s->st;
    pthread_mutex_unlock(&s->mu);
    return st;
}
