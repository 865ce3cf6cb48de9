// info.go describes what a device offers: the limits the engine reads,
// the specification's defaults (what Options.DefaultLimits opens with), and
// the adapter facts the kernels choose their variants by.
package gpu

// Limits are the device limits the engine cares about.
type Limits struct {
	MaxStorageBufferBindingSize       uint64 // bytes one storage binding may span
	MaxBufferSize                     uint64 // bytes one buffer may hold
	MaxUniformBufferBindingSize       uint64 // bytes one uniform binding may span
	MaxComputeWorkgroupStorageSize    uint32 // bytes of var<workgroup> per pipeline
	MaxComputeInvocationsPerWorkgroup uint32 // threads per workgroup
	MaxComputeWorkgroupSizeX          uint32 // threads along x
	MaxComputeWorkgroupSizeY          uint32 // threads along y
	MaxComputeWorkgroupSizeZ          uint32 // threads along z
	MaxComputeWorkgroupsPerDimension  uint32 // workgroups per grid dimension
	MaxStorageBuffersPerShaderStage   uint32 // storage bindings per kernel
	MinStorageBufferOffsetAlignment   uint32 // bytes; binding offsets are multiples of this
	MinUniformBufferOffsetAlignment   uint32 // bytes; uniform (dynamic) offsets likewise
}

// SpecDefaultLimits are the WebGPU specification's default limits: what every
// conforming adapter grants.
func SpecDefaultLimits() Limits {
	return Limits{
		MaxStorageBufferBindingSize:       128 << 20,
		MaxBufferSize:                     256 << 20,
		MaxUniformBufferBindingSize:       64 << 10,
		MaxComputeWorkgroupStorageSize:    16 << 10,
		MaxComputeInvocationsPerWorkgroup: 256,
		MaxComputeWorkgroupSizeX:          256,
		MaxComputeWorkgroupSizeY:          256,
		MaxComputeWorkgroupSizeZ:          64,
		MaxComputeWorkgroupsPerDimension:  65535,
		MaxStorageBuffersPerShaderStage:   8,
		MinStorageBufferOffsetAlignment:   256,
		MinUniformBufferOffsetAlignment:   256,
	}
}

// Info describes the opened adapter and device.
type Info struct {
	Backend       string   // "vulkan", "metal", "browser", …
	Adapter       string   // adapter / driver description
	Vendor        string   // vendor name where the adapter reports one
	Architecture  string   // architecture where the adapter reports one
	Fallback      bool     // a software (CPU) adapter
	AdapterLimits Limits   // what the adapter offers
	Limits        Limits   // what the device was granted
	Features      []string // adapter features, WebGPU spelling
	ShaderF16     bool     // f16 arithmetic in WGSL works on this device (feature granted and probe compiled)
	F16Note       string   // why ShaderF16 is false when the adapter advertises the feature
	Subgroups     bool     // the adapter offers subgroups
	SubgroupSize  uint32   // lanes per subgroup the kernels may assume (SubgroupProbe passed); 0: subgroup kernels off
	SubgroupNote  string   // why SubgroupSize is 0 when the adapter offers subgroups
	DefaultMode   bool     // opened with Options.DefaultLimits
}
