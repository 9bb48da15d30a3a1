package specgen

import (
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	defaultPath   = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	defaultNofile = 1048576 // CRI-O's RLIMIT_NOFILE
)

// setProcess fills args, env, terminal, rlimits and the stop signal.
func (g *gen) setProcess() error {
	p := g.spec.Process
	args, err := processArgs(g.image.Entrypoint, g.image.Cmd, g.cfg.GetCommand(), g.cfg.GetArgs())
	if err != nil {
		return err
	}
	p.Args = args
	p.Terminal = g.cfg.GetTty()
	envs := []string{defaultPath}
	if hn := g.in.Sandbox.Hostname; hn != "" {
		envs = append(envs, "HOSTNAME="+hn)
	}
	if p.Terminal {
		envs = append(envs, "TERM=xterm")
	}
	envs = mergeEnv(envs, g.image.Env)
	var cri []string
	for i, kv := range g.cfg.GetEnvs() {
		k := kv.GetKey()
		if k == "" || strings.Contains(k, "=") {
			return invalidf("config.envs["+strconv.Itoa(i)+"].key", "%q is not a variable name", k)
		}
		cri = append(cri, k+"="+string(kv.GetValue()))
	}
	p.Env = mergeEnv(envs, cri)
	n := g.host.nofile
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: n, Soft: n}}
	g.res.StopSignal, err = stopSignal(g.cfg.GetStopSignal(), g.image.StopSignal)
	return err
}

// processArgs applies Docker's rules: a command replaces the image's
// entrypoint and drops its cmd; args replace the cmd; with neither, the
// image's entrypoint and cmd run.
func processArgs(entrypoint, cmd, command, args []string) ([]string, error) {
	var out []string
	switch {
	case len(command) > 0:
		out = append(append(out, command...), args...)
	case len(args) > 0:
		out = append(append(out, entrypoint...), args...)
	default:
		out = append(append(out, entrypoint...), cmd...)
	}
	if len(out) == 0 || out[0] == "" {
		return nil, invalidf("config.command", "no command given and the image has no entrypoint or cmd")
	}
	return out, nil
}

// mergeEnv overlays add on base: a key already present keeps its place
// and takes the new value; new keys are appended in order.
func mergeEnv(base, add []string) []string {
	out := append([]string(nil), base...)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

func envHas(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// stopSignal picks the CRI stop_signal, else the image's STOPSIGNAL, else
// SIGTERM, and names it "SIG...".
// CRISignal is the CRI's name for a stop signal stopSignal chose
// ("SIGRTMIN+1" is SIGNAL_SIGRTMINPLUS1); a signal the CRI has no name
// for is SIGNAL_RUNTIME_DEFAULT.
func CRISignal(name string) runtime.Signal {
	name = strings.Replace(name, "+", "PLUS", 1)
	name = strings.Replace(name, "-", "MINUS", 1)
	return runtime.Signal(runtime.Signal_value["SIGNAL_"+name])
}

func stopSignal(cri runtime.Signal, image string) (string, error) {
	if cri != runtime.Signal_SIGNAL_RUNTIME_DEFAULT {
		name, ok := runtime.Signal_name[int32(cri)]
		if !ok {
			return "", invalidf("config.stop_signal", "unknown signal %d", cri)
		}
		// SIGNAL_SIGRTMINPLUS1 -> SIGRTMIN+1, SIGNAL_SIGRTMAXMINUS2 -> SIGRTMAX-2
		name = strings.TrimPrefix(name, "SIGNAL_")
		name = strings.Replace(name, "PLUS", "+", 1)
		return strings.Replace(name, "MINUS", "-", 1), nil
	}
	if image == "" {
		return "SIGTERM", nil
	}
	s := strings.ToUpper(strings.TrimSpace(image))
	if n, err := strconv.Atoi(s); err == nil {
		if name := unix.SignalName(unix.Signal(n)); name != "" {
			return name, nil
		}
		if n >= 34 && n <= 64 { // SIGRTMIN..SIGRTMAX
			return "SIGRTMIN+" + strconv.Itoa(n-34), nil
		}
	} else {
		if !strings.HasPrefix(s, "SIG") {
			s = "SIG" + s
		}
		if unix.SignalNum(s) != 0 || strings.HasPrefix(s, "SIGRTMIN") || strings.HasPrefix(s, "SIGRTMAX") {
			return s, nil
		}
	}
	return "", invalidf("image config StopSignal", "unknown signal %q", image)
}

// setWorkingDir resolves the working directory (CRI, then image, then "/")
// inside the rootfs and creates it when missing, owned by the container's
// user. It runs after setMounts: a directory under a mount is left to the
// runtime, since it lives in the mount's source and not in the rootfs.
func (g *gen) setWorkingDir() error {
	wd := g.cfg.GetWorkingDir()
	if wd == "" {
		wd = g.image.WorkingDir
	}
	wd = path.Join("/", wd)
	if under, ok := g.underMount(wd); ok {
		g.spec.Process.Cwd = under
		return nil
	}
	u := g.spec.Process.User
	resolved, err := ensureDir(g.in.Rootfs, wd, 0o755, &u)
	if err != nil {
		return invalidf("config.working_dir", "create %q in the rootfs: %v", wd, err)
	}
	g.spec.Process.Cwd = resolved
	return nil
}
