// demo_full.go embeds the whole demo pack and the demo photo.

//go:build !devicekit

package www

import "embed"

//go:embed models/tiny demo/subject.png
var demo embed.FS
