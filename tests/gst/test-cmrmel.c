/* cmrmel under GstHarness: both caps layouts, the numbers of lib/dsp/mel.h
 * (what cmr-mel computes), timestamps and offsets, EOS, flushing, a seek in
 * a pipeline, timestamp gaps, property changes, the stats file, and the caps
 * it refuses. */
#include "config.h"

#include <math.h>
#include <unistd.h>

#include "gst-test.h"
#include "dsp/mel.h"
#include "dsp/stats.h"

#define RATE 16000
#define HOP 256
#define FRAME_NS(i) gst_util_uint64_scale ((i), (guint64) HOP * GST_SECOND, RATE)
#define MEL_CAPS_FMT "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=%s"

/* the frames lib/dsp/mel.h computes for the whole signal, as one track */
static float *
reference (const float *x, size_t n, struct cmr_mel_cfg cfg, size_t *n_frames)
{
  struct cmr_error err = { 0 };
  struct cmr_mel *m = cmr_mel_new (&cfg, &err);
  size_t cap = n / (size_t) cfg.hop + 4, got = 0, more = 0;
  float *out = malloc (cap * (size_t) cfg.n_mels * sizeof (float));

  cmr_mel_process (m, x, n, out, cap, &got, &err);
  cmr_mel_flush (m, out + got * (size_t) cfg.n_mels, cap - got, &more, &err);
  cmr_mel_free (m);
  *n_frames = got + more;
  return out;
}

/* pushes x in chunks of pseudo-random sizes with contiguous timestamps from t0 */
static GstFlowReturn
push_audio (GstHarness * h, const float *x, size_t n, GstClockTime t0, uint64_t seed)
{
  struct cmr_rng rng;
  GstFlowReturn ret = GST_FLOW_OK;
  cmr_rng_seed (&rng, seed);
  for (size_t i = 0; i < n && ret == GST_FLOW_OK;) {
    size_t k = 1 + cmr_rng_below (&rng, 3000);
    if (k > n - i)
      k = n - i;
    ret = gst_harness_push (h, float_buffer (x + i, k,
            t0 + gst_util_uint64_scale (i, GST_SECOND, RATE),
            gst_util_uint64_scale (k, GST_SECOND, RATE), GST_BUFFER_OFFSET_NONE));
    i += k;
  }
  return ret;
}

/* pulls every buffer, checking that timestamps and offsets follow on */
static void
pull_all (GstHarness * h, struct fvec *v, GstClockTime t0, int n_mels, int *contiguous,
    int *discont)
{
  GstBuffer *b;
  guint64 next = 0;
  *contiguous = 1;
  *discont = 0;
  while ((b = gst_harness_try_pull (h))) {
    size_t T = gst_buffer_get_size (b) / sizeof (float) / (size_t) n_mels;
    if (GST_BUFFER_OFFSET (b) != next || GST_BUFFER_OFFSET_END (b) != next + T
        || GST_BUFFER_PTS (b) != t0 + FRAME_NS (next)
        || GST_BUFFER_DURATION (b) != FRAME_NS (next + T) - FRAME_NS (next))
      *contiguous = 0;
    if (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT))
      (*discont)++;
    next += T;
    fvec_push_buffer (v, b);
    gst_buffer_unref (b);
  }
}

static void
test_layouts (void)
{
  const char *layouts[] = { "interleaved", "non-interleaved" };
  size_t n = RATE * 2 + 123, nf;
  float *x = make_audio (n, RATE, 1);
  float *want = reference (x, n, cmr_mel_cfg_default (), &nf);

  for (int l = 0; l < 2; l++) {
    GstHarness *h = gst_harness_new ("cmrmel");
    struct fvec got = { 0 };
    int contiguous, discont;
    char caps[160];
    GstClockTime t0 = 5 * GST_SECOND;

    snprintf (caps, sizeof caps, MEL_CAPS_FMT, layouts[l]);
    gst_harness_set_src_caps_str (h, caps);
    ok (push_audio (h, x, n, t0, 7) == GST_FLOW_OK, "%s: pushing 2 s of audio", layouts[l]);
    gst_harness_push_event (h, gst_event_new_eos ());
    GstStructure *s = out_structure (h);
    int n_mels = 0, rate = 0, hop = 0;
    ok (s && gst_structure_has_name (s, "application/x-cmr-mel")
        && gst_structure_get_int (s, "n-mels", &n_mels) && n_mels == 96
        && gst_structure_get_int (s, "rate", &rate) && rate == RATE
        && gst_structure_get_int (s, "hop", &hop) && hop == HOP,
        "%s: output caps application/x-cmr-mel, n-mels=96, rate=16000, hop=256", layouts[l]);
    if (s)
      gst_structure_free (s);
    pull_all (h, &got, t0, 96, &contiguous, &discont);
    ok (got.n == nf * 96, "%s: %zu frames out, the reference has %zu (with EOS's last ones)",
        layouts[l], got.n / 96, nf);
    ok (contiguous, "%s: PTS = t0 + i * hop / rate, offsets and durations follow on",
        layouts[l]);
    ok (discont == 1, "%s: only the first buffer is DISCONT", layouts[l]);
    if (got.n == nf * 96)
      check_close (layouts[l], got.x, want, got.n, 0, 0);
    free (got.x);
    gst_harness_teardown (h);
  }
  free (x);
  free (want);
}

static void
test_flush (void)
{
  GstHarness *h = gst_harness_new ("cmrmel");
  size_t n = RATE, nf;
  float *x = make_audio (n, RATE, 2);
  float *want = reference (x + 4000, n - 4000, cmr_mel_cfg_default (), &nf);
  struct fvec got = { 0 };
  int contiguous, discont;
  GstBuffer *b;

  gst_harness_set_src_caps_str (h, "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
  push_audio (h, x, 4000, 0, 3);
  while ((b = gst_harness_try_pull (h)))
    gst_buffer_unref (b);
  /* a flushing seek to 4000 samples: the element forgets what it holds */
  push_flush (h, gst_util_uint64_scale (4000, GST_SECOND, RATE));
  push_audio (h, x + 4000, n - 4000, gst_util_uint64_scale (4000, GST_SECOND, RATE), 4);
  gst_harness_push_event (h, gst_event_new_eos ());
  pull_all (h, &got, gst_util_uint64_scale (4000, GST_SECOND, RATE), 96, &contiguous, &discont);
  ok (got.n == nf * 96 && contiguous,
      "after a flush: offsets restart at 0, PTS from the new segment (%zu frames)", got.n / 96);
  ok (discont == 1, "after a flush: the first buffer is DISCONT");
  if (got.n == nf * 96)
    check_close ("after a flush, equal to a fresh front end", got.x, want, got.n, 0, 0);
  free (got.x);
  free (x);
  free (want);
  gst_harness_teardown (h);
}

static void
test_gap (void)
{
  GstHarness *h = gst_harness_new ("cmrmel");
  size_t n = 8000, na, nb;
  float *x = make_audio (2 * n, RATE, 5);
  float *wa = reference (x, n, cmr_mel_cfg_default (), &na);
  float *wb = reference (x + n, n, cmr_mel_cfg_default (), &nb);
  struct fvec got = { 0 };
  GstBuffer *b;
  int ok_ts = 1, discont = 0;
  guint64 k = 0;
  GstClockTime t1 = 3 * GST_SECOND;     /* a 2.5 s gap after the first 0.5 s */

  gst_harness_set_src_caps_str (h, "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
  push_audio (h, x, n, 0, 5);
  push_audio (h, x + n, n, t1, 6);
  gst_harness_push_event (h, gst_event_new_eos ());
  while ((b = gst_harness_try_pull (h))) {
    size_t T = gst_buffer_get_size (b) / sizeof (float) / 96;
    GstClockTime want = k < na ? FRAME_NS (k) : t1 + FRAME_NS (k - na);
    if (GST_BUFFER_PTS (b) != want || GST_BUFFER_OFFSET (b) != k)
      ok_ts = 0;
    if (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT)) {
      discont++;
      if (k != 0 && k != na)
        ok_ts = 0;
    }
    k += T;
    fvec_push_buffer (&got, b);
    gst_buffer_unref (b);
  }
  ok (got.n == (na + nb) * 96, "a timestamp gap ends the run: %zu + %zu frames, got %zu",
      na, nb, got.n / 96);
  ok (ok_ts && discont == 2, "the new run starts at the new PTS, flagged DISCONT; offsets go on");
  if (got.n == (na + nb) * 96) {
    check_close ("run before the gap", got.x, wa, na * 96, 0, 0);
    check_close ("run after the gap", got.x + na * 96, wb, nb * 96, 0, 0);
  }
  free (got.x);
  free (x);
  free (wa);
  free (wb);
  gst_harness_teardown (h);
}

static void
test_properties (void)
{
  GstHarness *h = gst_harness_new ("cmrmel");
  size_t n = RATE, na, nb;
  struct cmr_mel_cfg cfg = cmr_mel_cfg_default ();
  float *x = make_audio (2 * n, RATE, 9), *wa, *wb;
  struct fvec got = { 0 };
  GstBuffer *b;
  GstStructure *s;
  int n_mels = 0, hop = 0, discont = 0, ts_ok = 1;
  guint64 k = 0;

  wa = reference (x, n, cfg, &na);
  cfg = cmr_mel_cfg_htk ();
  cfg.n_mels = 64;
  cfg.n_fft = 1024;
  cfg.hop = 320;
  wb = reference (x + n, n, cfg, &nb);

  gst_harness_set_src_caps_str (h, "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
  push_audio (h, x, n, 0, 10);
  /* a change while running ends the run and rebuilds the front end */
  g_object_set (h->element, "htk", TRUE, "n-mels", 64, "n-fft", 1024, "hop", 320, NULL);
  push_audio (h, x + n, n, GST_SECOND, 11);
  gst_harness_push_event (h, gst_event_new_eos ());
  s = out_structure (h);
  if (s) {
    gst_structure_get_int (s, "n-mels", &n_mels);
    gst_structure_get_int (s, "hop", &hop);
  }
  ok (n_mels == 64 && hop == 320, "new caps after the change: n-mels=%d, hop=%d", n_mels, hop);
  if (s)
    gst_structure_free (s);
  while ((b = gst_harness_try_pull (h))) {
    size_t per = k < na ? 96 : 64;
    size_t T = gst_buffer_get_size (b) / sizeof (float) / per;
    GstClockTime want = k < na ? FRAME_NS (k)
        : GST_SECOND + gst_util_uint64_scale (k - na, 320 * GST_SECOND, RATE);
    if (GST_BUFFER_PTS (b) != want)
      ts_ok = 0;
    if (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT))
      discont++;
    k += T;
    fvec_push_buffer (&got, b);
    gst_buffer_unref (b);
  }
  ok (got.n == na * 96 + nb * 64, "old run drained (%zu frames), new run %zu frames: got %zu values",
      na, nb, got.n);
  ok (ts_ok && discont == 2, "the new run is DISCONT and timed with the new hop");
  if (got.n == na * 96 + nb * 64) {
    check_close ("before the change: default front end", got.x, wa, na * 96, 0, 0);
    check_close ("after the change: htk, 64 bands, n_fft 1024, hop 320", got.x + na * 96,
        wb, nb * 64, 0, 0);
  }
  free (got.x);
  free (x);
  free (wa);
  free (wb);
  gst_harness_teardown (h);
}

static void
test_stats (void)
{
  char path[] = "/tmp/cmr-gst-stats.XXXXXX", bad[] = "/tmp/cmr-gst-stats-bad.XXXXXX";
  char desc[CMR_STATS_TEXT_MAX];
  struct cmr_mel_cfg cfg = cmr_mel_cfg_default ();
  struct cmr_stats st;
  struct cmr_error err = { 0 };
  size_t n = RATE / 2, nf;
  float *x = make_audio (n, RATE, 12);
  float *want = reference (x, n, cfg, &nf);
  struct fvec got = { 0 };
  GstHarness *h;
  GstBuffer *b;
  int fd;

  close (mkstemp (path));
  close (fd = mkstemp (bad));
  cmr_stats_init (&st);
  cmr_stats_add (&st, want, nf * 96);
  cmr_mel_cfg_describe (&cfg, desc, sizeof desc);
  ok (cmr_stats_write (path, &st, "mel", desc, &err) == CMR_OK, "stats file written");
  cfg.n_mels = 40;
  cmr_mel_cfg_describe (&cfg, desc, sizeof desc);
  cmr_stats_write (bad, &st, "mel", desc, &err);

  h = gst_harness_new ("cmrmel");
  g_object_set (h->element, "norm", path, NULL);
  gst_harness_set_src_caps_str (h, "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
  push_audio (h, x, n, 0, 13);
  gst_harness_push_event (h, gst_event_new_eos ());
  while ((b = gst_harness_try_pull (h))) {
    fvec_push_buffer (&got, b);
    gst_buffer_unref (b);
  }
  cmr_stats_apply (want, nf * 96, cmr_stats_mean (&st), cmr_stats_std (&st));
  ok (got.n == nf * 96, "with stats: %zu frames", got.n / 96);
  if (got.n == nf * 96)
    check_close ("with stats: (x - mean) / std", got.x, want, got.n, 1e-6, 1e-6);
  gst_harness_teardown (h);

  /* a stats file of another front end is refused */
  h = gst_harness_new ("cmrmel");
  gst_harness_set_src_caps_str (h, "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
  ok (push_audio (h, x, 1000, 0, 14) == GST_FLOW_OK, "without norm: flows");
  g_object_set (h->element, "norm", bad, NULL);
  ok (push_audio (h, x + 1000, 1000, gst_util_uint64_scale (1000, GST_SECOND, RATE), 15)
      == GST_FLOW_ERROR, "a stats file computed with 40 bands: GST_FLOW_ERROR");
  g_object_set (h->element, "norm", "/nonexistent/stats", NULL);
  ok (push_audio (h, x + 2000, 1000, gst_util_uint64_scale (2000, GST_SECOND, RATE), 16)
      == GST_FLOW_ERROR, "a missing stats file: GST_FLOW_ERROR");
  gst_harness_teardown (h);
  unlink (path);
  unlink (bad);
  free (got.x);
  free (x);
  free (want);
}

static void
test_caps (void)
{
  GstElement *e = gst_element_factory_make ("cmrmel", NULL);
  GstPad *sink = gst_element_get_static_pad (e, "sink");
  static const struct
  {
    const char *caps;
    int accept;
  } cases[] = {
    {"audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved", 1},
    {"audio/x-raw,format=F32LE,rate=16000,channels=1,layout=non-interleaved", 1},
    {"audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved", 0},
    {"audio/x-raw,format=F32LE,rate=44100,channels=1,layout=interleaved", 0},
    {"audio/x-raw,format=F32LE,rate=16000,channels=2,layout=interleaved", 0},
    {"audio/x-raw,format=F64LE,rate=16000,channels=1,layout=interleaved", 0},
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstCaps *c = gst_caps_from_string (cases[i].caps);
    ok (gst_pad_query_accept_caps (sink, c) == cases[i].accept, "%s %s", cases[i].accept
        ? "accepts" : "refuses", cases[i].caps);
    gst_caps_unref (c);
  }
  gst_object_unref (sink);
  gst_object_unref (e);
}

/* ---- a seek in a real pipeline ---- */

struct seek_data {
  struct fvec in, out;
  GstClockTime first_pts;
  guint64 first_offset;
};

static GstPadProbeReturn
in_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user)
{
  struct seek_data *d = user;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    fvec_push_buffer (&d->in, GST_PAD_PROBE_INFO_BUFFER (info));
  } else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_FLUSH_STOP) {
    d->in.n = 0;
  }
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
out_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user)
{
  struct seek_data *d = user;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
    if (d->out.n == 0) {
      d->first_pts = GST_BUFFER_PTS (b);
      d->first_offset = GST_BUFFER_OFFSET (b);
    }
    fvec_push_buffer (&d->out, b);
  } else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_FLUSH_STOP) {
    d->out.n = 0;
  }
  return GST_PAD_PROBE_OK;
}

static void
test_seek (void)
{
  GError *e = NULL;
  GstElement *p = gst_parse_launch ("audiotestsrc wave=pink-noise samplesperbuffer=700 ! "
      "audio/x-raw,format=F32LE,rate=16000,channels=1 ! cmrmel name=m ! fakesink name=out "
      "sync=false", &e);
  struct seek_data d = { 0 };
  GstElement *m;
  GstPad *in, *out;
  GstMessage *msg;
  size_t nf = 0;
  float *want;

  if (!p) {
    ok (0, "seek pipeline: %s", e ? e->message : "?");
    return;
  }
  m = gst_bin_get_by_name (GST_BIN (p), "m");
  in = gst_element_get_static_pad (m, "sink");
  out = gst_element_get_static_pad (m, "src");
  gst_pad_add_probe (in, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_FLUSH, in_probe, &d,
      NULL);
  gst_pad_add_probe (out, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_FLUSH, out_probe,
      &d, NULL);
  gst_element_set_state (p, GST_STATE_PAUSED);
  gst_element_get_state (p, NULL, NULL, 10 * GST_SECOND);
  ok (gst_element_seek (p, 1.0, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE,
          GST_SEEK_TYPE_SET, GST_SECOND, GST_SEEK_TYPE_SET, 2500 * GST_MSECOND),
      "seek to [1 s, 2.5 s]");
  gst_element_get_state (p, NULL, NULL, 10 * GST_SECOND);
  gst_element_set_state (p, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (p), 20 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  ok (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS, "the seek segment plays to EOS");
  if (msg)
    gst_message_unref (msg);
  gst_element_set_state (p, GST_STATE_NULL);

  want = reference (d.in.x, d.in.n, cmr_mel_cfg_default (), &nf);
  ok (d.in.n == 24000, "1.5 s of audio went in after the seek (%zu samples)", d.in.n);
  ok (d.first_pts == GST_SECOND && d.first_offset == 0,
      "first frame after the seek: PTS %" GST_TIME_FORMAT ", offset %" G_GUINT64_FORMAT,
      GST_TIME_ARGS (d.first_pts), d.first_offset);
  ok (d.out.n == nf * 96, "frames after the seek: %zu, reference %zu", d.out.n / 96, nf);
  if (d.out.n == nf * 96)
    check_close ("after the seek, equal to the front end on the same samples", d.out.x, want,
        d.out.n, 0, 0);
  free (want);
  free (d.in.x);
  free (d.out.x);
  gst_object_unref (in);
  gst_object_unref (out);
  gst_object_unref (m);
  gst_object_unref (p);
}

/* bad properties: going to PAUSED fails with one error, before any data;
 * changed to bad values while running: one error, then quiet (issue 11 C) */
static void
test_bad_properties (void)
{
  static const struct
  {
    const char *what, *name;
    int n_fft;
    double f_min, f_max;
    const char *norm;
  } cases[] = {
    {"n-fft 513 (odd)", "n-fft", 513, 0, 8000, NULL},
    {"f-min above f-max", "f-min", 512, 5000, 4000, NULL},
    {"a missing stats file", "norm", 512, 0, 8000, "/nonexistent/stats"},
  };
  GstBus *bus = gst_bus_new ();
  float *x = make_audio (4000, RATE, 21);
  GstHarness *h;
  GstEvent *e;
  int eos = 0;

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstElement *m = gst_element_factory_make ("cmrmel", NULL);
    g_object_set (m, "n-fft", cases[i].n_fft, "f-min", cases[i].f_min, "f-max", cases[i].f_max,
        "norm", cases[i].norm, NULL);
    gst_element_set_bus (m, bus);
    ok (gst_element_set_state (m, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE,
        "%s: going to PAUSED fails", cases[i].what);
    ok (count_errors (bus) == 1, "%s: with one error message", cases[i].what);
    gst_element_set_state (m, GST_STATE_NULL);
    gst_object_unref (m);
  }

  h = gst_harness_new ("cmrmel");
  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps_str (h, "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
  ok (push_audio (h, x, 2000, 0, 22) == GST_FLOW_OK, "running: flows");
  g_object_set (h->element, "n-fft", 513, NULL);
  ok (push_audio (h, x + 2000, 1000, gst_util_uint64_scale (2000, GST_SECOND, RATE), 23)
      == GST_FLOW_ERROR, "n-fft 513 set while running: GST_FLOW_ERROR");
  ok (push_audio (h, x + 3000, 1000, gst_util_uint64_scale (3000, GST_SECOND, RATE), 24)
      == GST_FLOW_ERROR, "the next buffer: GST_FLOW_ERROR");
  gst_harness_push_event (h, gst_event_new_eos ());
  while ((e = gst_harness_try_pull_event (h))) {
    eos += GST_EVENT_TYPE (e) == GST_EVENT_EOS;
    gst_event_unref (e);
  }
  ok (count_errors (bus) == 1, "one error message for both buffers");
  ok (eos == 0, "and no EOS after it (a prerolling sink would wait on it)");
  gst_harness_teardown (h);
  gst_object_unref (bus);
  free (x);
}

int
main (int argc, char **argv)
{
  gst_test_init ("cmrmel", &argc, &argv);
  test_layouts ();
  test_flush ();
  test_gap ();
  test_properties ();
  test_stats ();
  test_bad_properties ();
  test_caps ();
  test_seek ();
  return tap_done ();
}
