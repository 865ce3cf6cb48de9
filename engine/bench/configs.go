// configs.go: the medium UNet of the benchmarks (the SD-1.5 layout at a
// quarter of the channels, the shape the onnxruntime peer comparison
// uses), derived from the released config (engine/models/released).
package bench

import (
	"encoding/json"
	"fmt"

	"harmony/engine/models/released"
)

// MediumUNetChannels are the medium UNet's block_out_channels: SD 1.5 at a
// quarter of the width (37.5 M parameters instead of 860 M), the medium
// model of the onnxruntime peer comparison.
var MediumUNetChannels = []int{64, 128, 256, 256}

// UNetConfigJSON returns SD 1.5's UNet config with other
// block_out_channels (nil: SD 1.5's own).
func UNetConfigJSON(channels []int) []byte {
	if channels == nil {
		return []byte(released.UNet)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(released.UNet), &m); err != nil {
		panic(fmt.Sprintf("bench: built-in unet config: %v", err))
	}
	m["block_out_channels"] = channels
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err)
	}
	return out
}
