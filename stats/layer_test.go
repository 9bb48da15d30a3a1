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
	c := NewLayerCache(time.Hour, time.Hour)
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

	failing := NewLayerCache(time.Hour, time.Hour)
	boom := errors.New("boom")
	if _, err := failing.Get("b", func() (LayerUsage, error) { return LayerUsage{}, boom }); !errors.Is(err, boom) {
		t.Errorf("error not passed on: %v", err)
	}
	if u, err := failing.Get("b", measure); err != nil || u.Bytes != 10 {
		t.Errorf("a failure was cached: %+v, %v", u, err)
	}

	expiring := NewLayerCache(time.Nanosecond, time.Nanosecond)
	expiring.Get("c", measure)
	time.Sleep(time.Millisecond)
	before := calls.Load()
	expiring.Get("c", measure)
	if calls.Load() != before+1 {
		t.Error("a usage older than the maximum age was reused")
	}
}

// A usage past its TTL but within the maximum age is returned at once, and
// measured again in the background, once, for the calls after.
func TestLayerCacheRefresh(t *testing.T) {
	c := NewLayerCache(time.Nanosecond, time.Hour)
	var calls atomic.Int32
	release := make(chan struct{})
	measure := func() (LayerUsage, error) {
		n := calls.Add(1)
		if n > 1 {
			<-release // the background measurement
		}
		return LayerUsage{Time: time.Now(), Bytes: uint64(n)}, nil
	}
	if u, err := c.Get("a", measure); err != nil || u.Bytes != 1 {
		t.Fatalf("first Get = %+v, %v; want a measurement", u, err)
	}
	time.Sleep(time.Millisecond)
	for range 3 {
		if u, err := c.Get("a", measure); err != nil || u.Bytes != 1 {
			t.Errorf("Get of a stale usage = %+v, %v; want the stale one while measuring", u, err)
		}
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		u, _ := c.Get("a", measure)
		if u.Bytes == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background measurement never landed: %+v", u)
		}
		time.Sleep(time.Millisecond)
	}
	// The Get that found 2 may have started a third measurement; no more.
	if n := calls.Load(); n < 2 || n > 3 {
		t.Errorf("%d measurements, want 2 or 3: one per stale period, not one per Get", n)
	}

	failing := NewLayerCache(time.Nanosecond, time.Hour)
	failing.Get("b", func() (LayerUsage, error) { return LayerUsage{Time: time.Now(), Bytes: 7}, nil })
	time.Sleep(time.Millisecond)
	done := make(chan struct{})
	failing.Get("b", func() (LayerUsage, error) {
		defer close(done)
		return LayerUsage{}, errors.New("gone")
	})
	<-done
	if u, err := failing.Get("b", func() (LayerUsage, error) { return LayerUsage{Time: time.Now(), Bytes: 9}, nil }); err != nil || u.Bytes != 7 {
		t.Errorf("after a failed background measurement Get = %+v, %v; want the last good usage", u, err)
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
