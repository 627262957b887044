/* A C interface to the few FAISS calls cmr-index makes (FAISS 1.7.3,
 * https://github.com/facebookresearch/faiss). Debian's libfaiss.a has no C
 * API compiled in, so lib/index/faiss_shim.cc wraps the C++ API here; the
 * rest of cmr stays C. Every FAISS exception (and std::bad_alloc) becomes an
 * error code with err filled as "faiss: what FAISS said".
 *
 * Vectors are row-major float32; ids are the positions 0..ntotal-1 in the
 * order vectors were added. Search is thread-safe between searches (FAISS
 * uses OpenMP inside); everything else is not thread-safe per object.
 * Nothing here prints or exits. */
#ifndef CMR_INDEX_FAISS_SHIM_H
#define CMR_INDEX_FAISS_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "err.h" /* a C header: inside extern "C" for the C++ shim */

struct cmr_faiss;

/* a new empty index from a FAISS factory string ("Flat", "HNSW32,SQ8",
 * "IVF1024,PQ16"); inner_product: METRIC_INNER_PRODUCT, else METRIC_L2 */
struct cmr_faiss *cmr_faiss_new(int d, const char *factory, int inner_product, struct cmr_error *err);
void cmr_faiss_free(struct cmr_faiss *f);
int cmr_faiss_dim(const struct cmr_faiss *f);
int64_t cmr_faiss_ntotal(const struct cmr_faiss *f);
int cmr_faiss_is_trained(const struct cmr_faiss *f);
/* a parameter of the index: "efSearch", "efConstruction" (HNSW), "nprobe" (IVF) */
int cmr_faiss_set(struct cmr_faiss *f, const char *name, double value, struct cmr_error *err);
int cmr_faiss_train(struct cmr_faiss *f, int64_t n, const float *x, struct cmr_error *err);
int cmr_faiss_add(struct cmr_faiss *f, int64_t n, const float *x, struct cmr_error *err);
/* dist (nq, k), ids (nq, k); a missing result has id -1 */
int cmr_faiss_search(const struct cmr_faiss *f, int64_t nq, const float *q, int k, float *dist,
                     int64_t *ids, struct cmr_error *err);
/* the stored vector of id (exact for flat storage, decoded otherwise) */
int cmr_faiss_reconstruct(const struct cmr_faiss *f, int64_t id, float *out, struct cmr_error *err);
/* faiss::write_index through a callback that returns 0 on success */
int cmr_faiss_write(const struct cmr_faiss *f, int (*write)(void *ctx, const void *buf, size_t n),
                    void *ctx, struct cmr_error *err);
/* faiss::read_index from len bytes of memory (copied into the index) */
struct cmr_faiss *cmr_faiss_read(const void *buf, size_t len, struct cmr_error *err);
/* threads FAISS may use (OpenMP); <= 0: its default */
void cmr_faiss_threads(int n);

#ifdef __cplusplus
}
#endif

#endif
