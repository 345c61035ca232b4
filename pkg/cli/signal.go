package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext returns a context cancelled by the first SIGINT or SIGTERM,
// so that every command stops gracefully (a sensor deregisters, a watch
// ends). A second signal exits at once with status 130.
func SignalContext(parent context.Context, stderr io.Writer) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(stderr, "attunectl: second signal, exiting now")
		os.Exit(ExitInterrupt)
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel()
	}
}
