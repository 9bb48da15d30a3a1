package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

var confExtensions = []string{".conflist", ".conf", ".json"}

// confFiles lists the network configs in dir, sorted, with a fingerprint
// of their names, sizes and times that changes when any of them does.
func confFiles(dir string) (files []string, fingerprint string, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var fp strings.Builder
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || !(ext == ".conflist" || ext == ".conf" || ext == ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		files = append(files, path)
		if info, err := os.Stat(path); err == nil {
			fmt.Fprintf(&fp, "%s:%d:%d;", e.Name(), info.Size(), info.ModTime().UnixNano())
		}
	}
	sort.Strings(files)
	return files, fp.String(), nil
}

// LoadConfFile parses one config file into a list: a .conflist is a list;
// a .conf or .json is one plugin wrapped into a list, unless it holds a
// "plugins" array (then it is a list too).
func LoadConfFile(path string) (*libcni.NetworkConfigList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	isList := filepath.Ext(path) == ".conflist"
	if !isList {
		var probe struct {
			Plugins json.RawMessage `json:"plugins"`
		}
		isList = json.Unmarshal(data, &probe) == nil && probe.Plugins != nil
	}
	var list *libcni.NetworkConfigList
	if isList {
		list, err = libcni.NetworkConfFromFile(path)
	} else {
		var conf *libcni.PluginConfig
		conf, err = libcni.NetworkPluginConfFromBytes(data)
		if err == nil {
			list, err = libcni.ConfListFromConf(conf)
		}
	}
	if err != nil {
		return nil, err
	}
	if list.Name == "" {
		return nil, errors.New("network has no name")
	}
	if len(list.Plugins) == 0 {
		return nil, errors.New("network has no plugins")
	}
	return list, nil
}

// reload re-reads the conf dir when it changed (or while no network is
// usable, since plugin binaries may have appeared) and logs state changes.
func (m *Manager) reload(ctx context.Context) {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()

	files, fp, err := confFiles(m.opts.ConfDir)
	m.mu.RLock()
	unchanged := err == nil && fp == m.fingerprint && m.net != nil
	m.mu.RUnlock()
	if unchanged {
		return
	}

	var (
		list    *libcni.NetworkConfigList
		file    string
		statErr error
		broken  []string
	)
	switch {
	case err != nil:
		statErr = fmt.Errorf("read cni conf dir %s: %w", m.opts.ConfDir, err)
	case len(files) == 0:
		statErr = fmt.Errorf("no cni network config (%s) in %s; has the network provider started?",
			strings.Join(confExtensions, ", "), m.opts.ConfDir)
	default:
		for _, f := range files {
			l, err := LoadConfFile(f)
			if err == nil {
				_, err = m.cni.ValidateNetworkList(ctx, l)
			}
			if err != nil {
				broken = append(broken, fmt.Sprintf("%s: %v", f, err))
				continue
			}
			list, file = l, f
			break
		}
		if list == nil {
			statErr = fmt.Errorf("no valid cni network config in %s: %s", m.opts.ConfDir, strings.Join(broken, "; "))
		}
	}

	m.mu.Lock()
	prev, prevFile, prevErr := m.net, m.netFile, m.statusErr
	fpChanged := fp != m.fingerprint
	m.net, m.netFile, m.statusErr, m.fingerprint = list, file, statErr, fp
	m.mu.Unlock()

	switch {
	case list != nil && (prev == nil || prev.Name != list.Name || prevFile != file):
		m.log.Info("cni network ready", "network", list.Name, "file", file, "cniVersion", list.CNIVersion)
	case list != nil && !bytes.Equal(prev.Bytes, list.Bytes):
		m.log.Info("cni network config changed", "network", list.Name, "file", file, "cniVersion", list.CNIVersion)
	case list == nil && (prevErr == nil || prevErr.Error() != statErr.Error()):
		m.log.Info("cni network not ready", "reason", statErr.Error())
	}
	if list != nil && fpChanged {
		// Broken files that sort before the default one are skipped, as
		// ocicni does; say so once per change of the dir.
		for _, b := range broken {
			m.log.Warn("skipping invalid cni network config", "error", b)
		}
	}
}
