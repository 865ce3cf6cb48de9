package sched

// FuzzConfig feeds scheduler_config.json through ParseConfig and, when it
// is accepted, builds the scheduler and its timesteps for a usual step
// count: nothing may panic, and every timestep must index the schedule.

import (
	"strings"
	"testing"

	"harmony/engine/models/released"
)

func FuzzConfig(f *testing.F) {
	f.Add([]byte(released.Scheduler), 50)
	f.Add([]byte(strings.Replace(released.Scheduler, "PNDMScheduler", "DDIMScheduler", 1)), 25)
	f.Add([]byte(`{"_class_name":"DDIMScheduler","num_train_timesteps":10,"trained_betas":[0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1],"timestep_spacing":"trailing"}`), 7)
	f.Add([]byte(`{"_class_name":"PNDMScheduler","num_train_timesteps":3,"steps_offset":2,"timestep_spacing":"linspace"}`), 1000)
	f.Fuzz(func(t *testing.T, data []byte, steps int) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		if cfg.NumTrainTimesteps > 1<<16 {
			return // a valid schedule, only slow to build on every input
		}
		s, err := New(cfg)
		if err != nil {
			return
		}
		steps = 1 + (steps&0x7fffffff)%(2*cfg.NumTrainTimesteps)
		if s.SetTimesteps(steps) != nil {
			return
		}
		for _, ts := range s.Timesteps() {
			if ts < 0 || ts >= float64(cfg.NumTrainTimesteps) {
				t.Fatalf("timestep %v outside [0, %d) for %d steps", ts, cfg.NumTrainTimesteps, steps)
			}
		}
	})
}
