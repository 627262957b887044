/* libFuzzer target for the frame reader: any bytes in, a clean error or
 * frames out, never a crash, a leak or unbounded memory. `make fuzz`. */
#include "frame.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmr_reader *rd = cmr_reader_new_mem(data, size, "fuzz");
    if (!rd)
        return 0;
    cmr_reader_set_max_bytes(rd, 1 << 20);
    struct cmr_frame fr;
    cmr_frame_init(&fr);
    struct cmr_error err = {0};
    void *buf;
    size_t len;
    while (cmr_reader_next(rd, &fr, &err) == CMR_OK) {
        (void)cmr_frame_numel(&fr);
        if (cmr_frame_pack(&fr, &buf, &len) == CMR_OK)
            free(buf);
    }
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
    return 0;
}
