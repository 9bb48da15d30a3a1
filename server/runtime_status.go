package server

import (
	"context"
	"fmt"
	"os"
	"strings"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status reports whether the runtime and the pod network are ready. The
// conditions are derived on every call, never cached, so they stay truthful.
func (s *Server) Status(ctx context.Context, req *runtime.StatusRequest) (*runtime.StatusResponse, error) {
	resp := &runtime.StatusResponse{
		Status: &runtime.RuntimeStatus{Conditions: []*runtime.RuntimeCondition{
			s.runtimeCondition(),
			s.networkCondition(),
		}},
		RuntimeHandlers: s.runtimeHandlerFeatures(),
		// specgen implements both policies: Merge adds the image's
		// /etc/group memberships, Strict only what the pod asks for.
		Features: &runtime.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		resp.Info = map[string]string{"config": s.configPath, "profiling": s.profiling()}
	}
	return resp, nil
}

// profiling says where the daemon serves its pprof profiles; "" when it
// does not.
func (s *Server) profiling() string {
	var at []string
	if p := s.config.API.ProfilingSocket; p != "" {
		at = append(at, "unix://"+p)
	}
	if s.config.API.ProfilingOnMetrics && s.config.API.MetricsAddress != "" {
		at = append(at, "http://"+s.config.API.MetricsAddress+"/debug/pprof/")
	}
	return strings.Join(at, ", ")
}

func (s *Server) runtimeCondition() *runtime.RuntimeCondition {
	cond := &runtime.RuntimeCondition{Type: runtime.RuntimeReady, Status: true}
	h, ok := s.config.Runtime.Handlers[s.config.Runtime.DefaultHandler]
	if !ok {
		cond.Status, cond.Reason = false, "RuntimeHandlerMissing"
		cond.Message = fmt.Sprintf("default runtime handler %q is not configured", s.config.Runtime.DefaultHandler)
		return cond
	}
	for _, bin := range []struct{ what, path string }{
		{"runtime handler " + s.config.Runtime.DefaultHandler, h.Path},
		{"conmon", s.config.Runtime.Conmon},
	} {
		if _, err := os.Stat(bin.path); err != nil {
			cond.Status, cond.Reason = false, "RuntimeBinaryMissing"
			cond.Message = fmt.Sprintf("%s: %v", bin.what, err)
			return cond
		}
	}
	return cond
}

func (s *Server) networkCondition() *runtime.RuntimeCondition {
	cond := &runtime.RuntimeCondition{Type: runtime.NetworkReady, Status: true}
	if err := s.network.Status(); err != nil {
		cond.Status, cond.Reason, cond.Message = false, "NetworkPluginNotReady", err.Error()
	}
	return cond
}
