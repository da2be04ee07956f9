/* cli.h - the m40-llm subcommands.
 *
 * Each subcommand is one file (cmd_<name>.c) with one entry point that takes
 * the arguments after its name and returns the process exit status. Errors
 * are printed here, at the edge, as one line on stderr: "m40-llm: <why>".
 *
 * Owns: argument parsing and terminal output. Touches: libm40 through its
 * headers only.
 */
#ifndef M40_CLI_CLI_H
#define M40_CLI_CLI_H

/* Exit statuses: 0 success, 1 the command failed, 2 bad usage. */
enum { M40_EXIT_OK = 0, M40_EXIT_FAIL = 1, M40_EXIT_USAGE = 2 };

int m40_cmd_info(int argc, char **argv);
int m40_cmd_synth(int argc, char **argv);
int m40_cmd_generate(int argc, char **argv);
int m40_cmd_bench(int argc, char **argv);
int m40_cmd_tokenize(int argc, char **argv);
int m40_cmd_chat_template(int argc, char **argv);

/* Prints "m40-llm: <message>" on stderr. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void m40_cli_error(const char *fmt, ...);

/* Parses a non-negative int flag value; returns -1 (after printing an error
 * naming the flag) when it is not one. */
int m40_cli_parse_int(const char *flag, const char *value, int *out);

#endif /* M40_CLI_CLI_H */
