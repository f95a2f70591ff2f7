package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIError is an answer of the service that is not 2xx, or an error event
// inside a stream (Status 0). Its message comes from the service, which
// names limits and fields but never conversation content.
type APIError struct {
	Op         string
	Status     int
	Message    string
	Type       string
	Code       string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := e.Op + ": "
	if e.Status != 0 {
		s += strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	} else {
		s += "error in stream"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// UnavailableError means the service could not be reached at all (not
// started yet, restarting, or gone).
type UnavailableError struct {
	Op  string
	Err error
}

func (e *UnavailableError) Error() string { return e.Op + ": service unreachable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// errorBody is the OpenAI-style error answer; a bare string is accepted too.
type errorBody struct {
	Error json.RawMessage `json:"error"`
}

type errorDetail struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// parseErrorJSON fills e's message, type and code from an error body.
func (e *APIError) parseErrorJSON(b []byte) {
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || len(eb.Error) == 0 {
		return
	}
	var s string
	if json.Unmarshal(eb.Error, &s) == nil {
		e.Message = s
		return
	}
	var d errorDetail
	if json.Unmarshal(eb.Error, &d) != nil {
		return
	}
	e.Message, e.Type = d.Message, d.Type
	if len(d.Code) > 0 && string(d.Code) != "null" {
		var cs string
		if json.Unmarshal(d.Code, &cs) == nil {
			e.Code = cs
		} else {
			e.Code = string(d.Code)
		}
	}
}

func readAPIError(op string, resp *http.Response) *APIError {
	e := &APIError{Op: op, Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e.parseErrorJSON(b)
	if e.Message == "" {
		// Not JSON: keep the first line of a plain-text answer, short.
		line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		e.Message = truncate(line, 120)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(ra); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func asAPI(err error) (*APIError, bool) {
	var e *APIError
	ok := errors.As(err, &e)
	return e, ok
}

// IsUnavailable reports whether the service could not be reached.
func IsUnavailable(err error) bool {
	var e *UnavailableError
	return errors.As(err, &e)
}

// IsUnauthorized reports a rejected API key.
func IsUnauthorized(err error) bool {
	e, ok := asAPI(err)
	return ok && e.Status == http.StatusUnauthorized
}

// IsBusy reports a service that asks us to come back later.
func IsBusy(err error) bool {
	e, ok := asAPI(err)
	return ok && (e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable)
}

// IsSessionGone reports a session the service no longer knows (ended,
// expired by the idle timeout, wiped by the watchdog, or a service restart).
func IsSessionGone(err error) bool {
	e, ok := asAPI(err)
	return ok && e.Status == http.StatusNotFound
}

// IsContextFull reports a conversation that no longer fits the model's context.
func IsContextFull(err error) bool {
	e, ok := asAPI(err)
	if !ok || (e.Status != 0 && e.Status/100 != 4) {
		return false
	}
	for _, s := range []string{e.Code, e.Type, e.Message} {
		if strings.Contains(strings.ToLower(s), "context") {
			return true
		}
	}
	return false
}

// Describe turns an error into a short status line for the screen.
func Describe(err error) string {
	switch {
	case err == nil:
		return ""
	case IsUnavailable(err):
		return "inference service unreachable, retrying"
	case IsUnauthorized(err):
		return "API key rejected (401)"
	case IsContextFull(err):
		return "context full: start a new session"
	case IsBusy(err):
		e, _ := asAPI(err)
		if e.RetryAfter > 0 {
			return fmt.Sprintf("service busy (%d), try again in %s", e.Status, e.RetryAfter)
		}
		return fmt.Sprintf("service busy (%d), try again", e.Status)
	case IsSessionGone(err):
		return "session ended by the service"
	}
	if e, ok := asAPI(err); ok {
		if e.Message != "" {
			if e.Status != 0 {
				return fmt.Sprintf("error %d: %s", e.Status, truncate(e.Message, 100))
			}
			return "error: " + truncate(e.Message, 100)
		}
		return fmt.Sprintf("error %d", e.Status)
	}
	return "error: " + truncate(err.Error(), 100)
}
