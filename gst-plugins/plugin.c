/* The cmr GStreamer plugin: one registration per element (docs/gstreamer.md).
 *
 *   cmrmel         16 kHz mono audio -> log-mel frames (the cmr-mel front end)
 *   cmrencode      log-mel frames -> one embedding per segment (a cmr model)
 *   cmrframes      audio, mel or embedding buffers -> a cmr frame stream (bytes)
 *   cmrframesdec   a cmr frame stream -> audio, mel or embedding buffers
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#include "gstcmrencode.h"
#include "gstcmrframes.h"
#include "gstcmrframesdec.h"
#include "gstcmrmel.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (cmrmel, plugin);
  ret |= GST_ELEMENT_REGISTER (cmrencode, plugin);
  ret |= GST_ELEMENT_REGISTER (cmrframes, plugin);
  ret |= GST_ELEMENT_REGISTER (cmrframesdec, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, cmr,
    "cmr: contrastive music representations (log-mel, encoders, frame streams)",
    plugin_init, PACKAGE_VERSION, "GPL", PACKAGE_NAME, "unknown")
