#include "eval/vectors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void cmr_vectors_init(struct cmr_vectors *vs) { memset(vs, 0, sizeof *vs); }

void cmr_vectors_free(struct cmr_vectors *vs)
{
    for (int i = 0; i < vs->n; i++) {
        free(vs->track[i]);
        for (int k = 0; k < vs->n_meta[i]; k++) {
            free(vs->meta[i][k].key);
            free(vs->meta[i][k].val);
        }
        free(vs->meta[i]);
    }
    free(vs->X);
    free(vs->track);
    free(vs->meta);
    free(vs->n_meta);
    free(vs->slot);
    cmr_vectors_init(vs);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int cmr_vectors_find(const struct cmr_vectors *vs, const char *track)
{
    if (!vs->n_slot)
        return -1;
    for (uint64_t i = hash_str(track) & (uint64_t)(vs->n_slot - 1);; i = (i + 1) & (uint64_t)(vs->n_slot - 1)) {
        int r = vs->slot[i];
        if (r < 0)
            return -1;
        if (!strcmp(vs->track[r], track))
            return r;
    }
}

static int slot_insert(int *slot, int n_slot, char **track, int r)
{
    uint64_t i = hash_str(track[r]) & (uint64_t)(n_slot - 1);
    while (slot[i] >= 0)
        i = (i + 1) & (uint64_t)(n_slot - 1);
    slot[i] = r;
    return 0;
}

/* adds row r (already stored) to the id set; grows it at half load */
static int index_row(struct cmr_vectors *vs, int r)
{
    if (2 * (r + 1) > vs->n_slot) {
        int ns = vs->n_slot ? 2 * vs->n_slot : 256;
        int *s = malloc(sizeof(int) * (size_t)ns);
        if (!s)
            return CMR_ENOMEM;
        for (int i = 0; i < ns; i++)
            s[i] = -1;
        for (int i = 0; i < r; i++)
            slot_insert(s, ns, vs->track, i);
        free(vs->slot);
        vs->slot = s;
        vs->n_slot = ns;
    }
    slot_insert(vs->slot, vs->n_slot, vs->track, r);
    return CMR_OK;
}

const char *cmr_vectors_meta(const struct cmr_vectors *vs, int i, const char *key)
{
    for (int k = 0; k < vs->n_meta[i]; k++)
        if (!strcmp(vs->meta[i][k].key, key))
            return vs->meta[i][k].val;
    return NULL;
}

static int grow(struct cmr_vectors *vs)
{
    int cap = vs->cap ? 2 * vs->cap : 256;
    void *p;
    if (!(p = realloc(vs->track, sizeof(char *) * (size_t)cap)))
        return CMR_ENOMEM;
    vs->track = p;
    if (!(p = realloc(vs->meta, sizeof(struct cmr_kv *) * (size_t)cap)))
        return CMR_ENOMEM;
    vs->meta = p;
    if (!(p = realloc(vs->n_meta, sizeof(int) * (size_t)cap)))
        return CMR_ENOMEM;
    vs->n_meta = p;
    if (vs->d && !(p = realloc(vs->X, sizeof(float) * (size_t)cap * vs->d)))
        return CMR_ENOMEM;
    if (vs->d)
        vs->X = p;
    vs->cap = cap;
    return CMR_OK;
}

int cmr_vectors_read(struct cmr_vectors *vs, struct cmr_reader *rd, struct cmr_error *err)
{
    struct cmr_frame fr;
    int rc, have = 0; /* 1 while the current track has its vector (row vs->n, not yet counted) */
    cmr_frame_init(&fr);
    while ((rc = cmr_reader_next(rd, &fr, err)) == CMR_OK) {
        if (fr.type == CMR_FRAME_HEADER)
            continue;
        if (fr.type == CMR_FRAME_TENSOR) {
            if (have) {
                rc = cmr_error_set(err, CMR_EKIND,
                                   "track \"%.80s\" has more than one tensor frame; one vector per "
                                   "track is expected (run cmr-summarize first)", fr.track);
                break;
            }
            if (fr.ndim != 1) {
                rc = cmr_error_set(err, CMR_EKIND,
                                   "track \"%.80s\": %s frame of rank %d; one 1-D vector per track is "
                                   "expected (run cmr-summarize first)", fr.track, fr.kind, fr.ndim);
                break;
            }
            if (vs->d == 0) {
                vs->d = (int)fr.shape[0];
                if (vs->cap && !(vs->X = malloc(sizeof(float) * (size_t)vs->cap * vs->d))) {
                    rc = cmr_error_set(err, CMR_ENOMEM, "out of memory");
                    break;
                }
            } else if (fr.shape[0] != vs->d) {
                rc = cmr_error_set(err, CMR_ESHAPE,
                                   "track \"%.80s\" has a vector of %lld values, the tracks before it %d",
                                   fr.track, (long long)fr.shape[0], vs->d);
                break;
            }
            if (vs->n == vs->cap && grow(vs) != CMR_OK) {
                rc = cmr_error_set(err, CMR_ENOMEM, "out of memory");
                break;
            }
            int r = vs->n;
            memcpy(vs->X + (size_t)r * vs->d, fr.data, sizeof(float) * (size_t)vs->d);
            vs->track[r] = strdup(fr.track);
            vs->meta[r] = calloc((size_t)(fr.n_meta ? fr.n_meta : 1), sizeof(struct cmr_kv));
            vs->n_meta[r] = 0;
            if (!vs->track[r] || !vs->meta[r]) {
                free(vs->track[r]);
                free(vs->meta[r]);
                rc = cmr_error_set(err, CMR_ENOMEM, "out of memory");
                break;
            }
            for (int k = 0; k < fr.n_meta; k++) {
                vs->meta[r][k].key = strdup(fr.meta[k].key);
                vs->meta[r][k].val = strdup(fr.meta[k].val);
                vs->n_meta[r]++;
                if (!vs->meta[r][k].key || !vs->meta[r][k].val) {
                    rc = CMR_ENOMEM;
                    break;
                }
            }
            have = 1;
            vs->n++; /* counted now so that free() sees it; undone if the track fails */
            if (rc == CMR_ENOMEM) {
                cmr_error_set(err, rc, "out of memory");
                break;
            }
            continue;
        }
        /* end of track */
        if (!have) {
            if (fr.error)
                vs->n_failed++;
            else
                vs->n_empty++;
            continue;
        }
        have = 0;
        int r = vs->n - 1;
        if (fr.error) {
            /* a failed track: drop the vector it had */
            vs->n_failed++;
            free(vs->track[r]);
            for (int k = 0; k < vs->n_meta[r]; k++) {
                free(vs->meta[r][k].key);
                free(vs->meta[r][k].val);
            }
            free(vs->meta[r]);
            vs->n--;
            continue;
        }
        if (cmr_vectors_find(vs, vs->track[r]) >= 0) {
            rc = cmr_error_set(err, CMR_EFORMAT, "track \"%.80s\" occurs twice in the stream",
                               vs->track[r]);
            break;
        }
        if (index_row(vs, r) != CMR_OK) {
            rc = cmr_error_set(err, CMR_ENOMEM, "out of memory");
            break;
        }
    }
    cmr_frame_free(&fr);
    return rc == CMR_EOF ? CMR_OK : rc;
}
