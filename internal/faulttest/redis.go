package faulttest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server process of the test's own, so that it can be
// killed without disturbing the Redis other tests share. It keeps its data
// in an append-only file synced on every write, as a production Redis with
// AOF does, so a restart loses nothing. (A Redis that comes back empty is
// another fault: its features are rebuilt by `aisle replay`.)
type Redis struct {
	tb   testing.TB
	port int
	dir  string
	args []string // more redis-server arguments, after the defaults
	cmd  *exec.Cmd
	exit chan error // the running process's exit, once
}

// StartRedis starts redis-server (from PATH) on a free loopback port; it is
// killed when the test ends. args are more redis-server arguments; they
// override the defaults (e.g. "--appendonly", "no" for a server whose data
// need not survive a kill).
func StartRedis(tb testing.TB, args ...string) *Redis {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("faulttest: redis-server is not on PATH: %v", err)
	}
	r := &Redis{tb: tb, port: freePort(tb), dir: tb.TempDir(), args: args}
	r.Start()
	tb.Cleanup(r.Kill)
	return r
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// Start starts the server, again after Kill, on the same port and data
// directory, and waits until it answers PING.
func (r *Redis) Start() {
	r.tb.Helper()
	args := append([]string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"),
	}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatalf("faulttest: start redis-server: %v", err)
	}
	r.exit = make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan error) { exit <- cmd.Wait() }(r.cmd, r.exit)
	deadline := time.Now().Add(10 * time.Second)
	for !r.pong() {
		select {
		case err := <-r.exit:
			r.cmd = nil
			r.tb.Fatalf("faulttest: redis-server exited at start: %v\n%s", err, r.log())
		default:
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("faulttest: redis-server on port %d does not answer PING after 10s\n%s", r.port, r.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it to
// exit. It does nothing when the server is not running.
func (r *Redis) Kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exit
	r.cmd = nil
}

// pong reports whether the server answers PING (loading or not yet
// listening: no).
func (r *Redis) pong() bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func (r *Redis) log() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	return string(b)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faulttest: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
