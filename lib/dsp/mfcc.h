/* MFCC: orthonormal DCT-II of the dB-scaled power mel spectrogram, streaming.
 *
 * Convention matched (cmr_mfcc_cfg_default: 40 coefficients of 96 bands):
 *   S = mel filterbank (Slaney scale, Slaney norm, 0-8000 Hz, 96 bands) applied to
 *       the POWER spectrum |X|^2 of the same centred STFT as the front end
 *       (periodic Hann 512, hop 256, reflect padding; dsp/stft.h)
 *   D = 10 log10(max(S, 1e-10))          librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)
 *   C = DCT-II(D, norm="ortho")[:40]     scipy.fft.dct(D, type=2, norm="ortho", axis=-1)
 * i.e. librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram(
 *        y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96, fmax=8000,
 *        pad_mode="reflect"), top_db=None), n_mfcc=40)
 * and torchaudio.transforms.MFCC(16000, n_mfcc=40, melkwargs=dict(n_fft=512,
 * hop_length=256, n_mels=96, f_max=8000, norm="slaney", mel_scale="slaney"))
 * with its AmplitudeToDB's top_db set to None. The one difference from both
 * libraries' defaults: no top_db=80 clamp, because that clamp depends on the
 * loudest frame of the whole input and cannot be computed while streaming.
 * There is no liftering (librosa lifter=0).
 *
 * DCT-II, orthonormal (torchaudio functional.create_dct(n_mfcc, n_mels, "ortho")):
 *   C[c] = s_c sum_j D[j] cos(pi / n_mels * (j + 0.5) * c),
 *   s_0 = sqrt(1 / n_mels), s_c = sqrt(2 / n_mels) for c > 0.
 *
 * Streaming and threading: as dsp/mel.h. Example: tests/unit/test-mfcc.c
 */
#ifndef CMR_DSP_MFCC_H
#define CMR_DSP_MFCC_H

#include <stddef.h>
#include <stdint.h>

#include "dsp/mel.h"
#include "err.h"

struct cmr_mfcc_cfg {
    struct cmr_mel_cfg mel; /* the mel stage; its log must be CMR_MEL_LOG_DB for the convention above */
    int n_mfcc;             /* coefficients kept, in [1, mel.n_mels] (40) */
};

/* the convention above */
struct cmr_mfcc_cfg cmr_mfcc_cfg_default(void);
int cmr_mfcc_cfg_check(const struct cmr_mfcc_cfg *cfg, struct cmr_error *err);

struct cmr_mfcc;

struct cmr_mfcc *cmr_mfcc_new(const struct cmr_mfcc_cfg *cfg, struct cmr_error *err);
void cmr_mfcc_free(struct cmr_mfcc *m); /* tolerates NULL */
int cmr_mfcc_n_mfcc(const struct cmr_mfcc *m);

/* the same streaming verbs as dsp/mel.h; frames are n_mfcc floats */
int cmr_mfcc_push(struct cmr_mfcc *m, const float *in, size_t n, struct cmr_error *err);
void cmr_mfcc_end(struct cmr_mfcc *m);
int cmr_mfcc_next(struct cmr_mfcc *m, float *out);
/* cmr_mfcc_next with cmr_mel_take's check: 1, 0, or CMR_ENAN with err filled */
int cmr_mfcc_take(struct cmr_mfcc *m, float *out, struct cmr_error *err);
size_t cmr_mfcc_ready(const struct cmr_mfcc *m, size_t n);
void cmr_mfcc_reset(struct cmr_mfcc *m);
int cmr_mfcc_process(struct cmr_mfcc *m, const float *in, size_t n, float *out, size_t cap,
                     size_t *n_out, struct cmr_error *err);
int cmr_mfcc_flush(struct cmr_mfcc *m, float *out, size_t cap, size_t *n_out,
                   struct cmr_error *err);
size_t cmr_mfcc_flush_frames(const struct cmr_mfcc *m);

/* the orthonormal DCT-II matrix dct (n_mfcc, n_mels), row-major: C = dct . D */
void cmr_mfcc_dct_matrix(float *dct, int n_mfcc, int n_mels);

#endif
