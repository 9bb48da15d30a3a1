package bench

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRI is a client of one runtime's socket, as kubelet's remote runtime is.
type CRI struct {
	conn *grpc.ClientConn
	RT   runtimeapi.RuntimeServiceClient
	Img  runtimeapi.ImageServiceClient
}

// Dial connects to a CRI unix socket (kubelet's 16 MiB message limit).
func Dial(socket string) (*CRI, error) {
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", socket, err)
	}
	return &CRI{conn: conn, RT: runtimeapi.NewRuntimeServiceClient(conn), Img: runtimeapi.NewImageServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *CRI) Close() error { return c.conn.Close() }

// WaitReady polls Status until RuntimeReady and NetworkReady are true.
func (c *CRI) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		resp, err := c.RT.Status(ctx, &runtimeapi.StatusRequest{})
		if err == nil {
			ready := 0
			last = ""
			for _, cond := range resp.GetStatus().GetConditions() {
				if (cond.GetType() == runtimeapi.RuntimeReady || cond.GetType() == runtimeapi.NetworkReady) && cond.GetStatus() {
					ready++
				} else if !cond.GetStatus() {
					last += fmt.Sprintf("%s: %s %s; ", cond.GetType(), cond.GetReason(), cond.GetMessage())
				}
			}
			if ready == 2 {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("runtime not ready within %s: %s", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Version is "<name> <version>" as the runtime reports it.
func (c *CRI) Version(ctx context.Context) string {
	v, err := c.RT.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return v.GetRuntimeName() + " " + v.GetRuntimeVersion()
}

// RemoveAllPods stops and removes every pod, workers at a time, and
// returns how many there were and the first failure.
func (c *CRI) RemoveAllPods(ctx context.Context, workers int) (int, error) {
	resp, err := c.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return 0, fmt.Errorf("list pods: %w", err)
	}
	var ids []string
	for _, p := range resp.GetItems() {
		ids = append(ids, p.GetId())
	}
	err = parallel(len(ids), workers, func(i int) error { return c.RemovePod(ctx, ids[i]) })
	return len(ids), err
}

// RemovePod stops and removes one pod.
func (c *CRI) RemovePod(ctx context.Context, id string) error {
	if _, err := c.RT.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stop pod %s: %w", id, err)
	}
	if _, err := c.RT.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("remove pod %s: %w", id, err)
	}
	return nil
}

// ImageID is the ID ImageStatus reports for ref (what kubelet puts in a
// ContainerConfig), "" if the image is not there.
func (c *CRI) ImageID(ctx context.Context, ref string) (string, error) {
	resp, err := c.Img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return "", err
	}
	return resp.GetImage().GetId(), nil
}
