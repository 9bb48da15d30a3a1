package server

import (
	"sort"
)

// runtimeFor returns the handler a pod or container runs under; handlers
// are only ever added (on SIGHUP), so an object's handler always exists.
// An unknown name is a nil interface, never a typed nil a caller's
// comparison with nil would miss.
func (s *Server) runtimeFor(name string) OCIRuntime {
	s.runtimesMu.RLock()
	defer s.runtimesMu.RUnlock()
	rt, ok := s.runtimes[name]
	if !ok {
		return nil
	}
	return rt
}

// handlerNames lists the configured handlers, sorted.
func (s *Server) handlerNames() []string {
	s.runtimesMu.RLock()
	defer s.runtimesMu.RUnlock()
	names := make([]string, 0, len(s.runtimes))
	for n := range s.runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AddRuntime makes a handler added to the configuration usable by new pods
// without a restart. It reports false when the name is already taken: a
// changed handler would change running pods' runtime under them.
func (s *Server) AddRuntime(name string, rt OCIRuntime) bool {
	s.runtimesMu.Lock()
	defer s.runtimesMu.Unlock()
	if _, ok := s.runtimes[name]; ok {
		return false
	}
	s.runtimes[name] = rt
	return true
}
