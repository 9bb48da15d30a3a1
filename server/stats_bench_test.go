package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/storage"
)

// The stats benchmarks drive ListContainerStats and ListPodSandboxStats
// through the production readers on a node as the kubelet shapes it: 100
// pods of 5 containers, each pod with a network namespace of its own (an
// eth0 and lo), each container with a cgroup in every v1 controller the
// stats read (or one v2 cgroup), a bundle whose runtime spec names it and a
// writable layer in a real containers/storage store; a sleeping process,
// in its pod's network namespace, in every tenth container. Two shapes of cgroup parent: the kubelet's
// (/kubepods/besteffort/pod<uid>, the pod's own) and Berth's default
// (/berth, shared by every pod). It needs root:
//
//	go test -tags "containers_image_openpgp exclude_graphdriver_btrfs" -run '^$' -bench Stats ./server/

const (
	benchPods       = 100
	benchPerPod     = 5
	benchSleepEvery = 10
)

// benchControllers are the v1 controllers a runtime gives a container a
// cgroup in that the stats read (and blkio, which cAdvisor reads).
var benchControllers = []string{"cpu", "cpuacct", "memory", "pids", "blkio"}

// benchCgroups makes cgroups and remembers them, to remove them (deepest
// first) and kill the processes put in them.
type benchCgroups struct {
	made  []string // directories, in the order made
	procs []*exec.Cmd
}

// dirs are the directories of cgroup path, one per hierarchy.
func (c *benchCgroups) dirs(path string) []string {
	if cgroups.IsCgroup2UnifiedMode() {
		return []string{filepath.Join("/sys/fs/cgroup", path)}
	}
	var out []string
	for _, ctl := range benchControllers {
		out = append(out, filepath.Join("/sys/fs/cgroup", ctl, path))
	}
	return out
}

// mkdir makes path and the parents it lacks in every hierarchy.
func (c *benchCgroups) mkdir(path string) error {
	for _, dir := range c.dirs(path) {
		var missing []string
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil {
				break
			}
			missing = append(missing, d)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			if err := os.Mkdir(missing[i], 0o755); err != nil {
				return err
			}
			c.made = append(c.made, missing[i])
			if cgroups.IsCgroup2UnifiedMode() {
				// Best effort: a v2 child has the controllers its
				// parent enables for its subtree.
				os.WriteFile(filepath.Join(filepath.Dir(missing[i]), "cgroup.subtree_control"), []byte("+cpu +memory +pids"), 0)
			}
		}
	}
	return nil
}

// sleeper puts a sleeping process in path's cgroups and the network
// namespace netns, and returns its pid.
func (c *benchCgroups) sleeper(path, netns string) (int, error) {
	// nsenter execs sleep: the pid started is the sleeper's.
	cmd := exec.Command("nsenter", "--net="+netns, "sleep", "3600")
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	c.procs = append(c.procs, cmd)
	pid := cmd.Process.Pid
	for _, dir := range c.dirs(path) {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return 0, fmt.Errorf("move %d to %s: %w", pid, dir, err)
		}
	}
	return pid, nil
}

// benchRuntime answers the one runtime question the stats ask, a running
// container's init pid, with the sleepers'. Every other method is the nil
// interface's: the stats must not call them.
type benchRuntime struct {
	OCIRuntime
	pids map[string]int
}

func (r benchRuntime) InitPid(c *oci.Container) (int, error) {
	if pid, ok := r.pids[c.ID]; ok {
		return pid, nil
	}
	return 0, fmt.Errorf("init pid of container %s: no process", c.ID)
}

// cleanup kills the sleepers and removes every cgroup made.
func (c *benchCgroups) cleanup(b *testing.B) {
	for _, cmd := range c.procs {
		cmd.Process.Kill()
		cmd.Wait()
	}
	for i := len(c.made) - 1; i >= 0; i-- {
		var err error
		for range 50 { // a killed process leaves its cgroup a moment later
			if err = os.Remove(c.made[i]); err == nil || !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			b.Errorf("remove cgroup %s: %v", c.made[i], err)
		}
	}
}

func randomID(b *testing.B) string {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(buf)
}

// benchNode is a server with pods and containers as the package comment
// describes; kubelet chooses the kubelet's cgroup parents over Berth's
// default.
func benchNode(b *testing.B, kubelet bool) *Server {
	s, _ := benchNodeWithCgroups(b, kubelet)
	return s
}

// benchNodeWithCgroups is benchNode and the cgroup paths a
// ListPodSandboxStats reads: each pod's own (kubelet) and each container's.
func benchNodeWithCgroups(b *testing.B, kubelet bool) (*Server, []string) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root: makes cgroups, network namespaces and overlay layers")
	}
	dir := b.TempDir()
	cfg := &config.Config{}
	cfg.Runtime.StateDir, cfg.Runtime.RunDir = dir+"/state", dir+"/run"
	cfg.Runtime.DefaultHandler, cfg.Runtime.CgroupManager = "crun", oci.CgroupfsManager
	st, err := storage.Open(storage.Options{Root: dir + "/storage", RunRoot: dir + "/storage-run", Driver: "overlay", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Shutdown() })
	host := namespaces.Host{Dir: dir + "/run/ns"}
	rt := benchRuntime{pids: map[string]int{}}
	s := New(cfg, "", Deps{Rootfs: st.Rootfs, Namespaces: host, Runtimes: map[string]OCIRuntime{"crun": rt}}, slog.New(slog.DiscardHandler))

	cg := &benchCgroups{}
	b.Cleanup(func() { cg.cleanup(b) })
	ctx := context.Background()
	n := 0
	var read []string
	for p := range benchPods {
		podID := randomID(b)
		pcfg := hostNetworkPod(fmt.Sprintf("bench-%d", p))
		pcfg.Metadata.Uid = randomID(b)[:32]
		if kubelet {
			pcfg.Linux.CgroupParent = "/kubepods/besteffort/pod" + pcfg.Metadata.Uid
		}
		sb := sandbox.New(podID, sandbox.Name(pcfg.GetMetadata()), pcfg, "", "crun", filepath.Join(cfg.Runtime.RunDir, "pods", podID), s.podRecords)
		sb.CgroupParent = s.cgroupParent(pcfg)
		pinned, err := host.Pin(ctx, podID, namespaces.Options{NewNet: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := host.Unpin(pinned); err != nil {
				b.Error(err)
			}
			host.Remove(podID)
		})
		if out, err := exec.Command("nsenter", "--net="+pinned.Net, "sh", "-c", "ip link add eth0 type veth peer name peer0 && ip link set eth0 up && ip link set lo up").CombinedOutput(); err != nil {
			b.Fatalf("eth0 in %s: %v: %s", pinned.Net, err, out)
		}
		sb.NS = pinned
		if err := sb.Update(func(st *sandbox.Status) error {
			st.State, st.Phase = sandbox.StateReady, lifecycle.Created
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		s.sandboxes.Add(sb)
		if err := cg.mkdir(sb.CgroupParent); err != nil {
			b.Fatal(err)
		}
		if kubelet {
			read = append(read, sb.CgroupParent)
		}
		for i := range benchPerPod {
			id := randomID(b)
			path := filepath.Join(sb.CgroupParent, "berth-"+id)
			if err := cg.mkdir(path); err != nil {
				b.Fatal(err)
			}
			read = append(read, path)
			if n%benchSleepEvery == 0 {
				// Half the pods have a running container to read the
				// interface counters through, half are read by joining
				// their netns.
				pid, err := cg.sleeper(path, pinned.Net)
				if err != nil {
					b.Fatal(err)
				}
				rt.pids[id] = pid
			}
			n++
			if err := st.Rootfs.CreateRootfs(ctx, id, "k8s_c"+strconv.Itoa(i)+"_"+podID[:12], "", storage.Owner{Pod: podID, Kind: storage.KindContainer}); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Rootfs.RemoveRootfs(id) })
			ccfg := ctrStatsConfig(id, map[string]string{"io.kubernetes.pod.name": pcfg.Metadata.Name})
			c := container.New(id, "name-"+id, podID, ccfg, s.ctrHooks)
			c.Handler = "crun"
			c.Bundle = filepath.Join(dir, "bundles", id)
			spec, _ := json.Marshal(map[string]any{"ociVersion": "1.2.0", "linux": map[string]string{"cgroupsPath": path}})
			if err := os.MkdirAll(c.Bundle, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), spec, 0o600); err != nil {
				b.Fatal(err)
			}
			if err := c.SetPhase(lifecycle.Created); err != nil {
				b.Fatal(err)
			}
			if err := c.Started(time.Now()); err != nil {
				b.Fatal(err)
			}
			s.containers.Add(c)
		}
	}
	return s, read
}

func benchShapes(b *testing.B, run func(b *testing.B, s *Server)) {
	for _, shape := range []struct {
		name    string
		kubelet bool
	}{{"kubepods", true}, {"default", false}} {
		b.Run(shape.name, func(b *testing.B) {
			s := benchNode(b, shape.kubelet)
			before := cpuTime(b)
			b.ResetTimer()
			run(b, s)
			b.StopTimer()
			// CPU time, the daemon's own and the kernel's for it: on a
			// busy 2-CPU machine wall time says as much about the
			// neighbours.
			b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkListContainerStats(b *testing.B) {
	benchShapes(b, func(b *testing.B, s *Server) {
		ctx := context.Background()
		for b.Loop() {
			resp, err := s.ListContainerStats(ctx, &runtime.ListContainerStatsRequest{})
			if err != nil {
				b.Fatal(err)
			}
			if got := len(resp.GetStats()); got != benchPods*benchPerPod {
				b.Fatalf("%d containers' stats, want %d", got, benchPods*benchPerPod)
			}
			if resp.GetStats()[0].GetMemory() == nil || resp.GetStats()[0].GetWritableLayer() == nil {
				b.Fatalf("stats without memory or writable layer: %v", resp.GetStats()[0])
			}
		}
	})
}

func BenchmarkListPodSandboxStats(b *testing.B) {
	benchShapes(b, func(b *testing.B, s *Server) {
		ctx := context.Background()
		for b.Loop() {
			resp, err := s.ListPodSandboxStats(ctx, &runtime.ListPodSandboxStatsRequest{})
			if err != nil {
				b.Fatal(err)
			}
			if got := len(resp.GetStats()); got != benchPods {
				b.Fatalf("%d pods' stats, want %d", got, benchPods)
			}
			l := resp.GetStats()[0].GetLinux()
			if l.GetCpu() == nil || l.GetNetwork().GetDefaultInterface() == nil || len(l.GetContainers()) != benchPerPod {
				b.Fatalf("pod stats without cpu, eth0 or its containers: %v", l)
			}
		}
	})
}

// BenchmarkStatsFloor is what ListPodSandboxStats cannot go below: the
// kernel's answers to the reads it makes, with nothing around them. Each
// cgroup ListPodSandboxStats reads has the files the v1 readers read open
// once (as stats.CgroupReader keeps them) and read with pread, on as many
// goroutines as the call uses; the interface counters are not in it.
func BenchmarkStatsFloor(b *testing.B) {
	files := []string{"memory/memory.stat", "memory/memory.usage_in_bytes", "memory/memory.limit_in_bytes", "cpuacct/cpuacct.usage", "pids/pids.current"}
	if cgroups.IsCgroup2UnifiedMode() {
		files = []string{"memory.stat", "memory.current", "memory.max", "cpu.stat", "pids.current"}
	}
	for _, shape := range []struct {
		name    string
		kubelet bool
	}{{"kubepods", true}, {"default", false}} {
		b.Run(shape.name, func(b *testing.B) {
			_, paths := benchNodeWithCgroups(b, shape.kubelet)
			var fds []int
			b.Cleanup(func() {
				for _, fd := range fds {
					unix.Close(fd)
				}
			})
			for _, path := range paths {
				for _, f := range files {
					dir, name := filepath.Split(f)
					fd, err := unix.Open(filepath.Join("/sys/fs/cgroup", dir, path, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
					if err != nil {
						b.Fatal(err)
					}
					fds = append(fds, fd)
				}
			}
			per := len(files)
			before := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				if err := forEachParallel(context.Background(), len(paths), func(i int) {
					buf := make([]byte, 8192)
					for _, fd := range fds[i*per : (i+1)*per] {
						if _, err := unix.Pread(fd, buf, 0); err != nil {
							b.Error(err)
						}
					}
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(paths)), "cgroups")
		})
	}
}
