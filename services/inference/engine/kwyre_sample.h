// The engine's own sampler: temperature, top-p and a seeded draw over the
// whole vocabulary in a few vectorized passes, without sorting it.
#ifndef KWYRE_SAMPLE_H
#define KWYRE_SAMPLE_H

#include <stdint.h>

// kw_draw_scratch is the per-slot memory kw_draw works in (n_vocab
// entries each). It holds values derived from the logits: wipe it with them.
typedef struct {
	float *e;      // exp((x - max) / temp)
	int32_t *list; // the tokens of the band where top-p's mass is reached
	int32_t n;
} kw_draw_scratch;

int kw_draw_scratch_init(kw_draw_scratch *d, int32_t n);
void kw_draw_scratch_wipe(kw_draw_scratch *d);
void kw_draw_scratch_free(kw_draw_scratch *d);

void kw_rng_seed(uint64_t rng[4], uint64_t seed);

// kw_draw samples a token from softmax(x / temp) restricted to the smallest
// set of most likely tokens whose probability reaches top_p (all of them
// when top_p is not in (0, 1)), as llama.cpp's temp, top-p and dist
// samplers do in that order. temp must be > 0. NaN logits are never drawn.
// *kept (may be NULL) gets the number of tokens top-p kept.
int32_t kw_draw(const float *x, int32_t n, float temp, float top_p, uint64_t rng[4],
                kw_draw_scratch *d, int32_t *kept);

#endif
