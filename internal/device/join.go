package device

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
)

// Join enrolls the device in the election named by an enrollment code. It
// makes the device key (or reuses the one a failed join left), checks that
// the server's key has the fingerprint in the code and refuses otherwise,
// enrolls with the code's one-time token, and stores the enrollment at once:
// the token is spent. It then fetches, verifies and stores the election and
// the walk list. If only that last part fails, the device has joined and
// the error says to run sync to finish.
func (d *Device) Join(ctx context.Context, code enrollcode.Code, label string) (Enrollment, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	if err := code.Validate(); err != nil {
		return Enrollment{}, err
	}
	if err := election.CheckText("label", label, election.MaxTitleLen); err != nil {
		return Enrollment{}, err
	}
	if _, err := d.Enrollment(); err == nil {
		return Enrollment{}, ErrAlreadyEnrolled
	}
	key, err := loadOrCreateKey(filepath.Join(d.dir, keyFile), d.rand)
	if err != nil {
		return Enrollment{}, err
	}
	conn, err := d.dialF(client.ForPin(code.TLS), code.Server)
	if err != nil {
		return Enrollment{}, fmt.Errorf("connect to %s: %w", code.Server, err)
	}
	keepConn := false
	defer func() {
		if !keepConn {
			conn.Close()
		}
	}()
	cl := doorstepv1.NewSyncServiceClient(conn)

	cctx, cancel := d.callCtx(ctx)
	info, err := cl.GetServerInfo(cctx, &doorstepv1.GetServerInfoRequest{})
	cancel()
	if err != nil {
		return Enrollment{}, callErr(ctx, code.Server, "ask the server for its identity", err)
	}
	// The fingerprint is computed here from the key the server sent, not
	// taken from the server's word.
	if fp := ballotlog.Fingerprint(info.GetServerPublicKey()); fp != code.Fingerprint || info.GetFingerprint() != code.Fingerprint ||
		len(info.GetServerPublicKey()) != ed25519.PublicKeySize {
		return Enrollment{}, fmt.Errorf("%w (the code says %s, the server at %s has %s)", ErrFingerprintMismatch, code.Fingerprint, code.Server, fp)
	}

	cctx, cancel = d.callCtx(ctx)
	resp, err := cl.Enroll(cctx, &doorstepv1.EnrollRequest{
		ElectionId:      code.ElectionID,
		EnrollmentToken: code.Token,
		DevicePublicKey: key.Public().(ed25519.PublicKey),
		Label:           label,
	})
	cancel()
	if err != nil {
		return Enrollment{}, callErr(ctx, code.Server, "enroll", err)
	}
	if k := resp.GetServerPublicKey(); len(k) > 0 && !bytes.Equal(k, info.GetServerPublicKey()) {
		return Enrollment{}, ErrServerKeyChanged
	}
	if err := election.CheckID("device_id", resp.GetDeviceId()); err != nil {
		return Enrollment{}, fmt.Errorf("the server's enrollment answer: %w", err)
	}
	enr := Enrollment{
		Server:      code.Server,
		ElectionID:  code.ElectionID,
		DeviceID:    resp.GetDeviceId(),
		ServerKey:   info.GetServerPublicKey(),
		Fingerprint: code.Fingerprint,
		TLSPin:      code.TLS,
		LogOrigin:   cmp.Or(resp.GetLogOrigin(), info.GetLogOrigin()),
		Label:       label,
		JoinedAt:    d.now().UTC(),
	}
	if err := d.st.write(func(w *wtx) error { return w.putEnrollment(enr) }); err != nil {
		return Enrollment{}, fmt.Errorf("the server enrolled this device as %s but saving that failed: %w", enr.DeviceID, err)
	}
	d.mu.Lock()
	d.enr, d.key, d.conn = &enr, key, conn
	d.mu.Unlock()
	keepConn = true
	d.log.Info("device joined", "election", enr.ElectionID, "device", enr.DeviceID, "server", enr.Server)

	var rep SyncReport
	finish := func() error {
		if _, err := d.measureOffset(ctx, cl, enr); err != nil {
			return err
		}
		if _, err := d.refreshElection(ctx, cl, enr); err != nil {
			return err
		}
		return d.pullStatus(ctx, cl, enr, &rep)
	}
	if err := finish(); err != nil {
		return enr, fmt.Errorf("joined election %s as device %s, but could not fetch the election yet: %w; run `doorstep canvass sync` to finish",
			enr.ElectionID, enr.DeviceID, err)
	}
	return enr, nil
}
