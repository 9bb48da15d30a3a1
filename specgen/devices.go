package specgen

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setDevices adds the CRI devices to the spec and the device cgroup. A
// privileged container gets every device of the host's /dev and may use
// any device; others may use only their CRI devices (the runtimes add the
// standard ones: null, zero, tty, ...).
func (g *gen) setDevices() error {
	r := g.spec.Linux.Resources
	if g.privileged {
		devs, err := hostDevices("/dev")
		if err != nil {
			return fmt.Errorf("list host devices: %w", err)
		}
		g.spec.Linux.Devices = devs
		r.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		r.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	}
	for i, d := range g.cfg.GetDevices() {
		f := fmt.Sprintf("config.devices[%d]", i)
		host, ctr, perms := d.GetHostPath(), d.GetContainerPath(), d.GetPermissions()
		if host == "" || !filepath.IsAbs(host) {
			return invalidf(f+".host_path", "%q is not an absolute path", host)
		}
		if ctr == "" {
			ctr = host
		}
		if !path.IsAbs(ctr) {
			return invalidf(f+".container_path", "%q is not an absolute path", ctr)
		}
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" || len(perms) > 3 {
			return invalidf(f+".permissions", "%q is not a combination of r, w and m", perms)
		}
		real, err := filepath.EvalSymlinks(host)
		if err != nil {
			return invalidf(f+".host_path", "%v", err)
		}
		fi, err := os.Stat(real)
		if err != nil {
			return invalidf(f+".host_path", "%v", err)
		}
		var devs []specs.LinuxDevice
		if fi.IsDir() {
			// A directory of devices (CRI-O does the same): each keeps its
			// path below the directory.
			if devs, err = hostDevices(real); err != nil {
				return invalidf(f+".host_path", "%v", err)
			}
			for j := range devs {
				rel, _ := filepath.Rel(real, devs[j].Path)
				devs[j].Path = path.Join(ctr, rel)
			}
		} else {
			dev, ok := deviceAt(real)
			if !ok {
				return invalidf(f+".host_path", "%s is not a device node", host)
			}
			dev.Path = path.Clean(ctr)
			devs = []specs.LinuxDevice{dev}
		}
		for _, dev := range devs {
			g.addDevice(dev, perms)
		}
	}
	return nil
}

func (g *gen) addDevice(dev specs.LinuxDevice, perms string) {
	l := g.spec.Linux
	replaced := false
	for i := range l.Devices {
		if l.Devices[i].Path == dev.Path {
			l.Devices[i], replaced = dev, true
		}
	}
	if !replaced {
		l.Devices = append(l.Devices, dev)
	}
	if !g.privileged {
		major, minor := dev.Major, dev.Minor
		l.Resources.Devices = append(l.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: perms,
		})
	}
}

// Directories of /dev that hold no devices of the host's own (runc's list).
var skipDevDirs = map[string]bool{"pts": true, "shm": true, "fd": true, "mqueue": true, ".lxc": true, ".lxd-mounts": true, ".udev": true}

// hostDevices lists the device nodes below dir, not following symlinks.
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // a node that vanished or cannot be read
		}
		if d.IsDir() {
			if p != dir && skipDevDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == "console" || d.Type()&fs.ModeDevice == 0 {
			return nil
		}
		if dev, ok := deviceAt(p); ok {
			out = append(out, dev)
		}
		return nil
	})
	return out, err
}

// deviceAt describes the device node at p (not following a final symlink).
func deviceAt(p string) (specs.LinuxDevice, bool) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return specs.LinuxDevice{}, false
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, false
	}
	rdev := uint64(st.Rdev)
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: p, Type: typ,
		Major: int64(unix.Major(rdev)), Minor: int64(unix.Minor(rdev)),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, true
}
