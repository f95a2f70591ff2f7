package uki

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// makeDeterministic zeroes the COFF TimeDateStamp objcopy writes (the build
// time) and recomputes the PE checksum, so the same inputs give the same UKI.
func makeDeterministic(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("UKI: %w", err)
	}
	if len(b) < 0x40 || string(b[:2]) != "MZ" {
		return errors.New("UKI: not a PE image")
	}
	pe := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if pe+24+68 > len(b) || string(b[pe:pe+4]) != "PE\x00\x00" {
		return errors.New("UKI: bad PE header offset")
	}
	binary.LittleEndian.PutUint32(b[pe+8:], 0) // COFF TimeDateStamp
	sumOff := pe + 24 + 64                     // OptionalHeader.CheckSum
	binary.LittleEndian.PutUint32(b[sumOff:], 0)
	binary.LittleEndian.PutUint32(b[sumOff:], peChecksum(b, sumOff))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("UKI: %w", err)
	}
	return nil
}

// peChecksum is the PE image checksum: the 16-bit one's-complement style
// sum of the file (checksum field taken as zero) plus the file length.
func peChecksum(b []byte, sumOff int) uint32 {
	var sum uint64
	for i := 0; i+1 < len(b); i += 2 {
		if i == sumOff || i == sumOff+2 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint16(b[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(b))
}
