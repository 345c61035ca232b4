// Package version says which attunectl this is. Release builds stamp the
// variables with -ldflags (see .goreleaser.yaml); other builds fall back to
// what the Go toolchain recorded in the binary.
package version

import (
	"runtime"
	"runtime/debug"
)

// Stamped by the release build:
//
//	-X github.com/attune-automation/attunectl/pkg/version.version=1.2.3
//	-X github.com/attune-automation/attunectl/pkg/version.commit=abc1234
//	-X github.com/attune-automation/attunectl/pkg/version.date=2026-11-26T12:00:00Z
var (
	version = ""
	commit  = ""
	date    = ""
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Get returns the stamped values, filled in from the build information
// where the release build did not stamp them.
func Get() Info {
	info := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// String is the version alone, used as the sensor's sensor_version.
func String() string { return Get().Version }
