/* sched.c - see sched.h: whoever waits runs the step its piece is in. */
#include "engine/sched.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"

#define STRAGGLER_WAIT_S 0.005 /* a step waits this long at most for a member's token */

/* A member's tokens waiting for a forward: a prompt chunk or one decode
 * token. Lives on the member's stack while it waits. */
typedef struct piece {
    int32_t slot, pos, n;
    const int32_t *ids;
    uint8_t want;    /* of its last token: M40_WANT_LOGITS or _ARGMAX; NONE mid-prompt */
    int every;       /* every token's logits wanted, into logits[n][n_vocab]: a step alone */
    float *logits;   /* WANT_LOGITS: [n_vocab] (every: [n][n_vocab]) */
    int32_t *argmax; /* WANT_ARGMAX */
    double t_submit; /* when it started waiting */
    int done, rc;    /* under the lock */
    m40_err err;     /* rc != 0: why */
    struct piece *next;
} piece;

struct m40_sched {
    m40_backend *be;
    int32_t n_slots, n_ctx, n_batch, n_vocab;
    int mixed; /* prompt chunks ride in decode steps (no concurrent_decode) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    piece *head, *tail;   /* waiting pieces, oldest first */
    int n_decoding;       /* members counted by decode steps */
    int n_waiting_decode; /* decode pieces in the list */
    int decode_busy;      /* a decode step (mixed: any step) is running */
    double t_decode_end;  /* when the last decode step ended */
    int32_t last_decode;  /* how many decode tokens it carried */
    int prompt_busy;      /* a prompt chunk runs on its own (not mixed) */
    m40_step_stats stats; /* under the lock */
    /* a decode step's batch: room for one row per slot and a prompt chunk */
    int32_t *token, *slot, *pos, *argmax;
    uint8_t *want;
    float *logits;        /* [n_slots + 1][n_vocab] */
    piece **step;         /* the pieces in the running decode step */
    float *prompt_logits; /* [n_vocab]: a lone prompt chunk's unwanted logits */
};

int m40_sched_create(m40_sched **out, m40_backend *be, int32_t n_slots, int32_t n_ctx,
                     int32_t n_batch, int32_t n_vocab, m40_err *err) {
    *out = NULL;
    m40_sched *s = calloc(1, sizeof *s);
    if (!s)
        return m40_errf(err, "out of memory");
    s->be = be;
    s->n_slots = n_slots;
    s->n_ctx = n_ctx;
    s->n_batch = n_batch;
    s->n_vocab = n_vocab;
    s->mixed = !m40_backend_concurrent_decode(be);
    size_t cap = (size_t)n_slots + (size_t)n_batch;
    s->token = malloc(cap * sizeof *s->token);
    s->slot = malloc(cap * sizeof *s->slot);
    s->pos = malloc(cap * sizeof *s->pos);
    s->argmax = malloc(cap * sizeof *s->argmax);
    s->want = malloc(cap);
    s->logits = malloc(((size_t)n_slots + 1) * (size_t)n_vocab * sizeof *s->logits);
    s->step = malloc(((size_t)n_slots + 1) * sizeof *s->step);
    s->prompt_logits = malloc((size_t)n_vocab * sizeof *s->prompt_logits);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!s->token || !s->slot || !s->pos || !s->argmax || !s->want || !s->logits || !s->step ||
        !s->prompt_logits) {
        m40_sched_destroy(s);
        return m40_errf(err, "out of memory");
    }
    *out = s;
    return 0;
}

void m40_sched_destroy(m40_sched *s) {
    if (!s)
        return;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->token);
    free(s->slot);
    free(s->pos);
    free(s->argmax);
    free(s->want);
    free(s->logits);
    free(s->step);
    free(s->prompt_logits);
    free(s);
}

void m40_sched_join(m40_sched *s, m40_sched_member *m) {
    (void)s;
    m->decoding = 0;
}

/* Whether decode steps wait for m's next token (under the lock). */
static void set_decoding(m40_sched *s, m40_sched_member *m, int on) {
    if (m->decoding == on)
        return;
    m->decoding = on;
    s->n_decoding += on ? 1 : -1;
    /* the host's turn is measured between steps of the same members: not
     * across a join (whose prompt ran in between) or a leave */
    s->last_decode = 0;
    if (!on)
        pthread_cond_broadcast(&s->cv); /* a step may have waited for this member */
}

static void set_decoding_locked(m40_sched *s, m40_sched_member *m, int on) {
    pthread_mutex_lock(&s->mu);
    set_decoding(s, m, on);
    pthread_mutex_unlock(&s->mu);
}

void m40_sched_leave(m40_sched *s, m40_sched_member *m) {
    set_decoding_locked(s, m, 0);
}

m40_step_stats m40_sched_stats_get(m40_sched *s) {
    pthread_mutex_lock(&s->mu);
    m40_step_stats st = s->stats;
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- the list of waiting pieces (under the lock) ---------------------------- */

/* A decode token: one token whose step gathers every member's. An `every`
 * piece of one token is a prompt-like step of its own. */
static int is_decode(const piece *p) {
    return p->n == 1 && !p->every;
}

static void list_push(m40_sched *s, piece *p) {
    p->next = NULL;
    if (s->tail)
        s->tail->next = p;
    else
        s->head = p;
    s->tail = p;
    if (is_decode(p))
        s->n_waiting_decode++;
}

static void list_remove(m40_sched *s, piece *p) {
    piece **at = &s->head, *prev = NULL;
    while (*at != p) {
        prev = *at;
        at = &(*at)->next;
    }
    *at = p->next;
    if (s->tail == p)
        s->tail = prev;
    if (is_decode(p))
        s->n_waiting_decode--;
}

static piece *first_prompt(const m40_sched *s) {
    piece *p = s->head;
    while (p && is_decode(p))
        p = p->next;
    return p;
}

/* Since when the next decode step has been waiting for stragglers: the
 * oldest waiting decode piece's (or `prompt`'s) submission, but not before
 * the last decode step ended (its members were busy until then, not late). */
static double waiting_since(const m40_sched *s, const piece *prompt, double now) {
    double t = prompt ? prompt->t_submit : now;
    for (piece *p = s->head; p; p = p->next) {
        if (is_decode(p) && p->t_submit < t)
            t = p->t_submit;
    }
    return t > s->t_decode_end ? t : s->t_decode_end;
}

/* ---- running a step (without the lock) --------------------------------------- */

/* Whether the decode lane sat idle for the host's turn before the step
 * s->step[0..k), starting now: the step before carried as many decode
 * tokens and every one of this step's came in after it ended (its members
 * were waiting on it, not late or new). Counted into the stats then. */
static void turn_stats(m40_sched *s, int k, double now) {
    int32_t decode = 0;
    for (int i = 0; i < k; i++) {
        if (!is_decode(s->step[i]))
            continue;
        if (s->step[i]->t_submit < s->t_decode_end)
            return;
        decode++;
    }
    if (decode == 0 || decode != s->last_decode || s->t_decode_end <= 0.0)
        return;
    s->stats.turn_s += now - s->t_decode_end;
    s->stats.turns++;
}

static void step_stats(m40_sched *s, int32_t rows, int32_t decode_rows) {
    static const int32_t bound[7] = {0, 1, 2, 4, 8, 16, 32};
    int b = 0;
    while (b < 7 && decode_rows > bound[b])
        b++;
    s->stats.steps++;
    s->stats.rows += (uint64_t)rows;
    s->stats.decode_rows += (uint64_t)decode_rows;
    s->stats.by_decode[b]++;
}

/* A piece whose every token's logits are wanted, as one batch of its own
 * (its own buffers: a decode step may be filling the step's). */
static void run_every(m40_sched *s, piece *p) {
    int32_t *slot = malloc((size_t)p->n * sizeof *slot), *pos = malloc((size_t)p->n * sizeof *pos);
    uint8_t *want = malloc((size_t)p->n);
    if (!slot || !pos || !want) {
        p->rc = m40_errf(&p->err, "out of memory");
    } else {
        for (int32_t t = 0; t < p->n; t++) {
            slot[t] = p->slot;
            pos[t] = p->pos + t;
            want[t] = M40_WANT_LOGITS;
        }
        m40_batch b = {.n = p->n, .token = p->ids, .slot = slot, .pos = pos, .want = want};
        p->rc = m40_backend_forward_batch(s->be, &b, p->logits, NULL, &p->err);
    }
    free(slot), free(pos), free(want);
}

/* One prompt chunk on its own (not mixed: its own lane, beside the decode
 * steps; an `every` piece: a step of its own on any backend). */
static void run_prompt(m40_sched *s, piece *p) {
    if (p->every)
        run_every(s, p);
    else if (p->want == M40_WANT_ARGMAX)
        p->rc =
            m40_backend_forward_greedy(s->be, p->slot, p->ids, p->n, p->pos, p->argmax, &p->err);
    else /* mid-prompt, the logits nobody wants go to a buffer of this lane's */
        p->rc = m40_backend_forward(s->be, p->slot, p->ids, p->n, p->pos,
                                    p->logits ? p->logits : s->prompt_logits, &p->err);
}

/* The pieces s->step[0..n_pieces) as one batch; each gets its result. */
static void run_batch(m40_sched *s, int n_pieces) {
    int32_t n = 0;
    for (int k = 0; k < n_pieces; k++) {
        piece *p = s->step[k];
        for (int32_t t = 0; t < p->n; t++, n++) {
            s->token[n] = p->ids[t];
            s->slot[n] = p->slot;
            s->pos[n] = p->pos + t;
            s->want[n] = t == p->n - 1 ? p->want : M40_WANT_NONE;
        }
    }
    m40_batch b = {.n = n, .token = s->token, .slot = s->slot, .pos = s->pos, .want = s->want};
    m40_err err = {0};
    int rc = m40_backend_forward_batch(s->be, &b, s->logits, s->argmax, &err);
    const float *l = s->logits;
    const int32_t *a = s->argmax;
    for (int k = 0; k < n_pieces; k++) {
        piece *p = s->step[k];
        p->rc = rc;
        if (rc) {
            p->err = err;
        } else if (p->want == M40_WANT_LOGITS) {
            memcpy(p->logits, l, (size_t)s->n_vocab * sizeof *l);
            l += s->n_vocab;
        } else if (p->want == M40_WANT_ARGMAX) {
            *p->argmax = *a++;
        }
    }
}

/* Takes the pieces of the next decode step (every waiting decode token and,
 * mixed, the oldest prompt chunk) off the list into s->step, if one may
 * start now and holds `mine`; returns how many, 0 if none. */
static int take_decode_step(m40_sched *s, const piece *mine, double now) {
    if (s->decode_busy || (s->mixed && s->prompt_busy))
        return 0;
    piece *prompt = s->mixed ? first_prompt(s) : NULL;
    if (prompt && prompt->every)
        prompt = NULL; /* it runs alone (run_piece) */
    if (s->n_waiting_decode == 0 && !prompt)
        return 0;
    /* every decoding member's token is in, or someone waited long enough */
    int all_in = s->n_waiting_decode >= s->n_decoding;
    if (!all_in && now - waiting_since(s, prompt, now) < STRAGGLER_WAIT_S)
        return 0;
    if (!is_decode(mine) && mine != prompt)
        return 0; /* its chunk is not in this step: leave it to another */
    int k = 0;
    for (piece *p = s->head, *next; p; p = next) {
        next = p->next;
        if (is_decode(p) || p == prompt) {
            list_remove(s, p);
            s->step[k++] = p;
        }
    }
    return k;
}

/* ---- a member's piece ---------------------------------------------------------- */

static void deadline(struct timespec *ts, double after_s) {
    clock_gettime(CLOCK_REALTIME, ts);
    long ns = ts->tv_nsec + (long)(after_s * 1e9);
    ts->tv_sec += ns / 1000000000L;
    ts->tv_nsec = ns % 1000000000L;
}

/* Hands the piece over and returns when it has run, having run the step
 * it was in, or waited for whoever did. */
static int run_piece(m40_sched *s, m40_sched_member *m, piece *p, m40_err *err) {
    pthread_mutex_lock(&s->mu);
    p->t_submit = m40_clock_s();
    if (is_decode(p))
        set_decoding(s, m, 1);
    list_push(s, p);
    /* A decode piece wakes no one: if it completes a step, this thread
     * takes the step itself (below); if a step is running, its end wakes
     * everyone; a straggler's wait ends by its timer. Waking the members
     * who are in and waiting would have them all take the lock in turn at
     * every member's piece, on the path to the step. */
    if (!is_decode(p))
        pthread_cond_broadcast(&s->cv);
    while (!p->done) {
        double now = m40_clock_s();
        /* a prompt chunk on its own lane beside the decode steps (not
         * mixed), or an `every` piece, which holds off decode steps too:
         * its rows may run one at a time, on the decode lane */
        int alone = !is_decode(p) && (!s->mixed || p->every);
        int free_now = !s->prompt_busy && !((s->mixed || p->every) && s->decode_busy);
        if (alone && free_now && first_prompt(s) == p) {
            list_remove(s, p);
            s->prompt_busy = 1;
            s->decode_busy |= p->every;
            pthread_mutex_unlock(&s->mu);
            run_prompt(s, p);
            pthread_mutex_lock(&s->mu);
            step_stats(s, p->n, 0);
            s->prompt_busy = 0;
            if (p->every)
                s->decode_busy = 0;
            p->done = 1;
            pthread_cond_broadcast(&s->cv);
            break;
        }
        int k = take_decode_step(s, p, now);
        if (k > 0) {
            s->decode_busy = 1;
            turn_stats(s, k, now);
            pthread_mutex_unlock(&s->mu);
            run_batch(s, k);
            pthread_mutex_lock(&s->mu);
            int32_t rows = 0, decode_rows = 0;
            for (int i = 0; i < k; i++) {
                rows += s->step[i]->n;
                decode_rows += is_decode(s->step[i]);
                s->step[i]->done = 1;
            }
            step_stats(s, rows, decode_rows);
            s->decode_busy = 0;
            s->t_decode_end = m40_clock_s();
            s->last_decode = decode_rows;
            if (decode_rows > 0)
                s->stats.busy_s += s->t_decode_end - now;
            pthread_cond_broadcast(&s->cv);
            continue;
        }
        /* wait for the others' tokens, a running step, or a straggler's time */
        struct timespec ts;
        deadline(&ts, STRAGGLER_WAIT_S);
        (void)pthread_cond_timedwait(&s->cv, &s->mu, &ts); /* a timeout only re-checks */
    }
    pthread_mutex_unlock(&s->mu);
    if (p->rc && err)
        *err = p->err;
    return p->rc ? -1 : 0;
}

/* Refuses a bad run here, alone, rather than failing the step it would
 * share with other requests. */
static int check_run(const m40_sched *s, int32_t slot, const int32_t *ids, int32_t n, int32_t pos,
                     m40_err *err) {
    if (n <= 0)
        return m40_errk(err, M40_ERR_BAD_INPUT, "no tokens to run");
    if (slot < 0 || slot >= s->n_slots)
        return m40_errf(err, "slot %d outside 0..%d", slot, s->n_slots - 1);
    if (pos < 0 || n > s->n_ctx - pos)
        return m40_errk(err, M40_ERR_TOO_LONG,
                        "%d tokens at position %d do not fit a context of %d", n, pos, s->n_ctx);
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= s->n_vocab)
            return m40_errk(err, M40_ERR_BAD_INPUT, "token id %d outside the vocabulary of %d",
                            ids[i], s->n_vocab);
    }
    return 0;
}

int m40_sched_run(m40_sched *s, m40_sched_member *m, int32_t slot, const int32_t *ids, int32_t n,
                  int32_t pos, float *logits, int32_t *argmax, m40_err *err) {
    if (check_run(s, slot, ids, n, pos, err))
        return -1;
    /* While its prompt runs, no decode step waits for the member's token;
     * once the prompt is in, its next piece is a decode token, which the
     * next decode step waits for (up to STRAGGLER_WAIT_S) rather than
     * leaving it to the step after: a member's first decode token joins
     * the others' even when its thread is slow to hand it over. */
    int prompt = n > 1;
    if (prompt)
        set_decoding_locked(s, m, 0);
    /* a prompt in pieces that end at multiples of n_batch from position 0:
     * the boundaries depend on the prompt only, never on what else runs,
     * nor on how much of it the prompt cache kept */
    for (int32_t done = 0; done < n;) {
        int32_t room = s->n_batch - (pos + done) % s->n_batch;
        int32_t k = n - done < room ? n - done : room;
        int last = done + k == n;
        piece p = {.slot = slot,
                   .pos = pos + done,
                   .n = k,
                   .ids = ids + done,
                   .want = !last    ? M40_WANT_NONE
                           : argmax ? M40_WANT_ARGMAX
                                    : M40_WANT_LOGITS,
                   .logits = last ? logits : NULL,
                   .argmax = argmax};
        if (run_piece(s, m, &p, err))
            return -1;
        done += k;
    }
    if (prompt)
        set_decoding_locked(s, m, 1);
    return 0;
}

int m40_sched_run_every(m40_sched *s, m40_sched_member *m, int32_t slot, const int32_t *ids,
                        int32_t n, int32_t pos, float *logits, m40_err *err) {
    if (check_run(s, slot, ids, n, pos, err))
        return -1;
    set_decoding_locked(s, m, 0); /* scoring text: no decode token follows */
    for (int32_t done = 0; done < n;) {
        int32_t k = n - done < s->n_batch ? n - done : s->n_batch;
        piece p = {.slot = slot,
                   .pos = pos + done,
                   .n = k,
                   .ids = ids + done,
                   .want = M40_WANT_LOGITS,
                   .every = 1,
                   .logits = logits + (size_t)done * (size_t)s->n_vocab};
        if (run_piece(s, m, &p, err))
            return -1;
        done += k;
    }
    return 0;
}
