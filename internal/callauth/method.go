package callauth

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// methodFromContext finds the full method name of the call being signed.
// On the client, gRPC passes it to per-RPC credentials as RequestInfo;
// grpc.Method only knows it on the server side.
func methodFromContext(ctx context.Context) (string, bool) {
	if ri, ok := credentials.RequestInfoFromContext(ctx); ok && ri.Method != "" {
		return ri.Method, true
	}
	return grpc.Method(ctx)
}
