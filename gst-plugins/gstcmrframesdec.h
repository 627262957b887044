/* cmrframesdec: a cmr frame stream -> audio, mel or embedding buffers (gstcmrframesdec.c) */
#ifndef GST_CMR_FRAMES_DEC_H
#define GST_CMR_FRAMES_DEC_H

#include <gst/gst.h>

#include "frame.h"
#include "gstcmr.h"

G_BEGIN_DECLS

#define GST_TYPE_CMR_FRAMES_DEC (gst_cmr_frames_dec_get_type ())
G_DECLARE_FINAL_TYPE (GstCmrFramesDec, gst_cmr_frames_dec, GST, CMR_FRAMES_DEC, GstElement)

struct _GstCmrFramesDec {
  GstElement element;
  GstPad *sinkpad, *srcpad;

  /* properties, under lock */
  GMutex lock;
  gchar *track;                 /* only this track (NULL: every track) */
  gint hop;                     /* mel hop in samples when the header does not say */

  /* streaming state (streaming thread only) */
  struct cmr_decoder *dec;      /* lib/frame.c's push-mode frame decoder */
  gboolean have_header;         /* the stream's first header was handled */
  gint stream_hop;              /* from the header's provenance, or 0 */
  struct cmr_frame fr;
  gchar *cur_track;             /* track being output (NULL: none) */
  gboolean skipping;            /* the current track is filtered out */
  gboolean failed;              /* an error was posted: stay quiet until a flush */
  GstCaps *caps;                /* caps of the buffers being output */
  GstClockTime base;            /* time the current track starts at */
  GstClockTime end;             /* end of the last buffer output */
  gboolean need_segment, discont;
  GList *stages;                /* cmr-stage events not sent yet */
  GstEvent *track_event;        /* cmr-track event not sent yet */
};

GST_ELEMENT_REGISTER_DECLARE (cmrframesdec);

G_END_DECLS

#endif
