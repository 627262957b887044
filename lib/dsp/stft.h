/* Streaming short-time Fourier transform: centred, reflect-padded frames, one
 * magnitude (or power) spectrum per frame.
 *
 * Matches torch.stft(x, n_fft, hop_length=hop, window=torch.hann_window(n_fft),
 * center=True, pad_mode="reflect", onesided=True, normalized=False) followed by
 * .abs() (power 1) or .abs()**2 (power 2), which is what
 * torchaudio.transforms.Spectrogram does by default:
 *   https://pytorch.org/docs/1.13/generated/torch.stft.html
 *   https://github.com/pytorch/audio/blob/v0.13.1/torchaudio/functional/functional.py#L105-L123
 *
 * Conventions (CMR_STFT_*: written once, here):
 * - window: periodic Hann of length n_fft, w[i] = 0.5 - 0.5 cos(2 pi i / n_fft)
 *   (torch.hann_window(n_fft, periodic=True));
 * - frame t (t = 0, 1, ...) covers track samples [t*hop - n_fft/2, t*hop + n_fft/2),
 *   i.e. it is centred on sample t*hop;
 * - samples outside the track are reflected about its first and last sample
 *   (x[-k] = x[k], x[L-1+k] = x[L-1-k]); when the track is shorter than the pad
 *   (L <= n_fft/2, where torch refuses), the reflection repeats, exactly as
 *   numpy.pad(x, n_fft/2, mode="reflect") does: the padded signal is periodic with
 *   period 2(L-1), and a 1-sample track is padded with copies of its sample;
 * - a track of L >= 1 samples has 1 + floor(L / hop) frames (48000 samples, hop 256:
 *   188 frames); an empty track has none.
 *
 * Streaming: samples arrive in chunks of any size (cmr_stft_push). A frame is
 * ready as soon as every sample it needs is known, that is when
 * t*hop + n_fft/2 + 1 samples have been pushed; the frames that need the right
 * reflection come after cmr_stft_end(). The spectra do not depend on how the
 * track was cut into chunks.
 *
 * The FFT is FFTW's single-precision real-to-complex transform
 * (fftwf_plan_dft_r2c_1d, FFTW_ESTIMATE). Plans are created and destroyed under
 * a process-wide mutex, so objects may be created from several threads (aubio's
 * src/spectral/fft.c does the same); one object is not thread-safe.
 *
 * Example: tests/unit/test-stft.c
 */
#ifndef CMR_DSP_STFT_H
#define CMR_DSP_STFT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CMR_STFT_MIN_NFFT 16
#define CMR_STFT_MAX_NFFT 65536

struct cmr_stft_cfg {
    int n_fft;  /* FFT size and Hann window length, samples; even, in [16, 65536] (512) */
    int hop;    /* distance between frame centres, samples; in [1, n_fft] (256) */
    int power;  /* 1: magnitude |X| (1); 2: power |X|^2 */
};

struct cmr_stft_cfg cmr_stft_cfg_default(void);

struct cmr_stft;

/* A new STFT, or NULL with err filled ("stft: n_fft should be even, got 511"). */
struct cmr_stft *cmr_stft_new(const struct cmr_stft_cfg *cfg, struct cmr_error *err);
/* tolerates NULL */
void cmr_stft_free(struct cmr_stft *st);

/* bins per spectrum: n_fft/2 + 1 */
int cmr_stft_n_bins(const struct cmr_stft *st);

/* Appends n samples of the current track. CMR_ESTATE after cmr_stft_end(),
 * CMR_ENOMEM when the buffer cannot grow. The samples are copied. */
int cmr_stft_push(struct cmr_stft *st, const float *in, size_t n, struct cmr_error *err);
/* Marks the end of the current track: its last frames become ready. */
void cmr_stft_end(struct cmr_stft *st);
/* Writes the next ready spectrum (n_bins floats) to out and returns 1, or
 * returns 0 when no frame is ready (more samples needed, or the track is done). */
int cmr_stft_next(struct cmr_stft *st, float *out);
/* Frames cmr_stft_next() would return now, plus those that pushing n more
 * samples would make ready (n = 0: ready now). After cmr_stft_end(): the
 * frames left. */
size_t cmr_stft_ready(const struct cmr_stft *st, size_t n);
/* frames cmr_stft_next() would return if the track ended now */
size_t cmr_stft_left(const struct cmr_stft *st);
/* Forgets the current track (buffered samples, frame counter); the next push
 * starts a new track. */
void cmr_stft_reset(struct cmr_stft *st);
/* index of the frame cmr_stft_next() returns next, from 0 within the track */
int64_t cmr_stft_frame_index(const struct cmr_stft *st);

/* Spectrum of one frame of n_fft samples: window, FFT, |X|^power into out
 * (n_bins floats). frame is not modified. */
void cmr_stft_spectrum(struct cmr_stft *st, const float *frame, float *out);

/* frames a track of n_samples has with this hop (see above) */
int64_t cmr_stft_track_frames(int64_t n_samples, int hop);

/* The periodic Hann window: w (n) <- 0.5 - 0.5 cos(2 pi i / n). */
void cmr_stft_hann(float *w, int n);

#endif
