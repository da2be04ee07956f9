/* default_model.c - where the default model is, for commands run without -m.
 *
 * Owns: the lookup only. Touches: the file system (access, readlink).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

const char *m40_cli_default_model(char *buf, size_t cap) {
    if (access(M40_CLI_DEFAULT_MODEL, R_OK) == 0)
        return M40_CLI_DEFAULT_MODEL;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
        *slash = '\0';
        int n_written = snprintf(buf, cap, "%s/%s", exe, M40_CLI_DEFAULT_MODEL);
        if (n_written > 0 && (size_t)n_written < cap && access(buf, R_OK) == 0)
            return buf;
    }
    return NULL;
}
