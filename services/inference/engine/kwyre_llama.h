// The engine's own thin layer over llama.h: one context per slot, sampling
// in C on the context's logits, pieces written straight into the caller's
// buffer, and wiping of every buffer that held tokens.
#ifndef KWYRE_LLAMA_H
#define KWYRE_LLAMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kwyre_sample.h"
#include "llama.h"

// Status codes of kw_eval and kw_next besides llama_decode's own.
enum {
	KW_OK = 0,
	KW_ABORTED = 2,      // llama_decode's own code for an abort
	KW_BAD_TOKEN = -100, // a token id outside the vocabulary
};

// Abort bits: a wipe asked for by the engine, or the caller's context.
enum {
	KW_ABORT_WIPE = 1,
	KW_ABORT_CANCEL = 2,
};

typedef struct kw_slot kw_slot;

void kw_log_quiet(void);
void kw_malloc_perturb(void);

struct llama_model *kw_load_model(const char *path, int32_t n_gpu_layers, int32_t embd_type,
                                  int64_t embd_ne0, int64_t embd_ne1, bool *embd_on_gpu,
                                  uintptr_t progress);
int32_t kw_meta(const struct llama_model *m, const char *key, char *buf, size_t len);
int32_t kw_gpu_devices(char *name, size_t len);

kw_slot *kw_slot_new(struct llama_model *m, uint32_t n_ctx, uint32_t n_batch, int32_t threads,
                     int32_t flash_attn, bool kv_probe);
void kw_slot_free(kw_slot *s, bool keep_ctx);
void kw_slot_wipe(kw_slot *s);
int32_t kw_slot_warmup(kw_slot *s);
int32_t kw_slot_last_logits(kw_slot *s, float *dst);
bool kw_slot_trim(kw_slot *s, int32_t p0);
size_t kw_slot_state_size(kw_slot *s);
int32_t kw_slot_cells(kw_slot *s);
uint32_t kw_slot_n_ctx(kw_slot *s);
int32_t kw_slot_n_batch(kw_slot *s);
void kw_slot_scrub(kw_slot *s);

void kw_abort_set(kw_slot *s, int bits);
void kw_abort_clear(kw_slot *s, int bits);
int kw_abort_get(kw_slot *s);

int32_t kw_sampler(kw_slot *s, float temp, float top_p, uint32_t seed);
struct llama_sampler *kw_ref_sampler(float temp, float top_p, uint32_t seed);
int32_t kw_ref_sample(struct llama_sampler *smpl, llama_token_data *cand, const float *logits,
                      int32_t n);
int32_t kw_eval(kw_slot *s, const int32_t *toks, int32_t n, int32_t pos0);
enum { KW_T_DECODE, KW_T_WAIT, KW_T_SAMPLE, KW_T_N };
int32_t kw_next(kw_slot *s, int32_t feed, int32_t feed_pos, int32_t launch_pos, int32_t *tok,
                bool *eog, bool *fed, char *piece, int32_t cap, int32_t *n, double *t);
int32_t kw_piece(kw_slot *s, int32_t tok, char *piece, int32_t cap);

int32_t kw_argmax(const float *x, int32_t n);
int32_t kw_slot_kv_nonzero(kw_slot *s, int64_t *nonzero, int64_t *total);
enum { KW_PROFILE_SAMPLE = 1, KW_PROFILE_NO_LOGITS = 2 };
int32_t kw_profile_decode(kw_slot *s, int32_t tok, int32_t pos0, int32_t n, int flags, double *t);

int32_t kw_render(const char *tmpl, const char *const *roles, const char *const *contents,
                  size_t n, bool add_ass, char *buf, int32_t len);
void kw_wipe_free(void *p, size_t n);
int32_t kw_tokenize(const struct llama_vocab *v, const char *text, int32_t len, llama_token *toks,
                    int32_t cap, bool add_special);

#endif
