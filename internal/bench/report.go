package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the human-readable report.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	name := r.Name
	if name == "" {
		name = r.Directory
	}
	fmt.Fprintf(&b, "bench: %s\n", name)
	fmt.Fprintf(&b, "  %d clients, %d name(s) per certificate, %s keys, poll %gs, Retry-After cap %gs\n",
		r.Clients, r.NamesPerCert, r.KeyType, r.PollInterval, r.MaxRetryAfter)
	fmt.Fprintf(&b, "  accounts created in: %.2fs (before the timed phase)\n", r.SetupSeconds)
	fmt.Fprintf(&b, "  certificates:        %d in %.2fs (the last at %.2fs)\n", r.Certificates, r.Seconds, r.LastCertSeconds)
	fmt.Fprintf(&b, "  certificates/s:      %.1f\n", r.CertsPerSecond)
	t := r.TimeToCert
	fmt.Fprintf(&b, "  time to certificate: p50 %s  p90 %s  p99 %s  max %s\n", ms(t.P50), ms(t.P90), ms(t.P99), ms(t.Max))
	fmt.Fprintf(&b, "  errors:              %d\n", r.ErrorsTotal)
	for _, k := range r.ErrorKinds() {
		fmt.Fprintf(&b, "    %-24s %6d  e.g. %s\n", k, r.Errors[k], r.ErrorSamples[k])
	}
	for k, v := range r.Retries {
		fmt.Fprintf(&b, "  retried after %s: %d\n", k, v)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  endpoint\trequests\tp50\tp99\tmax\t")
	for _, e := range r.Endpoints {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t\n", e.Name, e.Count, ms(e.P50), ms(e.P99), ms(e.Max))
	}
	tw.Flush()
	if len(r.Server) > 0 {
		b.WriteString("\n")
		for _, p := range r.Server {
			fmt.Fprintf(&b, "  server pid %d (%s): CPU %.2fs = %.3f ms/certificate, RSS %s (peak %s)\n",
				p.PID, p.Command, p.CPUSeconds, p.CPUMsPerCert, mib(p.RSSBytes), mib(p.PeakRSSBytes))
		}
		if len(r.Server) > 1 {
			fmt.Fprintf(&b, "  server total: CPU %.2fs = %.3f ms/certificate\n", r.ServerCPUSeconds, r.ServerCPUMsPerCert)
		}
	}
	fmt.Fprintf(&b, "  bench client CPU: %.2fs\n", r.ClientCPUSeconds)
	if r.MachineCPUSeconds > 0 {
		fmt.Fprintf(&b, "  machine CPU: %.2fs of %.2fs available (%d CPUs); other processes: %.2fs\n",
			r.MachineCPUSeconds, r.Seconds*float64(r.CPUs), r.CPUs, r.OtherCPUSeconds)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.1fms", v)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// WriteComparison prints a Markdown table of results side by side; with
// ratio and two or more results, the last row gives each one's certs/s
// relative to the last result (the baseline). Without ratio there is no
// such row: runs of one server at different loads have no baseline.
func WriteComparison(w io.Writer, results []*Result, ratio bool) error {
	var b strings.Builder
	names := make([]string, len(results))
	for i, r := range results {
		names[i] = r.Name
		if names[i] == "" {
			names[i] = r.Directory
		}
	}
	row := func(label string, cell func(r *Result) string) {
		b.WriteString("| " + label + " |")
		for _, r := range results {
			b.WriteString(" " + cell(r) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("| |")
	for _, n := range names {
		b.WriteString(" " + n + " |")
	}
	b.WriteString("\n|---|")
	for range results {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	row("clients", func(r *Result) string { return fmt.Sprint(r.Clients) })
	row("run time (s)", func(r *Result) string { return fmt.Sprintf("%.1f", r.Seconds) })
	row("certificates issued", func(r *Result) string { return fmt.Sprint(r.Certificates) })
	row("last certificate at (s)", func(r *Result) string { return fmt.Sprintf("%.1f", r.LastCertSeconds) })
	row("**certificates/s**", func(r *Result) string { return fmt.Sprintf("**%.1f**", r.CertsPerSecond) })
	row("time to certificate p50 (ms)", func(r *Result) string { return fmt.Sprintf("%.1f", r.TimeToCert.P50) })
	row("time to certificate p90 (ms)", func(r *Result) string { return fmt.Sprintf("%.1f", r.TimeToCert.P90) })
	row("time to certificate p99 (ms)", func(r *Result) string { return fmt.Sprintf("%.1f", r.TimeToCert.P99) })
	serverCells := 0
	for _, r := range results {
		serverCells = max(serverCells, len(r.Server))
	}
	for i := range serverCells {
		label := "server CPU per certificate (ms)"
		if serverCells > 1 {
			label = fmt.Sprintf("server process %d CPU per certificate (ms)", i+1)
		}
		row(label, func(r *Result) string {
			if i >= len(r.Server) {
				return "–"
			}
			return fmt.Sprintf("%.3f (%s)", r.Server[i].CPUMsPerCert, r.Server[i].Command)
		})
	}
	if serverCells > 1 {
		row("**server CPU per certificate, total (ms)**", func(r *Result) string { return fmt.Sprintf("**%.3f**", r.ServerCPUMsPerCert) })
	}
	for i := range serverCells {
		label := "server RSS at end / peak"
		if serverCells > 1 {
			label = fmt.Sprintf("server process %d RSS at end / peak", i+1)
		}
		row(label, func(r *Result) string {
			if i >= len(r.Server) {
				return "–"
			}
			return mib(r.Server[i].RSSBytes) + " / " + mib(r.Server[i].PeakRSSBytes)
		})
	}
	row("bench client CPU per certificate (ms)", func(r *Result) string {
		if r.Certificates == 0 {
			return "–"
		}
		return fmt.Sprintf("%.3f", r.ClientCPUSeconds*1000/float64(r.Certificates))
	})
	row("CPU used by other processes during the run (s)", func(r *Result) string {
		return fmt.Sprintf("%.1f of %.1f available", r.OtherCPUSeconds, r.Seconds*float64(r.CPUs))
	})
	row("errors", func(r *Result) string {
		if r.ErrorsTotal == 0 {
			return "0"
		}
		var parts []string
		for _, k := range r.ErrorKinds() {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, r.Errors[k]))
		}
		return fmt.Sprintf("%d (%s)", r.ErrorsTotal, strings.Join(parts, ", "))
	})
	if ratio && len(results) >= 2 {
		base := results[len(results)-1]
		row("certificates/s relative to "+names[len(names)-1], func(r *Result) string {
			if base.CertsPerSecond == 0 {
				return "–"
			}
			return fmt.Sprintf("%.1f×", r.CertsPerSecond/base.CertsPerSecond)
		})
	}

	b.WriteString("\nPer-endpoint latency, p50 / p99 (ms):\n\n| endpoint |")
	for _, n := range names {
		b.WriteString(" " + n + " |")
	}
	b.WriteString("\n|---|")
	for range results {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, ep := range endpointOrder {
		row(ep, func(r *Result) string {
			for _, e := range r.Endpoints {
				if e.Name == ep {
					return fmt.Sprintf("%.1f / %.1f (n=%d)", e.P50, e.P99, e.Count)
				}
			}
			return "–"
		})
	}
	_, err := io.WriteString(w, b.String())
	return err
}
