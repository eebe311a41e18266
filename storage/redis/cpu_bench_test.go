package redis_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/acmegw/acmegw/storage/storagetest"
)

// BenchmarkWrites runs storagetest.BenchWrites on a redis-server of its own
// and reports, beside Go's figures, what redis-server spent per operation,
// which this process's profile cannot show: its CPU time (redis-µs/op, from
// INFO cpu, the round trip included) and its time in scripts
// (script-µs/op, from INFO commandstats: EVALSHA and EVAL, their commands
// included). A shortcut or a slip in a script shows in the second (see
// casScript).
func BenchmarkWrites(b *testing.B) {
	s, raw := openPrivate(b, "")
	info := func(b *testing.B, section string) map[string]string {
		reply, err := raw.Info(b.Context(), section).Result()
		if err != nil {
			b.Fatalf("INFO %s: %v", section, err)
		}
		fields := map[string]string{}
		for line := range strings.SplitSeq(reply, "\n") {
			if name, value, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				fields[name] = value
			}
		}
		return fields
	}
	storagetest.BenchWrites(b, s, map[string]func(*testing.B) float64{
		"redis-µs/op": func(b *testing.B) float64 {
			f := info(b, "cpu")
			return (number(b, f["used_cpu_sys"]) + number(b, f["used_cpu_user"])) * 1e6
		},
		"script-µs/op": func(b *testing.B) float64 {
			f := info(b, "commandstats")
			return statUsec(b, f["cmdstat_evalsha"]) + statUsec(b, f["cmdstat_eval"])
		},
	})
}

// number parses an INFO value.
func number(b *testing.B, v string) float64 {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		b.Fatalf("INFO value %q: %v", v, err)
	}
	return f
}

// statUsec is the usec field of an INFO commandstats entry
// ("calls=3,usec=45,..."), 0 for a command not run yet.
func statUsec(b *testing.B, entry string) float64 {
	for field := range strings.SplitSeq(entry, ",") {
		if v, ok := strings.CutPrefix(field, "usec="); ok {
			return number(b, v)
		}
	}
	return 0
}
