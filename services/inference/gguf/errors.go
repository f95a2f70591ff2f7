package gguf

import "errors"

// Classes of problems a GGUF file can have. Every error this package returns
// for a bad file wraps one of these and names the key, tensor or offset.
var (
	ErrMagic      = errors.New("not a GGUF file")
	ErrVersion    = errors.New("unsupported GGUF version")
	ErrTruncated  = errors.New("truncated file")
	ErrBounds     = errors.New("value out of bounds")
	ErrDuplicate  = errors.New("duplicate")
	ErrMetadata   = errors.New("bad metadata")
	ErrTensorType = errors.New("unknown tensor type")
	ErrTensorSize = errors.New("bad tensor size")
	ErrTensorData = errors.New("bad tensor data placement")
	ErrShape      = errors.New("bad tensor shape")
	ErrVocab      = errors.New("bad tokenizer data")
	ErrHyperparam = errors.New("bad hyperparameter")
)
