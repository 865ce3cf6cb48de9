module harmony

go 1.26.0

require (
	github.com/cogentcore/webgpu v0.23.0
	github.com/stretchr/testify v1.12.1
	github.com/x448/float16 v0.8.4
	golang.org/x/image v0.48.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
