/* cmrencode under GstHarness: the embeddings of lib/model.h on segments cut
 * as cmr-segment cuts them (back to back, overlapping, with gaps), their
 * timestamps, EOS with a partial segment (dropped; padded with pad=true),
 * flushing, discontinuities, property changes (model, hop, batch), the
 * MelCPC state, caps, a missing model and non-finite input. */
#include "config.h"

#include <math.h>
#include <unistd.h>

#include "gst-test.h"
#include "model.h"

#define T CMR_MODEL_T
#define F CMR_MODEL_F
#define RATE 16000
#define HOP 256
#define FRAME_NS(i) gst_util_uint64_scale ((i), (guint64) HOP * GST_SECOND, RATE)
#define MEL_CAPS "application/x-cmr-mel,n-mels=96,rate=16000,hop=256"
#define ATOL 1e-5
#define RTOL 1e-4

static char model_enc[] = "/tmp/cmr-gst-enc.XXXXXX";
static char model_multi[] = "/tmp/cmr-gst-multi.XXXXXX";
static char model_cpc[] = "/tmp/cmr-gst-cpc.XXXXXX";

static void
make_model (char *path, enum cmr_model_kind kind, uint64_t seed)
{
  struct cmr_model_cfg cfg;
  struct cmr_error err = { 0 };
  struct cmr_model *m;

  close (mkstemp (path));
  cfg = cmr_model_cfg_default (kind, 0.25);
  cfg.mel_mean = 0.2f;
  cfg.mel_std = 0.3f;
  m = cmr_model_new (&cfg, &err);
  cmr_model_init (m, seed);
  /* non-trivial running statistics, so that eval-mode batch norm matters */
  for (int l = 0; l < CMR_MODEL_BLOCKS; l++)
    for (int c = 0; c < cfg.widths[l]; c++) {
      m->s.mean[l][c] = 0.01f * (float) (c % 7);
      m->s.var[l][c] = 1.0f + 0.1f * (float) (c % 5);
    }
  if (!ok (cmr_model_save (m, path, 0, &err) == CMR_OK, "%s model written (width 0.25)",
          cmr_model_kind_name (kind)))
    diag ("%s", err.msg);
  cmr_model_free (m);
}

/* log-mel-like frames: smooth in time and frequency, positive */
static float *
make_frames (size_t n, uint64_t seed)
{
  struct cmr_rng rng;
  float *x = malloc (n * F * sizeof (float));
  cmr_rng_seed (&rng, seed);
  for (size_t t = 0; t < n; t++)
    for (int f = 0; f < F; f++)
      x[t * F + f] = (float) (0.5 + 0.3 * sin (0.05 * (double) t + 0.2 * f)
          + 0.1 * cmr_rng_uniform (&rng));
  return x;
}

/* what cmr-segment --hop hop [--pad] | cmr-encode give for frames [0, n) */
static float *
reference (const char *path, const float *x, size_t n, int hop, int pad, size_t *n_out,
    int *dim)
{
  struct cmr_error err = { 0 };
  struct cmr_model *m = cmr_model_load (path, &err);
  const struct cmr_model_cfg *c = &m->cfg;
  size_t starts[4096], k = 0;
  float *seg, *out, *z;
  size_t s;

  *dim = cmr_model_out_dim (c);
  for (s = 0; s + T <= n; s += (size_t) hop)
    starts[k++] = s;
  if (pad && s < n)
    starts[k++] = s;
  seg = calloc (CMR_MODEL_SEG, sizeof (float));
  out = malloc ((k ? k : 1) * (size_t) * dim * sizeof (float));
  z = malloc ((k ? k : 1) * (size_t) c->emb * sizeof (float));
  cmr_nn_set_threads (1);
  for (size_t i = 0; i < k; i++) {
    size_t have = MIN ((size_t) T, n - starts[i]);
    memset (seg, 0, CMR_MODEL_SEG * sizeof (float));
    memcpy (seg, x + starts[i] * F, have * F * sizeof (float));
    cmr_model_forward (m, seg, 1, 0, c->kind == CMR_MODEL_CPC ? z + i * c->emb
        : out + i * (size_t) * dim, &err);
  }
  if (c->kind == CMR_MODEL_CPC && k)
    cmr_model_gru_forward (m, z, NULL, 1, (int) k, 0, out, &err);
  free (seg);
  free (z);
  cmr_model_free (m);
  *n_out = k;
  return out;
}

static GstHarness *
harness (const char *props)
{
  char line[1024];
  GstHarness *h;
  snprintf (line, sizeof line, "cmrencode name=e %s", props);
  h = gst_harness_new_parse (line);
  gst_harness_set_src_caps_str (h, MEL_CAPS);
  return h;
}

static GstElement *
element (GstHarness * h)
{
  return gst_bin_get_by_name (GST_BIN (h->element), "e");
}

/* pushes frames [from, to) of x in chunks of pseudo-random sizes (1..max) */
static GstFlowReturn
push_frames (GstHarness * h, const float *x, size_t from, size_t to, GstClockTime t0,
    size_t max, uint64_t seed)
{
  struct cmr_rng rng;
  GstFlowReturn ret = GST_FLOW_OK;
  cmr_rng_seed (&rng, seed);
  for (size_t i = from; i < to && ret == GST_FLOW_OK;) {
    size_t k = 1 + cmr_rng_below (&rng, max);
    if (k > to - i)
      k = to - i;
    ret = gst_harness_push (h, float_buffer (x + i * F, k * F, t0 + FRAME_NS (i - from),
            FRAME_NS (k), i));
    i += k;
  }
  return ret;
}

struct pulled {
  struct fvec v;
  size_t n;
  GstClockTime pts[4096];
  guint64 offset[4096];
  int discont[4096];
};

static void
pull (GstHarness * h, struct pulled *p, int dim)
{
  GstBuffer *b;
  while ((b = gst_harness_try_pull (h))) {
    if (p->n < 4096) {
      p->pts[p->n] = GST_BUFFER_PTS (b);
      p->offset[p->n] = GST_BUFFER_OFFSET (b);
      p->discont[p->n] = GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT);
    }
    if (gst_buffer_get_size (b) != (size_t) dim * sizeof (float))
      diag ("buffer of %zu bytes, want %d floats", gst_buffer_get_size (b), dim);
    fvec_push_buffer (&p->v, b);
    p->n++;
    gst_buffer_unref (b);
  }
}

/* one stream of n frames through cmrencode with `props`; compares with the reference */
static void
run_case (const char *label, const char *path, const char *props, size_t n, int hop, int pad,
    size_t max_chunk)
{
  char all[512];
  float *x = make_frames (n, 3);
  size_t k;
  int dim, times = 1, caps_dim = 0;
  float *want = reference (path, x, n, hop, pad, &k, &dim);
  struct pulled *p = calloc (1, sizeof *p);
  GstHarness *h;
  GstClockTime t0 = 2 * GST_SECOND;
  GstStructure *s;

  snprintf (all, sizeof all, "model=%s %s", path, props);
  h = harness (all);
  ok (push_frames (h, x, 0, n, t0, max_chunk, 5) == GST_FLOW_OK, "%s: %zu frames pushed", label,
      n);
  gst_harness_push_event (h, gst_event_new_eos ());
  pull (h, p, dim);
  s = out_structure (h);
  if (s)
    gst_structure_get_int (s, "dim", &caps_dim);
  ok (s && gst_structure_has_name (s, "application/x-cmr-embedding") && caps_dim == dim,
      "%s: caps application/x-cmr-embedding, dim=%d", label, caps_dim);
  if (s)
    gst_structure_free (s);
  ok (p->n == k, "%s: %zu embeddings, cmr-segment | cmr-encode give %zu", label, p->n, k);
  for (size_t i = 0; i < p->n && i < k; i++) {
    size_t start = i * (size_t) hop;
    if (p->pts[i] != t0 + FRAME_NS (start) || p->offset[i] != start
        || p->discont[i] != (i == 0))
      times = 0;
  }
  ok (times, "%s: PTS = audio time of the segment start, OFFSET = its first frame", label);
  if (p->n == k)
    check_close (label, p->v.x, want, k * (size_t) dim, ATOL, RTOL);
  gst_harness_teardown (h);
  free (p->v.x);
  free (p);
  free (x);
  free (want);
}

static void
test_flush_and_discont (void)
{
  size_t n = 2 * T + 20, k;
  int dim;
  float *x = make_frames (n, 4);
  float *want = reference (model_enc, x + 100 * F, n - 100, T, 0, &k, &dim);
  struct pulled *p = calloc (1, sizeof *p);
  char props[256];
  GstHarness *h;

  snprintf (props, sizeof props, "model=%s", model_enc);
  h = harness (props);
  /* 100 frames, then a flush: they are forgotten */
  push_frames (h, x, 0, 100, 0, 40, 6);
  push_flush (h, 10 * GST_SECOND);
  push_frames (h, x, 100, n, 10 * GST_SECOND, 40, 7);
  gst_harness_push_event (h, gst_event_new_eos ());
  pull (h, p, dim);
  ok (p->n == k && k == 1, "flush: the frames before it are dropped (%zu embedding)", p->n);
  ok (p->n >= 1 && p->pts[0] == 10 * GST_SECOND && p->offset[0] == 100 && p->discont[0],
      "flush: the first segment starts at the new segment's time, DISCONT");
  if (p->n == k)
    check_close ("flush", p->v.x, want, k * (size_t) dim, ATOL, RTOL);
  gst_harness_teardown (h);
  free (want);

  /* a DISCONT buffer ends the run: the partial segment before it is dropped */
  free (p->v.x);
  memset (p, 0, sizeof *p);
  h = harness (props);
  push_frames (h, x, 0, 150, 0, 50, 8);
  {
    GstBuffer *b = float_buffer (x + 150 * F, 60 * F, 30 * GST_SECOND, FRAME_NS (60), 150);
    GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_DISCONT);
    gst_harness_push (h, b);
  }
  push_frames (h, x, 210, 150 + T + 10, 30 * GST_SECOND + FRAME_NS (60), 50, 9);
  gst_harness_push_event (h, gst_event_new_eos ());
  want = reference (model_enc, x + 150 * F, T + 10, T, 0, &k, &dim);
  pull (h, p, dim);
  ok (p->n == 1 && p->pts[0] == 30 * GST_SECOND && p->offset[0] == 150 && p->discont[0],
      "DISCONT: a new run starts at the buffer's PTS (%zu embedding)", p->n);
  if (p->n == k)
    check_close ("DISCONT", p->v.x, want, (size_t) dim, ATOL, RTOL);
  free (want);
  gst_harness_teardown (h);

  /* a timestamp gap over 40 ms ends the run too, with contiguous offsets */
  free (p->v.x);
  memset (p, 0, sizeof *p);
  h = harness (props);
  push_frames (h, x, 0, 150, 0, 50, 10);
  push_frames (h, x, 150, 150 + T, FRAME_NS (150) + 500 * GST_MSECOND, 50, 11);
  gst_harness_push_event (h, gst_event_new_eos ());
  pull (h, p, dim);
  ok (p->n == 1 && p->offset[0] == 150 && p->pts[0] == FRAME_NS (150) + 500 * GST_MSECOND,
      "a 500 ms timestamp gap: a new run (%zu embedding)", p->n);
  gst_harness_teardown (h);
  free (p->v.x);
  free (p);
  free (x);
}

static void
test_property_changes (void)
{
  size_t n = 3 * T, ka, kb;
  int da, db, caps_dim = 0;
  float *x = make_frames (2 * n, 12);
  float *wa = reference (model_enc, x, n, T, 0, &ka, &da);
  float *wb = reference (model_multi, x + n * F, n, 94, 0, &kb, &db);
  struct pulled *p = calloc (1, sizeof *p);
  char props[256];
  GstHarness *h;
  GstElement *e;
  GstStructure *s;
  GstBuffer *b;

  snprintf (props, sizeof props, "model=%s", model_enc);
  h = harness (props);
  e = element (h);
  push_frames (h, x, 0, n, 0, 70, 13);
  g_object_set (e, "model", model_multi, "hop", 94, NULL);
  push_frames (h, x, n, 2 * n, FRAME_NS (n), 70, 14);
  gst_harness_push_event (h, gst_event_new_eos ());
  s = out_structure (h);
  if (s) {
    gst_structure_get_int (s, "dim", &caps_dim);
    gst_structure_free (s);
  }
  ok (caps_dim == 640, "a new model: new caps, dim=%d (multi-level)", caps_dim);
  while ((b = gst_harness_try_pull (h))) {
    fvec_push_buffer (&p->v, b);
    p->n++;
    gst_buffer_unref (b);
  }
  ok (p->n == ka + kb, "model and hop changed mid-stream: %zu + %zu embeddings, got %zu", ka, kb,
      p->n);
  if (p->v.n == ka * (size_t) da + kb * (size_t) db) {
    check_close ("before the change: encoder, hop 188", p->v.x, wa, ka * (size_t) da, ATOL, RTOL);
    check_close ("after the change: multi-level, hop 94", p->v.x + ka * da, wb,
        kb * (size_t) db, ATOL, RTOL);
  }
  gst_object_unref (e);
  gst_harness_teardown (h);
  free (p->v.x);
  free (p);
  free (x);
  free (wa);
  free (wb);
}

static void
test_caps_and_errors (void)
{
  GstElement *e = gst_element_factory_make ("cmrencode", NULL);
  GstPad *sink = gst_element_get_static_pad (e, "sink");
  static const struct
  {
    const char *caps;
    int accept;
  } cases[] = {
    {"application/x-cmr-mel,n-mels=96,rate=16000,hop=256", 1},
    {"application/x-cmr-mel,n-mels=96,rate=22050,hop=512", 1},
    {"application/x-cmr-mel,n-mels=64,rate=16000,hop=256", 0},
    {"audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved", 0},
  };
  char props[256];
  GstHarness *h;
  GstBus *bus = gst_bus_new ();

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstCaps *c = gst_caps_from_string (cases[i].caps);
    ok (gst_pad_query_accept_caps (sink, c) == cases[i].accept, "%s %s",
        cases[i].accept ? "accepts" : "refuses", cases[i].caps);
    gst_caps_unref (c);
  }
  gst_element_set_bus (e, bus);
  ok (gst_element_set_state (e, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE,
      "no model property: going to PAUSED fails");
  ok (count_errors (bus) == 1, "no model property: one error message");
  g_object_set (e, "model", "/nonexistent/model.cmr", NULL);
  ok (gst_element_set_state (e, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE,
      "a missing model file: going to PAUSED fails");
  ok (count_errors (bus) == 1, "a missing model file: one error message");
  g_object_set (e, "model", CMR_GST_REGISTRY_DIR "/../../config.status", NULL);
  ok (gst_element_set_state (e, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE,
      "a file that is not a model: going to PAUSED fails");
  ok (count_errors (bus) == 1, "a file that is not a model: one error message");
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (e);

  snprintf (props, sizeof props, "model=%s", model_enc);
  h = harness (props);
  {
    float *x = make_frames (10, 1);
    x[3 * F + 5] = NAN;
    ok (gst_harness_push (h, float_buffer (x, 10 * F, 0, FRAME_NS (10), 0)) == GST_FLOW_ERROR,
        "a NaN in the input: GST_FLOW_ERROR");
    free (x);
  }
  gst_harness_teardown (h);
  h = harness (props);
  {
    float *x = make_frames (10, 1);
    ok (gst_harness_push (h, float_buffer (x, 10 * F - 3, 0, FRAME_NS (10), 0)) ==
        GST_FLOW_ERROR, "a buffer that is not whole frames: GST_FLOW_ERROR");
    free (x);
  }
  gst_harness_teardown (h);

  /* a missing model set while running: one error, then quiet (issue 11 C) */
  h = harness (props);
  gst_element_set_bus (h->element, bus);
  {
    float *x = make_frames (200, 2);
    GstEvent *ev;
    GstElement *enc = element (h);
    int eos = 0;

    ok (gst_harness_push (h, float_buffer (x, 100 * F, 0, FRAME_NS (100), 0)) == GST_FLOW_OK,
        "running: flows");
    g_object_set (enc, "model", "/nonexistent/model.cmr", NULL);
    gst_object_unref (enc);
    ok (gst_harness_push (h, float_buffer (x + 100 * F, 50 * F, FRAME_NS (100), FRAME_NS (50),
                100)) == GST_FLOW_ERROR, "a missing model set while running: GST_FLOW_ERROR");
    ok (gst_harness_push (h, float_buffer (x + 150 * F, 50 * F, FRAME_NS (150), FRAME_NS (50),
                150)) == GST_FLOW_ERROR, "the next buffer: GST_FLOW_ERROR");
    gst_harness_push_event (h, gst_event_new_eos ());
    while ((ev = gst_harness_try_pull_event (h))) {
      eos += GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
      gst_event_unref (ev);
    }
    ok (count_errors (bus) == 1, "one error message for both buffers");
    ok (eos == 0, "and no EOS after it");
    free (x);
  }
  gst_harness_teardown (h);
  gst_object_unref (bus);
}

int
main (int argc, char **argv)
{
  char buf[128];

  gst_test_init ("cmrencode", &argc, &argv);
  make_model (model_enc, CMR_MODEL_ENCODER, 1);
  make_model (model_multi, CMR_MODEL_MULTI, 2);
  make_model (model_cpc, CMR_MODEL_CPC, 3);

  run_case ("encoder, hop 188", model_enc, "", 3 * T + 50, T, 0, 100);
  run_case ("encoder, one frame per buffer", model_enc, "", 2 * T + 1, T, 0, 1);
  run_case ("encoder, hop 94 (overlapping)", model_enc, "hop=94", 3 * T + 50, 94, 0, 300);
  run_case ("encoder, hop 200 (gaps)", model_enc, "hop=200", 3 * T + 50, 200, 0, 60);
  run_case ("encoder, EOS drops a partial segment", model_enc, "", 2 * T + 187, T, 0, 100);
  run_case ("encoder, pad=true encodes it zero-padded", model_enc, "pad=true", 2 * T + 187, T, 1,
      100);
  run_case ("encoder, shorter than one segment, pad=true", model_enc, "pad=true", 50, T, 1, 20);
  run_case ("encoder, batch=1", model_enc, "batch=1", 3 * T, T, 0, 1000);
  snprintf (buf, sizeof buf, "batch=2 threads=2");
  run_case ("encoder, batch=2 threads=2", model_enc, buf, 5 * T, T, 0, 1000);
  run_case ("multi-level", model_multi, "", 2 * T + 3, T, 0, 100);
  run_case ("MelCPC: GRU state carried across buffers", model_cpc, "hop=94", 4 * T, 94, 0, 150);
  test_flush_and_discont ();
  test_property_changes ();
  test_caps_and_errors ();
  unlink (model_enc);
  unlink (model_multi);
  unlink (model_cpc);
  return tap_done ();
}
