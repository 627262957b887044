/* What cmr's GStreamer elements share: the caps types they exchange, and the
 * two custom events that carry cmr's provenance and track ids through a
 * pipeline (docs/gstreamer.md).
 *
 * Caps (all data F32LE, row-major):
 *   application/x-cmr-mel, n-mels=(int)F, rate=(int)R, hop=(int)H
 *       each buffer T x F floats: T log-mel frames; frame i of the stream is
 *       centred on audio sample i*H (rate R). GST_BUFFER_OFFSET is the index
 *       of its first frame since the stream started (a flush restarts it),
 *       PTS the audio time of that frame, duration T*H/R.
 *   application/x-cmr-embedding, dim=(int)D, rate=(int)R, hop=(int)H
 *       each buffer D floats: one embedding; OFFSET is the mel frame its
 *       segment starts at, PTS the audio time of that frame, duration the
 *       segment's span.
 *   application/x-cmr-frames
 *       bytes of a cmr frame stream (docs/frames.md).
 *
 * Events (custom, downstream, sticky):
 *   "cmr-stage-<program>": { program=(string), version=(string), params... }
 *       one provenance stage: cmrmel and cmrencode push theirs, cmrframesdec
 *       replays the stages of the stream it reads; cmrframes writes them
 *       into the header it produces, in the order they arrived.
 *   "cmr-track": { track=(string), meta=(GstStructure) }
 *       sent by cmrframesdec before the buffers of each track it reads, so
 *       that cmrframes writes them under the same track id and metadata.
 */
#ifndef GST_CMR_H
#define GST_CMR_H

#include <gst/gst.h>

G_BEGIN_DECLS

/* GStreamer 1.18 (configure's minimum) lacks the element registration macros of 1.20 */
#if !GST_CHECK_VERSION(1, 20, 0)
#define GST_ELEMENT_REGISTER_DEFINE(e, e_n, r, t) \
  gboolean gst_element_register_##e (GstPlugin * plugin) \
  { return gst_element_register (plugin, e_n, r, t); }
#define GST_ELEMENT_REGISTER_DECLARE(e) gboolean gst_element_register_##e (GstPlugin * plugin);
#define GST_ELEMENT_REGISTER(e, p) gst_element_register_##e (p)
#endif

#define GST_CMR_MEL_MEDIA "application/x-cmr-mel"
#define GST_CMR_EMBEDDING_MEDIA "application/x-cmr-embedding"
#define GST_CMR_FRAMES_MEDIA "application/x-cmr-frames"

#define GST_CMR_STAGE_PREFIX "cmr-stage-"
#define GST_CMR_TRACK_EVENT "cmr-track"

/* the tolerance on timestamp gaps before an element treats its input as
 * discontinuous (GstAudioDecoder's and audiobasesink's default, 40 ms) */
#define GST_CMR_DISCONT_TOLERANCE (40 * GST_MSECOND)

/* A sticky provenance event for `program`; params is a NULL-terminated list
 * of key, value (strings). */
GstEvent *gst_cmr_stage_event_new (const gchar * program, const gchar * first_key, ...)
    G_GNUC_NULL_TERMINATED;
/* the same from a ready structure (taken) whose fields are the parameters */
GstEvent *gst_cmr_stage_event_new_full (const gchar * program, const gchar * version,
    GstStructure * params);
gboolean gst_cmr_event_is_stage (GstEvent * event);

/* the cmr-track event; meta may be NULL */
GstEvent *gst_cmr_track_event_new (const gchar * track, const GstStructure * meta);
gboolean gst_cmr_event_is_track (GstEvent * event);

/* the time of position `pos` (samples or frames) at `rate` per second, in ns */
static inline GstClockTime
gst_cmr_time_of (guint64 pos, guint64 num, guint64 rate)
{
  return gst_util_uint64_scale (pos, GST_SECOND * num, rate);
}

G_END_DECLS

#endif
