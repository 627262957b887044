/* Log-mel spectrogram, streaming: cmr's front end (PAPER.md section 1).
 *
 * Default configuration (cmr_mel_cfg_default): 16 kHz mono, periodic Hann 512,
 * FFT 512, hop 256, centred reflect-padded frames (see dsp/stft.h), 96 mel bands
 * from 0 to 8000 Hz on the Slaney mel scale with Slaney area normalisation,
 * applied to the MAGNITUDE spectrum, then log10(1 + 10 mel). It equals, to
 * float rounding,
 *   m = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=512,
 *         hop_length=256, n_mels=96, f_min=0, f_max=8000, power=1.0,
 *         norm="slaney", mel_scale="slaney")(x)
 *   torch.log10(1 + 10 * m).T            # (frames, 96)
 * (torchaudio 0.13.1: functional/functional.py melscale_fbanks, spectrogram;
 * librosa.filters.mel(sr=16000, n_fft=512, n_mels=96, fmax=8000) is the same
 * filterbank.) tests/ref/make_refs_frontend.py checks this to 1e-4.
 *
 * The reference code's literal variant (cmr_mel_cfg_htk): HTK mel scale, no
 * normalisation, POWER spectrum, no log, i.e. MelSpectrogram(..., power=2.0,
 * norm=None, mel_scale="htk").
 *
 * Filterbank (torchaudio melscale_fbanks, itself librosa.filters.mel):
 *   f_k   = k * (sample_rate/2) / (n_fft/2)               k = 0 .. n_fft/2
 *   m_i   = mel(f_min) + i * (mel(f_max) - mel(f_min)) / (n_mels + 1),  i = 0 .. n_mels+1
 *   p_i   = hz(m_i)
 *   W[j][k] = max(0, min((f_k - p_j) / (p_{j+1} - p_j), (p_{j+2} - f_k) / (p_{j+2} - p_{j+1})))
 *   Slaney norm: W[j][k] *= 2 / (p_{j+2} - p_j)
 * Slaney scale: mel = 3 hz / 200 below 1000 Hz, 15 + 27 ln(hz / 1000) / ln 6.4 above.
 * HTK scale: mel = 2595 log10(1 + hz / 700).
 * Only each band's nonzero run of bins is stored and multiplied (sparse).
 *
 * Log compressions (one place; CMR_MEL_LOG_*):
 *   CMR_MEL_LOG_1P   log10(1 + CMR_MEL_LOG_GAIN * x), gain 10 (the front end)
 *   CMR_MEL_LOG_DB   10 log10(max(x, CMR_MEL_DB_AMIN)), amin 1e-10 (librosa
 *                    power_to_db(ref=1.0, top_db=None); the MFCC input)
 *   CMR_MEL_LOG_NONE x
 *
 * Streaming works as in dsp/stft.h: push chunks of a track, take the frames
 * that are ready, end the track to get its last frames. The output does not
 * depend on the chunking. No allocation happens per frame; pushing a chunk
 * larger than any before may grow the sample buffer.
 * One object is not thread-safe; distinct objects are independent.
 *
 * Example: tests/unit/test-mel.c
 */
#ifndef CMR_DSP_MEL_H
#define CMR_DSP_MEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CMR_MEL_LOG_GAIN 10.0f
#define CMR_MEL_DB_AMIN 1e-10f
#define CMR_MEL_MAX_MELS 1024

enum cmr_mel_scale { CMR_MEL_SCALE_SLANEY = 0, CMR_MEL_SCALE_HTK = 1 };
enum cmr_mel_norm { CMR_MEL_NORM_NONE = 0, CMR_MEL_NORM_SLANEY = 1 };
enum cmr_mel_log { CMR_MEL_LOG_NONE = 0, CMR_MEL_LOG_1P = 1, CMR_MEL_LOG_DB = 2 };

struct cmr_mel_cfg {
    double sample_rate;        /* Hz (16000) */
    int n_fft;                 /* FFT size = Hann window length, samples (512) */
    int hop;                   /* hop, samples (256) */
    int n_mels;                /* bands, in [1, 1024] (96) */
    double f_min, f_max;       /* band edges, Hz; 0 <= f_min < f_max <= sample_rate/2 (0, 8000) */
    int power;                 /* 1: magnitude spectrum (1); 2: power spectrum */
    enum cmr_mel_scale scale;  /* (SLANEY) */
    enum cmr_mel_norm norm;    /* (SLANEY) */
    enum cmr_mel_log log;      /* (LOG_1P) */
};

/* the front end above */
struct cmr_mel_cfg cmr_mel_cfg_default(void);
/* the reference code's literal variant: HTK scale, no norm, power 2, no log */
struct cmr_mel_cfg cmr_mel_cfg_htk(void);
/* CMR_OK, or CMR_EINVAL with err filled ("mel: f_max should be in (f_min, 8000], got 9000") */
int cmr_mel_cfg_check(const struct cmr_mel_cfg *cfg, struct cmr_error *err);
/* One line naming every parameter, e.g. "sr=16000 n_fft=512 hop=256 n_mels=96
 * f_min=0 f_max=8000 power=1 scale=slaney norm=slaney log=log10(1+10x)";
 * written into stats files so that they are only applied to the same front end.
 * Returns buf. */
const char *cmr_mel_cfg_describe(const struct cmr_mel_cfg *cfg, char *buf, size_t size);

struct cmr_mel;

/* NULL with err filled on a bad configuration or out of memory */
struct cmr_mel *cmr_mel_new(const struct cmr_mel_cfg *cfg, struct cmr_error *err);
/* tolerates NULL and half-built objects */
void cmr_mel_free(struct cmr_mel *m);

int cmr_mel_n_mels(const struct cmr_mel *m);
/* bands whose filter has no nonzero weight (n_mels too high for n_fft); their
 * output is log(0) after compression: 0 (LOG_1P, NONE) or -100 dB (LOG_DB) */
int cmr_mel_empty_filters(const struct cmr_mel *m);

/* ---- streaming, frame by frame ---- */
/* appends n samples (at cfg->sample_rate) to the current track */
int cmr_mel_push(struct cmr_mel *m, const float *in, size_t n, struct cmr_error *err);
/* marks the end of the current track */
void cmr_mel_end(struct cmr_mel *m);
/* writes the next ready frame (n_mels floats) and returns 1, or returns 0;
 * does not look at the values (see cmr_mel_take) */
int cmr_mel_next(struct cmr_mel *m, float *out);
/* cmr_mel_next, then a check that the frame is finite: 1 with the frame in
 * out, 0 when none is ready, or CMR_ENAN with err "mel: frame K (S s into the
 * track), band B is infinite: ..." (audio too loud for float32 arithmetic:
 * |x| above about 1e17). cmr_mel_process and cmr_mel_flush check this way. */
int cmr_mel_take(struct cmr_mel *m, float *out, struct cmr_error *err);
/* frames ready now plus those n more samples would make ready (dsp/stft.h) */
size_t cmr_mel_ready(const struct cmr_mel *m, size_t n);
/* index within the track of the frame cmr_mel_next() returns next */
int64_t cmr_mel_frame_index(const struct cmr_mel *m);
/* forgets the current track */
void cmr_mel_reset(struct cmr_mel *m);

/* ---- streaming, chunk by chunk ---- */
/* Pushes n samples and writes every frame that became ready to out
 * (*n_out frames of n_mels floats, row-major). out must hold
 * cmr_mel_ready(m, n) frames: with less room (cap, in frames) nothing is
 * consumed and CMR_EINVAL is returned. CMR_ENAN (see cmr_mel_take) stops at
 * the frame that is not finite. */
int cmr_mel_process(struct cmr_mel *m, const float *in, size_t n, float *out, size_t cap,
                    size_t *n_out, struct cmr_error *err);
/* Ends the track, writes its remaining frames (out must hold
 * cmr_mel_flush_frames(m) of them, else CMR_EINVAL and nothing happens) and
 * resets the object for the next track. */
int cmr_mel_flush(struct cmr_mel *m, float *out, size_t cap, size_t *n_out,
                  struct cmr_error *err);
/* frames cmr_mel_flush() would write now */
size_t cmr_mel_flush_frames(const struct cmr_mel *m);

/* ---- the maths, stateless ---- */
double cmr_mel_hz_to_mel(double hz, enum cmr_mel_scale scale);
double cmr_mel_mel_to_hz(double mel, enum cmr_mel_scale scale);
/* the dense filterbank fb (n_mels, n_fft/2 + 1), row-major */
int cmr_mel_filterbank(const struct cmr_mel_cfg *cfg, float *fb, struct cmr_error *err);
/* applies a log compression in place to n values */
void cmr_mel_compress(float *x, size_t n, enum cmr_mel_log log);

#endif
