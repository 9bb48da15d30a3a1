package stats

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLayerCache(t *testing.T) {
	c := NewLayerCache(time.Hour)
	var calls atomic.Int32
	measure := func() (LayerUsage, error) {
		calls.Add(1)
		time.Sleep(10 * time.Millisecond)
		return LayerUsage{Time: time.Now(), Bytes: 10, Inodes: 2}, nil
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if u, err := c.Get("a", measure); err != nil || u.Bytes != 10 {
				t.Errorf("Get = %+v, %v", u, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("%d measurements for concurrent Gets within the TTL, want 1", calls.Load())
	}
	c.Forget("a")
	c.Get("a", measure)
	if calls.Load() != 2 {
		t.Errorf("no new measurement after Forget")
	}

	failing := NewLayerCache(time.Hour)
	boom := errors.New("boom")
	if _, err := failing.Get("b", func() (LayerUsage, error) { return LayerUsage{}, boom }); !errors.Is(err, boom) {
		t.Errorf("error not passed on: %v", err)
	}
	if u, err := failing.Get("b", measure); err != nil || u.Bytes != 10 {
		t.Errorf("a failure was cached: %+v, %v", u, err)
	}

	expiring := NewLayerCache(time.Nanosecond)
	expiring.Get("c", measure)
	time.Sleep(time.Millisecond)
	before := calls.Load()
	expiring.Get("c", measure)
	if calls.Load() != before+1 {
		t.Error("an expired usage was reused")
	}
}

func TestMountSource(t *testing.T) {
	const mountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw
41 22 8:1 /var/lib/x /mnt/x rw - ext4 /dev/vda1 rw
50 22 253:3 / /data rw shared:7 master:1 - xfs /dev/mapper/data rw
`
	for _, tc := range []struct {
		major, minor uint32
		want         string
	}{
		{8, 1, "/dev/vda1"},
		{253, 3, "/dev/mapper/data"},
		{0, 26, "tmpfs"},
		{9, 9, "9:9"},
	} {
		got, err := mountSource(strings.NewReader(mountinfo), tc.major, tc.minor)
		if err != nil || got != tc.want {
			t.Errorf("mountSource(%d:%d) = %q, %v; want %q", tc.major, tc.minor, got, err, tc.want)
		}
	}
	if fs, err := FilesystemOf("/"); err != nil || fs.Device == "" || fs.CapacityBytes == 0 {
		t.Errorf("FilesystemOf(/) = %+v, %v", fs, err)
	}
}
