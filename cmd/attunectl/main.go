// Command attunectl is the operator's tool for the sensor workers of an
// Attune automation platform. `attunectl help commands` is the command reference.
package main

import (
	"context"
	"os"

	"github.com/attune-automation/attunectl/pkg/cli"
)

func main() {
	app := cli.NewApp()
	// The signal handling lasts until the process exits: its stop function
	// is not called, as signal.Stop waits for the signal machinery to go
	// idle (up to milliseconds) for a process that is about to end anyway.
	ctx, _ := cli.SignalContext(context.Background(), app.Err)
	code := cli.Execute(ctx, app, os.Args[1:])
	os.Exit(code)
}
