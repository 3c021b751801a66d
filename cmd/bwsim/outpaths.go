package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkOutputDir checks, before any work, that files can be written into
// dir: it is a directory that takes new files, or it does not exist yet and
// its nearest existing ancestor is a directory that does (the command
// creates the rest). It creates nothing that it leaves behind.
func checkOutputDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	p := filepath.Clean(dir)
	for {
		st, err := os.Stat(p)
		switch {
		case err == nil && !st.IsDir():
			return fmt.Errorf("%s is not a directory", p)
		case err == nil:
			return probeDir(p)
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("no directory of %s exists", dir)
		}
		p = parent
	}
}

// checkOutputFile checks, before any work, that a file can be written at
// path, creating missing directories: path is not a directory and
// checkOutputDir accepts its directory.
func checkOutputFile(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("is a directory")
	}
	return checkOutputDir(filepath.Dir(path))
}

// probeDir checks that dir takes new files by creating and removing one.
func probeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".bwsim-check*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot create files in %s: %v", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
