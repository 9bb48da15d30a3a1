package container

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/lifecycle"
)

// Record is what survives a restart of Berth about a container; whether it
// still runs is re-derived from conmon and its exit file.
type Record struct {
	Phase        lifecycle.Phase   `json:"phase"`
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	PodID        string            `json:"podId"`
	Config       json.RawMessage   `json:"config"`
	CreatedAt    time.Time         `json:"createdAt"`
	ImageID      string            `json:"imageId"`
	ImageRef     string            `json:"imageRef"`
	Handler      string            `json:"handler"`
	CgroupParent string            `json:"cgroupParent"`
	Bundle       string            `json:"bundle"`
	LogPath      string            `json:"logPath"`
	Mounts       []json.RawMessage `json:"mounts,omitempty"`
	VolumeDirs   []string          `json:"volumeDirs,omitempty"`
	ImageMounts  []string          `json:"imageMounts,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	User         json.RawMessage   `json:"user,omitempty"`
	State        State             `json:"state"`
	StartedAt    time.Time         `json:"startedAt"`
	Exit         Exit              `json:"exit"`
	Resources    json.RawMessage   `json:"resources,omitempty"`
	// ImagesReleased: a removal already released ImageMounts.
	ImagesReleased bool `json:"imagesReleased,omitempty"`
}

func marshalProto(m proto.Message) (json.RawMessage, error) {
	if m == nil {
		return nil, nil
	}
	return protojson.Marshal(m)
}

// record is what the container saves with status snap.
func (c *Container) record(snap Status) (*Record, error) {
	r := &Record{
		Phase: snap.Phase, ID: c.ID, Name: c.Name, PodID: c.PodID, CreatedAt: c.CreatedAt,
		ImageID: c.ImageID, ImageRef: c.ImageRef, Handler: c.Handler, CgroupParent: c.CgroupParent,
		Bundle: c.Bundle, LogPath: c.LogPath, VolumeDirs: c.VolumeDirs, ImageMounts: c.ImageMounts, StopSignal: c.StopSignal,
		State: snap.State, StartedAt: snap.StartedAt, Exit: snap.Exit, ImagesReleased: snap.ImagesReleased,
	}
	var err error
	if r.Config, err = marshalProto(c.Config); err != nil {
		return nil, fmt.Errorf("encode config of container %s: %w", c.ID, err)
	}
	if c.User != nil {
		if r.User, err = marshalProto(c.User); err != nil {
			return nil, fmt.Errorf("encode user of container %s: %w", c.ID, err)
		}
	}
	if snap.Resources != nil {
		if r.Resources, err = marshalProto(snap.Resources); err != nil {
			return nil, fmt.Errorf("encode resources of container %s: %w", c.ID, err)
		}
	}
	for _, m := range c.Mounts {
		b, err := marshalProto(m)
		if err != nil {
			return nil, fmt.Errorf("encode mounts of container %s: %w", c.ID, err)
		}
		r.Mounts = append(r.Mounts, b)
	}
	return r, nil
}

// FromRecord rebuilds a container from its record.
func FromRecord(r *Record, h Hooks) (*Container, error) {
	c := &Container{
		ID: r.ID, Name: r.Name, PodID: r.PodID, CreatedAt: r.CreatedAt,
		ImageID: r.ImageID, ImageRef: r.ImageRef, Handler: r.Handler, CgroupParent: r.CgroupParent,
		Bundle: r.Bundle, LogPath: r.LogPath, VolumeDirs: r.VolumeDirs, ImageMounts: r.ImageMounts, StopSignal: r.StopSignal,
		Config: &runtime.ContainerConfig{},
	}
	st := Status{Phase: r.Phase, State: r.State, StartedAt: r.StartedAt, Exit: r.Exit, ImagesReleased: r.ImagesReleased}
	if err := protojson.Unmarshal(r.Config, c.Config); err != nil {
		return nil, fmt.Errorf("decode config of container %s: %w", r.ID, err)
	}
	if len(r.User) > 0 {
		c.User = &runtime.ContainerUser{}
		if err := protojson.Unmarshal(r.User, c.User); err != nil {
			return nil, fmt.Errorf("decode user of container %s: %w", r.ID, err)
		}
	}
	if len(r.Resources) > 0 {
		st.Resources = &runtime.LinuxContainerResources{}
		if err := protojson.Unmarshal(r.Resources, st.Resources); err != nil {
			return nil, fmt.Errorf("decode resources of container %s: %w", r.ID, err)
		}
	}
	for _, b := range r.Mounts {
		m := &runtime.Mount{}
		if err := protojson.Unmarshal(b, m); err != nil {
			return nil, fmt.Errorf("decode mounts of container %s: %w", r.ID, err)
		}
		c.Mounts = append(c.Mounts, m)
	}
	c.status = newBox(c, st, h)
	return c, nil
}
