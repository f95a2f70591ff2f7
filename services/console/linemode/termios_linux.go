package linemode

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SetRaw puts the terminal on fd into the mode the line chat wants on a
// serial port: no line discipline editing or echo (the chat echoes), no
// signals from Ctrl-C (a kiosk must not be killed by a key), 8-bit clean
// input, but output post-processing kept so "\n" goes out as CRLF. It
// returns a function that restores the previous settings.
func SetRaw(fd int) (restore func() error, err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("get terminal settings: %w", err)
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Oflag |= unix.OPOST | unix.ONLCR
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, fmt.Errorf("set terminal settings: %w", err)
	}
	return func() error {
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, old); err != nil {
			return fmt.Errorf("restore terminal settings: %w", err)
		}
		return nil
	}, nil
}
