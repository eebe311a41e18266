package main

import (
	"bufio"
	"bytes"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is the GOGC that serve runs with unless GOGC is set.
// With Redis the live heap is a few MB (caches and requests in flight), so
// Go's default of 100 collects many times a second under load: 5–8% of the
// server's CPU went to marking (pprof under acmegw bench, 64 clients). At
// 400 it collects a quarter as often; the heap grows to five times what is
// live instead of twice (resident memory 59 -> 100 MiB at 64 busy clients, 226 -> 424 MiB
// at 1024, where every connection holds buffers).
const defaultGCPercent = 400

// memoryLimitShare is the part of the machine's (or the cgroup's) memory
// that serve gives the Go runtime as its soft limit unless GOMEMLIMIT is
// set. It is what keeps defaultGCPercent safe with the memory store, whose
// live heap is all the data: near the limit the collector runs as often as
// it must, whatever GOGC says, instead of letting the heap grow fivefold.
const memoryLimitShare = 0.75

// tuneGC applies defaultGCPercent and a memory limit of memoryLimitShare of
// the memory available, each only where the operator has not set GOGC or
// GOMEMLIMIT (which the Go runtime has applied already), and logs the
// result once.
func tuneGC(sys fs.FS, log *slog.Logger) {
	attrs := []any{"gogc", "from GOGC"}
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
		attrs[1] = defaultGCPercent
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		attrs = append(attrs, "memory_limit", "from GOMEMLIMIT")
	} else if total := availableMemory(sys); total > 0 {
		limit := int64(float64(total) * memoryLimitShare)
		debug.SetMemoryLimit(limit)
		attrs = append(attrs, "memory_limit_mib", limit>>20)
	}
	log.Info("garbage collector", attrs...)
}

// availableMemory is the memory this process may use, in bytes: the
// cgroup's limit when there is one below the machine's, else the machine's
// MemTotal. sys is the root file system ("/" in production); 0 means
// unknown.
func availableMemory(sys fs.FS) int64 {
	total := memTotal(sys)
	if limit := cgroupMemoryLimit(sys); limit > 0 && (total == 0 || limit < total) {
		return limit
	}
	return total
}

// cgroupMemoryLimit is the memory limit of this process's cgroup (v2
// memory.max, or v1 memory.limit_in_bytes), 0 for none or unknown. v2 says
// "max" for no limit; v1 gives a huge number instead, which availableMemory
// finds above the machine's memory.
func cgroupMemoryLimit(sys fs.FS) int64 {
	for _, name := range []string{"sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := fs.ReadFile(sys, name)
		if err != nil {
			continue
		}
		limit, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || limit <= 0 {
			return 0
		}
		return limit
	}
	return 0
}

// memTotal is /proc/meminfo's MemTotal in bytes, 0 when unreadable.
func memTotal(sys fs.FS) int64 {
	b, err := fs.ReadFile(sys, "proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kb <= 0 || kb > math.MaxInt64>>10 {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
