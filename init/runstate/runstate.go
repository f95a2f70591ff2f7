// Package runstate writes the files init leaves in /run/kwyre (a tmpfs) for
// the services and auditors: the API keys, the manifest result, the pids it
// supervises and the links it forced down. Each file is replaced
// atomically, so a reader never sees half of one.
package runstate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Dir is init's runtime folder in the appliance.
const Dir = "/run/kwyre"

// Files under Dir (the shared contract).
const (
	Integrity  = "integrity.json"
	Supervised = "supervised.json"
	Links      = "links.json"
)

// WriteFileAtomic writes data to a temporary file beside path, sets mode,
// and renames it over path.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, mode)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}

// WriteJSON atomically replaces path with v as one line of JSON, mode 0444.
func WriteJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o444)
}

// ReadJSON decodes the JSON file at path into v.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}
