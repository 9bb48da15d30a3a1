// Package version holds Berth's name and version, set at link time by the
// Makefile (-X github.com/berth-dev/berth/version.Version=...).
package version

// Name is the RuntimeName reported to the kubelet.
const Name = "berth"

// Version is the release or git description of this build.
var Version = "0.1.0-dev"

// GitCommit is the commit this binary was built from.
var GitCommit = "unknown"
