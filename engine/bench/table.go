// table.go prints a Report as plain-text tables (what `harmony bench`
// writes to stderr beside the JSON).
package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable writes r for people.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "harmony bench (%s): %s, %s; %s/%s, %d CPUs, Go %s; default limits %v\n",
		r.Started, r.Device.Adapter, r.Device.Backend, r.Host.OS, r.Host.Arch, r.Host.CPUs, r.Host.GoVersion, r.Device.DefaultLimits)
	fmt.Fprintf(w, "load average %.2f at the start, %.2f at the end; %.0f s in all\n", r.LoadAvg[0][0], r.LoadAvg[1][0], r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(r.Kernels) > 0 {
		fmt.Fprintln(w, "\nkernels (median of timed calls, one sync each)")
		fmt.Fprintln(tw, "op\tshape\tweights\tms\tGFLOP/s\tGFLOP/cpu-s\tGB/s\t")
		for _, k := range r.Kernels {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t\n", k.Op, k.Shape, k.Weights, k.MedianMS, num(k.GFLOPS), num(k.GFLOPC), num(k.GBPS))
		}
		tw.Flush()
	}
	if len(r.UNet) > 0 {
		fmt.Fprintln(w, "\nUNet, one call (batch 2)")
		fmt.Fprintln(tw, "size\tparams\tlatent\tGFLOP\tms\tmin ms\tGFLOP/s\tGFLOP/cpu-s\treps\t")
		for _, u := range r.UNet {
			fmt.Fprintf(tw, "%s\t%.1f M\t%d×%d\t%.1f\t%.0f\t%.0f\t%.2f\t%.2f\t%d+%d\t\n", u.Size, float64(u.Params)/1e6, u.Latent[0], u.Latent[1],
				u.GFLOP, u.MedianMS, u.MinMS, u.GFLOPS, u.GFLOPC, u.Warmup, u.Reps)
		}
		tw.Flush()
	}
	if p := r.Pipeline; p != nil {
		fmt.Fprintf(w, "\npipeline: %s, %s, %d steps at %d×%d: %d UNet calls of batch %d; median %.0f ms (encode %.0f, denoise %.0f, decode %.0f)\n",
			p.Model, p.Method, p.Steps, p.Width, p.Height, p.UNetCalls, p.Batch, p.MedianMS, p.EncodeMS, p.DenoiseMS, p.DecodeMS)
	}
	if len(r.Load) > 0 {
		fmt.Fprintln(w, "\nloading onto the device")
		fmt.Fprintln(tw, "model\tfrom\tMB\tms\tMB/s\t")
		for _, l := range r.Load {
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.0f\t%.1f\t\n", l.Model, l.Source, float64(l.Bytes)/1e6, l.MedianMS, l.MBPS)
		}
		tw.Flush()
	}
	if len(r.Stages) > 0 {
		fmt.Fprintln(w, "\nfull-size stages (MB = 10⁶ bytes; target = 1.15 × weights + activations)")
		fmt.Fprintln(tw, "stage\ts\tload s\tGFLOP\tweights MB\tactivations MB\ttarget MB\tpeak GPU MB\tin use MB\tGo heap MB\tRSS MB\t")
		for _, s := range r.Stages {
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", s.Stage, s.Seconds, s.LoadSeconds, s.GFLOP,
				mbf(s.Weights), mbf(s.Activations), mbf(s.Target), mbf(int64(s.PeakAllocated)), mbf(int64(s.PeakInUse)), mbf(int64(s.Host.GoHeap)), mbf(int64(s.Host.RSS)))
		}
		tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAILED %s: %s\n", f.Part, f.Error)
	}
}

func mbf(n int64) float64 { return float64(n) / 1e6 }

func num(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}
