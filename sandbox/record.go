package sandbox

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/namespaces"
)

// Phase says how far an operation on a sandbox got; start-up recovery
// finishes or undoes whatever a crash interrupted.
type Phase string

const (
	// PhaseCreating: RunPodSandbox has begun; recovery undoes it.
	PhaseCreating Phase = "creating"
	// PhaseCreated: the sandbox exists whole.
	PhaseCreated Phase = "created"
	// PhaseRemoving: RemovePodSandbox has begun; recovery finishes it.
	PhaseRemoving Phase = "removing"
)

// Record is what survives a restart of Berth about a sandbox. Everything
// else (infra pid, whether namespaces are still pinned) is re-derived.
type Record struct {
	Phase          Phase             `json:"phase"`
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Config         json.RawMessage   `json:"config"`
	RuntimeHandler string            `json:"runtimeHandler"`
	Handler        string            `json:"handler"`
	CreatedAt      time.Time         `json:"createdAt"`
	Dir            string            `json:"dir"`
	NS             namespaces.Pinned `json:"ns"`
	CgroupParent   string            `json:"cgroupParent"`
	InfraID        string            `json:"infraId,omitempty"`
	InfraBundle    string            `json:"infraBundle,omitempty"`
	State          State             `json:"state"`
	IPs            []string          `json:"ips,omitempty"`
	NetworkSetUp   bool              `json:"networkSetUp"`
}

// Record captures the sandbox as it is now.
func (s *Sandbox) Record() (*Record, error) {
	cfg, err := protojson.Marshal(s.Config)
	if err != nil {
		return nil, fmt.Errorf("encode config of pod %s: %w", s.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Record{
		Phase: s.phase, ID: s.ID, Name: s.Name, Config: cfg,
		RuntimeHandler: s.RuntimeHandler, Handler: s.Handler, CreatedAt: s.CreatedAt,
		Dir: s.Dir, CgroupParent: s.CgroupParent, InfraID: s.InfraID, InfraBundle: s.InfraBundle,
		State: s.state, IPs: s.ips, NetworkSetUp: s.netSetUp,
	}
	if s.NS != nil {
		r.NS = *s.NS
	}
	return r, nil
}

// FromRecord rebuilds a sandbox from its record.
func FromRecord(r *Record) (*Sandbox, error) {
	cfg := &runtime.PodSandboxConfig{}
	if err := protojson.Unmarshal(r.Config, cfg); err != nil {
		return nil, fmt.Errorf("decode config of pod %s: %w", r.ID, err)
	}
	ns := r.NS
	return &Sandbox{
		ID: r.ID, Name: r.Name, Config: cfg, RuntimeHandler: r.RuntimeHandler, Handler: r.Handler,
		CreatedAt: r.CreatedAt, Dir: r.Dir, NS: &ns, CgroupParent: r.CgroupParent,
		InfraID: r.InfraID, InfraBundle: r.InfraBundle,
		state: r.State, ips: r.IPs, netSetUp: r.NetworkSetUp, phase: r.Phase,
	}, nil
}
