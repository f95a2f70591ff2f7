// Package linemode is the kiosk chat for a serial line (or any plain
// terminal or pipe): `you> ` and `kwyre> ` prompts, one line per turn, the
// reply streamed as it comes. Tests and the QA harness script it.
package linemode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kwyre/kwyre/services/console/client"
	"github.com/kwyre/kwyre/services/console/termtext"
	"github.com/kwyre/kwyre/services/inference/scrub"
)

// Lines the console prints; tests and the QA harness match them.
const (
	PromptYou   = "you> "
	PromptKwyre = "kwyre> "
	Ready       = "kwyre: ready"
	NewSession  = "kwyre: new session"
	Wiped       = "kwyre: wiped"
	IdleWiped   = "kwyre: idle: the session was wiped"
	ReplyCut    = "reply cut at the length limit; /new starts a fresh session"
	ContextFull = "context full: type /new for a new session"
	AuditPrefix = "kwyre: audit "
)

// clearScreen homes the cursor, clears the screen, then erases the
// scrollback (ESC[3J) last: some terminals (tmux, xterm) push a cleared
// screen into the scrollback.
const clearScreen = "\x1b[H\x1b[2J\x1b[3J"

const help = `kwyre: commands:
  /new    start a new session (the old one is wiped on the service)
  /wipe   wipe the session now and clear the screen
  /audit  the service's security metadata (GET /audit), as JSON on one line
  /help   this text
  Ctrl-C  stop a reply, or drop the line being typed
`

// Options configure Run.
type Options struct {
	Client  *client.Client
	KeyFile string        // re-read when the service rejects the key; "" = never
	Echo    bool          // echo typed keys (the terminal is in raw mode)
	Poll    time.Duration // health poll interval while waiting; 0 = 500ms
	// IdleWipe ends the session and clears the screen after this long
	// without a key or a reply, as the service wipes idle sessions; 0 = never.
	IdleWipe time.Duration
}

type runner struct {
	Options
	out     io.Writer
	keys    <-chan []byte
	pending []byte // typed bytes not yet given to the editor
	ed      *editor
	echo    []byte // reused echo buffer
	session string
	ready   bool // "kwyre: ready" was printed
	dirty   bool // a conversation is on the screen
	filter  termtext.Filter
	safe    []byte // reused buffer for filtered reply text
}

// Run serves the chat on in/out until ctx ends or in is exhausted. When it
// returns, the session it had open has been ended (wiped) on the service.
func Run(ctx context.Context, in io.Reader, out io.Writer, opts Options) error {
	if opts.Client == nil {
		return errors.New("linemode: no client")
	}
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	keys := make(chan []byte, 16)
	stop := make(chan struct{})
	defer close(stop)
	go readKeys(in, keys, stop)
	r := &runner{Options: opts, out: out, keys: keys, ed: newEditor(),
		echo: make([]byte, 0, 64), safe: make([]byte, 0, 256)}
	defer r.wipe()
	defer r.endSession()

	if err := r.waitReady(ctx); err != nil {
		return nil // cancelled: a normal stop
	}
	r.ensureSession(ctx)
	for {
		ok, err := r.readLine(ctx)
		if err != nil {
			return nil
		}
		if ok {
			r.handle(ctx, r.ed.line())
		}
		r.ed.reset()
	}
}

// readKeys copies what the terminal sends into keys; it closes keys at the
// end of input, and stops handing keys over once stop is closed. Its read
// buffer is wiped after every read.
func readKeys(in io.Reader, keys chan<- []byte, stop <-chan struct{}) {
	defer close(keys)
	buf := make([]byte, 256)
	defer clear(buf)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			k := bytes.Clone(buf[:n])
			clear(buf[:n])
			select {
			case keys <- k:
			case <-stop:
				clear(k)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *runner) printf(format string, args ...any) {
	fmt.Fprintf(r.out, format, args...)
}

func (r *runner) status(msg string) { r.printf("kwyre: %s\n", msg) }

// waitReady polls /health until the model is loaded, printing progress. Keys
// typed meanwhile are kept for the first prompt.
func (r *runner) waitReady(ctx context.Context) error {
	lastDecile, saidWaiting := -1, false
	tick := time.NewTicker(r.Poll)
	defer tick.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		h, err := r.Client.Health(hctx)
		cancel()
		switch {
		case err == nil && h.Ready():
			if !r.ready {
				r.printf("%s\n", Ready)
				r.ready = true
			} else {
				r.status("service is back")
			}
			return nil
		case err == nil:
			if d := h.Percent() / 10; d != lastDecile {
				lastDecile = d
				r.printf("kwyre: loading model %d%%\n", h.Percent())
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case !saidWaiting:
			saidWaiting = true
			r.status("waiting for the inference service")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case k, ok := <-r.keys:
			r.takeKeys(k, ok)
		}
	}
}

func (r *runner) takeKeys(k []byte, ok bool) {
	if !ok {
		r.keys = nil // end of input: nothing more will come
		return
	}
	r.pending = append(r.pending, k...)
	clear(k)
}

// readLine prints the prompt and edits a line; it reports false when the
// line was abandoned (Ctrl-C), and io.EOF at the end of input.
func (r *runner) readLine(ctx context.Context) (bool, error) {
	r.printf("%s", PromptYou)
	for {
		for len(r.pending) > 0 {
			b := r.pending[0]
			r.pending[0] = 0
			r.pending = r.pending[1:]
			res, echo := r.ed.feed(b, r.echo[:0])
			if r.Echo && len(echo) > 0 {
				r.out.Write(echo)
			}
			clear(echo)
			switch res {
			case feedLine:
				return true, nil
			case feedAbort:
				return false, nil
			}
		}
		if r.keys == nil {
			if len(r.ed.line()) > 0 {
				// The input ended inside a line: serve it as the last one.
				if r.Echo {
					r.printf("\n")
				}
				return true, nil
			}
			return false, io.EOF
		}
		// The idle clock restarts with every key.
		var idle <-chan time.Time
		var timer *time.Timer
		if r.IdleWipe > 0 && r.dirty {
			timer = time.NewTimer(r.IdleWipe)
			idle = timer.C
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case k, ok := <-r.keys:
			r.takeKeys(k, ok)
		case <-idle:
			r.endSession()
			r.ed.reset()
			r.dirty = false
			r.printf("%s%s\n%s", clearScreen, IdleWiped, PromptYou)
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (r *runner) handle(ctx context.Context, line []byte) {
	cmd := bytes.TrimSpace(line)
	switch {
	case len(cmd) == 0:
		return
	case string(cmd) == "/help":
		r.printf("%s", help)
	case string(cmd) == "/new":
		r.endSession()
		r.ensureSession(ctx)
		if r.session != "" {
			r.printf("%s\n", NewSession)
		}
	case string(cmd) == "/audit":
		r.audit(ctx)
	case string(cmd) == "/wipe":
		r.endSession()
		r.dirty = false
		r.printf("%s%s\n", clearScreen, Wiped)
		r.ensureSession(ctx)
	case cmd[0] == '/' && bytes.IndexByte(cmd, ' ') < 0:
		r.status("unknown command, try /help")
	default:
		r.chat(ctx, line)
	}
}

// ensureSession opens a session if none is open; failures become status lines.
func (r *runner) ensureSession(ctx context.Context) {
	if r.session != "" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := r.Client.NewSession(sctx)
	if err != nil {
		r.report(ctx, err)
		return
	}
	r.session = id
}

// endSession ends the open session, which wipes it on the service.
func (r *runner) endSession() {
	if r.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.Client.EndSession(ctx, r.session) // unreachable: its sessions died with it
	r.session = ""
}

// chat sends one turn and streams the reply; Ctrl-C stops it.
func (r *runner) chat(ctx context.Context, line []byte) {
	r.ensureSession(ctx)
	if r.session == "" {
		return
	}
	r.printf("%s", PromptKwyre)
	r.dirty = true
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	var res client.ChatResult
	go func() {
		var err error
		res, err = r.Client.Chat(cctx, r.session, line, r.emit)
		done <- err
	}()
	stopped := false
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case k, ok := <-r.keys:
			if !ok {
				r.keys = nil
				continue
			}
			if i := bytes.IndexByte(k, 0x03); i >= 0 {
				// Ctrl-C stops the reply and drops what was typed ahead.
				stopped = true
				cancel()
				clear(r.pending)
				r.pending = append(r.pending[:0], k[i+1:]...)
			} else {
				r.pending = append(r.pending, k...)
			}
			clear(k)
		}
	}
	r.safe = r.filter.Flush(r.safe[:0])
	r.out.Write(r.safe)
	clear(r.safe)
	r.printf("\n")
	switch {
	case err == nil && res.FinishReason == "length":
		r.status(ReplyCut)
	case err == nil:
	case stopped && errors.Is(err, context.Canceled):
		r.status("stopped")
	case ctx.Err() != nil:
	default:
		r.report(ctx, err)
	}
}

// audit prints the service's /audit answer on one line after AuditPrefix,
// with terminal controls filtered out like a reply.
func (r *runner) audit(ctx context.Context) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, err := r.Client.AuditJSON(actx)
	if err != nil {
		r.report(ctx, err)
		return
	}
	// One write: on the appliance's serial line, init's log lines from the
	// services share the terminal, and a tty keeps one write whole.
	var f termtext.Filter
	line := f.Append([]byte(AuditPrefix), a)
	line = f.Flush(line)
	r.out.Write(append(line, '\n'))
}

// emit prints a piece of the reply, with terminal controls filtered out.
func (r *runner) emit(piece []byte) error {
	r.safe = r.filter.Append(r.safe[:0], piece)
	_, err := r.out.Write(r.safe)
	clear(r.safe)
	return err
}

// report prints an error as a status line and recovers what it can.
func (r *runner) report(ctx context.Context, err error) {
	switch {
	case client.IsUnavailable(err):
		r.session = "" // a restarted service has no sessions
		r.status(client.Describe(err))
		_ = r.waitReady(ctx) // the next line opens a new session

	case client.IsSessionGone(err):
		r.session = ""
		r.status("the service ended this session (wiped); a new one starts with your next line")
	case client.IsContextFull(err):
		r.status(ContextFull)
	case client.IsUnauthorized(err):
		r.status(client.Describe(err))
		if r.KeyFile != "" {
			if key, kerr := client.ReadKeyFile(r.KeyFile); kerr == nil {
				r.Client.SetKey(key)
				clear(key)
			}
		}
	default:
		r.status(client.Describe(err))
	}
}

func (r *runner) wipe() {
	r.ed.reset()
	clear(r.pending)
	clear(r.safe[:cap(r.safe)])
	clear(r.echo[:cap(r.echo)])
	scrub.CollectSoon() // what the conversation left in freed strings is overwritten
}
