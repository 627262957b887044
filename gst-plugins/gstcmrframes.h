/* cmrframes: audio, mel or embedding buffers -> a cmr frame stream (gstcmrframes.c) */
#ifndef GST_CMR_FRAMES_H
#define GST_CMR_FRAMES_H

#include <gst/gst.h>

#include "gstcmr.h"

#include "frame.h"

G_BEGIN_DECLS

#define GST_TYPE_CMR_FRAMES (gst_cmr_frames_get_type ())
G_DECLARE_FINAL_TYPE (GstCmrFrames, gst_cmr_frames, GST, CMR_FRAMES, GstElement)

enum gst_cmr_frames_kind {
  GST_CMR_KIND_NONE = 0,
  GST_CMR_KIND_AUDIO,
  GST_CMR_KIND_MEL,
  GST_CMR_KIND_EMBEDDING
};

struct _GstCmrFrames {
  GstElement element;
  GstPad *sinkpad, *srcpad;

  /* properties, under lock */
  GMutex lock;
  gchar *track;                 /* track id when no cmr-track event names one */
  gboolean timestamps;          /* info "time" and "duration" */
  gboolean wallclock;           /* info "wallclock" */

  /* streaming state (streaming thread only) */
  enum gst_cmr_frames_kind kind;
  gint width;                   /* floats per time step (channels, n-mels) or per vector (dim) */
  gint rate;                    /* audio sample rate, Hz */
  GPtrArray *stages;            /* GstStructure *: provenance from upstream, in order */
  gboolean header_sent;
  gboolean need_segment;
  gchar *cur_track;             /* the open track (NULL: none yet) */
  gchar *event_track;           /* the track the last cmr-track event named */
  GstStructure *cur_meta;       /* its metadata from a cmr-track event */
  GstStructure *tag_meta;       /* metadata from stream tags (title, artist, ...) */
  gint64 index;                 /* tensor frames written in the open track */
  guint64 steps;                /* time steps (samples, frames) in the open track */
  guint64 bytes;                /* bytes pushed */
  GstSegment segment;           /* the input's, for stream times */
  struct cmr_frame fr;
  gboolean failed;              /* an error was posted: stay quiet until READY */
};

GST_ELEMENT_REGISTER_DECLARE (cmrframes);

G_END_DECLS

#endif
