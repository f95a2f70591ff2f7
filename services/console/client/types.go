package client

import (
	"encoding/json"
	"strings"
)

// Health is the answer of GET /health.
type Health struct {
	Status   string          `json:"status"` // "loading" | "ready"
	Progress float64         `json:"progress"`
	Model    string          `json:"model"`
	GPU      json.RawMessage `json:"gpu"`
}

// Ready reports whether the model is loaded and chats can be served.
func (h Health) Ready() bool { return h.Status == "ready" }

// Percent is the load progress as a whole percentage, clamped to 0..100.
func (h Health) Percent() int {
	p := int(h.Progress*100 + 1e-9)
	return min(max(p, 0), 100)
}

// Backend says where the model runs, for the status bar: "CPU" or "GPU …".
// The service reports the GPU as a name, a flag or an object with a name.
func (h Health) Backend() string {
	raw := h.GPU
	if len(raw) == 0 || string(raw) == "null" {
		return "CPU"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return gpuLabel(s)
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		if b {
			return "GPU"
		}
		return "CPU"
	}
	var o map[string]any
	if json.Unmarshal(raw, &o) == nil {
		for _, k := range []string{"available", "enabled", "used"} {
			if v, ok := o[k].(bool); ok && !v {
				return "CPU"
			}
		}
		for _, k := range []string{"name", "device", "backend"} {
			if v, ok := o[k].(string); ok && v != "" {
				return gpuLabel(v)
			}
		}
		return "GPU"
	}
	return "CPU"
}

func gpuLabel(s string) string {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "none", "cpu", "false", "no":
		return "CPU"
	}
	if strings.HasPrefix(strings.ToUpper(s), "GPU") {
		return s
	}
	return "GPU " + s
}

// Audit is the part of GET /audit the console shows.
type Audit struct {
	Server           string `json:"server"`
	Timestamp        string `json:"timestamp"`
	ActiveSessions   int    `json:"active_sessions"`
	SecurityControls struct {
		NetworkBinding      string          `json:"network_binding"`
		NetworkDrivers      string          `json:"network_drivers"`
		WeightIntegrity     json.RawMessage `json:"weight_integrity"`
		ConversationStorage string          `json:"conversation_storage"`
		SessionWipe         string          `json:"session_wipe"`
		IntrusionWatchdog   struct {
			Running   bool `json:"running"`
			Triggered bool `json:"triggered"`
		} `json:"intrusion_watchdog"`
		ContentLogging string `json:"content_logging"`
	} `json:"security_controls"`
	Integrity json.RawMessage `json:"integrity"`
}

// IntegrityVerified reports whether the service says the model (and, with
// init's manifest, the whole image) was verified, and a short label for it.
func (a Audit) IntegrityVerified() (bool, string) {
	// init's manifest result, when the service passes it on.
	var ir struct {
		Verified *bool `json:"verified"`
	}
	if len(a.Integrity) > 0 && json.Unmarshal(a.Integrity, &ir) == nil && ir.Verified != nil {
		if *ir.Verified {
			return true, "integrity verified"
		}
		return false, "integrity NOT verified"
	}
	raw := a.SecurityControls.WeightIntegrity
	var s string
	if json.Unmarshal(raw, &s) == nil {
		ls := strings.ToLower(s)
		switch {
		case strings.HasPrefix(ls, "verified"), strings.HasPrefix(ls, "enabled"):
			return true, "integrity verified"
		case s == "":
			return false, "integrity unknown"
		}
		// "structure-only: GGUF header checked; …": the head is the verdict.
		head, _, _ := strings.Cut(s, ":")
		return false, "integrity: " + truncate(head, 40)
	}
	if json.Unmarshal(raw, &ir) == nil && ir.Verified != nil && *ir.Verified {
		return true, "integrity verified"
	}
	return false, "integrity unknown"
}

// Watchdog is a short label of the intrusion watchdog's state.
func (a Audit) Watchdog() string {
	w := a.SecurityControls.IntrusionWatchdog
	switch {
	case w.Triggered:
		return "WATCHDOG TRIGGERED"
	case w.Running:
		return "watchdog on"
	}
	return "watchdog off"
}

// Network says whether the running kernel has network drivers, as /audit
// reads them from it: ok with "no network" when it has none, not ok with a
// label naming what it found, or not ok with "network ?" when the service
// does not say.
func (a Audit) Network() (bool, string) {
	s := strings.TrimSpace(a.SecurityControls.NetworkDrivers)
	switch {
	case s == "":
		return false, "network ?"
	case strings.HasPrefix(s, "none"):
		return true, "no network"
	case strings.HasPrefix(s, "present:"):
		what, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(s, "present:")), "(")
		return false, "NETWORK DRIVER " + truncate(strings.TrimSpace(what), 30)
	}
	return false, "network: " + truncate(s, 30)
}
