package flakynet_test

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/flakynet"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestProxy(t *testing.T) {
	p, err := flakynet.Listen(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, err := roundTrip(p.Addr(), "rain"); err != nil || got != "rain\n" {
		t.Fatalf("up: got %q, %v", got, err)
	}
	p.SetUp(false)
	if got, err := roundTrip(p.Addr(), "rain"); err == nil {
		t.Fatalf("down: got %q, want an error", got)
	}
	p.SetUp(true)
	if got, err := roundTrip(p.Addr(), "sun"); err != nil || got != "sun\n" {
		t.Fatalf("back up: got %q, %v", got, err)
	}
	p.SetChaos(rand.New(rand.NewPCG(1, 2)), 10)
	long := strings.Repeat("x", 100)
	if got, err := roundTrip(p.Addr(), long); err == nil && got == long+"\n" {
		t.Fatalf("chaos: a 100-byte message went through a link that cuts within 10 bytes")
	}
	if p.Cuts() == 0 {
		t.Errorf("chaos counted no cuts")
	}
}

func TestDownCutsLiveConnections(t *testing.T) {
	p, err := flakynet.Listen(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "a\n")
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	p.SetUp(false)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(c, "b\n")
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatalf("a live connection survived the link going down")
	}
}
