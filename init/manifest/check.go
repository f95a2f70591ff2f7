package manifest

import "errors"

// Unlisted is the Kind of a file Check was asked about that the manifest
// does not list.
const Unlisted Kind = 100

// Check verifies only the files named by paths (absolute or relative to
// root) against entries, before the full Verify: init checks the kernel
// modules this way before loading them. It returns every difference; a file
// missing from the manifest is Unlisted.
func Check(root string, entries []Entry, paths []string) []Difference {
	byPath := make(map[string]Entry, len(entries))
	for _, e := range entries {
		byPath[e.Path] = e
	}
	var diffs []Difference
	var want []Entry
	for _, p := range paths {
		rel := p
		for len(rel) > 0 && rel[0] == '/' {
			rel = rel[1:]
		}
		e, ok := byPath[rel]
		if !ok {
			diffs = append(diffs, Difference{Kind: Unlisted, Path: rel})
			continue
		}
		want = append(want, e)
	}
	rels := make([]string, len(want))
	for i, e := range want {
		rels[i] = e.Path
	}
	for i, s := range hashAll(root, rels) {
		if d, ok := compare(want[i], s); ok {
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// compare returns the difference between entry e and the hash result s.
func compare(e Entry, s sum) (Difference, bool) {
	d := Difference{Path: e.Path, WantSHA256: e.SHA256, WantSize: e.Size}
	switch {
	case s.missing:
		d.Kind = Missing
	case errors.Is(s.err, errNotRegular):
		d.Kind, d.Err = NotRegular, s.err
	case s.err != nil:
		d.Kind, d.Err = Unreadable, s.err
	case s.size != e.Size || s.statSz != e.Size:
		d.Kind, d.GotSHA256, d.GotSize = Resized, s.sha256, s.size
		if s.size == e.Size {
			d.GotSize = s.statSz
		}
	case s.sha256 != e.SHA256:
		d.Kind, d.GotSHA256, d.GotSize = Changed, s.sha256, s.size
	default:
		return Difference{}, false
	}
	return d, true
}
