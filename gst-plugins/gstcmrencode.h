/* cmrencode: log-mel frames -> one embedding per segment (gstcmrencode.c) */
#ifndef GST_CMR_ENCODE_H
#define GST_CMR_ENCODE_H

#include <gst/gst.h>

#include "gstcmr.h"

#include "model.h"

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
  gint dim;                     /* floats per embedding */
  gint seg_hop;                 /* hop in use */
  gint rate, mel_hop;           /* from the input caps */
  gfloat *win;                  /* mel frames [win_start, win_start + n), 96 floats each */
  gsize win_cap, n;
  guint64 win_start;
  guint64 next_start;           /* frame the next segment starts at */
  gboolean in_run;              /* frames of the current run have arrived */
  GstClockTime t0;              /* audio time of frame t0_frame */
  guint64 t0_frame;
  gfloat *x, *emb, *out, *h;    /* batch input, trunk output, output, cpc GRU state */
  guint64 *starts;              /* start frame of each queued segment */
  gint queued;
  gboolean have_h;
  gboolean discont;
  GstEvent *pending_stage;
  gboolean failed;              /* an error was posted: stay quiet until READY */
};

GST_ELEMENT_REGISTER_DECLARE (cmrencode);

G_END_DECLS

#endif
