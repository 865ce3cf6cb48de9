// config.go reads diffusers' scheduler_config.json
// into a Config, applying the defaults of the scheduler class the config is
// read for, the way diffusers' from_config does: a field missing from the
// file takes the target class's default, and fields the class does not know
// are ignored.
package sched

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"

	"harmony/engine/cfgcheck"
)

// ErrUnsupported marks a configuration this package understands but does not
// implement (a prediction type, thresholding, a beta schedule…), as opposed
// to a malformed file.
var ErrUnsupported = errors.New("sched: unsupported configuration")

// Scheduler class names as they appear in "_class_name".
const (
	ClassPNDM = "PNDMScheduler"
	ClassDDIM = "DDIMScheduler"
	ClassLMS  = "LMSDiscreteScheduler"
)

// Config holds the scheduler_config.json fields that change the arithmetic.
type Config struct {
	ClassName         string    // "_class_name": PNDMScheduler, DDIMScheduler or LMSDiscreteScheduler
	NumTrainTimesteps int       // T, length of the training schedule (1000)
	BetaStart         float64   // β at t = 0 (for "linear" and "scaled_linear")
	BetaEnd           float64   // β at t = T−1
	BetaSchedule      string    // "linear", "scaled_linear" or "squaredcos_cap_v2"
	TrainedBetas      []float64 // explicit β (overrides BetaSchedule) when not nil
	SetAlphaToOne     bool      // final ᾱ used past t = 0: 1 when true, ᾱ_0 when false
	StepsOffset       int       // added to every "leading" timestep
	PredictionType    string    // "epsilon", "v_prediction" (and "sample" for DDIM)
	TimestepSpacing   string    // "leading", "trailing" or "linspace" (LMS: always linspace, as in diffusers 0.11)

	// PNDM only.
	SkipPRKSteps bool // true: pure PLMS; false: 12 Runge–Kutta warm-up calls first

	// DDIM only.
	ClipSample          bool    // clamp the predicted x₀ to ±ClipSampleRange
	ClipSampleRange     float64 // bound for ClipSample
	Thresholding        bool    // dynamic thresholding (not implemented: error)
	RescaleBetasZeroSNR bool    // zero terminal SNR rescale (not implemented: error)
}

// rawConfig has a pointer per field so that a missing key can take the
// target class's default instead of Go's zero value.
type rawConfig struct {
	ClassName           *string    `json:"_class_name"`
	NumTrainTimesteps   *int       `json:"num_train_timesteps"`
	BetaStart           *float64   `json:"beta_start"`
	BetaEnd             *float64   `json:"beta_end"`
	BetaSchedule        *string    `json:"beta_schedule"`
	TrainedBetas        *[]float64 `json:"trained_betas"`
	SetAlphaToOne       *bool      `json:"set_alpha_to_one"`
	StepsOffset         *int       `json:"steps_offset"`
	PredictionType      *string    `json:"prediction_type"`
	TimestepSpacing     *string    `json:"timestep_spacing"`
	SkipPRKSteps        *bool      `json:"skip_prk_steps"`
	ClipSample          *bool      `json:"clip_sample"`
	ClipSampleRange     *float64   `json:"clip_sample_range"`
	Thresholding        *bool      `json:"thresholding"`
	RescaleBetasZeroSNR *bool      `json:"rescale_betas_zero_snr"`
}

// DefaultConfig returns the constructor defaults of a diffusers scheduler
// class (diffusers v0.25.1, PNDMScheduler.__init__ / DDIMScheduler.__init__;
// LMSDiscreteScheduler as diffusers v0.11.1 defines it, which ELITE pins).
func DefaultConfig(class string) (Config, error) {
	c := Config{
		ClassName:         class,
		NumTrainTimesteps: 1000,
		BetaStart:         0.0001,
		BetaEnd:           0.02,
		BetaSchedule:      "linear",
		PredictionType:    "epsilon",
		TimestepSpacing:   "leading",
		ClipSampleRange:   1,
	}
	switch class {
	case ClassPNDM:
		c.SetAlphaToOne = false
		c.SkipPRKSteps = false
	case ClassDDIM:
		c.SetAlphaToOne = true
		c.ClipSample = true
	case ClassLMS:
		c.TimestepSpacing = "linspace"
	default:
		return Config{}, fmt.Errorf("%w: scheduler class %q (want %s, %s or %s)", ErrUnsupported, class, ClassPNDM, ClassDDIM, ClassLMS)
	}
	return c, nil
}

// ParseConfig reads a scheduler_config.json for the class it names.
func ParseConfig(data []byte) (Config, error) {
	return ParseConfigAs(data, "")
}

// ParseConfigAs reads a scheduler_config.json for the given class (as
// diffusers' DDIMScheduler.from_config(pndm_config) does); class "" means
// the file's own "_class_name". Missing fields take that class's defaults.
func ParseConfigAs(data []byte, class string) (Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return Config{}, fmt.Errorf("sched: scheduler config: %w", err)
	}
	if class == "" {
		if r.ClassName == nil {
			return Config{}, errors.New("sched: scheduler config has no _class_name")
		}
		class = *r.ClassName
	}
	c, err := DefaultConfig(class)
	if err != nil {
		return Config{}, err
	}
	setInt(&c.NumTrainTimesteps, r.NumTrainTimesteps)
	setF64(&c.BetaStart, r.BetaStart)
	setF64(&c.BetaEnd, r.BetaEnd)
	setStr(&c.BetaSchedule, r.BetaSchedule)
	if r.TrainedBetas != nil {
		c.TrainedBetas = *r.TrainedBetas
	}
	setBool(&c.SetAlphaToOne, r.SetAlphaToOne)
	setInt(&c.StepsOffset, r.StepsOffset)
	setStr(&c.PredictionType, r.PredictionType)
	if class != ClassLMS {
		// diffusers 0.11's LMS has no timestep_spacing: always linspace.
		setStr(&c.TimestepSpacing, r.TimestepSpacing)
	}
	setBool(&c.SkipPRKSteps, r.SkipPRKSteps)
	setBool(&c.ClipSample, r.ClipSample)
	setF64(&c.ClipSampleRange, r.ClipSampleRange)
	setBool(&c.Thresholding, r.Thresholding)
	setBool(&c.RescaleBetasZeroSNR, r.RescaleBetasZeroSNR)
	return c, c.Validate()
}

// LoadConfig reads a scheduler_config.json file (native builds; the browser
// passes the bytes to ParseConfig).
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("sched: %w", err)
	}
	return ParseConfig(data)
}

// Validate refuses values the arithmetic cannot use. Unimplemented features
// give errors wrapping ErrUnsupported.
func (c Config) Validate() error {
	// Ranges first (typed *cfgcheck.ConfigError): the schedule arrays are
	// num_train_timesteps long, and a β outside (0, 1) makes ᾱ zero,
	// negative or NaN (scaled_linear takes its square root).
	ck := &cfgcheck.Checker{Pkg: "sched", File: ConfigFile}
	ck.Int("num_train_timesteps", c.NumTrainTimesteps, 2, cfgcheck.MaxTimesteps)
	if c.TrainedBetas != nil {
		if len(c.TrainedBetas) != c.NumTrainTimesteps {
			ck.Fail("trained_betas", nil, "has %d values, num_train_timesteps is %d", len(c.TrainedBetas), c.NumTrainTimesteps)
		}
		for i, b := range c.TrainedBetas {
			betaRange(ck, fmt.Sprintf("trained_betas[%d]", i), b)
		}
	} else {
		betaRange(ck, "beta_start", c.BetaStart)
		betaRange(ck, "beta_end", c.BetaEnd)
	}
	ck.Float("clip_sample_range", c.ClipSampleRange, -math.MaxFloat32, math.MaxFloat32)
	if err := ck.Err(); err != nil {
		return err
	}
	if c.TrainedBetas == nil {
		switch c.BetaSchedule {
		case "linear", "scaled_linear", "squaredcos_cap_v2":
		default:
			return fmt.Errorf("%w: beta_schedule %q", ErrUnsupported, c.BetaSchedule)
		}
	}
	switch c.TimestepSpacing {
	case "leading", "trailing", "linspace":
	default:
		return fmt.Errorf("%w: timestep_spacing %q", ErrUnsupported, c.TimestepSpacing)
	}
	switch c.ClassName {
	case ClassPNDM:
		switch c.PredictionType {
		case "epsilon", "v_prediction":
		default:
			return fmt.Errorf("%w: PNDM prediction_type %q (epsilon or v_prediction)", ErrUnsupported, c.PredictionType)
		}
	case ClassDDIM:
		switch c.PredictionType {
		case "epsilon", "v_prediction", "sample":
		default:
			return fmt.Errorf("%w: DDIM prediction_type %q (epsilon, v_prediction or sample)", ErrUnsupported, c.PredictionType)
		}
		if c.Thresholding {
			return fmt.Errorf("%w: DDIM thresholding", ErrUnsupported)
		}
		if c.RescaleBetasZeroSNR {
			return fmt.Errorf("%w: DDIM rescale_betas_zero_snr", ErrUnsupported)
		}
		if c.ClipSample && !(c.ClipSampleRange > 0) {
			return fmt.Errorf("sched: clip_sample_range %v must be > 0", c.ClipSampleRange)
		}
	case ClassLMS:
		switch c.PredictionType {
		case "epsilon", "v_prediction":
		default:
			return fmt.Errorf("%w: LMS prediction_type %q (epsilon or v_prediction)", ErrUnsupported, c.PredictionType)
		}
	default:
		return fmt.Errorf("%w: scheduler class %q", ErrUnsupported, c.ClassName)
	}
	ck.Int("steps_offset", c.StepsOffset, 0, c.NumTrainTimesteps-1)
	return ck.Err()
}

// ConfigFile is where the scheduler config lives in a diffusers checkpoint
// (the path its errors name).
const ConfigFile = "scheduler/scheduler_config.json"

// betaRange checks that a noise variance β lies in (0, 1).
func betaRange(ck *cfgcheck.Checker, field string, b float64) {
	if !(b > 0 && b < 1) {
		ck.Fail(field, b, "must be in (0, 1)")
	}
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

func setF64(dst *float64, v *float64) {
	if v != nil {
		*dst = *v
	}
}

func setStr(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func setBool(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}
