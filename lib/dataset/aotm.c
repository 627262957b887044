/* AOTM-2011 (McFee and Lanckriet 2012): aotm2011_playlists.json, an array of
 * playlist objects (mix_id, filtered_lists: lists of MSD track ids), and a
 * map id<TAB>audio path. One row per track with audio, its playlists
 * "aotm:MIX,..." in id order, of the playlists that keep at least
 * cfg.min_tracks tracks with audio. See dataset.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset/common.h"
#include "util/alloc.h"
#include "util/json.h"

struct membership {
    char *track;
    char *playlist;
};

static int cmp_membership(const void *a, const void *b)
{
    const struct membership *x = a, *y = b;
    int c = strcmp(x->track, y->track);
    return c ? c : strcmp(x->playlist, y->playlist);
}

struct aotm {
    struct cmr_ds d;
    const char *json_path, *map_path;
    struct cmr_json j;
    struct cmr_ds_map paths;    /* id -> audio path */
    struct cmr_ds_map ok_audio; /* id -> "1" or "0": a track's audio is checked once */
    struct membership *mem;     /* (track, playlist) of the playlists kept */
    size_t n_mem, cap_mem;
    char **cur;                 /* the tracks of the playlist being read */
    size_t n_cur, cap_cur;
    long n_pl, kept_pl, no_audio;
};

/* filtered_lists: [[id, ...], ...] -> a->cur */
static int read_lists(struct aotm *a)
{
    struct cmr_json *j = &a->j;
    int rc, more_l, more_t;
    if ((rc = cmr_json_begin(j, '[', &more_l)))
        return rc;
    while (more_l) {
        if ((rc = cmr_json_begin(j, '[', &more_t)))
            return rc;
        while (more_t) {
            char *t;
            if ((rc = cmr_json_string(j, &t, NULL)))
                return rc;
            if (cmr_grow(&a->cur, &a->cap_cur, a->n_cur + 1, sizeof *a->cur, a->d.err)) {
                free(t);
                return CMR_ENOMEM;
            }
            a->cur[a->n_cur++] = t;
            if ((rc = cmr_json_next(j, ']', &more_t)))
                return rc;
        }
        if ((rc = cmr_json_next(j, ']', &more_l)))
            return rc;
    }
    return CMR_OK;
}

/* one playlist object: its mix_id into mix, its tracks into a->cur */
static int read_playlist(struct aotm *a, char *mix, size_t mix_size)
{
    struct cmr_json *j = &a->j;
    char *key = NULL, *val = NULL;
    int rc, more, have_lists = 0;
    mix[0] = 0;
    if ((rc = cmr_json_begin(j, '{', &more)))
        return rc;
    while (more) {
        free(key);
        key = NULL;
        if ((rc = cmr_json_string(j, &key, NULL)) || (rc = cmr_json_expect(j, ':')))
            goto out;
        if (!strcmp(key, "mix_id")) {
            free(val);
            val = NULL;
            if ((rc = cmr_json_peek(j) == '"' ? cmr_json_string(j, &val, NULL) : cmr_json_number_text(j, &val)))
                goto out;
            snprintf(mix, mix_size, "%s", val);
        } else if (!strcmp(key, "filtered_lists")) {
            have_lists = 1;
            if ((rc = read_lists(a)))
                goto out;
        } else if ((rc = cmr_json_skip(j))) {
            goto out;
        }
        if ((rc = cmr_json_next(j, '}', &more)))
            goto out;
    }
    if (!mix[0] || !have_lists)
        rc = cmr_json_fail(j, "a playlist without mix_id or filtered_lists");
out:
    free(key);
    free(val);
    return rc;
}

/* 1 when track id's audio is readable (checked once per id), 0 when not */
static int has_audio(struct aotm *a, const char *id, const char *rel)
{
    const char *st = cmr_ds_map_get(&a->ok_audio, id);
    if (st)
        return st[0] == '1';
    char *path = cmr_ds_path(&a->d, rel);
    if (!path)
        return CMR_ENOMEM;
    int ok = access(path, R_OK) == 0;
    if (!ok) {
        a->d.missing++;
        cmr_ds_info(&a->d, "track %s: %s: %s, left out", id, path, strerror(errno));
    }
    free(path);
    int rc = cmr_ds_map_put(&a->d, &a->ok_audio, id, ok ? "1" : "0");
    return rc < 0 ? rc : ok;
}

/* keeps the playlist's distinct tracks with audio in a->cur[0 .. *n_ok) and
 * frees the others (all of them on an error); a->cur is empty after */
static int filter_tracks(struct aotm *a, size_t *n_ok)
{
    size_t n = 0;
    int rc = CMR_OK;
    for (size_t i = 0; i < a->n_cur; i++) {
        char *id = a->cur[i];
        int keep = !rc;
        for (size_t k = 0; k < n && keep; k++)
            keep = strcmp(a->cur[k], id) != 0;
        const char *rel = keep ? cmr_ds_map_get(&a->paths, id) : NULL;
        if (keep && !rel) {
            a->no_audio++;
            keep = 0;
        }
        if (keep && a->d.cfg->check) {
            int ok = has_audio(a, id, rel);
            rc = ok < 0 ? ok : rc;
            keep = ok > 0;
        }
        if (keep)
            a->cur[n++] = id;
        else
            free(id);
    }
    a->n_cur = 0;
    for (size_t i = 0; rc && i < n; i++)
        free(a->cur[i]);
    *n_ok = rc ? 0 : n;
    return rc;
}

/* the playlist's tracks become memberships when it has enough of them */
static int keep_playlist(struct aotm *a, const char *mix)
{
    size_t n_ok = 0;
    int rc;
    char *pl = cmr_asprintf(a->d.err, "aotm:%s", mix);
    if (!pl)
        rc = CMR_ENOMEM;
    else if (!(rc = cmr_ds_check_field(&a->d, "playlist id", pl, a->json_path)) && strchr(pl, ','))
        rc = cmr_ds_fail(&a->d, "%s: playlist id '%s' holds a comma", a->json_path, pl);
    if (rc) {
        for (size_t i = 0; i < a->n_cur; i++)
            free(a->cur[i]);
        a->n_cur = 0;
    } else {
        rc = filter_tracks(a, &n_ok);
    }
    int keep = !rc && (long)n_ok >= a->d.cfg->min_tracks;
    a->kept_pl += keep;
    for (size_t i = 0; i < n_ok; i++) {
        if (keep && !rc && (rc = cmr_grow(&a->mem, &a->cap_mem, a->n_mem + 1, sizeof *a->mem, a->d.err)) == 0 &&
            !(a->mem[a->n_mem].playlist = cmr_strdup(pl, a->d.err)))
            rc = CMR_ENOMEM;
        if (keep && !rc)
            a->mem[a->n_mem++].track = a->cur[i];
        else
            free(a->cur[i]);
    }
    free(pl);
    return rc;
}

/* the whole JSON document */
static int read_playlists(struct aotm *a)
{
    struct cmr_json *j = &a->j;
    int rc, more_pl;
    char mix[64];
    if ((rc = cmr_json_begin(j, '[', &more_pl)))
        return rc;
    while (more_pl) {
        if ((rc = read_playlist(a, mix, sizeof mix)))
            return rc;
        a->n_pl++;
        if ((rc = keep_playlist(a, mix)) || (rc = cmr_json_next(j, ']', &more_pl)))
            return rc;
    }
    (void)cmr_json_peek(j);
    if (j->i != j->n)
        return cmr_json_fail(j, "text after the top-level array");
    return CMR_OK;
}

/* the row of the tracks mem[i ..) that are the same track; *next is the first other */
static int write_row(struct aotm *a, size_t i, struct cmr_ds_buf *pls, size_t *next)
{
    size_t k = i;
    int rc = cmr_ds_buf_clear(&a->d, pls);
    for (; !rc && k < a->n_mem && !strcmp(a->mem[k].track, a->mem[i].track); k++)
        if (!(k > i && !strcmp(a->mem[k].playlist, a->mem[k - 1].playlist)))
            rc = cmr_ds_buf_item(&a->d, pls, ',', a->mem[k].playlist);
    *next = k;
    if (rc)
        return rc;
    char *path = cmr_ds_path(&a->d, cmr_ds_map_get(&a->paths, a->mem[i].track));
    if (!path)
        return CMR_ENOMEM;
    const char *cols[1] = {pls->p};
    rc = cmr_ds_emit(&a->d, path, a->mem[i].track, cols, 1, a->json_path, 0); /* audio checked above */
    free(path);
    return rc;
}

/* one row per track, tracks in id order, playlists in id order */
static int write_rows(struct aotm *a, long *n_tracks)
{
    struct cmr_ds_buf pls = {0};
    int rc = CMR_OK;
    qsort(a->mem, a->n_mem, sizeof *a->mem, cmp_membership);
    for (size_t i = 0; i < a->n_mem && rc >= 0;)
        if ((rc = write_row(a, i, &pls, &i)) > 0)
            (*n_tracks)++;
    free(pls.p);
    return rc < 0 ? rc : CMR_OK;
}

static void aotm_free(struct aotm *a)
{
    for (size_t i = 0; i < a->n_mem; i++) {
        free(a->mem[i].track);
        free(a->mem[i].playlist);
    }
    free(a->mem);
    for (size_t i = 0; i < a->n_cur; i++) /* a playlist cut short by an error */
        free(a->cur[i]);
    free(a->cur);
    cmr_ds_map_free(&a->paths);
    cmr_ds_map_free(&a->ok_audio);
    cmr_ds_free(&a->d);
}

int cmr_dataset_aotm(const char *json, const char *map, const struct cmr_dataset_cfg *cfg,
                     const struct cmr_dataset_sink *out, struct cmr_error *err)
{
    struct aotm a = {.json_path = json, .map_path = map};
    cmr_ds_init(&a.d, cfg, out, err);
    char *text = NULL;
    size_t len;
    long n_tracks = 0;
    int rc;
    if ((rc = cmr_ds_read_id_paths(&a.d, map, &a.paths)) || (rc = cmr_ds_set_root_beside(&a.d, map)) ||
        (rc = cmr_ds_read_file(&a.d, json, &text, &len)))
        goto out;
    cmr_json_init(&a.j, text, len, json, CMR_JSON_AT_LINE, 0, err);
    if ((rc = read_playlists(&a)) || (rc = cmr_ds_header(&a.d, "path\ttrack\tplaylists")) ||
        (rc = write_rows(&a, &n_tracks)))
        goto out;
    cmr_ds_report_missing(&a.d);
    if (a.no_audio)
        cmr_ds_info(&a.d, "%ld playlist entries have no id in %s", a.no_audio, map);
    cmr_ds_info(&a.d, "%ld of %ld playlists kept (>= %ld tracks with audio), %ld tracks", a.kept_pl, a.n_pl,
                cfg->min_tracks, n_tracks);
    if (a.kept_pl == 0)
        cmr_ds_warn(&a.d, "no playlist has %ld tracks with audio", cfg->min_tracks);
out:
    aotm_free(&a);
    free(text);
    return rc;
}
