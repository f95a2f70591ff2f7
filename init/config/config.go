// Package config is the appliance configuration: the file the image builder
// writes to /etc/kwyre/config.json and init reads at boot.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/kwyre/kwyre/init/caps"
)

// DefaultPath is where init looks for the config inside the image.
const DefaultPath = "/etc/kwyre/config.json"

// Config describes what init loads, mounts, verifies and starts.
type Config struct {
	Modules        []string  `json:"modules"`         // .ko paths in the initramfs, load order
	ModelPartition string    `json:"model_partition"` // GPT partition name to mount read-only at /model; "" = model in initramfs
	ModelFS        string    `json:"model_fs"`        // "erofs" | "squashfs" | "ext4" | "vfat"
	Manifest       string    `json:"manifest"`        // "/etc/kwyre/manifest"
	Services       []Service `json:"services"`
}

// Service is one supervised child.
type Service struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"`
	Args    []string `json:"args"`
	Env     []string `json:"env"`
	UID     uint32   `json:"uid"`
	GID     uint32   `json:"gid"`
	Caps    []string `json:"caps"`    // ambient capabilities, e.g. "CAP_SYS_PTRACE"
	NetNS   bool     `json:"netns"`   // run in the services' loopback-only namespace
	TTY     string   `json:"tty"`     // e.g. "/dev/tty1", "/dev/ttyS0"; "" = output to console + ring buffer
	Restart string   `json:"restart"` // "backoff" | "critical"
}

// Restart policies.
const (
	RestartBackoff  = "backoff"
	RestartCritical = "critical"
)

// ModelFilesystems are the filesystem types init mounts a model partition as.
var ModelFilesystems = []string{"erofs", "squashfs", "ext4", "vfat"}

// Load reads and validates the config file at p.
func Load(p string) (*Config, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", p, err)
	}
	return c, nil
}

// Parse decodes a config from r and validates it. Unknown fields are an
// error, so that a misspelt key cannot silently drop a setting.
func Parse(r io.Reader) (*Config, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode: trailing data after the JSON object")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Write validates c and writes it to w as indented JSON.
func (c *Config) Write(w io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Validate reports the first problem in c, naming the field.
func (c *Config) Validate() error {
	for i, m := range c.Modules {
		if !isCleanAbs(m) {
			return fmt.Errorf("modules[%d]: %q is not a clean absolute path", i, m)
		}
	}
	if c.ModelPartition != "" {
		if strings.ContainsAny(c.ModelPartition, "\n\x00") {
			return fmt.Errorf("model_partition: %q holds a control character", c.ModelPartition)
		}
		if !contains(ModelFilesystems, c.ModelFS) {
			return fmt.Errorf("model_fs: %q is not one of %v", c.ModelFS, ModelFilesystems)
		}
	} else if c.ModelFS != "" && !contains(ModelFilesystems, c.ModelFS) {
		return fmt.Errorf("model_fs: %q is not one of %v", c.ModelFS, ModelFilesystems)
	}
	if c.Manifest == "" {
		return errors.New("manifest: empty (init refuses to start without a manifest)")
	}
	if !isCleanAbs(c.Manifest) {
		return fmt.Errorf("manifest: %q is not a clean absolute path", c.Manifest)
	}
	names := make(map[string]bool)
	for i, s := range c.Services {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("services[%d]: %w", i, err)
		}
		if names[s.Name] {
			return fmt.Errorf("services[%d]: name %q used twice", i, s.Name)
		}
		names[s.Name] = true
	}
	return nil
}

// Validate reports the first problem in s.
func (s *Service) Validate() error {
	if s.Name == "" {
		return errors.New("name: empty")
	}
	for _, r := range s.Name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("name %q: only letters, digits, '-', '_' and '.' are allowed", s.Name)
		}
	}
	if !isCleanAbs(s.Path) {
		return fmt.Errorf("%s: path %q is not a clean absolute path", s.Name, s.Path)
	}
	for _, e := range s.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return fmt.Errorf("%s: env %q is not KEY=VALUE", s.Name, e)
		}
		if k == "PATH" {
			return fmt.Errorf("%s: env sets PATH, which init sets itself", s.Name)
		}
	}
	if _, err := caps.ParseList(s.Caps); err != nil {
		return fmt.Errorf("%s: caps: %w", s.Name, err)
	}
	if s.TTY != "" && !isCleanAbs(s.TTY) {
		return fmt.Errorf("%s: tty %q is not a clean absolute path", s.Name, s.TTY)
	}
	switch s.Restart {
	case RestartBackoff, RestartCritical:
	default:
		return fmt.Errorf("%s: restart %q is not %q or %q", s.Name, s.Restart, RestartBackoff, RestartCritical)
	}
	return nil
}

// Service returns the service called name, or nil.
func (c *Config) Service(name string) *Service {
	for i := range c.Services {
		if c.Services[i].Name == name {
			return &c.Services[i]
		}
	}
	return nil
}

func isCleanAbs(p string) bool {
	return p != "" && path.IsAbs(p) && path.Clean(p) == p && !strings.ContainsAny(p, "\n\x00")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
