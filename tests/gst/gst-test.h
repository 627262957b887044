/* Shared helpers of the GstHarness tests (tests/gst/test-*.c): TAP output
 * (tests/tap.h), loading the plugin from the build tree into a registry of
 * the test's own, and a few buffer helpers. */
#ifndef CMR_GST_TEST_H
#define CMR_GST_TEST_H

#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "util/rng.h"

/* Points GStreamer at the plugin in the build tree, with a registry file of
 * this test's own (the system plugins stay visible: audiotestsrc, wavparse),
 * and checks that the plugin loads. */
static void
gst_test_init (const char *name, int *argc, char ***argv)
{
  char reg[1024];

  tap_plan_none ();
  snprintf (reg, sizeof reg, "%s/registry-%s.bin", CMR_GST_REGISTRY_DIR, name);
  g_setenv ("GST_REGISTRY_1_0", reg, TRUE);
  g_setenv ("GST_PLUGIN_PATH_1_0", CMR_GST_PLUGIN_DIR, TRUE);
  gst_init (argc, argv);
  GstPlugin *p = gst_registry_find_plugin (gst_registry_get (), "cmr");
  if (!ok (p != NULL, "the cmr plugin loads from %s", CMR_GST_PLUGIN_DIR))
    exit (tap_done ());
  gst_object_unref (p);
}

/* pops the error messages on bus, returns how many there were; prints them */
G_GNUC_UNUSED static int
count_errors (GstBus * bus)
{
  GstMessage *m;
  int n = 0;
  while ((m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR))) {
    GError *e = NULL;
    gst_message_parse_error (m, &e, NULL);
    diag ("error from %s: %s", GST_MESSAGE_SRC_NAME (m), e ? e->message : "?");
    g_clear_error (&e);
    gst_message_unref (m);
    n++;
  }
  /* drop the other messages: they hold the element, which holds the bus */
  gst_bus_set_flushing (bus, TRUE);
  gst_bus_set_flushing (bus, FALSE);
  return n;
}

/* a buffer holding n floats, with PTS, duration and offset (NONE to leave unset) */
static GstBuffer *
float_buffer (const float *x, size_t n, GstClockTime pts, GstClockTime dur, guint64 offset)
{
  GstBuffer *b = gst_buffer_new_allocate (NULL, n * sizeof (float), NULL);
  gst_buffer_fill (b, 0, x, n * sizeof (float));
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = dur;
  GST_BUFFER_OFFSET (b) = offset;
  return b;
}

/* a growing array of floats pulled from a harness */
struct fvec {
  float *x;
  size_t n, cap;
};

static void
fvec_push (struct fvec *v, const float *x, size_t n)
{
  if (v->n + n > v->cap) {
    v->cap = (v->n + n) * 2;
    v->x = realloc (v->x, v->cap * sizeof (float));
  }
  memcpy (v->x + v->n, x, n * sizeof (float));
  v->n += n;
}

G_GNUC_UNUSED static void
fvec_push_buffer (struct fvec *v, GstBuffer * b)
{
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_READ);
  fvec_push (v, (const float *) map.data, map.size / sizeof (float));
  gst_buffer_unmap (b, &map);
}

/* something music-like: a few partials with vibrato and a little noise */
G_GNUC_UNUSED static float *
make_audio (size_t n, double rate, uint64_t seed)
{
  struct cmr_rng rng;
  float *x = malloc (n * sizeof (float));
  cmr_rng_seed (&rng, seed);
  for (size_t i = 0; i < n; i++) {
    double t = (double) i / rate;
    double f = 220.0 * (1.0 + 0.01 * sin (2 * M_PI * 5 * t));
    x[i] = (float) (0.3 * sin (2 * M_PI * f * t) + 0.15 * sin (2 * M_PI * 3.01 * f * t)
        + 0.1 * sin (2 * M_PI * 1100 * t) * (fmod (t, 0.5) < 0.25)
        + 0.02 * cmr_rng_normal (&rng));
  }
  return x;
}

/* the caps of the harness's sink (the element's output), as a structure copy */
static GstStructure *
out_structure (GstHarness * h)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  GstStructure *s;
  if (!caps)
    return NULL;
  s = gst_structure_copy (gst_caps_get_structure (caps, 0));
  gst_caps_unref (caps);
  return s;
}

/* a flushing seek's events, as a harness pushes them upstream of the element */
static void
push_flush (GstHarness * h, GstClockTime start)
{
  GstSegment seg;
  gst_harness_push_event (h, gst_event_new_flush_start ());
  gst_harness_push_event (h, gst_event_new_flush_stop (TRUE));
  gst_segment_init (&seg, GST_FORMAT_TIME);
  seg.start = seg.time = seg.position = start;
  gst_harness_push_event (h, gst_event_new_segment (&seg));
}

/* counts events of a type the element sent downstream, dropping them */
G_GNUC_UNUSED static int
count_events (GstHarness * h, GstEventType type, const char *custom_name)
{
  int n = 0;
  GstEvent *e;
  while ((e = gst_harness_try_pull_event (h))) {
    if (GST_EVENT_TYPE (e) == type && (!custom_name || gst_event_has_name (e, custom_name)))
      n++;
    gst_event_unref (e);
  }
  return n;
}

#endif
