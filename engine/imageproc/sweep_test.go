// sweep_test.go runs the preprocessor config reader on hostile variants
// of the tiny checkpoint's preprocessor_config.json (each numeric field
// at 0, −1 and 10⁹): each must give a *cfgcheck.ConfigError naming the
// field or a config the processor can run, without panicking.
package imageproc

import (
	"os"
	"testing"

	"harmony/engine/cfgcheck"
)

func TestConfigSweep(t *testing.T) {
	data, err := os.ReadFile("../../testdata/blipdiffusion-tiny/image_processor/preprocessor_config.json")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := cfgcheck.Variants(data, cfgcheck.HostileValues)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, v := range vs {
		_, err := ParseConfig(v.JSON)
		if err != nil {
			refused++
			if !v.Names(err) {
				t.Errorf("%s = %s: %v; want a config error naming %s", v.Path, v.Value, err, v.Key)
			}
		}
	}
	t.Logf("%d variants, %d refused", len(vs), refused)
}
