// Package proctest runs the aisle command as real child processes, for the
// tests of process faults (kill -9, SIGTERM): it builds the binary, starts
// processes with flags, keeps their JSON logs, waits for log lines and signals
// them. Their metrics are read with promtest.
package proctest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the main package in dir (the module root, "." from its
// tests) into a temporary directory of tb and returns the binary's path.
// Build once per test run and share the path: linking takes seconds.
func Build(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "aisle")
	// go test puts its own toolchain first in the PATH of tests, so this
	// is the go that runs them.
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("proctest: go build: %v\n%s", err, out)
	}
	return bin
}

// Proc is a running child process.
type Proc struct {
	Name string // names it in failure messages
	cmd  *exec.Cmd
	logs *SyncBuffer // stdout and stderr: the JSON logs
	done chan struct{}
	err  error // what Wait returned, once done is closed
}

// Start runs bin with args and stops it with SIGKILL when the test ends if
// it is still running. When the test fails, the process's logs are printed.
func Start(tb testing.TB, name, bin string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{Name: name, logs: &SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("proctest: start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("logs of %s (%s):\n%s", name, strings.Join(args, " "), p.Logs())
		}
	})
	return p
}

// Logs returns everything the process wrote so far.
func (p *Proc) Logs() string { return p.logs.String() }

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s to %s: %w", sig, p.Name, err)
	}
	return nil
}

// Terminate sends SIGTERM.
func (p *Proc) Terminate() error { return p.Signal(syscall.SIGTERM) }

// Wait waits at most d for the process to exit and returns its exit code.
func (p *Proc) Wait(d time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(d):
		return 0, fmt.Errorf("%s still running after %s", p.Name, d)
	}
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		return 0, fmt.Errorf("wait for %s: %w", p.Name, p.err)
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// WaitLog waits at most d for a JSON log line whose msg is msg and returns
// its fields. It fails early when the process exits first.
func (p *Proc) WaitLog(msg string, d time.Duration) (map[string]any, error) {
	deadline := time.Now().Add(d)
	for {
		if line := p.findLog(msg); line != nil {
			return line, nil
		}
		select {
		case <-p.done:
			if line := p.findLog(msg); line != nil {
				return line, nil
			}
			return nil, fmt.Errorf("%s exited (%v) before logging %q", p.Name, p.err, msg)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not log %q within %s", p.Name, msg, d)
		}
	}
}

// findLog returns the first log line with the given msg, nil when none.
func (p *Proc) findLog(msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(p.Logs()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			return line
		}
	}
	return nil
}

// HTTPURL waits for an API process to log where it serves GraphQL and
// returns its base URL, http://host:port.
func (p *Proc) HTTPURL(d time.Duration) (string, error) {
	line, err := p.WaitLog("serving GraphQL", d)
	if err != nil {
		return "", err
	}
	addr, _ := line["addr"].(string)
	if addr == "" {
		return "", fmt.Errorf("%s logged no addr: %v", p.Name, line)
	}
	return "http://" + addr, nil
}

// SyncBuffer collects output written from several goroutines: a process's
// two pipes, or an in-process server's logs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
