// Command kwyre-console is the kiosk chat: a full-screen terminal UI on the
// VGA console (-mode tui) or a plain line chat on a serial port (-mode line).
// It talks to the inference service over loopback only and writes
// conversation content nowhere but the terminal.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/kwyre/kwyre/services/console/client"
	"github.com/kwyre/kwyre/services/console/linemode"
	"github.com/kwyre/kwyre/services/console/tui"
	"github.com/kwyre/kwyre/services/inference/scrub"
)

func main() {
	// The conversation passes through Go strings (screen lines, history):
	// freed ones are overwritten, and every wipe collects them.
	if err := scrub.EnsureFreedClobbered(); err != nil {
		fmt.Fprintf(os.Stderr, "kwyre-console: %v: freed memory will not be overwritten\n", err)
	}
	mode := flag.String("mode", "tui", "tui (full screen, VGA console) or line (serial port, scripts)")
	tty := flag.String("tty", "", "terminal device to run on, e.g. /dev/tty1 or /dev/ttyS0 (default: stdin and stdout)")
	url := flag.String("url", "http://127.0.0.1:8000", "inference service (loopback only)")
	keyFile := flag.String("api-key-file", "", "file holding the inference service's API key")
	idle := flag.Duration("idle-wipe", time.Hour, "wipe the conversation (screen and session) after this long untouched; 0 = never")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "kwyre-console: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if *idle < 0 {
		fmt.Fprintf(os.Stderr, "kwyre-console: -idle-wipe %s: must not be negative\n", *idle)
		os.Exit(2)
	}
	if err := run(*mode, *tty, *url, *keyFile, *idle); err != nil {
		fmt.Fprintf(os.Stderr, "kwyre-console: %v\n", err)
		os.Exit(1)
	}
}

func run(mode, ttyPath, url, keyFile string, idle time.Duration) error {
	if mode != "tui" && mode != "line" {
		return fmt.Errorf("-mode %q: want tui or line", mode)
	}
	if keyFile == "" {
		return errors.New("-api-key-file is required")
	}
	// Validate the URL before touching the terminal.
	c, err := client.New(url, nil)
	if err != nil {
		return err
	}
	defer c.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()

	in, out := io.Reader(os.Stdin), io.Writer(os.Stdout)
	term := os.Stdin
	if ttyPath != "" {
		f, err := openTTY(ttyPath)
		if err != nil {
			return err
		}
		defer f.Close()
		in, out, term = f, f, f
	}

	key, err := waitKey(ctx, keyFile, out)
	if err != nil {
		return err
	}
	c.SetKey(key)
	clear(key)

	if mode == "line" {
		return runLine(ctx, c, keyFile, idle, in, out, term)
	}
	return runTUI(ctx, c, keyFile, idle, in, out)
}

// waitKey reads the key file, waiting for it while init is still writing
// it (the console may start first); ctx ends the wait.
func waitKey(ctx context.Context, path string, out io.Writer) ([]byte, error) {
	said := false
	for {
		key, err := client.ReadKeyFile(path)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if !said {
			fmt.Fprintf(out, "kwyre: waiting for the API key\n")
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func runLine(ctx context.Context, c *client.Client, keyFile string, idle time.Duration, in io.Reader, out io.Writer, term *os.File) error {
	echo := false
	if restore, err := linemode.SetRaw(int(term.Fd())); err == nil {
		echo = true
		defer restore()
	}
	return linemode.Run(ctx, in, out, linemode.Options{Client: c, KeyFile: keyFile, Echo: echo, IdleWipe: idle})
}

func runTUI(ctx context.Context, c *client.Client, keyFile string, idle time.Duration, in io.Reader, out io.Writer) error {
	if os.Getenv("TERM") == "" {
		// The VGA console; init starts us without an environment.
		os.Setenv("TERM", "linux")
	}
	m := tui.New(tui.Options{Client: c, KeyFile: keyFile, Out: out, Context: ctx, IdleWipe: idle})
	p := tea.NewProgram(m,
		tea.WithInput(in), tea.WithOutput(out), tea.WithContext(ctx),
		tea.WithAltScreen(), tea.WithoutSignalHandler())
	_, err := p.Run()
	// Whatever ended the program, the conversation goes: on the service,
	// in this process, and on the screen.
	if id := m.Session(); id != "" {
		ectx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.EndSession(ectx, id)
		cancel()
	}
	m.Wipe()
	io.WriteString(out, tui.ClearScrollback)
	if err != nil && !(errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil) {
		return fmt.Errorf("terminal ui: %w", err)
	}
	return nil
}
