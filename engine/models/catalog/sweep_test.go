// sweep_test.go runs every model component's config reader and tensor
// table on hostile variants of the tiny checkpoint's configs (each numeric
// field at 0, −1 and 10⁹): each must give a *cfgcheck.ConfigError naming
// the field, or parse a config that is valid and list its tensors, within
// a second and without panicking. It also checks that the released
// configs pass validation.
package catalog

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"harmony/engine/cfgcheck"
	"harmony/engine/models/released"
)

const tinyDir = "../../../testdata/blipdiffusion-tiny"

// caseLimit is how long one variant may take: parsing is checks and a
// walk over at most a bounded number of tensor names.
const caseLimit = time.Second

func TestConfigSweep(t *testing.T) {
	total := 0
	for _, c := range BLIPDiffusion.Models() {
		data, err := os.ReadFile(filepath.Join(tinyDir, c.ConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		vs, err := cfgcheck.Variants(data, cfgcheck.HostileValues)
		if err != nil {
			t.Fatal(err)
		}
		total += len(vs)
		t.Run(c.Name, func(t *testing.T) {
			refused := 0
			for _, v := range vs {
				err := runBounded(t, v, func() error {
					cfg, err := c.Parse(v.JSON)
					if err == nil {
						c.Tensors(cfg)
					}
					return err
				})
				if err != nil {
					refused++
					if !v.Names(err) {
						t.Errorf("%s = %s: %v; want a config error naming %s", v.Path, v.Value, err, v.Key)
					}
				} else if testing.Verbose() {
					t.Logf("accepted %s = %s", v.Path, v.Value)
				}
			}
			t.Logf("%d variants, %d refused", len(vs), refused)
		})
	}
	t.Logf("%d variants in all", total)
}

// runBounded runs f for variant v, failing the test on a panic or when it
// takes longer than caseLimit; it returns f's error.
func runBounded(t *testing.T, v cfgcheck.Variant, f func() error) error {
	t.Helper()
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p}
			}
		}()
		done <- result{err: f()}
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Errorf("%s = %s: panic: %v", v.Path, v.Value, r.panic)
		}
		if d := time.Since(start); d > caseLimit {
			t.Errorf("%s = %s: took %v", v.Path, v.Value, d)
		}
		return r.err
	case <-time.After(10 * caseLimit):
		t.Fatalf("%s = %s: still running after %v", v.Path, v.Value, 10*caseLimit)
		return nil
	}
}

func TestReleasedConfigsValid(t *testing.T) {
	configs := map[string]string{
		"text_encoder": released.TextEncoder,
		"qformer":      released.QFormer,
		"unet":         released.UNet,
		"vae":          released.VAE,
	}
	for _, c := range BLIPDiffusion.Models() {
		if _, err := c.Parse([]byte(configs[c.Name])); err != nil {
			t.Errorf("released %s: %v", c.ConfigFile, err)
		}
	}
}
