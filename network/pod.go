package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berth-dev/berth/errdefs"
)

// Pod is what CNI needs to know about a pod sandbox.
type Pod struct {
	ID        string // sandbox id, K8S_POD_INFRA_CONTAINER_ID and CNI container id
	Name      string
	Namespace string
	UID       string
	NetNS     string // path of the pinned network namespace
	// PortMappings go to plugins with the "portMappings" capability
	// (portmap), which publish them on the host.
	PortMappings []PortMapping
}

// PortMapping publishes a pod port on the host.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	Protocol      string // tcp (default), udp or sctp
	HostIP        string // "" for all addresses
}

// Result is what the default network's ADD gave the pod.
type Result struct {
	Network    string      // network name
	IPs        []string    // addresses on the pod's interface, primary first
	Interfaces []Interface // as the plugins reported them
	Raw        json.RawMessage
}

// Interface is one interface in a CNI result.
type Interface struct {
	Name    string
	Mac     string
	Sandbox string // netns path when the interface is in the pod
}

// portMapping is the "portMappings" capability entry libcni passes on.
type portMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// runtimeConf is the per-call part of a CNI invocation for pod.
func runtimeConf(pod Pod, netns string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.ID,
		NetNS:       netns,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.ID},
			{"K8S_POD_UID", pod.UID},
		},
	}
	var pms []portMapping
	for _, pm := range pod.PortMappings {
		if pm.HostPort <= 0 { // not published, as in ocicni
			continue
		}
		proto := strings.ToLower(pm.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		pms = append(pms, portMapping{HostPort: pm.HostPort, ContainerPort: pm.ContainerPort, Protocol: proto, HostIP: pm.HostIP})
	}
	if len(pms) > 0 {
		rt.CapabilityArgs = map[string]interface{}{"portMappings": pms}
	}
	return rt
}

func validatePod(pod Pod) error {
	if pod.ID == "" || strings.ContainsAny(pod.ID, "/\x00") {
		return fmt.Errorf("pod id %q: %w", pod.ID, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Setup attaches pod to the default network (CNI ADD) and returns what it
// got. The pod's netns must be pinned already. A pod that is already
// attached gets its cached result, without a second ADD. If ADD fails, DEL
// runs before the error is returned, so no address stays reserved.
func (m *Manager) Setup(ctx context.Context, pod Pod) (*Result, error) {
	if err := validatePod(pod); err != nil {
		return nil, fmt.Errorf("set up network of pod: %w", err)
	}
	m.gcMu.RLock()
	defer m.gcMu.RUnlock()
	unlock, err := m.locks.LockContext(ctx, pod.ID)
	if err != nil {
		return nil, fmt.Errorf("set up network of pod %s: %w", pod.ID, err)
	}
	defer unlock()

	list, err := m.defaultNetwork()
	if err != nil {
		return nil, fmt.Errorf("set up network of pod %s: %w", pod.ID, err)
	}
	if !isNetNS(pod.NetNS) {
		return nil, fmt.Errorf("set up network of pod %s: netns %q is not a pinned network namespace: %w",
			pod.ID, pod.NetNS, errdefs.ErrFailedPrecondition)
	}
	rt := runtimeConf(pod, pod.NetNS)

	cached, err := m.cni.GetNetworkListCachedResult(list, rt)
	if err != nil {
		return nil, fmt.Errorf("set up network of pod %s: read cached result: %w", pod.ID, err)
	}
	if cached != nil {
		m.log.Debug("pod already attached, reusing cached cni result", "pod", pod.ID, "network", list.Name)
		return newResult(list.Name, cached)
	}

	res, err := m.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		// Undo what the plugins that ran did; DEL is fine for those that
		// never ran. The caller's context may be the reason ADD failed.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := m.cni.DelNetworkList(dctx, list, rt); derr != nil {
			return nil, fmt.Errorf("add pod %s to network %s: %w (cleanup DEL also failed: %v)", pod.ID, list.Name, err, derr)
		}
		return nil, fmt.Errorf("add pod %s to network %s: %w", pod.ID, list.Name, err)
	}
	r, err := newResult(list.Name, res)
	if err != nil {
		return nil, fmt.Errorf("add pod %s to network %s: %w", pod.ID, list.Name, err)
	}
	m.log.Info("pod network set up", "pod", pod.ID, "name", pod.Name, "namespace", pod.Namespace,
		"network", list.Name, "ips", r.IPs)
	return r, nil
}

// newResult converts a CNI result of any version.
func newResult(network string, res types.Result) (*Result, error) {
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode cni result: %w", err)
	}
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert cni result: %w", err)
	}
	r := &Result{Network: network, Raw: raw}
	for _, i := range cur.Interfaces {
		r.Interfaces = append(r.Interfaces, Interface{Name: i.Name, Mac: i.Mac, Sandbox: i.Sandbox})
	}
	// The pod's addresses are those on interfaces inside its netns; results
	// that do not say which interface an address is on count them all.
	var inPod, all []string
	for _, ip := range cur.IPs {
		s := ip.Address.IP.String()
		all = append(all, s)
		if ip.Interface != nil && *ip.Interface >= 0 && *ip.Interface < len(cur.Interfaces) &&
			cur.Interfaces[*ip.Interface].Sandbox != "" {
			inPod = append(inPod, s)
		}
	}
	r.IPs = all
	if len(inPod) > 0 {
		r.IPs = inPod
	}
	return r, nil
}

// Teardown detaches pod (CNI DEL) from the default network and from any
// other network it has a cached attachment to (the default may have changed
// since ADD). It is idempotent: it succeeds when ADD never happened, twice,
// and when the netns is gone (DEL then runs with an empty netns, which still
// releases the IPAM reservation). Cached configs and arguments of the ADD
// are used where present, so plugins see what they saw on ADD.
func (m *Manager) Teardown(ctx context.Context, pod Pod) error {
	if err := validatePod(pod); err != nil {
		return fmt.Errorf("tear down network of pod: %w", err)
	}
	m.gcMu.RLock()
	defer m.gcMu.RUnlock()
	unlock, err := m.locks.LockContext(ctx, pod.ID)
	if err != nil {
		return fmt.Errorf("tear down network of pod %s: %w", pod.ID, err)
	}
	defer unlock()

	list, _ := m.defaultNetwork() // nil: only cached attachments can be removed
	netns := ""
	if isNetNS(pod.NetNS) {
		netns = pod.NetNS
	}

	var errs []error
	atts, err := m.cni.GetCachedAttachments(pod.ID)
	if err != nil {
		errs = append(errs, fmt.Errorf("read cached attachments: %w", err))
	}
	delDefault := list != nil
	for _, att := range atts {
		if list != nil && att.Network == list.Name && att.IfName == ifName {
			delDefault = false
		}
		if err := m.delAttachment(ctx, att, list, netns); err != nil {
			errs = append(errs, err)
		}
	}
	if delDefault {
		// No cache (ADD never happened, or failed before caching): DEL
		// anyway so whatever a plugin reserved is released.
		if err := m.cni.DelNetworkList(ctx, list, runtimeConf(pod, netns)); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", list.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down network of pod %s: %w", pod.ID, err)
	}
	if len(atts) > 0 {
		m.log.Info("pod network torn down", "pod", pod.ID, "name", pod.Name, "namespace", pod.Namespace)
	}
	return nil
}

// delAttachment runs DEL for a cached attachment with the config and
// arguments cached at ADD; def is used when the cached config is unusable
// and names the same network. netns replaces the cached path ("" when the
// netns is gone).
func (m *Manager) delAttachment(ctx context.Context, att *libcni.NetworkAttachment, def *libcni.NetworkConfigList, netns string) error {
	list, err := libcni.NetworkConfFromBytes(att.Config)
	if err != nil || len(list.Plugins) == 0 {
		if def == nil || def.Name != att.Network {
			return fmt.Errorf("network %s: cached config unusable, cannot run DEL: %v", att.Network, err)
		}
		list = def
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    att.ContainerID,
		NetNS:          netns,
		IfName:         att.IfName,
		Args:           att.CniArgs,
		CapabilityArgs: att.CapabilityArgs,
	}
	if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("network %s: %w", att.Network, err)
	}
	return nil
}
