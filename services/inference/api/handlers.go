package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/kwyre/kwyre/services/inference/gpu"
	"github.com/kwyre/kwyre/services/inference/scrub"
	"github.com/kwyre/kwyre/services/inference/session"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		(&apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "encoding the answer failed"}).write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	type health struct {
		Status     string       `json:"status"`
		Progress   float64      `json:"progress"`
		Model      string       `json:"model"`
		GPU        string       `json:"gpu"`
		GPUDevices []gpu.Device `json:"gpu_devices"`
	}
	h := health{Status: "loading", Model: s.cfg.ModelName, GPU: s.cfg.GPU, GPUDevices: healthDevices(s.gpuState())}
	h.Progress = math.Round(float64(math.Float32frombits(s.progress.Load()))*1000) / 1000
	if e := s.currentEngine(); e != nil {
		h.Status = "ready"
		if e.info.GPU != "" {
			h.GPU = e.info.GPU
		}
	} else if s.failed.Load() {
		h.Status = "error"
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
		Ready   bool   `json:"ready"`
		Context int    `json:"context_length,omitempty"` // tokens per request, once loaded
	}
	m := model{ID: s.cfg.ModelName, Object: "model", Created: s.created, OwnedBy: "kwyre"}
	if e := s.currentEngine(); e != nil {
		m.Ready, m.Context = true, e.ContextSize()
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []model{m}})
}

// sessionBodyLimit bounds /v1/session and /v1/session/end bodies.
const sessionBodyLimit = 4096

func (s *Server) handleSessionNew(w http.ResponseWriter, r *http.Request) {
	body, e := readBody(r, sessionBodyLimit)
	if e != nil {
		e.write(w)
		return
	}
	scrub.Bytes(body)
	sess, err := s.sessions.Create()
	if err != nil {
		if s.sessions.Len() >= s.cfg.Limits.MaxSessions {
			e := errLimit(http.StatusTooManyRequests, "session",
				fmt.Sprintf("%d sessions are active; the limit is %d (max_sessions): end one first", s.sessions.Len(), s.cfg.Limits.MaxSessions))
			e.write(w)
			return
		}
		s.log.Error("create session failed", "err", err)
		(&apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "creating the session failed"}).write(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"session_id":           sess.ID,
		"idle_timeout_seconds": int64(s.cfg.IdleTimeout / time.Second),
	})
}

func (s *Server) handleSessionEnd(w http.ResponseWriter, r *http.Request) {
	body, e := readBody(r, sessionBodyLimit)
	if e != nil {
		e.write(w)
		return
	}
	defer scrub.Bytes(body)
	var req struct {
		SessionID string `json:"session_id"`
	}
	if e := decodeJSON(body, &req); e != nil {
		e.write(w)
		return
	}
	if req.SessionID == "" {
		errBadRequest("session_id", "session_id is missing").write(w)
		return
	}
	if !s.sessions.End(req.SessionID, session.ReasonEnd) {
		(&apiError{status: http.StatusNotFound, typ: "invalid_request_error", param: "session_id", code: "session_not_found",
			msg: "session_id names no live session"}).write(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"session_id": req.SessionID, "ended": true, "wiped": true})
}

func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if s.metrics.WriteText(w, s.sessions.Len()) == nil {
		w.Write(appendGPUMetrics(nil, s.gpuState(), s.inference()))
	}
}

func (s *Server) handleAudit(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	binding := "not listening"
	if a := s.Addr(); a != "" {
		binding = a + " (localhost only)"
	}
	integ := s.integrity.Load()
	eng := s.inference()
	netk := ReadNetworkKernel(s.cfg.ProcRoot, s.cfg.SysRoot)
	rep := auditReport{
		Server:         serverName(),
		Timestamp:      now.UTC().Format(time.RFC3339),
		ActiveSessions: s.sessions.Len(),
		SecurityControls: securityControls{
			NetworkBinding:      binding,
			NetworkDrivers:      netk.Summary(),
			NetworkKernel:       netk,
			WeightIntegrity:     integ.summary,
			ConversationStorage: s.cfg.ConversationStorage,
			SessionWipe:         "on_close + idle_timeout_" + shortDuration(s.cfg.IdleTimeout) + " + shutdown + intrusion",
			IntrusionWatchdog:   ReadWatchdogState(s.cfg.WatchdogStateFile, s.cfg.WatchdogInterval, now),
			ContentLogging:      "NEVER",
			FreedMemory:         freedMemory(),
		},
		GPU:       gpuAudit{Inference: eng.GPU, LayersOnGPU: eng.LayersOnGPU, System: s.gpuState()},
		Integrity: integ.report,
		Note:      "Metadata only. No conversation content is ever logged or persisted.",
	}
	writeJSON(w, http.StatusOK, rep)
}

// serverName is the program and the version it was built as.
func serverName() string {
	name := "kwyre-inference"
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		if v == "" || v == "(devel)" {
			v = "dev"
		}
		name += "/" + v + " (" + bi.GoVersion + ")"
	}
	return name
}

// shortDuration writes 1h as "1hr" (the seed's spelling), 90m as "90min".
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dhr", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dmin", d/time.Minute)
	default:
		return d.String()
	}
}
