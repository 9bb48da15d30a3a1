// Package nri makes Berth an NRI runtime (github.com/containerd/nri): it
// owns the adaptation that plugins connect to, tells them about every pod
// and container lifecycle event, and applies the adjustments they return to
// a container's OCI spec before the container is created.
package nri
