/* cmrframes: buffers -> cmr's MessagePack frame stream.
 *
 * SECTION:element-cmrframes
 * @title: cmrframes
 * @see_also: cmrframesdec, cmrmel, cmrencode
 *
 * Writes the buffers it receives as a cmr frame stream (docs/frames.md), the
 * format every cmr filter reads, so that a GStreamer pipeline can feed
 * cmr-dump, cmr-summarize, cmr-knn, ... through a pipe.
 *
 * The stream starts with a header whose provenance lists the stages upstream
 * (cmrmel, cmrencode, and whatever a cmrframesdec upstream read) and then
 * cmrframes itself. Each input buffer becomes one tensor frame:
 *
 * - `audio/x-raw` (F32LE, interleaved): kind "audio", shape [n, channels]
 * - `application/x-cmr-mel`: kind "mel", shape [T, n-mels]
 * - `application/x-cmr-embedding`: kind "embedding", shape [dim] (a buffer
 *   holding k vectors gives k frames)
 *
 * with track = the `track` property (or the track a cmrframesdec upstream
 * announced), index = running number within the track, offset = the
 * buffer's offset (samples for audio, mel frames for mel and embeddings) or,
 * when it has none, a running count, rate = the audio sample rate. With
 * `timestamps` the frame's info holds "time" (stream time of the buffer, s)
 * and "duration" (s); with `wallclock`, "wallclock" (UNIX time in s when the
 * frame was written). Stream tags (title, artist, organization, genre) go
 * into the frame's meta. EOS writes the track's end frame.
 *
 * Output caps: `application/x-cmr-frames`, a byte stream whose buffers keep
 * the timestamps of the buffers they come from; upstream's time segment is
 * passed on (never a byte segment, so filesink and fdsink append, also after
 * a seek upstream or when several pipelines write to one file in turn).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -q filesrc location=song.ogg ! decodebin ! audioconvert ! audioresample ! \
 *     cmrmel ! cmrencode model=m.cmr ! cmrframes track=song ! fdsink fd=1 | cmr-dump
 * ]| prints one line per embedding (3 s segments) of song.ogg.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include <gst/audio/audio.h>

#include "gstcmr.h"
#include "gstcmrframes.h"

GST_DEBUG_CATEGORY_STATIC (gst_cmr_frames_debug);
#define GST_CAT_DEFAULT gst_cmr_frames_debug

enum
{
  PROP_0,
  PROP_TRACK,
  PROP_TIMESTAMPS,
  PROP_WALLCLOCK
};

#define DEFAULT_TRACK "stream"

#define ALLOWED_CAPS \
  "audio/x-raw, format=(string)" GST_AUDIO_NE (F32) ", rate=(int)[1, MAX], " \
  "channels=(int)[1, 64], layout=(string)interleaved; " \
  GST_CMR_MEL_MEDIA ", n-mels=(int)[1, 1024], rate=(int)[1, MAX], hop=(int)[1, MAX]; " \
  GST_CMR_EMBEDDING_MEDIA ", dim=(int)[1, MAX], rate=(int)[1, MAX], hop=(int)[1, MAX]"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (ALLOWED_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_CMR_FRAMES_MEDIA));

G_DEFINE_TYPE (GstCmrFrames, gst_cmr_frames, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (cmrframes, "cmrframes", GST_RANK_NONE, GST_TYPE_CMR_FRAMES);

static void gst_cmr_frames_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_cmr_frames_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_cmr_frames_finalize (GObject * object);
static GstStateChangeReturn gst_cmr_frames_change_state (GstElement * element,
    GstStateChange transition);
static gboolean gst_cmr_frames_sink_event (GstPad * pad, GstObject * parent, GstEvent * event);
static GstFlowReturn gst_cmr_frames_chain (GstPad * pad, GstObject * parent, GstBuffer * buf);

static void
gst_cmr_frames_class_init (GstCmrFramesClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_PLAYING;

  GST_DEBUG_CATEGORY_INIT (gst_cmr_frames_debug, "cmrframes", 0, "cmr frame stream writer");

  gobject_class->set_property = gst_cmr_frames_set_property;
  gobject_class->get_property = gst_cmr_frames_get_property;
  gobject_class->finalize = gst_cmr_frames_finalize;

  g_object_class_install_property (gobject_class, PROP_TRACK,
      g_param_spec_string ("track", "Track id",
          "Track id of the frames (unless a cmrframesdec upstream names the track); "
          "a change ends the current track and starts a new one",
          DEFAULT_TRACK, flags));
  g_object_class_install_property (gobject_class, PROP_TIMESTAMPS,
      g_param_spec_boolean ("timestamps", "Stream timestamps",
          "Record each frame's stream time and duration, in seconds, as info "
          "\"time\" and \"duration\"", TRUE, flags));
  g_object_class_install_property (gobject_class, PROP_WALLCLOCK,
      g_param_spec_boolean ("wallclock", "Wall-clock timestamps",
          "Record the UNIX time (s) at which each frame is written as info \"wallclock\"",
          FALSE, flags));

  gst_element_class_set_static_metadata (element_class,
      "cmr frame stream writer", "Codec/Muxer",
      "Writes audio, log-mel or embedding buffers as a cmr MessagePack frame stream "
      "(docs/frames.md) for the cmr filters", "cmr");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_cmr_frames_change_state);
}

static void
gst_cmr_frames_init (GstCmrFrames * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_cmr_frames_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_cmr_frames_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  g_mutex_init (&self->lock);
  self->track = g_strdup (DEFAULT_TRACK);
  self->timestamps = TRUE;
  self->stages = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  cmr_frame_init (&self->fr);
  gst_segment_init (&self->segment, GST_FORMAT_TIME);
}

static void
gst_cmr_frames_finalize (GObject * object)
{
  GstCmrFrames *self = GST_CMR_FRAMES (object);

  g_free (self->track);
  g_free (self->cur_track);
  g_free (self->event_track);
  if (self->cur_meta)
    gst_structure_free (self->cur_meta);
  if (self->tag_meta)
    gst_structure_free (self->tag_meta);
  g_ptr_array_unref (self->stages);
  cmr_frame_free (&self->fr);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (gst_cmr_frames_parent_class)->finalize (object);
}

static void
gst_cmr_frames_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstCmrFrames *self = GST_CMR_FRAMES (object);

  g_mutex_lock (&self->lock);
  switch (prop_id) {
    case PROP_TRACK:
      g_free (self->track);
      self->track = g_value_dup_string (value);
      if (!self->track || !*self->track) {
        g_free (self->track);
        self->track = g_strdup (DEFAULT_TRACK);
      }
      break;
    case PROP_TIMESTAMPS:
      self->timestamps = g_value_get_boolean (value);
      break;
    case PROP_WALLCLOCK:
      self->wallclock = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  g_mutex_unlock (&self->lock);
}

static void
gst_cmr_frames_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstCmrFrames *self = GST_CMR_FRAMES (object);

  g_mutex_lock (&self->lock);
  switch (prop_id) {
    case PROP_TRACK:
      g_value_set_string (value, self->track);
      break;
    case PROP_TIMESTAMPS:
      g_value_set_boolean (value, self->timestamps);
      break;
    case PROP_WALLCLOCK:
      g_value_set_boolean (value, self->wallclock);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  g_mutex_unlock (&self->lock);
}

/* ---- output ---- */

static void
ensure_caps (GstCmrFrames * self)
{
  if (!gst_pad_has_current_caps (self->srcpad)) {
    GstCaps *caps = gst_caps_new_empty_simple (GST_CMR_FRAMES_MEDIA);
    gst_pad_push_event (self->srcpad, gst_event_new_caps (caps));
    gst_caps_unref (caps);
  }
}

static GstFlowReturn
push_bytes (GstCmrFrames * self, void *data, size_t len, GstBuffer * from)
{
  GstBuffer *buf;

  ensure_caps (self);
  if (self->need_segment) {
    /* bytes before upstream's segment (a header at a cmr-track event) */
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_pad_push_event (self->srcpad, gst_event_new_segment (&seg));
    self->need_segment = FALSE;
  }
  buf = gst_buffer_new_wrapped_full (0, data, len, 0, len, data, free);
  GST_BUFFER_OFFSET (buf) = self->bytes;
  GST_BUFFER_OFFSET_END (buf) = self->bytes + len;
  if (from) {
    GST_BUFFER_PTS (buf) = GST_BUFFER_PTS (from);
    GST_BUFFER_DURATION (buf) = GST_BUFFER_DURATION (from);
  }
  self->bytes += len;
  return gst_pad_push (self->srcpad, buf);
}

static GstFlowReturn
put_frame (GstCmrFrames * self, GstBuffer * from)
{
  void *data = NULL;
  size_t len = 0;
  int rc = cmr_frame_pack (&self->fr, &data, &len);

  if (rc != CMR_OK) {
    GST_ELEMENT_ERROR (self, STREAM, ENCODE, (NULL),
        ("cmrframes: cannot pack frame: %s", cmr_strerror (rc)));
    return GST_FLOW_ERROR;
  }
  return push_bytes (self, data, len, from);
}

static gboolean
add_param (GQuark field, const GValue * value, gpointer user_data)
{
  struct cmr_frame *fr = user_data;
  const gchar *key = g_quark_to_string (field);
  gchar *val;

  if (!strcmp (key, "program") || !strcmp (key, "version"))
    return TRUE;
  val = G_VALUE_HOLDS_STRING (value) ? g_value_dup_string (value) : gst_value_serialize (value);
  if (g_str_has_prefix (key, "param-"))
    key += strlen ("param-");
  cmr_frame_stage_param (fr, key, "%s", val ? val : "");
  g_free (val);
  return TRUE;
}

static GstFlowReturn
send_header (GstCmrFrames * self)
{
  struct cmr_frame *fr = &self->fr;
  gboolean first = TRUE;
  gchar *track;
  gboolean ts, wc;

  g_mutex_lock (&self->lock);
  track = g_strdup (self->track);
  ts = self->timestamps;
  wc = self->wallclock;
  g_mutex_unlock (&self->lock);

  cmr_frame_reset (fr);
  for (guint i = 0; i < self->stages->len; i++) {
    const GstStructure *s = g_ptr_array_index (self->stages, i);
    const gchar *program = gst_structure_get_string (s, "program");
    const gchar *version = gst_structure_get_string (s, "version");
    int rc = first ? cmr_frame_make_header (fr, program ? program : "?")
        : cmr_frame_add_stage (fr, program ? program : "?");
    if (rc != CMR_OK)
      goto nomem;
    first = FALSE;
    if (version) {
      struct cmr_stage *st = &fr->stages[fr->n_stages - 1];
      char *v = strdup (version);
      if (!v)
        goto nomem;
      free (st->version);
      st->version = v;
    }
    gst_structure_foreach (s, add_param, fr);
  }
  if ((first ? cmr_frame_make_header (fr, "cmrframes") : cmr_frame_add_stage (fr,
              "cmrframes")) != CMR_OK
      || cmr_frame_stage_param (fr, "track", "%s", track) != CMR_OK
      || cmr_frame_stage_param (fr, "timestamps", "%d", ts ? 1 : 0) != CMR_OK
      || cmr_frame_stage_param (fr, "wallclock", "%d", wc ? 1 : 0) != CMR_OK)
    goto nomem;
  g_free (track);
  self->header_sent = TRUE;
  return put_frame (self, NULL);

nomem:
  g_free (track);
  GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("cmrframes: out of memory"));
  return GST_FLOW_ERROR;
}

/* writes the open track's end frame */
static GstFlowReturn
end_track (GstCmrFrames * self)
{
  GstFlowReturn ret;

  if (!self->cur_track)
    return GST_FLOW_OK;
  if (cmr_frame_make_end (&self->fr, self->cur_track, self->index) != CMR_OK) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("cmrframes: out of memory"));
    return GST_FLOW_ERROR;
  }
  ret = put_frame (self, NULL);
  g_clear_pointer (&self->cur_track, g_free);
  self->index = 0;
  self->steps = 0;
  return ret;
}

/* opens a track named `track` (ending the open one if it differs) */
static GstFlowReturn
open_track (GstCmrFrames * self, const gchar * track)
{
  GstFlowReturn ret = GST_FLOW_OK;

  if (!self->header_sent && (ret = send_header (self)) != GST_FLOW_OK)
    return ret;
  if (self->cur_track && strcmp (self->cur_track, track) != 0)
    ret = end_track (self);
  if (!self->cur_track)
    self->cur_track = g_strdup (track);
  return ret;
}

static gboolean
add_meta (GQuark field, const GValue * value, gpointer user_data)
{
  struct cmr_frame *fr = user_data;
  gchar *val = G_VALUE_HOLDS_STRING (value) ? g_value_dup_string (value)
      : gst_value_serialize (value);

  cmr_frame_meta_set (fr, g_quark_to_string (field), val ? val : "");
  g_free (val);
  return TRUE;
}

static GstFlowReturn
gst_cmr_frames_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstCmrFrames *self = GST_CMR_FRAMES (parent);
  GstFlowReturn ret = GST_FLOW_OK;
  GstMapInfo map;
  gsize floats, per, n_frames, steps;
  gboolean ts, wc;
  gchar *track;

  if (self->failed) {           /* the error is out already: one per stream */
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;
  }
  if (self->kind == GST_CMR_KIND_NONE) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("cmrframes: data before caps"));
    gst_buffer_unref (buf);
    self->failed = TRUE;
    return GST_FLOW_NOT_NEGOTIATED;
  }
  /* the property names the track unless a cmr-track event did */
  g_mutex_lock (&self->lock);
  track = g_strdup (self->event_track ? self->event_track : self->track);
  ts = self->timestamps;
  wc = self->wallclock;
  g_mutex_unlock (&self->lock);
  ret = open_track (self, track);
  g_free (track);
  if (ret != GST_FLOW_OK) {
    gst_buffer_unref (buf);
    self->failed = ret == GST_FLOW_ERROR;
    return ret;
  }

  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("cmrframes: cannot map a buffer"));
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;
  }
  floats = map.size / sizeof (gfloat);
  if (map.size % (sizeof (gfloat) * self->width) != 0) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, (NULL),
        ("cmrframes: a buffer of %" G_GSIZE_FORMAT " bytes is not a whole number of "
            "%d-float rows", map.size, self->width));
    ret = GST_FLOW_ERROR;
    goto done;
  }
  /* embeddings: one frame per vector; audio, mel: one frame per buffer */
  per = self->kind == GST_CMR_KIND_EMBEDDING ? (gsize) self->width : floats;
  n_frames = per ? floats / per : 0;
  steps = self->kind == GST_CMR_KIND_EMBEDDING ? 0 : floats / self->width;
  for (gsize k = 0; k < n_frames && ret == GST_FLOW_OK; k++) {
    struct cmr_frame *fr = &self->fr;
    int64_t shape[2];
    int ndim;
    const char *kind;
    GstClockTime pts = GST_BUFFER_PTS (buf);

    switch (self->kind) {
      case GST_CMR_KIND_AUDIO:
        kind = "audio";
        ndim = 2;
        shape[0] = (int64_t) steps;
        shape[1] = self->width;
        break;
      case GST_CMR_KIND_MEL:
        kind = "mel";
        ndim = 2;
        shape[0] = (int64_t) steps;
        shape[1] = self->width;
        break;
      default:
        kind = "embedding";
        ndim = 1;
        shape[0] = self->width;
        break;
    }
    cmr_frame_reset (fr);
    if (cmr_frame_make_tensor (fr, kind, self->cur_track, ndim, shape) != CMR_OK)
      goto nomem;
    memcpy (fr->data, (const gfloat *) map.data + k * per, per * sizeof (gfloat));
    fr->index = self->index;
    if (GST_BUFFER_OFFSET_IS_VALID (buf))
      fr->offset = (int64_t) GST_BUFFER_OFFSET (buf);
    else
      fr->offset = self->kind == GST_CMR_KIND_EMBEDDING ? self->index : (int64_t) self->steps;
    fr->rate = self->rate;
    if (self->cur_meta)
      gst_structure_foreach (self->cur_meta, add_meta, fr);
    if (self->tag_meta)
      gst_structure_foreach (self->tag_meta, add_meta, fr);
    if (ts && GST_CLOCK_TIME_IS_VALID (pts)) {
      guint64 st = gst_segment_to_stream_time (&self->segment, GST_FORMAT_TIME, pts);
      if (GST_CLOCK_TIME_IS_VALID (st))
        cmr_frame_info_set (fr, "time", (double) st / GST_SECOND);
      if (GST_BUFFER_DURATION_IS_VALID (buf))
        cmr_frame_info_set (fr, "duration", (double) GST_BUFFER_DURATION (buf) / GST_SECOND);
    }
    if (wc)
      cmr_frame_info_set (fr, "wallclock", (double) g_get_real_time () / G_USEC_PER_SEC);
    ret = put_frame (self, buf);
    self->index++;
  }
  self->steps += steps;

done:
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  /* the error is out (ours, or downstream's): stay quiet from now on */
  self->failed = ret == GST_FLOW_ERROR;
  return ret;

nomem:
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (NULL), ("cmrframes: out of memory"));
  self->failed = TRUE;
  return GST_FLOW_ERROR;
}

/* ---- events ---- */

static gboolean
set_caps (GstCmrFrames * self, GstCaps * caps)
{
  GstStructure *s = gst_caps_get_structure (caps, 0);
  gint width = 0, rate = 0;
  enum gst_cmr_frames_kind kind;

  if (gst_structure_has_name (s, "audio/x-raw")) {
    GstAudioInfo info;
    if (!gst_audio_info_from_caps (&info, caps))
      return FALSE;
    kind = GST_CMR_KIND_AUDIO;
    width = GST_AUDIO_INFO_CHANNELS (&info);
    rate = GST_AUDIO_INFO_RATE (&info);
  } else if (gst_structure_has_name (s, GST_CMR_MEL_MEDIA)) {
    kind = GST_CMR_KIND_MEL;
    if (!gst_structure_get_int (s, "n-mels", &width) || !gst_structure_get_int (s, "rate", &rate))
      return FALSE;
  } else if (gst_structure_has_name (s, GST_CMR_EMBEDDING_MEDIA)) {
    kind = GST_CMR_KIND_EMBEDDING;
    if (!gst_structure_get_int (s, "dim", &width) || !gst_structure_get_int (s, "rate", &rate))
      return FALSE;
  } else {
    return FALSE;
  }
  if (width < 1)
    return FALSE;
  self->kind = kind;
  self->width = width;
  self->rate = rate;
  return TRUE;
}

/* remembers a provenance stage (one per name, in arrival order) */
static void
add_stage (GstCmrFrames * self, const GstStructure * s)
{
  const gchar *name = gst_structure_get_name (s);

  if (self->header_sent) {
    GST_INFO_OBJECT (self, "stage %s after the header: not recorded", name);
    return;
  }
  for (guint i = 0; i < self->stages->len; i++) {
    GstStructure *old = g_ptr_array_index (self->stages, i);
    if (gst_structure_has_name (old, name)) {
      g_ptr_array_index (self->stages, i) = gst_structure_copy (s);
      gst_structure_free (old);
      return;
    }
  }
  g_ptr_array_add (self->stages, gst_structure_copy (s));
}

static void
set_tags (GstCmrFrames * self, GstTagList * tags)
{
  static const struct
  {
    const gchar *tag, *key;
  } map[] = {
    {GST_TAG_TITLE, "title"}, {GST_TAG_ARTIST, "artist"},
    {GST_TAG_ORGANIZATION, "organization"}, {GST_TAG_GENRE, "genre"},
  };

  for (gsize i = 0; i < G_N_ELEMENTS (map); i++) {
    gchar *val = NULL;
    if (gst_tag_list_get_string (tags, map[i].tag, &val)) {
      if (!self->tag_meta)
        self->tag_meta = gst_structure_new_empty ("tags");
      gst_structure_set (self->tag_meta, map[i].key, G_TYPE_STRING, val, NULL);
      g_free (val);
    }
  }
}

static gboolean
gst_cmr_frames_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstCmrFrames *self = GST_CMR_FRAMES (parent);
  gboolean ok = TRUE;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      ok = set_caps (self, caps);
      if (!ok)
        GST_WARNING_OBJECT (self, "refusing caps %" GST_PTR_FORMAT, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_SEGMENT:
      /* upstream's time segment goes on: the output buffers keep their
       * timestamps. Never a byte segment, which would make filesink or
       * fdsink seek back over what they wrote. */
      gst_event_copy_segment (event, &self->segment);
      ensure_caps (self);
      self->need_segment = FALSE;
      return gst_pad_push_event (self->srcpad, event);
    case GST_EVENT_TAG:{
      GstTagList *tags;
      gst_event_parse_tag (event, &tags);
      set_tags (self, tags);
      gst_event_unref (event);
      return TRUE;
    }
    case GST_EVENT_GAP:
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      self->need_segment = TRUE;
      return gst_pad_event_default (pad, parent, event);
    case GST_EVENT_EOS:
      /* no EOS after an error: a sink still prerolling would wait on it */
      ok = !self->failed;
      if (ok && !self->header_sent)
        ok = send_header (self) == GST_FLOW_OK;
      if (ok && !self->cur_track) {
        gchar *track;
        g_mutex_lock (&self->lock);
        track = g_strdup (self->event_track ? self->event_track : self->track);
        g_mutex_unlock (&self->lock);
        /* a stream without buffers still has its track, empty */
        ok = open_track (self, track) == GST_FLOW_OK;
        g_free (track);
      }
      if (ok)
        ok = end_track (self) == GST_FLOW_OK;
      if (!ok) {
        self->failed = TRUE;
        gst_event_unref (event);
        return FALSE;
      }
      return gst_pad_event_default (pad, parent, event);
    case GST_EVENT_CUSTOM_DOWNSTREAM_STICKY:
      if (gst_cmr_event_is_stage (event)) {
        add_stage (self, gst_event_get_structure (event));
      } else if (gst_cmr_event_is_track (event)) {
        const GstStructure *s = gst_event_get_structure (event);
        const gchar *track = gst_structure_get_string (s, "track");
        const GstStructure *meta = NULL;
        if (gst_structure_has_field_typed (s, "meta", GST_TYPE_STRUCTURE))
          meta = gst_value_get_structure (gst_structure_get_value (s, "meta"));
        if (track) {
          /* the open track ends; the next one opens with the next buffer
           * (the header waits for it too, so that the stages of elements
           * in between get into it) */
          if (self->cur_track && strcmp (self->cur_track, track) != 0)
            ok = end_track (self) == GST_FLOW_OK;
          g_free (self->event_track);
          self->event_track = g_strdup (track);
          if (self->cur_meta)
            gst_structure_free (self->cur_meta);
          self->cur_meta = meta ? gst_structure_copy (meta) : NULL;
        }
      }
      gst_event_unref (event);
      return ok;
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

static void
reset_stream (GstCmrFrames * self)
{
  self->kind = GST_CMR_KIND_NONE;
  self->failed = FALSE;
  self->header_sent = FALSE;
  self->need_segment = TRUE;
  g_clear_pointer (&self->cur_track, g_free);
  g_clear_pointer (&self->event_track, g_free);
  if (self->cur_meta)
    g_clear_pointer (&self->cur_meta, gst_structure_free);
  if (self->tag_meta)
    g_clear_pointer (&self->tag_meta, gst_structure_free);
  g_ptr_array_set_size (self->stages, 0);
  self->index = 0;
  self->steps = 0;
  self->bytes = 0;
  gst_segment_init (&self->segment, GST_FORMAT_TIME);
}

static GstStateChangeReturn
gst_cmr_frames_change_state (GstElement * element, GstStateChange transition)
{
  GstCmrFrames *self = GST_CMR_FRAMES (element);

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
    reset_stream (self);
  return GST_ELEMENT_CLASS (gst_cmr_frames_parent_class)->change_state (element, transition);
}
