/* cmrframesdec: cmr's MessagePack frame stream -> buffers.
 *
 * SECTION:element-cmrframesdec
 * @title: cmrframesdec
 * @see_also: cmrframes, cmrmel, cmrencode
 *
 * Reads the frame stream a cmr filter writes (docs/frames.md) and pushes its
 * tensor frames as buffers, so that filter output can feed a GStreamer
 * pipeline. The bytes go through cmr's push-mode frame decoder
 * (cmr_decoder_*, lib/frame.c), the frame reader's code: every frame is
 * checked as the filters check it, a declared length or count above the
 * limit is refused as soon as its header bytes arrive (at most one frame is
 * held), and a malformed or truncated stream is an error, posted once.
 *
 * - kind "audio" [n, channels] -> `audio/x-raw, format=F32LE, layout=interleaved`
 * - kind "mel" [T, F] -> `application/x-cmr-mel, n-mels=F` (cmrencode's input)
 * - kind "embedding" [D] -> `application/x-cmr-embedding, dim=D`
 *
 * Other kinds (segment, summary, ...) have no caps here and are an error.
 * Timestamps come from each frame's offset and rate: offset / rate for
 * audio, offset * hop / rate for mel frames and embeddings, where hop is
 * the mel hop named in the header's provenance (cmr-mel's or cmrmel's "hop"),
 * else the `hop` property. Tracks follow each other on one timeline: a new
 * track starts where the last one ended, its first buffer is flagged
 * DISCONT (cmrencode starts a new segment there), and a "cmr-track" event
 * carries its id and metadata, so that a cmrframes downstream writes the
 * same track ids. The `track` property selects one track. The header's
 * provenance goes downstream as "cmr-stage-*" events, and cmrframes writes
 * it back into its own header.
 *
 * ## Example launch line
 * |[
 * cmr-decode song.flac | cmr-resample | cmr-mel | \
 *   gst-launch-1.0 -q fdsrc fd=0 ! cmrframesdec ! cmrencode model=m.cmr ! cmrframes ! \
 *   fdsink fd=1 | cmr-dump
 * ]| encodes the filters' log-mel frames with cmrencode; the tracks keep their ids.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gst/audio/audio.h>

#include "gstcmr.h"
#include "gstcmrframesdec.h"

GST_DEBUG_CATEGORY_STATIC (gst_cmr_frames_dec_debug);
#define GST_CAT_DEFAULT gst_cmr_frames_dec_debug

enum
{
  PROP_0,
  PROP_TRACK,
  PROP_HOP
};

#define DEFAULT_HOP 256
#define SEGMENT_FRAMES 188

#define SRC_CAPS \
  "audio/x-raw, format=(string)" GST_AUDIO_NE (F32) ", rate=(int)[1, MAX], " \
  "channels=(int)[1, 64], layout=(string)interleaved; " \
  GST_CMR_MEL_MEDIA ", n-mels=(int)[1, 1024], rate=(int)[1, MAX], hop=(int)[1, MAX]; " \
  GST_CMR_EMBEDDING_MEDIA ", dim=(int)[1, MAX], rate=(int)[1, MAX], hop=(int)[1, MAX]"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_CMR_FRAMES_MEDIA));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (SRC_CAPS));

G_DEFINE_TYPE (GstCmrFramesDec, gst_cmr_frames_dec, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (cmrframesdec, "cmrframesdec", GST_RANK_NONE,
    GST_TYPE_CMR_FRAMES_DEC);

static void gst_cmr_frames_dec_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_cmr_frames_dec_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_cmr_frames_dec_finalize (GObject * object);
static GstStateChangeReturn gst_cmr_frames_dec_change_state (GstElement * element,
    GstStateChange transition);
static gboolean gst_cmr_frames_dec_sink_event (GstPad * pad, GstObject * parent,
    GstEvent * event);
static GstFlowReturn gst_cmr_frames_dec_chain (GstPad * pad, GstObject * parent,
    GstBuffer * buf);

static void
gst_cmr_frames_dec_class_init (GstCmrFramesDecClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY;

  GST_DEBUG_CATEGORY_INIT (gst_cmr_frames_dec_debug, "cmrframesdec", 0,
      "cmr frame stream reader");

  gobject_class->set_property = gst_cmr_frames_dec_set_property;
  gobject_class->get_property = gst_cmr_frames_dec_get_property;
  gobject_class->finalize = gst_cmr_frames_dec_finalize;

  g_object_class_install_property (gobject_class, PROP_TRACK,
      g_param_spec_string ("track", "Track id",
          "Output only this track (unset: every track, one after the other)", NULL, flags));
  g_object_class_install_property (gobject_class, PROP_HOP,
      g_param_spec_int ("hop", "Mel hop",
          "Samples between mel frames, for timestamps, when the stream's header does not "
          "name it", 1, 65536, DEFAULT_HOP, flags));

  gst_element_class_set_static_metadata (element_class,
      "cmr frame stream reader", "Codec/Demuxer",
      "Reads a cmr MessagePack frame stream (docs/frames.md) into audio, log-mel or "
      "embedding buffers", "cmr");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_cmr_frames_dec_change_state);
}

static void
gst_cmr_frames_dec_init (GstCmrFramesDec * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_cmr_frames_dec_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_cmr_frames_dec_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  g_mutex_init (&self->lock);
  self->hop = DEFAULT_HOP;
  cmr_frame_init (&self->fr);
}

static void
gst_cmr_frames_dec_finalize (GObject * object)
{
  GstCmrFramesDec *self = GST_CMR_FRAMES_DEC (object);

  g_free (self->track);
  g_free (self->cur_track);
  g_list_free_full (self->stages, (GDestroyNotify) gst_event_unref);
  if (self->track_event)
    gst_event_unref (self->track_event);
  if (self->caps)
    gst_caps_unref (self->caps);
  cmr_decoder_free (self->dec);
  cmr_frame_free (&self->fr);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (gst_cmr_frames_dec_parent_class)->finalize (object);
}

static void
gst_cmr_frames_dec_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstCmrFramesDec *self = GST_CMR_FRAMES_DEC (object);

  g_mutex_lock (&self->lock);
  switch (prop_id) {
    case PROP_TRACK:
      g_free (self->track);
      self->track = g_value_dup_string (value);
      if (self->track && !*self->track)
        g_clear_pointer (&self->track, g_free);
      break;
    case PROP_HOP:
      self->hop = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  g_mutex_unlock (&self->lock);
}

static void
gst_cmr_frames_dec_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstCmrFramesDec *self = GST_CMR_FRAMES_DEC (object);

  g_mutex_lock (&self->lock);
  switch (prop_id) {
    case PROP_TRACK:
      g_value_set_string (value, self->track);
      break;
    case PROP_HOP:
      g_value_set_int (value, self->hop);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  g_mutex_unlock (&self->lock);
}

/* ---- frames -> events and buffers ---- */

/* the header: provenance stages go downstream, the mel hop is noted */
static void
handle_header (GstCmrFramesDec * self, const struct cmr_frame *fr)
{
  for (int i = 0; i < fr->n_stages; i++) {
    const struct cmr_stage *st = &fr->stages[i];
    GstStructure *params = gst_structure_new_empty ("cmr-stage");
    for (int j = 0; j < st->n_params; j++) {
      const gchar *key = st->params[j].key;
      gchar *k = (!strcmp (key, "program") || !strcmp (key, "version"))
          ? g_strconcat ("param-", key, NULL) : g_strdup (key);
      gst_structure_set (params, k, G_TYPE_STRING, st->params[j].val, NULL);
      g_free (k);
      /* the hop of the mel front end that made the frames */
      if (!strcmp (key, "hop") && st->program && strstr (st->program, "mel")) {
        gint64 hop = g_ascii_strtoll (st->params[j].val, NULL, 10);
        if (hop >= 1 && hop <= 65536)
          self->stream_hop = (gint) hop;
      }
    }
    /* sent after caps and segment, before the first buffer */
    self->stages = g_list_append (self->stages,
        gst_cmr_stage_event_new_full (st->program ? st->program : "?", st->version, params));
  }
  /* and this element */
  {
    gchar hop[16];
    gchar *track;
    g_mutex_lock (&self->lock);
    g_snprintf (hop, sizeof hop, "%d", self->stream_hop ? self->stream_hop : self->hop);
    track = g_strdup (self->track ? self->track : "");
    g_mutex_unlock (&self->lock);
    self->stages = g_list_append (self->stages,
        gst_cmr_stage_event_new ("cmrframesdec", "track", track, "hop", hop, NULL));
    g_free (track);
  }
}

static void
push_stages (GstCmrFramesDec * self)
{
  for (GList * l = self->stages; l; l = l->next)
    gst_pad_push_event (self->srcpad, l->data);
  g_list_free (self->stages);
  self->stages = NULL;
}

static GstCaps *
caps_for (GstCmrFramesDec * self, const struct cmr_frame *fr, gint hop, GstClockTime * unit_num,
    GstClockTime * unit_den, gsize * steps)
{
  gint rate = (gint) lround (fr->rate);

  if (rate < 1) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, (NULL),
        ("cmrframesdec: track \"%s\" frame %" G_GINT64_FORMAT ": rate %g, need the sample "
            "rate for timestamps", fr->track, fr->index, fr->rate));
    return NULL;
  }
  *unit_den = rate;
  if (!strcmp (fr->kind, "audio") && fr->ndim == 2 && fr->shape[1] <= 64) {
    GstAudioInfo info;
    gst_audio_info_set_format (&info, GST_AUDIO_FORMAT_F32, rate, (gint) fr->shape[1], NULL);
    *unit_num = 1;
    *steps = (gsize) fr->shape[0];
    return gst_audio_info_to_caps (&info);
  }
  if (!strcmp (fr->kind, "mel") && fr->ndim == 2 && fr->shape[1] <= 1024) {
    *unit_num = hop;
    *steps = (gsize) fr->shape[0];
    return gst_caps_new_simple (GST_CMR_MEL_MEDIA, "n-mels", G_TYPE_INT, (gint) fr->shape[1],
        "rate", G_TYPE_INT, rate, "hop", G_TYPE_INT, hop, NULL);
  }
  if (!strcmp (fr->kind, "embedding") && fr->ndim == 1 && fr->shape[0] <= G_MAXINT) {
    *unit_num = hop;
    *steps = SEGMENT_FRAMES;
    return gst_caps_new_simple (GST_CMR_EMBEDDING_MEDIA, "dim", G_TYPE_INT,
        (gint) fr->shape[0], "rate", G_TYPE_INT, rate, "hop", G_TYPE_INT, hop, NULL);
  }
  GST_ELEMENT_ERROR (self, STREAM, WRONG_TYPE, (NULL),
      ("cmrframesdec: track \"%s\": kind \"%s\" of rank %d has no caps here "
          "(audio [n, channels], mel [T, F] and embedding [D] do)", fr->track, fr->kind, fr->ndim));
  return NULL;
}

static gboolean
meta_to_structure (GstStructure * s, const struct cmr_frame *fr)
{
  for (int i = 0; i < fr->n_meta; i++)
    gst_structure_set (s, fr->meta[i].key, G_TYPE_STRING, fr->meta[i].val, NULL);
  return TRUE;
}

static GstFlowReturn
handle_tensor (GstCmrFramesDec * self, const struct cmr_frame *fr)
{
  GstClockTime unit_num = 1, unit_den = 1;
  gsize steps = 0, bytes;
  GstCaps *caps;
  GstBuffer *buf;
  gchar *want;
  gint hop;

  g_mutex_lock (&self->lock);
  want = g_strdup (self->track);
  hop = self->stream_hop ? self->stream_hop : self->hop;
  g_mutex_unlock (&self->lock);

  if (!self->cur_track || strcmp (self->cur_track, fr->track) != 0) {
    /* a new track */
    g_free (self->cur_track);
    self->cur_track = g_strdup (fr->track);
    self->skipping = want && strcmp (want, fr->track) != 0;
    if (!self->skipping) {
      GstStructure *meta = gst_structure_new_empty ("meta");
      meta_to_structure (meta, fr);
      if (self->track_event)
        gst_event_unref (self->track_event);
      self->track_event = gst_cmr_track_event_new (fr->track, meta);
      gst_structure_free (meta);
      self->base = GST_CLOCK_TIME_IS_VALID (self->end) ? self->end : 0;
      self->discont = TRUE;
    }
  }
  g_free (want);
  if (self->skipping)
    return GST_FLOW_OK;

  if (!(caps = caps_for (self, fr, hop, &unit_num, &unit_den, &steps)))
    return GST_FLOW_ERROR;
  if (!self->caps || !gst_caps_is_equal (caps, self->caps)) {
    gst_caps_replace (&self->caps, caps);
    gst_pad_push_event (self->srcpad, gst_event_new_caps (caps));
  }
  gst_caps_unref (caps);
  if (self->need_segment) {
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_pad_push_event (self->srcpad, gst_event_new_segment (&seg));
    self->need_segment = FALSE;
  }
  push_stages (self);
  if (self->track_event) {
    gst_pad_push_event (self->srcpad, self->track_event);
    self->track_event = NULL;
  }

  bytes = cmr_frame_numel (fr) * sizeof (gfloat);
  buf = gst_buffer_new_allocate (NULL, bytes, NULL);
  gst_buffer_fill (buf, 0, fr->data, bytes);
  GST_BUFFER_PTS (buf) = self->base + gst_cmr_time_of ((guint64) fr->offset, unit_num, unit_den);
  GST_BUFFER_DURATION (buf) = gst_cmr_time_of ((guint64) fr->offset + steps, unit_num, unit_den)
      - gst_cmr_time_of ((guint64) fr->offset, unit_num, unit_den);
  GST_BUFFER_OFFSET (buf) = (guint64) fr->offset;
  GST_BUFFER_OFFSET_END (buf) = (guint64) fr->offset + steps;
  if (self->discont) {
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    self->discont = FALSE;
  }
  {
    GstClockTime end = GST_BUFFER_PTS (buf) + GST_BUFFER_DURATION (buf);
    if (!GST_CLOCK_TIME_IS_VALID (self->end) || end > self->end)
      self->end = end;
  }
  return gst_pad_push (self->srcpad, buf);
}

/* posts the decoder's error, once per stream */
static GstFlowReturn
decode_error (GstCmrFramesDec * self, int rc, const struct cmr_error *err)
{
  if (rc == CMR_ETRUNCATED || rc == CMR_ENOHEADER)
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Truncated cmr frame stream"),
        ("%s", cmr_error_text (err, rc)));
  else if (rc == CMR_ENOMEM)
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("%s", cmr_error_text (err, rc)));
  else
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Bad cmr frame stream"),
        ("%s", cmr_error_text (err, rc)));
  self->failed = TRUE;
  return GST_FLOW_ERROR;
}

/* one checked frame from the decoder */
static GstFlowReturn
handle_frame (GstCmrFramesDec * self, const struct cmr_frame *fr)
{
  switch (fr->type) {
    case CMR_FRAME_HEADER:
      /* a later header (streams joined with cat) describes the same kind of data */
      if (!self->have_header)
        handle_header (self, fr);
      self->have_header = TRUE;
      return GST_FLOW_OK;
    case CMR_FRAME_TENSOR:
      return handle_tensor (self, fr);
    case CMR_FRAME_END:
      if (self->cur_track && !strcmp (self->cur_track, fr->track))
        g_clear_pointer (&self->cur_track, g_free);
      if (fr->error)
        GST_ELEMENT_WARNING (self, STREAM, DECODE, (NULL),
            ("cmrframesdec: track \"%s\" ended with an error: %s", fr->track, fr->error));
      return GST_FLOW_OK;
    default:
      return GST_FLOW_OK;
  }
}

/* hands downstream every frame that the bytes fed so far complete */
static GstFlowReturn
take_frames (GstCmrFramesDec * self)
{
  struct cmr_error err = { 0 };
  GstFlowReturn ret = GST_FLOW_OK;
  int rc;

  while ((rc = cmr_decoder_next (self->dec, &self->fr, &err)) == CMR_OK
      && (ret = handle_frame (self, &self->fr)) == GST_FLOW_OK);
  if (ret != GST_FLOW_OK)
    return ret;
  if (rc < 0)
    return decode_error (self, rc, &err);
  return GST_FLOW_OK;           /* CMR_DECODER_MORE, or CMR_EOF after the end */
}

static GstFlowReturn
gst_cmr_frames_dec_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstCmrFramesDec *self = GST_CMR_FRAMES_DEC (parent);
  struct cmr_error err = { 0 };
  GstFlowReturn ret;
  GstMapInfo map;
  int rc;

  if (self->failed) {           /* one error per stream: upstream may push on */
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;
  }
  if (!self->dec) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("cmrframesdec: out of memory"));
    self->failed = TRUE;
    return GST_FLOW_ERROR;
  }
  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("cmrframesdec: cannot map a buffer"));
    self->failed = TRUE;
    return GST_FLOW_ERROR;
  }
  rc = cmr_decoder_feed (self->dec, map.data, map.size, &err);
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  ret = rc == CMR_OK ? take_frames (self) : decode_error (self, rc, &err);
  if (ret == GST_FLOW_ERROR)
    self->failed = TRUE;
  return ret;
}

static void
reset_stream (GstCmrFramesDec * self)
{
  self->failed = FALSE;
  cmr_decoder_free (self->dec);
  self->dec = cmr_decoder_new ("cmrframesdec");
  self->have_header = FALSE;
  self->stream_hop = 0;
  g_clear_pointer (&self->cur_track, g_free);
  self->skipping = FALSE;
  if (self->caps)
    gst_caps_replace (&self->caps, NULL);
  self->base = 0;
  self->end = GST_CLOCK_TIME_NONE;
  self->need_segment = TRUE;
  self->discont = TRUE;
  g_list_free_full (self->stages, (GDestroyNotify) gst_event_unref);
  self->stages = NULL;
  if (self->track_event)
    gst_clear_event (&self->track_event);
}

static gboolean
gst_cmr_frames_dec_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstCmrFramesDec *self = GST_CMR_FRAMES_DEC (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:
    case GST_EVENT_SEGMENT:
      /* our own caps and a time segment go out with the first frame */
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      reset_stream (self);
      return gst_pad_event_default (pad, parent, event);
    case GST_EVENT_EOS:
      if (self->failed) {
        /* the error is out already: a second one (or an EOS) after it made
         * gst-launch-1.0 hang now and then on a prerolling sink */
        gst_event_unref (event);
        return FALSE;
      }
      if (!self->dec) {
        GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("cmrframesdec: out of memory"));
        self->failed = TRUE;
        gst_event_unref (event);
        return FALSE;
      }
      /* the decoder tells a clean end from a stream cut inside a frame or a track */
      cmr_decoder_finish (self->dec);
      if (take_frames (self) != GST_FLOW_OK) {
        /* no EOS after the error: a sink still prerolling would wait on it */
        self->failed = TRUE;
        gst_event_unref (event);
        return FALSE;
      }
      return gst_pad_event_default (pad, parent, event);
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

static GstStateChangeReturn
gst_cmr_frames_dec_change_state (GstElement * element, GstStateChange transition)
{
  GstCmrFramesDec *self = GST_CMR_FRAMES_DEC (element);

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
    reset_stream (self);
  return GST_ELEMENT_CLASS (gst_cmr_frames_dec_parent_class)->change_state (element,
      transition);
}
