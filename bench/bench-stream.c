/* bench-stream: real-time factor and latency of the GStreamer chain
 *   filesrc ! decodebin ! audioconvert ! audioresample ! cmrmel ! cmrencode ! fakesink
 * (run it through bench/stream, which pins it to one core and makes the inputs).
 *
 *   bench-stream [--model M | --width W] [--batch B] [--hop H] [--live] FILE
 *
 * Without --model a fresh encoder at width W (1: the paper's) is written to a
 * temporary file. As fast as it goes (default), it reports seconds of audio
 * per wall-clock second and per CPU second (the real-time factor), and per
 * segment the processing latency: from the moment the last audio sample the
 * segment needs (frame s+187 is centred on sample (s+187)*256 and needs 256
 * more) enters cmrmel to the moment its embedding leaves cmrencode. With
 * --live the decoded audio is paced at real time (identity sync=true), as a
 * live source would deliver it, and the latency is the end-to-end one a live
 * listener sees, less the source's own buffering.
 *
 * Needs GST_PLUGIN_PATH to reach the cmr plugin when it is not installed.
 */
#include "config.h"

#include <getopt.h>
#include <gst/gst.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "model.h"

#define HOP 256
#define T CMR_MODEL_T

struct arrival {
    guint64 end;  /* samples in after this buffer */
    gint64 t;     /* when it arrived, us (monotonic) */
};

struct bench {
    struct arrival *in;
    size_t n_in, cap_in;
    guint64 samples;
    double *lat;
    size_t n_lat, cap_lat;
    GMutex lock;
};

static GstPadProbeReturn
in_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user)
{
    struct bench *b = user;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    g_mutex_lock(&b->lock);
    b->samples += gst_buffer_get_size(buf) / sizeof(float);
    if (b->n_in == b->cap_in) {
        b->cap_in = b->cap_in ? 2 * b->cap_in : 4096;
        b->in = g_realloc_n(b->in, b->cap_in, sizeof *b->in);
    }
    b->in[b->n_in].end = b->samples;
    b->in[b->n_in].t = g_get_monotonic_time();
    b->n_in++;
    g_mutex_unlock(&b->lock);
    return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
out_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user)
{
    struct bench *b = user;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    gint64 now = g_get_monotonic_time();
    guint64 need = (GST_BUFFER_OFFSET(buf) + T - 1) * HOP + HOP;
    g_mutex_lock(&b->lock);
    /* the first input buffer that brought sample `need` (or the last one: EOS padding) */
    size_t lo = 0, hi = b->n_in;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (b->in[mid].end >= need)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo == b->n_in && b->n_in)
        lo = b->n_in - 1;
    if (b->n_in) {
        if (b->n_lat == b->cap_lat) {
            b->cap_lat = b->cap_lat ? 2 * b->cap_lat : 256;
            b->lat = g_realloc_n(b->lat, b->cap_lat, sizeof *b->lat);
        }
        b->lat[b->n_lat++] = (double)(now - b->in[lo].t) / 1e6;
    }
    g_mutex_unlock(&b->lock);
    return GST_PAD_PROBE_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static void usage(FILE *f, int code)
{
    fprintf(f, "Usage: bench-stream [--model M | --width W] [--batch B] [--hop H] [--live] FILE\n"
               "Real-time factor and per-segment latency of decode ! resample ! cmrmel ! cmrencode.\n"
               "  --model M   model file [a fresh encoder at --width]\n"
               "  --width W   width of the fresh encoder [1: the paper's]\n"
               "  --batch B   cmrencode batch [16]\n"
               "  --hop H     cmrencode hop in frames [188]\n"
               "  --live      pace the audio at real time (a live source)\n");
    exit(code);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"width", required_argument, NULL, 'w'},
        {"batch", required_argument, NULL, 'b'}, {"hop", required_argument, NULL, 'H'},
        {"live", no_argument, NULL, 'l'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *model = NULL, *file;
    double width = 1.0;
    int batch = 16, hop = T, live = 0, c;
    char tmp_model[] = "/tmp/bench-stream-model.XXXXXX";
    struct bench b;

    gst_init(&argc, &argv);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'w': width = atof(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'H': hop = atoi(optarg); break;
        case 'l': live = 1; break;
        case 'h': usage(stdout, 0); break;
        default: usage(stderr, 2);
        }
    }
    if (optind != argc - 1 || width <= 0 || width > 4 || batch < 1 || hop < 1)
        usage(stderr, 2);
    file = argv[optind];

    struct cmr_error err = {0};
    struct cmr_model *m;
    if (!model) {
        struct cmr_model_cfg cfg = cmr_model_cfg_default(CMR_MODEL_ENCODER, width);
        int fd = mkstemp(tmp_model);
        if (fd < 0 || !(m = cmr_model_new(&cfg, &err))) {
            fprintf(stderr, "bench-stream: cannot make a model: %s\n", err.msg);
            return 1;
        }
        close(fd);
        cmr_model_init(m, 1);
        if (cmr_model_save(m, tmp_model, 0, &err) != CMR_OK) {
            fprintf(stderr, "bench-stream: %s\n", err.msg);
            return 1;
        }
        cmr_model_free(m);
        model = tmp_model;
    }
    if (!(m = cmr_model_load(model, &err))) {
        fprintf(stderr, "bench-stream: %s\n", err.msg);
        return 1;
    }
    printf("model: %s, %s, width %g, %zu parameters, %d-d output\n", model == tmp_model ? "fresh" : model,
           cmr_model_kind_name(m->cfg.kind), m->cfg.width, m->n_params, cmr_model_out_dim(&m->cfg));
    cmr_model_free(m);

    gchar *desc = g_strdup_printf(
        "filesrc location=\"%s\" ! decodebin ! audioconvert ! audioresample ! "
        "audio/x-raw,format=F32LE,rate=16000,channels=1 ! %s cmrmel name=mel ! "
        "cmrencode name=enc model=\"%s\" batch=%d hop=%d threads=1 ! fakesink sync=false",
        file, live ? "identity sync=true !" : "", model, batch, hop);
    GError *gerr = NULL;
    GstElement *p = gst_parse_launch(desc, &gerr);
    g_free(desc);
    if (!p) {
        fprintf(stderr, "bench-stream: %s\n", gerr ? gerr->message : "cannot build the pipeline");
        return 1;
    }
    memset(&b, 0, sizeof b);
    g_mutex_init(&b.lock);
    GstElement *mel = gst_bin_get_by_name(GST_BIN(p), "mel");
    GstElement *enc = gst_bin_get_by_name(GST_BIN(p), "enc");
    GstPad *in = gst_element_get_static_pad(mel, "sink");
    GstPad *out = gst_element_get_static_pad(enc, "src");
    gst_pad_add_probe(in, GST_PAD_PROBE_TYPE_BUFFER, in_probe, &b, NULL);
    gst_pad_add_probe(out, GST_PAD_PROBE_TYPE_BUFFER, out_probe, &b, NULL);

    double cpu0 = cpu_seconds();
    gint64 t0 = g_get_monotonic_time();
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstMessage *msg = gst_bus_timed_pop_filtered(GST_ELEMENT_BUS(p), GST_CLOCK_TIME_NONE,
                                                 GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    gint64 t_end = g_get_monotonic_time();
    double wall = (double)(t_end - t0) / 1e6;
    double cpu = cpu_seconds() - cpu0;
    int rc = 0;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        GError *e;
        gchar *dbg;
        gst_message_parse_error(msg, &e, &dbg);
        fprintf(stderr, "bench-stream: %s (%s)\n", e->message, dbg ? dbg : "");
        rc = 1;
    }
    gst_message_unref(msg);
    gst_element_set_state(p, GST_STATE_NULL);

    if (rc == 0) {
        double audio = (double)b.samples / 16000.0;
        printf("input: %s, %.1f s of audio, %zu segments (hop %d frames), batch %d%s\n", file, audio,
               b.n_lat, hop, batch, live ? ", paced at real time" : "");
        double stream = b.n_in ? (double)(t_end - b.in[0].t) / 1e6 : wall;
        double load[3] = {0, 0, 0};
        getloadavg(load, 3);
        printf("time: wall %.2f s (%.2f s from the first audio buffer, after start-up and the\n"
               "      model load), cpu %.2f s (all threads of the process); load average %.1f\n",
               wall, stream, cpu, load[0]);
        printf("real-time factor: %.1fx (audio s per wall s from the first buffer), %.1fx (per cpu s)\n",
               audio / stream, audio / cpu);
        if (b.n_lat) {
            qsort(b.lat, b.n_lat, sizeof *b.lat, cmp_double);
            printf("latency per segment, last sample in -> embedding out: median %.3f s, "
                   "p95 %.3f s, max %.3f s\n",
                   b.lat[b.n_lat / 2], b.lat[(size_t)floor(0.95 * (double)(b.n_lat - 1))],
                   b.lat[b.n_lat - 1]);
        }
    }
    if (model == tmp_model)
        unlink(tmp_model);
    gst_object_unref(in);
    gst_object_unref(out);
    gst_object_unref(mel);
    gst_object_unref(enc);
    gst_object_unref(p);
    g_free(b.in);
    g_free(b.lat);
    return rc;
}
