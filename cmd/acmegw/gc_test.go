package main

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
)

func TestAvailableMemory(t *testing.T) {
	meminfo := &fstest.MapFile{Data: []byte("MemTotal:       24576000 kB\nMemFree:         1000 kB\n")}
	const machine = 24576000 << 10
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want int64
	}{
		{"machine only", fstest.MapFS{"proc/meminfo": meminfo}, machine},
		{"cgroup v2 without limit", fstest.MapFS{"proc/meminfo": meminfo, "sys/fs/cgroup/memory.max": {Data: []byte("max\n")}}, machine},
		{"cgroup v2 limit", fstest.MapFS{"proc/meminfo": meminfo, "sys/fs/cgroup/memory.max": {Data: []byte("536870912\n")}}, 512 << 20},
		{"cgroup v1 limit", fstest.MapFS{"proc/meminfo": meminfo, "sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("1073741824\n")}}, 1 << 30},
		// cgroup v1 says "no limit" with a number far above the machine's memory.
		{"cgroup v1 without limit", fstest.MapFS{"proc/meminfo": meminfo, "sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")}}, machine},
		{"cgroup limit, no meminfo", fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("536870912")}}, 512 << 20},
		{"nothing readable", fstest.MapFS{}, 0},
		{"garbled meminfo", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: lots kB\n")}}, 0},
	} {
		if got := availableMemory(tc.fs); got != tc.want {
			t.Errorf("%s: availableMemory = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// restoreGC puts the collector back as the test binary had it.
func restoreGC(t *testing.T) {
	percent := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

func TestTuneGC(t *testing.T) {
	sys := fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: 1048576 kB\n")}} // 1 GiB

	t.Run("defaults", func(t *testing.T) {
		restoreGC(t)
		debug.SetMemoryLimit(math.MaxInt64)
		unsetEnv(t, "GOGC", "GOMEMLIMIT")
		var logs bytes.Buffer
		tuneGC(sys, slog.New(slog.NewTextHandler(&logs, nil)))
		if got := debug.SetGCPercent(100); got != defaultGCPercent {
			t.Errorf("GC percent %d, want %d", got, defaultGCPercent)
		}
		if got, want := debug.SetMemoryLimit(-1), int64(768<<20); got != want {
			t.Errorf("memory limit %d, want %d (3/4 of 1 GiB)", got, want)
		}
		if !strings.Contains(logs.String(), "gogc=400 memory_limit_mib=768") {
			t.Errorf("log %q does not give the settings", logs.String())
		}
	})

	t.Run("environment wins", func(t *testing.T) {
		restoreGC(t)
		debug.SetGCPercent(150) // as if the runtime had read GOGC=150
		debug.SetMemoryLimit(math.MaxInt64)
		t.Setenv("GOGC", "150")
		t.Setenv("GOMEMLIMIT", "off")
		var logs bytes.Buffer
		tuneGC(sys, slog.New(slog.NewTextHandler(&logs, nil)))
		if got := debug.SetGCPercent(100); got != 150 {
			t.Errorf("GC percent %d, want GOGC's 150 left alone", got)
		}
		if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
			t.Errorf("memory limit %d, want GOMEMLIMIT's left alone", got)
		}
		if !strings.Contains(logs.String(), `gogc="from GOGC" memory_limit="from GOMEMLIMIT"`) {
			t.Errorf("log %q does not say the environment set both", logs.String())
		}
	})
}

// unsetEnv removes the variables for the test; t.Setenv first, so that
// they come back afterwards.
func unsetEnv(t *testing.T, names ...string) {
	for _, n := range names {
		t.Setenv(n, "")
		if err := os.Unsetenv(n); err != nil {
			t.Fatal(err)
		}
	}
}
