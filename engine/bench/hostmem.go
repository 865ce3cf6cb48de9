// hostmem.go samples the process's host memory while a stage runs: the Go
// heap (runtime.MemStats HeapInuse and Sys, sampled every few
// milliseconds) and the resident set's high-water mark (hostmem_linux.go;
// on a CPU adapter such as lavapipe the "GPU" buffers live in host memory
// too, so RSS counts them).
package bench

import (
	"runtime"
	"sync"
	"time"
)

// HostPeaks are a stage's host-memory high-water marks, bytes.
type HostPeaks struct {
	GoHeap uint64 `json:"go_heap_inuse_bytes"` // runtime.MemStats.HeapInuse
	GoSys  uint64 `json:"go_sys_bytes"`        // runtime.MemStats.Sys: everything the Go runtime holds
	RSS    uint64 `json:"rss_bytes"`           // resident set (VmHWM; 0 where unknown)
}

// memSampler records the peaks between reset and peaks.
type memSampler struct {
	mu   sync.Mutex
	p    HostPeaks
	stop chan struct{}
	done chan struct{}
}

// sampleEvery is the sampling period: short against a shard's upload.
const sampleEvery = 5 * time.Millisecond

func startSampler() *memSampler {
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *memSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	s.p.GoHeap = max(s.p.GoHeap, ms.HeapInuse)
	s.p.GoSys = max(s.p.GoSys, ms.Sys)
	s.mu.Unlock()
}

// reset starts a new measurement: the Go heap is collected first so that
// garbage from earlier stages does not count, and the RSS mark is reset.
func (s *memSampler) reset() {
	runtime.GC()
	resetRSSPeak()
	s.mu.Lock()
	s.p = HostPeaks{}
	s.mu.Unlock()
	s.sample()
}

// peaks returns the high-water marks since reset.
func (s *memSampler) peaks() HostPeaks {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.p
	p.RSS = rssPeak()
	return p
}

func (s *memSampler) close() {
	close(s.stop)
	<-s.done
}
