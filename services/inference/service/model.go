package service

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kwyre/kwyre/init/manifest"
	"github.com/kwyre/kwyre/services/inference/gguf"
)

// modelCheck is what was verified of the model before llama.cpp saw it
// (layer L4); /audit reports it.
type modelCheck struct {
	info      *gguf.Info
	sha256    string            // set when -model-sha256 was checked
	integrity *manifest.Summary // init's boot manifest result, if read
}

// ParseSHA256 checks a -model-sha256 value: 64 hex digits.
func ParseSHA256(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) != 64 {
		return "", fmt.Errorf("-model-sha256: want 64 hex digits, got %d characters", len(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("-model-sha256: not hexadecimal")
	}
	return s, nil
}

// checkModel validates the model file in Go: it exists and is a regular
// file, its GGUF structure and metadata are sane, and its SHA-256 is the
// pinned one when a pin is given.
func checkModel(path, wantSHA string) (*modelCheck, error) {
	if path == "" {
		return nil, errors.New("no model: pass -model FILE (a GGUF file)")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("model %s: not a regular file", path)
	}
	info, err := gguf.Check(path)
	if err != nil {
		return nil, fmt.Errorf("model rejected: %w", err)
	}
	mc := &modelCheck{info: info}
	if wantSHA != "" {
		got, err := gguf.SHA256(path)
		if err != nil {
			return nil, fmt.Errorf("model sha256: %w", err)
		}
		if got != wantSHA {
			return nil, fmt.Errorf("model %s: sha256 mismatch: -model-sha256 pins %s, the file hashes to %s", path, wantSHA, got)
		}
		mc.sha256 = got
	}
	return mc, nil
}

// readIntegrity reads init's /run/kwyre/integrity.json. A file that says the
// image was not verified is an error: init never starts services then.
func readIntegrity(path string) (*manifest.Summary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("integrity file: %w", err)
	}
	var s manifest.Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("integrity file %s: malformed JSON", path)
	}
	if !s.Verified {
		return nil, fmt.Errorf("integrity file %s: the boot manifest check did not pass", path)
	}
	return &s, nil
}

// weightIntegrity describes for /audit what was actually verified.
func (mc *modelCheck) weightIntegrity() string {
	var parts []string
	if mc.integrity != nil {
		parts = append(parts, fmt.Sprintf("boot manifest (sha256 %s…): %d files, %d bytes verified in %.1fs",
			short(mc.integrity.ManifestSHA256), mc.integrity.Files, mc.integrity.Bytes, mc.integrity.Seconds))
	}
	if mc.sha256 != "" {
		parts = append(parts, "model sha256 "+short(mc.sha256)+"… matches -model-sha256")
	}
	if len(parts) == 0 {
		return "structure-only: GGUF header, metadata and tensor shapes checked; no hash pinned"
	}
	return "verified: " + strings.Join(parts, "; ") + "; GGUF structure checked"
}

func short(hexs string) string {
	if len(hexs) > 16 {
		return hexs[:16]
	}
	return hexs
}
