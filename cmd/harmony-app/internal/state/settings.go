// settings.go: what the app remembers between runs (the model, the photo
// and every option), as JSON in the user's config folder. Options are kept
// in their string forms and go back through Set, so a file written by an
// older version, or edited by hand, can never bypass the pipeline's checks.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"harmony/engine/pipeline"
)

// Settings are the remembered choices.
type Settings struct {
	Model   string            `json:"model"`   // model location ("" = the bundled demo)
	Photo   string            `json:"photo"`   // photo path ("" = the demo photo)
	Options map[string]string `json:"options"` // pipeline option name → value
}

// SettingsPath is where the settings live: os.UserConfigDir()/harmony/app.json.
func SettingsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("harmony-app: settings: %v", err)
	}
	return filepath.Join(dir, "harmony", "app.json"), nil
}

// ReadSettings reads the settings file; a missing file is no settings.
func ReadSettings(path string) (Settings, error) {
	var s Settings
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("harmony-app: settings: %v", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return Settings{}, fmt.Errorf("harmony-app: settings %s: %v", path, err)
	}
	return s, nil
}

// WriteSettings writes s to path, creating its folder; it writes a new
// file and renames it over the old one, so a crash never leaves half a file.
func WriteSettings(path string, s Settings) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("harmony-app: settings: %v", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("harmony-app: settings: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("harmony-app: settings: %v", err)
	}
	return nil
}

// Settings returns the current choices; model and photo are the locations
// the window knows them by.
func (a *App) Settings(model, photo string) Settings {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Settings{Model: model, Photo: photo, Options: map[string]string{}}
	for _, info := range pipeline.OptionList() {
		s.Options[info.Name] = a.opts.Get(info.Name)
	}
	return s
}

// Apply sets the remembered options (through Set) and reads the photo; it
// returns every refusal joined, having applied the rest.
func (a *App) Apply(s Settings) error {
	var errs []error
	for _, info := range pipeline.OptionList() {
		if v, ok := s.Options[info.Name]; ok {
			if err := a.Set(info.Name, v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if s.Photo != "" {
		if err := a.OpenPhoto(s.Photo); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
