/* cmrencode: log-mel frames -> one embedding per segment (gstcmrencode.c) */
#ifndef GST_CMR_ENCODE_H
#define GST_CMR_ENCODE_H

#include <gst/gst.h>

#include "gstcmr.h"

#include "model.h"
#include "stream/encoder.h"
#include "stream/segmenter.h"

G_BEGIN_DECLS

#define GST_TYPE_CMR_ENCODE (gst_cmr_encode_get_type ())
G_DECLARE_FINAL_TYPE (GstCmrEncode, gst_cmr_encode, GST, CMR_ENCODE, GstElement)

struct _GstCmrEncode {
  GstElement element;
  GstPad *sinkpad, *srcpad;

  /* properties, under lock; a change of model sets reload */
  GMutex lock;
  gchar *model_path;
  gint hop;                     /* mel frames from one segment's start to the next */
  gint batch;                   /* most segments per forward pass */
  gint threads;
  gboolean pad;                 /* zero-pad a last, partial segment instead of dropping it */
  gboolean reload;

  /* streaming state (streaming thread only) */
  struct cmr_model *model;
  struct cmr_segmenter *seg;    /* cuts the segments (lib/stream/segmenter.h) */
  struct cmr_encoder *enc;      /* batches them, runs the model (lib/stream/encoder.h) */
  gint dim;                     /* floats per embedding */
  gint rate, mel_hop;           /* from the input caps */
  guint64 next_offset;          /* frame after the last one received */
  GstClockTime t0;              /* audio time of frame t0_frame, the run's first */
  guint64 t0_frame;
  guint64 *starts;              /* start frame of each queued segment */
  gboolean discont;
  GstEvent *pending_stage;
  gboolean failed;              /* an error was posted: stay quiet until READY */
};

GST_ELEMENT_REGISTER_DECLARE (cmrencode);

G_END_DECLS

#endif
