/* cmrmel: cmr's log-mel front end as a GStreamer element.
 *
 * SECTION:element-cmrmel
 * @title: cmrmel
 *
 * Turns 16 kHz mono float audio into log-mel frames with the same code, and
 * so the same numbers, as the cmr-mel filter (lib/dsp/mel.h: periodic Hann
 * 512, hop 256, centred reflect-padded frames, 96 Slaney mel bands on the
 * magnitude spectrum, log10(1 + 10 x) by default). The properties are
 * cmr-mel's options, with the same defaults and ranges: n-mels, n-fft, hop,
 * f-min, f-max, htk, and norm, a stats file (written by cmr-mel --stats)
 * whose mean and std standardise every value: (x - mean) / std.
 *
 * Output caps: `application/x-cmr-mel, n-mels=(int)F, rate=(int)16000,
 * hop=(int)H`. Each buffer holds T x F float32 values (T frames, row-major),
 * the frames that the input made ready; its PTS is the audio time of its
 * first frame (frame i of a run is centred on sample i * hop), its OFFSET the
 * index of that frame since the stream started. A timestamp gap of more than
 * 40 ms in the input ends the current run (its last frames come out, padded
 * as at the end of a track) and starts a new one, flagged DISCONT. A flush
 * starts again from frame 0; EOS emits the last frames.
 *
 * Changing a property while running ends the current run the same way and
 * rebuilds the front end (new caps if n-mels or hop changed). The output
 * chunking differs from cmr-mel's (buffers follow the input's); the values
 * do not.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=song.ogg ! decodebin ! audioconvert ! audioresample ! \
 *     cmrmel ! cmrframes ! fdsink fd=1 | cmr-dump
 * ]| prints one line per buffer of log-mel frames of song.ogg.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include <gst/audio/audio.h>

#include "gstcmr.h"
#include "gstcmrmel.h"
#include "dsp/stats.h"
#include "dsp/stft.h"
#include "stream/frontend.h"

GST_DEBUG_CATEGORY_STATIC (gst_cmr_mel_debug);
#define GST_CAT_DEFAULT gst_cmr_mel_debug

enum
{
  PROP_0,
  PROP_N_MELS,
  PROP_N_FFT,
  PROP_HOP,
  PROP_F_MIN,
  PROP_F_MAX,
  PROP_HTK,
  PROP_NORM
};

#define SAMPLE_RATE 16000

#define ALLOWED_CAPS \
  "audio/x-raw, format=(string)" GST_AUDIO_NE (F32) ", rate=(int)16000, " \
  "channels=(int)1, layout=(string){ interleaved, non-interleaved }"
#define SRC_CAPS \
  GST_CMR_MEL_MEDIA ", n-mels=(int)[1, 1024], rate=(int)16000, hop=(int)[1, 65536]"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (ALLOWED_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (SRC_CAPS));

G_DEFINE_TYPE (GstCmrMel, gst_cmr_mel, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (cmrmel, "cmrmel", GST_RANK_NONE, GST_TYPE_CMR_MEL);

static void gst_cmr_mel_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_cmr_mel_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_cmr_mel_finalize (GObject * object);
static GstStateChangeReturn gst_cmr_mel_change_state (GstElement * element,
    GstStateChange transition);
static gboolean gst_cmr_mel_sink_event (GstPad * pad, GstObject * parent, GstEvent * event);
static gboolean gst_cmr_mel_src_query (GstPad * pad, GstObject * parent, GstQuery * query);
static GstFlowReturn gst_cmr_mel_chain (GstPad * pad, GstObject * parent, GstBuffer * buf);

static void
gst_cmr_mel_class_init (GstCmrMelClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_PLAYING;
  struct cmr_mel_cfg def = cmr_mel_cfg_default ();

  GST_DEBUG_CATEGORY_INIT (gst_cmr_mel_debug, "cmrmel", 0, "cmr log-mel front end");

  gobject_class->set_property = gst_cmr_mel_set_property;
  gobject_class->get_property = gst_cmr_mel_get_property;
  gobject_class->finalize = gst_cmr_mel_finalize;

  /* the options of cmr-mel, with its ranges and defaults */
  g_object_class_install_property (gobject_class, PROP_N_MELS,
      g_param_spec_int ("n-mels", "Mel bands", "Number of mel bands (cmr-mel --n-mels)",
          8, 512, def.n_mels, flags));
  g_object_class_install_property (gobject_class, PROP_N_FFT,
      g_param_spec_int ("n-fft", "FFT size",
          "FFT size = periodic Hann window length, samples, even (cmr-mel --n-fft)",
          64, 8192, def.n_fft, flags));
  g_object_class_install_property (gobject_class, PROP_HOP,
      g_param_spec_int ("hop", "Hop",
          "Samples from one frame to the next, at most n-fft; 0: n-fft / 2 (cmr-mel --hop)",
          0, 8192, 0, flags));
  g_object_class_install_property (gobject_class, PROP_F_MIN,
      g_param_spec_double ("f-min", "Lowest frequency",
          "Lower edge of the first band, Hz, below f-max (cmr-mel --f-min)",
          0, SAMPLE_RATE / 2, def.f_min, flags));
  g_object_class_install_property (gobject_class, PROP_F_MAX,
      g_param_spec_double ("f-max", "Highest frequency",
          "Upper edge of the last band, Hz (cmr-mel --f-max)", 0, SAMPLE_RATE / 2, def.f_max,
          flags));
  g_object_class_install_property (gobject_class, PROP_HTK,
      g_param_spec_boolean ("htk", "HTK variant",
          "The reference code's literal front end: HTK mel scale, no area norm, power "
          "spectrum, no log (cmr-mel --htk)", FALSE, flags));
  g_object_class_install_property (gobject_class, PROP_NORM,
      g_param_spec_string ("norm", "Stats file",
          "Standardise every value as (x - mean) / std with the mean and std of this stats "
          "file (cmr-mel --stats writes it); it must have been computed with the same "
          "front end (cmr-mel --norm)", NULL, flags));

  gst_element_class_set_static_metadata (element_class,
      "cmr log-mel front end", "Filter/Analyzer/Audio",
      "Log-mel spectrogram frames of 16 kHz mono audio, as the cmr-mel filter computes them",
      "cmr");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_cmr_mel_change_state);

}

static void
gst_cmr_mel_init (GstCmrMel * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_cmr_mel_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_cmr_mel_sink_event));
  GST_PAD_SET_PROXY_ALLOCATION (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_cmr_mel_src_query));
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  g_mutex_init (&self->lock);
  {
    struct cmr_mel_cfg def = cmr_mel_cfg_default ();
    self->n_mels = def.n_mels;
    self->n_fft = def.n_fft;
    self->f_min = def.f_min;
    self->f_max = def.f_max;
  }
  self->t0 = GST_CLOCK_TIME_NONE;
}

static void
gst_cmr_mel_finalize (GObject * object)
{
  GstCmrMel *self = GST_CMR_MEL (object);

  cmr_mel_free (self->mel);
  g_free (self->out);
  g_free (self->norm);
  gst_clear_event (&self->pending_stage);
  gst_clear_event (&self->pending_caps);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (gst_cmr_mel_parent_class)->finalize (object);
}

static void
gst_cmr_mel_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstCmrMel *self = GST_CMR_MEL (object);

  g_mutex_lock (&self->lock);
  switch (prop_id) {
    case PROP_N_MELS:
      self->n_mels = g_value_get_int (value);
      break;
    case PROP_N_FFT:
      self->n_fft = g_value_get_int (value);
      break;
    case PROP_HOP:
      self->hop = g_value_get_int (value);
      break;
    case PROP_F_MIN:
      self->f_min = g_value_get_double (value);
      break;
    case PROP_F_MAX:
      self->f_max = g_value_get_double (value);
      break;
    case PROP_HTK:
      self->htk = g_value_get_boolean (value);
      break;
    case PROP_NORM:
      g_free (self->norm);
      self->norm = g_value_dup_string (value);
      if (self->norm && !*self->norm)
        g_clear_pointer (&self->norm, g_free);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      g_mutex_unlock (&self->lock);
      return;
  }
  self->reconfigure = TRUE;
  g_mutex_unlock (&self->lock);
}

static void
gst_cmr_mel_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstCmrMel *self = GST_CMR_MEL (object);

  g_mutex_lock (&self->lock);
  switch (prop_id) {
    case PROP_N_MELS:
      g_value_set_int (value, self->n_mels);
      break;
    case PROP_N_FFT:
      g_value_set_int (value, self->n_fft);
      break;
    case PROP_HOP:
      g_value_set_int (value, self->hop);
      break;
    case PROP_F_MIN:
      g_value_set_double (value, self->f_min);
      break;
    case PROP_F_MAX:
      g_value_set_double (value, self->f_max);
      break;
    case PROP_HTK:
      g_value_set_boolean (value, self->htk);
      break;
    case PROP_NORM:
      g_value_set_string (value, self->norm);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  g_mutex_unlock (&self->lock);
}

/* ---- streaming ---- */

static void
reset_stream (GstCmrMel * self)
{
  if (self->mel)
    cmr_mel_reset (self->mel);
  self->t0 = GST_CLOCK_TIME_NONE;
  self->run_samples = 0;
  self->run_frames = 0;
  self->offset = 0;
  self->discont = TRUE;
}

static gboolean
ensure_out (GstCmrMel * self, gsize frames)
{
  if (frames <= self->out_cap)
    return TRUE;
  gsize cap = MAX (frames, 2 * self->out_cap);
  gfloat *p = g_try_realloc_n (self->out, cap, (gsize) self->active.n_mels * sizeof (gfloat));
  if (!p)
    return FALSE;
  self->out = p;
  self->out_cap = cap;
  return TRUE;
}

/* pushes n frames from self->out */
static GstFlowReturn
push_frames (GstCmrMel * self, gsize n)
{
  const gint F = self->active.n_mels, hop = self->active.hop;
  gsize bytes = n * (gsize) F * sizeof (gfloat);
  GstBuffer *buf;
  GstClockTime t1;

  if (n == 0)
    return GST_FLOW_OK;
  if (self->pending_stage) {
    gst_pad_push_event (self->srcpad, self->pending_stage);
    self->pending_stage = NULL;
  }
  if (self->have_stats)
    cmr_stats_apply (self->out, n * (gsize) F, self->mean, self->std);
  buf = gst_buffer_new_allocate (NULL, bytes, NULL);
  gst_buffer_fill (buf, 0, self->out, bytes);
  if (GST_CLOCK_TIME_IS_VALID (self->t0)) {
    GST_BUFFER_PTS (buf) = self->t0 + gst_cmr_time_of (self->run_frames, hop, SAMPLE_RATE);
    t1 = self->t0 + gst_cmr_time_of (self->run_frames + n, hop, SAMPLE_RATE);
    GST_BUFFER_DURATION (buf) = t1 - GST_BUFFER_PTS (buf);
  }
  GST_BUFFER_OFFSET (buf) = self->offset;
  GST_BUFFER_OFFSET_END (buf) = self->offset + n;
  if (self->discont) {
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    self->discont = FALSE;
  }
  self->run_frames += n;
  self->offset += n;
  return gst_pad_push (self->srcpad, buf);
}

/* ends the current run: its last frames (padded as at the end of a track) go out */
static GstFlowReturn
drain (GstCmrMel * self)
{
  struct cmr_error err = { 0 };
  gsize n = 0;
  GstFlowReturn ret;

  if (!self->mel)
    return GST_FLOW_OK;
  if (self->run_samples == 0) {
    cmr_mel_reset (self->mel);
    return GST_FLOW_OK;
  }
  if (!ensure_out (self, cmr_mel_flush_frames (self->mel)))
    goto nomem;
  if (cmr_mel_flush (self->mel, self->out, self->out_cap, &n, &err) != CMR_OK) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("%s", err.msg));
    return GST_FLOW_ERROR;
  }
  ret = push_frames (self, n);
  self->t0 = GST_CLOCK_TIME_NONE;
  self->run_samples = 0;
  self->run_frames = 0;
  return ret;

nomem:
  GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("cmrmel: out of memory"));
  return GST_FLOW_ERROR;
}

/* pushes the caps configure() made; the stage event goes out before the
 * next buffer, after the segment */
static void
announce (GstCmrMel * self)
{
  GstEvent *caps_event;

  g_mutex_lock (&self->lock);
  caps_event = self->pending_caps;
  self->pending_caps = NULL;
  g_mutex_unlock (&self->lock);
  if (caps_event)
    gst_pad_push_event (self->srcpad, caps_event);
}

/* one provenance parameter into the stage structure */
static gint
stage_param (void *p, const char *key, const char *val)
{
  gst_structure_set ((GstStructure *) p, key, G_TYPE_STRING, val, NULL);
  return 0;
}

/* builds the front end from the properties, and the caps and stage events
 * that announce it (pending_caps, pending_stage; announce() sends them).
 * On bad properties it posts one error and sets failed; the front end that
 * ran so far stays. Called with the lock held. */
static gboolean
configure (GstCmrMel * self)
{
  struct cmr_error err = { 0 };
  struct cmr_mel_cfg cfg = self->htk ? cmr_mel_cfg_htk () : cmr_mel_cfg_default ();
  struct cmr_stats_file sf;
  gchar desc[CMR_STATS_TEXT_MAX];
  struct cmr_mel *mel;
  GstCaps *caps;
  GstEvent *stage;

  /* as cmr-mel builds it from its options */
  cfg.sample_rate = SAMPLE_RATE;
  cfg.n_mels = self->n_mels;
  cfg.n_fft = self->n_fft;
  cfg.hop = self->hop ? self->hop : self->n_fft / 2;
  cfg.f_min = self->f_min;
  cfg.f_max = self->f_max;
  if (!(mel = cmr_mel_new (&cfg, &err))) {
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("Bad front-end settings"),
        ("cmrmel: %s", err.msg));
    self->failed = TRUE;
    return FALSE;
  }
  if (cmr_mel_empty_filters (mel))
    GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS, (NULL),
        ("cmrmel: %d of %d mel bands have no FFT bin (too many bands for n-fft %d); they are 0",
            cmr_mel_empty_filters (mel), cfg.n_mels, cfg.n_fft));
  cmr_mel_cfg_describe (&cfg, desc, sizeof desc);
  self->have_stats = FALSE;
  if (self->norm) {
    gint rc = cmr_frontend_stats_load (self->norm, "mel", desc, &sf, &err);
    if (rc != CMR_OK) {
      if (rc == CMR_EKIND)
        GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("The stats file is not of mel frames"),
            ("cmrmel: norm: %s", err.msg));
      else if (rc == CMR_EINVAL)
        GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS,
            ("The stats file was computed with another front end"), ("cmrmel: norm: %s", err.msg));
      else
        GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("Cannot use the stats file"),
            ("cmrmel: norm: %s", err.msg));
      cmr_mel_free (mel);
      self->failed = TRUE;
      return FALSE;
    }
    self->have_stats = TRUE;
    self->mean = sf.mean;
    self->std = sf.std;
  }
  cmr_mel_free (self->mel);
  self->mel = mel;
  self->active = cfg;
  self->out_cap = 0;
  g_clear_pointer (&self->out, g_free);
  self->reconfigure = FALSE;

  caps = gst_caps_new_simple (GST_CMR_MEL_MEDIA,
      "n-mels", G_TYPE_INT, cfg.n_mels, "rate", G_TYPE_INT, SAMPLE_RATE,
      "hop", G_TYPE_INT, cfg.hop, NULL);
  /* the parameters cmr-mel records in its header (stream/frontend.h) */
  {
    GstStructure *p = gst_structure_new_empty ("cmr-stage");
    cmr_frontend_params (&cfg, self->have_stats ? self->norm : NULL, self->mean, self->std,
        stage_param, p);
    stage = gst_cmr_stage_event_new_full ("cmrmel", PACKAGE_VERSION, p);
  }
  GST_DEBUG_OBJECT (self, "front end: %s", desc);
  gst_clear_event (&self->pending_caps);
  self->pending_caps = gst_event_new_caps (caps);
  gst_clear_event (&self->pending_stage);
  self->pending_stage = stage;
  gst_caps_unref (caps);
  return TRUE;
}

static GstFlowReturn
gst_cmr_mel_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstCmrMel *self = GST_CMR_MEL (parent);
  struct cmr_error err = { 0 };
  GstFlowReturn ret = GST_FLOW_OK;
  GstClockTime pts = GST_BUFFER_PTS (buf);
  GstMapInfo map;
  gsize n, ready, n_out = 0;
  gboolean ok = TRUE;

  g_mutex_lock (&self->lock);
  if (self->failed) {
    /* the error is out already: one per stream */
    g_mutex_unlock (&self->lock);
    ret = GST_FLOW_ERROR;
    goto done;
  }
  if (self->reconfigure && self->mel) {
    /* a property changed while running: end the run, rebuild */
    g_mutex_unlock (&self->lock);
    if ((ret = drain (self)) != GST_FLOW_OK)
      goto done;
    g_mutex_lock (&self->lock);
    self->discont = TRUE;
    ok = configure (self);
  }
  g_mutex_unlock (&self->lock);
  announce (self);
  if (!ok) {
    ret = GST_FLOW_ERROR;
    goto done;
  }
  if (!self->mel || !gst_pad_has_current_caps (pad)) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("cmrmel: data before caps"));
    ret = GST_FLOW_NOT_NEGOTIATED;
    goto done;
  }

  /* a gap in the timestamps ends the run */
  if (GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (self->t0)) {
    GstClockTime expected = self->t0 + gst_cmr_time_of (self->run_samples, 1, SAMPLE_RATE);
    GstClockTimeDiff diff = GST_CLOCK_DIFF (expected, pts);
    if (ABS (diff) > (GstClockTimeDiff) GST_CMR_DISCONT_TOLERANCE) {
      GST_INFO_OBJECT (self, "timestamp gap of %" GST_STIME_FORMAT ": new run",
          GST_STIME_ARGS (diff));
      if ((ret = drain (self)) != GST_FLOW_OK)
        goto done;
      self->discont = TRUE;
    }
  }
  if (!GST_CLOCK_TIME_IS_VALID (self->t0) && self->run_samples == 0)
    self->t0 = GST_CLOCK_TIME_IS_VALID (pts) ? pts : 0;

  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("cmrmel: cannot map the input"));
    ret = GST_FLOW_ERROR;
    goto done;
  }
  n = map.size / sizeof (gfloat);
  ready = cmr_mel_ready (self->mel, n);
  if (!ensure_out (self, ready)) {
    gst_buffer_unmap (buf, &map);
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("cmrmel: out of memory"));
    ret = GST_FLOW_ERROR;
    goto done;
  }
  if (cmr_mel_process (self->mel, (const gfloat *) map.data, n, self->out, self->out_cap,
          &n_out, &err) != CMR_OK) {
    gst_buffer_unmap (buf, &map);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("cmrmel: %s", err.msg));
    ret = GST_FLOW_ERROR;
    goto done;
  }
  gst_buffer_unmap (buf, &map);
  self->run_samples += n;
  ret = push_frames (self, n_out);

done:
  gst_buffer_unref (buf);
  if (ret == GST_FLOW_ERROR || ret == GST_FLOW_NOT_NEGOTIATED) {
    /* the error is out (ours, or downstream's): stay quiet from now on */
    g_mutex_lock (&self->lock);
    self->failed = TRUE;
    g_mutex_unlock (&self->lock);
  }
  return ret;
}

static gboolean
gst_cmr_mel_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstCmrMel *self = GST_CMR_MEL (parent);
  gboolean ok;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      GstAudioInfo info;

      gst_event_parse_caps (event, &caps);
      if (!gst_audio_info_from_caps (&info, caps) || GST_AUDIO_INFO_RATE (&info) != SAMPLE_RATE
          || GST_AUDIO_INFO_CHANNELS (&info) != 1
          || GST_AUDIO_INFO_FORMAT (&info) != GST_AUDIO_FORMAT_F32) {
        GST_WARNING_OBJECT (self, "refusing caps %" GST_PTR_FORMAT, caps);
        gst_event_unref (event);
        return FALSE;
      }
      gst_event_unref (event);
      /* the front end was built going to PAUSED (its caps go out now); the
       * same caps again keep it; a property changed since rebuilds it */
      g_mutex_lock (&self->lock);
      ok = !self->failed && ((self->mel && !self->reconfigure) || configure (self));
      g_mutex_unlock (&self->lock);
      announce (self);
      return ok;
    }
    case GST_EVENT_FLUSH_STOP:
      reset_stream (self);
      return gst_pad_event_default (pad, parent, event);
    case GST_EVENT_EOS:
      if (self->failed || drain (self) == GST_FLOW_ERROR) {
        /* no EOS after an error: a sink still prerolling would wait on it */
        gst_event_unref (event);
        return FALSE;
      }
      return gst_pad_event_default (pad, parent, event);
    case GST_EVENT_STREAM_START:
      /* a new stream: end the old one's run, count frames from 0 */
      drain (self);
      self->offset = 0;
      self->discont = TRUE;
      return gst_pad_event_default (pad, parent, event);
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

static gboolean
gst_cmr_mel_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstCmrMel *self = GST_CMR_MEL (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY:{
      gboolean live;
      GstClockTime min, max, ours;

      if (!gst_pad_peer_query (self->sinkpad, query))
        return FALSE;
      gst_query_parse_latency (query, &live, &min, &max);
      /* a frame needs the half window after its centre */
      g_mutex_lock (&self->lock);
      ours = gst_cmr_time_of (self->n_fft / 2, 1, SAMPLE_RATE);
      g_mutex_unlock (&self->lock);
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
gst_cmr_mel_change_state (GstElement * element, GstStateChange transition)
{
  GstCmrMel *self = GST_CMR_MEL (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    gboolean ok;
    /* bad properties fail here, once, before any data flows */
    g_mutex_lock (&self->lock);
    self->failed = FALSE;
    ok = configure (self);
    g_mutex_unlock (&self->lock);
    if (!ok)
      return GST_STATE_CHANGE_FAILURE;
    reset_stream (self);
  }
  ret = GST_ELEMENT_CLASS (gst_cmr_mel_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    cmr_mel_free (self->mel);
    self->mel = NULL;
    g_clear_pointer (&self->out, g_free);
    self->out_cap = 0;
    gst_clear_event (&self->pending_caps);
    gst_clear_event (&self->pending_stage);
  }
  return ret;
}
