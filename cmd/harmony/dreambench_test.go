// dreambench_test.go: `harmony dreambench` on two tiny subjects, two
// prompts and two seeds with the bundled tiny model and the tiny CLIP,
// interrupted after a few pictures and resumed: the pictures already
// written are neither regenerated nor rewritten (counts and bytes), and
// the report is complete. Also the DreamBench prompt mapping and the
// grid's refusals.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/eval"
	"harmony/engine/pngmeta"
	"harmony/loader/golden"
	"harmony/www"
)

func TestBlipPrompt(t *testing.T) {
	for _, c := range []struct{ tmpl, class, tc, prompt, text string }{
		{"a {0} {1} in the jungle", "dog", "dog", "in the jungle", "a dog in the jungle"},
		{"a red {0} {1}", "teapot", "red teapot", "", "a red teapot"},
		{"a cube shaped {0} {1}", "stuffed animal", "cube shaped stuffed animal", "", "a cube shaped stuffed animal"},
	} {
		tc, p := blipPrompt(c.tmpl, c.class)
		require.Equal(t, c.tc, tc)
		require.Equal(t, c.prompt, p)
		require.Equal(t, c.text, clipText(c.tmpl, c.class))
	}
	require.Len(t, promptSet("dreambench", nil, "dog"), 25)
	require.Len(t, promptSet("dreambench", nil, "vase"), 25)
	require.Contains(t, promptSet("dreambench", nil, "cat"), "a {0} {1} wearing a santa hat")
	require.Contains(t, promptSet("dreambench", nil, "can"), "a {0} {1} on top of a mirror")
	require.Nil(t, promptSet("deformable", nil, "can"))
	require.Len(t, dreambenchClasses, 30)
}

// dbData makes a DreamBench-layout folder of two subjects (a DreamBench
// name and one with class.txt), each with the demo photo and a second
// picture.
func dbData(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "data")
	for _, s := range []string{"dog2", "teapot_x"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, s), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, s, "00.png"), www.DemoPhoto(), 0o644))
		writePNG(t, filepath.Join(dir, s, "01.png"), 40, 30, [3]uint8{120, 90, 60}, nil)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "teapot_x", "class.txt"), []byte("teapot\n"), 0o644))
	return dir
}

func TestDreambenchResume(t *testing.T) {
	needGPU(t)
	data := dbData(t)
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"--data", data, "--out", out, "--clip", tinyCLIPDir(t), "--dino", golden.Path(t, "dino-tiny"), "--prompt-count", "2", "--seeds", "0,1",
		"--set", "steps=2", "--set", "width=32", "--set", "height=32", "--thumb", "32", "--quiet"}
	const total = 2 * 2 * 2 * 2 // subjects × prompts × seeds × methods

	// Interrupted after 5 pictures (as Ctrl-C would, during the 6th).
	ctx, cancel := context.WithCancel(context.Background())
	dbAfterImage = func(n int) {
		if n == 5 {
			cancel()
		}
	}
	t.Cleanup(func() { dbAfterImage = nil })
	err := runDreambench(ctx, args)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "interrupted after 5 new pictures")
	first := pictures(t, out)
	require.Len(t, first, 5, "only finished pictures are there")

	// Resumed: the 11 others are made, the 5 are neither made nor written again.
	dbAfterImage = nil
	require.NoError(t, runDreambench(context.Background(), args))
	run := readRun(t, out)
	require.Equal(t, total, run.Planned)
	require.Equal(t, total-5, run.Generated)
	require.Equal(t, 5, run.Skipped)
	require.Equal(t, total, run.AllGenerated, "over both runs")
	all := pictures(t, out)
	require.Len(t, all, total)
	for p, st := range first {
		require.Equal(t, st, all[p], "%s was rewritten", p)
	}
	// Every picture carries its parameters; Harmony's carry their mask.
	for p := range all {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		text, ok := pngmeta.Text(data, pngmeta.Key)
		require.True(t, ok, p)
		f := pngmeta.Parse(text).Fields
		require.Equal(t, "2", f["Steps"])
		if strings.Contains(p, ".harmony") {
			require.Equal(t, "harmony", f["Method"])
			_, err := os.Stat(strings.TrimSuffix(p, ".png") + ".mask.png")
			require.NoError(t, err, "mask of %s", p)
		} else {
			require.Equal(t, "plain", f["Method"])
		}
	}

	// Run again: nothing to generate (the model is not even loaded).
	require.NoError(t, runDreambench(context.Background(), args))
	run = readRun(t, out)
	require.Equal(t, 0, run.Generated)
	require.Equal(t, total, run.Skipped)

	// The report.
	rep := filepath.Join(out, "report")
	for _, f := range []string{"scores.json", "scores.csv", "table.md", "scatter.png", "contact-dog2.png", "contact-teapot_x.png"} {
		_, err := os.Stat(filepath.Join(rep, f))
		require.NoError(t, err, f)
	}
	table, err := os.ReadFile(filepath.Join(rep, "table.md"))
	require.NoError(t, err)
	require.Contains(t, string(table), "| tiny plain | 8 |")
	require.Contains(t, string(table), "| tiny harmony | 8 |")
	require.Contains(t, string(table), "| Δ tiny harmony − plain |")
	require.Contains(t, string(table), "| method | pictures | DINO | CLIP-I | CLIP-T | M-DINO | M-CLIP-I | DINO (1 ref) | CLIP-I (1 ref) |")
	var scores eval.Report
	js, err := os.ReadFile(filepath.Join(rep, "scores.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(js, &scores))
	for _, im := range scores.Images {
		for _, k := range []string{eval.CLIPIInput, eval.DINOInput} {
			_, ok := im.Scores[k]
			require.True(t, ok, "%s of %s against its subject's input photo", k, im.Name)
		}
	}

	// Other settings in the same folder are refused, not mixed.
	err = runDreambench(context.Background(), append(args, "--set", "guidance=5"))
	require.ErrorContains(t, err, "was made with other settings")
}

// pictures maps every generated picture (not masks) to its size and time.
func pictures(t *testing.T, out string) map[string]string {
	m := map[string]string{}
	err := filepath.Walk(filepath.Join(out, "images"), func(p string, info os.FileInfo, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !info.IsDir() && strings.HasSuffix(p, ".png") && !strings.HasSuffix(p, ".mask.png") {
			m[p] = fmt.Sprint(info.ModTime(), "/", info.Size())
		}
		return nil
	})
	require.NoError(t, err)
	return m
}

func readRun(t *testing.T, out string) dbRun {
	data, err := os.ReadFile(filepath.Join(out, "report", "run.json"))
	require.NoError(t, err)
	var r dbRun
	require.NoError(t, json.Unmarshal(data, &r))
	return r
}

func TestDreambenchBadInput(t *testing.T) {
	data := dbData(t)
	out := filepath.Join(t.TempDir(), "out")
	base := []string{"--data", data, "--out", out, "--no-eval", "--quiet"}
	require.NoError(t, os.MkdirAll(filepath.Join(data, "mystery"), 0o755))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", out}, "--data and --out are required"},
		{[]string{"--data", data, "--out", out}, "give --clip and/or --dino"},
		{append(base, "--methods", "dreambooth"), `"dreambooth" is not plain or harmony`},
		{append(base, "--seeds", "x"), `--seeds: "x" is not a seed`},
		{append(base, "--knobs", "nolabel"), "want LABEL:opt=val"},
		{append(base, "--knobs", "a:mask-threshold=2"), "mask-threshold"},
		{append(base, "--set", "seed=3"), "the grid sets seed itself"},
		{append(base, "--set", "steps=-1"), "steps"},
		{append(base, "--subjects", "dog2,nobody"), "no folder nobody"},
		{append(base, "--subjects", "mystery"), "subject mystery is not a DreamBench subject; name its class in"},
		{append(base, "--prompts", filepath.Join(data, "nope.txt")), "--prompts"},
		{[]string{"--data", filepath.Join(data, "nope"), "--out", out, "--no-eval"}, "--data"},
	} {
		err := runDreambench(context.Background(), c.args)
		require.ErrorContains(t, err, c.want, "%v", c.args)
	}
	_, err := os.Stat(out)
	require.True(t, os.IsNotExist(err), "nothing written")
}

// TestDreambenchELITE: ELITE is a base of the grid: its pictures are made
// from the placeholder prompt ("a S in the jungle") with the subject's
// photo mask, plain and with Harmony.
func TestDreambenchELITE(t *testing.T) {
	needGPU(t)
	data := dbData(t)
	require.NoError(t, os.MkdirAll(filepath.Join(data, "dog2", "masks"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "dog2", "masks", "00.png"), www.DemoPhoto(), 0o644)) // any channel > 0: the whole photo
	out := filepath.Join(t.TempDir(), "out")
	require.NoError(t, runDreambench(context.Background(), []string{"--data", data, "--out", out, "--no-eval", "--subjects", "dog2",
		"--elite", "etiny=" + golden.Path(t, "elite-tiny"), "--prompt-count", "1", "--seeds", "3",
		"--set", "steps=2", "--set", "width=32", "--set", "height=32", "--quiet"}))
	for _, m := range []struct{ dir, method string }{{"etiny.plain", "plain"}, {"etiny.harmony", "harmony"}} {
		data, err := os.ReadFile(filepath.Join(out, "images", m.dir, "dog2", "p00-s3.png"))
		require.NoError(t, err)
		text, ok := pngmeta.Text(data, pngmeta.Key)
		require.True(t, ok)
		p := pngmeta.Parse(text)
		require.Equal(t, "a S in the jungle", p.Prompt)
		require.Equal(t, "elite", p.Fields["Base"], text)
		require.Equal(t, m.method, p.Fields["Method"])
	}
	require.Equal(t, 2, readRun(t, out).Generated, "%+v", readRun(t, out))
}
