package network

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// GC releases what CNI holds for pods that are not in keep: every cached
// attachment of another pod gets a DEL from its cached config (whatever the
// network or its cniVersion), then, for a default network of cniVersion
// 1.1.0 or later, libcni's GC verb runs with keep as the valid attachments,
// so plugins that support GC (host-local from plugins 1.2) release what
// even the cache no longer knows. Pod calls wait while GC runs.
func (m *Manager) GC(ctx context.Context, keep []Pod) error {
	m.gcMu.Lock()
	defer m.gcMu.Unlock()

	valid := make([]types.GCAttachment, 0, len(keep))
	isValid := map[types.GCAttachment]bool{}
	for _, p := range keep {
		a := types.GCAttachment{ContainerID: p.ID, IfName: ifName}
		valid = append(valid, a)
		isValid[a] = true
	}
	list, _ := m.defaultNetwork()

	var errs []error
	atts, err := m.cni.GetCachedAttachments("")
	if err != nil {
		errs = append(errs, fmt.Errorf("read cached attachments: %w", err))
	}
	for _, att := range atts {
		if isValid[types.GCAttachment{ContainerID: att.ContainerID, IfName: att.IfName}] {
			continue
		}
		netns := ""
		if isNetNS(att.NetNS) {
			netns = att.NetNS
		}
		if err := m.delAttachment(ctx, att, list, netns); err != nil {
			errs = append(errs, fmt.Errorf("stale pod %s: %w", att.ContainerID, err))
			continue
		}
		m.log.Info("released stale cni attachment", "pod", att.ContainerID, "network", att.Network)
	}

	if list != nil {
		if ok, _ := version.GreaterThanOrEqualTo(list.CNIVersion, "1.1.0"); ok {
			// The cache is clean by now, so this only issues the GC verb.
			if err := m.cni.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
				errs = append(errs, fmt.Errorf("network %s: %w", list.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cni gc: %w", err)
	}
	return nil
}
