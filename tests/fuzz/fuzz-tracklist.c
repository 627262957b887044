/* libFuzzer target for the track-list reader (lib/tracklist.c): any bytes
 * in, a list or a clean error out, never a crash, a leak or unbounded
 * memory. `make fuzz`. */
#include "tracklist.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmr_tracklist tl;
    struct cmr_error err = {0};
    cmr_tracklist_init(&tl);
    if (cmr_tracklist_parse(&tl, (const char *)data, size, "fuzz.tsv", "/base", &err) == CMR_OK) {
        struct cmr_frame fr;
        cmr_frame_init(&fr);
        (void)cmr_tracklist_check_unique(&tl, "fuzz.tsv", &err);
        for (size_t i = 0; i < tl.n && i < 4; i++)
            (void)cmr_tracklist_set_meta(&tl, i, &fr);
        cmr_frame_free(&fr);
        (void)cmr_tracklist_add(&tl, "extra.wav", "extra", &err);
    }
    cmr_tracklist_free(&tl);
    return 0;
}
