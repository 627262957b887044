// The C interface of lib/index/faiss_shim.h over FAISS's C++ API. Only this
// file is C++; no exception crosses it.
#include "index/faiss_shim.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include <omp.h>

#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

struct cmr_faiss {
    faiss::Index *ix;
};

namespace {

int fail(struct cmr_error *err, int code, const char *what)
{
    // FAISS messages carry "Error in FUNC at FILE:LINE: text"; keep the text
    const char *p = std::strstr(what, ": Error: '");
    return cmr_error_set(err, code, "faiss: %s", p ? p + 2 : what);
}

// runs f and turns every exception into an error code
template <class F> int guard(struct cmr_error *err, F f)
{
    try {
        f();
        return CMR_OK;
    } catch (const std::bad_alloc &) {
        return cmr_error_set(err, CMR_ENOMEM, "faiss: out of memory");
    } catch (const faiss::FaissException &e) {
        return fail(err, CMR_EINVAL, e.what());
    } catch (const std::exception &e) {
        return fail(err, CMR_EINVAL, e.what());
    } catch (...) {
        return cmr_error_set(err, CMR_EINVAL, "faiss: unknown error");
    }
}

struct CallbackWriter : faiss::IOWriter {
    int (*cb)(void *, const void *, size_t);
    void *ctx;
    size_t operator()(const void *ptr, size_t size, size_t nitems) override
    {
        if (size * nitems == 0)
            return nitems;
        return cb(ctx, ptr, size * nitems) == 0 ? nitems : 0;
    }
};

// reads from a caller's buffer without copying it first (the index copies)
struct MemReader : faiss::IOReader {
    const unsigned char *p;
    size_t len, pos;
    size_t operator()(void *ptr, size_t size, size_t nitems) override
    {
        if (size == 0 || nitems == 0)
            return 0;
        size_t avail = (len - pos) / size;
        size_t n = nitems < avail ? nitems : avail;
        std::memcpy(ptr, p + pos, n * size);
        pos += n * size;
        return n;
    }
};

} // namespace

extern "C" {

struct cmr_faiss *cmr_faiss_new(int d, const char *factory, int inner_product, struct cmr_error *err)
{
    cmr_faiss *f = nullptr;
    int rc = guard(err, [&] {
        faiss::Index *ix = faiss::index_factory(
            d, factory, inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
        // FAISS prints a warning to stderr when k-means has fewer than 39
        // points per centroid; lib/ prints nothing, and the index checks
        // its own minimum (one point per centroid) before training
        // the lists' k-means runs on a sample of at most 64 vectors per list
        // (FAISS's default is 256: 4x the time for little gain)
        // with ",Refine(...)" the IVF index is the refine wrapper's base
        faiss::Index *base = ix;
        if (auto *rf = dynamic_cast<faiss::IndexRefine *>(ix))
            base = rf->base_index;
        if (auto *ivf = dynamic_cast<faiss::IndexIVF *>(base)) {
            ivf->cp.min_points_per_centroid = 1;
            ivf->cp.max_points_per_centroid = 64;
            if (auto *ivfpq = dynamic_cast<faiss::IndexIVFPQ *>(base))
                ivfpq->pq.cp.min_points_per_centroid = 1;
        }
        f = new cmr_faiss{ix};
    });
    return rc == CMR_OK ? f : nullptr;
}

void cmr_faiss_free(struct cmr_faiss *f)
{
    if (!f)
        return;
    delete f->ix;
    delete f;
}

int cmr_faiss_dim(const struct cmr_faiss *f) { return (int)f->ix->d; }
int64_t cmr_faiss_ntotal(const struct cmr_faiss *f) { return (int64_t)f->ix->ntotal; }
int cmr_faiss_is_trained(const struct cmr_faiss *f) { return f->ix->is_trained ? 1 : 0; }

int cmr_faiss_set(struct cmr_faiss *f, const char *name, double value, struct cmr_error *err)
{
    return guard(err, [&] { faiss::ParameterSpace().set_index_parameter(f->ix, name, value); });
}

int cmr_faiss_train(struct cmr_faiss *f, int64_t n, const float *x, struct cmr_error *err)
{
    return guard(err, [&] { f->ix->train((faiss::Index::idx_t)n, x); });
}

int cmr_faiss_add(struct cmr_faiss *f, int64_t n, const float *x, struct cmr_error *err)
{
    return guard(err, [&] { f->ix->add((faiss::Index::idx_t)n, x); });
}

int cmr_faiss_search(const struct cmr_faiss *f, int64_t nq, const float *q, int k, float *dist,
                     int64_t *ids, struct cmr_error *err)
{
    static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t), "FAISS ids are 64-bit");
    return guard(err, [&] {
        f->ix->search((faiss::Index::idx_t)nq, q, (faiss::Index::idx_t)k, dist, reinterpret_cast<faiss::Index::idx_t *>(ids));
    });
}

int cmr_faiss_reconstruct(const struct cmr_faiss *f, int64_t id, float *out, struct cmr_error *err)
{
    return guard(err, [&] { f->ix->reconstruct((faiss::Index::idx_t)id, out); });
}

int cmr_faiss_write(const struct cmr_faiss *f, int (*write)(void *ctx, const void *buf, size_t n),
                    void *ctx, struct cmr_error *err)
{
    return guard(err, [&] {
        CallbackWriter w;
        w.cb = write;
        w.ctx = ctx;
        faiss::write_index(f->ix, &w);
    });
}

struct cmr_faiss *cmr_faiss_read(const void *buf, size_t len, struct cmr_error *err)
{
    cmr_faiss *f = nullptr;
    int rc = guard(err, [&] {
        MemReader r;
        r.p = static_cast<const unsigned char *>(buf);
        r.len = len;
        r.pos = 0;
        faiss::Index *ix = faiss::read_index(&r);
        if (r.pos != len) {
            delete ix;
            throw faiss::FaissException("the index has trailing bytes");
        }
        f = new cmr_faiss{ix};
    });
    return rc == CMR_OK ? f : nullptr;
}

void cmr_faiss_threads(int n)
{
    if (n > 0)
        omp_set_num_threads(n);
}

} // extern "C"
