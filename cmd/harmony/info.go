// info.go: `harmony info` prints the adapter, backend, limits and features,
// then runs the kernel self-check on the GPU (every kernel against its CPU
// reference at small sizes) and prints pass/fail per kernel.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"harmony/engine/gpu"
	"harmony/engine/kernels"
)

func init() {
	register(&command{name: "info", summary: "show the GPU adapter, limits and features, and self-check every kernel", run: runInfo})
}

func runInfo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	defaultLimits := fs.Bool("default-limits", false, "open the device with the WebGPU spec's default limits (128 MiB bindings)")
	noCheck := fs.Bool("no-check", false, "skip the kernel self-check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("harmony info: unexpected argument %q", fs.Arg(0))
	}
	dev, err := gpu.Open(ctx, gpu.Options{DefaultLimits: *defaultLimits})
	if err != nil {
		return err
	}
	defer dev.Close()
	printInfo(os.Stdout, dev.Info())
	if *noCheck {
		return nil
	}
	fmt.Println("\nkernel self-check (GPU vs CPU reference):")
	res := kernels.SelfCheck(ctx, kernels.New(dev))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	failed := 0
	for _, r := range res {
		status := "pass"
		if r.Err != nil {
			status, failed = "FAIL", failed+1
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", status, r.Name, r.Detail())
	}
	tw.Flush()
	if failed > 0 {
		return fmt.Errorf("harmony info: %d of %d kernel checks failed", failed, len(res))
	}
	fmt.Printf("all %d kernel checks passed\n", len(res))
	return nil
}

func printInfo(w *os.File, i gpu.Info) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "adapter\t%s\n", i.Adapter)
	fmt.Fprintf(tw, "backend\t%s\n", i.Backend)
	if i.Vendor != "" || i.Architecture != "" {
		fmt.Fprintf(tw, "vendor\t%s %s\n", i.Vendor, i.Architecture)
	}
	fmt.Fprintf(tw, "software adapter\t%v\n", i.Fallback)
	f16 := "no"
	if i.ShaderF16 {
		f16 = "yes (f16 arithmetic kernels)"
	} else if i.F16Note != "" {
		f16 = "no: " + i.F16Note + " (fp16 weights unpacked to f32)"
	} else {
		f16 = "no (fp16 weights unpacked to f32)"
	}
	fmt.Fprintf(tw, "shader-f16\t%s\n", f16)
	sg := "not offered (kernels use no subgroup operations)"
	switch {
	case i.SubgroupSize > 0:
		sg = fmt.Sprintf("yes, %d lanes (subgroup matmul kernels)", i.SubgroupSize)
	case i.Subgroups:
		sg = "offered, not used: " + i.SubgroupNote
	}
	fmt.Fprintf(tw, "subgroups\t%s\n", sg)
	mode := "adapter limits"
	if i.DefaultMode {
		mode = "WebGPU default limits"
	}
	l := i.Limits
	fmt.Fprintf(tw, "limits (%s)\t\n", mode)
	fmt.Fprintf(tw, "  maxStorageBufferBindingSize\t%s\n", mib(l.MaxStorageBufferBindingSize))
	fmt.Fprintf(tw, "  maxBufferSize\t%s\n", mib(l.MaxBufferSize))
	fmt.Fprintf(tw, "  maxComputeWorkgroupStorageSize\t%d B\n", l.MaxComputeWorkgroupStorageSize)
	fmt.Fprintf(tw, "  maxComputeInvocationsPerWorkgroup\t%d\n", l.MaxComputeInvocationsPerWorkgroup)
	fmt.Fprintf(tw, "  maxComputeWorkgroupSize\t%d × %d × %d\n", l.MaxComputeWorkgroupSizeX, l.MaxComputeWorkgroupSizeY, l.MaxComputeWorkgroupSizeZ)
	fmt.Fprintf(tw, "  maxComputeWorkgroupsPerDimension\t%d\n", l.MaxComputeWorkgroupsPerDimension)
	fmt.Fprintf(tw, "  maxStorageBuffersPerShaderStage\t%d\n", l.MaxStorageBuffersPerShaderStage)
	fmt.Fprintf(tw, "  minStorageBufferOffsetAlignment\t%d B\n", l.MinStorageBufferOffsetAlignment)
	fmt.Fprintf(tw, "features\t%s\n", strings.Join(i.Features, ", "))
	tw.Flush()
}

func mib(n uint64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB (%d B)", n>>20, n)
	}
	return fmt.Sprintf("%d B", n)
}
