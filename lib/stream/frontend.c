/* The front end's provenance parameters and stats-file check (see frontend.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "stream/frontend.h"

static const char *scale_name(enum cmr_mel_scale s) { return s == CMR_MEL_SCALE_HTK ? "htk" : "slaney"; }
static const char *norm_name(enum cmr_mel_norm n) { return n == CMR_MEL_NORM_SLANEY ? "slaney" : "none"; }

static const char *log_name(enum cmr_mel_log l)
{
    switch (l) {
    case CMR_MEL_LOG_1P: return "log10(1+10x)";
    case CMR_MEL_LOG_DB: return "10log10(max(x,1e-10))";
    default: return "none";
    }
}

int cmr_frontend_params(const struct cmr_mel_cfg *cfg, const char *norm_path, double mean, double std,
                        int (*put)(void *ctx, const char *key, const char *val), void *ctx)
{
    char v[9][64];
    snprintf(v[0], sizeof v[0], "%g", cfg->sample_rate);
    snprintf(v[1], sizeof v[1], "%d", cfg->n_fft);
    snprintf(v[2], sizeof v[2], "%d", cfg->hop);
    snprintf(v[3], sizeof v[3], "%d", cfg->n_mels);
    snprintf(v[4], sizeof v[4], "%g", cfg->f_min);
    snprintf(v[5], sizeof v[5], "%g", cfg->f_max);
    snprintf(v[6], sizeof v[6], "%d", cfg->power);
    snprintf(v[7], sizeof v[7], "mean=%.17g std=%.17g", mean, std);
    const char *kv[][2] = {
        {"sample_rate", v[0]}, {"n_fft", v[1]}, {"hop", v[2]}, {"window", "hann-periodic"},
        {"pad", "reflect"}, {"n_mels", v[3]}, {"f_min", v[4]}, {"f_max", v[5]}, {"power", v[6]},
        {"scale", scale_name(cfg->scale)}, {"norm", norm_name(cfg->norm)}, {"log", log_name(cfg->log)},
        {"standardize", v[7]}, {"stats_file", norm_path},
    };
    int n = norm_path ? 14 : 12, rc;
    for (int i = 0; i < n; i++)
        if ((rc = put(ctx, kv[i][0], kv[i][1])) != 0)
            return rc;
    return 0;
}

int cmr_frontend_stats_load(const char *path, const char *kind, const char *config, struct cmr_stats_file *out,
                            struct cmr_error *err)
{
    int rc = cmr_stats_read(path, out, err);
    if (rc != CMR_OK)
        return rc;
    if (out->kind[0] && kind && strcmp(out->kind, kind) != 0)
        return cmr_error_set(err, CMR_EKIND, "%s holds statistics of \"%s\" frames, not \"%s\"", path, out->kind,
                             kind);
    if (out->config[0] && config && strcmp(out->config, config) != 0)
        return cmr_error_set(err, CMR_EINVAL, "%s was computed for a different front end (%s); this one is (%s)",
                             path, out->config, config);
    return CMR_OK;
}
