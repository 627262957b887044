/* Command-line plumbing shared by the cmr-* filters (jq's main.c, mblaze). */
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cli_prog = "cmr";
int cli_quiet, cli_verbose;

static int stdout_closed; /* by cli_finish_stdout */
static int exit_code;     /* what cli_die / cli_usage_error exit with */

/* At exit, whatever the path (--help, usage, an error, a normal end): what
 * is still buffered for stdout must reach it. A failed write (`cmr-mel --help
 * > /dev/full`) is exit 1 with a message, not a silent 0. */
static void check_stdout_at_exit(void)
{
    if (stdout_closed)
        return;
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: error: writing output failed: %s\n", cli_prog, strerror(errno ? errno : EIO));
        _exit(exit_code ? exit_code : CLI_EXIT_DATA);
    }
}

void cli_init(const char *prog)
{
    cli_prog = prog;
    atexit(check_stdout_at_exit);
}

static void vmsg(const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", cli_prog);
    exit_code = CLI_EXIT_USAGE;
    exit(CLI_EXIT_USAGE);
}

void cli_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit_code = code;
    exit(code);
}

void cli_warn(const char *fmt, ...)
{
    if (cli_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void cli_info(const char *fmt, ...)
{
    if (!cli_verbose || cli_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

double cli_double(const char *opt, const char *arg, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (end == arg || *end || errno || !isfinite(v) || v < min || v > max)
        cli_usage_error("%s takes a number in [%g, %g], got '%s'", opt, min, max, arg);
    return v;
}

long cli_long(const char *opt, const char *arg, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || errno || v < min || v > max)
        cli_usage_error("%s takes an integer in [%ld, %ld], got '%s'", opt, min, max, arg);
    return v;
}

uint64_t cli_seed(const char *opt, const char *arg)
{
    char *end;
    errno = 0;
    if (arg[0] == '-')
        cli_usage_error("%s takes a non-negative integer, got '%s'", opt, arg);
    unsigned long long v = strtoull(arg, &end, 10);
    if (end == arg || *end || errno)
        cli_usage_error("%s takes a non-negative integer, got '%s'", opt, arg);
    return (uint64_t)v;
}

void cli_bad_option(char **argv, int c)
{
    if (c == ':')
        cli_usage_error("option '%s' needs a value", argv[optind - 1]);
    if (optopt)
        cli_usage_error("unknown option '-%c'", optopt);
    cli_usage_error("unknown option '%s'", argv[optind - 1]);
}

const char *cli_nonempty(const char *opt, const char *what, const char *arg)
{
    if (!*arg)
        cli_usage_error("%s takes %s, got ''", opt, what);
    return arg;
}

const char *cli_one_input(int argc, char **argv)
{
    if (argc - optind > 1)
        cli_usage_error("at most one input file");
    return optind < argc ? argv[optind] : NULL;
}

void cli_check_stdout(int force)
{
    if (!force && isatty(STDOUT_FILENO))
        cli_usage_error("refusing to write binary frames to a terminal; pipe the output "
                        "(e.g. into cmr-dump) or use --force");
}

void cli_finish_stdout(void)
{
    int bad = ferror(stdout);
    stdout_closed = 1;
    if (fclose(stdout) != 0 || bad)
        cli_die(CLI_EXIT_DATA, "error: writing output failed: %s", strerror(errno ? errno : EIO));
}

/* Objects that live until the program ends: a pointer to each is kept here,
 * so that an exit through cli_die, which leaves them to the system, is not
 * reported as a leak by LeakSanitizer (make check-sanitize). */
static void *kept[64];

void cli_keep(const void *p)
{
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (!kept[i]) {
            kept[i] = (void *)p;
            return;
        }
}

struct cmr_reader *cli_open_reader(const char *path)
{
    int fd = STDIN_FILENO;
    const char *name = "stdin";
    if (path && strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY);
        if (fd < 0)
            cli_die(CLI_EXIT_DATA, "%s: %s", path, strerror(errno));
        name = path;
    } else if (isatty(STDIN_FILENO)) {
        cli_usage_error("no input: stdin is a terminal; pipe frames in (e.g. from cmr-decode)");
    }
    struct cmr_reader *rd = cmr_reader_new(fd, name);
    if (!rd)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_keep(rd);
    return rd;
}

int cli_next(struct cmr_reader *rd, struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    int rc = cmr_reader_next(rd, fr, &err);
    if (rc == CMR_OK)
        return 1;
    if (rc == CMR_EOF)
        return 0;
    cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
}

void cli_read_header(struct cmr_reader *rd, struct cmr_frame *hdr)
{
    if (!cli_next(rd, hdr))
        cli_die(CLI_EXIT_DATA, "empty input: no header frame");
    if (hdr->type != CMR_FRAME_HEADER) /* the reader guarantees this; keep the check */
        cli_die(CLI_EXIT_DATA, "input does not start with a header frame");
    if (cmr_frame_add_stage(hdr, cli_prog) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
}

void cli_put(struct cmr_writer *w, const struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    int rc = cmr_writer_put(w, fr, &err);
    if (rc == CMR_EIO)
        cli_die(CLI_EXIT_DATA, "error: writing output failed: %s", cmr_error_text(&err, rc));
    if (rc != CMR_OK) /* a frame that breaks the format's rules (frame.h cmr_frame_check) */
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
}

struct cmr_writer *cli_stdout_writer(int force)
{
    cli_check_stdout(force);
    struct cmr_writer *w = cmr_writer_new(stdout);
    if (!w)
        cli_die(CLI_EXIT_DATA, "out of memory");
    return w;
}

void cli_wrong_kind(const struct cmr_frame *fr, const char *expected)
{
    cli_die(CLI_EXIT_DATA, "track \"%s\": expected %s frames, got \"%s\" (frame %lld of the track)",
            fr->track ? fr->track : "?", expected, fr->kind, (long long)fr->index);
}

void cli_read_vectors(struct cmr_reader *rd, struct cmr_vectors *vs)
{
    struct cmr_error err = {0};
    cmr_vectors_init(vs);
    int rc = cmr_vectors_read(vs, rd, &err);
    if (rc != CMR_OK)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    if (vs->n_failed)
        cli_warn("%d track%s failed upstream and %s left out", vs->n_failed, vs->n_failed == 1 ? "" : "s",
                 vs->n_failed == 1 ? "is" : "are");
    if (vs->n == 0)
        cli_die(CLI_EXIT_DATA, "no vectors in the input");
}
