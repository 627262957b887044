/* cmrmel: 16 kHz mono float audio -> cmr's log-mel frames (gstcmrmel.c) */
#ifndef GST_CMR_MEL_H
#define GST_CMR_MEL_H

#include <gst/gst.h>

#include "gstcmr.h"

#include "dsp/mel.h"

G_BEGIN_DECLS

#define GST_TYPE_CMR_MEL (gst_cmr_mel_get_type ())
G_DECLARE_FINAL_TYPE (GstCmrMel, gst_cmr_mel, GST, CMR_MEL, GstElement)

struct _GstCmrMel {
  GstElement element;
  GstPad *sinkpad, *srcpad;

  /* properties, under lock; a change sets reconfigure */
  GMutex lock;
  gint n_mels, n_fft, hop;      /* hop 0: n_fft / 2 */
  gdouble f_min, f_max;
  gboolean htk;
  gchar *norm;                  /* stats file */
  gboolean reconfigure;

  /* streaming state (streaming thread only) */
  struct cmr_mel *mel;          /* the front end, built going to PAUSED */
  struct cmr_mel_cfg active;    /* the configuration mel was built with */
  gboolean have_stats;
  gdouble mean, std;            /* from the stats file */
  gfloat *out;                  /* output frames scratch */
  gsize out_cap;                /* in frames */
  GstClockTime t0;              /* audio time of the current run's first sample */
  guint64 run_samples;          /* samples pushed in the current run */
  guint64 run_frames;           /* frames out of the current run */
  guint64 offset;               /* frames out since the stream started */
  gboolean discont;             /* flag the next output buffer */
  GstEvent *pending_caps;       /* caps of the front end configure() built, not sent yet */
  GstEvent *pending_stage;      /* provenance event to send before the next buffer */
  gboolean failed;              /* an error was posted: stay quiet until READY */
};

GST_ELEMENT_REGISTER_DECLARE (cmrmel);

G_END_DECLS

#endif
