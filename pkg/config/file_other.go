//go:build !unix

package config

import "os"

// openNoBlock opens path for reading. Windows has no FIFOs in the file
// system namespace and no owner uid to compare; the checks are Unix only.
func openNoBlock(path string) (*os.File, error) { return os.Open(path) }

func fileUID(os.FileInfo) (int, bool) { return 0, false }
