/* cmr-test-launch: gst-launch-1.0 for the error tests (tests/cli/950-gst.bats).
 *
 *   cmr-test-launch [--timeout S] PIPELINE-DESCRIPTION...
 *
 * Runs the pipeline to EOS or to the first error, then stops it and prints
 * every error message that was posted, one "ERROR: from element PATH: text"
 * line each (with its debug text on the next line), so that a test can count
 * them. Exit: 0 at EOS, 1 after an error, 2 when the description does not
 * parse, 3 when neither came within the timeout (default 10 s).
 *
 * Why not gst-launch-1.0 itself: gst-launch-1.0 1.22 handles an error in its
 * bus sync handler, in the thread that posts it, by calling
 * g_main_loop_quit() on a loop that main() may not be running yet (it starts
 * it after gst_element_set_state (PAUSED) returns). An error posted by a
 * streaming thread in that window is lost and gst-launch-1.0 waits for ever.
 * This program pops the bus instead, which has no such window.
 */
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
print_error (GstMessage * msg)
{
  GError *e = NULL;
  gchar *debug = NULL, *path = gst_object_get_path_string (GST_MESSAGE_SRC (msg));

  gst_message_parse_error (msg, &e, &debug);
  fprintf (stderr, "ERROR: from element %s: %s\n", path, e->message);
  if (debug)
    fprintf (stderr, "%s\n", debug);
  g_clear_error (&e);
  g_free (debug);
  g_free (path);
}

int
main (int argc, char **argv)
{
  GstElement *pipeline;
  GstBus *bus;
  GstMessage *msg;
  GError *e = NULL;
  gdouble timeout = 10;
  int first = 1, rc;

  gst_init (&argc, &argv);
  if (argc > 2 && !strcmp (argv[1], "--timeout")) {
    timeout = g_ascii_strtod (argv[2], NULL);
    first = 3;
  }
  if (first >= argc) {
    fprintf (stderr, "usage: cmr-test-launch [--timeout S] PIPELINE-DESCRIPTION...\n");
    return 2;
  }
  pipeline = gst_parse_launchv ((const gchar **) argv + first, &e);
  if (!pipeline || e) {
    fprintf (stderr, "cmr-test-launch: %s\n", e ? e->message : "cannot build the pipeline");
    return 2;
  }
  bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (bus, (GstClockTime) (timeout * GST_SECOND),
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (!msg) {
    fprintf (stderr, "cmr-test-launch: neither EOS nor an error within %g s\n", timeout);
    rc = 3;
  } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
    rc = 0;
  } else {
    print_error (msg);
    rc = 1;
  }
  if (msg)
    gst_message_unref (msg);
  /* stop, then report the errors posted after the first one */
  gst_element_set_state (pipeline, GST_STATE_NULL);
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR))) {
    print_error (msg);
    gst_message_unref (msg);
  }
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return rc;
}
