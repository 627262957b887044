/* lib/tracklist: the TSV track lists of cmr-decode --list */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tracklist.h"
#include "../tap.h"

static int parse(struct cmr_tracklist *tl, const char *text, struct cmr_error *err)
{
    memset(err, 0, sizeof *err);
    return cmr_tracklist_parse(tl, text, strlen(text), "list.tsv", "/data", err);
}

static void expect_error(const char *text, const char *want_substr, const char *what)
{
    struct cmr_tracklist tl;
    struct cmr_error err;
    int rc = parse(&tl, text, &err);
    ok(rc == CMR_EFORMAT && strstr(err.msg, want_substr) != NULL && tl.n == 0,
       "%s: rc %d, \"%s\"", what, rc, err.msg);
    cmr_tracklist_free(&tl);
}

static void test_good(void)
{
    struct cmr_tracklist tl;
    struct cmr_error err;
    struct cmr_frame fr;
    int rc = parse(&tl,
                   "split\tpath\ttrack\tlabel\r\n"
                   "training\ta/1.mp3\tt1\tRock\r\n"
                   "\n"
                   "test\t/abs/2.flac\tt2\t\n",
                   &err);
    ok(rc == CMR_OK, "parse a list with CRLF, an empty line, an empty value: %s", err.msg);
    ok(tl.n == 2, "2 entries, got %zu", tl.n);
    ok(tl.n_meta == 2 && !strcmp(tl.meta_keys[0], "split") && !strcmp(tl.meta_keys[1], "label"),
       "metadata columns split, label in header order");
    if (tl.n == 2) {
        ok(!strcmp(tl.entries[0].path, "/data/a/1.mp3"), "relative path resolved against the list's dir: %s",
           tl.entries[0].path);
        ok(!strcmp(tl.entries[1].path, "/abs/2.flac"), "absolute path kept: %s", tl.entries[1].path);
        ok(!strcmp(tl.entries[0].track, "t1") && !strcmp(tl.entries[1].track, "t2"), "track ids");
        ok(!strcmp(tl.entries[0].values[1], "Rock") && !strcmp(tl.entries[1].values[1], ""),
           "values, an empty one kept empty");
        ok(tl.entries[0].line == 2 && tl.entries[1].line == 4, "line numbers 2 and 4");
        cmr_frame_init(&fr);
        ok(cmr_tracklist_set_meta(&tl, 0, &fr) == CMR_OK && fr.n_meta == 2 &&
               !strcmp(cmr_frame_meta_get(&fr, "split"), "training") &&
               !strcmp(cmr_frame_meta_get(&fr, "label"), "Rock"),
           "set_meta puts the columns on a frame");
        ok(cmr_tracklist_set_meta(&tl, 5, &fr) == CMR_EINVAL, "set_meta out of range");
        cmr_frame_free(&fr);
    }
    cmr_tracklist_free(&tl);

    rc = parse(&tl, "path\nx.wav\ny.wav", &err);
    ok(rc == CMR_OK && tl.n == 2 && !strcmp(tl.entries[0].track, "x.wav") &&
           !strcmp(tl.entries[1].path, "/data/y.wav") && tl.n_meta == 0,
       "no track column: the id is the path as written; no final newline needed");
    cmr_tracklist_free(&tl);

    rc = parse(&tl, "path\ttrack\n", &err);
    ok(rc == CMR_OK && tl.n == 0, "a header alone is an empty, valid list");
    cmr_tracklist_free(&tl);

    rc = cmr_tracklist_parse(&tl, "path\nx.wav\n", 11, "l", NULL, &err);
    ok(rc == CMR_OK && !strcmp(tl.entries[0].path, "x.wav"), "no base dir: path as is");
    cmr_tracklist_free(&tl);
}

static void test_bad(void)
{
    struct cmr_tracklist tl;
    struct cmr_error err;
    expect_error("", "empty list", "empty file");
    expect_error("\npath\n", "empty header", "empty first line");
    expect_error("file\ttrack\nx\ty\n", "no 'path' column", "no path column");
    expect_error("path\ttrack\n/a.wav\t1\n/b.wav\t1\n", "duplicate track id '1' (lines 2 and 3)", "duplicate ids");
    expect_error("path\n/a.wav\n/b.wav\n/a.wav\n", "duplicate track id '/a.wav' (lines 2 and 4)",
                 "duplicate paths without a track column");
    expect_error("path\ttrack\n/a.wav\n", "list.tsv:2: 1 fields, the header has 2", "too few fields");
    expect_error("path\ttrack\n/a.wav\t1\textra\n", "list.tsv:2: 3 fields", "too many fields");
    expect_error("path\tpath\n", "appears twice", "duplicate column");
    expect_error("path\t\tx\n", "column 2 has an empty name", "empty column name");
    expect_error("path\ttrack\n\t1\n", "list.tsv:2: empty path", "empty path");
    expect_error("path\ttrack\na\t\n", "list.tsv:2: empty track id", "empty track id");
    /* issue 11 I: what goes into frames must be UTF-8 */
    expect_error("path\ttrack\tlabel\na.wav\tx\t\xff\xfe\n",
                 "list.tsv:2: column 'label': '' is not valid UTF-8 (byte 0xff at offset 0)", "label \\xff\\xfe");
    expect_error("path\ttrack\na.wav\tcaf\xe9\n", "list.tsv:2: column 'track': 'caf' is not valid UTF-8 (byte 0xe9",
                 "track caf\\xe9");
    expect_error("path\ncaf\xe9.wav\n", "without a 'track' column the path is the track id", "path caf\\xe9 as the id");
    expect_error("path\tl\xe9\n", "list.tsv:1: column 2: name is not valid UTF-8", "column name l\\xe9");
    {
        const char bin[] = "path\na\0b\n";
        int rc = cmr_tracklist_parse(&tl, bin, sizeof bin - 1, "list.tsv", NULL, &err);
        ok(rc == CMR_EFORMAT && strstr(err.msg, "NUL"), "NUL byte refused: %s", err.msg);
        cmr_tracklist_free(&tl);
    }
    {
        size_t n = CMR_TRACKLIST_MAX_LINE + 100;
        char *big = malloc(n + 1);
        memcpy(big, "path\n", 5);
        memset(big + 5, 'a', n - 5);
        big[n] = 0;
        int rc = cmr_tracklist_parse(&tl, big, n, "list.tsv", NULL, &err);
        ok(rc == CMR_EFORMAT && strstr(err.msg, "longer than"), "overlong line refused: %s", err.msg);
        cmr_tracklist_free(&tl);
        free(big);
    }
    ok(cmr_tracklist_read(&tl, "/nonexistent/list.tsv", &err) == CMR_EIO &&
           strstr(err.msg, "/nonexistent/list.tsv: No such file"), "missing file: %s", err.msg);
}

static void test_add(void)
{
    struct cmr_tracklist tl;
    struct cmr_error err = {0};
    cmr_tracklist_init(&tl);
    ok(cmr_tracklist_add(&tl, "a.wav", "a.wav", &err) == CMR_OK &&
           cmr_tracklist_add(&tl, "b.wav", "b.wav", &err) == CMR_OK &&
           cmr_tracklist_check_unique(&tl, "arguments", &err) == CMR_OK, "add distinct files");
    cmr_tracklist_add(&tl, "a.wav", "a.wav", &err);
    ok(cmr_tracklist_check_unique(&tl, "arguments", &err) == CMR_EFORMAT &&
           strstr(err.msg, "arguments: duplicate track id 'a.wav' (lines 1 and 3)"),
       "the same file twice: %s", err.msg);
    cmr_tracklist_free(&tl);
    {
        const char *ok_list = "path\ttrack\ncaf\xe9.wav\tcafe\n";
        ok(cmr_tracklist_parse(&tl, ok_list, strlen(ok_list), "list.tsv", NULL, &err) == CMR_OK && tl.n == 1,
           "a path that is not UTF-8 is fine with a UTF-8 track id");
        cmr_tracklist_free(&tl);
    }
    cmr_tracklist_init(&tl);
    ok(cmr_tracklist_add(&tl, "caf\xe9.wav", "caf\xe9.wav", &err) == CMR_EFORMAT &&
           strstr(err.msg, "is not valid UTF-8 (byte 0xe9 at offset 3)"), "a file name caf\\xe9: %s", err.msg);
    cmr_tracklist_free(&tl);
}

int main(void)
{
    tap_plan_none();
    test_good();
    test_bad();
    test_add();
    return tap_done();
}
