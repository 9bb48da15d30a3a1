// Package bench is `make bench`: kubelet-shaped pod and container
// lifecycles, driven over CRI gRPC, against Berth, containerd 2.4 and
// containerd 1.6, one runtime after another on one registry, each in a
// private root with its own socket and CNI bridge.
//
// The pure parts (percentiles and ratios, the JSON and Markdown report, the
// containerd configs, the SVG and PNG charts) are tested without root; the
// driver itself (Run, in workload.go) needs root, the runtimes and the rig,
// as cmd/berth-bench does.
package bench
