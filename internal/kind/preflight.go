package kind

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Preflight collects every missing prerequisite of a run on this cluster
// into one error before any slow work: the docker CLI, a Docker daemon that
// answers, the sources (Options.CheckSources: ALT_SRC and every build
// context and Dockerfile), and the host ports of nginx-external (80 and 443
// unless set otherwise) and the registry port, unless this cluster or its registry already holds them.
func (p *Provider) Preflight(ctx context.Context) error {
	s := p.spec
	var errs []error
	_, lookErr := p.o.LookPath("docker")
	if lookErr != nil {
		errs = append(errs, errors.New("docker: the Docker CLI is not on PATH (kind and the registry container need it); install Docker"))
	}
	dockerOK := p.o.DockerAnswers()
	if !dockerOK {
		errs = append(errs, errors.New("Docker: no daemon answers (DOCKER_HOST or /var/run/docker.sock); start Docker, or deploy to the simulated cluster with ALT_CLUSTER=sim"))
	}
	owned := map[int]bool{}
	if dockerOK && lookErr == nil {
		if err := p.ownedPorts(ctx, owned); err != nil {
			errs = append(errs, err)
		}
	}
	if p.o.CheckSources != nil {
		if err := p.o.CheckSources(); err != nil {
			errs = append(errs, err)
		}
	}
	type want struct {
		port int
		what string
		fix  string
	}
	wants := []want{}
	for _, pm := range s.Ports {
		fix := ""
		if pm.Setting != "" {
			fix = "; or choose another port with " + pm.Setting
		}
		wants = append(wants, want{int(pm.Host), pm.Service, fix})
	}
	wants = append(wants, want{s.RegistryPort, "the local registry", "; or choose another port with ALT_KIND_REGISTRY_PORT"})
	for _, w := range wants {
		if owned[w.port] {
			continue
		}
		if err := p.o.PortFree(w.port); err != nil {
			errs = append(errs, fmt.Errorf("host port %d (%s) on 127.0.0.1: %v; stop what listens there (`ss -ltnp 'sport = :%d'` names it)%s",
				w.port, w.what, err, w.port, w.fix))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	// One problem a line (CheckSources joins one error per missing path).
	var lines []string
	for _, e := range errs {
		lines = append(lines, strings.Split(e.Error(), "\n")...)
	}
	return fmt.Errorf("kind cluster %s: %d missing prerequisite(s), nothing was started:\n  %s",
		s.Name, len(lines), strings.Join(lines, "\n  "))
}

// ownedPorts marks the host ports this cluster's nodes and registry
// already publish: those are not in the way.
func (p *Provider) ownedPorts(ctx context.Context, owned map[int]bool) error {
	names := []string{p.spec.RegistryName}
	exists, err := p.exists()
	if err != nil {
		return err
	}
	if exists {
		nodes, err := p.o.Lib.Nodes(p.spec.Name)
		if err != nil {
			return fmt.Errorf("listing the nodes of kind cluster %s: %w", p.spec.Name, err)
		}
		names = append(names, nodes...)
	}
	for _, n := range names {
		c, err := inspect(ctx, p.o.Runner, n)
		if err != nil {
			return err
		}
		if c == nil {
			continue
		}
		for _, port := range c.hostPorts() {
			owned[port] = true
		}
	}
	return nil
}

// portFree reports whether something already listens on 127.0.0.1:port.
// Binding a port below 1024 needs privileges this process may lack (the
// Docker daemon has them); then a connection attempt decides.
func portFree(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l.Close()
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return errors.New("in use")
	}
	if errors.Is(err, syscall.EACCES) {
		c, derr := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if derr != nil {
			return nil
		}
		c.Close()
		return errors.New("in use (something accepts connections)")
	}
	return err
}
