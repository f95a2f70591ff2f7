package manifest

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrMismatch is returned (wrapped) by Verify when the tree differs from the
// manifest; Result.Differences lists how.
var ErrMismatch = errors.New("files differ from the manifest")

// Kind is what is wrong with one file.
type Kind int

const (
	Missing         Kind = iota + 1 // listed, not on disk
	Changed                         // same size, other SHA-256
	Resized                         // other size (hash not compared)
	ExtraExecutable                 // executable regular file not listed
	NotRegular                      // listed, but a link, device or folder on disk
	Unreadable                      // listed, but reading it failed
)

func (k Kind) String() string {
	switch k {
	case Missing:
		return "missing"
	case Changed:
		return "changed"
	case Resized:
		return "resized"
	case ExtraExecutable:
		return "extra executable"
	case NotRegular:
		return "not a regular file"
	case Unreadable:
		return "unreadable"
	case Unlisted:
		return "not in the manifest"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Difference is one way the tree differs from the manifest.
type Difference struct {
	Kind       Kind
	Path       string
	WantSHA256 string
	GotSHA256  string
	WantSize   int64
	GotSize    int64
	Err        error // for Unreadable and NotRegular
}

func (d Difference) String() string {
	switch d.Kind {
	case Missing:
		return fmt.Sprintf("missing: %s (expected %d bytes, sha256 %s)", d.Path, d.WantSize, d.WantSHA256)
	case Changed:
		return fmt.Sprintf("changed: %s: expected sha256 %s, found %s", d.Path, d.WantSHA256, d.GotSHA256)
	case Resized:
		return fmt.Sprintf("resized: %s: expected %d bytes, found %d", d.Path, d.WantSize, d.GotSize)
	case ExtraExecutable:
		return fmt.Sprintf("extra executable: %s (%d bytes, not in the manifest)", d.Path, d.GotSize)
	case NotRegular, Unreadable:
		return fmt.Sprintf("%s: %s: %v", d.Kind, d.Path, d.Err)
	case Unlisted:
		return fmt.Sprintf("not in the manifest: %s", d.Path)
	}
	return fmt.Sprintf("%s: %s", d.Kind, d.Path)
}

// Result is the outcome of Verify.
type Result struct {
	Files          int           // files listed in the manifest
	Bytes          int64         // bytes hashed
	Duration       time.Duration // wall time of the whole check
	ManifestSHA256 string        // SHA-256 of the manifest text
	Differences    []Difference
}

// OK reports whether the tree matched the manifest exactly.
func (r Result) OK() bool { return len(r.Differences) == 0 }

// Summary is the JSON init writes to /run/kwyre/integrity.json.
type Summary struct {
	Verified       bool    `json:"verified"`
	Files          int     `json:"files"`
	Bytes          int64   `json:"bytes"`
	Seconds        float64 `json:"seconds"`
	ManifestSHA256 string  `json:"manifest_sha256"`
}

// Summary returns r in the form of /run/kwyre/integrity.json.
func (r Result) Summary() Summary {
	return Summary{
		Verified:       r.OK(),
		Files:          r.Files,
		Bytes:          r.Bytes,
		Seconds:        r.Duration.Seconds(),
		ManifestSHA256: r.ManifestSHA256,
	}
}

// Verify checks the tree under root against the manifest read from m: every
// listed file must exist as a regular file with the listed size and SHA-256,
// and no executable regular file may exist that is not listed (the Skipped
// top-level folders aside). Files are hashed in parallel, each read once.
//
// The error is nil only when the tree matches. A tree that differs gives an
// error wrapping ErrMismatch and a Result listing every difference; a
// manifest that cannot be read or parsed gives another error.
func Verify(root string, m io.Reader) (Result, error) {
	start := time.Now()
	entries, msum, err := Parse(m)
	if err != nil {
		return Result{}, err
	}
	if err := rootInfo(root); err != nil {
		return Result{}, err
	}
	res := Result{Files: len(entries), ManifestSHA256: msum}

	paths := make([]string, len(entries))
	for i, e := range entries {
		paths[i] = e.Path
	}
	// Walk and hash at once: the walk finds extra executables while the
	// workers read the listed files.
	type walked struct {
		files []file
		err   error
	}
	wc := make(chan walked, 1)
	go func() {
		fs, err := walk(root)
		wc <- walked{fs, err}
	}()
	sums := hashAll(root, paths)
	w := <-wc
	if w.err != nil {
		return Result{}, w.err
	}

	for i, e := range entries {
		res.Bytes += sums[i].size
		if d, ok := compare(e, sums[i]); ok {
			res.Differences = append(res.Differences, d)
		}
	}

	listed := make(map[string]bool, len(entries))
	for _, e := range entries {
		listed[e.Path] = true
	}
	for _, f := range w.files {
		if f.exec && !listed[f.path] {
			res.Differences = append(res.Differences, Difference{Kind: ExtraExecutable, Path: f.path, GotSize: f.size})
		}
	}
	res.Duration = time.Since(start)
	if !res.OK() {
		return res, fmt.Errorf("%w: %d difference(s)", ErrMismatch, len(res.Differences))
	}
	return res, nil
}
