#include "kwyre_sample.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

// Why not llama.cpp's samplers: its top-p sorts the whole vocabulary on
// every token. Over Llama 3's 128,256 logits that took milliseconds per
// token (BenchmarkSample), longer than a GPU takes to compute the token.
// Here: one pass for the maximum, one for the exponentials, one per band of
// log-probability (two units wide) until the mass above it reaches top_p,
// a finer histogram of that band alone, a sort of a few tokens, and one
// pass to draw that skips whole blocks.

enum {
	KW_BANDS = 8,      // bands of log-probability, from 0 down to -16, ...
	KW_BAND_WIDTH = 2, // ... this wide
	KW_SUB = 256,     // finer bins inside the band where top_p is reached
	KW_LANES = 16,    // partial results the compiler keeps in vector lanes
	KW_BLOCK = 2048,  // tokens summed in float before adding to a double
	KW_INSERT = 32,   // sort this few tokens by insertion, more with qsort
};

int kw_draw_scratch_init(kw_draw_scratch *d, int32_t n) {
	d->n = n;
	d->e = calloc((size_t)n, sizeof *d->e);
	d->list = calloc((size_t)n, sizeof *d->list);
	if (d->e == NULL || d->list == NULL) {
		kw_draw_scratch_free(d);
		return -1;
	}
	return 0;
}

void kw_draw_scratch_wipe(kw_draw_scratch *d) {
	if (d->e == NULL) {
		return;
	}
	explicit_bzero(d->e, (size_t)d->n * sizeof *d->e);
	explicit_bzero(d->list, (size_t)d->n * sizeof *d->list);
}

void kw_draw_scratch_free(kw_draw_scratch *d) {
	kw_draw_scratch_wipe(d);
	free(d->e);
	free(d->list);
	memset(d, 0, sizeof *d);
}

// ---- random numbers: xoshiro256**, seeded through splitmix64 ---------------

static inline uint64_t kw_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void kw_rng_seed(uint64_t s[4], uint64_t seed) {
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		s[i] = z ^ (z >> 31);
	}
}

// kw_uniform is uniform in [0, 1).
static double kw_uniform(uint64_t s[4]) {
	uint64_t r = kw_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = kw_rotl(s[3], 45);
	return (double)(r >> 11) * 0x1.0p-53;
}

// ---- vectorized passes ------------------------------------------------------

// No code here reads floating-point exception flags; without trapping math
// the compiler may vectorize the selects and conversions below.
#pragma GCC optimize("no-trapping-math")

// Each pass keeps KW_LANES partial results in arrays the compiler turns
// into vector registers (AVX-512, AVX2 or SSE, per target clone): no
// -ffast-math needed to vectorize the sums.

// kw_exp is e^z for z in [-87, 0], to about 2e-7 relative: 2^round(t) from
// the exponent bits times a polynomial for 2^f, f in [-0.5, 0.5] (Cephes'
// exp2f coefficients).
static inline __attribute__((always_inline)) float kw_exp(float z) {
	float t = z * 1.44269504089f;
	float k = (t + 12582912.0f) - 12582912.0f; // round to nearest: 1.5 * 2^23
	float f = t - k;
	float p = f * 1.535336188319500e-4f + 1.339887440266574e-3f;
	p = p * f + 9.618437357674640e-3f;
	p = p * f + 5.550332471162809e-2f;
	p = p * f + 2.402264791363012e-1f;
	p = p * f + 6.931472028550421e-1f;
	p = p * f + 1.0f;
	int32_t bits = ((int32_t)k + 127) << 23;
	float scale;
	memcpy(&scale, &bits, sizeof scale);
	return p * scale;
}

// kw_weight is e^z, z = (x - m) / temp: 0 for NaN and below e^-87.
static inline __attribute__((always_inline)) float kw_weight(float x, float m, float inv_t) {
	float z = (x - m) * inv_t;
	float zc = z > -87.0f ? z : -87.0f; // NaN too
	float v = kw_exp(zc);
	return z > -87.0f ? v : 0.0f;
}

// kw_max is the largest of x[0..n), NaNs ignored (-inf if none).
__attribute__((target_clones("avx512f", "avx2", "default")))
static float kw_max(const float *restrict x, int32_t n) {
	float m[KW_LANES];
	for (int k = 0; k < KW_LANES; k++) {
		m[k] = -INFINITY;
	}
	int32_t i = 0;
	for (; i + KW_LANES <= n; i += KW_LANES) {
		for (int k = 0; k < KW_LANES; k++) {
			m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
		}
	}
	for (; i < n; i++) {
		m[0] = x[i] > m[0] ? x[i] : m[0];
	}
	float best = m[0];
	for (int k = 1; k < KW_LANES; k++) {
		best = m[k] > best ? m[k] : best;
	}
	return best;
}

// kw_exp_pass fills e with the tokens' weights and returns their sum.
__attribute__((target_clones("avx512f", "avx2", "default")))
static double kw_exp_pass(const float *restrict x, int32_t n, float m, float inv_t, float *restrict e) {
	double sum = 0;
	int32_t i = 0;
	while (i + KW_LANES <= n) {
		float acc[KW_LANES] = {0};
		int32_t end = n - (n - i) % KW_LANES;
		end = end < i + KW_BLOCK ? end : i + KW_BLOCK;
		for (; i < end; i += KW_LANES) {
			for (int k = 0; k < KW_LANES; k++) {
				float v = kw_weight(x[i + k], m, inv_t);
				e[i + k] = v;
				acc[k] += v;
			}
		}
		for (int k = 0; k < KW_LANES; k++) {
			sum += acc[k];
		}
	}
	for (; i < n; i++) {
		e[i] = kw_weight(x[i], m, inv_t);
		sum += e[i];
	}
	return sum;
}

// kw_band_z is where band j of log-probability ends: z >= kw_band_z(j).
static inline float kw_band_z(int j) { return -(float)(KW_BAND_WIDTH * (j + 1)); }

// kw_band_mass is the weight of the tokens with z >= zlo.
__attribute__((target_clones("avx512f", "avx2", "default")))
static double kw_band_mass(const float *restrict x, const float *restrict e, int32_t n, float m, float inv_t,
                           float zlo) {
	double sum = 0;
	int32_t i = 0;
	while (i + KW_LANES <= n) {
		float acc[KW_LANES] = {0};
		int32_t end = n - (n - i) % KW_LANES;
		end = end < i + KW_BLOCK ? end : i + KW_BLOCK;
		for (; i < end; i += KW_LANES) {
			for (int k = 0; k < KW_LANES; k++) {
				float w = e[i + k]; // loaded unconditionally: a select, not a branch
				acc[k] += (float)((x[i + k] - m) * inv_t >= zlo) * w;
			}
		}
		for (int k = 0; k < KW_LANES; k++) {
			sum += acc[k];
		}
	}
	for (; i < n; i++) {
		sum += (x[i] - m) * inv_t >= zlo ? e[i] : 0.0f;
	}
	return sum;
}

// kw_in_band: z in [zlo, zhi), weighed.
static inline __attribute__((always_inline)) int32_t kw_in_band(float x, float e, float m, float inv_t,
                                                                float zlo, float zhi) {
	float z = (x - m) * inv_t;
	return (z >= zlo) & (z < zhi) & (e > 0);
}

// kw_collect lists the tokens of a band, skipping blocks that hold none.
__attribute__((target_clones("avx512f", "avx2", "default")))
static int32_t kw_collect(const float *restrict x, const float *restrict e, int32_t n, float m, float inv_t,
                          float zlo, float zhi, int32_t *restrict list) {
	int32_t c = 0, i = 0;
	for (; i + KW_LANES <= n; i += KW_LANES) {
		int32_t in = 0;
		for (int k = 0; k < KW_LANES; k++) {
			in += kw_in_band(x[i + k], e[i + k], m, inv_t, zlo, zhi);
		}
		if (in == 0) {
			continue;
		}
		for (int k = 0; k < KW_LANES; k++) { // branch-free: half the tokens may be in
			list[c] = i + k;
			c += kw_in_band(x[i + k], e[i + k], m, inv_t, zlo, zhi);
		}
	}
	for (; i < n; i++) {
		if (kw_in_band(x[i], e[i], m, inv_t, zlo, zhi)) {
			list[c++] = i;
		}
	}
	return c;
}

// kw_kept_sum is the weight of x[i0..i1)'s tokens with x >= xt.
static inline __attribute__((always_inline)) float kw_kept_sum(const float *restrict x, const float *restrict e,
                                                               int32_t i0, int32_t i1, float xt) {
	float acc[KW_LANES] = {0};
	int32_t i = i0;
	for (; i + KW_LANES <= i1; i += KW_LANES) {
		for (int k = 0; k < KW_LANES; k++) {
			float w = e[i + k];
			acc[k] += (float)(x[i + k] >= xt) * w;
		}
	}
	float s = 0;
	for (int k = 0; k < KW_LANES; k++) {
		s += acc[k];
	}
	for (; i < i1; i++) {
		s += x[i] >= xt ? e[i] : 0.0f;
	}
	return s;
}

// kw_pick draws the token whose kept weight covers u, skipping whole blocks
// whose kept weight lies below it.
__attribute__((target_clones("avx512f", "avx2", "default")))
static int32_t kw_pick(const float *restrict x, const float *restrict e, int32_t n, float xt, double u) {
	enum { BLOCK = 1024 };
	double acc = 0;
	for (int32_t i0 = 0; i0 < n; i0 += BLOCK) {
		int32_t i1 = i0 + BLOCK < n ? i0 + BLOCK : n;
		double s = kw_kept_sum(x, e, i0, i1, xt);
		if (acc + s <= u) {
			acc += s;
			continue;
		}
		for (int32_t i = i0; i < i1; i++) {
			if (x[i] >= xt && e[i] > 0) {
				acc += e[i];
				if (acc > u) {
					return i;
				}
			}
		}
	}
	// u fell past the kept mass (float sums): the last kept token.
	for (int32_t i = n - 1; i >= 0; i--) {
		if (x[i] >= xt && e[i] > 0) {
			return i;
		}
	}
	return -1;
}

// ---- the cut inside the band where top-p's mass is reached -------------------

static _Thread_local const float *kw_sort_x; // qsort has no context argument

static int kw_by_x_desc(const void *a, const void *b) {
	float xa = kw_sort_x[*(const int32_t *)a], xb = kw_sort_x[*(const int32_t *)b];
	return (xa < xb) - (xa > xb);
}

static void kw_sort_desc(const float *x, int32_t *l, int32_t c) {
	if (c > KW_INSERT) {
		kw_sort_x = x;
		qsort(l, (size_t)c, sizeof *l, kw_by_x_desc);
		return;
	}
	for (int32_t i = 1; i < c; i++) {
		int32_t v = l[i], j = i;
		for (; j > 0 && x[l[j - 1]] < x[v]; j--) {
			l[j] = l[j - 1];
		}
		l[j] = v;
	}
}

// kw_threshold finds, among the c tokens of l (all with log-probabilities in
// [zhi - width, zhi]), the smallest logit x_t such that the tokens with
// x >= x_t bring at least need of mass; *got gets the mass they bring.
static float kw_threshold(const float *x, const float *e, int32_t *l, int32_t c, double need,
                          float m, float inv_t, float zhi, float width, double *got) {
	if (c > KW_INSERT) {
		// One finer histogram over the band, then only the tokens of the
		// sub-bin where the mass is reached.
		double h[KW_SUB] = {0};
		float scale = KW_SUB / width;
		for (int32_t j = 0; j < c; j++) {
			float s = (zhi - (x[l[j]] - m) * inv_t) * scale;
			int32_t b = s > 0 ? (s < KW_SUB - 1 ? (int32_t)s : KW_SUB - 1) : 0;
			h[b] += e[l[j]];
		}
		double before = 0;
		int32_t sb = 0;
		for (; sb < KW_SUB - 1 && before + h[sb] < need; sb++) {
			before += h[sb];
		}
		int32_t c2 = 0;
		for (int32_t j = 0; j < c; j++) {
			float s = (zhi - (x[l[j]] - m) * inv_t) * scale;
			int32_t b = s > 0 ? (s < KW_SUB - 1 ? (int32_t)s : KW_SUB - 1) : 0;
			l[c2] = l[j];
			c2 += b == sb;
		}
		need -= before;
		*got = before;
		c = c2;
	} else {
		*got = 0;
	}
	kw_sort_desc(x, l, c);
	double acc = 0;
	int32_t j = 0;
	for (; j < c - 1 && acc + e[l[j]] < need; j++) {
		acc += e[l[j]];
	}
	float xt = x[l[j]];
	for (; j < c && x[l[j]] >= xt; j++) { // the crossing token and its ties
		acc += e[l[j]];
	}
	*got += acc;
	return xt;
}

int32_t kw_draw(const float *x, int32_t n, float temp, float top_p, uint64_t rng[4],
                kw_draw_scratch *d, int32_t *kept) {
	float m = kw_max(x, n);
	if (m == -INFINITY || n > d->n) {
		return -1;
	}
	if (m == INFINITY) { // an infinite logit takes all the mass
		for (int32_t i = 0; i < n; i++) {
			if (x[i] == INFINITY) {
				if (kept != NULL) {
					*kept = 1;
				}
				return i;
			}
		}
	}
	float inv_t = 1.0f / temp;
	double sum = kw_exp_pass(x, n, m, inv_t, d->e);

	float xt = -INFINITY; // keep the tokens with x >= xt ...
	double mass = sum;    // ... which weigh this much
	if (top_p > 0 && top_p < 1) {
		// The band of log-probability where the kept mass reaches top_p,
		// then the exact cut inside it.
		double target = (double)top_p * sum, above = 0;
		int32_t j = 0;
		for (; j < KW_BANDS; j++) {
			double b = kw_band_mass(x, d->e, n, m, inv_t, kw_band_z(j));
			if (b >= target) {
				break;
			}
			above = b;
		}
		// z <= 0 always: the top band's upper bound is any positive number.
		float zhi = j == 0 ? 1.0f : kw_band_z(j - 1), zlo = j < KW_BANDS ? kw_band_z(j) : -INFINITY;
		int32_t c = kw_collect(x, d->e, n, m, inv_t, zlo, zhi, d->list);
		if (c > 0) {
			double got;
			float width = j < KW_BANDS ? KW_BAND_WIDTH : 87.0f + kw_band_z(KW_BANDS - 1);
			xt = kw_threshold(x, d->e, d->list, c, target - above, m, inv_t, j == 0 ? 0.0f : zhi, width,
			                  &got);
			mass = above + got;
		}
	}
	if (kept != NULL) {
		int32_t k = 0;
		for (int32_t i = 0; i < n; i++) {
			k += (x[i] >= xt) & (d->e[i] > 0);
		}
		*kept = k;
	}
	return kw_pick(x, d->e, n, xt, kw_uniform(rng) * mass);
}
