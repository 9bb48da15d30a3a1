package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// fsInfoTTL is how long a measured usage is reused: kubelet asks every few
// seconds and walking the directories is not free.
const fsInfoTTL = 5 * time.Second

// FsUsage is the space used under a storage directory.
type FsUsage struct {
	Timestamp  time.Time
	Mountpoint string
	UsedBytes  uint64
	InodesUsed uint64
}

// FsInfo is the usage of the image and the container filesystems: the
// driver's image directory (<root>/<driver>-images) and container directory
// (<root>/<driver>-containers).
type FsInfo struct {
	Images     FsUsage
	Containers FsUsage
}

type fsInfoCache struct {
	mu   sync.Mutex
	at   time.Time
	info FsInfo
}

// FsInfo measures the image and container filesystems, at most once every
// fsInfoTTL.
func (s *ImageService) FsInfo(ctx context.Context) (FsInfo, error) {
	s.fs.mu.Lock()
	defer s.fs.mu.Unlock()
	if !s.fs.at.IsZero() && time.Since(s.fs.at) < fsInfoTTL {
		return s.fs.info, nil
	}
	images, err := diskUsage(ctx, imagesDir(s.store))
	if err != nil {
		return FsInfo{}, err
	}
	containers, err := diskUsage(ctx, containersDir(s.store))
	if err != nil {
		return FsInfo{}, err
	}
	s.fs.info = FsInfo{Images: images, Containers: containers}
	s.fs.at = time.Now()
	return s.fs.info, nil
}

// diskUsage walks dir and adds up the blocks and inodes it uses, counting
// hard-linked files once. A missing dir uses nothing.
func diskUsage(ctx context.Context, dir string) (FsUsage, error) {
	u := FsUsage{Timestamp: time.Now(), Mountpoint: dir}
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fi, err := os.Lstat(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		u.InodesUsed++
		u.UsedBytes += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return FsUsage{}, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return u, nil
}
