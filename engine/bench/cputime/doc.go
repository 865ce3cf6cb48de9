// Package cputime reads the process's CPU time for the benchmarks (engine/bench
// and the kernel benchmarks). On a CPU adapter the "GPU" threads are the
// process's own, so it counts them, and on a shared machine GFLOP per
// CPU-second varies far less between runs than GFLOP per wall second.
package cputime
