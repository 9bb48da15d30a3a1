package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/specgen"
)

// ContainerStatus reports a container's state, times, exit, image, mounts,
// log path and resources.
func (s *Server) ContainerStatus(ctx context.Context, req *runtime.ContainerStatusRequest) (*runtime.ContainerStatusResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	resp := &runtime.ContainerStatusResponse{Status: s.containerStatus(c)}
	if req.GetVerbose() {
		if resp.Info, err = s.containerInfo(c); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

var criState = map[container.State]runtime.ContainerState{
	container.StateCreated: runtime.ContainerState_CONTAINER_CREATED,
	container.StateRunning: runtime.ContainerState_CONTAINER_RUNNING,
	container.StateExited:  runtime.ContainerState_CONTAINER_EXITED,
}

// reportedImage is c's image spec with the image named as imageName chose.
func reportedImage(c *container.Container) *runtime.ImageSpec {
	spec := c.Config.GetImage()
	if c.ImageName == "" || spec == nil || c.ImageName == spec.GetImage() {
		return spec
	}
	out := proto.Clone(spec).(*runtime.ImageSpec)
	out.Image = c.ImageName
	return out
}

func (s *Server) containerStatus(c *container.Container) *runtime.ContainerStatus {
	snap := c.Status()
	st := &runtime.ContainerStatus{
		Id:          c.ID,
		Metadata:    c.Config.GetMetadata(),
		State:       criState[snap.State],
		CreatedAt:   c.CreatedAt.UnixNano(),
		Image:       reportedImage(c),
		ImageRef:    c.ImageRef,
		ImageId:     c.ImageID,
		Labels:      c.Config.GetLabels(),
		Annotations: c.Config.GetAnnotations(),
		Mounts:      c.Mounts,
		LogPath:     c.LogPath,
		User:        c.User,
		StopSignal:  specgen.CRISignal(c.StopSignal),
	}
	if !snap.StartedAt.IsZero() {
		st.StartedAt = snap.StartedAt.UnixNano()
	}
	if snap.State == container.StateExited {
		st.ExitCode = snap.Exit.Code
		st.FinishedAt = snap.Exit.FinishedAt.UnixNano()
		st.Reason, st.Message = snap.Exit.Reason, snap.Exit.Message
	}
	if snap.Resources != nil {
		st.Resources = &runtime.ContainerResources{Linux: snap.Resources}
	}
	return st
}

// containerInfo is the verbose status: the pid and the OCI spec.
func (s *Server) containerInfo(c *container.Container) (map[string]string, error) {
	info := map[string]any{
		"sandboxID":      c.PodID,
		"runtimeHandler": c.Handler,
		"bundle":         c.Bundle,
	}
	if pid, err := s.runtimeFor(c.Handler).InitPid(s.ociContainer(c)); err == nil && c.State() == container.StateRunning {
		info["pid"] = pid
	}
	if b, err := os.ReadFile(filepath.Join(c.Bundle, "config.json")); err == nil {
		if json.Valid(b) {
			info["runtimeSpec"] = json.RawMessage(b)
		} else {
			// crictl inspect still shows the rest: it is what one looks
			// at to find out what is wrong.
			s.log.Warn("container's runtime spec is not JSON; left out of its verbose status", "container", c.ID)
		}
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode verbose status of container %s: %w", c.ID, err)
	}
	return map[string]string{"info": string(b)}, nil
}
