// Keyboard tests: Tab and Shift+Tab move the focus through the form's
// controls in reading order (disabled ones skipped, wrapping at the end),
// Enter generates (from the form or from a focused text field) and Esc
// cancels, with key events queued on Gio's input router as the window
// queues them.
package ui

import (
	"context"
	"fmt"
	"testing"

	"gioui.org/io/event"
	"gioui.org/io/input"
	"gioui.org/io/key"
	"gioui.org/widget"
	"github.com/stretchr/testify/require"

	"harmony/cmd/harmony-app/internal/state"
	"harmony/engine/gpu/gputest"
)

// press queues a key press and its release as the window does: Tab
// becomes a focus move when no handler takes it.
func (r *renderer) press(name key.Name, mods key.Modifiers) {
	ev := key.Event{Name: name, Modifiers: mods, State: key.Press}
	r.router.WakeupTime() // the window reads it after every frame
	if name == key.NameTab {
		r.router.Queue(input.SystemEvent{Event: ev})
		if _, handled := r.router.WakeupTime(); !handled {
			dir := key.FocusForward
			if mods == key.ModShift {
				dir = key.FocusBackward
			}
			r.router.MoveFocus(dir)
		}
	} else {
		r.router.Queue(ev)
	}
	ev.State = key.Release
	r.router.Queue(ev)
}

// controls names every focusable control of u by its tag.
func controls(u *UI) map[event.Tag]string {
	m := map[event.Tag]string{
		&u.demoModel: "Demo model", &u.modelPath: "model path", &u.loadModel: "Load",
		&u.hubRepo: "hub repository", &u.hubGet: "Download", &u.hubCancel: "hub Cancel",
		&u.photoPath: "photo path", &u.openPhoto: "Open", &u.demoPhoto: "Demo photo",
		&u.dice: "Dice", &u.harmony: "Harmony", &u.advanced: "Advanced",
		&u.generate: "Generate", &u.cancel: "Cancel", &u.saveDir: "save folder",
		&u.encPath: "encoder path", &u.mapPath: "mappers path", &u.mask.clear: "Clear mask",
		&u.mask.path: "mask path", &u.mask.load: "Load mask",
		&u.score.clip: "CLIP weights", &u.score.dino: "DINO weights", &u.score.load: "Load scorers",
	}
	for i := range u.save {
		m[&u.save[i]] = fmt.Sprintf("Save %d", i)
	}
	for name, f := range u.fields {
		m[&f.editor] = name
		m[&f.toggle] = name + " switch"
	}
	for dir, row := range u.rows {
		m[&row.load], m[&row.del] = "Load "+dir, "Delete "+dir
	}
	return m
}

// focused names the control holding the focus ("" for none).
func (r *renderer) focused(u *UI) string {
	src := r.router.Source()
	for tag, name := range controls(u) {
		if src.Focused(tag) {
			return name
		}
	}
	for name, e := range map[string]*widget.Enum{"base": &u.base, "mask tool": &u.mask.tool} {
		if k, ok := e.Focused(); ok {
			return name + " " + k
		}
	}
	return ""
}

func TestKeyboard(t *testing.T) {
	gputest.Default(t)
	a := state.New(state.Config{CacheDir: t.TempDir()})
	t.Cleanup(a.Close)
	require.NoError(t, a.Load(context.Background(), state.DemoModel))
	r := &renderer{t: t} // the router alone: focus needs no pixels
	u := New(a, "", "")
	r.frame(u, "")
	require.Equal(t, "", r.focused(u))

	// Tab: the controls in reading order, top to bottom and left to
	// right; the Cancel buttons are disabled while nothing runs.
	order := []string{"base blipdiffusion", "base elite", "Demo model", "model path", "Load", "hub repository", "Download",
		"photo path", "Open", "Demo photo", "class", "prompt", "negative",
		"steps", "guidance", "seed", "Dice", "width", "height", "Harmony", "Advanced", "Generate",
		"CLIP weights", "DINO weights", "Load scorers"}
	var got []string
	for range order {
		r.press(key.NameTab, 0)
		r.frame(u, "")
		got = append(got, r.focused(u))
	}
	require.Equal(t, order, got)
	// It wraps around, and Shift+Tab goes back.
	r.press(key.NameTab, 0)
	r.frame(u, "")
	require.Equal(t, order[0], r.focused(u))
	r.press(key.NameTab, key.ModShift)
	r.frame(u, "")
	require.Equal(t, order[len(order)-1], r.focused(u))
	r.press(key.NameTab, key.ModShift)
	r.frame(u, "")
	require.Equal(t, order[len(order)-2], r.focused(u))

	// Opened, the advanced panel (drawn under the form) follows Generate.
	for i := 0; i < 10 && r.focused(u) != "Advanced"; i++ {
		r.press(key.NameTab, key.ModShift)
		r.frame(u, "")
	}
	u.showAdv = true
	r.frame(u, "")
	require.Equal(t, "Advanced", r.focused(u))
	r.press(key.NameTab, 0)
	r.frame(u, "")
	require.Equal(t, "Generate", r.focused(u))
	r.press(key.NameTab, 0)
	r.frame(u, "")
	require.Equal(t, u.order[0], r.focused(u), "the first advanced option does not follow Generate")
	u.showAdv = false

	// Enter in a text field generates; Esc cancels the run. Enough steps
	// that the run is still going when Esc arrives.
	require.NoError(t, a.Set("steps", "200"))
	for r.focused(u) != "prompt" {
		r.press(key.NameTab, 0)
		r.frame(u, "")
	}
	r.press(key.NameReturn, 0)
	r.frame(u, "")
	require.Equal(t, state.Generating, a.Snapshot().Phase, "Enter in the prompt did not generate")
	r.frame(u, "")
	require.Equal(t, "Cancel", after(r, u, "Advanced"), "Cancel does not follow Advanced while generating (Generate is disabled)")
	r.press(key.NameEscape, 0)
	r.frame(u, "")
	a.Wait()
	require.Equal(t, state.Cancelled, a.Snapshot().Phase, "Esc did not cancel")

	// With the focus on no text field, Enter generates too.
	require.NoError(t, a.Set("steps", "2"))
	u2 := New(a, "", "")
	r2 := &renderer{t: t}
	r2.frame(u2, "")
	r2.press(key.NameReturn, 0)
	r2.frame(u2, "")
	a.Wait()
	require.Equal(t, state.Done, a.Snapshot().Phase, "Enter did not generate")
}

// after tabs to the control named from, then once more, and names the
// control focused then.
func after(r *renderer, u *UI, from string) string {
	for i := 0; i < 60 && r.focused(u) != from; i++ {
		r.press(key.NameTab, 0)
		r.frame(u, "")
	}
	r.press(key.NameTab, 0)
	r.frame(u, "")
	return r.focused(u)
}
