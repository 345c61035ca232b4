package placement

import (
	"context"

	"github.com/attune-automation/attunectl/pkg/fence"
)

// ReleaseFenced releases one lease under its fence, as a handover does.
func ReleaseFenced(ctx context.Context, p *Placer, f fence.Fence, reason string) error {
	_, err := releaseFenced(ctx, p.pool, []fence.Fence{f}, reason)
	return err
}
