/* cmr-train: self-supervised training from a stream of "pair" or "sequence"
 * log-mel frames (PAPER.md sections 5-6; docs/training.md#cmr-train)
 *
 *   cmr-pair --epochs 100 audio.cmr | cmr-augment | cmr-mel |
 *     cmr-train --model siamese --width 0.25 --stats train.stats --out model.cmr
 *
 * The loop pieces (batching, checked steps, epochs, the plateau schedule,
 * resumable state) are lib/train.c; this file reads the stream, logs, shows
 * progress and writes checkpoints. An epoch ends where the frames' info
 * "epoch" changes, or at the end of the stream. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"
#include "dsp/stats.h"
#include "stream/frontend.h"
#include "frame.h"
#include "model.h"
#include "train.h"
#include "train-mpi.h"
#include "util/atomic.h"
#include "util/clock.h"


static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-train --out FILE [OPTION]... [FILE|-]\n"
        "       cmr-train --eval MODEL [--batch N] [--temperature X] [FILE|-]\n"
        "Train an encoder self-supervised on \"pair\" frames [2, 188, 96] (anchor, positive)\n"
        "or \"sequence\" frames [context+K, 188, 96] of log-mel (cmr-pair | cmr-augment |\n"
        "cmr-mel). Reads FILE or stdin; writes a model file, nothing on stdout.\n"
        "\n"
        "Model (a new one, seeded):\n"
        "  -m, --model NAME         siamese (InfoNCE, 128-d), multi (multi-level InfoNCE,\n"
        "                           640-d) or cpc (MelCPC: GRU 256 over context, K\n"
        "                           predictors, 256-d) [siamese]\n"
        "  -w, --width X            channel multiplier, 1 = the paper's encoder [1] (0, 4]\n"
        "      --context N          cpc: segments the GRU reads [4] (1..64)\n"
        "      --predict K          cpc: segments predicted [2] (1..16)\n"
        "  -s, --seed N             seeds the initialisation [0]\n"
        "      --stats FILE         input standardisation (cmr-mel --stats): stored in the\n"
        "                           model and applied as (x - mean) / std, in training and\n"
        "                           by cmr-encode\n"
        "      --init MODEL         start from MODEL's weights (cmr-model import, an\n"
        "                           earlier run) with a fresh optimizer\n"
        "      --resume FILE        continue the run that wrote checkpoint FILE: the same\n"
        "                           input stream is read again and the examples FILE\n"
        "                           already trained on are skipped\n"
        "Optimisation:\n"
        "  -b, --batch N            examples per step [16] (2..4096); a batch never mixes\n"
        "                           epochs: an epoch's last short batch is trained on if\n"
        "                           it has >= 2 examples, else dropped\n"
        "      --lr X               Adam learning rate [0.001] (betas 0.9, 0.999)\n"
        "  -t, --temperature X      InfoNCE temperature [1]\n"
        "      --patience N         epochs without improvement of the epoch loss before\n"
        "                           the rate drops [5] (ReduceLROnPlateau)\n"
        "      --factor X           rate multiplier on a plateau [0.2] (0, 1]\n"
        "  -e, --epochs N           stop after N epochs [0: all the input has]\n"
        "      --max-loss X         stop when a batch loss exceeds X [10000]\n"
        "  -j, --threads N          OpenBLAS threads [1] (1..64)\n"
        "Data parallel (mpirun -np N cmr-train --mpi ...; docs/scaling.md):\n"
        "      --mpi                train as one of N ranks: each reads its own input,\n"
        "                           --batch examples per step per rank, one loss over\n"
        "                           all N x --batch examples, gradients summed over the\n"
        "                           ranks; rank 0 alone writes --out and --log%s\n"
        "      --sync-bn            batch-norm statistics over every rank's segments\n"
        "                           (default: each rank's own, as PyTorch DDP)\n"
        "      --mpi-input MODE     shard: each rank's input is its own shard of the\n"
        "                           tracks [shard]; all: every rank reads the whole\n"
        "                           stream and keeps its slice of each global batch\n"
        "      --mpi-check N        compare the ranks' weights every N steps [100] (0:\n"
        "                           at checkpoints only); a difference stops training\n"
        "Output:\n"
        "  -o, --out FILE           the model file, with the optimizer state (required);\n"
        "                           written atomically at every checkpoint and at the end;\n"
        "                           a regular file (or a link to one), not an input\n"
        "  -c, --checkpoint-every N also write FILE every N steps [100] (0: only at the end)\n"
        "  -l, --log FILE           TSV, one row per step: step epoch loss acc lr seg_per_s\n"
        "                           elapsed_s\n"
        "      --snapshots DIR      also keep the checkpoint as it stands after each\n"
        "                           epoch, as DIR/epoch-NNNN.cmr (NNNN as --log numbers\n"
        "                           epochs, from 0): for validation curves (cmr-train\n"
        "                           --eval) or to go back to an earlier epoch\n"
        "      --snapshot-every N   only after every N-th epoch [1]\n"
        "Evaluation:\n"
        "      --eval MODEL         no training: MODEL in inference mode (batch norm's\n"
        "                           running statistics) on the input's examples, in\n"
        "                           batches as training would make them; prints a TSV\n"
        "                           line on stdout: examples batches loss acc chance\n"
        "  -q, --quiet              no progress, no warnings\n"
        "  -v, --verbose            more detail on stderr\n"
        "  -h, --help               this help\n"
        "\n"
        "Progress: a line updated every step when stderr is a terminal, else a line\n"
        "per epoch. A NaN or exploding loss (above --max-loss) or a NaN gradient\n"
        "stops training; the last checkpoint written is left as it was.\n"
        "Exit status: 0 ok, 1 bad input (kind, shape, non-finite values, truncated\n"
        "stream, a different stream on --resume), bad model or stats file, diverged\n"
        "training or a file that cannot be written, 2 usage.\n",
        train_mpi_built() ? "" : "\n                           (this build has no MPI: one rank only)");
    exit(code);
}

/* monotonic seconds */
static void fmt_duration(char *b, size_t n, double s)
{
    if (!(s >= 0) || s > 1e8)
        snprintf(b, n, "?");
    else if (s >= 3600)
        snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(b, n, "%ds", (int)s);
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h ^ 0xff; /* separator */
}

struct run {
    struct cmr_model *m;
    struct cmr_train *t;
    const char *out;
    long every;
    FILE *log;
    int tty;                    /* progress line on stderr */
    int64_t total;              /* examples the stream will have (tracks x epochs), 0 if unknown */
    double t0, t_last;          /* start of this process's training, end of the last step */
    double elapsed0;            /* elapsed_s of earlier runs (from the log, on --resume) */
    int64_t examples0;          /* examples consumed when this process started */
    int64_t segs_epoch;         /* segments trained in the epoch in progress (this process) */
    double t_epoch;             /* when this process's part of that epoch started */
    int64_t saved_step;         /* step of the last checkpoint written, -1 if none */
    const char *snap_dir;       /* --snapshots: a copy of the checkpoint after every */
    long snap_every;            /* snap_every-th epoch */
    int eval;                   /* --eval: sums of the evaluated batches */
    int64_t ev_examples, ev_batches, ev_correct, ev_total;
    double ev_loss, ev_chance;
    struct cmr_dist *d;         /* --mpi */
    int eof;                    /* the input ended */
};

/* the checkpoint to path (atomically; with --mpi, rank 0 writes the ranks'
 * averaged statistics); what = "" or the option's name for the message */
static void write_checkpoint(struct run *r, const char *path, const char *what)
{
    struct cmr_error err = {0};
    int rc = r->d ? cmr_dist_save(r->d, path, &err) : cmr_train_save(r->t, path, &err);
    if (rc)
        cli_die(CLI_EXIT_DATA, "%s%s", what, cmr_error_text(&err, rc));
}

static void save(struct run *r)
{
    write_checkpoint(r, r->out, "");
    r->saved_step = r->m->train.step;
    if (r->d)
        train_mpi_checkpoint(r->out, r->saved_step);
}

/* --snapshots: DIR/epoch-NNNN.cmr, the checkpoint as it stands after epoch
 * NNNN (0-based, as --log numbers them), written atomically as --out is */
static void snapshot(struct run *r, int64_t epoch)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/epoch-%04" PRId64 ".cmr", r->snap_dir, epoch) >= (int)sizeof path)
        cli_die(CLI_EXIT_USAGE, "--snapshots: the path %s is too long", r->snap_dir);
    write_checkpoint(r, path, "--snapshots: ");
}

static void progress_clear(struct run *r)
{
    if (r->tty)
        fprintf(stderr, "\r\033[K");
}

static void step(struct run *r)
{
    struct cmr_error err = {0};
    struct cmr_train_result s;
    int64_t label = r->t->epoch;
    if (r->eval) {
        int rc = cmr_train_eval(r->t, &s, &err);
        if (rc)
            cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
        if (s.total) {
            r->ev_examples += s.n;
            r->ev_batches++;
            r->ev_loss += s.loss * s.n;
            r->ev_correct += s.correct;
            r->ev_total += s.total;
            r->ev_chance += (double)s.total / s.n; /* 1/n per anchor and level */
        }
        return;
    }
    int rc = r->d ? cmr_dist_step(r->d, r->t->n < r->t->cfg.batch, r->eof, &s, NULL, &err)
                  : cmr_train_step(r->t, &s, &err);
    if (rc) {
        progress_clear(r);
        if (r->log)
            fflush(r->log);
        if (r->saved_step >= 0)
            cli_die(CLI_EXIT_DATA, "%s; stopped, the last checkpoint %s (step %" PRId64 ") is intact",
                    cmr_error_text(&err, rc), r->out, r->saved_step);
        cli_die(CLI_EXIT_DATA, "%s; stopped, no checkpoint was written", cmr_error_text(&err, rc));
    }
    if (!s.trained) {
        if (s.n)
            cli_info("epoch %" PRId64 ": dropped a last batch of %d example (a contrastive batch needs 2)",
                     label, s.n);
        return;
    }
    double t = cmr_now(), dt = t - r->t_last;
    r->t_last = t;
    int64_t segs = (int64_t)s.n * r->t->rows * (r->d ? r->d->size : 1);
    r->segs_epoch += segs;
    double elapsed = r->elapsed0 + (t - r->t0);
    int64_t stp = r->m->train.step;
    double acc = (double)s.correct / s.total;
    if (r->log) {
        fprintf(r->log, "%" PRId64 "\t%" PRId64 "\t%.9g\t%.6g\t%.9g\t%.4g\t%.3f\n", stp, label, s.loss, acc, s.lr,
                dt > 0 ? segs / dt : 0.0, elapsed);
        if (fflush(r->log))
            cli_die(CLI_EXIT_DATA, "--log: write failed: %s", strerror(errno));
    }
    if (r->tty) {
        double rate = (r->t->consumed - r->examples0) / (t - r->t0);
        char eta[32] = "";
        if (r->total > 0 && rate > 0) {
            char d[24];
            fmt_duration(d, sizeof d, (r->total - r->t->consumed) / rate);
            snprintf(eta, sizeof eta, "  ETA %s", d);
        }
        fprintf(stderr, "\r\033[Kstep %" PRId64 "  epoch %" PRId64 "  loss %.4f  acc %.3f  %.1f seg/s%s", stp,
                label, s.loss, acc, dt > 0 ? segs / dt : 0.0, eta);
        fflush(stderr);
    }
    if (r->every > 0 && stp % r->every == 0)
        save(r);
}

static void end_epoch(struct run *r)
{
    struct cmr_train_epoch e;
    if (r->eval) {
        if (r->t->in_epoch)
            r->m->train.epoch++;
        r->t->in_epoch = 0;
        return;
    }
    if (!cmr_train_end_epoch(r->t, &e))
        return;
    double t = cmr_now(), secs = t - r->t_epoch;
    progress_clear(r);
    if (!cli_quiet) {
        char msg[160] = "";
        if (e.lr_dropped)
            snprintf(msg, sizeof msg, "; no improvement for %d epochs, lr now %g", r->t->cfg.patience + 1, e.lr);
        if (e.examples)
            fprintf(stderr, "%s: epoch %" PRId64 ": loss %.4f acc %.3f, %" PRId64 " steps, %" PRId64
                    " examples, %.1f seg/s, lr %g%s\n", cli_prog, e.epoch, e.loss, e.acc, e.steps,
                    e.examples * (r->d ? r->d->size : 1), secs > 0 ? r->segs_epoch / secs : 0.0, e.lr, msg);
        else
            fprintf(stderr, "%s: epoch %" PRId64 ": nothing trained (%" PRId64 " example%s dropped)\n",
                    cli_prog, e.epoch, e.dropped, e.dropped == 1 ? "" : "s");
    }
    if (r->snap_dir && e.examples && (e.epoch + 1) % r->snap_every == 0)
        snapshot(r, e.epoch);
    r->segs_epoch = 0;
    r->t_epoch = cmr_now(); /* the snapshot's write is not the next epoch's time */
}

/* --resume: keeps the log's header and its rows up to `step` (rows a killed
 * run wrote after its last checkpoint are redone), returns the elapsed_s of
 * the last row kept; the file is opened for appending */
static FILE *log_reopen(const char *path, int64_t step, double *elapsed)
{
    *elapsed = 0;
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return NULL; /* new, or a FIFO or device: written from the start */
    FILE *in = fopen(path, "r");
    if (!in)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *keep = malloc(cap), line[1024];
    if (!keep)
        cli_die(CLI_EXIT_DATA, "out of memory");
    int first = 1;
    while (fgets(line, sizeof line, in)) {
        int ok = first;
        if (!first) {
            char *end;
            long long s = strtoll(line, &end, 10);
            ok = end != line && *end == '\t' && s <= step;
            if (ok) {
                /* elapsed_s is the 7th column */
                char *p = line;
                for (int c = 0; c < 6 && p; c++)
                    p = strchr(p + 1, '\t');
                if (p)
                    *elapsed = strtod(p + 1, NULL);
            }
        }
        first = 0;
        if (!ok)
            continue;
        size_t n = strlen(line);
        if (len + n + 1 > cap) {
            char *k = realloc(keep, cap = 2 * (len + n + 1));
            if (!k)
                cli_die(CLI_EXIT_DATA, "out of memory");
            keep = k;
        }
        memcpy(keep + len, line, n);
        len += n;
    }
    fclose(in);
    /* the rows kept replace the log whole (a kill here leaves the old one) */
    struct cmr_atomic a;
    struct cmr_error err = {0};
    if (cmr_atomic_open(&a, path, 0, &err))
        cli_die(CLI_EXIT_DATA, "--log: %s", err.msg);
    if (fwrite(keep, 1, len, a.f) != len) {
        cmr_atomic_abort(&a);
        cli_die(CLI_EXIT_DATA, "--log: cannot write %s: %s", path, strerror(errno));
    }
    if (cmr_atomic_commit(&a, &err))
        cli_die(CLI_EXIT_DATA, "--log: %s", err.msg);
    free(keep);
    FILE *f = fopen(path, "a");
    if (!f)
        cli_die(CLI_EXIT_DATA, "--log: cannot write %s: %s", path, strerror(errno));
    return f;
}

/* the command line */
struct opts {
    const char *kind_s, *stats_path, *init_path, *resume_path, *log_path, *eval_path, *input;
    enum cmr_model_kind kind;
    double width;
    long context, predict, epochs, threads;
    int have_seed, mpi;
    struct cmr_train_cfg tc;
    struct cmr_dist_cfg dc;
};

/* the options into o and r (--out, --checkpoint-every), with their usage checks */
static void parse_options(int argc, char **argv, struct opts *o, struct run *r)
{
    enum { O_CONTEXT = 256, O_PREDICT, O_STATS, O_INIT, O_RESUME, O_LR, O_PATIENCE, O_FACTOR, O_MAXLOSS, O_EVAL,
           O_MPI, O_SYNC_BN, O_MPI_INPUT, O_MPI_CHECK, O_SNAPSHOTS, O_SNAPSHOT_EVERY };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"width", required_argument, NULL, 'w'},
        {"context", required_argument, NULL, O_CONTEXT},
        {"predict", required_argument, NULL, O_PREDICT},
        {"seed", required_argument, NULL, 's'},
        {"stats", required_argument, NULL, O_STATS},
        {"init", required_argument, NULL, O_INIT},
        {"resume", required_argument, NULL, O_RESUME},
        {"eval", required_argument, NULL, O_EVAL},
        {"batch", required_argument, NULL, 'b'},
        {"lr", required_argument, NULL, O_LR},
        {"temperature", required_argument, NULL, 't'},
        {"patience", required_argument, NULL, O_PATIENCE},
        {"factor", required_argument, NULL, O_FACTOR},
        {"epochs", required_argument, NULL, 'e'},
        {"max-loss", required_argument, NULL, O_MAXLOSS},
        {"threads", required_argument, NULL, 'j'},
        {"out", required_argument, NULL, 'o'},
        {"checkpoint-every", required_argument, NULL, 'c'},
        {"log", required_argument, NULL, 'l'},
        {"snapshots", required_argument, NULL, O_SNAPSHOTS},
        {"snapshot-every", required_argument, NULL, O_SNAPSHOT_EVERY},
        {"mpi", no_argument, NULL, O_MPI},
        {"sync-bn", no_argument, NULL, O_SYNC_BN},
        {"mpi-input", required_argument, NULL, O_MPI_INPUT},
        {"mpi-check", required_argument, NULL, O_MPI_CHECK},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c, mpi_opts = 0;
    struct cmr_train_cfg *tc = &o->tc;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:w:s:b:t:e:j:o:c:l:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->kind_s = optarg; break;
        case 'w': o->width = cli_double("--width", optarg, 1e-3, 4); break;
        case O_CONTEXT: o->context = cli_long("--context", optarg, 1, 64); break;
        case O_PREDICT: o->predict = cli_long("--predict", optarg, 1, CMR_MODEL_MAX_K); break;
        case 's': tc->seed = cli_seed("--seed", optarg); o->have_seed = 1; break;
        case O_STATS: o->stats_path = optarg; break;
        case O_INIT: o->init_path = optarg; break;
        case O_RESUME: o->resume_path = optarg; break;
        case O_EVAL: o->eval_path = optarg; break;
        case 'b': tc->batch = (int)cli_long("--batch", optarg, 2, 4096); break;
        case O_LR: tc->lr = cli_double("--lr", optarg, 1e-12, 10); break;
        case 't': tc->tau = cli_double("--temperature", optarg, 1e-6, 1e6); break;
        case O_PATIENCE: tc->patience = (int)cli_long("--patience", optarg, 0, 1000000); break;
        case O_FACTOR: tc->factor = cli_double("--factor", optarg, 1e-6, 1); break;
        case 'e': o->epochs = cli_long("--epochs", optarg, 0, 1000000000); break;
        case O_MAXLOSS: tc->max_loss = cli_double("--max-loss", optarg, 1e-9, 1e30); break;
        case 'j': o->threads = cli_long("--threads", optarg, 1, 64); break;
        case 'o': r->out = optarg; break;
        case 'c': r->every = cli_long("--checkpoint-every", optarg, 0, 1000000000); break;
        case 'l': o->log_path = optarg; break;
        case O_SNAPSHOTS: r->snap_dir = optarg; break;
        case O_SNAPSHOT_EVERY: r->snap_every = cli_long("--snapshot-every", optarg, 1, 1000000000); break;
        case O_MPI: o->mpi = 1; break;
        case O_SYNC_BN: o->dc.sync_bn = mpi_opts = 1; break;
        case O_MPI_INPUT:
            if (!strcmp(optarg, "shard") || !strcmp(optarg, "all"))
                o->dc.input = optarg[0] == 'a' ? CMR_DIST_ALL : CMR_DIST_SHARD;
            else
                cli_usage_error("--mpi-input takes shard or all, got '%s'", optarg);
            mpi_opts = 1;
            break;
        case O_MPI_CHECK: o->dc.check_every = (int)cli_long("--mpi-check", optarg, 0, 1000000000); mpi_opts = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    if (o->eval_path && (r->out || o->init_path || o->resume_path || o->log_path || o->stats_path))
        cli_usage_error("--eval takes no --out, --init, --resume, --log or --stats (it only reads MODEL)");
    if (!r->out && !o->eval_path)
        cli_usage_error("--out FILE is required");
    o->input = cli_one_input(argc, argv);
    if (o->init_path && o->resume_path)
        cli_usage_error("--init and --resume exclude each other (a checkpoint carries its own weights)");
    if (mpi_opts && !o->mpi)
        cli_usage_error("--sync-bn, --mpi-input and --mpi-check go with --mpi");
    if (o->mpi && o->eval_path)
        cli_usage_error("--eval runs in one process: no --mpi");
    if (r->snap_every && !r->snap_dir)
        cli_usage_error("--snapshot-every goes with --snapshots DIR");
    if (r->snap_dir && o->eval_path)
        cli_usage_error("--eval writes nothing: no --snapshots");
    if (!r->snap_every)
        r->snap_every = 1;
    o->kind = CMR_MODEL_ENCODER;
    if (o->kind_s) {
        if (!strcmp(o->kind_s, "siamese"))
            o->kind = CMR_MODEL_ENCODER;
        else if (cmr_model_kind_parse(o->kind_s, &o->kind) != CMR_OK)
            cli_usage_error("--model takes siamese, multi or cpc, got '%s'", o->kind_s);
    }
}

/* the outputs, before any work: not an input (the checkpoint that --resume
 * continues excepted), writable, --out a regular file (checkpoints replace
 * it, --resume reads it); stale temporaries of a killed run go */
static void check_outputs(const struct opts *o, const struct run *r)
{
    struct cmr_error err = {0};
    if (o->eval_path || (r->d && r->d->rank != 0))
        return;
    const char *in = o->input ? o->input : "-";
    const char *ins_out[] = {in, o->stats_path, o->init_path, o->log_path};
    const char *ins_log[] = {in, o->stats_path, o->init_path, o->resume_path, r->out};
    if (cmr_output_check("--out", r->out, ins_out, 4, 0, &err) ||
        (o->log_path && cmr_output_check("--log", o->log_path, ins_log, 5, CMR_ATOMIC_STREAM, &err)))
        cli_die(err.code == CMR_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_DATA, "%s", err.msg);
    struct stat sb;
    if (r->snap_dir) {
        if (stat(r->snap_dir, &sb) != 0)
            cli_die(CLI_EXIT_DATA, "--snapshots %s: %s", r->snap_dir, strerror(errno));
        if (!S_ISDIR(sb.st_mode) || access(r->snap_dir, W_OK | X_OK) != 0)
            cli_die(CLI_EXIT_DATA, "--snapshots %s: not a writable directory", r->snap_dir);
    }
}

/* the input standardisation (--stats) */
static void read_stats(const struct opts *o, struct cmr_stats_file *sf)
{
    struct cmr_error err = {0};
    int rc = cmr_frontend_stats_load(o->stats_path, "mel", NULL, sf, &err);
    if (rc)
        cli_die(CLI_EXIT_DATA, "--stats: %s", cmr_error_text(&err, rc));
}

/* the model of --init, --resume or --eval, checked against the options */
static struct cmr_model *load_model(const char *from, struct opts *o, const struct cmr_stats_file *sf)
{
    struct cmr_error err = {0};
    struct cmr_model *m = cmr_model_load(from, &err);
    if (!m)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    const struct cmr_model_cfg *mc = &m->cfg;
    const char *opt = o->init_path ? "--init" : o->resume_path ? "--resume" : "--eval";
    if (o->kind_s && mc->kind != o->kind)
        cli_usage_error("--model %s, but %s %s is a %s model", o->kind_s, opt, from, cmr_model_kind_name(mc->kind));
    if (o->width > 0 && fabs(mc->width - o->width) > 1e-9)
        cli_usage_error("--width %g, but %s %s has width %g", o->width, opt, from, mc->width);
    if (mc->kind == CMR_MODEL_CPC && ((o->context != 4 && o->context != mc->context) ||
                                      (o->predict != 2 && o->predict != mc->k)))
        cli_usage_error("--context %ld --predict %ld, but %s %s has context %d, K %d", o->context, o->predict, opt,
                        from, mc->context, mc->k);
    if (o->stats_path) {
        if (o->resume_path && (m->cfg.mel_mean != (float)sf->mean || m->cfg.mel_std != (float)sf->std))
            cli_usage_error("--stats %s (mean %g, std %g) differs from the checkpoint's standardisation "
                            "(mean %g, std %g)", o->stats_path, sf->mean, sf->std, (double)m->cfg.mel_mean,
                            (double)m->cfg.mel_std);
        m->cfg.mel_mean = (float)sf->mean;
        m->cfg.mel_std = (float)sf->std;
    }
    if (o->init_path) {
        /* the weights and running statistics only: a fresh optimizer and schedule */
        free(m->adam_m);
        free(m->adam_v);
        m->adam_m = m->adam_v = NULL;
        m->train.step = m->train.epoch = m->train.adam_t = 0;
        m->train.best_loss = INFINITY;
        m->train.bad_epochs = 0;
    } else if (!o->have_seed) {
        const char *s = cmr_model_meta_get(m, "train.seed");
        if (s)
            o->tc.seed = strtoull(s, NULL, 10);
    }
    return m;
}

/* a new model of --model, --width, --context, --predict, initialised from --seed */
static struct cmr_model *new_model(const struct opts *o, const struct cmr_stats_file *sf)
{
    struct cmr_error err = {0};
    struct cmr_model *m;
    struct cmr_model_cfg mc = cmr_model_cfg_default(o->kind, o->width > 0 ? o->width : 1.0);
    if (cmr_model_cfg_check(&mc, NULL))
        cli_usage_error("--width takes a number in (0, 4], got %g", o->width);
    if (o->kind == CMR_MODEL_CPC) {
        mc.context = (int)o->context;
        mc.k = (int)o->predict;
    }
    if (o->stats_path) {
        mc.mel_mean = (float)sf->mean;
        mc.mel_std = (float)sf->std;
    }
    if (!(m = cmr_model_new(&mc, &err)))
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    cmr_model_init(m, o->tc.seed);
    return m;
}

/* the trainer of r->m: attached to the group (--mpi), restored (--resume),
 * its threads and buffers set up; returns the rows of an example */
static int setup_trainer(struct opts *o, struct run *r)
{
    struct cmr_error err = {0};
    struct cmr_model *m = r->m;
    int rows = m->cfg.kind == CMR_MODEL_CPC ? m->cfg.context + m->cfg.k : 2;
    if (!(r->t = cmr_train_new(m, &o->tc, rows, &err)))
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    if (r->d && cmr_dist_attach(r->d, m, r->t, &err))
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    if (o->resume_path && !r->d && cmr_dist_checkpoint_ranks(m) > 0)
        cli_usage_error("--resume: %s was written by cmr-train --mpi: resume it with --mpi (any number of "
                        "ranks, 1 included)", o->resume_path);
    if (o->resume_path) {
        int rc = r->d ? cmr_dist_restore(r->d, &err) : cmr_train_restore(r->t, &err);
        if (rc == CMR_EINVAL)
            cli_usage_error("%s (give the same options to --resume)", cmr_error_text(&err, rc));
        if (rc)
            cli_die(CLI_EXIT_DATA, "%s: %s", o->resume_path, cmr_error_text(&err, rc));
        r->saved_step = m->train.step;
    }
    if (r->d && cmr_dist_sync_model(r->d, &err))
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    if (cmr_nn_set_threads((int)o->threads) == CMR_EUNSUPPORTED && o->threads > 1)
        cli_warn("--threads %ld: the BLAS is not OpenBLAS, its own thread setting applies", o->threads);
    if (cmr_model_reserve(m, rows * o->tc.batch, !r->eval, &err))
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    cli_info("memory: parameters %.1f MB (x4 with gradients and Adam), activations for %d segments %.1f MB",
             m->n_params * 4 / 1e6, rows * o->tc.batch, cmr_model_act_bytes(m) / 1e6);
    if (r->eval)
        m->train.epoch = 0; /* --epochs counts the input's epochs here; nothing is saved */
    if (o->epochs > 0 && m->train.epoch >= o->epochs)
        cli_warn("the checkpoint has already done %" PRId64 " epochs (--epochs %ld)", m->train.epoch, o->epochs);
    return rows;
}

/* the stream's header: its size (cmr-pair's tracks and epochs) and what made it */
static void read_stream_header(const struct cmr_frame *hdr, const struct opts *o, struct run *r)
{
    struct cmr_model *m = r->m;
    long tracks = 0, hdr_epochs = 0;
    int standardized = 0;
    uint64_t h = 1469598103934665603ull;
    char chain[1024] = "";
    for (int i = 0; i + 1 < hdr->n_stages; i++) { /* the last stage is this program */
        const struct cmr_stage *st = &hdr->stages[i];
        h = fnv1a(h, st->program);
        if (strlen(chain) + strlen(st->program) + 4 < sizeof chain)
            snprintf(chain + strlen(chain), sizeof chain - strlen(chain), "%s%s", i ? " | " : "", st->program);
        for (int k = 0; k < st->n_params; k++) {
            h = fnv1a(fnv1a(h, st->params[k].key), st->params[k].val);
            if (!strcmp(st->program, "cmr-pair") && !strcmp(st->params[k].key, "tracks"))
                tracks = strtol(st->params[k].val, NULL, 10);
            if (!strcmp(st->program, "cmr-pair") && !strcmp(st->params[k].key, "epochs"))
                hdr_epochs = strtol(st->params[k].val, NULL, 10);
            if (!strcmp(st->program, "cmr-mel") && !strcmp(st->params[k].key, "standardize"))
                standardized = 1;
        }
    }
    if (standardized && o->stats_path)
        cli_usage_error("the input is already standardised (cmr-mel --norm): --stats would standardise it "
                        "twice; give the stats to cmr-train only");
    char hs[24];
    snprintf(hs, sizeof hs, "%016" PRIx64, h);
    if (o->resume_path) {
        const char *old = cmr_model_meta_get(m, "train.input_hash");
        if (old && strcmp(old, hs))
            cli_warn("--resume: the input's header differs from the checkpoint's (a different pipeline or "
                     "options?); its first %" PRId64 " examples are skipped all the same", r->t->consumed);
    }
    if (cmr_model_meta_set(m, "train.input", chain[0] ? chain : "-") ||
        cmr_model_meta_set(m, "train.input_hash", hs))
        cli_die(CLI_EXIT_DATA, "out of memory");
    long total_epochs = o->epochs > 0 && (hdr_epochs <= 0 || o->epochs < hdr_epochs) ? o->epochs : hdr_epochs;
    r->total = tracks > 0 && total_epochs > 0 ? (int64_t)tracks * total_epochs : 0;
}

/* --log: continued on --resume, else written from the start */
static void open_log(const struct opts *o, struct run *r)
{
    if (!o->log_path)
        return;
    if (o->resume_path)
        r->log = log_reopen(o->log_path, r->m->train.step, &r->elapsed0);
    if (!r->log) {
        if (!(r->log = fopen(o->log_path, "w")))
            cli_die(CLI_EXIT_DATA, "--log: cannot write %s: %s", o->log_path, strerror(errno));
        fprintf(r->log, "step\tepoch\tloss\tacc\tlr\tseg_per_s\telapsed_s\n");
        fflush(r->log);
    }
}

/* an example: the kind, shape and values the model takes */
static void check_example(const struct cmr_frame *fr, const struct cmr_model *m, int rows, const char *want_kind)
{
    if (strcmp(fr->kind, want_kind) != 0)
        cli_wrong_kind(fr, m->cfg.kind == CMR_MODEL_CPC ? "\"sequence\" (--model cpc)" : "\"pair\"");
    if (fr->ndim != 3 || fr->shape[0] != rows || fr->shape[1] != CMR_MODEL_T || fr->shape[2] != CMR_MODEL_F) {
        char sh[96] = "";
        for (int d = 0; d < fr->ndim; d++)
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", d ? ", " : "", (long long)fr->shape[d]);
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame has shape [%s], expected [%d, %d, %d]%s", fr->track,
                fr->kind, sh, rows, CMR_MODEL_T, CMR_MODEL_F,
                fr->ndim == 2 ? " (audio: run cmr-mel first)"
                : fr->ndim == 3 && m->cfg.kind == CMR_MODEL_CPC && fr->shape[0] != rows
                    ? " (cmr-pair --context and --predict must match cmr-train's)" : "");
    }
}

static void check_values(const struct cmr_frame *fr, int rows)
{
    size_t numel = (size_t)rows * CMR_MODEL_SEG;
    for (size_t i = 0; i < numel; i++)
        if (!isfinite(fr->data[i]))
            cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame holds %s (row %zu, frame %zu, bin %zu)", fr->track,
                    fr->kind, isnan(fr->data[i]) ? "NaN" : "an infinity", i / CMR_MODEL_SEG,
                    i % CMR_MODEL_SEG / CMR_MODEL_F, i % CMR_MODEL_F);
}

/* the training loop over the stream; returns the examples seen */
static int64_t train_stream(struct run *r, struct cmr_reader *rd, const struct opts *o, int rows)
{
    struct cmr_model *m = r->m;
    const char *want_kind = m->cfg.kind == CMR_MODEL_CPC ? "sequence" : "pair";
    struct cmr_frame fr;
    int64_t skip = r->t->consumed, seen = 0, upstream_errors = 0;
    int stopped = 0;
    cmr_frame_init(&fr);
    if (skip)
        cli_info("--resume: skipping the %" PRId64 " examples already trained on (step %" PRId64 ")", skip,
                 m->train.step);
    r->examples0 = r->t->consumed;
    r->t0 = r->t_last = r->t_epoch = cmr_now();
    while (!stopped && cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_END) {
            if (fr.error)
                upstream_errors++;
            continue;
        }
        if (fr.type != CMR_FRAME_TENSOR)
            continue; /* a later header (streams joined with cat) */
        check_example(&fr, m, rows, want_kind);
        seen++;
        if (skip > 0) {
            skip--;
            continue;
        }
        check_values(&fr, rows);
        double ep = 0;
        cmr_frame_info_get(&fr, "epoch", &ep);
        int64_t label = (int64_t)ep;
        if (r->d && !cmr_dist_admit(r->d, label))
            continue;
        if (cmr_train_epoch_changes(r->t, label)) {
            step(r);
            end_epoch(r);
        }
        if ((o->epochs > 0 && m->train.epoch >= o->epochs) || (r->d && r->d->stop)) {
            stopped = 1; /* the rest of the stream is not read */
            break;
        }
        cmr_train_begin_epoch(r->t, label);
        if (cmr_train_add(r->t, fr.data))
            step(r);
    }
    cmr_frame_free(&fr);
    if (skip > 0)
        cli_die(CLI_EXIT_DATA, "--resume: the input ended after %" PRId64 " examples, but %s was trained on %"
                PRId64 ": not the stream it was trained on", seen, o->resume_path, r->t->consumed);
    r->eof = 1;
    if (!stopped) {
        step(r);
        end_epoch(r);
    }
    if (seen == 0)
        cli_die(CLI_EXIT_DATA, "no \"%s\" frames in the input: nothing to train on", want_kind);
    if (upstream_errors)
        cli_warn("%" PRId64 " track%s ended with an error upstream", upstream_errors,
                 upstream_errors == 1 ? "" : "s");
    return seen;
}

/* the end: --eval's table, or the final model */
static void finish(struct run *r)
{
    struct cmr_model *m = r->m;
    if (r->eval) {
        if (!r->ev_batches)
            cli_die(CLI_EXIT_DATA, "--eval: no batch of >= 2 examples in the input");
        printf("examples\tbatches\tloss\tacc\tchance\n%" PRId64 "\t%" PRId64 "\t%.6g\t%.6g\t%.6g\n", r->ev_examples,
               r->ev_batches, r->ev_loss / r->ev_examples, (double)r->ev_correct / r->ev_total,
               r->ev_chance / r->ev_total);
        cli_finish_stdout();
        return;
    }
    save(r);
    progress_clear(r);
    if (!cli_quiet)
        fprintf(stderr, "%s: wrote %s: %" PRId64 " steps, %" PRId64 " epochs, lr %g\n", cli_prog, r->out,
                m->train.step, m->train.epoch, m->train.lr);
    if (r->d)
        train_mpi_finish(r->d);
    if (r->log && fclose(r->log))
        cli_die(CLI_EXIT_DATA, "--log: write failed: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    struct opts o = {.context = 4, .predict = 2, .threads = 1};
    struct run r;
    memset(&r, 0, sizeof r);
    r.every = 100;
    r.saved_step = -1;
    o.tc = cmr_train_cfg_default();
    o.dc = cmr_dist_cfg_default();
    cli_init("cmr-train");
    parse_options(argc, argv, &o, &r);

    /* set up: the group, the outputs, the model, the trainer, the stream, the log */
    if (o.mpi) {
        r.d = train_mpi_start(&argc, &argv, &o.dc);
        if (r.d->rank != 0)
            o.log_path = NULL; /* rank 0 alone writes */
    }
    check_outputs(&o, &r);
    struct cmr_stats_file sf = {0};
    if (o.stats_path)
        read_stats(&o, &sf);
    const char *from = o.init_path ? o.init_path : o.resume_path ? o.resume_path : o.eval_path;
    r.eval = o.eval_path != NULL;
    r.m = from ? load_model(from, &o, &sf) : new_model(&o, &sf);
    int rows = setup_trainer(&o, &r);
    struct cmr_reader *rd = cli_open_reader(o.input);
    struct cmr_frame hdr;
    cmr_frame_init(&hdr);
    cli_read_header(rd, &hdr);
    read_stream_header(&hdr, &o, &r);
    open_log(&o, &r);
    r.tty = !cli_quiet && !r.eval && isatty(STDERR_FILENO);
    cli_info("%s model, width %g, %zu parameters, batch %d, lr %g, temperature %g, standardisation (x - %g) / %g",
             cmr_model_kind_name(r.m->cfg.kind), r.m->cfg.width, r.m->n_params, o.tc.batch, r.m->train.lr,
             o.tc.tau, (double)r.m->cfg.mel_mean, (double)r.m->cfg.mel_std);

    /* run */
    train_stream(&r, rd, &o, rows);
    finish(&r);
    cmr_frame_free(&hdr);
    cmr_reader_free(rd);
    cmr_train_free(r.t);
    cmr_model_free(r.m);
    return CLI_EXIT_OK;
}
