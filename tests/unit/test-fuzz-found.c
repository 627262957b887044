/* What the fuzzers (tests/fuzz) found, kept as regression tests: each input
 * is committed as tests/fuzz/seeds/TARGET/found-*, so `make fuzz` starts from
 * it too, and here it must give the clean error it gives now. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "model.h"
#include "tap.h"

static void *slurp(const char *rel, size_t *len)
{
    const char *src = getenv("CMR_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", src ? src : ".", rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        skip_all("cannot open %s (set CMR_SRCDIR)", path);
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

/* the address space this process may still grow by: a loader that allocates
 * what a header claims, before checking the file holds it, fails with ENOMEM */
static void limit_growth(size_t bytes)
{
    size_t pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%zu", &pages) != 1)
        pages = 0;
    if (f)
        fclose(f);
    struct rlimit rl = {pages * 4096 + bytes, pages * 4096 + bytes};
    if (pages)
        setrlimit(RLIMIT_AS, &rl);
}

int main(void)
{
    tap_plan_none();
    limit_growth((size_t)256 << 20);

    /* fuzz-model: a 472-byte file whose header declares a cpc model of about
     * 690 MB; the loader allocated it all before finding the file truncated */
    size_t len;
    void *buf = slurp("tests/fuzz/seeds/model/found-oom-header.cmr", &len);
    struct cmr_error err = {0};
    struct cmr_model *m = cmr_model_load_mem(buf, len, "found.cmr", &err);
    ok(!m && err.code == CMR_ETRUNCATED && strstr(err.msg, "while reading tensors (a cpc model") &&
           strstr(err.msg, "needs"),
       "a header declaring a model larger than the file is refused before allocating: %s", err.msg);
    cmr_model_free(m);
    return tap_done();
}
