package cli

import (
	"flag"
	"testing"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// update rewrites golden files and completions/ from the current output:
//
//	go test ./pkg/cli -update
var update = flag.Bool("update", false, "rewrite golden files and completions/ from the current output")

func TestMain(m *testing.M) { dbtest.Main(m) }
