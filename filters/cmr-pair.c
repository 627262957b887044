/* cmr-pair: mono "audio" frames -> one "pair" (or "sequence") frame per track
 * per epoch: the crops where the anchor and the positive are cut (PAPER.md §2;
 * the exact definitions are in lib/pair.h and docs/training.md).
 *
 * Two ways through the input:
 *  - streaming (--no-shuffle and --epochs 1): each track is buffered until its
 *    end frame, drawn from, and forgotten; memory is one track.
 *  - indexed (the default): a first pass records where each track's frames
 *    lie in the input file and how long the track is; then every epoch visits
 *    the tracks in a seeded random order, re-reading each track's bytes with
 *    pread. Memory is still one track. A pipe is first copied to an unlinked
 *    temporary file in $TMPDIR (as sort(1) spools), so a file argument saves
 *    that copy. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "frame.h"
#include "pair.h"
#include "util/rng.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-pair [OPTION]... [FILE|-]\n"
        "Cut training examples from mono \"audio\" frames (cmr-resample's output):\n"
        "for each track and epoch, one \"pair\" frame [2, crop] (row 0 the anchor,\n"
        "row 1 the positive) or, with --strategy sequence, one \"sequence\" frame\n"
        "[context+predict, crop] of consecutive segments. Reads FILE or stdin.\n"
        "\n"
        "  -s, --strategy S    self, adjacent, random or sequence [self]\n"
        "                        self: anchor = positive = one crop (augmented\n"
        "                          twice downstream)\n"
        "                        adjacent: the positive's segment starts --gap after\n"
        "                          the anchor's ends; order swapped with p = 0.5\n"
        "                        random: a crop anywhere else in the track, sharing\n"
        "                          no sample with the anchor's crop\n"
        "                        sequence: --context + --predict consecutive segments\n"
        "      --seed N        random seed [0]\n"
        "  -e, --epochs N      passes over the tracks [1] (1..1000000); every frame\n"
        "                      has info \"epoch\", epochs come one after the other\n"
        "      --no-shuffle    keep the input's track order (default: a seeded\n"
        "                      random order, new each epoch); with --epochs 1 this\n"
        "                      streams, with no temporary file\n"
        "      --segment SEC   segment length, what the encoder sees [3]\n"
        "      --crop SEC      crop length, the segment plus slack for the time\n"
        "                      stretch of cmr-augment [3.6] (>= --segment; use\n"
        "                      --crop 3 when not augmenting)\n"
        "      --gap SEC       adjacent: gap between the two segments [0.5]\n"
        "      --context N     sequence: segments the GRU reads [4] (1..60)\n"
        "      --predict K     sequence: future segments to predict [2] (1..60)\n"
        "      --max-seconds S use at most the first S seconds of a track [600]\n"
        "                      (1..86400); longer tracks are counted in a warning\n"
        "      --force         write binary frames even to a terminal\n"
        "  -q, --quiet         no warnings\n"
        "  -v, --verbose       one line per track and epoch on stderr\n"
        "  -h, --help          this help\n"
        "\n"
        "Tracks too short for the strategy (self 3.6 s, adjacent 7.1 s, random 7.2 s,\n"
        "sequence 18.6 s with the defaults) are skipped and counted in a warning.\n"
        "Each output frame: offset = the anchor's crop start (samples), info epoch,\n"
        "anchor_offset, positive_offset (pairs) or stride (sequences), swapped,\n"
        "track_samples; then an end frame. A track's draws depend only on the seed,\n"
        "its id and the epoch, not on the other tracks.\n"
        "Exit status: 0 ok, 1 bad input (wrong kind, not mono, rates differ,\n"
        "gaps in offsets, truncated stream, no track long enough) or output failed,\n"
        "2 usage.\n");
    exit(code);
}

/* one track of the input, as found by the first pass */
struct entry {
    char *id;
    int64_t start, end;    /* byte range of its frames in the input file */
    int64_t samples;       /* usable samples (at most --max-seconds) */
};

struct state {
    /* options */
    struct cmr_pair_cfg cfg;
    double segment_s, crop_s, gap_s, max_s;
    uint64_t seed;
    long epochs;
    int shuffle;
    /* the stream */
    double rate;           /* of every track; 0 until the first audio frame */
    struct cmr_rng draws, order;
    struct cmr_writer *w;
    struct cmr_frame out, end, meta;
    int rows;
    int64_t max_samples;
    /* the track being read */
    float *audio;
    size_t cap;
    int64_t n, total;      /* samples kept, samples in the track */
    char *error;           /* the producer's error for this track, if any */
    /* counts for the closing warnings */
    long tracks, too_short, failed, truncated, emitted;
};

static void oom(void)
{
    cli_die(CLI_EXIT_DATA, "out of memory");
}

/* sizes in samples, once the stream's rate is known */
static void set_rate(struct state *s, double rate)
{
    struct cmr_error err = {0};
    s->rate = rate;
    s->cfg.segment = (int64_t)llround(s->segment_s * rate);
    s->cfg.crop = (int64_t)llround(s->crop_s * rate);
    s->cfg.gap = (int64_t)llround(s->gap_s * rate);
    s->max_samples = (int64_t)llround(s->max_s * rate);
    if (cmr_pair_cfg_check(&s->cfg, &err) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "at %g Hz: %s", rate, err.msg);
    s->rows = cmr_pair_rows(&s->cfg);
}

/* checks one audio frame of the current track and, if keep, appends its samples */
static void take(struct state *s, const struct cmr_frame *fr, int keep)
{
    if (strcmp(fr->kind, "audio") != 0)
        cli_wrong_kind(fr, "\"audio\"");
    if (fr->ndim != 2 || fr->shape[1] != 1)
        cli_die(CLI_EXIT_DATA, "track \"%s\": frame %lld: expected mono audio [n, 1]%s", fr->track,
                (long long)fr->index, fr->ndim == 2 ? " (downmix with cmr-resample)" : "");
    if (!(fr->rate > 0))
        cli_die(CLI_EXIT_DATA, "track \"%s\": audio frame without a sample rate", fr->track);
    if (s->rate == 0)
        set_rate(s, fr->rate);
    else if (fr->rate != s->rate)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %g Hz, but earlier audio is %g Hz; resample everything to one "
                "rate with cmr-resample", fr->track, fr->rate, s->rate);
    if (fr->offset != s->total)
        cli_die(CLI_EXIT_DATA, "track \"%s\": audio frame %lld starts at offset %lld, expected %lld",
                fr->track, (long long)fr->index, (long long)fr->offset, (long long)s->total);
    int64_t k = fr->shape[0];
    s->total += k;
    if (s->n + k > s->max_samples)
        k = s->max_samples - s->n;
    if (k <= 0)
        return;
    if (keep) {
        if ((size_t)(s->n + k) > s->cap) {
            size_t cap = s->cap ? s->cap : 1 << 16;
            while (cap < (size_t)(s->n + k))
                cap *= 2;
            float *p = realloc(s->audio, cap * sizeof *p);
            if (!p)
                oom();
            s->audio = p;
            s->cap = cap;
        }
        memcpy(s->audio + s->n, fr->data, (size_t)k * sizeof *s->audio);
    }
    s->n += k;
}

/* reads one track whose first frame (a tensor frame, or its end frame when the
 * track is empty) is in fr, through its end frame; the first tensor frame's
 * metadata is kept in s->meta */
static void read_track(struct state *s, struct cmr_reader *rd, struct cmr_frame *fr, int keep)
{
    s->n = s->total = 0;
    free(s->error);
    s->error = NULL;
    cmr_frame_reset(&s->meta);
    if (cmr_frame_set_track(&s->meta, fr->track) != CMR_OK)
        oom();
    for (int first = 1; fr->type == CMR_FRAME_TENSOR; first = 0) {
        if (first && cmr_frame_meta_copy(&s->meta, fr) != CMR_OK)
            oom();
        take(s, fr, keep);
        if (!cli_next(rd, fr)) /* the reader reports a track without its end frame itself */
            cli_die(CLI_EXIT_DATA, "track \"%s\": the stream ends inside the track", s->meta.track);
    }
    if (fr->type != CMR_FRAME_END) /* the reader does not let a header into a track */
        cli_die(CLI_EXIT_DATA, "track \"%s\": expected its end frame", s->meta.track);
    if (fr->error && !(s->error = strdup(fr->error)))
        oom();
}

/* the shortest usable track, in seconds */
static double min_seconds(const struct state *s)
{
    switch (s->cfg.strategy) {
    case CMR_PAIR_SELF: return s->crop_s;
    case CMR_PAIR_ADJACENT: return s->segment_s + s->gap_s + s->crop_s;
    case CMR_PAIR_RANDOM: return 2 * s->crop_s;
    case CMR_PAIR_SEQUENCE: return (s->cfg.context + s->cfg.predict - 1) * s->segment_s + s->crop_s;
    }
    return 0;
}

/* counts the track just read; 1 if it can be drawn from */
static int usable(struct state *s)
{
    const char *id = s->meta.track;
    s->tracks++;
    if (s->error) {
        s->failed++;
        cli_info("track \"%s\": skipped: its producer failed (%s)", id, s->error);
        return 0;
    }
    if (s->total > s->n)
        s->truncated++;
    if (s->n == 0 || s->n < cmr_pair_min_length(&s->cfg)) {
        s->too_short++;
        cli_info("track \"%s\": skipped: %.3f s, the %s strategy needs %.3f s", id,
                 s->rate > 0 ? (double)s->n / s->rate : 0.0, cmr_pair_strategy_name(s->cfg.strategy),
                 min_seconds(s));
        return 0;
    }
    return 1;
}

/* draws from the track in s->audio and writes its frame and end frame */
static void emit(struct state *s, int64_t epoch)
{
    const char *id = s->meta.track;
    struct cmr_rng rng;
    struct cmr_pair_draw d;
    struct cmr_error err = {0};
    cmr_pair_rng(&s->draws, id, epoch, &rng);
    if (cmr_pair_draw(&s->cfg, s->n, &rng, &d, &err) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s", id, err.msg);
    int seq = s->cfg.strategy == CMR_PAIR_SEQUENCE;
    int64_t shape[2] = {s->rows, s->cfg.crop};
    cmr_frame_reset(&s->out);
    if (cmr_frame_make_tensor(&s->out, seq ? "sequence" : "pair", id, 2, shape) != CMR_OK ||
        cmr_frame_meta_copy(&s->out, &s->meta) != CMR_OK)
        oom();
    cmr_pair_extract(&s->cfg, &d, s->audio, s->n, s->out.data);
    s->out.index = 0;
    s->out.offset = d.offset[0];
    s->out.rate = s->rate;
    if (cmr_frame_info_set(&s->out, "epoch", (double)epoch) != CMR_OK ||
        cmr_frame_info_set(&s->out, "anchor_offset", (double)d.offset[0]) != CMR_OK ||
        cmr_frame_info_set(&s->out, seq ? "stride" : "positive_offset",
                           seq ? (double)s->cfg.segment : (double)d.offset[1]) != CMR_OK ||
        cmr_frame_info_set(&s->out, "swapped", d.swapped) != CMR_OK ||
        cmr_frame_info_set(&s->out, "track_samples", (double)s->n) != CMR_OK)
        oom();
    cli_put(s->w, &s->out);
    if (cmr_frame_make_end(&s->end, id, 1) != CMR_OK)
        oom();
    cli_put(s->w, &s->end);
    s->emitted++;
    if (seq)
        cli_info("epoch %lld, track \"%s\": %d segments from %.3f s", (long long)epoch, id, s->rows,
                 (double)d.offset[0] / s->rate);
    else
        cli_info("epoch %lld, track \"%s\": anchor at %.3f s, positive at %.3f s%s", (long long)epoch, id,
                 (double)d.offset[0] / s->rate, (double)d.offset[1] / s->rate, d.swapped ? " (swapped)" : "");
}

/* ---- indexed mode ---- */

/* copies a pipe into an unlinked temporary file; returns its descriptor */
static int spool(int in)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    static char buf[1 << 20];
    if (!dir || !*dir)
        dir = "/tmp";
    snprintf(path, sizeof path, "%s/cmr-pair.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        cli_die(CLI_EXIT_DATA, "cannot create a temporary file in %s: %s", dir, strerror(errno));
    unlink(path);
    cli_info("copying the input into a temporary file in %s (give a file argument to avoid the copy)", dir);
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            cli_die(CLI_EXIT_DATA, "reading the input failed: %s", strerror(errno));
        if (n == 0)
            break;
        for (ssize_t done = 0; done < n;) {
            ssize_t m = write(fd, buf + done, (size_t)(n - done));
            if (m < 0 && errno == EINTR)
                continue;
            if (m < 0)
                cli_die(CLI_EXIT_DATA, "writing the temporary file in %s failed: %s (set TMPDIR, or give a "
                        "file argument)", dir, strerror(errno));
            done += m;
        }
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        cli_die(CLI_EXIT_DATA, "temporary file: %s", strerror(errno));
    return fd;
}

/* the first pass: every usable track's byte range and length */
static struct entry *index_input(struct state *s, struct cmr_reader *rd, int64_t base, size_t *count)
{
    struct entry *e = NULL;
    size_t n = 0, cap = 0;
    struct cmr_frame fr;
    cmr_frame_init(&fr);
    for (;;) {
        int64_t start = cmr_reader_byte_offset(rd);
        if (!cli_next(rd, &fr))
            break;
        if (fr.type == CMR_FRAME_HEADER) /* streams joined with cat */
            continue;
        read_track(s, rd, &fr, 0);
        if (!usable(s))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            struct entry *p = realloc(e, cap * sizeof *p);
            if (!p)
                oom();
            e = p;
        }
        if (!(e[n].id = strdup(s->meta.track)))
            oom();
        e[n].start = base + start;
        e[n].end = base + cmr_reader_byte_offset(rd);
        e[n].samples = s->n;
        n++;
    }
    cmr_frame_free(&fr);
    *count = n;
    return e;
}

/* re-reads one indexed track into s->audio */
static void replay(struct state *s, int fd, const char *name, const struct entry *e, const void *hdr,
                   size_t hdr_len, unsigned char **buf, size_t *buf_cap)
{
    size_t len = hdr_len + (size_t)(e->end - e->start);
    if (len > *buf_cap) {
        unsigned char *p = realloc(*buf, len);
        if (!p)
            oom();
        *buf = p;
        *buf_cap = len;
    }
    memcpy(*buf, hdr, hdr_len);
    for (size_t done = hdr_len; done < len;) {
        ssize_t m = pread(fd, *buf + done, len - done, (off_t)(e->start + (int64_t)(done - hdr_len)));
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0)
            cli_die(CLI_EXIT_DATA, "%s: re-reading track \"%s\" failed: %s", name, e->id,
                    m < 0 ? strerror(errno) : "the file got shorter");
        done += (size_t)m;
    }
    struct cmr_reader *rd = cmr_reader_new_mem(*buf, len, name);
    struct cmr_frame fr;
    if (!rd)
        oom();
    cmr_frame_init(&fr);
    if (!cli_next(rd, &fr) || !cli_next(rd, &fr) || fr.type == CMR_FRAME_HEADER)
        cli_die(CLI_EXIT_DATA, "%s: track \"%s\" is not where the first pass found it (did the file change?)",
                name, e->id);
    read_track(s, rd, &fr, 1);
    if (s->n != e->samples || strcmp(s->meta.track, e->id) != 0)
        cli_die(CLI_EXIT_DATA, "%s: track \"%s\" changed since the first pass", name, e->id);
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
}

static void put_header(struct state *s, struct cmr_frame *hdr, long tracks)
{
    int rc = cmr_frame_stage_param(hdr, "strategy", "%s", cmr_pair_strategy_name(s->cfg.strategy));
    rc = rc ? rc : cmr_frame_stage_param(hdr, "seed", "%llu", (unsigned long long)s->seed);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "epochs", "%ld", s->epochs);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "shuffle", "%s", s->shuffle ? "yes" : "no");
    rc = rc ? rc : cmr_frame_stage_param(hdr, "segment_seconds", "%g", s->segment_s);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "crop_seconds", "%g", s->crop_s);
    if (s->cfg.strategy == CMR_PAIR_ADJACENT)
        rc = rc ? rc : cmr_frame_stage_param(hdr, "gap_seconds", "%g", s->gap_s);
    if (s->cfg.strategy == CMR_PAIR_SEQUENCE) {
        rc = rc ? rc : cmr_frame_stage_param(hdr, "context", "%d", s->cfg.context);
        rc = rc ? rc : cmr_frame_stage_param(hdr, "predict", "%d", s->cfg.predict);
    }
    rc = rc ? rc : cmr_frame_stage_param(hdr, "max_seconds", "%g", s->max_s);
    if (tracks >= 0) /* known up front in indexed mode: tracks per epoch */
        rc = rc ? rc : cmr_frame_stage_param(hdr, "tracks", "%ld", tracks);
    if (rc != CMR_OK)
        oom();
    cli_put(s->w, hdr);
}

/* the options into s; returns the input (NULL or "-": stdin) and *force */
static const char *parse_options(int argc, char **argv, struct state *s, int *force)
{
    enum { O_SEED = 256, O_NO_SHUFFLE, O_SEGMENT, O_CROP, O_GAP, O_CONTEXT, O_PREDICT, O_MAX, O_FORCE };
    static const struct option opts[] = {
        {"strategy", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, O_SEED},
        {"epochs", required_argument, NULL, 'e'},
        {"no-shuffle", no_argument, NULL, O_NO_SHUFFLE},
        {"segment", required_argument, NULL, O_SEGMENT},
        {"crop", required_argument, NULL, O_CROP},
        {"gap", required_argument, NULL, O_GAP},
        {"context", required_argument, NULL, O_CONTEXT},
        {"predict", required_argument, NULL, O_PREDICT},
        {"max-seconds", required_argument, NULL, O_MAX},
        {"force", no_argument, NULL, O_FORCE},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c, seq_opts = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:e:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 's': {
            int st = cmr_pair_strategy_parse(optarg);
            if (st < 0)
                cli_usage_error("--strategy takes self, adjacent, random or sequence, got '%s'", optarg);
            s->cfg.strategy = (enum cmr_pair_strategy)st;
            break;
        }
        case O_SEED: s->seed = cli_seed("--seed", optarg); break;
        case 'e': s->epochs = cli_long("--epochs", optarg, 1, 1000000); break;
        case O_NO_SHUFFLE: s->shuffle = 0; break;
        case O_SEGMENT: s->segment_s = cli_double("--segment", optarg, 0.1, 60); break;
        case O_CROP: s->crop_s = cli_double("--crop", optarg, 0.1, 60); break;
        case O_GAP: s->gap_s = cli_double("--gap", optarg, 0, 60); break;
        case O_CONTEXT: s->cfg.context = (int)cli_long("--context", optarg, 1, 60); seq_opts = 1; break;
        case O_PREDICT: s->cfg.predict = (int)cli_long("--predict", optarg, 1, 60); seq_opts = 1; break;
        case O_MAX: s->max_s = cli_double("--max-seconds", optarg, 1, 86400); break;
        case O_FORCE: *force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    const char *input = cli_one_input(argc, argv);
    if (s->crop_s < s->segment_s)
        cli_usage_error("--crop (%g s) should be at least --segment (%g s)", s->crop_s, s->segment_s);
    if (seq_opts && s->cfg.strategy != CMR_PAIR_SEQUENCE)
        cli_usage_error("--context and --predict need --strategy sequence");
    if (s->max_s < min_seconds(s))
        cli_usage_error("--max-seconds %g is below the %g s the %s strategy needs", s->max_s, min_seconds(s),
                        cmr_pair_strategy_name(s->cfg.strategy));
    return input;
}

/* one pass over the stream, one track at a time (--no-shuffle, one epoch) */
static void run_streaming(struct state *s, const char *input, struct cmr_frame *hdr)
{
    struct cmr_frame fr;
    struct cmr_reader *rd = cli_open_reader(input);
    cmr_frame_init(&fr);
    cli_read_header(rd, hdr);
    put_header(s, hdr, -1);
    while (cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_HEADER)
            continue;
        read_track(s, rd, &fr, 1);
        if (usable(s))
            emit(s, 0);
    }
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
}

/* the input as a seekable file (stdin spooled when it is not one): its fd,
 * and in *base where the stream starts */
static int open_indexed(const char *input, const char *name, int64_t *base)
{
    int fd = STDIN_FILENO;
    struct stat st;
    if (input && strcmp(input, "-") != 0) {
        if ((fd = open(input, O_RDONLY)) < 0)
            cli_die(CLI_EXIT_DATA, "%s: %s", input, strerror(errno));
    } else if (isatty(STDIN_FILENO)) {
        cli_usage_error("no input: stdin is a terminal; pipe frames in (e.g. from cmr-resample)");
    }
    if (fstat(fd, &st) != 0)
        cli_die(CLI_EXIT_DATA, "%s: %s", name, strerror(errno));
    *base = 0;
    if (!S_ISREG(st.st_mode))
        fd = spool(fd);
    else if ((*base = (int64_t)lseek(fd, 0, SEEK_CUR)) < 0)
        cli_die(CLI_EXIT_DATA, "%s: %s", name, strerror(errno));
    return fd;
}

/* an index of the tracks, then each epoch re-reads them in its own order */
static void run_indexed(struct state *s, const char *input, struct cmr_frame *hdr)
{
    const char *name = input && strcmp(input, "-") != 0 ? input : "stdin";
    int64_t base;
    int fd = open_indexed(input, name, &base);
    struct cmr_reader *rd = cmr_reader_new(fd, name);
    if (!rd)
        oom();
    cli_read_header(rd, hdr);
    size_t count;
    struct entry *e = index_input(s, rd, base, &count);
    cmr_reader_free(rd);
    put_header(s, hdr, (long)count);

    struct cmr_frame small;
    void *hbytes;
    size_t hlen, buf_cap = 0;
    unsigned char *buf = NULL;
    size_t *perm = malloc((count ? count : 1) * sizeof *perm);
    cmr_frame_init(&small);
    if (!perm || cmr_frame_make_header(&small, "cmr-pair") != CMR_OK ||
        cmr_frame_pack(&small, &hbytes, &hlen) != CMR_OK)
        oom();
    for (long ep = 0; ep < s->epochs && count > 0; ep++) {
        if (s->shuffle) {
            struct cmr_rng r;
            cmr_rng_split(&s->order, (uint64_t)ep, &r);
            cmr_pair_shuffle(&r, perm, count);
        } else {
            for (size_t i = 0; i < count; i++)
                perm[i] = i;
        }
        for (size_t i = 0; i < count; i++) {
            replay(s, fd, name, &e[perm[i]], hbytes, hlen, &buf, &buf_cap);
            emit(s, ep);
        }
    }
    for (size_t i = 0; i < count; i++)
        free(e[i].id);
    free(e);
    free(perm);
    free(buf);
    free(hbytes);
    cmr_frame_free(&small);
    close(fd);
}

int main(int argc, char **argv)
{
    struct state s;
    struct cmr_frame hdr;
    int force = 0;

    memset(&s, 0, sizeof s);
    s.cfg = cmr_pair_cfg_default(16000);
    s.segment_s = 3;
    s.crop_s = 3.6;
    s.gap_s = 0.5;
    s.max_s = 600;
    s.epochs = 1;
    s.shuffle = 1;
    cli_init("cmr-pair");
    const char *input = parse_options(argc, argv, &s, &force);

    /* set up */
    struct cmr_rng root;
    cmr_rng_seed(&root, s.seed);
    cmr_rng_split(&root, 0, &s.draws);
    cmr_rng_split(&root, 1, &s.order);
    cmr_frame_init(&hdr);
    cmr_frame_init(&s.out);
    cmr_frame_init(&s.end);
    cmr_frame_init(&s.meta);
    s.w = cli_stdout_writer(force);

    /* run */
    if (!s.shuffle && s.epochs == 1)
        run_streaming(&s, input, &hdr);
    else
        run_indexed(&s, input, &hdr);

    double need = min_seconds(&s);
    if (s.too_short)
        cli_warn("skipped %ld of %ld tracks shorter than %g s (the minimum for --strategy %s)", s.too_short,
                 s.tracks, need, cmr_pair_strategy_name(s.cfg.strategy));
    if (s.failed)
        cli_warn("skipped %ld of %ld tracks whose producer reported an error", s.failed, s.tracks);
    if (s.truncated)
        cli_warn("%ld of %ld tracks are longer than --max-seconds %g: only their first %g s were used",
                 s.truncated, s.tracks, s.max_s, s.max_s);
    int none = s.tracks > 0 && s.too_short + s.failed == s.tracks;
    cmr_frame_free(&hdr);
    cmr_frame_free(&s.out);
    cmr_frame_free(&s.end);
    cmr_frame_free(&s.meta);
    free(s.audio);
    free(s.error);
    cmr_writer_free(s.w);
    cli_finish_stdout();
    if (none)
        cli_die(CLI_EXIT_DATA, "no track is usable for --strategy %s (each needs >= %g s)",
                cmr_pair_strategy_name(s.cfg.strategy), need);
    return CLI_EXIT_OK;
}
