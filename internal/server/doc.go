// Package server is tallyd's gRPC layer: it checks each call's shape and
// identity, calls the store, and maps domain errors to status codes through
// one table (errors.go). It holds no state of its own.
package server
