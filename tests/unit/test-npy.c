/* lib/npy: header bytes, streaming write, atomic rename */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"
#include "../tap.h"

static void test_header(void)
{
    char h[CMR_NPY_HEADER_LEN + 1];
    int64_t s3[3] = {5, 188, 96}, s1[1] = {7};
    const char *want3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 188, 96), }";
    const char *want1 = "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }";

    ok(cmr_npy_header(h, 3, s3) == CMR_OK, "header for (5, 188, 96)");
    ok(memcmp(h, "\x93NUMPY\x01\x00", 8) == 0, "magic and version 1.0");
    ok((unsigned char)h[8] + 256 * (unsigned char)h[9] == CMR_NPY_HEADER_LEN - 10, "header length %d",
       (unsigned char)h[8] + 256 * (unsigned char)h[9]);
    ok(memcmp(h + 10, want3, strlen(want3)) == 0, "dict text");
    ok(h[CMR_NPY_HEADER_LEN - 1] == '\n' && h[CMR_NPY_HEADER_LEN - 2] == ' ', "padded with spaces, ends with newline");
    ok(CMR_NPY_HEADER_LEN % 64 == 0, "data aligned to 64 bytes");
    ok(cmr_npy_header(h, 1, s1) == CMR_OK && memcmp(h + 10, want1, strlen(want1)) == 0, "1-d shape is (7,)");
    ok(cmr_npy_header(h, 0, NULL) == CMR_OK && strstr(h + 10, "'shape': (), }") != NULL, "scalar shape ()");
    s3[1] = -1;
    ok(cmr_npy_header(h, 3, s3) == CMR_EINVAL, "negative dimension refused");
    ok(cmr_npy_header(h, 9, s3) == CMR_EINVAL, "too many dims refused");
}

static void test_write(void)
{
    char dir[] = "/tmp/test-npy-XXXXXX", path[256], buf[4096];
    struct cmr_error err = {0};
    int64_t tail[2] = {2, 3};
    float a[6] = {1, 2, 3, 4, 5, 6}, b[12];
    struct stat st;
    FILE *f;
    size_t n;

    for (int i = 0; i < 12; i++)
        b[i] = -(float)i;
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    snprintf(path, sizeof path, "%s/x.npy", dir);
    struct cmr_npy *w = cmr_npy_create(path, 2, tail, &err);
    ok(w != NULL, "create: %s", err.msg);
    ok(cmr_npy_append(w, a, 1, &err) == CMR_OK && cmr_npy_append(w, b, 2, &err) == CMR_OK, "append 1 + 2 rows");
    ok(cmr_npy_rows(w) == 3, "3 rows");
    ok(stat(path, &st) != 0, "nothing at the final name before finish");
    ok(cmr_npy_finish(w, &err) == CMR_OK, "finish: %s", err.msg);
    f = fopen(path, "rb");
    n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    ok(n == CMR_NPY_HEADER_LEN + 18 * 4, "file size %zu", n);
    ok(strstr(buf + 10, "'shape': (3, 2, 3), }") != NULL, "final shape in the header");
    ok(memcmp(buf + CMR_NPY_HEADER_LEN, a, sizeof a) == 0 &&
           memcmp(buf + CMR_NPY_HEADER_LEN + sizeof a, b, sizeof b) == 0, "data little-endian f32 in order");

    snprintf(path, sizeof path, "%s/y.npy", dir);
    w = cmr_npy_create(path, 2, tail, &err);
    cmr_npy_append(w, a, 1, &err);
    cmr_npy_abort(w);
    ok(stat(path, &st) != 0, "abort leaves nothing behind");
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "test \"$(ls -A %s)\" = x.npy", dir);
        ok(system(cmd) == 0, "no temporary files left in the directory");
    }
    snprintf(path, sizeof path, "%s/x.npy", dir);
    unlink(path);
    rmdir(dir);

    ok(cmr_npy_create("/nonexistent/dir/z.npy", 2, tail, &err) == NULL && err.code == CMR_EIO,
       "missing directory: %s", err.msg);
}

int main(void)
{
    tap_plan_none();
    test_header();
    test_write();
    return tap_done();
}
