// sweep_test.go runs the scheduler config reader, and the schedule it
// builds, on hostile variants of the tiny checkpoint's
// scheduler_config.json (each numeric field at 0, −1 and 10⁹): each must
// give a *cfgcheck.ConfigError naming the field or a working scheduler,
// quickly and without panicking.
package sched

import (
	"os"
	"testing"
	"time"

	"harmony/engine/cfgcheck"
)

func TestConfigSweep(t *testing.T) {
	data, err := os.ReadFile("../../testdata/blipdiffusion-tiny/scheduler/scheduler_config.json")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := cfgcheck.Variants(data, cfgcheck.HostileValues)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		start := time.Now()
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s = %s: panic: %v", v.Path, v.Value, p)
				}
			}()
			cfg, err := ParseConfig(v.JSON)
			if err != nil {
				if !v.Names(err) {
					t.Errorf("%s = %s: %v; want a config error naming %s", v.Path, v.Value, err, v.Key)
				}
				return
			}
			if _, err := New(cfg); err != nil {
				t.Errorf("%s = %s: parsed, then New: %v", v.Path, v.Value, err)
			}
		}()
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s = %s: took %v", v.Path, v.Value, d)
		}
	}
	t.Logf("%d variants", len(vs))
}
