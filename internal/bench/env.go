package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Env is the machine a run measured, for every output to state.
type Env struct {
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	Kernel     string `json:"kernel"`
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
}

// ThisMachine returns the Env of the running process.
func ThisMachine() Env {
	e := Env{
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		Kernel: kernel(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return e
}

// String is the machine in a table's second line: "Linux 6.18, go1.26.8
// linux/amd64, 2 CPUs".
func (e Env) String() string {
	return fmt.Sprintf("%s, %s %s/%s, %d CPUs", e.Kernel, e.GoVersion, e.GOOS, e.GOARCH, e.NumCPU)
}

// LoadAverage returns /proc/loadavg's three load averages, "unknown" where
// there is none: how busy the shared machine was.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
