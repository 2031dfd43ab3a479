package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strata-net/strata/overlay"
)

// swarmWeb is the live view: plain HTML, JS and CSS, nothing fetched from
// elsewhere.
//
//go:embed web
var swarmWeb embed.FS

// swarmRouteTimeout bounds one request of the routing panel.
const swarmRouteTimeout = 5 * time.Second

// swarmServer serves the live view of a swarm and its JSON API:
//
//	GET /api/state            swarmState
//	GET|POST /api/route?to=HEX|random&from=N|random
//	                          swarmRoute, or {"error": "..."}
type swarmServer struct {
	s    *swarm
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// swarmState is /api/state: the snapshot, the run's settings and the
// rates chart.
type swarmState struct {
	swarmSnapshot
	Config  swarmStateConfig `json:"config"`
	History []swarmSample    `json:"history"`
}

type swarmStateConfig struct {
	Network   string  `json:"network"`
	Nodes     int     `json:"nodes"`
	LossPct   float64 `json:"loss_percent"`
	DelayMS   float64 `json:"delay_ms"`
	JitterMS  float64 `json:"jitter_ms"`
	Rate      int     `json:"rate_bytes_per_second"`
	DurationS float64 `json:"duration_seconds"`
}

func startSwarmServer(s *swarm, addr string) (*swarmServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	v := &swarmServer{s: s, ln: ln, done: make(chan struct{})}
	v.srv = &http.Server{Handler: v.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(v.done)
		v.srv.Serve(ln)
	}()
	return v, nil
}

// url is where the view is served.
func (v *swarmServer) url() string { return "http://" + v.ln.Addr().String() + "/" }

func (v *swarmServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if v.srv.Shutdown(ctx) != nil {
		v.srv.Close()
	}
	<-v.done
}

func (v *swarmServer) handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(swarmWeb, "web")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/state", v.state)
	mux.HandleFunc("GET /api/route", v.route)
	mux.HandleFunc("POST /api/route", v.route)
	return mux
}

func (v *swarmServer) state(w http.ResponseWriter, r *http.Request) {
	s := v.s
	st := swarmState{swarmSnapshot: s.snapshot(true), History: s.historyCopy()}
	st.Config = swarmStateConfig{
		Network: "memnet", Nodes: len(s.members),
		LossPct: s.opt.link.Loss * 100, DelayMS: durMS(s.opt.link.Delay), JitterMS: durMS(s.opt.link.Jitter),
		Rate: s.opt.rate, DurationS: s.opt.duration.Seconds(),
	}
	if s.opt.udp {
		st.Config.Network, st.Config.LossPct, st.Config.DelayMS, st.Config.JitterMS = "udp", 0, 0, 0
	}
	swarmJSON(w, http.StatusOK, st)
}

func (v *swarmServer) route(w http.ResponseWriter, r *http.Request) {
	target, from, err := v.routeParams(r)
	if err != nil {
		swarmJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), swarmRouteTimeout)
	defer cancel()
	res, err := v.s.route(ctx, from, target)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, errSwarmRouteLost) {
			status = http.StatusGatewayTimeout
		}
		swarmJSON(w, status, map[string]any{"error": err.Error(), "from": res.From, "target": res.Target, "nearest": res.Nearest})
		return
	}
	swarmJSON(w, http.StatusOK, res)
}

// routeParams reads "to" (64 hex digits, or "random" or nothing for a
// random address) and "from" (a member index, or "random" or nothing for
// a random member).
func (v *swarmServer) routeParams(r *http.Request) (overlay.Address, int, error) {
	var target overlay.Address
	to := strings.TrimSpace(r.FormValue("to"))
	switch to {
	case "", "random":
		rand.Read(target[:])
	default:
		b, err := hex.DecodeString(strings.TrimPrefix(to, "0x"))
		if err != nil || len(b) != len(target) {
			return target, 0, fmt.Errorf("to=%q: want a 256-bit address as 64 hex digits, or random", to)
		}
		copy(target[:], b)
	}
	n := len(v.s.members)
	from := strings.TrimSpace(r.FormValue("from"))
	switch from {
	case "", "random":
		return target, mrand.IntN(n), nil
	}
	i, err := strconv.Atoi(from)
	if err != nil || i < 0 || i >= n {
		return target, 0, fmt.Errorf("from=%q: want a member index 0..%d, or random", from, n-1)
	}
	return target, i, nil
}

func swarmJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
