//go:build linux

// procmon_linux.go records how much CPU other processes used during a timed
// section, the same bookkeeping as the peer harness's bench/lib/procmon.mjs
// (so native figures carry the same foreign-load record as the browser
// ones): own = the process tree rooted at this process, foreign = every
// other process, foreign_share = foreign CPU seconds / (wall seconds × CPUs).
package bench

import (
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// hz is USER_HZ (getconf CLK_TCK), 100 on Linux x86-64.
const hz = 100

type proc struct {
	ppid  int
	comm  string
	ticks int64
	start int64
}

// Snapshot is the CPU time of every process at one instant.
type Snapshot struct {
	t     time.Time
	procs map[int]proc
}

// TakeSnapshot reads /proc.
func TakeSnapshot() *Snapshot {
	s := &Snapshot{t: time.Now(), procs: map[int]proc{}}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		l, r := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if l < 0 || r < l || r+2 > len(st) {
			continue
		}
		// After ")": state(0) ppid(1) … utime(11) stime(12) … starttime(19).
		f := strings.Fields(st[r+2:])
		if len(f) < 20 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stm, _ := strconv.ParseInt(f[12], 10, 64)
		start, _ := strconv.ParseInt(f[19], 10, 64)
		s.procs[pid] = proc{ppid: ppid, comm: st[l+1 : r], ticks: ut + stm, start: start}
	}
	return s
}

// Usage is the harness's usage() record.
type Usage struct {
	WallS        float64   `json:"wall_s"`
	OwnCPUS      float64   `json:"own_cpu_s"`
	ForeignCPUS  float64   `json:"foreign_cpu_s"`
	ForeignShare float64   `json:"foreign_share"`
	OwnCoresAvg  float64   `json:"own_cores_avg"`
	TopForeign   []TopProc `json:"top_foreign"`
}

// TopProc is one foreign process's CPU use.
type TopProc struct {
	PID  int     `json:"pid"`
	Comm string  `json:"comm"`
	CPUS float64 `json:"cpu_s"`
}

func tree(procs map[int]proc, root int) map[int]bool {
	kids := map[int][]int{}
	for pid, p := range procs {
		kids[p.ppid] = append(kids[p.ppid], pid)
	}
	out := map[int]bool{root: true}
	stack := []int{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, k := range kids[n] {
			if !out[k] {
				out[k] = true
				stack = append(stack, k)
			}
		}
	}
	return out
}

// UsageBetween is the CPU used between two snapshots by this process's tree
// and by everything else.
func UsageBetween(s0, s1 *Snapshot) *Usage {
	root := os.Getpid()
	wall := s1.t.Sub(s0.t).Seconds()
	mine := tree(s1.procs, root)
	for pid := range tree(s0.procs, root) {
		mine[pid] = true
	}
	var own, foreign float64
	var top []TopProc
	for pid, p1 := range s1.procs {
		d := float64(p1.ticks)
		if p0, ok := s0.procs[pid]; ok && p0.start == p1.start {
			d = float64(p1.ticks - p0.ticks)
		}
		d /= hz
		if d <= 0 {
			continue
		}
		if mine[pid] {
			own += d
		} else {
			foreign += d
			top = append(top, TopProc{PID: pid, Comm: p1.comm, CPUS: round2(d)})
		}
	}
	sort.Slice(top, func(i, j int) bool { return top[i].CPUS > top[j].CPUS })
	if len(top) > 3 {
		top = top[:3]
	}
	u := &Usage{WallS: round2(wall), OwnCPUS: round2(own), ForeignCPUS: round2(foreign), TopForeign: top}
	if wall > 0 {
		u.ForeignShare = round3(foreign / (wall * float64(runtime.NumCPU())))
		u.OwnCoresAvg = round2(own / wall)
	}
	return u
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// ProcHook is a Hook that records the foreign CPU load of each call and of
// the timed section.
func ProcHook() Hook {
	var section, call *Snapshot
	return func(phase string, i int) (any, error) {
		switch phase {
		case "start":
			section = TakeSnapshot()
		case "before":
			call = TakeSnapshot()
		case "after":
			return UsageBetween(call, TakeSnapshot()), nil
		case "end":
			if section != nil {
				return UsageBetween(section, TakeSnapshot()), nil
			}
		}
		return nil, nil
	}
}
