// The BLIP-Diffusion pipeline's prompt building: the conditional prompt is "a {target} {prompt}"
// repeated to amplify it, and tokenized to leave room for the Q-Former's
// query tokens inside the text encoder's 77 positions.
package tokenizer

import "strings"

// BuildPrompt returns the pipeline's amplified prompt: f"a {target}
// {prompt.strip()}" repeated int(strength·reps) times, joined by ", "
// (empty when that count is ≤ 0). The reference defaults are strength 1.0
// and reps 20.
func BuildPrompt(prompt, target string, strength float64, reps int) string {
	n := int(strength * float64(reps)) // Python int(): truncation toward zero
	if n <= 0 {
		return ""
	}
	one := "a " + target + " " + pyStrip(prompt)
	return strings.Repeat(one+", ", n-1) + one
}

// EncodePrompt builds the pipeline's prompt and tokenizes it to exactly
// maxLen ids with truncation (maxLen = model_max_length − num_query_tokens,
// 77 − 16 = 61 for BLIP-Diffusion). With reps 20 a prompt of more than one
// or two words is always truncated: that is the reference's design, so
// callers should warn only when the first repetition itself is cut
// (PromptOverflow > 0).
func (t *CLIP) EncodePrompt(prompt, target string, strength float64, reps, maxLen int) (Encoding, error) {
	return t.EncodePadded(BuildPrompt(prompt, target, strength, reps), maxLen)
}

// PromptOverflow returns how many tokens of one repetition of the built
// prompt ("a {target} {prompt}") do not fit in maxLen with BOS and EOS;
// 0 when it fits. This is what deserves a warning: the reference silently
// truncates the repetitions.
func (t *CLIP) PromptOverflow(prompt, target string, maxLen int) int {
	return max(0, len(t.Encode(BuildPrompt(prompt, target, 1, 1)))+2-maxLen)
}
