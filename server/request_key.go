package server

import (
	"crypto/sha256"
	"encoding/hex"

	"google.golang.org/protobuf/proto"
)

// requestKey identifies a create request by its content, so that only a
// retry of the very same request joins a creation under way; another request
// for the same name is refused with AlreadyExists.
func requestKey(req proto.Message) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		// A request that arrived over gRPC always marshals again; should one
		// not, it matches nothing, and the name's reservation decides.
		return "unmarshalable"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
