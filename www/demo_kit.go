// demo_kit.go: the build for a GPU machine's check (tag devicekit, made by
// .ci/device-prepare) embeds the demo pack's manifest and tokenizer but
// not its weights, which would be most of the compressed binary that must
// travel there: `harmony synth` takes the tokenizer from it, and the check
// runs the tiny model from testdata/. Loading the demo model fails there,
// naming the missing shard.

//go:build devicekit

package www

import "embed"

//go:embed models/tiny/manifest.json models/tiny/tokenizer demo/subject.png
var demo embed.FS
