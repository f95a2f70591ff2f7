#include "kwyre_llama.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-backend.h"
#include "_cgo_export.h"

// ---- logging ----------------------------------------------------------------

// The level of the line a GGML_LOG_LEVEL_CONT piece continues.
static _Atomic int kw_log_level = GGML_LOG_LEVEL_NONE;

// kw_log keeps warnings and errors (metadata: file, shapes, allocation
// failures) and drops INFO/DEBUG, where llama.cpp would print prompts and
// tokens in verbose modes.
static void kw_log(enum ggml_log_level level, const char *text, void *ud) {
	(void)ud;
	if (level == GGML_LOG_LEVEL_CONT) {
		level = atomic_load(&kw_log_level);
	} else {
		atomic_store(&kw_log_level, level);
	}
	if (level != GGML_LOG_LEVEL_WARN && level != GGML_LOG_LEVEL_ERROR) {
		return;
	}
	// Kwyre sizes the context below the training one on purpose.
	if (strstr(text, "n_ctx_seq") != NULL && strstr(text, "will not be utilized") != NULL) {
		return;
	}
	fputs(text, stderr);
}

void kw_log_quiet(void) { llama_log_set(kw_log, NULL); }

// kw_malloc_perturb makes glibc fill freed heap chunks (and fresh ones), so
// the copies llama.cpp makes internally of rendered prompts and text do not
// outlive their use in free memory. Chunks parked in the per-thread cache
// escape it unless GLIBC_TUNABLES=glibc.malloc.tcache_count=0.
void kw_malloc_perturb(void) { mallopt(M_PERTURB, 0xa5); }

// kw_scrub_tcache takes this thread's cached free chunks (glibc keeps up to
// 7 per size class unperturbed) back out of the tcache, zeroes them and
// frees them again. llama.cpp's tokenizer and chat templates copy text into
// short-lived std::strings; this runs in the same C call, so on the thread
// that freed them.
static void kw_scrub_tcache(void) {
	enum { PER_BIN = 7, MAX_REQ = 1032 }; // glibc's default tcache_count and largest size
	void *p[PER_BIN];
	for (size_t sz = 24; sz <= MAX_REQ; sz += 16) {
		for (int i = 0; i < PER_BIN; i++) {
			p[i] = malloc(sz);
			if (p[i] != NULL) {
				explicit_bzero(p[i], malloc_usable_size(p[i]));
			}
		}
		for (int i = 0; i < PER_BIN; i++) {
			free(p[i]);
		}
	}
}

// kw_burn_stack zeroes the stack below the caller, where the frames of the
// llama.cpp call it just returned from kept short strings (SSO buffers).
__attribute__((noinline)) static void kw_burn_stack(void) {
	char buf[64 * 1024];
	explicit_bzero(buf, sizeof buf);
	__asm__ volatile("" : : "r"(buf) : "memory");
}

static void kw_scrub(void) {
	kw_scrub_tcache();
	kw_burn_stack();
}

int32_t kw_tokenize(const struct llama_vocab *v, const char *text, int32_t len, llama_token *toks,
                    int32_t cap, bool add_special) {
	int32_t n = llama_tokenize(v, text, len, toks, cap, add_special, true);
	kw_scrub();
	return n;
}

// ---- model ------------------------------------------------------------------

static bool kw_progress(float p, void *ud) { return kwyreProgress(p, (uintptr_t)ud); }

// kw_embd_gpu_buft is the first GPU's buffer type if that GPU computes
// GET_ROWS on a [ne0, ne1] token embedding of the given ggml type, else NULL.
static ggml_backend_buffer_type_t kw_embd_gpu_buft(int32_t type, int64_t ne0, int64_t ne1) {
	ggml_backend_dev_t gpu = NULL;
	for (size_t i = 0; i < ggml_backend_dev_count() && gpu == NULL; i++) {
		ggml_backend_dev_t d = ggml_backend_dev_get(i);
		if (ggml_backend_dev_type(d) == GGML_BACKEND_DEVICE_TYPE_GPU) {
			gpu = d;
		}
	}
	if (gpu == NULL || type < 0 || type >= GGML_TYPE_COUNT) {
		return NULL;
	}
	struct ggml_init_params ip = {4 * ggml_tensor_overhead(), NULL, true};
	struct ggml_context *meta = ggml_init(ip);
	if (meta == NULL) {
		return NULL;
	}
	struct ggml_tensor *w = ggml_new_tensor_2d(meta, (enum ggml_type)type, ne0, ne1);
	struct ggml_tensor *ids = ggml_new_tensor_1d(meta, GGML_TYPE_I32, 1);
	struct ggml_tensor *op = ggml_get_rows(meta, w, ids);
	bool ok = ggml_backend_dev_supports_op(gpu, op);
	ggml_free(meta);
	return ok ? ggml_backend_dev_buffer_type(gpu) : NULL;
}

// kw_load_model loads the model with n_gpu_layers on the GPU. embd_type >= 0
// asks for the token embedding (ggml type embd_type, [embd_ne0, embd_ne1])
// on the GPU too, where llama.cpp keeps it on the CPU: each token's lookup
// then runs inside the GPU's graph instead of as a CPU split whose result is
// copied over. It stays on the CPU if the GPU cannot look rows up in that
// type; *embd_on_gpu says which.
struct llama_model *kw_load_model(const char *path, int32_t n_gpu_layers, int32_t embd_type,
                                  int64_t embd_ne0, int64_t embd_ne1, bool *embd_on_gpu,
                                  uintptr_t progress) {
	struct llama_model_params mp = llama_model_default_params();
	mp.n_gpu_layers = n_gpu_layers;
	struct llama_model_tensor_buft_override ov[2] = {{NULL, NULL}, {NULL, NULL}};
	*embd_on_gpu = false;
	if (embd_type >= 0) {
		ggml_backend_buffer_type_t b = kw_embd_gpu_buft(embd_type, embd_ne0, embd_ne1);
		if (b != NULL) {
			ov[0].pattern = "^token_embd\\.weight$";
			ov[0].buft = b;
			mp.tensor_buft_overrides = ov;
			*embd_on_gpu = true;
		}
	}
	mp.use_mmap = true;
	mp.check_tensors = false;
	if (progress != 0) {
		mp.progress_callback = kw_progress;
		mp.progress_callback_user_data = (void *)progress;
	}
	return llama_model_load_from_file(path, mp);
}

int32_t kw_meta(const struct llama_model *m, const char *key, char *buf, size_t len) {
	return llama_model_meta_val_str(m, key, buf, len);
}

// kw_gpu_devices counts GPU devices and names the first one's backend.
int32_t kw_gpu_devices(char *name, size_t len) {
	int32_t n = 0;
	for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
		ggml_backend_dev_t d = ggml_backend_dev_get(i);
		enum ggml_backend_dev_type t = ggml_backend_dev_type(d);
		if (t != GGML_BACKEND_DEVICE_TYPE_GPU && t != GGML_BACKEND_DEVICE_TYPE_IGPU) {
			continue;
		}
		if (n == 0 && len > 0) {
			snprintf(name, len, "%s", ggml_backend_reg_name(ggml_backend_dev_backend_reg(d)));
		}
		n++;
	}
	return n;
}

// ---- slots ------------------------------------------------------------------

enum { KW_MAX_KV_TENSORS = 1024 };

struct kw_slot {
	struct llama_context *ctx;
	const struct llama_vocab *vocab;
	struct llama_batch batch;
	int32_t n_batch;
	int32_t n_vocab;
	// Sampling: greedy when temp <= 0, else kw_draw with rng.
	float temp, top_p;
	uint64_t rng[4];
	kw_draw_scratch draw;
	_Atomic int abort;
	// The KV cache's tensors, recorded by kw_kv_probe_cb when the slot was
	// made with kv_probe, for kw_slot_kv_nonzero.
	struct ggml_tensor *kv[KW_MAX_KV_TENSORS];
	int32_t n_kv;
};

static bool kw_should_abort(void *data) {
	kw_slot *s = data;
	return atomic_load(&s->abort) != 0;
}

static void kw_kv_note(kw_slot *s, struct ggml_tensor *t) {
	if (t == NULL) {
		return;
	}
	if (t->view_src != NULL) {
		t = t->view_src;
	}
	if (strncmp(t->name, "cache_k_", 8) != 0 && strncmp(t->name, "cache_v_", 8) != 0) {
		return;
	}
	for (int32_t i = 0; i < s->n_kv; i++) {
		if (s->kv[i] == t) {
			return;
		}
	}
	if (s->n_kv < KW_MAX_KV_TENSORS) {
		s->kv[s->n_kv++] = t;
	}
}

// kw_kv_probe_cb is the scheduler's eval callback in kv_probe slots: asked
// about each node, it records the KV cache tensors the node reads or writes
// and declines to observe anything, so the graph still runs in one piece.
static bool kw_kv_probe_cb(struct ggml_tensor *t, bool ask, void *ud) {
	kw_slot *s = ud;
	if (ask) {
		kw_kv_note(s, t);
		for (int i = 0; i < GGML_MAX_SRC; i++) {
			kw_kv_note(s, t->src[i]);
		}
		return false;
	}
	return true;
}

kw_slot *kw_slot_new(struct llama_model *m, uint32_t n_ctx, uint32_t n_batch, int32_t threads,
                     int32_t flash_attn, bool kv_probe) {
	kw_slot *s = calloc(1, sizeof *s);
	if (s == NULL) {
		return NULL;
	}
	struct llama_context_params cp = llama_context_default_params();
	cp.n_ctx = n_ctx;
	cp.n_batch = n_batch;
	cp.n_ubatch = n_batch;
	cp.n_seq_max = 1;
	cp.n_threads = threads;
	cp.n_threads_batch = threads;
	cp.embeddings = false;
	cp.flash_attn_type = (enum llama_flash_attn_type)flash_attn;
	cp.no_perf = true;
	cp.abort_callback = kw_should_abort;
	cp.abort_callback_data = s;
	if (kv_probe) {
		cp.cb_eval = kw_kv_probe_cb;
		cp.cb_eval_user_data = s;
	}
	s->ctx = llama_init_from_model(m, cp);
	if (s->ctx == NULL) {
		free(s);
		return NULL;
	}
	s->vocab = llama_model_get_vocab(m);
	s->n_vocab = llama_vocab_n_tokens(s->vocab);
	s->n_batch = (int32_t)llama_n_batch(s->ctx);
	s->batch = llama_batch_init(s->n_batch, 0, 1);
	if (kw_draw_scratch_init(&s->draw, s->n_vocab) != 0 || s->batch.token == NULL) {
		kw_slot_free(s, false);
		return NULL;
	}
	return s;
}

static void kw_batch_wipe(kw_slot *s) {
	explicit_bzero(s->batch.token, (size_t)s->n_batch * sizeof *s->batch.token);
	explicit_bzero(s->batch.pos, (size_t)s->n_batch * sizeof *s->batch.pos);
	s->batch.n_tokens = 0;
}

void kw_slot_free(kw_slot *s, bool keep_ctx) {
	if (s == NULL) {
		return;
	}
	if (s->ctx != NULL && keep_ctx) {
		// The KV data is zeroed; the context itself is left to process exit.
		llama_memory_clear(llama_get_memory(s->ctx), true);
	} else if (s->ctx != NULL) {
		llama_memory_clear(llama_get_memory(s->ctx), true);
		// ggml_backend_sched_free (ollama's patch 0020) reads the context's
		// backends after ~llama_context has freed them; perturbed free
		// memory would turn that stale read into a crash.
		mallopt(M_PERTURB, 0);
		llama_free(s->ctx);
		kw_malloc_perturb();
	}
	if (s->batch.token != NULL) {
		kw_batch_wipe(s);
		llama_batch_free(s->batch);
	}
	kw_draw_scratch_free(&s->draw);
	free(s);
}

// kw_slot_wipe forgets every cell and zeroes the KV buffers' data, on
// whichever device they live.
void kw_slot_wipe(kw_slot *s) {
	llama_memory_clear(llama_get_memory(s->ctx), true);
	kw_batch_wipe(s);
	kw_draw_scratch_wipe(&s->draw);
	// The last output's logits say much about the last token: zero them too
	// (the output buffer always holds at least one row).
	float *logits = llama_get_logits(s->ctx);
	if (logits != NULL) {
		explicit_bzero(logits, (size_t)s->n_vocab * sizeof *logits);
	}
}

bool kw_slot_trim(kw_slot *s, int32_t p0) {
	return llama_memory_seq_rm(llama_get_memory(s->ctx), 0, p0, -1);
}

size_t kw_slot_state_size(kw_slot *s) { return llama_state_seq_get_size(s->ctx, 0); }

// kw_slot_cells is the number of positions sequence 0 holds (0 if none).
int32_t kw_slot_cells(kw_slot *s) {
	llama_memory_t mem = llama_get_memory(s->ctx);
	llama_pos lo = llama_memory_seq_pos_min(mem, 0), hi = llama_memory_seq_pos_max(mem, 0);
	if (lo < 0 || hi < 0) {
		return 0;
	}
	return hi - lo + 1;
}

uint32_t kw_slot_n_ctx(kw_slot *s) { return llama_n_ctx(s->ctx); }
int32_t kw_slot_n_batch(kw_slot *s) { return s->n_batch; }

// kw_slot_scrub waits for a decode still in flight, then zeroes the batch,
// which held the last tokens evaluated.
void kw_slot_scrub(kw_slot *s) {
	llama_synchronize(s->ctx);
	kw_batch_wipe(s);
}

void kw_abort_set(kw_slot *s, int bits) { atomic_fetch_or(&s->abort, bits); }
void kw_abort_clear(kw_slot *s, int bits) { atomic_fetch_and(&s->abort, ~bits); }
int kw_abort_get(kw_slot *s) { return atomic_load(&s->abort); }

// kw_sampler sets the slot's sampling for the next generation: greedy for a
// temperature of 0 (or less), else temperature, top-p and a seeded draw
// (kw_draw).
int32_t kw_sampler(kw_slot *s, float temp, float top_p, uint32_t seed) {
	s->temp = temp;
	s->top_p = top_p;
	kw_rng_seed(s->rng, seed);
	return 0;
}

// kw_ref_sampler is llama.cpp's own chain for what kw_sampler sets up
// (temperature, top-p when in (0,1), a seeded draw): the reference that
// tests and benchmarks compare kw_draw with.
struct llama_sampler *kw_ref_sampler(float temp, float top_p, uint32_t seed) {
	struct llama_sampler_chain_params p = llama_sampler_chain_default_params();
	p.no_perf = true;
	struct llama_sampler *c = llama_sampler_chain_init(p);
	if (c == NULL) {
		return NULL;
	}
	llama_sampler_chain_add(c, llama_sampler_init_temp(temp));
	if (top_p > 0 && top_p < 1) {
		llama_sampler_chain_add(c, llama_sampler_init_top_p(top_p, 1));
	}
	llama_sampler_chain_add(c, llama_sampler_init_dist(seed));
	return c;
}

static int32_t kw_decode(kw_slot *s, const int32_t *toks, int32_t n, int32_t pos0, bool logits);

// kw_eval decodes n tokens (n <= n_batch) at positions pos0.., asking for
// logits of the last one only.
int32_t kw_eval(kw_slot *s, const int32_t *toks, int32_t n, int32_t pos0) {
	return kw_decode(s, toks, n, pos0, true);
}

static int32_t kw_decode(kw_slot *s, const int32_t *toks, int32_t n, int32_t pos0, bool logits) {
	if (n <= 0 || n > s->n_batch) {
		return -1;
	}
	if (atomic_load(&s->abort) != 0) {
		return KW_ABORTED;
	}
	for (int32_t i = 0; i < n; i++) {
		if (toks[i] < 0 || toks[i] >= s->n_vocab) {
			return KW_BAD_TOKEN;
		}
		s->batch.token[i] = toks[i];
		s->batch.pos[i] = pos0 + i;
		s->batch.n_seq_id[i] = 1;
		s->batch.seq_id[i][0] = 0;
		s->batch.logits[i] = logits && i == n - 1;
	}
	s->batch.n_tokens = n;
	return llama_decode(s->ctx, s->batch);
}

// kw_slot_last_logits waits for the device and copies the last output's
// logits (n_vocab floats) into dst; -1 if there is none.
int32_t kw_slot_last_logits(kw_slot *s, float *dst) {
	llama_synchronize(s->ctx);
	const float *l = llama_get_logits_ith(s->ctx, -1);
	if (l == NULL) {
		return -1;
	}
	memcpy(dst, l, (size_t)s->n_vocab * sizeof *dst);
	return 0;
}

// kw_slot_warmup runs a full batch, then one token, through the slot's
// context and wipes it, so that what the backend does on first use (loading
// kernels, creating cuBLAS's handle, growing its memory pool, capturing the
// single-token graph) happens at load, not in a user's first turn. Returns
// llama_decode's status.
int32_t kw_slot_warmup(kw_slot *s) {
	llama_token t = llama_vocab_bos(s->vocab);
	if (t < 0 || t >= s->n_vocab) {
		t = 0;
	}
	int32_t n = s->n_batch;
	if ((uint32_t)n >= llama_n_ctx(s->ctx)) {
		n = (int32_t)llama_n_ctx(s->ctx) - 1;
	}
	int32_t rc = -1;
	int32_t *toks = malloc((size_t)(n > 0 ? n : 1) * sizeof *toks);
	if (toks != NULL && n > 0) {
		for (int32_t i = 0; i < n; i++) {
			toks[i] = t;
		}
		rc = kw_decode(s, toks, n, 0, true);
		if (rc == 0) {
			rc = kw_decode(s, toks, 1, n, true);
		}
		llama_synchronize(s->ctx);
	}
	free(toks);
	kw_slot_wipe(s);
	return rc;
}

// kw_block_max is the largest of x[0..n) (n a multiple of 16), in lanes
// the compiler vectorizes.
static inline float kw_block_max(const float *x, int32_t n) {
	enum { W = 16 };
	float m[W];
	for (int k = 0; k < W; k++) {
		m[k] = -__builtin_inff();
	}
	for (int32_t i = 0; i < n; i += W) {
		for (int k = 0; k < W; k++) {
			m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
		}
	}
	float best = m[0];
	for (int k = 1; k < W; k++) {
		best = m[k] > best ? m[k] : best;
	}
	return best;
}

// kw_argmax is the index of the first largest of x[0..n) (0 if all are NaN).
// It runs on every generated token over the whole vocabulary (128K logits
// for Llama 3), between the device finishing one token and starting the
// next: one vectorized pass over blocks, then a scan of the winning block
// only. About 20x faster than a compare chain (qa/gpu profile: sample_us).
__attribute__((target_clones("avx512f", "avx2", "default")))
int32_t kw_argmax(const float *x, int32_t n) {
	enum { B = 2048 };
	float best = -__builtin_inff();
	int32_t from = -1, to = -1, i = 0;
	for (; i + B <= n; i += B) {
		float m = kw_block_max(x + i, B);
		if (m > best) {
			best = m;
			from = i;
			to = i + B;
		}
	}
	for (int32_t j = i; j < n; j++) {
		if (x[j] > best) {
			best = x[j];
			from = j;
			to = j + 1;
		}
	}
	for (i = from; i >= 0 && i < to; i++) {
		if (x[i] == best) {
			return i;
		}
	}
	return 0;
}

// kw_ref_sample picks a token from n logits with llama.cpp's chain smpl,
// using cand (n entries) as its scratch.
int32_t kw_ref_sample(struct llama_sampler *smpl, llama_token_data *cand, const float *logits,
                      int32_t n) {
	for (int32_t i = 0; i < n; i++) {
		cand[i].id = i;
		cand[i].logit = logits[i];
		cand[i].p = 0;
	}
	llama_token_data_array a = {cand, (size_t)n, -1, false};
	llama_sampler_apply(smpl, &a);
	if (a.selected < 0 || a.selected >= (int64_t)a.size) {
		return -1;
	}
	llama_token t = a.data[a.selected].id;
	llama_sampler_accept(smpl, t);
	return t;
}

static llama_token kw_sample(kw_slot *s) {
	const float *logits = llama_get_logits_ith(s->ctx, -1);
	if (logits == NULL) {
		return -1;
	}
	if (s->temp <= 0) {
		return kw_argmax(logits, s->n_vocab);
	}
	return kw_draw(logits, s->n_vocab, s->temp, s->top_p, s->rng, &s->draw, NULL);
}

int32_t kw_piece(kw_slot *s, int32_t tok, char *piece, int32_t cap) {
	return llama_token_to_piece(s->vocab, tok, piece, cap, 0, false);
}

static double kw_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// kw_next is one step of generation. When feed_pos >= 0 it first decodes
// feed at feed_pos. It then samples the next token from the last logits
// into *tok and says whether it ends the generation. If it does not and
// launch_pos >= 0, it queues the decoding of that token at launch_pos
// (*fed) before writing the token's text into piece (*n < 0: piece needs
// -*n bytes): on a GPU the device computes the next logits while the caller
// streams this piece, and the next call waits for them. On the CPU
// llama_decode computes before it returns, so callers feed instead: the
// piece reaches the user one token sooner.
// t[KW_T_DECODE], t[KW_T_WAIT] and t[KW_T_SAMPLE] accumulate the seconds
// spent in llama_decode, waiting for the device and sampling.
int32_t kw_next(kw_slot *s, int32_t feed, int32_t feed_pos, int32_t launch_pos, int32_t *tok,
                bool *eog, bool *fed, char *piece, int32_t cap, int32_t *n, double *t) {
	*fed = false;
	if (atomic_load(&s->abort) != 0) {
		return KW_ABORTED;
	}
	double t0 = kw_now();
	if (feed_pos >= 0) {
		int32_t rc = kw_eval(s, &feed, 1, feed_pos);
		if (rc != 0) {
			return rc;
		}
	}
	double t1 = kw_now();
	llama_synchronize(s->ctx);
	double t2 = kw_now();
	llama_token tk = kw_sample(s);
	double t3 = kw_now();
	t[KW_T_DECODE] += t1 - t0;
	t[KW_T_WAIT] += t2 - t1;
	t[KW_T_SAMPLE] += t3 - t2;
	if (tk < 0) {
		return -1;
	}
	*tok = tk;
	*eog = llama_vocab_is_eog(s->vocab, tk);
	if (*eog) {
		*n = 0;
		return KW_OK;
	}
	if (launch_pos >= 0) {
		int32_t rc = kw_eval(s, &tk, 1, launch_pos);
		t[KW_T_DECODE] += kw_now() - t3;
		if (rc != 0) {
			return rc;
		}
		*fed = true;
	}
	*n = kw_piece(s, tk, piece, cap);
	return KW_OK;
}

// ---- measurement -------------------------------------------------------------

// kw_slot_kv_nonzero reads the KV cache tensors a kv_probe slot has used
// back from their buffers (device memory included) and counts the bytes
// that are not zero. Returns -1 if no tensor was recorded.
int32_t kw_slot_kv_nonzero(kw_slot *s, int64_t *nonzero, int64_t *total) {
	*nonzero = 0;
	*total = 0;
	if (s->n_kv == 0) {
		return -1;
	}
	enum { CHUNK = 1 << 20 };
	unsigned char *buf = malloc(CHUNK);
	if (buf == NULL) {
		return -2;
	}
	llama_synchronize(s->ctx);
	for (int32_t i = 0; i < s->n_kv; i++) {
		struct ggml_tensor *t = s->kv[i];
		size_t n = ggml_nbytes(t);
		for (size_t off = 0; off < n; off += CHUNK) {
			size_t len = n - off < CHUNK ? n - off : CHUNK;
			ggml_backend_tensor_get(t, buf, off, len);
			for (size_t j = 0; j < len; j++) {
				*nonzero += buf[j] != 0;
			}
		}
		*total += (int64_t)n;
	}
	free(buf);
	return s->n_kv;
}

// kw_profile_decode decodes n single tokens at positions pos0.., as
// llama-bench's tg test does (first tok, then tok again or, with
// KW_PROFILE_SAMPLE, the argmax of the logits; with KW_PROFILE_NO_LOGITS no
// logits are asked for, so none are copied back), and adds the seconds spent
// in llama_decode (t[0]), waiting in llama_synchronize (t[1]) and reading the
// logits and picking the next token (t[2]).
int32_t kw_profile_decode(kw_slot *s, int32_t tok, int32_t pos0, int32_t n, int flags, double *t) {
	for (int32_t i = 0; i < n; i++) {
		double a = kw_now();
		int32_t rc = kw_decode(s, &tok, 1, pos0 + i, !(flags & KW_PROFILE_NO_LOGITS));
		if (rc != 0) {
			return rc;
		}
		double b = kw_now();
		llama_synchronize(s->ctx);
		double c = kw_now();
		if (flags & KW_PROFILE_SAMPLE) {
			const float *logits = llama_get_logits_ith(s->ctx, -1);
			if (logits == NULL) {
				return -1;
			}
			tok = kw_argmax(logits, s->n_vocab);
		}
		double d = kw_now();
		t[0] += b - a;
		t[1] += c - b;
		t[2] += d - c;
	}
	return 0;
}

// ---- chat templates ---------------------------------------------------------

int32_t kw_render(const char *tmpl, const char *const *roles, const char *const *contents,
                  size_t n, bool add_ass, char *buf, int32_t len) {
	struct llama_chat_message *msgs = calloc(n ? n : 1, sizeof *msgs);
	if (msgs == NULL) {
		return -2;
	}
	for (size_t i = 0; i < n; i++) {
		msgs[i].role = roles[i];
		msgs[i].content = contents[i];
	}
	int32_t r = llama_chat_apply_template(tmpl, msgs, n, add_ass, buf, len);
	free(msgs);
	kw_scrub();
	return r;
}

void kw_wipe_free(void *p, size_t n) {
	if (p == NULL) {
		return;
	}
	explicit_bzero(p, n);
	free(p);
}
