package main

import (
	"os"
	"path/filepath"
	"testing"
)

// STRATA_CPUPROFILE: a directory gets one non-empty profile named after
// the process; no directory, nothing; a directory that does not exist is
// reported and the command runs without a profile.
func TestStartProfile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		dir   string
		files int
	}{
		{"off", "", 0},
		{"on", dir, 1},
		{"missing directory", filepath.Join(dir, "nope"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := filepath.Glob(filepath.Join(dir, "cpu-*.pprof"))
			end := startProfile(tc.dir)
			end()
			after, _ := filepath.Glob(filepath.Join(dir, "cpu-*.pprof"))
			if got := len(after) - len(before); got != tc.files {
				t.Fatalf("%d new profiles, want %d", got, tc.files)
			}
			for _, f := range after {
				st, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() == 0 {
					t.Errorf("profile %s is empty", f)
				}
			}
		})
	}
}
