//go:build unix

package batchconn

import (
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestHostCmsgLayout checks the cmsghdr layout the OOB check walks with
// against x/sys, and that control data built by x/sys passes it.
func TestHostCmsgLayout(t *testing.T) {
	want := cmsgLayout{
		lenSize: int(unsafe.Sizeof(unix.Cmsghdr{}.Len)),
		hdrLen:  unix.SizeofCmsghdr,
		align:   unix.CmsgSpace(1) - unix.CmsgSpace(0),
	}
	if hostCmsg != want {
		t.Errorf("hostCmsg = %+v, x/sys says %+v", hostCmsg, want)
	}
	if runtime.GOOS == "linux" && hostCmsg != linuxCmsg {
		t.Errorf("hostCmsg = %+v, want the planner's Linux layout %+v", hostCmsg, linuxCmsg)
	}
	for name, oob := range map[string][]byte{
		"UnixRights of one fd":    unix.UnixRights(0),
		"UnixRights of three fds": unix.UnixRights(0, 1, 2),
		"two messages":            append(unix.UnixRights(0), unix.UnixRights(1, 2)...),
	} {
		if err := checkOOB(oob, hostCmsg); err != nil {
			t.Errorf("%s: checkOOB = %v, want nil", name, err)
		}
		if err := checkOOB(append(oob, 0), hostCmsg); err != errOOBLeftover {
			t.Errorf("%s and a byte: checkOOB = %v, want %v", name, err, errOOBLeftover)
		}
	}
}
