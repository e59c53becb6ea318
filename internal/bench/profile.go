package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
)

// StartProfiles starts a pprof CPU profile written to cpu and, with mem,
// records every allocation (runtime.MemProfileRate = 1) for an allocation
// profile written to mem when stop is called. "" asks for none.
func StartProfiles(cpu, mem string) (stop func() error, err error) {
	var f *os.File
	if cpu != "" {
		if f, err = os.Create(cpu); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
	}
	if mem != "" {
		runtime.MemProfileRate = 1
	}
	return func() error {
		var errs []error
		if f != nil {
			pprof.StopCPUProfile()
			errs = append(errs, f.Close())
		}
		if mem != "" {
			m, err := os.Create(mem)
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			errs = append(errs, pprof.Lookup("allocs").WriteTo(m, 0), m.Close())
		}
		return errors.Join(errs...)
	}, nil
}

// ChildProfile starts a CPU profile of a benchmark's child process (a
// server, a wireguard-go) when the environment variable env names a
// directory: dir/name-pid.pprof, for go tool pprof. Without it, stop does
// nothing.
func ChildProfile(env, name string) (stop func() error, err error) {
	dir := os.Getenv(env)
	if dir == "" {
		return func() error { return nil }, nil
	}
	return StartProfiles(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", name, os.Getpid())), "")
}
