// Package testimage builds the offline OCI test images: no registry, no
// internet. Images are single-layer, reproducible (fixed timestamps and
// ordering) and written as one OCI archive that `ctr images import` reads;
// each manifest carries its name in the io.containerd.image.name
// annotation.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // registers the digest algorithm
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Stable names the integration tests refer to.
const (
	Busybox = "shimless.test/busybox:latest"
	Pause   = "shimless.test/pause:latest"
)

// epoch is the mtime of every file: images are byte-for-byte reproducible.
var epoch = time.Unix(0, 0).UTC()

// File is one entry of an image's single layer.
type File struct {
	Path     string // absolute path inside the image
	Mode     int64  // permission bits
	Data     []byte // regular file contents
	Linkname string // non-empty: a symlink to Linkname
	Dir      bool
	UID, GID int // owner (0:0 unless set)
}

// Image is a name, a config and its files.
type Image struct {
	Name   string
	Config ocispec.ImageConfig
	Files  []File
}

type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

// layer returns the gzipped tar of files and the digest of the uncompressed
// tar (the diff id). Parent directories are added as needed.
func layer(files []File) (gz []byte, diffID digest.Digest, err error) {
	dirs := map[string]bool{}
	var entries []File
	for _, f := range files {
		for d := path.Dir(f.Path); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			entries = append(entries, File{Path: d, Mode: 0o755, Dir: true})
		}
		if f.Dir {
			if dirs[f.Path] {
				continue
			}
			dirs[f.Path] = true
		}
		entries = append(entries, f)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })

	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, f := range entries {
		h := &tar.Header{Name: f.Path[1:], Mode: f.Mode, Uid: f.UID, Gid: f.GID, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case f.Linkname != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Linkname, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, "", err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	zw.ModTime = epoch
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return out.Bytes(), digest.FromBytes(raw.Bytes()), nil
}

// WriteArchive writes images as one OCI image-layout tar to w.
func WriteArchive(w io.Writer, images []Image) error {
	var blobs []blob
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, img := range images {
		gz, diffID, err := layer(img.Files)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
		l := newBlob(ocispec.MediaTypeImageLayerGzip, gz)
		cfg, err := json.Marshal(ocispec.Image{
			Created:  &epoch,
			Platform: ocispec.Platform{OS: "linux", Architecture: goarch},
			Config:   img.Config,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		})
		if err != nil {
			return err
		}
		c := newBlob(ocispec.MediaTypeImageConfig, cfg)
		man, err := json.Marshal(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    c.desc,
			Layers:    []ocispec.Descriptor{l.desc},
		})
		if err != nil {
			return err
		}
		m := newBlob(ocispec.MediaTypeImageManifest, man)
		blobs = append(blobs, l, c, m)
		d := m.desc
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: goarch}
		d.Annotations = map[string]string{
			"io.containerd.image.name": img.Name,
			ocispec.AnnotationRefName:  img.Name,
		}
		index.Manifests = append(index.Manifests, d)
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	seen := map[digest.Digest]bool{}
	for _, b := range blobs {
		if seen[b.desc.Digest] {
			continue
		}
		seen[b.desc.Digest] = true
		if err := put(path.Join("blobs", b.desc.Digest.Algorithm().String(), b.desc.Digest.Encoded()), b.data); err != nil {
			return err
		}
	}
	if err := put("index.json", idx); err != nil {
		return err
	}
	return tw.Close()
}

// BusyboxImage is a shell image from a static busybox binary: /bin/busybox
// plus a symlink per applet, so "sh", "echo", "sleep" ... resolve.
func BusyboxImage(busybox []byte, applets []string) Image {
	files := []File{
		{Path: "/bin/busybox", Mode: 0o755, Data: busybox},
		{Path: "/tmp", Mode: 0o1777, Dir: true},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\n")},
	}
	for _, a := range applets {
		if a == "" || a == "busybox" {
			continue
		}
		files = append(files, File{Path: "/bin/" + a, Linkname: "busybox"})
	}
	return Image{
		Name: Busybox,
		Config: ocispec.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"sh"},
		},
		Files: files,
	}
}

// PauseImage wraps the shimless-pause binary as the pod sandbox image of
// runc pods in tests.
func PauseImage(pause []byte) Image {
	return Image{
		Name:   Pause,
		Config: ocispec.ImageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535"},
		Files:  []File{{Path: "/pause", Mode: 0o755, Data: pause}},
	}
}

// ReadFile is os.ReadFile with the path in the error.
func ReadFile(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}
