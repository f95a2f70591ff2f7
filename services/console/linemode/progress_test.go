package linemode

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/console/client"
)

// The demo model loads too fast to watch, so this test answers /health
// itself with a scripted load (the chat part is covered end to end
// against the real service): a progress line per tenth, then ready once.
func TestLoadProgressLines(t *testing.T) {
	steps := []string{"0", "0.02", "0.05", "0.1", "0.15", "0.37", "0.38", "0.99", "1"}
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"message":"no such session"}}`)
			return
		}
		mu.Lock()
		i := calls
		calls++
		mu.Unlock()
		if i < len(steps) {
			fmt.Fprintf(w, `{"status":"loading","progress":%s,"model":"m","gpu":"cpu"}`, steps[i])
			return
		}
		io.WriteString(w, `{"status":"ready","progress":1,"model":"m","gpu":"cpu"}`)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r := &runner{Options: Options{Client: c, Poll: time.Millisecond}, out: &out, ed: newEditor()}
	if err := r.waitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "kwyre: loading model 0%\n" +
		"kwyre: loading model 10%\n" +
		"kwyre: loading model 37%\n" +
		"kwyre: loading model 99%\n" +
		"kwyre: loading model 100%\n" +
		"kwyre: ready\n"
	if out.String() != want {
		t.Fatalf("output\n%s\nwant\n%s", out.String(), want)
	}
}
