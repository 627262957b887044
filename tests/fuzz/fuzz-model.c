/* libFuzzer target for the model-file loader (lib/model_file.c): any bytes
 * in, a model or a clean error out, never a crash, a leak or unbounded
 * memory. `make fuzz`.
 *
 * A model file ends with a CRC-32 of everything before it, which random
 * bytes almost never match; so inputs of even length get a correct
 * checksum written over their last 4 bytes, letting the fuzzer past
 * the checksum into the tensor and Adam-state checks. */
#include "model.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (size >= 12 && size % 2 == 0) {
        uint32_t c = (uint32_t)crc32_z(0, buf, size - 4); /* little-endian, as the writer */
        for (int i = 0; i < 4; i++)
            buf[size - 4 + i] = (unsigned char)(c >> (8 * i));
    }
    struct cmr_error err = {0};
    struct cmr_model *m = cmr_model_load_mem(buf, size, "fuzz", &err);
    if (m) {
        (void)cmr_model_meta_get(m, "x");
        cmr_model_free(m);
    }
    free(buf);
    return 0;
}
