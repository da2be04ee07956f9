/* cmd_chat.c - `m40-llm chat`: an interactive chat in the terminal.
 *
 *   m40-llm chat [-m MODEL] [--system TEXT] [generate's options]
 *
 * Each line typed is a user message; the conversation so far goes through
 * the model's chat template and the reply streams to stdout. The engine's
 * prompt cache keeps the conversation's K/V, so a turn runs only its new
 * tokens. Commands: /reset (start over), /system TEXT (set the system
 * prompt and start over), /exit (or Ctrl-D) quits. Ctrl-C stops a reply,
 * not the program; what was written of it stays in the history.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/gen_args.h"
#include "engine/engine.h"
#include "util/log.h"
#include "util/strbuf.h"

/* Ctrl-C: whichever thread the signal lands on (the engine's threads do
 * not block it) sets the flag, which a reply's callback reads, and writes a
 * byte to a pipe, which the prompt's wait reads. */
static volatile sig_atomic_t g_interrupt;
static int g_wake[2] = {-1, -1};

static void on_sigint(int sig) {
    (void)sig;
    g_interrupt = 1;
    if (g_wake[1] >= 0) {
        ssize_t w = write(g_wake[1], "x", 1);
        (void)w;
    }
}

static void drain_wake(void) {
    char buf[64];
    while (read(g_wake[0], buf, sizeof buf) > 0) {
    }
}

/* Waits for input or Ctrl-C: 1 input, 0 Ctrl-C. */
static int wait_input(void) {
    for (;;) {
        struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                {.fd = g_wake[0], .events = POLLIN}};
        int n = poll(fds, 2, -1);
        if (n < 0 && errno != EINTR)
            return 1; /* let getline see the error */
        if (g_interrupt || (n > 0 && (fds[1].revents & POLLIN))) {
            drain_wake();
            if (g_interrupt)
                return 0;
        }
        if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            return 1;
    }
}

/* The reply as it streams: printed and kept; Ctrl-C stops it. */
static int on_text(void *user, const char *text, size_t len) {
    m40_strbuf *b = user;
    if (g_interrupt)
        return 1;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    m40_strbuf_add(b, text, len);
    return b->oom;
}

/* The history with only the system prompt (if any). */
static cJSON *fresh_history(const char *system) {
    cJSON *h = cJSON_CreateArray();
    if (h && system && *system && m40_cli_add_message(h, "system", system)) {
        cJSON_Delete(h);
        return NULL;
    }
    return h;
}

/* One turn: the history (ending with the user's message) rendered and
 * answered; the reply joins the history. */
static int turn(m40_engine *e, gen_args *a, cJSON *history) {
    char *prompt = NULL;
    size_t len = 0;
    int fallback = 0;
    m40_err err = {0};
    if (m40_engine_chat_prompt(e, history, NULL, 1, &prompt, &len, &fallback, &err)) {
        m40_cli_error("%s", err.msg);
        return -1;
    }
    m40_gen_params p = a->gp;
    p.parse_special = 1; /* the template writes special tokens as text */
    p.add_special = !m40_engine_starts_with_bos(e, prompt, len) && a->gp.add_special;
    m40_strbuf reply = {0};
    m40_strbuf_add(&reply, "", 0);
    m40_gen_stats st;
    /* a Ctrl-C typed since Enter stops this reply before it starts */
    int rc = m40_engine_generate(e, 0, prompt, len, &p, on_text, &reply, &st, &err);
    free(prompt);
    fputc('\n', stdout);
    if (rc) {
        m40_cli_error("%s", err.msg);
    } else {
        if (st.finish == M40_FINISH_CANCEL)
            fprintf(stderr, "(stopped)\n");
        else if (st.finish == M40_FINISH_CONTEXT)
            fprintf(stderr, "(the context is full: /reset to start over)\n");
        rc = reply.oom || m40_cli_add_message(history, "assistant", reply.s) ? -1 : 0;
    }
    free(reply.s);
    g_interrupt = 0; /* consumed: the next prompt starts clean */
    drain_wake();
    return rc;
}

static int repl(m40_engine *e, gen_args *a) {
    const char *system = a->system;
    char *system_buf = NULL, *line = NULL;
    size_t cap = 0;
    cJSON *history = fresh_history(system);
    int rc = history ? 0 : -1;
    while (rc == 0) {
        fputs("> ", stdout);
        fflush(stdout);
        if (!wait_input()) { /* Ctrl-C at the prompt */
            g_interrupt = 0;
            fputs("\n(Ctrl-D or /exit quits)\n", stderr);
            continue;
        }
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0 && errno == EINTR) { /* Ctrl-C landed on this thread mid-read */
            clearerr(stdin);
            g_interrupt = 0;
            drain_wake();
            fputs("\n(Ctrl-D or /exit quits)\n", stderr);
            continue;
        }
        if (n < 0) {
            fputc('\n', stdout);
            break; /* end of input */
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit"))
            break;
        if (!strcmp(line, "/reset") || !strncmp(line, "/system ", 8)) {
            if (line[1] == 's') {
                free(system_buf);
                system = system_buf = strdup(line + 8);
            }
            cJSON_Delete(history);
            history = fresh_history(system);
            rc = history ? 0 : -1;
            fputs("(history cleared)\n", stderr);
            continue;
        }
        if (line[0] == '/') {
            fputs("commands: /reset, /system TEXT, /exit\n", stderr);
            continue;
        }
        if (m40_cli_add_message(history, "user", line)) {
            rc = -1;
            break;
        }
        if (turn(e, a, history)) /* the message that failed leaves the history */
            cJSON_DeleteItemFromArray(history, cJSON_GetArraySize(history) - 1);
    }
    free(line);
    free(system_buf);
    cJSON_Delete(history);
    return rc;
}

int m40_cmd_chat(int argc, char **argv) {
    gen_args a;
    m40_gen_args_init(&a);
    a.gp.max_tokens = -1; /* a reply ends where the model ends it (-n limits it) */
    int r = m40_gen_args_parse(&a, argc, argv, "chat");
    if (r == 0 && (a.prompt || a.prompt_file || a.chat)) {
        m40_cli_error("chat: messages are typed in; for one prompt use generate --chat -p");
        r = -1;
    }
    m40_grammar *grammar = NULL;
    if (r == 0 && m40_gen_args_grammar(&a, &grammar))
        r = -1;
    char defbuf[PATH_MAX];
    if (r == 0 && !m40_gen_args_model(&a, defbuf, sizeof defbuf)) {
        m40_gen_args_free(&a);
        return M40_EXIT_FAIL;
    }
    if (r != 0) {
        m40_gen_args_free(&a);
        return r > 0 ? M40_EXIT_OK : M40_EXIT_USAGE;
    }
    a.gp.grammar = grammar;
    if (!a.seed_given)
        a.gp.sampling.seed = m40_gen_random_seed();
    if (!a.verbose)
        m40_log_set_level(M40_LOG_WARN);
    a.eo.model_path = a.model;
    m40_cli_progress progress;
    m40_cli_progress_attach(&progress, &a.eo.backend);
    char notice[640];
    m40_engine *e = NULL;
    m40_err err = {0};
    int rc = M40_EXIT_FAIL;
    if (m40_engine_open(&e, &a.eo, notice, sizeof notice, &err)) {
        m40_cli_error("%s", err.msg);
    } else {
        if (notice[0])
            fprintf(stderr, "m40-llm: %s\n", notice);
        fprintf(stderr,
                "m40-llm chat: %s on %s. /reset, /system TEXT, /exit; Ctrl-C stops a reply.\n",
                a.model, m40_backend_describe(m40_engine_backend(e)));
        /* Ctrl-C stops a reply (its callback sees the flag) or wakes the
         * prompt (its poll sees the pipe), never the program */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        if (pipe2(g_wake, O_NONBLOCK | O_CLOEXEC) || sigaction(SIGINT, &sa, NULL)) {
            m40_cli_error("chat: cannot set up Ctrl-C handling");
        } else {
            rc = repl(e, &a) ? M40_EXIT_FAIL : M40_EXIT_OK;
            signal(SIGINT, SIG_DFL);
        }
        for (int i = 0; i < 2; i++)
            if (g_wake[i] >= 0)
                close(g_wake[i]);
    }
    m40_engine_close(e);
    m40_grammar_free(grammar);
    m40_gen_args_free(&a);
    return rc;
}
