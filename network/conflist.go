package network

import "encoding/json"

// DefaultNetworkName is the name of the network DefaultConflist describes.
const DefaultNetworkName = "berth"

// DefaultConflist is a conflist for a node without a network provider: a
// bridge with host-local addresses from subnet (the bridge is the gateway
// and masquerades), portmap for hostPorts and loopback to bring up lo.
// cniVersion 1.0.0 is the newest that Debian 12's plugins (1.1.1) speak.
func DefaultConflist(bridgeName, subnet string) []byte {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       DefaultNetworkName,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      bridgeName,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": subnet}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
			},
			map[string]any{"type": "loopback"},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		panic(err) // static data
	}
	return append(b, '\n')
}
