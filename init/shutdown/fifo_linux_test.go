package shutdown

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func mkfifo(p string) error { return unix.Mkfifo(p, 0o600) }

// openWriteTimeout opens a FIFO for writing, which succeeds only once a
// reader has it open.
func openWriteTimeout(p string, d time.Duration) (*os.File, error) {
	deadline := time.Now().Add(d)
	for {
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.SetNonblock(fd, false)
			return os.NewFile(uintptr(fd), p), nil
		}
		if err != unix.ENXIO || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
