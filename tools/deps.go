//go:build tools

// Package tools pins the modules the project builds on, so that go.mod and
// go.sum hold every package before the code that uses it lands.
package tools

import (
	_ "github.com/NVIDIA/go-nvml/pkg/nvml"
	_ "github.com/awnumar/memguard"
	_ "github.com/charmbracelet/bubbles/textarea"
	_ "github.com/charmbracelet/bubbles/viewport"
	_ "github.com/charmbracelet/bubbletea"
	_ "github.com/charmbracelet/lipgloss"
	_ "github.com/diskfs/go-diskfs"
	_ "github.com/diskfs/go-diskfs/disk"
	_ "github.com/diskfs/go-diskfs/partition/gpt"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/ollama/ollama/llama"
	_ "github.com/prometheus/procfs"
	_ "github.com/u-root/u-root/pkg/cpio"
	_ "github.com/u-root/u-root/pkg/kmodule"
	_ "github.com/u-root/u-root/pkg/ldd"
	_ "github.com/u-root/u-root/pkg/mount"
	_ "github.com/vishvananda/netlink"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/sys/unix"
)
