package network

import "encoding/json"

// DefaultNetworkName is the name of the network DefaultConflist describes.
const DefaultNetworkName = "berth"

// DefaultConflist is a conflist for a node without a network provider: a
// bridge with host-local addresses from subnet (the bridge is the gateway
// and masquerades) and portmap for hostPorts. No loopback plugin: Berth
// brings up every pod's lo itself when it makes the netns.
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
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		panic(err) // static data
	}
	return append(b, '\n')
}
