package server

import (
	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
)

// auditService serves the ballot log read-only.
type auditService struct {
	doorstepv1.UnimplementedAuditServiceServer
	s *Server
}
