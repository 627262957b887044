/* cmrencode: a cmr model over log-mel frames, one embedding per segment.
 *
 * SECTION:element-cmrencode
 * @title: cmrencode
 * @see_also: cmrmel, cmrframes
 *
 * Cuts the log-mel frames of cmrmel (or cmrframesdec) into segments of 188
 * frames (3 s at 16 kHz, hop 256), a new segment every `hop` frames (188:
 * back to back; less: overlapping windows), and runs the model file given by
 * `model` (cmr-model, cmr-train) on each, exactly as `cmr-segment --hop H |
 * cmr-encode` do. It pushes one buffer per segment:
 * `application/x-cmr-embedding, dim=D` with D = 128 (encoder), 640
 * (multi-level) or 256 (MelCPC: the GRU output, its state carried from
 * segment to segment and reset at every discontinuity). The buffer's PTS is
 * the audio time of the segment's first frame, its duration the segment's
 * span, its OFFSET the stream index of that first frame.
 *
 * Segments are sent as soon as their last frame arrives; the segments one
 * input buffer completes go through the model together, at most `batch` at
 * a time. A DISCONT buffer, a gap in the frame offsets, or a timestamp gap
 * over 40 ms ends the current run of frames: a partial last segment is
 * dropped, or with `pad` zero-padded and sent, as at EOS (cmr-segment
 * --pad). A flush forgets the frames held. Changing `model`, `hop` or
 * `batch` while running ends the run the same way and reloads.
 *
 * The element adds the segment's span to the latency it reports.
 *
 * The cutting, the batching and the GRU carry are lib/stream/segmenter.h and
 * lib/stream/encoder.h, the code cmr-segment and cmr-encode run; this file
 * maps buffers, events and properties onto them and time-stamps the output.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -q filesrc location=song.ogg ! decodebin ! audioconvert ! audioresample ! \
 *     cmrmel ! cmrencode model=m.cmr hop=94 ! cmrframes ! fdsink fd=1 | cmr-summarize
 * ]| summarises the embeddings of half-overlapping 3 s windows of song.ogg.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <string.h>

#include "gstcmr.h"
#include "gstcmrencode.h"
#include "stream/encoder.h"
#include "stream/segmenter.h"
#include "model_default.h"

GST_DEBUG_CATEGORY_STATIC (gst_cmr_encode_debug);
#define GST_CAT_DEFAULT gst_cmr_encode_debug

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_HOP,
  PROP_BATCH,
  PROP_THREADS,
  PROP_PAD
};

#define T CMR_MODEL_T
#define F CMR_MODEL_F
#define DEFAULT_HOP T
#define DEFAULT_BATCH 16

#define SINK_CAPS \
  GST_CMR_MEL_MEDIA ", n-mels=(int)96, rate=(int)[1, MAX], hop=(int)[1, MAX]"
#define SRC_CAPS \
  GST_CMR_EMBEDDING_MEDIA ", dim=(int)[1, MAX], rate=(int)[1, MAX], hop=(int)[1, MAX]"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (SINK_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (SRC_CAPS));

G_DEFINE_TYPE (GstCmrEncode, gst_cmr_encode, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (cmrencode, "cmrencode", GST_RANK_NONE, GST_TYPE_CMR_ENCODE);

static void gst_cmr_encode_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_cmr_encode_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_cmr_encode_finalize (GObject * object);
static GstStateChangeReturn gst_cmr_encode_change_state (GstElement * element,
    GstStateChange transition);
static gboolean gst_cmr_encode_sink_event (GstPad * pad, GstObject * parent, GstEvent * event);
static gboolean gst_cmr_encode_src_query (GstPad * pad, GstObject * parent, GstQuery * query);
static GstFlowReturn gst_cmr_encode_chain (GstPad * pad, GstObject * parent, GstBuffer * buf);

static void
gst_cmr_encode_class_init (GstCmrEncodeClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_PLAYING;

  GST_DEBUG_CATEGORY_INIT (gst_cmr_encode_debug, "cmrencode", 0, "cmr segment encoder");

  gobject_class->set_property = gst_cmr_encode_set_property;
  gobject_class->get_property = gst_cmr_encode_get_property;
  gobject_class->finalize = gst_cmr_encode_finalize;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model file",
          "cmr model file (cmr-model init/import, cmr-train); unset: $CMR_MODEL, else "
          "the installed cmr-base", NULL, flags));
  g_object_class_install_property (gobject_class, PROP_HOP,
      g_param_spec_int ("hop", "Segment hop",
          "Mel frames from one segment's start to the next (188: back to back; "
          "less: overlapping windows)", 1, 1000000, DEFAULT_HOP, flags));
  g_object_class_install_property (gobject_class, PROP_BATCH,
      g_param_spec_int ("batch", "Batch",
          "Most segments per forward pass, when one input buffer completes several",
          1, 4096, DEFAULT_BATCH, flags));
  g_object_class_install_property (gobject_class, PROP_THREADS,
      g_param_spec_int ("threads", "Threads",
          "Threads of the forward pass (1: single-threaded BLAS; more split a batch)",
          1, 64, 1, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_PAD,
      g_param_spec_boolean ("pad", "Pad",
          "At EOS or a discontinuity, zero-pad and encode a last, partial segment "
          "instead of dropping it (cmr-segment --pad)", FALSE, flags));

  gst_element_class_set_static_metadata (element_class,
      "cmr segment encoder", "Filter/Analyzer/Audio",
      "Runs a cmr model (CNN encoder, multi-level encoder or MelCPC) on 3 s log-mel "
      "segments: one embedding per segment, as cmr-segment | cmr-encode", "cmr");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_cmr_encode_change_state);
}

static void
gst_cmr_encode_init (GstCmrEncode * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_cmr_encode_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_cmr_encode_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_cmr_encode_src_query));
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  g_mutex_init (&self->lock);
  self->hop = DEFAULT_HOP;
  self->batch = DEFAULT_BATCH;
  self->threads = 1;
  self->t0 = GST_CLOCK_TIME_NONE;
}

static void
free_model (GstCmrEncode * self)
{
  g_clear_pointer (&self->enc, cmr_encoder_free);
  g_clear_pointer (&self->seg, cmr_segmenter_free);
  cmr_model_free (self->model);
  self->model = NULL;
  g_clear_pointer (&self->starts, g_free);
}

static void
gst_cmr_encode_finalize (GObject * object)
{
  GstCmrEncode *self = GST_CMR_ENCODE (object);

  free_model (self);
  g_free (self->model_path);
  if (self->pending_stage)
    gst_event_unref (self->pending_stage);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (gst_cmr_encode_parent_class)->finalize (object);
}

static void
gst_cmr_encode_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstCmrEncode *self = GST_CMR_ENCODE (object);

  g_mutex_lock (&self->lock);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      self->reload = TRUE;
      break;
    case PROP_HOP:
      self->hop = g_value_get_int (value);
      self->reload = TRUE;
      break;
    case PROP_BATCH:
      self->batch = g_value_get_int (value);
      self->reload = TRUE;
      break;
    case PROP_THREADS:
      self->threads = g_value_get_int (value);
      self->reload = TRUE;
      break;
    case PROP_PAD:
      self->pad = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  g_mutex_unlock (&self->lock);
}

static void
gst_cmr_encode_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstCmrEncode *self = GST_CMR_ENCODE (object);

  g_mutex_lock (&self->lock);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_HOP:
      g_value_set_int (value, self->hop);
      break;
    case PROP_BATCH:
      g_value_set_int (value, self->batch);
      break;
    case PROP_THREADS:
      g_value_set_int (value, self->threads);
      break;
    case PROP_PAD:
      g_value_set_boolean (value, self->pad);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  g_mutex_unlock (&self->lock);
}

/* ---- the model ---- */

/* segments of T frames every hop frames, as cmr-segment --hop cuts them */
static struct cmr_segmenter *
new_segmenter (gint hop, struct cmr_error *err)
{
  struct cmr_segmenter_cfg cfg;

  cfg = cmr_segmenter_cfg_default ();
  cfg.frames = T;
  cfg.hop = hop;
  return cmr_segmenter_new (&cfg, err);
}

/* loads the model the properties name, and the segmenter and the encoder
 * (lib/stream/) that run it */
static gboolean
load_model (GstCmrEncode * self)
{
  struct cmr_error err = { 0 };
  struct cmr_model *m;
  gchar *path;
  gint batch, threads, hop;

  g_mutex_lock (&self->lock);
  path = g_strdup (self->model_path);
  batch = self->batch;
  threads = self->threads;
  hop = self->hop;
  self->reload = FALSE;
  g_mutex_unlock (&self->lock);

  free_model (self);
  {
    const gchar *p = cmr_model_default_path (path, &err);      /* unset: cmr-base */
    if (!p) {
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No model file"),
          ("cmrencode: %s", err.msg));
      g_free (path);
      return FALSE;
    }
    if (p != path) {
      g_free (path);
      path = g_strdup (p);
    }
  }
  m = cmr_model_load (path, &err);
  if (!m) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("Cannot load the model %s", path),
        ("cmrencode: %s", cmr_error_text (&err, err.code)));
    g_free (path);
    return FALSE;
  }
  if (m->cfg.n_time != T || m->cfg.n_freq != F) {
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("Unsupported model %s", path),
        ("cmrencode: the model takes %d x %d segments, this element cuts %d x %d",
            m->cfg.n_time, m->cfg.n_freq, T, F));
    cmr_model_free (m);
    g_free (path);
    return FALSE;
  }
  self->model = m;
  self->dim = cmr_model_out_dim (&m->cfg);
  if (!(self->enc = cmr_encoder_new (m, batch, threads, &err))
      || !(self->seg = new_segmenter (hop, &err))
      || !(self->starts = g_try_malloc_n (batch, sizeof (guint64)))) {
    free_model (self);
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("cmrencode: %s",
            err.code ? cmr_error_text (&err, err.code) : "out of memory"));
    g_free (path);
    return FALSE;
  }
  {
    gchar dim[16], width[32], step[32], shop[16], frames[16], bsz[16];
    g_snprintf (dim, sizeof dim, "%d", self->dim);
    g_snprintf (width, sizeof width, "%g", m->cfg.width);
    g_snprintf (step, sizeof step, "%" G_GINT64_FORMAT, (gint64) m->train.step);
    g_snprintf (shop, sizeof shop, "%d", hop);
    g_snprintf (frames, sizeof frames, "%d", T);
    g_snprintf (bsz, sizeof bsz, "%d", batch);
    if (self->pending_stage)
      gst_event_unref (self->pending_stage);
    self->pending_stage = gst_cmr_stage_event_new ("cmrencode", "model", path,
        "kind", cmr_model_kind_name (m->cfg.kind), "width", width, "dim", dim, "step", step,
        "frames", frames, "segment_hop", shop, "batch", bsz, NULL);
  }
  GST_INFO_OBJECT (self, "%s: %s model, width %g, %d-d output", path,
      cmr_model_kind_name (m->cfg.kind), m->cfg.width, self->dim);
  g_free (path);
  return TRUE;
}

static gboolean
push_caps (GstCmrEncode * self)
{
  GstCaps *caps, *cur;
  gboolean ok = TRUE;

  if (!self->model || self->rate <= 0)
    return TRUE;
  caps = gst_caps_new_simple (GST_CMR_EMBEDDING_MEDIA, "dim", G_TYPE_INT, self->dim,
      "rate", G_TYPE_INT, self->rate, "hop", G_TYPE_INT, self->mel_hop, NULL);
  cur = gst_pad_get_current_caps (self->srcpad);
  if (!cur || !gst_caps_is_equal (cur, caps))
    ok = gst_pad_push_event (self->srcpad, gst_event_new_caps (caps));
  if (cur)
    gst_caps_unref (cur);
  gst_caps_unref (caps);
  return ok;
}

/* runs the queued segments through the model and pushes their embeddings */
static GstFlowReturn
run_queued (GstCmrEncode * self)
{
  struct cmr_error err = { 0 };
  const gfloat *out;
  gint n;
  GstFlowReturn ret = GST_FLOW_OK;

  if (cmr_encoder_queued (self->enc) == 0)
    return GST_FLOW_OK;
  if (cmr_encoder_run (self->enc, &out, &n, &err) != CMR_OK) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("cmrencode: %s",
            cmr_error_text (&err, err.code)));
    return GST_FLOW_ERROR;
  }
  if (self->pending_stage) {
    gst_pad_push_event (self->srcpad, self->pending_stage);
    self->pending_stage = NULL;
  }
  for (gint i = 0; i < n && ret == GST_FLOW_OK; i++) {
    gsize bytes = (gsize) self->dim * sizeof (gfloat);
    GstBuffer *buf = gst_buffer_new_allocate (NULL, bytes, NULL);
    guint64 start = self->starts[i];

    gst_buffer_fill (buf, 0, out + (gsize) i * self->dim, bytes);
    if (GST_CLOCK_TIME_IS_VALID (self->t0)) {
      GstClockTime a = gst_cmr_time_of (start - self->t0_frame, self->mel_hop, self->rate);
      GstClockTime b = gst_cmr_time_of (start - self->t0_frame + T, self->mel_hop, self->rate);
      GST_BUFFER_PTS (buf) = self->t0 + a;
      GST_BUFFER_DURATION (buf) = b - a;
    }
    GST_BUFFER_OFFSET (buf) = start;
    GST_BUFFER_OFFSET_END (buf) = start + T;
    if (self->discont) {
      GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
      self->discont = FALSE;
    }
    ret = gst_pad_push (self->srcpad, buf);
  }
  return ret;
}

/* queues the segments the segmenter has ready, running every full batch */
static GstFlowReturn
queue_ready (GstCmrEncode * self)
{
  GstFlowReturn ret = GST_FLOW_OK;
  struct cmr_segment u;

  while (ret == GST_FLOW_OK && cmr_segmenter_ready (self->seg)) {
    cmr_segmenter_next (self->seg, cmr_encoder_slot (self->enc), &u);
    self->starts[cmr_encoder_queued (self->enc)] = (guint64) u.start;
    if (cmr_encoder_commit (self->enc) == cmr_encoder_batch (self->enc))
      ret = run_queued (self);
  }
  return ret;
}

/* TRUE while a run of frames is open */
static gboolean
in_run (GstCmrEncode * self)
{
  return self->seg && cmr_segmenter_next_row (self->seg) >= 0;
}

/* forgets the run: frames, queued segments, the GRU state */
static void
forget_run (GstCmrEncode * self)
{
  if (self->seg)
    cmr_segmenter_reset (self->seg);
  if (self->enc)
    cmr_encoder_reset (self->enc);
  self->t0 = GST_CLOCK_TIME_NONE;
  self->discont = TRUE;
}

/* the end of a run of frames: the partial segment (pad) or nothing */
static GstFlowReturn
end_run (GstCmrEncode * self)
{
  GstFlowReturn ret = GST_FLOW_OK;
  gboolean pad;

  g_mutex_lock (&self->lock);
  pad = self->pad;
  g_mutex_unlock (&self->lock);
  if (self->model && in_run (self)) {
    cmr_segmenter_set_pad (self->seg, pad);
    cmr_segmenter_drain (self->seg);
    ret = queue_ready (self);
    if (ret == GST_FLOW_OK)
      ret = run_queued (self);
  }
  forget_run (self);
  return ret;
}

/* checks a buffer of mel frames: whole frames, finite values */
static gboolean
check_frames (GstCmrEncode * self, const GstMapInfo * map)
{
  gsize n;

  if (map->size % (F * sizeof (gfloat)) != 0) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, (NULL),
        ("cmrencode: a buffer of %" G_GSIZE_FORMAT " bytes is not a whole number of "
            "%d-bin mel frames", map->size, F));
    return FALSE;
  }
  n = map->size / sizeof (gfloat);
  for (gsize i = 0; i < n; i++) {
    if (!isfinite (((const gfloat *) map->data)[i])) {
      GST_ELEMENT_ERROR (self, STREAM, FORMAT, (NULL),
          ("cmrencode: mel frame %" G_GSIZE_FORMAT " of a buffer holds NaN or an infinity",
              i / F));
      return FALSE;
    }
  }
  return TRUE;
}

/* where a buffer's frames sit in the stream; a jump ends the run */
static GstFlowReturn
place (GstCmrEncode * self, GstBuffer * buf, guint64 * offset)
{
  GstClockTime pts = GST_BUFFER_PTS (buf);
  GstFlowReturn ret = GST_FLOW_OK;

  *offset = GST_BUFFER_OFFSET_IS_VALID (buf) ? GST_BUFFER_OFFSET (buf) : self->next_offset;
  if (in_run (self)) {
    gboolean jump = GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT)
        || (gint64) * offset != cmr_segmenter_next_row (self->seg);
    if (!jump && GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (self->t0)) {
      GstClockTime want = self->t0 + gst_cmr_time_of (*offset - self->t0_frame, self->mel_hop,
          self->rate);
      jump = ABS (GST_CLOCK_DIFF (want, pts)) > (GstClockTimeDiff) GST_CMR_DISCONT_TOLERANCE;
    }
    if (jump) {
      GST_DEBUG_OBJECT (self, "discontinuity at frame %" G_GUINT64_FORMAT, *offset);
      ret = end_run (self);
    }
  }
  if (!in_run (self)) {
    self->t0 = pts;
    self->t0_frame = *offset;
  }
  return ret;
}

/* the model again when a property changed; then caps */
static GstFlowReturn
ensure_model (GstCmrEncode * self)
{
  GstFlowReturn ret;
  gboolean reload;

  g_mutex_lock (&self->lock);
  reload = self->reload || !self->model;
  g_mutex_unlock (&self->lock);
  if (!reload)
    return GST_FLOW_OK;
  if ((ret = end_run (self)) != GST_FLOW_OK)
    return ret;
  if (!load_model (self) || !push_caps (self))
    return GST_FLOW_ERROR;
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_cmr_encode_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstCmrEncode *self = GST_CMR_ENCODE (parent);
  struct cmr_error err = { 0 };
  GstFlowReturn ret = GST_FLOW_OK;
  GstMapInfo map;
  guint64 offset;
  gsize frames;

  if (self->failed) {           /* the error is out already: one per stream */
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;
  }
  if ((ret = ensure_model (self)) != GST_FLOW_OK)
    goto done;
  if (self->rate <= 0) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("cmrencode: data before caps"));
    ret = GST_FLOW_NOT_NEGOTIATED;
    goto done;
  }
  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    ret = GST_FLOW_ERROR;
    goto done;
  }
  if (!check_frames (self, &map)) {
    gst_buffer_unmap (buf, &map);
    ret = GST_FLOW_ERROR;
    goto done;
  }
  if ((ret = place (self, buf, &offset)) != GST_FLOW_OK) {
    gst_buffer_unmap (buf, &map);
    goto done;
  }

  /* the segments these frames complete go through the model now */
  frames = map.size / (F * sizeof (gfloat));
  if (cmr_segmenter_push (self->seg, (const gfloat *) map.data, (gint64) frames, F, (gint64) offset,
          NULL, &err) != CMR_OK) {
    gst_buffer_unmap (buf, &map);
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("cmrencode: %s", err.msg));
    ret = GST_FLOW_ERROR;
    goto done;
  }
  gst_buffer_unmap (buf, &map);
  self->next_offset = offset + frames;
  ret = queue_ready (self);
  if (ret == GST_FLOW_OK)
    ret = run_queued (self);

done:
  gst_buffer_unref (buf);
  /* the error is out (ours, or downstream's): stay quiet from now on */
  if (ret == GST_FLOW_ERROR || ret == GST_FLOW_NOT_NEGOTIATED)
    self->failed = TRUE;
  return ret;
}

static gboolean
gst_cmr_encode_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstCmrEncode *self = GST_CMR_ENCODE (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      GstStructure *s;
      gint n_mels = 0, rate = 0, hop = 0;
      gboolean ok;

      gst_event_parse_caps (event, &caps);
      s = gst_caps_get_structure (caps, 0);
      ok = gst_structure_get_int (s, "n-mels", &n_mels) && gst_structure_get_int (s, "rate", &rate)
          && gst_structure_get_int (s, "hop", &hop) && n_mels == F && rate > 0 && hop > 0;
      gst_event_unref (event);
      if (!ok || self->failed)
        return FALSE;
      if (in_run (self) && (rate != self->rate || hop != self->mel_hop))
        end_run (self);
      self->rate = rate;
      self->mel_hop = hop;
      if (!self->model && !load_model (self)) {
        self->failed = TRUE;
        return FALSE;
      }
      return push_caps (self);
    }
    case GST_EVENT_FLUSH_STOP:
      forget_run (self);
      return gst_pad_event_default (pad, parent, event);
    case GST_EVENT_EOS:
      if (self->failed || end_run (self) == GST_FLOW_ERROR) {
        /* no EOS after an error: a sink still prerolling would wait on it */
        self->failed = TRUE;
        gst_event_unref (event);
        return FALSE;
      }
      if (self->pending_stage) {
        gst_pad_push_event (self->srcpad, self->pending_stage);
        self->pending_stage = NULL;
      }
      return gst_pad_event_default (pad, parent, event);
    case GST_EVENT_CUSTOM_DOWNSTREAM_STICKY:
      /* a new track (cmrframesdec) starts a new run */
      if (gst_cmr_event_is_track (event))
        end_run (self);
      return gst_pad_event_default (pad, parent, event);
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

static gboolean
gst_cmr_encode_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstCmrEncode *self = GST_CMR_ENCODE (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY:{
      gboolean live;
      GstClockTime min, max, ours;

      if (!gst_pad_peer_query (self->sinkpad, query))
        return FALSE;
      gst_query_parse_latency (query, &live, &min, &max);
      /* a segment goes out when its last frame arrives */
      ours = self->rate > 0 ? gst_cmr_time_of (T, self->mel_hop, self->rate)
          : gst_cmr_time_of (T, 256, 16000);
      min += ours;
      if (GST_CLOCK_TIME_IS_VALID (max))
        max += ours;
      gst_query_set_latency (query, live, min, max);
      return TRUE;
    }
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

static GstStateChangeReturn
gst_cmr_encode_change_state (GstElement * element, GstStateChange transition)
{
  GstCmrEncode *self = GST_CMR_ENCODE (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      /* fail early, once, on a bad model file */
      self->failed = FALSE;
      if (!load_model (self))
        return GST_STATE_CHANGE_FAILURE;
      self->rate = 0;
      self->discont = TRUE;
      break;
    default:
      break;
  }
  ret = GST_ELEMENT_CLASS (gst_cmr_encode_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    free_model (self);
  return ret;
}
