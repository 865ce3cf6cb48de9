// act.go maps activation names of model configs to the op set's Act.
package tensor

import "fmt"

// ParseAct maps a transformers / diffusers activation name (hidden_act,
// act_fn) to an Act. transformers' "gelu" is the exact erf form.
func ParseAct(name string) (Act, error) {
	switch name {
	case "quick_gelu":
		return ActQuickGELU, nil
	case "gelu":
		return ActGELU, nil
	case "silu", "swish":
		return ActSiLU, nil
	}
	return ActNone, fmt.Errorf("unsupported activation %q", name)
}
