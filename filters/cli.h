/* Shared command-line plumbing for the cmr-* filters (not part of lib/: these
 * functions print and exit, which lib/ never does).
 *
 * Exit codes, for every filter: 0 success, 1 data or runtime error, 2 usage. */
#ifndef CMR_CLI_H
#define CMR_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <stdnoreturn.h>

#include "eval/vectors.h"
#include "frame.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_DATA = 1, CLI_EXIT_USAGE = 2 };

/* program name used as the prefix of every message; set first thing in main() */
extern const char *cli_prog;
extern int cli_quiet;   /* -q: no warnings or progress */
extern int cli_verbose; /* -v: more detail */

void cli_init(const char *prog);

/* "PROG: message" then "Try 'PROG --help' for more information." and exit 2 */
noreturn void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "PROG: message" and exit with code */
noreturn void cli_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "PROG: message" unless -q */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_info(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* only with -v */

/* strict number parsing of an option value; exits 2 with
 * "PROG: --opt takes a number in [min, max], got 'arg'" */
double cli_double(const char *opt, const char *arg, double min, double max);
long cli_long(const char *opt, const char *arg, long min, long max);
uint64_t cli_seed(const char *opt, const char *arg);

/* the error cases of a getopt_long loop run with opterr = 0 and an optstring
 * starting with ':' (c is what getopt_long returned): exit 2 with
 * "unknown option" or "option needs a value" */
noreturn void cli_bad_option(char **argv, int c);
/* an option value that must not be empty ("--npy takes a directory, got ''") */
const char *cli_nonempty(const char *opt, const char *what, const char *arg);

/* the one optional FILE operand after the options (NULL: stdin); more is exit 2 */
const char *cli_one_input(int argc, char **argv);

/* refuses to write binary frames to a terminal unless force (exit 2) */
void cli_check_stdout(int force);
/* flushes and closes stdout; a failed write becomes exit 1 (jq) */
void cli_finish_stdout(void);

/* opens a frame stream: path, "-" or NULL for stdin; refuses a terminal on
 * stdin (exit 2); a missing file exits 1 */
/* remembers p as an object that lives until exit (cli_die leaves it to the
 * system; LeakSanitizer then sees it as reachable) */
void cli_keep(const void *p);
struct cmr_reader *cli_open_reader(const char *path);
/* reads the next frame; on a reader error prints it and exits 1.
 * Returns 1 with a frame, 0 at a clean end. */
int cli_next(struct cmr_reader *rd, struct cmr_frame *fr);
/* reads the stream's header into hdr (exit 1 if absent or invalid), appends
 * this program as a provenance stage */
void cli_read_header(struct cmr_reader *rd, struct cmr_frame *hdr);
/* writes a frame to the writer; exits 1 on failure */
void cli_put(struct cmr_writer *w, const struct cmr_frame *fr);
/* a stdout writer after cli_check_stdout(force) */
struct cmr_writer *cli_stdout_writer(int force);

/* a tensor frame of an unexpected kind: exit 1 with the frame's position */
noreturn void cli_wrong_kind(const struct cmr_frame *fr, const char *expected);

/* reads every vector of the stream (cmr-knn, cmr-probe): a read error exits
 * 1, tracks that failed upstream are counted in one warning, none is exit 1 */
void cli_read_vectors(struct cmr_reader *rd, struct cmr_vectors *vs);

#endif
