package server

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/storage"
)

// ImageFsInfo reports the space used by images and by containers' writable
// layers (measured at most every few seconds).
func (s *Server) ImageFsInfo(ctx context.Context, _ *runtime.ImageFsInfoRequest) (*runtime.ImageFsInfoResponse, error) {
	info, err := s.images.FsInfo(ctx)
	if err != nil {
		return nil, err
	}
	return &runtime.ImageFsInfoResponse{
		ImageFilesystems:     []*runtime.FilesystemUsage{criFsUsage(info.Images)},
		ContainerFilesystems: []*runtime.FilesystemUsage{criFsUsage(info.Containers)},
	}, nil
}

func criFsUsage(u storage.FsUsage) *runtime.FilesystemUsage {
	return &runtime.FilesystemUsage{
		Timestamp:  u.Timestamp.UnixNano(),
		FsId:       &runtime.FilesystemIdentifier{Mountpoint: u.Mountpoint},
		UsedBytes:  &runtime.UInt64Value{Value: u.UsedBytes},
		InodesUsed: &runtime.UInt64Value{Value: u.InodesUsed},
	}
}
