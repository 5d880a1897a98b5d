// Command conformance-registry serves, on loopback and over plain HTTP, the
// images that critest (cri-tools v1.34.0) pulls, built offline from
// Debian's busybox-static with integration/testimage. It implements the
// read-only part of the OCI distribution API (GET/HEAD of manifests and
// blobs), which is all containerd needs to pull. containerd reaches it
// through a hosts.toml mirror for registry.k8s.io and gcr.io.
//
// The images are stand-ins, documented in docs/conformance.md:
//   - busybox:1.29-2, the cri-tools test-image-* images: busybox.
//   - nginx:1.14-2 / httpd:2.4.39-4: busybox plus a static Go web server
//     (integration/cmd/webserver) as /usr/sbin/nginx on port 80.
//   - hostnet-nginx-<arch>: the same on port 12003.
//   - test-image-user-*, test-image-predefined-group: busybox with the
//     USER and /etc/passwd, /etc/group entries of the originals.
//   - nonewprivs:1.3: a setuid-root static binary (integration/cmd/nnp)
//     that prints "Effective uid: N".
//
// Not servable offline: test-image-digest@sha256:9700f9a2..., whose
// manifest digest is fixed by the upstream bytes.
//
// It also serves stand-ins for the images of containerd's own CRI
// integration suite (hack/cri-suite.sh passes them with -image-list), under
// cri-suite.test/<name>: busybox, alpine (busybox), pause (shimless-pause),
// resource-consumer (busybox plus a "stress" script), volume-copy-up and
// volume-ownership (the upstream VOLUME layouts) and nginx (the web
// server stand-in). The digest-pinned busybox cannot be served.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/shimless/shimless/integration/testimage"
)

const (
	e2e   = "registry.k8s.io/e2e-test-images/"
	tools = "gcr.io/k8s-staging-cri-tools/"
	// CRISuite is the registry host of the CRI integration suite's images.
	criSuite = "cri-suite.test/"
)

func main() {
	busybox := flag.String("busybox", "/bin/busybox", "static busybox binary (Debian: busybox-static)")
	nnp := flag.String("nnp", "", "static binary printing its effective uid (integration/cmd/nnp)")
	pausePath := flag.String("pause", "", "shimless-pause binary, for the CRI suite's pause image")
	webPath := flag.String("webserver", "", "static web server binary (integration/cmd/webserver)")
	shellPath := flag.String("shell", "", "a busybox without the standalone shell (Debian's dynamic busybox) for /bin/sh, with the libraries ldd names; empty: busybox-static's sh")
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	addrFile := flag.String("addr-file", "", "write the listen address here once serving")
	list := flag.Bool("list", false, "print the image names and exit")
	flag.Parse()

	shell, err := shellFiles(*shellPath)
	if err != nil {
		log.Fatalf("conformance-registry: %v", err)
	}
	images, err := buildImages(*busybox, *nnp, *webPath, *pausePath, shell)
	if err != nil {
		log.Fatalf("conformance-registry: %v", err)
	}
	if *list {
		for _, img := range images {
			fmt.Println(img.Name)
		}
		return
	}
	reg, err := load(images)
	if err != nil {
		log.Fatalf("conformance-registry: %v", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("conformance-registry: %v", err)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			log.Fatalf("conformance-registry: %v", err)
		}
	}
	log.Printf("serving %d images on %s", len(reg.tags), ln.Addr())
	log.Fatal(http.Serve(ln, reg))
}

// shellFiles makes /bin/sh a busybox whose shell executes commands (no
// standalone shell: "sh -c ls" runs /bin/ls, which critest's MaskedPaths
// spec masks), plus the shared libraries ldd says it loads. Other applets
// stay busybox-static's.
func shellFiles(path string) ([]testimage.File, error) {
	if path == "" {
		return nil, nil
	}
	bin, err := testimage.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", path, err)
	}
	files := []testimage.File{
		{Path: "/bin/busybox-sh", Mode: 0o755, Data: bin},
		{Path: "/bin/sh", Linkname: "busybox-sh"},
	}
	dirs := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso has no file.
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		data, err := testimage.ReadFile(lib)
		if err != nil {
			return nil, err
		}
		for d := filepath.Dir(lib); d != "/" && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			files = append(files, testimage.File{Path: d, Mode: 0o755, Dir: true})
		}
		files = append(files, testimage.File{Path: lib, Mode: 0o755, Data: data})
	}
	return files, nil
}

func buildImages(busyboxPath, nnpPath, webPath, pausePath string, shell []testimage.File) ([]testimage.Image, error) {
	bb, err := testimage.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("%w (install Debian's busybox-static)", err)
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busyboxPath, err)
	}
	var applets []string
	for s := bufio.NewScanner(bytes.NewReader(out)); s.Scan(); {
		applets = append(applets, s.Text())
	}
	var web []byte
	if webPath != "" {
		if web, err = testimage.ReadFile(webPath); err != nil {
			return nil, err
		}
	}
	// Like the busybox:1.37 base of cri-tools' images: www-data is 33.
	passwd := "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
	group := "root:x:0:\nwww-data:x:33:\nnobody:x:65534:\n"
	base := func(name string, extra ...testimage.File) testimage.Image {
		img := testimage.BusyboxImage(bb, applets)
		img.Name = name
		for i, f := range img.Files {
			switch f.Path {
			case "/etc/passwd":
				img.Files[i].Data = []byte(passwd)
			case "/etc/group":
				img.Files[i].Data = []byte(group)
			}
		}
		// Debian's busybox-static has no pgrep applet; critest's execSync
		// timeout spec runs "pgrep sleep".
		img.Files = append(img.Files, testimage.File{Path: "/bin/pgrep", Mode: 0o755, Data: []byte(pgrep)})
		// nor ipcs; critest's HostIpc specs run "ipcs -m" and look for a
		// segment id: list /proc/sysvipc/shm instead (gVisor has no
		// /proc/sysvipc: no segments listed, as ipcs would show).
		img.Files = append(img.Files, testimage.File{Path: "/bin/ipcs", Mode: 0o755, Data: []byte("#!/bin/sh\ncat /proc/sysvipc/shm 2>/dev/null || true\n")})
		// Applets are symlinks to /bin/busybox: masking /bin/ls (critest's
		// MaskedPaths spec) would mask busybox itself. Make ls a script.
		for i, f := range img.Files {
			if f.Path == "/bin/ls" {
				img.Files[i] = testimage.File{Path: "/bin/ls", Mode: 0o755, Data: []byte("#!/bin/busybox sh\nexec /bin/busybox ls \"$@\"\n")}
			}
		}
		img.Files = append(img.Files, extra...)
		return img
	}
	// critest's default image gets the non-standalone /bin/sh (MaskedPaths:
	// "sh -c ls" must execute the masked /bin/ls).
	withShell := func(img testimage.Image) testimage.Image {
		if len(shell) == 0 {
			return img
		}
		files := img.Files[:0:0]
		for _, f := range img.Files {
			if f.Path != "/bin/sh" {
				files = append(files, f)
			}
		}
		img.Files = append(files, shell...)
		return img
	}
	withUser := func(img testimage.Image, user string) testimage.Image {
		img.Config.User = user
		return img
	}
	webImage := func(name string, port int) testimage.Image {
		img := base(name, testimage.File{Path: "/usr/share/nginx/html/index.html", Mode: 0o644, Data: []byte("<html><body>shimless conformance web server</body></html>\n")})
		if webPath != "" {
			img.Files = append(img.Files, testimage.File{Path: "/usr/sbin/nginx", Mode: 0o755, Data: web})
		}
		img.Config.Env = append(img.Config.Env, fmt.Sprintf("WEB_PORT=%d", port))
		img.Config.Cmd = []string{"/usr/sbin/nginx", "-g", "daemon off; master process"}
		return img
	}
	marker := func(name, file string) testimage.Image {
		return base(name, testimage.File{Path: "/" + file, Mode: 0o644, Data: []byte{}})
	}

	images := []testimage.Image{
		withShell(base(e2e + "busybox:1.29-2")),
		webImage(e2e+"nginx:1.14-2", 80),
		webImage(e2e+"httpd:2.4.39-4", 80),
		webImage(tools+"hostnet-nginx-"+runtime.GOARCH+":latest", 12003),
		withUser(base(tools+"test-image-user-uid:latest"), "1002"),
		withUser(base(tools+"test-image-user-username:latest"), "www-data"),
		withUser(base(tools+"test-image-user-uid-group:latest"), "1003:1004"),
		withUser(base(tools+"test-image-user-username-group:latest"), "www-data:1004"),
	}
	pg := base(tools + "test-image-predefined-group:latest")
	for i, f := range pg.Files {
		switch f.Path {
		case "/etc/passwd":
			pg.Files[i].Data = append([]byte(passwd), "default-user:x:1000:1000::/home/default-user:/bin/sh\n"...)
		case "/etc/group":
			pg.Files[i].Data = append([]byte(group), "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"...)
		}
	}
	images = append(images, withUser(pg, "1000"))
	for _, n := range []string{"test-image-1", "test-image-2", "test-image-3", "test-image-latest"} {
		images = append(images, marker(tools+n+":latest", n))
	}
	// One image under several tags: same manifest, same digest.
	for _, t := range []string{"1", "2", "3"} {
		images = append(images, marker(tools+"test-image-tags:"+t, "test-image-tags"))
	}
	for _, t := range []string{"test", "all"} {
		images = append(images, marker(tools+"test-image-tag:"+t, "test-image-tag"))
	}
	if nnpPath != "" {
		nnp, err := testimage.ReadFile(nnpPath)
		if err != nil {
			return nil, err
		}
		img := base(e2e+"nonewprivs:1.3", testimage.File{Path: "/usr/local/bin/nnp", Mode: 0o4755, Data: nnp})
		img.Config.Cmd = []string{"/usr/local/bin/nnp"}
		images = append(images, img)
	}
	images = append(images, criSuiteImages(base, webImage)...)
	if pausePath != "" {
		pause, err := testimage.ReadFile(pausePath)
		if err != nil {
			return nil, err
		}
		img := testimage.PauseImage(pause)
		img.Name = criSuite + "pause:3.10.2"
		images = append(images, img)
	}
	return images, nil
}

// criSuiteImages are the stand-ins for containerd v2.4.2's
// integration/images list (see hack/cri-suite.sh for the -image-list).
func criSuiteImages(base func(string, ...testimage.File) testimage.Image, webImage func(string, int) testimage.Image) []testimage.Image {
	content := []byte("test_content\n")
	copyUp := base(criSuite+"volume-copy-up:2.2",
		testimage.File{Path: "/test_dir/test_file", Mode: 0o644, Data: content},
		testimage.File{Path: "/C:/weird_test_dir/weird_test_file", Mode: 0o644, Data: content},
		testimage.File{Path: "/:colon_prefixed/colon_prefixed_file", Mode: 0o644, Data: content})
	copyUp.Config.Volumes = map[string]struct{}{"/test_dir": {}, "C:/weird_test_dir": {}, "/:colon_prefixed": {}}
	// Upstream: FROM ubuntu; chown nobody:nogroup /test_dir; VOLUME /test_dir.
	owner := base(criSuite+"volume-ownership:2.1",
		testimage.File{Path: "/test_dir", Mode: 0o755, Dir: true, UID: 65534, GID: 65534})
	owner.Config.Volumes = map[string]struct{}{"/test_dir": {}}
	// resource-consumer runs a server by default; the suite only execs
	// "stress -m 1 --vm-bytes 100M --vm-hang 0 -t 30" in it.
	consumer := base(criSuite+"resource-consumer:1.10",
		testimage.File{Path: "/usr/local/bin/stress", Mode: 0o755, Data: []byte(stress)})
	consumer.Config.Cmd = []string{"sleep", "1000000"}
	return []testimage.Image{
		withGroups(base(criSuite + "busybox:1.36")),
		alpine(withGroups(base(criSuite + "alpine:3.14.0"))),
		consumer, copyUp, owner,
		webImage(criSuite+"nginx:1.27.0", 80),
	}
}

// alpine makes img look like alpine:3.14 where the image volume tests
// look: /etc/os-release, and /bin/sh an absolute symlink to /bin/busybox
// (a subpath that escapes).
func alpine(img testimage.Image) testimage.Image {
	for i, f := range img.Files {
		if f.Path == "/bin/sh" {
			img.Files[i].Linkname = "/bin/busybox"
		}
	}
	img.Files = append(img.Files, testimage.File{Path: "/etc/os-release", Mode: 0o644,
		Data: []byte("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.14.0\n")})
	return img
}

// withGroups gives img busybox:1.36's /etc/passwd and /etc/group:
// TestAdditionalGids expects root in wheel (10), a user and a group 1
// named daemon.
func withGroups(img testimage.Image) testimage.Image {
	for i, f := range img.Files {
		switch f.Path {
		case "/etc/passwd":
			img.Files[i].Data = []byte(busyboxPasswd)
		case "/etc/group":
			img.Files[i].Data = []byte(busyboxGroup)
		}
	}
	return img
}

const busyboxPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const busyboxGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`

// stress -m 1 --vm-bytes NM -t S: holds N MiB of anonymous memory (a
// shell variable) for S seconds. Not a tmpfs file: the pod's /dev/shm is
// 64 MiB.
const stress = `#!/bin/sh
mb=100 secs=30
while [ $# -gt 0 ]; do
	case $1 in
	--vm-bytes) mb=${2%M}; shift ;;
	-t) secs=$2; shift ;;
	esac
	shift
done
x=$(dd if=/dev/zero bs=1048576 count=$mb 2>/dev/null | tr '\0' x)
sleep "$secs"
`

// pgrep NAME: the pids whose command name is NAME; exit 1 when none.
const pgrep = `#!/bin/sh
found=1
for c in /proc/[0-9]*/comm; do
	[ "$(cat "$c" 2>/dev/null)" = "$1" ] || continue
	p=${c#/proc/}; echo "${p%/comm}"; found=0
done
exit $found
`

type registry struct {
	blobs map[string][]byte             // digest -> content
	types map[string]string             // manifest digest -> media type
	tags  map[string]ocispec.Descriptor // host/repo:tag -> manifest
}

func load(images []testimage.Image) (*registry, error) {
	var buf bytes.Buffer
	if err := testimage.WriteArchive(&buf, images); err != nil {
		return nil, err
	}
	r := &registry{blobs: map[string][]byte{}, types: map[string]string{}, tags: map[string]ocispec.Descriptor{}}
	var index ocispec.Index
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		switch {
		case h.Name == "index.json":
			if err := json.Unmarshal(data, &index); err != nil {
				return nil, err
			}
		case strings.HasPrefix(h.Name, "blobs/sha256/"):
			r.blobs["sha256:"+strings.TrimPrefix(h.Name, "blobs/sha256/")] = data
		}
	}
	for _, m := range index.Manifests {
		name := m.Annotations[ocispec.AnnotationRefName]
		r.types[m.Digest.String()] = m.MediaType
		r.tags[name] = m
	}
	return r, nil
}

// ServeHTTP answers /v2/, /v2/<repo>/manifests/<ref> and
// /v2/<repo>/blobs/<digest>; containerd passes the upstream host as ?ns=.
func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	log.Printf("%s %s", req.Method, req.URL)
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "read-only registry", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(req.URL.Path, "/v2/")
	if p == "" || p == req.URL.Path {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.WriteHeader(http.StatusOK)
		return
	}
	var repo, kind, ref string
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(p, k); i > 0 {
			repo, kind, ref = p[:i], strings.Trim(k, "/"), p[i+len(k):]
			break
		}
	}
	if repo == "" {
		notFound(w, "NAME_UNKNOWN")
		return
	}
	var data []byte
	var mediaType, dgst string
	if kind == "manifests" && !strings.HasPrefix(ref, "sha256:") {
		d, ok := r.lookup(req.URL.Query().Get("ns"), repo, ref)
		if !ok {
			notFound(w, "MANIFEST_UNKNOWN")
			return
		}
		dgst, mediaType = d.Digest.String(), d.MediaType
	} else {
		dgst = ref
		mediaType = r.types[dgst]
		if mediaType == "" {
			mediaType = "application/octet-stream"
		}
	}
	data, ok := r.blobs[dgst]
	if !ok {
		notFound(w, "BLOB_UNKNOWN")
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", dgst)
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		w.Write(data)
	}
}

func (r *registry) lookup(ns, repo, tag string) (ocispec.Descriptor, bool) {
	if ns != "" {
		d, ok := r.tags[ns+"/"+repo+":"+tag]
		return d, ok
	}
	for _, host := range []string{"registry.k8s.io", "gcr.io", "cri-suite.test"} {
		if d, ok := r.tags[host+"/"+repo+":"+tag]; ok {
			return d, true
		}
	}
	return ocispec.Descriptor{}, false
}

func notFound(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"not in the offline conformance registry"}]}`+"\n", code)
}
