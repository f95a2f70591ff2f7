// Package client talks to the Kwyre inference service over loopback: health,
// audit, sessions and streamed chat. It never dials anything but a loopback
// address, and it keeps message text in byte slices it wipes after use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxAnswer bounds the JSON answers (health, audit, session) the client reads.
const maxAnswer = 1 << 20

// Client is a connection to one inference service.
type Client struct {
	base string // scheme://host:port, no trailing slash
	hc   *http.Client

	mu  sync.RWMutex // SetKey may run while a request is built elsewhere
	key []byte
}

// New checks that rawURL names a loopback address over plain HTTP and returns
// a client that authenticates with key. The client keeps its own copy of key.
func New(rawURL string, key []byte) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse service url: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("service url %q: scheme must be http (loopback only)", rawURL)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("service url %q: want only http://host:port", rawURL)
	}
	if err := checkLoopbackHost(u.Hostname()); err != nil {
		return nil, fmt.Errorf("service url %q: %w", rawURL, err)
	}
	if u.Port() == "" {
		return nil, fmt.Errorf("service url %q: missing port", rawURL)
	}
	tr := &http.Transport{
		Proxy:               nil, // never route through a proxy from the environment
		DialContext:         dialLoopback,
		MaxIdleConns:        4,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		TLSHandshakeTimeout: time.Second,
	}
	return &Client{
		base: "http://" + u.Host,
		key:  bytes.Clone(key),
		hc: &http.Client{
			Transport: tr,
			// The API never redirects; following one could leave loopback.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// SetKey replaces the API key (init may rewrite the key file on restart).
func (c *Client) SetKey(key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.key)
	c.key = bytes.Clone(key)
}

// Close wipes the key and drops idle connections.
func (c *Client) Close() {
	c.mu.Lock()
	clear(c.key)
	c.mu.Unlock()
	c.hc.CloseIdleConnections()
}

func checkLoopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("host %q is not a loopback address", host)
	}
	if !ip.IsLoopback() {
		return fmt.Errorf("host %q is not a loopback address", host)
	}
	return nil
}

// dialLoopback resolves "localhost" itself and refuses any address that is
// not loopback, so no DNS answer or /etc/hosts entry can send us elsewhere.
func dialLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("dial %s: refusing a non-loopback address", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
}

// newRequest builds a request with the Bearer header; body may be nil.
func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.mu.RLock()
	req.Header.Set("Authorization", "Bearer "+string(c.key))
	c.mu.RUnlock()
	return req, nil
}

// do sends req and returns the response when its status is 2xx; otherwise it
// reads the error body and returns an *APIError.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &UnavailableError{Op: req.Method + " " + req.URL.Path, Err: err}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readAPIError(req.Method+" "+req.URL.Path, resp)
}

// getJSON performs a GET (or a POST with body) and decodes a JSON answer into v.
func (c *Client) callJSON(ctx context.Context, method, path string, body []byte, v any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if v == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Health asks /health (no authentication needed).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.callJSON(ctx, http.MethodGet, "/health", nil, &h)
	return h, err
}

// Audit asks /audit for the service's security metadata.
func (c *Client) Audit(ctx context.Context) (Audit, error) {
	var a Audit
	err := c.callJSON(ctx, http.MethodGet, "/audit", nil, &a)
	return a, err
}

// AuditJSON asks /audit and returns the answer as it came, compacted to
// one line (the line-mode console prints it whole for auditors and tests).
func (c *Client) AuditJSON(ctx context.Context) ([]byte, error) {
	var raw json.RawMessage
	if err := c.callJSON(ctx, http.MethodGet, "/audit", nil, &raw); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil, fmt.Errorf("GET /audit: %w", err)
	}
	return out.Bytes(), nil
}

// NewSession opens a server-side session and returns its id.
func (c *Client) NewSession(ctx context.Context) (string, error) {
	var s struct {
		SessionID string `json:"session_id"`
	}
	if err := c.callJSON(ctx, http.MethodPost, "/v1/session", []byte("{}"), &s); err != nil {
		return "", err
	}
	if s.SessionID == "" || strings.ContainsAny(s.SessionID, "\"\\\x00\r\n") {
		return "", fmt.Errorf("POST /v1/session: answer has no usable session_id")
	}
	return s.SessionID, nil
}

// EndSession ends (and so wipes) a session. An unknown session is not an
// error: it is already gone, which is what the caller wants.
func (c *Client) EndSession(ctx context.Context, id string) error {
	body, err := json.Marshal(struct {
		SessionID string `json:"session_id"`
	}{id})
	if err != nil {
		return fmt.Errorf("encode session end: %w", err)
	}
	err = c.callJSON(ctx, http.MethodPost, "/v1/session/end", body, nil)
	if IsSessionGone(err) {
		return nil
	}
	return err
}
