package main

import (
	"fmt"
	"os"
	"syscall"
)

// openTTY opens the terminal the console runs on. O_NOCTTY: init decides
// about controlling terminals; opening one must not change that.
func openTTY(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open terminal: %w", err)
	}
	return f, nil
}
