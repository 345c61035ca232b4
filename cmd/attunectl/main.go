// Command attunectl is the operator's tool for the sensor workers of an
// Attune automation platform. See the README for the command reference.
package main

import (
	"context"
	"os"

	"github.com/attune-automation/attunectl/pkg/cli"
)

func main() {
	app := cli.NewApp()
	ctx, stop := cli.SignalContext(context.Background(), app.Err)
	code := cli.Execute(ctx, app, os.Args[1:])
	stop()
	os.Exit(code)
}
