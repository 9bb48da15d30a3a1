package specgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const scField = "config.linux.security_context"

type userEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// setUser resolves the user, group and supplementary groups of the
// container's process and sets HOME when neither image nor CRI did.
func (g *gen) setUser() error {
	root := g.in.Rootfs
	uid, gid, entry, err := resolveUser(root, g.sc, g.image.User)
	if err != nil {
		return err
	}
	gids := []uint32{gid}
	add := func(id uint32) {
		for _, x := range gids {
			if x == id {
				return
			}
		}
		gids = append(gids, id)
	}
	switch g.sc.GetSupplementalGroupsPolicy() {
	case runtime.SupplementalGroupsPolicy_Merge:
		if entry != nil {
			groups, err := readGroups(root)
			if err != nil {
				return fmt.Errorf("read the image's /etc/group: %w", err)
			}
			for _, gr := range groups {
				for _, m := range gr.members {
					if m == entry.name {
						add(gr.gid)
					}
				}
			}
		}
	case runtime.SupplementalGroupsPolicy_Strict:
	default:
		return invalidf(scField+".supplemental_groups_policy", "unknown policy %d", g.sc.GetSupplementalGroupsPolicy())
	}
	for i, v := range g.sc.GetSupplementalGroups() {
		id, err := checkID(fmt.Sprintf("%s.supplemental_groups[%d]", scField, i), v)
		if err != nil {
			return err
		}
		add(id)
	}
	g.user = entry
	g.spec.Process.User = specs.User{UID: uid, GID: gid, AdditionalGids: gids}
	g.res.User = ResolvedUser{UID: uid, GID: gid, AdditionalGids: gids}
	if !envHas(g.spec.Process.Env, "HOME") {
		home := "/"
		if entry != nil && entry.home != "" {
			home = entry.home
		}
		g.spec.Process.Env = append(g.spec.Process.Env, "HOME="+home)
	}
	return nil
}

// resolveUser picks run_as_user, run_as_username or the image's USER (in
// that order) and resolves names against the rootfs's /etc/passwd and
// /etc/group. A numeric id with no entry still works (its group is 0); a
// name with no entry is an error. The entry is nil when there is none.
func resolveUser(root string, sc *runtime.LinuxContainerSecurityContext, imageUser string) (uint32, uint32, *userEntry, error) {
	users, err := readUsers(root)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("read the image's /etc/passwd: %w", err)
	}
	var uid, gid uint32
	var entry *userEntry
	runAsUser, name := sc.GetRunAsUser(), sc.GetRunAsUsername()
	switch {
	case runAsUser != nil && name != "":
		return 0, 0, nil, invalidf(scField+".run_as_username", "only one of run_as_user and run_as_username may be set")
	case runAsUser != nil:
		if uid, err = checkID(scField+".run_as_user", runAsUser.GetValue()); err != nil {
			return 0, 0, nil, err
		}
		entry = byUID(users, uid)
	case name != "":
		if entry = byName(users, name); entry == nil {
			return 0, 0, nil, invalidf(scField+".run_as_username", "user %q not found in the image's /etc/passwd", name)
		}
		uid = entry.uid
	default:
		if sc.GetRunAsGroup() != nil {
			return 0, 0, nil, invalidf(scField+".run_as_group", "set without run_as_user or run_as_username")
		}
		return resolveImageUser(root, users, imageUser)
	}
	if entry != nil {
		gid = entry.gid
	}
	if g := sc.GetRunAsGroup(); g != nil {
		if gid, err = checkID(scField+".run_as_group", g.GetValue()); err != nil {
			return 0, 0, nil, err
		}
	}
	return uid, gid, entry, nil
}

// resolveImageUser resolves a USER of the forms "name", "uid", "uid:gid",
// "name:group" (and mixes); "" is root.
func resolveImageUser(root string, users []userEntry, spec string) (uint32, uint32, *userEntry, error) {
	const field = "image config User"
	u, grp, hasGroup := strings.Cut(spec, ":")
	var uid, gid uint32
	var entry *userEntry
	if u == "" {
		u = "0"
	}
	if n, err := strconv.ParseUint(u, 10, 32); err == nil {
		uid = uint32(n)
		entry = byUID(users, uid)
	} else if entry = byName(users, u); entry == nil {
		return 0, 0, nil, invalidf(field, "user %q not found in the image's /etc/passwd", u)
	} else {
		uid = entry.uid
	}
	if entry != nil {
		gid = entry.gid
	}
	if hasGroup && grp != "" {
		if n, err := strconv.ParseUint(grp, 10, 32); err == nil {
			gid = uint32(n)
		} else {
			groups, err := readGroups(root)
			if err != nil {
				return 0, 0, nil, fmt.Errorf("read the image's /etc/group: %w", err)
			}
			found := false
			for _, g := range groups {
				if g.name == grp {
					gid, found = g.gid, true
					break
				}
			}
			if !found {
				return 0, 0, nil, invalidf(field, "group %q not found in the image's /etc/group", grp)
			}
		}
	}
	return uid, gid, entry, nil
}

func checkID(field string, v int64) (uint32, error) {
	if v < 0 || v > math.MaxUint32-1 {
		return 0, invalidf(field, "%d is not a valid id", v)
	}
	return uint32(v), nil
}

func byUID(users []userEntry, uid uint32) *userEntry {
	for i := range users {
		if users[i].uid == uid {
			return &users[i]
		}
	}
	return nil
}

func byName(users []userEntry, name string) *userEntry {
	for i := range users {
		if users[i].name == name {
			return &users[i]
		}
	}
	return nil
}

// readUsers parses the rootfs's /etc/passwd (name:pw:uid:gid:gecos:home:shell).
func readUsers(root string) ([]userEntry, error) {
	b, err := readFileInRoot(root, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []userEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") || f[0] == "" {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		e := userEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	}
	return out, nil
}

// readGroups parses the rootfs's /etc/group (name:pw:gid:member,member).
func readGroups(root string) ([]groupEntry, error) {
	b, err := readFileInRoot(root, "/etc/group")
	if err != nil {
		return nil, err
	}
	var out []groupEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") || f[0] == "" {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		e := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				e.members = append(e.members, strings.TrimSpace(m))
			}
		}
		out = append(out, e)
	}
	return out, nil
}
