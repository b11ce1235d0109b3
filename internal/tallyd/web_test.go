package tallyd_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// webElection is an election on a tallyd that also serves the browser
// side, with an HTTPS client pinned to its certificate.
type webElection struct {
	h    *harness
	com  *signedtest.Author
	base string // https://host:port
	http *http.Client
}

func newWebElection(t *testing.T) *webElection {
	t.Helper()
	clk := &clock{t: base}
	h := startHarnessWith(t, tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebListen: "127.0.0.1:0", Now: clk.Now}, clk)
	com := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "committee", base.Add(-time.Hour))
	sc := loadScenario(t, com.Public())
	h.create(t, com, com.Committee(t, signedtest.Define(sc.def)))
	h.committee(t, com.Committee(t, signedtest.Roster(sc.units)), com.Committee(t, signedtest.Open(sc.units)))
	tc, err := servercert.ClientConfig(h.srv.Pin(), "")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &webElection{h: h, com: com, base: "https://" + h.srv.WebAddr(), http: &http.Client{Transport: tr}}
}

// signed adds the headers callauth would add to a gRPC call.
func signWeb[T any](t *testing.T, w *webElection, a *signedtest.Author, method string, req *connect.Request[T]) *connect.Request[T] {
	t.Helper()
	hash, err := callauth.RequestHash(any(req.Msg).(proto.Message))
	if err != nil {
		t.Fatal(err)
	}
	md, err := (&callauth.Signer{ElectionID: testElection, KeyID: a.ID, Key: a.Key, Now: w.h.clock.Now}).Metadata(method, hash)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range md {
		for _, v := range vs {
			req.Header().Add(k, v)
		}
	}
	return req
}

// TestWebProtocols reaches Doorstep's services from the browser side in
// both of the protocols browsers speak, and checks that the gRPC port's
// rules hold there too: the same roles, the same signatures, the same
// answers.
func TestWebProtocols(t *testing.T) {
	w := newWebElection(t)
	const tallyPath = "/doorstep.v1.ElectionService/GetTally"
	for _, p := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect", nil},
		{"connect json", []connect.ClientOption{connect.WithProtoJSON()}},
		{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
	} {
		t.Run(p.name, func(t *testing.T) {
			tally := connect.NewClient[doorstepv1.GetTallyRequest, doorstepv1.GetTallyResponse](w.http, w.base+tallyPath, p.opts...)
			req := func() *connect.Request[doorstepv1.GetTallyRequest] {
				return connect.NewRequest(&doorstepv1.GetTallyRequest{ElectionId: testElection})
			}
			resp, err := tally.CallUnary(ctx(t), signWeb(t, w, w.com, tallyPath, req()))
			if err != nil {
				t.Fatalf("signed committee call: %v", err)
			}
			want, err := w.h.elec.GetTally(ctx(t), &doorstepv1.GetTallyRequest{ElectionId: testElection}, w.h.as(w.com))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(resp.Msg, want) {
				t.Errorf("the web's tally differs from gRPC's:\n web %v\ngrpc %v", resp.Msg, want)
			}

			// Unsigned, and signed for another method: refused as on gRPC.
			_, err = tally.CallUnary(ctx(t), req())
			if got := connect.CodeOf(err); got != connect.CodeUnauthenticated && got != connect.CodePermissionDenied {
				t.Errorf("unsigned committee call: got %v, want it refused", err)
			}
			_, err = tally.CallUnary(ctx(t), signWeb(t, w, w.com, "/doorstep.v1.ElectionService/ListDevices", req()))
			if got := connect.CodeOf(err); got != connect.CodeUnauthenticated {
				t.Errorf("call signed for another method: got %v, want Unauthenticated", err)
			}

			// A public call needs nothing.
			info := connect.NewClient[doorstepv1.GetServerInfoRequest, doorstepv1.GetServerInfoResponse](w.http, w.base+"/doorstep.v1.SyncService/GetServerInfo", p.opts...)
			ir, err := info.CallUnary(ctx(t), connect.NewRequest(&doorstepv1.GetServerInfoRequest{}))
			if err != nil {
				t.Fatalf("public call: %v", err)
			}
			if ir.Msg.GetFingerprint() != w.h.srv.Fingerprint() {
				t.Errorf("server info: fingerprint %q, want %q", ir.Msg.GetFingerprint(), w.h.srv.Fingerprint())
			}

			// The live tally streams, signed on its request like a unary call.
			const watchPath = "/doorstep.v1.ElectionService/WatchTally"
			watch := connect.NewClient[doorstepv1.WatchTallyRequest, doorstepv1.WatchTallyResponse](w.http, w.base+watchPath, p.opts...)
			c, cancel := context.WithCancel(ctx(t))
			defer cancel()
			st, err := watch.CallServerStream(c, signWeb(t, w, w.com, watchPath, connect.NewRequest(&doorstepv1.WatchTallyRequest{ElectionId: testElection})))
			if err != nil {
				t.Fatal(err)
			}
			if !st.Receive() {
				t.Fatalf("no first overview: %v", st.Err())
			}
			if got := st.Msg().GetOverview().GetTally(); !proto.Equal(got, want.GetTally()) {
				t.Errorf("the watched tally differs: %v, want %v", got, want.GetTally())
			}
			cancel()
			st.Close()
		})
	}
}

// TestWebPages checks the pages' own rules: the landing page, the
// headers that keep pages to themselves, and nothing else served.
func TestWebPages(t *testing.T) {
	w := newWebElection(t)
	get := func(t *testing.T, path string) (*http.Response, string) {
		t.Helper()
		resp, err := w.http.Get(w.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	resp, body := get(t, "/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Doorstep") {
		t.Errorf("landing page: %d %q", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("served over %s, want HTTP/2", resp.Proto)
	}
	for k, v := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, path := range []string{"/nothing", "/doorstep.v1.NoService/Call", "/grpc.health.v1.Health/Check"} {
		if resp, _ := get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}

}

// TestWebPlaintextLoopbackOnly: plaintext on the web side, like on the
// gRPC side, only on loopback.
func TestWebPlaintextLoopbackOnly(t *testing.T) {
	_, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebListen: "0.0.0.0:0", Plaintext: true})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("plaintext web on 0.0.0.0: %v, want refused", err)
	}
}
