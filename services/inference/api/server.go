// Package api is the inference service's HTTP layer: the OpenAI-compatible
// chat API and the appliance's own endpoints on a loopback listener (layer
// L1), Bearer authentication, sessions held in encrypted buffers (L5) and
// their wiping (L5a), /audit, /health and /metrics.
//
// Conversation content never reaches a log, an error message or a metric:
// requests are parsed into buffers this package overwrites, and every
// message it logs or answers names fields and limits only.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kwyre/kwyre/services/inference/gpu"
	"github.com/kwyre/kwyre/services/inference/scrub"
	"github.com/kwyre/kwyre/services/inference/session"
)

// Config is what the service tells the HTTP layer at start.
type Config struct {
	Key                 KeyDigest
	Limits              Limits
	ModelName           string            // the id /v1/models and answers report
	GPU                 string            // GPU summary for /health until the engine says more
	GPUState            func() gpu.System // the driver's view now, for /health, /audit and /metrics (nil = not probed)
	IdleTimeout         time.Duration     // sessions idle longer are wiped
	WeightIntegrity     string            // what was verified of the model, for /audit
	ConversationStorage string            // how conversations are held, for /audit
	IntegrityReport     any               // init's integrity.json as read, for /audit (nil = none)
	WatchdogStateFile   string            // the watchdog's state.json ("" = none)
	WatchdogInterval    time.Duration     // the watchdog's scan interval
	ProcRoot, SysRoot   string            // where /audit reads the kernel's network evidence ("" = /proc, /sys)
	Logger              *slog.Logger      // metadata only
}

// EngineInfo describes the loaded engine for /health, /audit and /metrics.
type EngineInfo struct {
	GPU         string // "none" on the CPU, else the GPU, its backend and the layers on it
	LayersOnGPU int
}

// Server serves the API. Create it with New, then Serve a listener from
// ListenLoopback; the model may be handed over later with SetEngine, and
// /health reports progress until then.
type Server struct {
	cfg      Config
	log      *slog.Logger
	metrics  *Metrics
	sessions *session.Table
	created  int64

	engine    atomic.Pointer[loadedEngine]
	integrity atomic.Pointer[integrityInfo]
	progress  atomic.Uint32 // float32 bits
	failed    atomic.Bool

	// wipeMu: WipeAll holds it while it runs, so a request that starts
	// meanwhile waits and then runs on wiped slots, instead of being
	// caught by the engine's half of the wipe.
	wipeMu      sync.RWMutex
	mu          sync.Mutex
	addr        netip.AddrPort // the bound listener address
	epoch       context.Context
	epochCancel context.CancelFunc
	srv         *http.Server
}

type loadedEngine struct {
	Engine
	info EngineInfo
}

// New returns a server with no engine yet.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WatchdogInterval <= 0 {
		cfg.WatchdogInterval = 5 * time.Second
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.SysRoot == "" {
		cfg.SysRoot = "/sys"
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Hour
	}
	def := DefaultLimits()
	if cfg.Limits == (Limits{}) {
		cfg.Limits = def
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: NewMetrics(), created: time.Now().Unix()}
	s.sessions = session.NewTable(cfg.Limits.MaxSessions, s.sessionWiped)
	s.epoch, s.epochCancel = context.WithCancel(context.Background())
	s.SetWeightIntegrity(cfg.WeightIntegrity, cfg.IntegrityReport)
	return s
}

// Metrics returns the server's counters.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Sessions returns the session table.
func (s *Server) Sessions() *session.Table { return s.sessions }

// SetProgress records model load progress (0..1) for /health.
func (s *Server) SetProgress(p float32) {
	if p < 0 || p != p {
		p = 0
	}
	if p > 1 {
		p = 1
	}
	s.progress.Store(math.Float32bits(p))
}

// SetEngine hands over the loaded engine: chat requests are served from now
// on and /health answers "ready".
func (s *Server) SetEngine(e Engine, info EngineInfo, load time.Duration) {
	s.SetProgress(1)
	s.metrics.SetLoadSeconds(load.Seconds())
	s.engine.Store(&loadedEngine{Engine: e, info: info})
}

type integrityInfo struct {
	summary string
	report  any
}

// SetWeightIntegrity records what was verified of the model (and init's
// boot manifest result, if any) for /audit.
func (s *Server) SetWeightIntegrity(summary string, report any) {
	s.integrity.Store(&integrityInfo{summary: summary, report: report})
}

// SetFailed makes /health answer "error" (the service is about to exit).
func (s *Server) SetFailed() { s.failed.Store(true) }

func (s *Server) currentEngine() *loadedEngine { return s.engine.Load() }

// sessionWiped runs after the table wiped a session's buffer: clear the KV
// cells the engine holds for it and count the wipe.
func (s *Server) sessionWiped(id, reason string) {
	if e := s.currentEngine(); e != nil {
		e.WipeOwner(id)
	}
	s.metrics.Wipe(reason)
	scrub.CollectSoon()
	s.log.Info("session wiped", "reason", reason)
}

// WipeAll stops every generation in flight, wipes every session and every
// engine slot. The server keeps serving. reason labels the metrics.
func (s *Server) WipeAll(reason string) int {
	s.wipeMu.Lock()
	defer s.wipeMu.Unlock()
	s.mu.Lock()
	s.epochCancel()
	s.epoch, s.epochCancel = context.WithCancel(context.Background())
	s.mu.Unlock()
	n := s.sessions.WipeAll(reason)
	if e := s.currentEngine(); e != nil {
		e.WipeAll()
	}
	s.metrics.wipeEvent(reason)
	scrub.CollectSoon()
	s.log.Info("all sessions wiped", "reason", reason, "sessions", n)
	return n
}

// genContext derives a request's generation context: it ends when the
// client goes away or when WipeAll runs.
func (s *Server) genContext(parent context.Context) (context.Context, func()) {
	s.wipeMu.RLock()
	defer s.wipeMu.RUnlock()
	s.mu.Lock()
	ep := s.epoch
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(ep, cancel)
	return ctx, func() { stop(); cancel() }
}

// Serve serves HTTP on ln, which must be bound to a loopback address, until
// Shutdown. It also runs the idle-session reaper.
func (s *Server) Serve(ln net.Listener) error {
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil || checkLoopback(ap.Addr()) != nil {
		return fmt.Errorf("serve: listener %s is not on a loopback address", ln.Addr())
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		// net/http's own messages may quote what a client sent.
		ErrorLog: slog.NewLogLogger(dropHandler{}, slog.LevelError),
	}
	s.mu.Lock()
	s.addr = ap
	s.srv = srv
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.sessions.RunReaper(ctx, s.cfg.IdleTimeout, reapInterval(s.cfg.IdleTimeout))
	s.log.Info("listening", "addr", ap.String())
	err = srv.Serve(wipingListener{ln})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// reapInterval checks for idle sessions often enough that one is wiped
// within a quarter of the timeout past it, and at least every 30 s.
func reapInterval(idle time.Duration) time.Duration {
	iv := idle / 4
	if iv > 30*time.Second {
		iv = 30 * time.Second
	}
	if iv < 10*time.Millisecond {
		iv = 10 * time.Millisecond
	}
	return iv
}

// Shutdown stops accepting requests and waits for those in flight, until
// ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// Addr is the bound address ("" before Serve).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.addr.IsValid() {
		return ""
	}
	return s.addr.String()
}

// dropHandler discards net/http's internal error log.
type dropHandler struct{}

func (dropHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (dropHandler) Handle(context.Context, slog.Record) error { return nil }
func (h dropHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h dropHandler) WithGroup(string) slog.Handler           { return h }

// endpoints is the fixed route table; its keys are the metric labels.
var endpoints = map[string]string{
	"/v1/chat/completions": http.MethodPost,
	"/v1/models":           http.MethodGet,
	"/v1/session":          http.MethodPost,
	"/v1/session/end":      http.MethodPost,
	"/health":              http.MethodGet,
	"/audit":               http.MethodGet,
	"/metrics":             http.MethodGet,
}

// ServeHTTP checks the Host header and the key, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	endpoint := r.URL.Path
	method, known := endpoints[endpoint]
	if !known {
		endpoint = "other"
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			// Never log the panic value: it may hold request data.
			s.log.Error("handler panicked", "endpoint", endpoint)
			if !sw.wrote {
				(&apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "internal error"}).write(sw)
			}
		}
		s.metrics.request(endpoint, sw.code())
		// The consoles poll /health and /audit every few seconds: their
		// answers are counted in /metrics, and only failures are logged, so
		// the log (on the serial console too) keeps what happened.
		polled := endpoint == "/health" || endpoint == "/metrics" || endpoint == "/audit"
		if !polled || sw.code() >= 400 {
			s.log.Info("request", "endpoint", endpoint, "method", r.Method, "status", sw.code(), "ms", time.Since(start).Milliseconds())
		}
	}()

	if !s.hostAllowed(r.Host) {
		(&apiError{status: http.StatusForbidden, typ: "forbidden", param: "Host",
			msg: "Host header must be 127.0.0.1:PORT, localhost:PORT or [::1]:PORT of this service"}).write(sw)
		return
	}
	if endpoint != "/health" && !s.cfg.Key.Authorized(r) {
		sw.Header().Set("WWW-Authenticate", `Bearer realm="kwyre"`)
		(&apiError{status: http.StatusUnauthorized, typ: "authentication_error", code: "invalid_api_key",
			msg: "missing or wrong API key: send Authorization: Bearer KEY"}).write(sw)
		return
	}
	if !known {
		(&apiError{status: http.StatusNotFound, typ: "invalid_request_error", msg: "no such endpoint"}).write(sw)
		return
	}
	if r.Method != method {
		sw.Header().Set("Allow", method)
		(&apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error", msg: "use " + method + " for this endpoint"}).write(sw)
		return
	}
	switch endpoint {
	case "/v1/chat/completions":
		s.handleChat(sw, r)
	case "/v1/models":
		s.handleModels(sw, r)
	case "/v1/session":
		s.handleSessionNew(sw, r)
	case "/v1/session/end":
		s.handleSessionEnd(sw, r)
	case "/health":
		s.handleHealth(sw, r)
	case "/audit":
		s.handleAudit(sw, r)
	case "/metrics":
		s.handleMetrics(sw, r)
	}
}

// hostAllowed accepts only the loopback names of the bound port (DNS
// rebinding defence).
func (s *Server) hostAllowed(host string) bool {
	s.mu.Lock()
	ap := s.addr
	s.mu.Unlock()
	if !ap.IsValid() || host == "" {
		return false
	}
	port := strconv.Itoa(int(ap.Port()))
	for _, ok := range [...]string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port} {
		if strings.EqualFold(host, ok) {
			return true
		}
	}
	return false
}

// statusWriter remembers the status code for metrics and passes flushes on.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

// randomID returns prefix + 2n random hex digits.
func randomID(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
