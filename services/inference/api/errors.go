package api

import (
	"net/http"
	"strconv"
)

// apiError is an OpenAI-style error answer. Its message names fields and
// limits, never a value taken from a request.
type apiError struct {
	status     int
	typ        string
	param      string
	code       string
	msg        string
	retryAfter int // seconds; 0 = no Retry-After header
}

func errBadRequest(param, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", param: param, msg: msg}
}

func errLimit(status int, param, msg string) *apiError {
	return &apiError{status: status, typ: "invalid_request_error", param: param, code: "limit_exceeded", msg: msg}
}

func (e *apiError) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	w.WriteHeader(e.status)
	b := make([]byte, 0, 128+len(e.msg))
	b = append(b, `{"error":{"message":"`...)
	b = appendEscaped(b, []byte(e.msg))
	b = append(b, `","type":"`...)
	b = appendEscaped(b, []byte(e.typ))
	b = append(b, `","param":`...)
	b = appendNullableString(b, e.param)
	b = append(b, `,"code":`...)
	b = appendNullableString(b, e.code)
	b = append(b, "}}\n"...)
	w.Write(b)
}

func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = appendEscaped(b, []byte(s))
	return append(b, '"')
}
