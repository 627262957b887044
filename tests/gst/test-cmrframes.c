/* cmrframes and cmrframesdec under GstHarness: every caps type cmrframes
 * takes (audio, mel, embedding) written as frames that cmr's reader accepts,
 * the header's provenance, tracks (the property, a change, cmr-track
 * events), timestamps, tags, EOS without data, the byte segment after a
 * flush; cmrframesdec: frames in arbitrary byte chunks back to buffers (caps,
 * timestamps, DISCONT per track, the track filter), a round trip through
 * both, and the streams it refuses (garbage, truncation, kinds without caps). */
#include "config.h"

#include <math.h>
#include <sys/resource.h>

#include "gst-test.h"
#include "frame.h"
#include "gstcmr.h"

#define RATE 16000

/* every byte the harness's sink received */
static GByteArray *
pull_bytes (GstHarness * h)
{
  GByteArray *a = g_byte_array_new ();
  GstBuffer *b;
  while ((b = gst_harness_try_pull (h))) {
    GstMapInfo map;
    gst_buffer_map (b, &map, GST_MAP_READ);
    g_byte_array_append (a, map.data, map.size);
    gst_buffer_unmap (b, &map);
    gst_buffer_unref (b);
  }
  return a;
}

/* the frames of a stream; returns the count, or -1 on a reader error */
static int
parse (GByteArray * a, struct cmr_frame *out, int max)
{
  struct cmr_reader *rd = cmr_reader_new_mem (a->data, a->len, "test");
  struct cmr_error err = { 0 };
  int n = 0, rc;
  while (n < max && (rc = cmr_reader_next (rd, &out[n], &err)) == CMR_OK)
    n++;
  if (n < max && rc != CMR_EOF) {
    diag ("reader: %s", cmr_error_text (&err, rc));
    n = -1;
  }
  cmr_reader_free (rd);
  return n;
}

static struct cmr_frame frames[256];

static void
clear_frames (void)
{
  for (int i = 0; i < 256; i++)
    cmr_frame_free (&frames[i]);
}

static void
test_audio (void)
{
  GstHarness *h = gst_harness_new ("cmrframes");
  float x[2 * 300];
  int n, good = 1;
  GByteArray *a;

  for (int i = 0; i < 600; i++)
    x[i] = (float) sin (0.01 * i);
  gst_harness_set_src_caps_str (h,
      "audio/x-raw,format=F32LE,rate=44100,channels=2,layout=interleaved");
  gst_harness_push (h, float_buffer (x, 200, 0, gst_util_uint64_scale (100, GST_SECOND, 44100),
          GST_BUFFER_OFFSET_NONE));
  gst_harness_push (h, float_buffer (x + 200, 400, gst_util_uint64_scale (100, GST_SECOND, 44100),
          gst_util_uint64_scale (200, GST_SECOND, 44100), GST_BUFFER_OFFSET_NONE));
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_bytes (h);
  n = parse (a, frames, 256);
  ok (n == 4, "audio: header, 2 tensor frames, end frame (%d frames)", n);
  if (n == 4) {
    ok (frames[0].type == CMR_FRAME_HEADER && frames[0].n_stages == 1
        && !strcmp (frames[0].stages[0].program, "cmrframes"),
        "audio: the header's provenance is cmrframes");
    for (int i = 0; i < 2; i++) {
      struct cmr_frame *f = &frames[1 + i];
      int64_t T = i ? 200 : 100;
      double t;
      good &= f->type == CMR_FRAME_TENSOR && !strcmp (f->kind, "audio")
          && !strcmp (f->track, "stream") && f->index == i && f->offset == (i ? 100 : 0)
          && f->rate == 44100 && f->ndim == 2 && f->shape[0] == T && f->shape[1] == 2
          && !memcmp (f->data, x + (i ? 200 : 0), (size_t) T * 2 * sizeof (float))
          && cmr_frame_info_get (f, "time", &t) && fabs (t - (i ? 100.0 / 44100 : 0)) < 1e-9;
    }
    ok (good, "audio: kind audio, shape [n, 2], offsets in samples, data and time");
    ok (frames[3].type == CMR_FRAME_END && !strcmp (frames[3].track, "stream")
        && frames[3].frames == 2, "audio: end frame with the count");
  }
  g_byte_array_unref (a);
  clear_frames ();
  gst_harness_teardown (h);
}

static void
test_mel_and_provenance (void)
{
  GstHarness *h = gst_harness_new ("cmrframes");
  float x[96 * 5];
  GByteArray *a;
  GstSegment seg;
  int n;
  double t, wc;

  for (int i = 0; i < 96 * 5; i++)
    x[i] = (float) i;
  g_object_set (h->element, "track", "radio", "wallclock", TRUE, NULL);
  gst_harness_set_src_caps_str (h, "application/x-cmr-mel,n-mels=96,rate=16000,hop=256");
  /* a segment starting at 10 s: stream time = PTS - 10 s + 100 s */
  gst_segment_init (&seg, GST_FORMAT_TIME);
  seg.start = 10 * GST_SECOND;
  seg.time = 100 * GST_SECOND;
  gst_harness_push_event (h, gst_event_new_segment (&seg));
  gst_harness_push_event (h, gst_cmr_stage_event_new ("cmrmel", "hop", "256", NULL));
  gst_harness_push_event (h, gst_cmr_stage_event_new ("cmrencode", "model", "m.cmr", "program",
          "x", NULL));
  {
    GstTagList *tags = gst_tag_list_new (GST_TAG_TITLE, "A Song", GST_TAG_ORGANIZATION,
        "Radio cmr", NULL);
    gst_harness_push_event (h, gst_event_new_tag (tags));
  }
  gst_harness_push (h, float_buffer (x, 96 * 2, 11 * GST_SECOND, 32 * GST_MSECOND, 7));
  gst_harness_push (h, float_buffer (x + 192, 96 * 3, 11 * GST_SECOND + 32 * GST_MSECOND,
          48 * GST_MSECOND, 9));
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_bytes (h);
  n = parse (a, frames, 256);
  ok (n == 4, "mel: header, 2 tensor frames, end frame (%d)", n);
  if (n == 4) {
    struct cmr_stage *st = frames[0].stages;
    ok (frames[0].n_stages == 3 && !strcmp (st[0].program, "cmrmel")
        && !strcmp (st[1].program, "cmrencode") && !strcmp (st[2].program, "cmrframes")
        && st[0].n_params == 1 && !strcmp (st[0].params[0].key, "hop")
        && !strcmp (st[0].params[0].val, "256") && st[1].n_params == 2
        && !strcmp (st[1].params[1].key, "program") && !strcmp (st[1].params[1].val, "x"),
        "mel: provenance = the upstream stages in order, then cmrframes, with their parameters");
    ok (!strcmp (frames[1].kind, "mel") && frames[1].shape[0] == 2 && frames[1].shape[1] == 96
        && frames[2].shape[0] == 3 && frames[1].offset == 7 && frames[2].offset == 9
        && frames[1].index == 0 && frames[2].index == 1 && !strcmp (frames[1].track, "radio")
        && !memcmp (frames[2].data, x + 192, 3 * 96 * sizeof (float)),
        "mel: kind mel [T, 96], offset = buffer offset, track = the property");
    ok (cmr_frame_info_get (&frames[1], "time", &t) && fabs (t - 101.0) < 1e-9
        && cmr_frame_info_get (&frames[2], "duration", &t) && fabs (t - 0.048) < 1e-9,
        "mel: info time = stream time, duration");
    ok (cmr_frame_info_get (&frames[1], "wallclock", &wc)
        && fabs (wc - (double) g_get_real_time () / 1e6) < 60, "mel: info wallclock (UNIX s)");
    ok (cmr_frame_meta_get (&frames[1], "title")
        && !strcmp (cmr_frame_meta_get (&frames[1], "title"), "A Song")
        && !strcmp (cmr_frame_meta_get (&frames[2], "organization"), "Radio cmr"),
        "mel: stream tags in meta");
  }
  g_byte_array_unref (a);
  clear_frames ();
  gst_harness_teardown (h);
}

static void
test_embedding_and_tracks (void)
{
  GstHarness *h = gst_harness_new ("cmrframes");
  float x[3 * 8];
  GByteArray *a;
  int n;

  for (int i = 0; i < 24; i++)
    x[i] = (float) -i;
  g_object_set (h->element, "timestamps", FALSE, NULL);
  gst_harness_set_src_caps_str (h, "application/x-cmr-embedding,dim=8,rate=16000,hop=256");
  /* one buffer with two vectors, then a track change, then one vector */
  gst_harness_push (h, float_buffer (x, 16, 0, GST_SECOND * 3, 0));
  g_object_set (h->element, "track", "second", NULL);
  gst_harness_push (h, float_buffer (x + 16, 8, 3 * GST_SECOND, 3 * GST_SECOND, 188));
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_bytes (h);
  n = parse (a, frames, 256);
  ok (n == 6, "embedding: header, 2 frames, end, 1 frame, end (%d)", n);
  if (n == 6) {
    ok (!strcmp (frames[1].kind, "embedding") && frames[1].ndim == 1 && frames[1].shape[0] == 8
        && frames[2].index == 1 && !memcmp (frames[2].data, x + 8, 8 * sizeof (float)),
        "embedding: a buffer of 2 vectors gives 2 frames [8]");
    ok (frames[3].type == CMR_FRAME_END && !strcmp (frames[3].track, "stream")
        && frames[3].frames == 2 && !strcmp (frames[4].track, "second") && frames[4].index == 0
        && frames[4].offset == 188 && frames[5].type == CMR_FRAME_END
        && !strcmp (frames[5].track, "second") && frames[5].frames == 1,
        "a new track property ends the track and opens the next");
    ok (frames[1].n_info == 0, "timestamps=false: no info");
  }
  g_byte_array_unref (a);
  clear_frames ();
  gst_harness_teardown (h);

  /* EOS without data: header and an empty track */
  h = gst_harness_new ("cmrframes");
  gst_harness_set_src_caps_str (h, "application/x-cmr-embedding,dim=8,rate=16000,hop=256");
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_bytes (h);
  n = parse (a, frames, 256);
  ok (n == 2 && frames[0].type == CMR_FRAME_HEADER && frames[1].type == CMR_FRAME_END
      && frames[1].frames == 0, "EOS without buffers: a header and an empty track");
  g_byte_array_unref (a);
  clear_frames ();
  gst_harness_teardown (h);
}

static void
test_flush_segment (void)
{
  GstHarness *h = gst_harness_new ("cmrframes");
  float x[96];
  GstEvent *e;
  GstBuffer *b;
  int time_segments = 0, byte_segments = 0, pts_ok = 1;
  GstClockTime last_start = 0;

  memset (x, 0, sizeof x);
  gst_harness_set_src_caps_str (h, "application/x-cmr-mel,n-mels=96,rate=16000,hop=256");
  gst_harness_push (h, float_buffer (x, 96, 0, 16 * GST_MSECOND, 0));
  push_flush (h, GST_SECOND);
  gst_harness_push (h, float_buffer (x, 96, GST_SECOND, 16 * GST_MSECOND, 0));
  while ((e = gst_harness_try_pull_event (h))) {
    if (GST_EVENT_TYPE (e) == GST_EVENT_SEGMENT) {
      const GstSegment *s;
      gst_event_parse_segment (e, &s);
      if (s->format == GST_FORMAT_BYTES)
        byte_segments++;
      else if (s->format == GST_FORMAT_TIME)
        time_segments++;
      last_start = s->start;
    }
    gst_event_unref (e);
  }
  while ((b = gst_harness_try_pull (h))) {
    /* the header has no timestamp; tensor frames keep their buffer's */
    if (GST_BUFFER_PTS_IS_VALID (b) && GST_BUFFER_PTS (b) != 0 && GST_BUFFER_PTS (b) != GST_SECOND)
      pts_ok = 0;
    gst_buffer_unref (b);
  }
  ok (byte_segments == 0 && time_segments == 2 && last_start == GST_SECOND,
      "upstream's time segments go on, also after a flush; never a byte segment "
      "(filesink, fdsink would seek back)");
  ok (pts_ok, "output buffers keep the input's timestamps");
  gst_harness_teardown (h);

  {
    GstElement *el = gst_element_factory_make ("cmrframes", NULL);
    GstPad *sink = gst_element_get_static_pad (el, "sink");
    static const struct
    {
      const char *caps;
      int accept;
    } cases[] = {
      {"audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved", 1},
      {"audio/x-raw,format=F32LE,rate=48000,channels=6,layout=interleaved", 1},
      {"application/x-cmr-mel,n-mels=40,rate=16000,hop=160", 1},
      {"application/x-cmr-embedding,dim=640,rate=16000,hop=256", 1},
      {"audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved", 0},
      {"audio/x-raw,format=F32LE,rate=16000,channels=2,layout=non-interleaved", 0},
      {"video/x-raw", 0},
    };
    for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
      GstCaps *c = gst_caps_from_string (cases[i].caps);
      ok (gst_pad_query_accept_caps (sink, c) == cases[i].accept, "cmrframes %s %s",
          cases[i].accept ? "accepts" : "refuses", cases[i].caps);
      gst_caps_unref (c);
    }
    gst_object_unref (sink);
    gst_object_unref (el);
  }
}

/* ---- cmrframesdec ---- */

/* a stream: header (cmr-mel with hop 320), then `tracks` tracks of mel frames */
static GByteArray *
make_stream (int tracks, const char *kind, int truncate_end)
{
  GByteArray *a = g_byte_array_new ();
  struct cmr_frame fr;
  void *buf;
  size_t len;

  cmr_frame_init (&fr);
  cmr_frame_make_header (&fr, "cmr-decode");
  cmr_frame_stage_param (&fr, "files", "%d", 2);
  cmr_frame_add_stage (&fr, "cmr-mel");
  cmr_frame_stage_param (&fr, "hop", "%d", 320);
  cmr_frame_pack (&fr, &buf, &len);
  g_byte_array_append (a, buf, len);
  free (buf);
  for (int t = 0; t < tracks; t++) {
    char track[32];
    snprintf (track, sizeof track, "song-%d.flac", t);
    for (int i = 0; i < 3; i++) {
      int64_t shape[2] = { 10 + i, 96 };
      cmr_frame_reset (&fr);
      if (!strcmp (kind, "segment"))
        shape[0] = 188;
      cmr_frame_make_tensor (&fr, kind, track, 2, shape);
      for (size_t k = 0; k < cmr_frame_numel (&fr); k++)
        fr.data[k] = (float) (t * 1000 + i * 100) + (float) k * 1e-3f;
      fr.index = i;
      fr.offset = i == 0 ? 0 : i == 1 ? 10 : 21;
      fr.rate = RATE;
      cmr_frame_meta_set (&fr, "label", t ? "jazz" : "rock");
      cmr_frame_pack (&fr, &buf, &len);
      g_byte_array_append (a, buf, len);
      free (buf);
    }
    if (t == tracks - 1 && truncate_end)
      break;
    cmr_frame_make_end (&fr, track, 3);
    cmr_frame_pack (&fr, &buf, &len);
    g_byte_array_append (a, buf, len);
    free (buf);
  }
  cmr_frame_free (&fr);
  return a;
}

/* pushes the bytes in chunks of pseudo-random sizes */
static GstFlowReturn
push_chunks (GstHarness * h, GByteArray * a, size_t max, uint64_t seed)
{
  struct cmr_rng rng;
  GstFlowReturn ret = GST_FLOW_OK;
  cmr_rng_seed (&rng, seed);
  for (size_t i = 0; i < a->len && ret == GST_FLOW_OK;) {
    size_t k = 1 + cmr_rng_below (&rng, max);
    GstBuffer *b;
    if (k > a->len - i)
      k = a->len - i;
    b = gst_buffer_new_allocate (NULL, k, NULL);
    gst_buffer_fill (b, 0, a->data + i, k);
    ret = gst_harness_push (h, b);
    i += k;
  }
  return ret;
}

static void
test_dec (void)
{
  GByteArray *a = make_stream (2, "mel", 0);
  GstHarness *h = gst_harness_new ("cmrframesdec");
  GstBuffer *b;
  GstEvent *e;
  int nb = 0, good = 1, tracks = 0, stages = 0, hop = 0;
  GstClockTime end0 = gst_util_uint64_scale (33, 320 * GST_SECOND, RATE);

  gst_harness_set_src_caps_str (h, "application/x-cmr-frames");
  ok (push_chunks (h, a, 37, 1) == GST_FLOW_OK, "dec: a 2-track mel stream in chunks of 1-37 bytes");
  gst_harness_push_event (h, gst_event_new_eos ());
  while ((b = gst_harness_try_pull (h))) {
    int t = nb / 3, i = nb % 3;
    guint64 off = i == 0 ? 0 : i == 1 ? 10 : 21;
    GstClockTime pts = (t ? end0 : 0) + gst_util_uint64_scale (off, 320 * GST_SECOND, RATE);
    GstMapInfo map;
    gst_buffer_map (b, &map, GST_MAP_READ);
    good &= map.size == (size_t) (10 + i) * 96 * sizeof (float)
        && ((float *) map.data)[1] == (float) (t * 1000 + i * 100) + 1e-3f
        && GST_BUFFER_PTS (b) == pts && GST_BUFFER_OFFSET (b) == off
        && GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT) == (i == 0);
    gst_buffer_unmap (b, &map);
    gst_buffer_unref (b);
    nb++;
  }
  ok (nb == 6 && good, "dec: 6 mel buffers, data, offsets, PTS = offset * hop / rate (hop 320 "
      "from the header), tracks back to back, DISCONT at each track");
  {
    GstStructure *s = out_structure (h);
    int nm = 0;
    if (s) {
      gst_structure_get_int (s, "n-mels", &nm);
      gst_structure_get_int (s, "hop", &hop);
      gst_structure_free (s);
    }
    ok (nm == 96 && hop == 320, "dec: caps application/x-cmr-mel, n-mels=96, hop=320");
  }
  good = 1;
  while ((e = gst_harness_try_pull_event (h))) {
    if (gst_cmr_event_is_track (e)) {
      const GstStructure *s = gst_event_get_structure (e);
      const GstStructure *meta = gst_value_get_structure (gst_structure_get_value (s, "meta"));
      char want[32];
      snprintf (want, sizeof want, "song-%d.flac", tracks);
      good &= !strcmp (gst_structure_get_string (s, "track"), want)
          && !strcmp (gst_structure_get_string (meta, "label"), tracks ? "jazz" : "rock");
      tracks++;
    } else if (gst_cmr_event_is_stage (e)) {
      stages++;
    }
    gst_event_unref (e);
  }
  ok (tracks == 2 && good, "dec: a cmr-track event per track, with its id and metadata");
  ok (stages == 3, "dec: the header's two stages and its own go downstream as cmr-stage events");
  gst_harness_teardown (h);

  /* the track property selects one track */
  h = gst_harness_new ("cmrframesdec");
  g_object_set (h->element, "track", "song-1.flac", NULL);
  gst_harness_set_src_caps_str (h, "application/x-cmr-frames");
  push_chunks (h, a, 5000, 2);
  gst_harness_push_event (h, gst_event_new_eos ());
  nb = 0;
  good = 1;
  while ((b = gst_harness_try_pull (h))) {
    float v;
    gst_buffer_extract (b, 0, &v, sizeof v);
    good &= v >= 1000 && (nb > 0 || GST_BUFFER_PTS (b) == 0);
    gst_buffer_unref (b);
    nb++;
  }
  ok (nb == 3 && good, "dec: track=song-1.flac gives its 3 buffers only, from time 0");
  gst_harness_teardown (h);
  g_byte_array_unref (a);
}

static void
test_round_trip (void)
{
  GByteArray *a = make_stream (2, "mel", 0), *out;
  GstHarness *h = gst_harness_new_parse ("cmrframesdec ! cmrframes");
  struct cmr_frame in[16];
  int n, m, good = 1;

  gst_harness_set_src_caps_str (h, "application/x-cmr-frames");
  push_chunks (h, a, 4096, 3);
  gst_harness_push_event (h, gst_event_new_eos ());
  out = pull_bytes (h);
  for (int i = 0; i < 16; i++)
    cmr_frame_init (&in[i]);
  m = parse (a, in, 16);
  n = parse (out, frames, 256);
  ok (n == m && n == 9, "round trip: %d frames in, %d out", m, n);
  if (n == m && n == 9) {
    ok (frames[0].n_stages == 4 && !strcmp (frames[0].stages[0].program, "cmr-decode")
        && !strcmp (frames[0].stages[1].program, "cmr-mel")
        && !strcmp (frames[0].stages[2].program, "cmrframesdec")
        && !strcmp (frames[0].stages[3].program, "cmrframes")
        && !strcmp (frames[0].stages[1].params[0].val, "320"),
        "round trip: provenance cmr-decode, cmr-mel (hop 320), cmrframesdec, cmrframes");
    for (int i = 1; i < n; i++) {
      struct cmr_frame *x = &in[i], *y = &frames[i];
      good &= x->type == y->type && !strcmp (x->track, y->track);
      if (x->type == CMR_FRAME_TENSOR)
        good &= !strcmp (x->kind, y->kind) && x->index == y->index && x->offset == y->offset
            && x->rate == y->rate && x->shape[0] == y->shape[0] && x->shape[1] == y->shape[1]
            && !memcmp (x->data, y->data, cmr_frame_numel (x) * sizeof (float))
            && !strcmp (cmr_frame_meta_get (y, "label"), cmr_frame_meta_get (x, "label"));
      else
        good &= x->frames == y->frames;
    }
    ok (good, "round trip: tracks, kinds, indices, offsets, data and metadata unchanged");
  }
  for (int i = 0; i < 16; i++)
    cmr_frame_free (&in[i]);
  clear_frames ();
  g_byte_array_unref (a);
  g_byte_array_unref (out);
  gst_harness_teardown (h);
}

static void
test_dec_errors (void)
{
  GByteArray *a;
  GstHarness *h;
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;

  /* garbage: not MessagePack frames */
  h = gst_harness_new ("cmrframesdec");
  gst_harness_set_src_caps_str (h, "application/x-cmr-frames");
  a = g_byte_array_new ();
  g_byte_array_append (a, (const guint8 *) "\xc1\xc1hello, this is not a frame stream", 36);
  ok (push_chunks (h, a, 100, 4) == GST_FLOW_ERROR, "dec: garbage bytes: GST_FLOW_ERROR");
  g_byte_array_unref (a);
  gst_harness_teardown (h);

  /* a first frame that is not a header */
  h = gst_harness_new ("cmrframesdec");
  gst_harness_set_src_caps_str (h, "application/x-cmr-frames");
  a = make_stream (1, "mel", 0);
  g_byte_array_remove_range (a, 0, 60);
  ok (push_chunks (h, a, 100000, 5) == GST_FLOW_ERROR,
      "dec: a stream cut at its start: GST_FLOW_ERROR");
  g_byte_array_unref (a);
  gst_harness_teardown (h);

  /* a kind without caps */
  h = gst_harness_new ("cmrframesdec");
  gst_harness_set_src_caps_str (h, "application/x-cmr-frames");
  a = make_stream (1, "segment", 0);
  ok (push_chunks (h, a, 100000, 6) == GST_FLOW_ERROR,
      "dec: kind segment (no caps for it): GST_FLOW_ERROR");
  g_byte_array_unref (a);
  gst_harness_teardown (h);

  /* truncated: EOS inside a track posts an error */
  h = gst_harness_new ("cmrframesdec");
  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps_str (h, "application/x-cmr-frames");
  a = make_stream (1, "mel", 1);
  push_chunks (h, a, 100000, 7);
  gst_harness_push_event (h, gst_event_new_eos ());
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  ok (msg != NULL, "dec: EOS inside a track: an error message");
  if (msg)
    gst_message_unref (msg);
  /* drop the messages left: they hold the element, which holds the bus */
  gst_bus_set_flushing (bus, TRUE);
  gst_bus_set_flushing (bus, FALSE);
  g_byte_array_unref (a);
  gst_harness_teardown (h);

  /* truncated inside a frame */
  h = gst_harness_new ("cmrframesdec");
  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps_str (h, "application/x-cmr-frames");
  a = make_stream (1, "mel", 0);
  g_byte_array_set_size (a, a->len - 30);
  push_chunks (h, a, 100000, 8);
  gst_harness_push_event (h, gst_event_new_eos ());
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  ok (msg != NULL, "dec: EOS inside a frame: an error message");
  if (msg)
    gst_message_unref (msg);
  /* drop the messages left: they hold the element, which holds the bus */
  gst_bus_set_flushing (bus, TRUE);
  gst_bus_set_flushing (bus, FALSE);
  g_byte_array_unref (a);
  gst_harness_teardown (h);
  gst_object_unref (bus);
}

/* peak resident set of this process, kB */
static long
peak_rss_kb (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* a frame declaring 4 GiB of data: refused as soon as its header bytes are
 * in, with one error; what follows is not buffered (issue 11 D) */
static void
test_dec_limit (void)
{
  static const guint8 frame[] = { 0x82, 0xa1, 't', 0xa6, 't', 'e', 'n', 's', 'o', 'r',
    0xa4, 'd', 'a', 't', 'a', 0xc6, 0xff, 0xff, 0xff, 0xff
  };
  GByteArray *a = make_stream (0, "mel", 0);
  GstHarness *h = gst_harness_new ("cmrframesdec");
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GstBuffer *b;
  GstFlowReturn ret = GST_FLOW_OK;
  long rss0;
  int refused = 0;

  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps_str (h, "application/x-cmr-frames");
  g_byte_array_append (a, frame, sizeof frame);
  b = gst_buffer_new_allocate (NULL, a->len + 4096, NULL);
  gst_buffer_memset (b, 0, 0, a->len + 4096);
  gst_buffer_fill (b, 0, a->data, a->len);
  ok (gst_harness_push (h, b) == GST_FLOW_ERROR,
      "dec: header, a bin32 declaring 4 GiB and 4 KiB of zeros: GST_FLOW_ERROR at once");
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg) {
    gchar *debug = NULL;
    gst_message_parse_error (msg, NULL, &debug);
    ok (debug && strstr (debug, "frame 2 (byte ") && strstr (debug,
            "declared length or count above the limit"), "dec: the frame reader's message: %s",
        debug ? debug : "(none)");
    g_free (debug);
    gst_message_unref (msg);
  } else {
    ok (0, "dec: an error message");
  }
  /* 256 MB more: refused, not held */
  rss0 = peak_rss_kb ();
  for (int i = 0; i < 256; i++) {
    b = gst_buffer_new_allocate (NULL, 1 << 20, NULL);
    gst_buffer_memset (b, 0, 0, 1 << 20);
    ret = gst_harness_push (h, b);
    refused += ret == GST_FLOW_ERROR;
  }
  gst_harness_push_event (h, gst_event_new_eos ());
  ok (refused == 256, "dec: 256 MB more, every buffer refused");
#if defined(__SANITIZE_ADDRESS__)
  /* ASan keeps freed memory in quarantine (256 MB): RSS says nothing here */
  diag ("dec: the peak RSS grew %ld kB (not checked under AddressSanitizer)",
      peak_rss_kb () - rss0);
#else
  ok (peak_rss_kb () - rss0 < 64 * 1024, "dec: the peak RSS grew %ld kB (< 64 MB)",
      peak_rss_kb () - rss0);
#endif
  ok (count_errors (bus) == 0, "dec: and no second error message");
  gst_harness_teardown (h);
  gst_object_unref (bus);
  g_byte_array_unref (a);
}

int
main (int argc, char **argv)
{
  gst_test_init ("cmrframes", &argc, &argv);
  for (int i = 0; i < 256; i++)
    cmr_frame_init (&frames[i]);
  test_audio ();
  test_mel_and_provenance ();
  test_embedding_and_tracks ();
  test_flush_segment ();
  test_dec ();
  test_round_trip ();
  test_dec_errors ();
  test_dec_limit ();
  return tap_done ();
}
