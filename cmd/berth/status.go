package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/config"
)

// statusTimeout bounds the whole `berth status`; ImageFsInfo walks the
// storage directories, which takes a while on a node with many images.
const statusTimeout = 30 * time.Second

// runStatus is `berth status`: it asks the daemon on --listen (or the
// config's api.listen) for its conditions, pods, containers and storage
// usage. It exits 0 when the daemon answered, whatever its conditions, and
// 1 when it could not be asked.
func runStatus(fs *flag.FlagSet, flags *config.Flags, stdout, stderr io.Writer) int {
	cfg, _, err := config.LoadWithFlags(fs, flags)
	if err != nil {
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	rep, err := queryStatus(ctx, cfg.API.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return 1
	}
	if err := rep.write(stdout); err != nil {
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return 1
	}
	return 0
}

// statusReport is what the daemon answered.
type statusReport struct {
	socket     string
	version    *runtime.VersionResponse
	status     *runtime.StatusResponse
	pods       []*runtime.PodSandbox
	containers []*runtime.Container // nil when the daemon cannot list them
	fsInfo     *runtime.ImageFsInfoResponse
}

// queryStatus asks the daemon on socket. A daemon that is not there is
// told apart from one that answers with an error, so the message says what
// to do.
func queryStatus(ctx context.Context, socket string) (*statusReport, error) {
	notRunning := func(err error) error {
		return fmt.Errorf("berth is not running on %s: %w; start it with `systemctl start berth`", socket, err)
	}
	c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "unix", socket)
	switch {
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("cannot connect to berth on %s: %w; the socket is root's, run as root", socket, err)
	case err != nil:
		return nil, notRunning(err)
	}
	c.Close()

	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to berth on %s: %w", socket, err)
	}
	defer conn.Close()
	rt, img := runtime.NewRuntimeServiceClient(conn), runtime.NewImageServiceClient(conn)
	call := func(what string, err error) error {
		if status.Code(err) == codes.Unavailable {
			return notRunning(err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}

	rep := &statusReport{socket: socket}
	if rep.version, err = rt.Version(ctx, &runtime.VersionRequest{}); err != nil {
		return nil, call("version", err)
	}
	if rep.status, err = rt.Status(ctx, &runtime.StatusRequest{Verbose: true}); err != nil {
		return nil, call("status", err)
	}
	pods, err := rt.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if err != nil {
		return nil, call("list pods", err)
	}
	rep.pods = pods.GetItems()
	ctrs, err := rt.ListContainers(ctx, &runtime.ListContainersRequest{})
	switch {
	case status.Code(err) == codes.Unimplemented:
	case err != nil:
		return nil, call("list containers", err)
	default:
		rep.containers = ctrs.GetContainers()
		if rep.containers == nil {
			rep.containers = []*runtime.Container{}
		}
	}
	if rep.fsInfo, err = img.ImageFsInfo(ctx, &runtime.ImageFsInfoRequest{}); err != nil {
		return nil, call("image fs info", err)
	}
	return rep, nil
}

func (r *statusReport) write(w io.Writer) error {
	v := r.version
	fmt.Fprintf(w, "%s %s (CRI %s) on %s\n", v.GetRuntimeName(), v.GetRuntimeVersion(), v.GetRuntimeApiVersion(), r.socket)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)

	cfgPath, known := r.status.GetInfo()["config"]
	switch {
	case !known:
		cfgPath = "unknown (the daemon did not say)"
	case cfgPath == "":
		cfgPath = "built-in defaults and flags (no config file)"
	}
	fmt.Fprintf(tw, "config:\t%s\n", cfgPath)
	if where, known := r.status.GetInfo()["profiling"]; known {
		if where == "" {
			where = "off (api.profiling_socket, --profiling-socket)"
		}
		fmt.Fprintf(tw, "profiling:\t%s\n", where)
	}

	for _, c := range r.status.GetStatus().GetConditions() {
		name := c.GetType()
		switch name {
		case runtime.RuntimeReady:
			name = "runtime"
		case runtime.NetworkReady:
			name = "network"
		}
		state := "ready"
		if !c.GetStatus() {
			state = "not ready"
			if c.GetReason() != "" {
				state += " (" + c.GetReason() + ")"
			}
			if c.GetMessage() != "" {
				state += ": " + c.GetMessage()
			}
		}
		fmt.Fprintf(tw, "%s:\t%s\n", name, state)
	}

	podStates := map[string]int{}
	for _, p := range r.pods {
		podStates[strings.ToLower(strings.TrimPrefix(p.GetState().String(), "SANDBOX_"))]++
	}
	fmt.Fprintf(tw, "pods:\t%s\n", counts(len(r.pods), podStates, "ready", "notready"))

	if r.containers == nil {
		fmt.Fprintf(tw, "containers:\tnot available (the daemon does not list containers yet)\n")
	} else {
		ctrStates := map[string]int{}
		for _, c := range r.containers {
			ctrStates[strings.ToLower(strings.TrimPrefix(c.GetState().String(), "CONTAINER_"))]++
		}
		fmt.Fprintf(tw, "containers:\t%s\n", counts(len(r.containers), ctrStates, "created", "running", "exited", "unknown"))
	}

	for _, fs := range []struct {
		name  string
		usage []*runtime.FilesystemUsage
	}{
		{"image storage", r.fsInfo.GetImageFilesystems()},
		{"container storage", r.fsInfo.GetContainerFilesystems()},
	} {
		if len(fs.usage) == 0 {
			fmt.Fprintf(tw, "%s:\tnot reported\n", fs.name)
		}
		for _, u := range fs.usage {
			fmt.Fprintf(tw, "%s:\t%s, %d inodes in %s\n", fs.name, humanBytes(u.GetUsedBytes().GetValue()),
				u.GetInodesUsed().GetValue(), u.GetFsId().GetMountpoint())
		}
	}
	return tw.Flush()
}

// counts renders "3 (2 ready, 1 notready)", states in the given order and
// any other state after them.
func counts(total int, byState map[string]int, order ...string) string {
	if total == 0 {
		return "0"
	}
	var parts []string
	for _, s := range order {
		if n := byState[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
			delete(byState, s)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(byState)) {
		parts = append(parts, fmt.Sprintf("%d %s", byState[s], s))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// humanBytes renders a size in binary units with the exact count of
// bytes, "12.3 MiB (12897654 bytes)".
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", float64(n)/float64(div), "KMGTP"[exp], n)
}
