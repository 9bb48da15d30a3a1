package sandbox

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/namespaces"
)

// Record is what survives a restart of Berth about a sandbox. Everything
// else (whether namespaces are still pinned, whether the infra process
// still runs) is re-derived.
type Record struct {
	Phase          lifecycle.Phase   `json:"phase"`
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
	InfraPid       int               `json:"infraPid,omitempty"` // 0 in older records: recovery reads the pid file
	State          State             `json:"state"`
	IPs            []string          `json:"ips,omitempty"`
	NetworkSetUp   bool              `json:"networkSetUp"`
}

// record is what the sandbox saves with status st.
func (s *Sandbox) record(st Status) (*Record, error) {
	cfg, err := protojson.Marshal(s.Config)
	if err != nil {
		return nil, fmt.Errorf("encode config of pod %s: %w", s.ID, err)
	}
	r := &Record{
		Phase: st.Phase, ID: s.ID, Name: s.Name, Config: cfg,
		RuntimeHandler: s.RuntimeHandler, Handler: s.Handler, CreatedAt: s.CreatedAt,
		Dir: s.Dir, CgroupParent: s.CgroupParent, InfraID: s.InfraID, InfraBundle: s.InfraBundle, InfraPid: s.InfraPid,
		State: st.State, IPs: st.IPs, NetworkSetUp: st.NetworkSetUp,
	}
	if s.NS != nil {
		r.NS = *s.NS
	}
	return r, nil
}

// FromRecord rebuilds a sandbox from its record.
func FromRecord(r *Record, records Records) (*Sandbox, error) {
	cfg := &runtime.PodSandboxConfig{}
	if err := protojson.Unmarshal(r.Config, cfg); err != nil {
		return nil, fmt.Errorf("decode config of pod %s: %w", r.ID, err)
	}
	ns := r.NS
	sb := &Sandbox{
		ID: r.ID, Name: r.Name, Config: cfg, RuntimeHandler: r.RuntimeHandler, Handler: r.Handler,
		CreatedAt: r.CreatedAt, Dir: r.Dir, NS: &ns, CgroupParent: r.CgroupParent,
		InfraID: r.InfraID, InfraBundle: r.InfraBundle, InfraPid: r.InfraPid,
	}
	sb.status = newBox(sb, Status{Phase: r.Phase, State: r.State, IPs: r.IPs, NetworkSetUp: r.NetworkSetUp}, records)
	return sb, nil
}
