/* libFuzzer target for the safetensors importer: the container parser
 * (lib/safetensors.c, cmr_safetensors_parse) and the model import on top of
 * it (lib/model_safetensors.c, cmr_model_import, which reads a path: the bytes go
 * through a memfd). Any bytes in, tensors/a model or a clean error out,
 * never a crash, a leak or unbounded memory. `make fuzz`. */
#define _GNU_SOURCE
#include "model.h"
#include "safetensors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmr_error err = {0};
    struct cmr_safetensors *st = NULL;
    if (cmr_safetensors_parse(data, size, "fuzz", &st, &err) != CMR_OK)
        return 0;
    /* every accessor on every tensor */
    for (int i = 0; i < st->n_tensors; i++) {
        const struct cmr_safetensors_tensor *t = &st->tensors[i];
        size_t n = cmr_safetensors_numel(t);
        (void)cmr_safetensors_dtype_name(t->dtype);
        (void)cmr_safetensors_find(st, t->name);
        float *dst = malloc((n ? n : 1) * sizeof *dst);
        if (dst)
            cmr_safetensors_get(st, t, dst);
        free(dst);
    }
    (void)cmr_safetensors_meta(st, "cmr.kind");
    cmr_safetensors_free(st);

    /* a parseable container: try it as a model */
    int fd = memfd_create("fuzz.safetensors", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        struct cmr_import_opts o;
        cmr_import_opts_init(&o);
        struct cmr_model *m = cmr_model_import(path, &o, &err);
        cmr_model_free(m);
    }
    close(fd);
    return 0;
}
