// cudashim: where single-token decoding spends its host time, seen from the
// CUDA runtime calls the ggml CUDA backend makes. Diagnostic, for the GPU
// machine (no Go there; gcc is):
//
//   gcc -O2 -shared -fPIC -o cudashim.so qa/gpu/cudashim.c -ldl
//   LD_PRELOAD=$PWD/cudashim.so enginebench -steps L,L ... 2>&1 | grep shim
//
// A "long" cudaStreamSynchronize (over 100 µs) is the wait for a token's
// logits; the time from its return to the next cudaGraphLaunch is the host
// work the GPU waits on before it can start the next token ("pre-launch":
// sampling, llama_decode's graph checks, input copies). Every 128 tokens it
// prints one JSON line: pre-launch p50, p90 and mean, the time from a launch
// to the next long wait, that wait, and for each wrapped call [calls per
// token, µs per token, of which µs before the launch]. A token whose
// pre-launch exceeds 400 µs (a graph rebuild and CUDA graph capture) gets a
// line of its own, "shim_slow", with the calls made in it and the time spent
// outside them. Figures assume one generating thread.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int cerr;

static double now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

enum { F_LAUNCH, F_MEMCPY, F_SYNC, F_EXECUPD, F_BEGINCAP, F_ENDCAP, F_EVREC, F_WAITEV, F_MEMSET, F_GETDEV, F_INST, F_N };
static const char *names[F_N] = {"GraphLaunch", "MemcpyAsync", "StreamSync", "GraphExecUpdate",
                                 "BeginCapture", "EndCapture", "EventRecord", "StreamWaitEvent",
                                 "MemsetAsync", "GetDevice", "GraphInstantiate"};

enum { WINDOW = 128, MAX_WINDOW = 4096 };
static double tot[F_N], tot_pre[F_N], tok[F_N]; // per window; per window before launches; this token
static long cnt[F_N], tok_cnt[F_N];
static double pres[MAX_WINDOW];
static double last_wait_end, launch_end, pre_sum, post_sum, wait_sum;
static long window;
static int in_pre; // between a token's wait and its launch

static int cmp(const void *a, const void *b) {
	double d = *(const double *)a - *(const double *)b;
	return d < 0 ? -1 : d > 0;
}

static void report(void) {
	long n = window < MAX_WINDOW ? window : MAX_WINDOW;
	qsort(pres, n, sizeof pres[0], cmp);
	fprintf(stderr, "{\"shim\":1,\"tokens\":%ld,\"pre_p50\":%.1f,\"pre_p90\":%.1f,\"pre_launch_us\":%.1f,"
	                "\"post_launch_us\":%.1f,\"long_wait_us\":%.1f",
	        window, pres[n / 2], pres[n * 9 / 10], pre_sum / window, post_sum / window, wait_sum / window);
	for (int i = 0; i < F_N; i++) {
		if (cnt[i]) {
			fprintf(stderr, ",\"%s\":[%.2f,%.1f,%.1f]", names[i], (double)cnt[i] / window, tot[i] / window,
			        tot_pre[i] / window);
		}
	}
	fprintf(stderr, "}\n");
	memset(tot, 0, sizeof tot);
	memset(tot_pre, 0, sizeof tot_pre);
	memset(cnt, 0, sizeof cnt);
	pre_sum = post_sum = wait_sum = 0;
	window = 0;
}

static void account(int f, double d) {
	tot[f] += d;
	cnt[f]++;
	if (in_pre) {
		tot_pre[f] += d;
		tok[f] += d;
		tok_cnt[f]++;
	}
}

// The backend is dlopen'ed with RTLD_LOCAL, so RTLD_NEXT cannot see libcudart.
static void *cudart(const char *name) {
	static void *h;
	const char *libs[] = {"libcudart.so.13", "libcudart.so.12", "libcudart.so"};
	for (int i = 0; !h && i < 3; i++) {
		h = dlopen(libs[i], RTLD_NOW | RTLD_NOLOAD);
	}
	void *f = h ? dlsym(h, name) : NULL;
	if (f == NULL) {
		fprintf(stderr, "cudashim: no %s in a loaded libcudart\n", name);
		abort();
	}
	return f;
}

#define REAL(name, type)                     \
	static __typeof__(type) *real;           \
	if (real == NULL) {                      \
		real = (__typeof__(type) *)cudart(name); \
	}
#define TIMED(f, call)                  \
	do {                                \
		double t0 = now_us();           \
		cerr r = call;                  \
		account(f, now_us() - t0);      \
		return r;                       \
	} while (0)

cerr cudaGraphLaunch(void *exec, void *stream) {
	REAL("cudaGraphLaunch", cerr(void *, void *));
	double t0 = now_us();
	if (last_wait_end > 0 && in_pre) {
		double pre = t0 - last_wait_end;
		if (window < MAX_WINDOW) {
			pres[window] = pre;
		}
		pre_sum += pre;
		window++;
		if (pre > 400) {
			double in_cuda = 0;
			fprintf(stderr, "{\"shim_slow\":1,\"pre_launch_us\":%.0f", pre);
			for (int i = 0; i < F_N; i++) {
				if (tok_cnt[i]) {
					fprintf(stderr, ",\"%s\":[%ld,%.0f]", names[i], tok_cnt[i], tok[i]);
					in_cuda += tok[i];
				}
			}
			fprintf(stderr, ",\"not_in_cuda_us\":%.0f}\n", pre - in_cuda);
		}
	}
	in_pre = 0;
	cerr r = real(exec, stream);
	launch_end = now_us();
	tot[F_LAUNCH] += launch_end - t0;
	cnt[F_LAUNCH]++;
	return r;
}

cerr cudaStreamSynchronize(void *stream) {
	REAL("cudaStreamSynchronize", cerr(void *));
	double t0 = now_us();
	cerr r = real(stream);
	double t1 = now_us();
	account(F_SYNC, t1 - t0);
	if (t1 - t0 > 100) { // a token's wait
		if (launch_end > 0 && !in_pre) {
			post_sum += t0 - launch_end;
			wait_sum += t1 - t0;
		}
		last_wait_end = t1;
		in_pre = 1;
		memset(tok, 0, sizeof tok);
		memset(tok_cnt, 0, sizeof tok_cnt);
		if (window >= WINDOW) {
			report();
		}
	}
	return r;
}

cerr cudaMemcpyAsync(void *dst, const void *src, size_t n, int kind, void *stream) {
	REAL("cudaMemcpyAsync", cerr(void *, const void *, size_t, int, void *));
	TIMED(F_MEMCPY, real(dst, src, n, kind, stream));
}
cerr cudaGraphExecUpdate(void *exec, void *graph, void *info) {
	REAL("cudaGraphExecUpdate", cerr(void *, void *, void *));
	TIMED(F_EXECUPD, real(exec, graph, info));
}
cerr cudaStreamBeginCapture(void *stream, int mode) {
	REAL("cudaStreamBeginCapture", cerr(void *, int));
	TIMED(F_BEGINCAP, real(stream, mode));
}
cerr cudaStreamEndCapture(void *stream, void **graph) {
	REAL("cudaStreamEndCapture", cerr(void *, void **));
	TIMED(F_ENDCAP, real(stream, graph));
}
cerr cudaEventRecord(void *event, void *stream) {
	REAL("cudaEventRecord", cerr(void *, void *));
	TIMED(F_EVREC, real(event, stream));
}
cerr cudaStreamWaitEvent(void *stream, void *event, unsigned flags) {
	REAL("cudaStreamWaitEvent", cerr(void *, void *, unsigned));
	TIMED(F_WAITEV, real(stream, event, flags));
}
cerr cudaMemsetAsync(void *dst, int v, size_t n, void *stream) {
	REAL("cudaMemsetAsync", cerr(void *, int, size_t, void *));
	TIMED(F_MEMSET, real(dst, v, n, stream));
}
cerr cudaGetDevice(int *dev) {
	REAL("cudaGetDevice", cerr(int *));
	TIMED(F_GETDEV, real(dev));
}
cerr cudaGraphInstantiate(void **exec, void *graph, unsigned long long flags) {
	REAL("cudaGraphInstantiate", cerr(void **, void *, unsigned long long));
	TIMED(F_INST, real(exec, graph, flags));
}
