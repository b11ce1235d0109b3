package tallyd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"connectrpc.com/vanguard/vanguardgrpc"
	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/dashboard"
	"github.com/doorstep-vote/doorstep/internal/phoneapp"
	"github.com/doorstep-vote/doorstep/internal/server"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// The browser side of tallyd: the front ends (the canvasser's app, the
// committee's dashboard) and, for them, Connect and gRPC-Web answered by
// the very grpc-go services and checks of the gRPC port, through vanguard.
// It serves on its own address with the same certificate.

// webServer is the HTTPS (or, on loopback for tests, HTTP) server.
type webServer struct {
	srv  *http.Server
	lis  net.Listener
	done chan error
}

// frontEnd is a web front end mounted at a path.
type frontEnd struct {
	path, title string
	handler     http.Handler
}

// frontEnds lists the web front ends tallyd serves, one line each.
func frontEnds(services *server.Server, st *store.Store, cfg Config) []frontEnd {
	return []frontEnd{
		{phoneapp.Path, "上门投票 · The canvasser's app", phoneapp.Handler()},
		{dashboard.Path, "选举实时看板 · Election dashboard", dashboard.New(dashboard.Config{Watch: services.Overviews().Watch, SignIn: services.SignIn,
			Access: services.ReadAccess, Definition: st.Definition, Now: cfg.Now, Logger: cfg.Logger, Insecure: cfg.Plaintext})},
	}
}

// webHandler routes the browser side: Doorstep's services by their gRPC
// paths, each front end under its own path, and a page linking them.
func webHandler(gs *grpc.Server, fronts []frontEnd) (http.Handler, error) {
	rpc, err := vanguardgrpc.NewTranscoder(gs)
	if err != nil {
		return nil, fmt.Errorf("serve Connect and gRPC-Web: %w", err)
	}
	mux := http.NewServeMux()
	for _, sd := range []grpc.ServiceDesc{doorstepv1.SyncService_ServiceDesc, doorstepv1.ElectionService_ServiceDesc, doorstepv1.AuditService_ServiceDesc} {
		mux.Handle("/"+sd.ServiceName+"/", rpc)
	}
	sort.Slice(fronts, func(i, j int) bool { return fronts[i].path < fronts[j].path })
	for _, f := range fronts {
		mux.Handle(f.path, f.handler)
	}
	mux.Handle("GET /{$}", landing(fronts))
	return securityHeaders(mux), nil
}

var landingPage = template.Must(template.New("landing").Parse(`<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Doorstep</title></head>
<body><h1>Doorstep</h1><ul>{{range .}}<li><a href="{{.Path}}">{{.Title}}</a></li>{{else}}<li>No web front end is served here.</li>{{end}}</ul></body></html>
`))

func landing(fronts []frontEnd) http.Handler {
	type link struct{ Path, Title string }
	var links []link
	for _, f := range fronts {
		links = append(links, link{f.path, f.title})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		landingPage.Execute(w, links)
	})
}

// securityHeaders keeps the pages to themselves: no framing, no sniffing,
// no referrers leaving the server, scripts and connections only to it.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/doorstep.") {
			h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		}
		next.ServeHTTP(w, r)
	})
}

// startWeb serves h on addr: with tlsCfg, or in plaintext (loopback only,
// checked by the caller) when tlsCfg is nil.
func startWeb(addr string, h http.Handler, tlsCfg *tls.Config, wrap func(net.Listener) net.Listener, log *slog.Logger) (*webServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for the web: %w", addr, err)
	}
	if wrap != nil {
		lis = wrap(lis)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ws := &webServer{srv: srv, lis: lis, done: make(chan error, 1)}
	if tlsCfg == nil {
		go func() { ws.done <- srv.Serve(lis) }()
		return ws, nil
	}
	// ServeTLS, not a tls.Listener: it also sets up HTTP/2.
	srv.TLSConfig = tlsCfg.Clone()
	go func() { ws.done <- srv.ServeTLS(lis, "", "") }()
	return ws, nil
}

// stop lets requests in flight finish for a while, then closes.
func (ws *webServer) stop() error {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := ws.srv.Shutdown(c)
	if serr := <-ws.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
