// Package kindimage builds, once per machine and pinned version, every image
// the kind cluster needs without an image registry: the node image of the
// pinned Kubernetes version and the local registry's image.
//
// The recipe is the one verified in KIND-OFFLINE.md (shared notes of this
// project): a Debian bookworm rootfs made by debootstrap from Debian's
// packages (containerd, runc, the CNI plugins come from there); kind's base
// files from the kind module in the Go module cache; kubelet, kubeadm,
// kube-proxy, kubectl, crictl, the control plane, etcd and CoreDNS built
// from the Go module proxy by the tools cache (internal/tools); the images
// kubeadm runs (control plane, etcd, CoreDNS, pause, kube-proxy) built FROM
// scratch (kube-proxy on the rootfs, it needs iptables), imported into the
// node's containerd and pinned there; the registry is Debian's
// docker-registry binary in a FROM-scratch image.
//
// Images are built with Docker's classic builder (DOCKER_BUILDKIT=0): it
// fetches nothing. No Dockerfile here has a `# syntax=` line (BuildKit would
// fetch that frontend from Docker Hub).
//
// The images live in the Docker daemon; what they are built from lives in
// the tools cache, under <tools>/kind-images-<version>-r<revision>, guarded
// by a file lock so that two runs never build at once. Present images whose
// recipe label matches are reused at the cost of one `docker image inspect`.
package kindimage

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/flock"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
)

// The pins. Revision changes whenever the recipe changes, so images built
// by an older recipe are rebuilt rather than reused.
const (
	KubeVersion = "v1.34.2"
	Revision    = "1"
	// RootfsRevision changes only when the Debian rootfs's own recipe
	// does (Suite, Mirror, RootfsPackages), so that a change to the node
	// does not redo the slowest download.
	RootfsRevision = "1"
	// KindModule is the kind release whose base files (entrypoint,
	// containerd config, systemd units) go into the node image; the same as
	// go.mod's sigs.k8s.io/kind.
	KindModule = "sigs.k8s.io/kind@v0.33.0"

	// Suite and Mirror are the Debian release and mirror of the rootfs.
	Suite  = "bookworm"
	Mirror = "http://deb.debian.org/debian"
	// DebootstrapPackage is installed with apt-get when debootstrap is
	// missing; RegistryPackage is downloaded (not installed) for its binary.
	DebootstrapPackage = "debootstrap=1.0.128+nmu2+deb12u2"
	RegistryPackage    = "docker-registry=2.8.2+ds1-1"

	// The image names end in .invalid (RFC 2606): no registry can ever
	// answer for them, so nothing tries to pull them.
	// RootfsImage is the Debian rootfs the node is built on; the
	// stand-in images (internal/standin) take Debian's libraries from it.
	RootfsImage   = "alt-platform.invalid/kind-rootfs:" + Suite + "-r" + RootfsRevision
	NodeImage     = "alt-platform.invalid/kind-node:" + KubeVersion + "-r" + Revision
	RegistryImage = "alt-platform.invalid/registry:2.8.2-r" + Revision
	rootfsImage   = RootfsImage
	nodeBaseImage = "alt-platform.invalid/kind-node-base:" + KubeVersion + "-r" + Revision

	// Label holds Recipe on every image built here.
	Label = "io.alt-platform.kind-image"
)

// RootfsPackages are what debootstrap adds to Debian's minbase: what kind's
// base image installs, with Debian's containerd, runc and CNI plugins in
// place of the ones kind builds from source.
var RootfsPackages = []string{
	"systemd", "conntrack", "iptables", "nftables", "iproute2", "ethtool", "util-linux", "mount", "kmod",
	"libseccomp2", "pigz", "bash", "ca-certificates", "jq", "procps", "e2fsprogs",
	"containerd", "runc", "containernetworking-plugins",
}

// Recipe identifies what the images are built from; it is the value of
// Label on each of them.
var Recipe = strings.Join([]string{
	"r" + Revision, "kubernetes " + KubeVersion, KindModule, Suite + " " + Mirror,
	RegistryPackage, "packages " + strings.Join(RootfsPackages, ","),
}, "; ")

// rootfsRecipe is the Label of the rootfs image.
var rootfsRecipe = strings.Join([]string{
	"rootfs r" + RootfsRevision, Suite + " " + Mirror, "packages " + strings.Join(RootfsPackages, ","),
}, "; ")

// Images are the two images the kind cluster uses offline.
type Images struct {
	Node, Registry string
}

// Builder builds the images. Tools and Runner are required.
type Builder struct {
	Tools  *tools.Cache
	Runner *run.Runner
	// KindDir is the kind module's folder; "" asks `go mod download`.
	KindDir string
}

// Dir is where the images' build inputs are kept.
func (b *Builder) Dir() string {
	return filepath.Join(b.Tools.Dir, "kind-images-"+KubeVersion+"-r"+Revision)
}

// Present reports whether both images are in the Docker daemon, built by
// this recipe.
func (b *Builder) Present(ctx context.Context) bool {
	for _, img := range []string{NodeImage, RegistryImage} {
		if b.recipeOf(ctx, img) != Recipe {
			return false
		}
	}
	return true
}

// recipeOf is the image's Label, or "" when the image is absent.
func (b *Builder) recipeOf(ctx context.Context, img string) string {
	// `docker image ls` answers an absent image with nothing, not an error.
	id, err := b.Runner.Output(ctx, "docker", "image", "ls", "--quiet", img)
	if err != nil || strings.TrimSpace(id) == "" {
		return ""
	}
	out, err := b.Runner.Output(ctx, "docker", "image", "inspect", "--format", `{{index .Config.Labels "`+Label+`"}}`, img)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// Ensure builds whatever image is missing (or was built by another recipe)
// and returns both; present ones cost a `docker image inspect` each.
func (b *Builder) Ensure(ctx context.Context) (Images, error) {
	imgs := Images{Node: NodeImage, Registry: RegistryImage}
	if b.Present(ctx) {
		ui.Start("kind images %s, %s", NodeImage, RegistryImage).Skip("present, built by this recipe")
		return imgs, nil
	}
	dir := b.Dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return imgs, fmt.Errorf("kind images: %w", err)
	}
	unlock, err := flock.Lock(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return imgs, fmt.Errorf("kind images: %w", err)
	}
	defer unlock()
	if b.Present(ctx) { // built by another run while we waited
		return imgs, nil
	}
	all := ui.Start("kind images for Kubernetes %s, offline (once per machine; about 30 minutes cold on 2 cores)", KubeVersion)
	if err := all.End(b.build(ctx, dir)); err != nil {
		return imgs, fmt.Errorf("kind images (inputs in %s): %w", dir, err)
	}
	return imgs, nil
}

// piece runs one part of the build between progress lines, saying every
// tools.ProgressEvery that it is still going.
func piece(name string, f func() error) error {
	s := ui.Start("kind image: %s", name)
	stop := s.Tick(tools.ProgressEvery)
	err := f()
	stop()
	if err := s.End(err); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (b *Builder) build(ctx context.Context, dir string) error {
	// The rootfs (downloads and disk) goes alongside the Go builds (CPU).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var rootfsErr error
	done := make(chan struct{})
	go func() { rootfsErr = b.ensureRootfs(ctx, dir); close(done) }()
	waitRootfs := func() error { <-done; return rootfsErr }
	err := b.buildPieces(ctx, dir, waitRootfs)
	if err != nil {
		cancel()
		if rerr := waitRootfs(); rerr != nil && rerr != err && !errors.Is(rerr, context.Canceled) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

func (b *Builder) buildPieces(ctx context.Context, dir string, waitRootfs func() error) error {
	// Each tool build prints its own progress.
	bins, err := b.Tools.Ensure(ctx, tools.KindImage...)
	if err != nil {
		return fmt.Errorf("binaries from the Go module proxy: %w", err)
	}
	if err := piece("pause (a static Go program)", func() (err error) {
		bins["pause"], err = b.buildPause(ctx, filepath.Join(dir, "pause"))
		return err
	}); err != nil {
		return err
	}
	kindDir := b.KindDir
	if kindDir == "" {
		out, err := b.Runner.Output(ctx, "go", "mod", "download", "-json", KindModule)
		if err != nil {
			return fmt.Errorf("kind's base files (%s): %w", KindModule, err)
		}
		if kindDir, err = jsonField(out, "Dir"); err != nil {
			return fmt.Errorf("kind's base files (%s): %w", KindModule, err)
		}
	}
	if err := waitRootfs(); err != nil {
		return err
	}
	refs, err := b.kubeadmImages(ctx, bins["kubeadm"])
	if err != nil {
		return err
	}
	var inNode []string
	for _, c := range components(refs) {
		if err := piece(c.Ref, func() error {
			return b.dockerBuild(ctx, filepath.Join(dir, "images", c.Name), c.Dockerfile, c.Tags, map[string]string{c.Binary: bins[c.Binary]}, nil)
		}); err != nil {
			return err
		}
		inNode = append(inNode, c.Tags...)
	}
	if err := piece("registry image "+RegistryImage+" (Debian's "+RegistryPackage+")", func() error {
		return b.buildRegistry(ctx, filepath.Join(dir, "registry"))
	}); err != nil {
		return err
	}
	if err := piece("node base "+nodeBaseImage+" (rootfs, kind's base files, node binaries, bridge CNI)", func() error {
		return b.buildNodeBase(ctx, filepath.Join(dir, "node"), kindDir, bins)
	}); err != nil {
		return err
	}
	return piece("node image "+NodeImage+" (the images above imported into its containerd and pinned)", func() error {
		return b.importImages(ctx, dir, inNode)
	})
}

// ensureRootfs makes the Debian rootfs image unless it exists.
func (b *Builder) ensureRootfs(ctx context.Context, dir string) error {
	if b.recipeOf(ctx, rootfsImage) == rootfsRecipe {
		ui.Start("kind image: rootfs %s", rootfsImage).Skip("present")
		return nil
	}
	if err := piece("debootstrap (Debian's "+DebootstrapPackage+")", func() error { return b.ensureDebootstrap(ctx) }); err != nil {
		return err
	}
	root := filepath.Join(dir, "rootfs")
	tarball := root + ".tar"
	return piece("rootfs "+rootfsImage+" (debootstrap "+Suite+" from "+Mirror+", then docker import)", func() error {
		if err := os.RemoveAll(root); err != nil {
			return err
		}
		defer os.RemoveAll(root)
		defer os.Remove(tarball)
		if err := b.Runner.Run(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(RootfsPackages, ","), Suite, root, Mirror); err != nil {
			return err
		}
		// Package caches and lists are not part of the image.
		for _, g := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*"} {
			m, _ := filepath.Glob(filepath.Join(root, g))
			for _, f := range m {
				os.RemoveAll(f)
			}
		}
		if err := b.Runner.Run(ctx, "tar", "--numeric-owner", "-C", root, "-cf", tarball, "."); err != nil {
			return err
		}
		return b.Runner.Run(ctx, "docker", "import", "--change", "LABEL "+Label+"="+quoteLabel(rootfsRecipe), tarball, rootfsImage)
	})
}

// ensureDebootstrap installs Debian's debootstrap at the pinned version
// unless a debootstrap is on PATH.
func (b *Builder) ensureDebootstrap(ctx context.Context) error {
	_, err := tools.Debian{Bin: "debootstrap", Package: DebootstrapPackage}.Ensure(ctx, b.Runner)
	return err
}

// kubeadmImages maps each image kubeadm v1.34.2 runs (its name without
// registry and tag) to its full reference, as `kubeadm config images list`
// prints them.
func (b *Builder) kubeadmImages(ctx context.Context, kubeadm string) (map[string]string, error) {
	out, err := b.Runner.Output(ctx, kubeadm, "config", "images", "list", "--kubernetes-version", KubeVersion)
	if err != nil {
		return nil, fmt.Errorf("listing kubeadm's images: %w", err)
	}
	return parseImageList(out)
}

func parseImageList(out string) (map[string]string, error) {
	refs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		name := l[strings.LastIndex(l, "/")+1:]
		if i := strings.Index(name, ":"); i > 0 {
			name = name[:i]
		}
		refs[name] = l
	}
	var missing []string
	for _, n := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "etcd", "coredns", "pause"} {
		if refs[n] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("kubeadm config images list names no image for %s:\n%s", strings.Join(missing, ", "), out)
	}
	return refs, nil
}

// component is one image imported into the node.
type component struct {
	Name, Ref  string
	Tags       []string
	Binary     string // tool name whose binary is copied in
	Dockerfile string
}

// components are the images kubeadm runs, built FROM scratch around one
// static binary (kube-proxy on the Debian rootfs: it runs iptables).
func components(refs map[string]string) []component {
	scratch := func(name, bin, path string, entrypoint bool) component {
		df := "FROM scratch\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCOPY " + bin + " " + path + "\n"
		if entrypoint {
			df += `ENTRYPOINT ["` + path + `"]` + "\n"
		}
		return component{Name: name, Ref: refs[name], Tags: []string{refs[name]}, Binary: bin, Dockerfile: df}
	}
	cs := []component{
		scratch("kube-apiserver", "kube-apiserver", "/usr/local/bin/kube-apiserver", false),
		scratch("kube-controller-manager", "kube-controller-manager", "/usr/local/bin/kube-controller-manager", false),
		scratch("kube-scheduler", "kube-scheduler", "/usr/local/bin/kube-scheduler", false),
		// etcd: kubeadm's tag (3.6.5-0) on the pinned etcd v3.6.6 (verified).
		scratch("etcd", "etcd", "/usr/local/bin/etcd", false),
		scratch("coredns", "coredns", "/coredns", true),
		scratch("pause", "pause", "/pause", true),
		{Name: "kube-proxy", Ref: refs["kube-proxy"], Tags: []string{refs["kube-proxy"]}, Binary: "kube-proxy",
			Dockerfile: "FROM " + rootfsImage + "\nCOPY kube-proxy /usr/local/bin/kube-proxy\n"},
	}
	// kind's containerd config names pause:3.10 as the sandbox image; the
	// same program answers to both tags.
	p := &cs[5]
	if sandbox := "registry.k8s.io/pause:3.10"; !slices.Contains(p.Tags, sandbox) {
		p.Tags = append(p.Tags, sandbox)
	}
	return cs
}

// dockerBuild writes a build context (Dockerfile, files copied from the
// given paths, files with the given contents) and builds it with the
// classic builder under the first tag, adding the rest.
func (b *Builder) dockerBuild(ctx context.Context, dir, dockerfile string, tags []string, copies map[string]string, files map[string]string) error {
	if strings.Contains(dockerfile, "# syntax") {
		return errors.New("a Dockerfile here must not have a # syntax= line: BuildKit would fetch that frontend")
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for name, from := range copies {
		if err := copyFile(from, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			return err
		}
	}
	dockerfile += "LABEL " + Label + "=" + quoteLabel(Recipe) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	r := *b.Runner
	r.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if err := r.Run(ctx, "docker", "build", "--quiet", "--tag", tags[0], dir); err != nil {
		return err
	}
	for _, t := range tags[1:] {
		if err := b.Runner.Run(ctx, "docker", "tag", tags[0], t); err != nil {
			return err
		}
	}
	return nil
}

//go:embed files/pause.go.txt
var pauseSource string

// buildPause compiles the pause program (sleeps, reaps children, exits on
// SIGINT or SIGTERM) into dir and returns its path.
func (b *Builder) buildPause(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "pause")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module alt-platform/pause\n\ngo 1.26\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(pauseSource), 0o644); err != nil {
		return "", err
	}
	r := *b.Runner
	r.Dir = dir
	r.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	return bin, r.Run(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
}

//go:embed files/registry-config.yml
var registryConfig string

// buildRegistry downloads Debian's docker-registry package and builds the
// registry image: its binary and the two glibc files it links, FROM
// scratch.
func (b *Builder) buildRegistry(ctx context.Context, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r := *b.Runner
	r.Dir = dir
	if err := r.Run(ctx, "apt-get", "download", RegistryPackage); err != nil {
		return fmt.Errorf("%w (run apt-get update if the package index is missing)", err)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "docker-registry_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s left %d .deb files in %s", RegistryPackage, len(debs), dir)
	}
	x := filepath.Join(dir, "x")
	if err := b.Runner.Run(ctx, "dpkg-deb", "--extract", debs[0], x); err != nil {
		return err
	}
	df := "FROM " + rootfsImage + " AS debian\n" +
		"FROM scratch\n" +
		"COPY --from=debian /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\n" +
		"COPY --from=debian /lib64/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2\n" +
		"COPY docker-registry /usr/bin/docker-registry\n" +
		"COPY config.yml /etc/docker/registry/config.yml\n" +
		"VOLUME /var/lib/registry\n" +
		"EXPOSE 5000\n" +
		`ENTRYPOINT ["/usr/bin/docker-registry"]` + "\n" +
		`CMD ["serve", "/etc/docker/registry/config.yml"]` + "\n"
	return b.dockerBuild(ctx, filepath.Join(dir, "ctx"), df, []string{RegistryImage},
		map[string]string{"docker-registry": filepath.Join(x, "usr", "bin", "docker-registry")},
		map[string]string{"config.yml": registryConfig})
}

//go:embed files/alt-entrypoint
var altEntrypoint string

//go:embed files/10-bridge.conflist
var bridgeConflist string

// buildNodeBase lays kind's base files, the node binaries and a bridge CNI
// config over the rootfs, as kind's images/base/Dockerfile does.
func (b *Builder) buildNodeBase(ctx context.Context, dir, kindDir string, bins map[string]string) error {
	files := filepath.Join(kindDir, "images", "base", "files")
	if _, err := os.Stat(filepath.Join(files, "usr", "local", "bin", "entrypoint")); err != nil {
		return fmt.Errorf("kind's base files in %s: %w", files, err)
	}
	copies := map[string]string{}
	err := filepath.WalkDir(files, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(files, p)
		copies[filepath.Join("files", rel)] = p
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range []string{"kubelet", "kubeadm", "kubectl", "crictl"} {
		copies[filepath.Join("bin", n)] = bins[n]
	}
	df := "FROM " + rootfsImage + "\n" +
		"COPY files/ /\n" +
		"COPY bin/ /usr/bin/\n" +
		"COPY alt-entrypoint /usr/local/bin/alt-entrypoint\n" +
		"COPY 10-bridge.conflist /etc/cni/net.d/10-bridge.conflist\n" +
		"RUN set -e; chmod 0755 /usr/local/bin/* /kind/bin/* /usr/bin/kubelet /usr/bin/kubeadm /usr/bin/kubectl /usr/bin/crictl; \\\n" +
		// kind's units and config expect kind's own build paths.
		"  ln -s /usr/bin/containerd /usr/local/bin/containerd; \\\n" +
		"  ln -s /usr/bin/ctr /usr/local/bin/ctr; \\\n" +
		"  mkdir -p /opt/cni/bin /etc/kubernetes/manifests; cp /usr/lib/cni/* /opt/cni/bin/; \\\n" +
		`  ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json; \` + "\n" +
		"  find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete; \\\n" +
		"  rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* /lib/systemd/system/local-fs.target.wants/* \\\n" +
		"    /lib/systemd/system/sockets.target.wants/*udev* /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*; \\\n" +
		"  echo ReadKMsg=no >> /etc/systemd/journald.conf; \\\n" +
		"  ln -sf /usr/lib/systemd/systemd /sbin/init; \\\n" +
		"  systemctl enable kubelet.service containerd.service undo-mount-hacks.service; \\\n" +
		"  systemctl mask systemd-binfmt.service; \\\n" +
		"  echo " + KubeVersion + " > /kind/version\n" +
		"ENV container=docker\n" +
		"STOPSIGNAL SIGRTMIN+3\n" +
		`ENTRYPOINT ["/usr/local/bin/alt-entrypoint", "/sbin/init"]` + "\n"
	return b.dockerBuild(ctx, dir, df, []string{nodeBaseImage}, copies,
		map[string]string{"alt-entrypoint": altEntrypoint, "10-bridge.conflist": bridgeConflist})
}

// importImages starts containerd inside a container of the node base,
// imports the images kubeadm runs into its k8s.io namespace, pins them (the
// kubelet's image GC leaves pinned images alone), and commits the result as
// NodeImage.
func (b *Builder) importImages(ctx context.Context, dir string, refs []string) error {
	r := b.Runner
	name := fmt.Sprintf("alt-kind-image-build-%d", os.Getpid())
	tarball := filepath.Join(dir, "images.tar")
	defer os.Remove(tarball)
	if err := r.Run(ctx, "docker", append([]string{"save", "--output", tarball}, refs...)...); err != nil {
		return err
	}
	r.Run(ctx, "docker", "rm", "--force", name) // left by an interrupted build
	// containerd only stores content here (no unpacking, no containers):
	// no privileges beyond mounting.
	if err := r.Run(ctx, "docker", "run", "--detach", "--name", name, "--entrypoint", "sleep",
		"--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined", "--security-opt", "seccomp=unconfined",
		"--label", "io.alt-platform.kind-image-build=1", nodeBaseImage, "infinity"); err != nil {
		return err
	}
	defer r.Run(context.WithoutCancel(ctx), "docker", "rm", "--force", name)
	if err := r.Run(ctx, "docker", "exec", "--detach", name, "sh", "-c", "containerd > /var/log/containerd-import.log 2>&1"); err != nil {
		return err
	}
	ready := false
	for range 60 {
		if r.Run(ctx, "docker", "exec", name, "ctr", "version") == nil {
			ready = true
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if !ready {
		log, _ := r.Output(ctx, "docker", "exec", name, "cat", "/var/log/containerd-import.log")
		return fmt.Errorf("containerd in the build container %s did not answer within 30s:\n%s", name, log)
	}
	if err := r.Run(ctx, "docker", "cp", tarball, name+":/images.tar"); err != nil {
		return err
	}
	if err := r.Run(ctx, "docker", "exec", name, "ctr", "-n", "k8s.io", "images", "import",
		"--all-platforms", "--no-unpack", "--digests", "/images.tar"); err != nil {
		return err
	}
	for _, ref := range refs {
		// containerd 1.6's import has no --label.
		if err := r.Run(ctx, "docker", "exec", name, "ctr", "-n", "k8s.io", "images", "label", ref, "io.cri-containerd.pinned=pinned"); err != nil {
			return err
		}
	}
	out, err := r.Output(ctx, "docker", "exec", name, "ctr", "-n", "k8s.io", "images", "list", "--quiet")
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if !slices.Contains(strings.Fields(out), ref) {
			return fmt.Errorf("image %s is not in the node's containerd after the import; it holds:\n%s", ref, out)
		}
	}
	if err := r.Run(ctx, "docker", "exec", name, "sh", "-c",
		"pkill -x containerd; for i in $(seq 50); do pgrep -x containerd >/dev/null || exit 0; sleep 0.2; done; exit 1"); err != nil {
		return fmt.Errorf("stopping containerd in %s: %w", name, err)
	}
	if err := r.Run(ctx, "docker", "exec", name, "rm", "-f", "/images.tar", "/var/log/containerd-import.log"); err != nil {
		return err
	}
	// The container keeps the node base's STOPSIGNAL (SIGRTMIN+3, which
	// systemd stops on); Docker 20.10's commit cannot set it.
	return r.Run(ctx, "docker", "commit",
		"--change", `ENTRYPOINT ["/usr/local/bin/alt-entrypoint", "/sbin/init"]`,
		"--change", `CMD []`,
		"--change", "LABEL "+Label+"="+quoteLabel(Recipe),
		"--change", "LABEL io.alt-platform.kind-image-build=",
		name, NodeImage)
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	fi, err := os.Stat(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, fi.Mode().Perm()|0o200)
}

// quoteLabel quotes a LABEL value for a Dockerfile or --change.
func quoteLabel(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// jsonField reads one string field of a JSON object.
func jsonField(out, field string) (string, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return "", err
	}
	v, _ := m[field].(string)
	if v == "" {
		return "", fmt.Errorf("no %s in %s", field, out)
	}
	return v, nil
}
