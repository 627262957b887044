/* Reads tests/ref/frontend.ref (written by tests/ref/make_refs_frontend.py):
 *   "CMRR" | u32 version | u32 count | count x (u16 name length, name,
 *   u8 dtype (1 f32, 2 i16), u8 ndim, u32 dims[ndim], data), little-endian.
 * ref_get() returns a tensor as floats (i16 PCM becomes pcm / 32768), or NULL. */
#ifndef CMR_FRONTEND_REF_H
#define CMR_FRONTEND_REF_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_MAX 64

struct ref_tensor {
    char name[64];
    int ndim;
    uint32_t dims[4];
    size_t n;
    float *data;
};

static struct ref_tensor ref_tab[REF_MAX];
static int ref_count;

static int ref_rd(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : -1; }

static uint32_t ref_u32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* loads $CMR_SRCDIR/tests/ref/frontend.ref (or ./tests/ref/...); 0 on success */
static int ref_load(void)
{
    char path[4096];
    const char *src = getenv("CMR_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/ref/frontend.ref", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char h[12];
    if (ref_rd(f, h, 12) || memcmp(h, "CMRR", 4) || ref_u32(h + 4) != 1)
        goto bad;
    uint32_t count = ref_u32(h + 8);
    for (uint32_t t = 0; t < count && t < REF_MAX; t++) {
        struct ref_tensor *r = &ref_tab[ref_count];
        unsigned char b[4];
        if (ref_rd(f, b, 2))
            goto bad;
        size_t nl = (size_t)b[0] | (size_t)b[1] << 8;
        if (nl >= sizeof r->name || ref_rd(f, r->name, nl))
            goto bad;
        r->name[nl] = 0;
        if (ref_rd(f, b, 2) || (b[0] != 1 && b[0] != 2) || b[1] > 4)
            goto bad;
        int dtype = b[0];
        r->ndim = b[1];
        r->n = 1;
        for (int d = 0; d < r->ndim; d++) {
            if (ref_rd(f, b, 4))
                goto bad;
            r->dims[d] = ref_u32(b);
            r->n *= r->dims[d];
        }
        r->data = malloc(sizeof(float) * (r->n ? r->n : 1));
        if (!r->data)
            goto bad;
        size_t es = dtype == 1 ? 4 : 2;
        unsigned char *raw = malloc(es * (r->n ? r->n : 1));
        if (!raw || ref_rd(f, raw, es * r->n)) {
            free(raw);
            goto bad;
        }
        for (size_t i = 0; i < r->n; i++) {
            if (dtype == 1) {
                uint32_t u = ref_u32(raw + 4 * i);
                memcpy(&r->data[i], &u, 4);
            } else {
                int16_t v = (int16_t)((uint16_t)raw[2 * i] | (uint16_t)raw[2 * i + 1] << 8);
                r->data[i] = (float)v / 32768.0f;
            }
        }
        free(raw);
        ref_count++;
    }
    fclose(f);
    return 0;
bad:
    fclose(f);
    return -1;
}

static const struct ref_tensor *ref_get(const char *name)
{
    for (int i = 0; i < ref_count; i++)
        if (!strcmp(ref_tab[i].name, name))
            return &ref_tab[i];
    return NULL;
}

#endif
