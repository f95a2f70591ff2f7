package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// rootDir opens files strictly beneath one folder.
type rootDir struct{ f *os.File }

func openRoot(root string) (rootDir, error) {
	f, err := os.OpenFile(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return rootDir{}, fmt.Errorf("open manifest root: %w", err)
	}
	return rootDir{f}, nil
}

func (d rootDir) Close() error { return d.f.Close() }

// open opens rel beneath the root without following any symbolic link, so
// a link cannot swap a listed file for one outside the verified tree, and
// returns the file with its size.
func (d rootDir) open(rel string) (*os.File, int64, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	var err error
	for {
		fd, err = unix.Openat2(int(d.f.Fd()), rel, &how)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.ENOSYS {
		// Kernels before 5.6: fall back to openat with O_NOFOLLOW on the last part.
		fd, err = unix.Openat(int(d.f.Fd()), rel, int(how.Flags), 0)
	}
	if err != nil {
		if err == unix.ELOOP {
			return nil, 0, fmt.Errorf("open %s: %w (symbolic link)", rel, errNotRegular)
		}
		return nil, 0, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), rel)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat %s: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, 0, fmt.Errorf("open %s: %w", rel, errNotRegular)
	}
	return f, st.Size, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
