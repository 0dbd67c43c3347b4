package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aisle/aisle/httpapi"
)

// servers are the HTTP listeners: the API (or a stream worker's probes) on
// --http-addr, and the operators' on --metrics-addr when set.
type servers struct {
	api, ops *http.Server
}

// listen opens the listeners and serves them as workers.
func (m *Main) listen(handler http.Handler, ready func(context.Context) error, w *workers) (*servers, error) {
	c := &m.Config
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", c.HTTPAddr, err)
	}
	m.HTTPListener = ln
	if c.MetricsAddr != "" {
		if m.MetricsListener, err = net.Listen("tcp", c.MetricsAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen on --metrics-addr %s: %w", c.MetricsAddr, err)
		}
	}
	s := &servers{
		api: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       2 * time.Minute,
			// Websocket connections live in the workers' context so that
			// draining closes them.
			BaseContext: func(net.Listener) context.Context { return w.ctx },
		},
		ops: &http.Server{Handler: httpapi.Ops(ready, m.Log), ReadHeaderTimeout: 5 * time.Second},
	}
	w.Go("http server", func(context.Context) error { return serve(s.api, ln) })
	if opsLn := m.MetricsListener; opsLn != nil {
		w.Go("ops server", func(context.Context) error { return serve(s.ops, opsLn) })
		m.Log.Info("serving /metrics, /healthz and /readyz", "addr", opsLn.Addr().String())
	}
	if m.runsAPI() {
		m.Log.Info("serving GraphQL", "addr", ln.Addr().String(), "graphiql", "http://"+displayAddr(ln.Addr())+"/")
	} else {
		m.Log.Info("serving /healthz, /readyz and /metrics", "addr", ln.Addr().String())
	}
	return s, nil
}

// serve serves ln until the server is shut down.
func serve(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdown stops taking requests and waits, at most drainTimeout, for those
// in flight.
func (s *servers) shutdown(ctx context.Context, drainTimeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if err := s.api.Shutdown(ctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := s.ops.Shutdown(ctx); err != nil {
		log.Warn("ops http shutdown", "err", err)
	}
}

func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		return "localhost:" + port
	}
	return net.JoinHostPort(host, port)
}
