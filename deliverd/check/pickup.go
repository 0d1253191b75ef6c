package check

import (
	"os"

	"example.org/popspool/deliverd/pickup"
	"example.org/popspool/shared/event"
)

// pickupFolder checks a pickup:// target: the pickup folder exists and
// deliverd may write into it, and the staging folder beside it can be
// made and written, on the same volume (so the rename that places a
// message is atomic). No probe file is put into the pickup folder itself:
// the service watching it would take it as a message.
func (ck *checker) pickupFolder(dir string) bool {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return ck.failed("folder", event.CheckPickup, err.Error(),
			"start the IIS SMTP or Exchange Transport service once (it makes its Pickup folder), or fix the path in deliver.target")
	case !fi.IsDir():
		return ck.failed("folder", event.CheckPickup, dir+" is not a folder",
			"deliver.target must name the pickup folder itself, such as pickup:///C:/inetpub/mailroot/Pickup")
	}
	ck.ok("folder", "%s is a folder", dir)
	if err := writable(dir); err != nil {
		return ck.failed("writable", event.CheckPickup, err.Error(),
			"give deliverd's user (the service account) write and delete permission on the pickup folder")
	}
	ck.ok("writable", "deliverd's user may write into %s", dir)
	staging := pickup.Staging(dir)
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return ck.failed("staging", event.CheckPickup, err.Error(),
			"let deliverd's user create "+staging+" beside the pickup folder, or create it for that user")
	}
	if err := probeWrite(staging); err != nil {
		return ck.failed("staging", event.CheckPickup, err.Error(),
			"give deliverd's user write permission on "+staging+", and check the volume is neither read-only nor full")
	}
	same, err := sameVolume(staging, dir)
	if err != nil {
		return ck.failed("staging", event.CheckPickup, err.Error(), "check the staging folder "+staging)
	}
	if !same {
		return ck.failed("staging", event.CheckPickup, staging+" is on another volume than "+dir,
			"a message is renamed from the staging folder into the pickup folder, which must be atomic: do not mount another file system at "+staging)
	}
	ck.ok("staging", "created and removed a probe file in %s, on the pickup folder's volume; messages are written there and renamed in when complete", staging)
	return true
}
