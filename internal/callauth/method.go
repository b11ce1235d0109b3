package callauth

import (
	"context"

	"google.golang.org/grpc"
)

func methodFromContext(ctx context.Context) (string, bool) {
	return grpc.Method(ctx)
}
