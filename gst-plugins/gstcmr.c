/* The custom events cmr's elements share (gstcmr.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdarg.h>
#include <string.h>

#include "gstcmr.h"

/* a structure name from a program name: GstStructure names take letters,
 * digits and - _ / : . only */
static gchar *
stage_name (const gchar * program)
{
  gchar *name = g_strconcat (GST_CMR_STAGE_PREFIX, program, NULL);
  for (gchar * p = name + strlen (GST_CMR_STAGE_PREFIX); *p; p++) {
    if (!g_ascii_isalnum (*p) && !strchr ("-_/:.", *p))
      *p = '_';
  }
  return name;
}

GstEvent *
gst_cmr_stage_event_new_full (const gchar * program, const gchar * version,
    GstStructure * params)
{
  gchar *name = stage_name (program);
  GstStructure *s = params;

  gst_structure_set_name (s, name);
  gst_structure_set (s, "program", G_TYPE_STRING, program,
      "version", G_TYPE_STRING, version ? version : "", NULL);
  g_free (name);
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_STICKY, s);
}

GstEvent *
gst_cmr_stage_event_new (const gchar * program, const gchar * first_key, ...)
{
  GstStructure *s = gst_structure_new_empty ("cmr-stage");
  va_list ap;

  va_start (ap, first_key);
  for (const gchar * key = first_key; key; key = va_arg (ap, const gchar *)) {
    const gchar *val = va_arg (ap, const gchar *);
    /* "program" and "version" are the stage's own fields: prefix clashes */
    if (!strcmp (key, "program") || !strcmp (key, "version")) {
      gchar *k = g_strconcat ("param-", key, NULL);
      gst_structure_set (s, k, G_TYPE_STRING, val, NULL);
      g_free (k);
    } else {
      gst_structure_set (s, key, G_TYPE_STRING, val, NULL);
    }
  }
  va_end (ap);
  return gst_cmr_stage_event_new_full (program, PACKAGE_VERSION, s);
}

gboolean
gst_cmr_event_is_stage (GstEvent * event)
{
  const GstStructure *s;

  if (GST_EVENT_TYPE (event) != GST_EVENT_CUSTOM_DOWNSTREAM_STICKY)
    return FALSE;
  s = gst_event_get_structure (event);
  return s && g_str_has_prefix (gst_structure_get_name (s), GST_CMR_STAGE_PREFIX);
}

GstEvent *
gst_cmr_track_event_new (const gchar * track, const GstStructure * meta)
{
  GstStructure *s = gst_structure_new (GST_CMR_TRACK_EVENT,
      "track", G_TYPE_STRING, track, NULL);
  if (meta)
    gst_structure_set (s, "meta", GST_TYPE_STRUCTURE, meta, NULL);
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_STICKY, s);
}

gboolean
gst_cmr_event_is_track (GstEvent * event)
{
  return GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_DOWNSTREAM_STICKY
      && gst_event_has_name (event, GST_CMR_TRACK_EVENT);
}
