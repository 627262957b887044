/* cmr-train --mpi: see train-mpi.h */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_MPI
#include <mpi.h>
#endif

#include "cli.h"
#include "train-mpi.h"

static char stop_msg[1024];
static size_t stop_len;

int train_mpi_built(void)
{
#ifdef HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

/* async-signal-safe: a message prepared beforehand, then _exit */
static void on_signal(int sig)
{
    if (stop_len && write(STDERR_FILENO, stop_msg, stop_len) < 0)
        stop_len = 0;
    _exit(128 + sig);
}

void train_mpi_checkpoint(const char *path, int64_t step)
{
    if (!stop_len)
        return;
    if (path)
        snprintf(stop_msg, sizeof stop_msg,
                 "%s: stopped by a signal (mpirun stops every rank when one fails); the last checkpoint %s "
                 "(step %" PRId64 ") is intact: run again with --resume %s, with any number of ranks\n",
                 cli_prog, path, step, path);
    else
        snprintf(stop_msg, sizeof stop_msg,
                 "%s: stopped by a signal (mpirun stops every rank when one fails), before any checkpoint\n",
                 cli_prog);
    stop_len = strlen(stop_msg);
}

#ifdef HAVE_MPI
/* a rank that exits with an error (cli_die) after MPI_Init and before
 * MPI_Finalize takes the job down with it, instead of leaving the others
 * waiting in a collective */
static void abort_on_error(int status, void *arg)
{
    (void)arg;
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (status != 0 && init && !fin)
        MPI_Abort(MPI_COMM_WORLD, status);
}
#endif

struct cmr_dist *train_mpi_start(int *argc, char ***argv, const struct cmr_dist_cfg *cfg)
{
    struct cmr_error err = {0};
    struct cmr_dist *d;
#ifdef HAVE_MPI
    on_exit(abort_on_error, NULL);
    d = cmr_dist_mpi_new(argc, argv, cfg, &err);
#else
    (void)argc, (void)argv;
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1)
            cli_usage_error("--mpi: this cmr-train was built without MPI (configure found no Open MPI), "
                            "but the launcher started %s ranks (%s)", v, vars[i]);
    }
    d = cmr_dist_new(0, 1, cmr_dist_local_ops(), NULL, cfg, &err);
#endif
    if (!d)
        cli_die(CLI_EXIT_DATA, "--mpi: %s", cmr_error_text(&err, err.code));
    if (d->rank != 0) {
        static char prog[48];
        snprintf(prog, sizeof prog, "%s: rank %d", cli_prog, d->rank);
        cli_prog = prog;
        cli_quiet = 1;
        cli_verbose = 0;
    } else {
        stop_len = 1;
        train_mpi_checkpoint(NULL, 0);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return d;
}

void train_mpi_finish(struct cmr_dist *d)
{
    if (d->rank == 0 && d->n_steps > 0) {
        double k = 1e3 / (double)d->n_steps;
        cli_info("mpi: %d rank%s, %" PRId64 " steps; per step: gradient all-reduce %.2f ms (%.1f MB), "
                 "embedding gather %.3f ms, batch-norm sync %.2f ms; checksums %.1f ms in all",
                 d->size, d->size == 1 ? "" : "s", d->n_steps, d->t_grads * k,
                 d->m ? d->m->n_params * 4.0 / 1e6 : 0.0, d->t_embed * k, d->t_bn * k, d->t_check * 1e3);
    }
    stop_len = 0;
#ifdef HAVE_MPI
    cmr_dist_mpi_finalize(d);
#else
    cmr_dist_free(d);
#endif
}
