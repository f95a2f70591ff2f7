package api

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// ttftBuckets are the upper bounds (seconds) of the time-to-first-token
// histogram.
var ttftBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics counts what the service did. Every label value comes from a fixed
// set (endpoints, status codes, wipe reasons): nothing a client sends.
type Metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // {endpoint, code}
	wipes    map[string]uint64
	events   map[string]uint64 // WipeAll calls by reason
	ttft     []uint64          // per bucket, cumulative when written
	ttftSum  float64
	ttftN    uint64

	promptTokens, evaluatedTokens, cachedTokens, completionTokens atomic.Uint64
	queueRejections, disconnects                                  atomic.Uint64
	// Generation time by part (Result's breakdown), in nanoseconds.
	decodeNs, waitNs, sampleNs, generationNs atomic.Uint64
	loadSeconds                              atomic.Uint64 // float64 bits
}

// NewMetrics returns empty counters.
func NewMetrics() *Metrics {
	return &Metrics{
		requests: make(map[[2]string]uint64),
		wipes:    make(map[string]uint64),
		events:   make(map[string]uint64),
		ttft:     make([]uint64, len(ttftBuckets)),
	}
}

func (m *Metrics) request(endpoint string, code int) {
	m.mu.Lock()
	m.requests[[2]string{endpoint, strconv.Itoa(code)}]++
	m.mu.Unlock()
}

// Wipe counts one wiped session (or one wipe of everything) by reason.
func (m *Metrics) Wipe(reason string) {
	m.mu.Lock()
	m.wipes[reason]++
	m.mu.Unlock()
}

func (m *Metrics) wipeEvent(reason string) {
	m.mu.Lock()
	m.events[reason]++
	m.mu.Unlock()
}

// SetLoadSeconds records how long loading the model took.
func (m *Metrics) SetLoadSeconds(s float64) { m.loadSeconds.Store(math.Float64bits(s)) }

func (m *Metrics) generation(r Result) {
	m.promptTokens.Add(uint64(r.PromptTokens))
	m.evaluatedTokens.Add(uint64(r.EvaluatedTokens))
	m.cachedTokens.Add(uint64(r.CachedTokens))
	m.completionTokens.Add(uint64(r.CompletionTokens))
	m.decodeNs.Add(uint64(max(r.DecodeTime, 0)))
	m.waitNs.Add(uint64(max(r.WaitTime, 0)))
	m.sampleNs.Add(uint64(max(r.SampleTime, 0)))
	m.generationNs.Add(uint64(max(r.Duration, 0)))
	if r.CompletionTokens == 0 {
		return
	}
	s := r.TimeToFirstToken.Seconds()
	m.mu.Lock()
	for i, le := range ttftBuckets {
		if s <= le {
			m.ttft[i]++
			break
		}
	}
	m.ttftSum += s
	m.ttftN++
	m.mu.Unlock()
}

// WriteText writes the Prometheus text exposition format.
func (m *Metrics) WriteText(w io.Writer, activeSessions int) error {
	m.mu.Lock()
	reqKeys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		reqKeys = append(reqKeys, k)
	}
	sort.Slice(reqKeys, func(i, j int) bool {
		if reqKeys[i][0] != reqKeys[j][0] {
			return reqKeys[i][0] < reqKeys[j][0]
		}
		return reqKeys[i][1] < reqKeys[j][1]
	})
	reqs := make([]uint64, len(reqKeys))
	for i, k := range reqKeys {
		reqs[i] = m.requests[k]
	}
	wipeKeys := make([]string, 0, len(m.wipes))
	for k := range m.wipes {
		wipeKeys = append(wipeKeys, k)
	}
	sort.Strings(wipeKeys)
	wipes := make([]uint64, len(wipeKeys))
	for i, k := range wipeKeys {
		wipes[i] = m.wipes[k]
	}
	eventKeys := make([]string, 0, len(m.events))
	for k := range m.events {
		eventKeys = append(eventKeys, k)
	}
	sort.Strings(eventKeys)
	events := make([]uint64, len(eventKeys))
	for i, k := range eventKeys {
		events[i] = m.events[k]
	}
	ttft := append([]uint64(nil), m.ttft...)
	ttftSum, ttftN := m.ttftSum, m.ttftN
	m.mu.Unlock()

	var b []byte
	b = append(b, "# HELP kwyre_requests_total HTTP requests by endpoint and status code.\n# TYPE kwyre_requests_total counter\n"...)
	for i, k := range reqKeys {
		b = fmt.Appendf(b, "kwyre_requests_total{endpoint=%q,code=%q} %d\n", k[0], k[1], reqs[i])
	}
	b = append(b, "# HELP kwyre_tokens_total Tokens by kind: prompt = cached + evaluated.\n# TYPE kwyre_tokens_total counter\n"...)
	for _, t := range []struct {
		kind string
		v    uint64
	}{
		{"prompt", m.promptTokens.Load()},
		{"evaluated", m.evaluatedTokens.Load()},
		{"cached", m.cachedTokens.Load()},
		{"completion", m.completionTokens.Load()},
	} {
		b = fmt.Appendf(b, "kwyre_tokens_total{kind=%q} %d\n", t.kind, t.v)
	}
	b = append(b, "# HELP kwyre_time_to_first_token_seconds Time from a request's start of generation to its first token.\n# TYPE kwyre_time_to_first_token_seconds histogram\n"...)
	var cum uint64
	for i, le := range ttftBuckets {
		cum += ttft[i]
		b = fmt.Appendf(b, "kwyre_time_to_first_token_seconds_bucket{le=%q} %d\n", strconv.FormatFloat(le, 'g', -1, 64), cum)
	}
	b = fmt.Appendf(b, "kwyre_time_to_first_token_seconds_bucket{le=\"+Inf\"} %d\n", ttftN)
	b = fmt.Appendf(b, "kwyre_time_to_first_token_seconds_sum %g\nkwyre_time_to_first_token_seconds_count %d\n", ttftSum, ttftN)
	b = append(b, "# HELP kwyre_generation_seconds_total Generation time by part: in llama_decode, waiting for the device, sampling, and the rest (the prompt's dispatch, detokenizing, streaming).\n# TYPE kwyre_generation_seconds_total counter\n"...)
	dec, wait, smp, all := m.decodeNs.Load(), m.waitNs.Load(), m.sampleNs.Load(), m.generationNs.Load()
	other := int64(all) - int64(dec+wait+smp)
	for _, p := range []struct {
		part string
		ns   int64
	}{{"decode", int64(dec)}, {"wait", int64(wait)}, {"sample", int64(smp)}, {"other", max(other, 0)}} {
		b = fmt.Appendf(b, "kwyre_generation_seconds_total{part=%q} %g\n", p.part, float64(p.ns)/1e9)
	}
	b = fmt.Appendf(b, "# HELP kwyre_active_sessions Live sessions.\n# TYPE kwyre_active_sessions gauge\nkwyre_active_sessions %d\n", activeSessions)
	b = append(b, "# HELP kwyre_session_wipes_total Sessions wiped, by reason.\n# TYPE kwyre_session_wipes_total counter\n"...)
	for i, k := range wipeKeys {
		b = fmt.Appendf(b, "kwyre_session_wipes_total{reason=%q} %d\n", k, wipes[i])
	}
	b = append(b, "# HELP kwyre_wipe_all_total Wipes of every session and slot (signals, shutdown), by reason.\n# TYPE kwyre_wipe_all_total counter\n"...)
	for i, k := range eventKeys {
		b = fmt.Appendf(b, "kwyre_wipe_all_total{reason=%q} %d\n", k, events[i])
	}
	b = fmt.Appendf(b, "# HELP kwyre_queue_rejections_total Requests answered 503 after waiting too long for a slot.\n# TYPE kwyre_queue_rejections_total counter\nkwyre_queue_rejections_total %d\n", m.queueRejections.Load())
	b = fmt.Appendf(b, "# HELP kwyre_client_disconnects_total Generations stopped because the client went away.\n# TYPE kwyre_client_disconnects_total counter\nkwyre_client_disconnects_total %d\n", m.disconnects.Load())
	b = fmt.Appendf(b, "# HELP kwyre_model_load_seconds Time the model took to load (0 while loading).\n# TYPE kwyre_model_load_seconds gauge\nkwyre_model_load_seconds %g\n", math.Float64frombits(m.loadSeconds.Load()))
	_, err := w.Write(b)
	return err
}
