// Package uki builds a unified kernel image: systemd's EFI stub with the
// kernel, initramfs, command line and os-release added as PE sections, so
// that one EFI binary (one file to sign) carries everything that boots.
package uki

import (
	"debug/pe"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// DefaultStub is where Debian's systemd-boot-efi installs the stub.
const DefaultStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// Section is one section to add: its name and the file holding its bytes.
type Section struct {
	Name string // ".osrel", ".cmdline", ".linux", ".initrd"
	File string
}

// Placed is a section with the virtual address it gets in the image.
type Placed struct {
	Section
	VMA uint64
}

// Layout places the sections after the stub's own, each at the next
// SectionAlignment boundary, so no two sections overlap. The addresses
// include the stub's ImageBase, as objcopy's --change-section-vma expects.
func Layout(stub string, secs []Section) ([]Placed, error) {
	f, err := pe.Open(stub)
	if err != nil {
		return nil, fmt.Errorf("read EFI stub %s: %w", stub, err)
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		return nil, fmt.Errorf("EFI stub %s: not a PE32+ image", stub)
	}
	align := uint64(oh.SectionAlignment)
	if align == 0 || align&(align-1) != 0 {
		return nil, fmt.Errorf("EFI stub %s: bad section alignment %d", stub, align)
	}
	var end uint64
	for _, s := range f.Sections {
		size := uint64(s.VirtualSize)
		if size == 0 {
			size = uint64(s.Size)
		}
		end = max(end, uint64(s.VirtualAddress)+size)
	}
	if end == 0 {
		return nil, fmt.Errorf("EFI stub %s: no sections", stub)
	}
	next := alignUp(end, align)
	var out []Placed
	for _, s := range secs {
		st, err := os.Stat(s.File)
		if err != nil {
			return nil, fmt.Errorf("UKI section %s: %w", s.Name, err)
		}
		if st.Size() == 0 {
			return nil, fmt.Errorf("UKI section %s: %s is empty", s.Name, s.File)
		}
		out = append(out, Placed{Section: s, VMA: oh.ImageBase + next})
		next = alignUp(next+uint64(st.Size()), align)
	}
	return out, nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// Build writes the UKI to out with objcopy.
func Build(stub, out string, secs []Section) error {
	placed, err := Layout(stub, secs)
	if err != nil {
		return err
	}
	if len(placed) == 0 {
		return errors.New("UKI: no sections")
	}
	args := []string{}
	for _, p := range placed {
		args = append(args,
			"--add-section", p.Name+"="+p.File,
			"--change-section-vma", fmt.Sprintf("%s=0x%x", p.Name, p.VMA))
	}
	tmp := out + ".tmp"
	args = append(args, stub, tmp)
	cmd := exec.Command("objcopy", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("objcopy (UKI): %v: %s", err, b)
	}
	if err := makeDeterministic(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("UKI: %w", err)
	}
	return nil
}

// OSRelease is the .osrel section's text.
func OSRelease(version string) string {
	return fmt.Sprintf("NAME=\"Kwyre\"\nID=kwyre\nPRETTY_NAME=\"Kwyre private LLM appliance\"\nVERSION_ID=%q\n", version)
}

// WriteSections writes the text sections (.osrel, .cmdline) into dir and
// returns the full section list in the order the stub expects.
func WriteSections(dir, osrel, cmdline, kernel, initrd string) ([]Section, error) {
	osrelFile := filepath.Join(dir, "osrel")
	cmdFile := filepath.Join(dir, "cmdline")
	if err := os.WriteFile(osrelFile, []byte(osrel), 0o644); err != nil {
		return nil, fmt.Errorf("UKI .osrel: %w", err)
	}
	if err := os.WriteFile(cmdFile, []byte(cmdline), 0o644); err != nil {
		return nil, fmt.Errorf("UKI .cmdline: %w", err)
	}
	return []Section{
		{".osrel", osrelFile},
		{".cmdline", cmdFile},
		{".linux", kernel},
		{".initrd", initrd},
	}, nil
}
