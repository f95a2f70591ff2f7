package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// bufSize is the read size per file: large reads keep the disk queue full
// and cost little next to hashing.
const bufSize = 1 << 20

// errNotRegular marks a path that exists but is not a regular file (a
// symbolic link, a device, a folder).
var errNotRegular = errors.New("not a regular file")

// sum is the outcome of hashing one file.
type sum struct {
	sha256  string
	size    int64 // bytes read
	statSz  int64 // size fstat reported when opened
	err     error
	missing bool
}

// hashAll hashes the files under root named by paths, on all cores, each file
// read once, and returns the results in the order of paths.
func hashAll(root string, paths []string) []sum {
	out := make([]sum, len(paths))
	workers := runtime.NumCPU()
	if workers > len(paths) {
		workers = len(paths)
	}
	dir, err := openRoot(root)
	if err != nil {
		for i := range out {
			out[i].err = err
		}
		return out
	}
	defer dir.Close()

	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufSize)
			for i := range next {
				out[i] = hashOne(dir, paths[i], buf)
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func hashOne(dir rootDir, rel string, buf []byte) sum {
	f, size, err := dir.open(rel)
	if err != nil {
		return sum{err: err, missing: isNotExist(err)}
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, onlyReader{f}, buf)
	if err != nil {
		return sum{err: fmt.Errorf("read %s: %w", rel, err)}
	}
	return sum{sha256: hex.EncodeToString(h.Sum(nil)), size: n, statSz: size}
}

// onlyReader hides a file's WriterTo/ReaderFrom so io.CopyBuffer uses our buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
