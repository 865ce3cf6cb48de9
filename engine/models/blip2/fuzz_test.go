package blip2

// FuzzConfig: ParseConfig and Tensors on arbitrary config.json bytes, as
// the loader's shape check meets a downloaded file (modeltest.FuzzConfig
// says what must hold).

import (
	"testing"

	"harmony/engine/models/modeltest"
	"harmony/engine/models/released"
)

func FuzzConfig(f *testing.F) {
	modeltest.FuzzConfig(f, "blip2", released.QFormer, ParseConfig, Tensors)
}
