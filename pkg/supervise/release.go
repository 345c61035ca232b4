package supervise

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A sensor whose workload Attune pinned to a pack release runs that
// release's files, laid out as Attune's volume transport lays them out
// under packs.base_dir (crates/common/src/pack_transport/mod.rs
// release_cache_path, volume.rs release_archive_matches):
//
//	<packs_dir>/.releases/sha256/<digest>/pack.tar.gz   its SHA-256 is <digest>
//	<packs_dir>/.releases/sha256/<digest>/pack/pack.yaml
//	<packs_dir>/.releases/sha256/<digest>/pack/sensors/<entrypoint>
//
// As Attune does, the release counts as present only when pack.yaml is
// there and the archive beside it hashes to the pinned digest.

// ReleaseRoot is the directory that holds the pack of release digest, in
// the place of <packs_dir>/<pack> (EntrypointPath's packsDir and packRef):
// <packs_dir>/.releases/sha256/<digest> and "pack".
func ReleaseRoot(packsDir, digest string) (dir, pack string) {
	if packsDir == "" {
		packsDir = DefaultPacksDir
	}
	return filepath.Join(packsDir, ".releases", "sha256", digest), "pack"
}

// verified caches releases whose archive matched, by path, size and
// modification time: a release is hashed once, not at every start.
var verified sync.Map // string -> releaseStamp

type releaseStamp struct {
	size int64
	mod  time.Time
}

// CheckRelease says why the pinned release digest is not usable under
// packsDir ("" when it is).
func CheckRelease(packsDir, digest string) string {
	if len(digest) != 64 {
		return fmt.Sprintf("the workload is pinned to pack release %q, which is not a SHA-256 digest", digest)
	}
	root, pack := ReleaseRoot(packsDir, digest)
	archive := filepath.Join(root, "pack.tar.gz")
	missing := fmt.Sprintf("pack release %s is not on this host: want %s with pack.yaml, and %s whose SHA-256 is that digest (Attune's volume transport layout under sensor.packs_dir)",
		digest, filepath.Join(root, pack), archive)
	if fi, err := os.Stat(filepath.Join(root, pack, "pack.yaml")); err != nil || !fi.Mode().IsRegular() {
		return missing
	}
	fi, err := os.Stat(archive)
	if err != nil || !fi.Mode().IsRegular() {
		return missing
	}
	stamp := releaseStamp{fi.Size(), fi.ModTime()}
	if v, ok := verified.Load(archive); ok && v.(releaseStamp) == stamp {
		return ""
	}
	f, err := os.Open(archive)
	if err != nil {
		return missing
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return missing
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Sprintf("pack release %s on this host does not match its digest: %s hashes to %s (reinstall the release)", digest, archive, got)
	}
	verified.Store(archive, stamp)
	return ""
}
