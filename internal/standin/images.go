package standin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alt-platform/orchestration/internal/kindimage"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/ui"
)

// Debian packages the third-party images take a binary from (downloaded,
// not installed): a static busybox for the charts' sh scripts (sh, date,
// sleep, tar, gzip, sed, ...), and nginx, which Debian ships and which runs
// the chart's real nginx.conf.
const (
	BusyboxPackage     = "busybox-static=1:1.35.0-4+deb12u1+b1"
	NginxPackage       = "nginx=1.22.1-9+deb12u11"
	NginxCommonPackage = "nginx-common=1.22.1-9+deb12u11"
)

// ImageLabel holds an image's recipe digest; a present image with the same
// digest is reused.
const ImageLabel = "io.alt-platform.standin"

// ImagePrefix names the stand-in images in the Docker daemon: never under
// the real names, so the daemon's own postgres:16-alpine (if any) is left
// alone. Only the kind node's containerd knows them by the charts' names.
const ImagePrefix = "alt-platform.invalid/standin/"

// nginxLibs are what Debian's nginx links (ldd), taken from the kind
// node's Debian rootfs.
var nginxLibs = []string{
	"/lib/x86_64-linux-gnu/libcrypt.so.1", "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
	"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
	"/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2",
}

// Image is one built third-party stand-in: its Docker tag and the exact
// references the charts use for it.
type Image struct {
	Name string
	Tag  string   // in the Docker daemon
	Refs []string // as the charts write them
	Real bool
}

// ImageBuilder builds the third-party stand-in images with Docker's
// classic builder (it fetches nothing).
type ImageBuilder struct {
	Repo   string
	Runner *run.Runner
	// Kubectl is the static kubectl of the tools cache (for alpine/k8s).
	Kubectl string
	// Program is the compiled stand-in program (Program).
	Program string
}

// Ensure builds every image of ThirdParties whose recipe changed and
// returns them all.
func (b *ImageBuilder) Ensure(ctx context.Context) ([]Image, error) {
	work := filepath.Join(b.Repo, ".cache", "standins", "images")
	debs := filepath.Join(b.Repo, ".cache", "standins", "debs")
	var out []Image
	for _, tp := range ThirdParties {
		img := Image{Name: tp.Name, Tag: ImagePrefix + tp.Name + ":" + tagOf(tp.Refs[0]), Refs: tp.Refs, Real: tp.Real}
		dir := filepath.Join(work, tp.Name)
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		files, df, err := b.context(ctx, tp, debs)
		if err != nil {
			return nil, fmt.Errorf("stand-in image %s: %w", tp.Name, err)
		}
		sum := recipe(df, files)
		if b.labelOf(ctx, img.Tag) == sum {
			out = append(out, img)
			continue
		}
		step := ui.Start("stand-in image %s (for %s)", img.Tag, strings.Join(tp.Refs, ", "))
		err = b.build(ctx, dir, df+"LABEL "+ImageLabel+"="+sum+"\n", files, img.Tag)
		if err := step.End(err); err != nil {
			return nil, fmt.Errorf("stand-in image %s: %w", tp.Name, err)
		}
		out = append(out, img)
	}
	return out, nil
}

func tagOf(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}

// recipe is the digest of a Dockerfile and the files of its context.
func recipe(df string, files map[string]string) string {
	h := sha256.New()
	h.Write([]byte(df))
	for _, name := range sortedKeys(files) {
		b, _ := os.ReadFile(files[name])
		fmt.Fprintf(h, "\x00%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

func (b *ImageBuilder) labelOf(ctx context.Context, tag string) string {
	out, err := b.Runner.Output(ctx, "docker", "image", "ls", "--quiet", tag)
	if err != nil || strings.TrimSpace(out) == "" {
		return ""
	}
	out, err = b.Runner.Output(ctx, "docker", "image", "inspect", "--format", `{{index .Config.Labels "`+ImageLabel+`"}}`, tag)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// context is the Dockerfile of one image and the files of its context (name
// in the context: path on this machine).
func (b *ImageBuilder) context(ctx context.Context, tp ThirdParty, debs string) (map[string]string, string, error) {
	busybox, err := b.debFile(ctx, debs, BusyboxPackage, "bin/busybox")
	if err != nil {
		return nil, "", err
	}
	files := map[string]string{"busybox": busybox}
	var df strings.Builder
	fmt.Fprintf(&df, "# %s of %s.\n", map[bool]string{true: "Debian's own server in place", false: "Stand-in"}[tp.Real], strings.Join(tp.Refs, ", "))
	fmt.Fprintf(&df, "# Read from: %s\n", tp.Source)
	if tp.Real {
		nginx, err := b.debFile(ctx, debs, NginxPackage, "usr/sbin/nginx")
		if err != nil {
			return nil, "", err
		}
		mime, err := b.debFile(ctx, debs, NginxCommonPackage, "etc/nginx/mime.types")
		if err != nil {
			return nil, "", err
		}
		files["nginx"], files["mime.types"] = nginx, mime
		fmt.Fprintf(&df, "FROM %s AS debian\nFROM scratch\n", kindimage.RootfsImage)
		for _, l := range nginxLibs {
			fmt.Fprintf(&df, "COPY --from=debian %s %s\n", l, l)
		}
		df.WriteString("COPY busybox /bin/busybox\nCOPY nginx /usr/sbin/nginx\nCOPY mime.types /etc/nginx/mime.types\n")
		df.WriteString(`RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /var/log/nginx /var/lib/nginx && chmod 1777 /tmp && echo 'nginx:x:101:101:nginx:/nonexistent:/bin/false' > /etc/passwd && echo 'nginx:x:101:' > /etc/group"]` + "\n")
		df.WriteString("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
		df.WriteString("USER 101:101\nSTOPSIGNAL SIGQUIT\n")
		df.WriteString(`ENTRYPOINT ["/usr/sbin/nginx"]` + "\n" + `CMD ["-g", "daemon off;"]` + "\n")
		return files, df.String(), nil
	}
	cfg, err := json.MarshalIndent(tp.Config, "", "  ")
	if err != nil {
		return nil, "", err
	}
	cfgFile := filepath.Join(b.Repo, ".cache", "standins", "configs", tp.Name+".json")
	if err := os.MkdirAll(filepath.Dir(cfgFile), 0o755); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(cfgFile, cfg, 0o644); err != nil {
		return nil, "", err
	}
	files["standin"], files["config.json"] = b.Program, cfgFile
	df.WriteString("FROM scratch\nCOPY busybox /bin/busybox\nCOPY standin /standin/bin/standin\nCOPY config.json " + ConfigPath + "\n")
	if tp.Kubectl {
		files["kubectl"] = b.Kubectl
		df.WriteString("COPY kubectl /usr/local/bin/kubectl\n")
	}
	links := "mkdir -p /usr/local/bin /tmp && chmod 1777 /tmp"
	for _, t := range tp.Tools {
		links += " && ln -s /standin/bin/standin /usr/local/bin/" + t
	}
	if tp.Entrypoint != "" {
		links += " && mkdir -p " + filepath.Dir(tp.Entrypoint) + " && ln -sf /standin/bin/standin " + tp.Entrypoint
	}
	fmt.Fprintf(&df, `RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && %s"]`+"\n", links)
	df.WriteString("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
	df.WriteString("USER 65532:65532\n")
	if tp.Entrypoint != "" {
		fmt.Fprintf(&df, "ENTRYPOINT [%q]\n", tp.Entrypoint)
	}
	if len(tp.Cmd) > 0 {
		q := make([]string, len(tp.Cmd))
		for i, c := range tp.Cmd {
			q[i] = fmt.Sprintf("%q", c)
		}
		fmt.Fprintf(&df, "CMD [%s]\n", strings.Join(q, ", "))
	} else if tp.Entrypoint == "" {
		df.WriteString(`CMD ["sh"]` + "\n")
	}
	return files, df.String(), nil
}

// debFile downloads a Debian package (once) and returns the path of one
// of its files.
func (b *ImageBuilder) debFile(ctx context.Context, debs, pkg, file string) (string, error) {
	name, _, _ := strings.Cut(pkg, "=")
	x := filepath.Join(debs, name)
	p := filepath.Join(x, file)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	dl := filepath.Join(debs, "download-"+name)
	if err := os.RemoveAll(dl); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(dl)
	r := *b.Runner
	r.Dir = dl
	if err := r.Run(ctx, "apt-get", "download", pkg); err != nil {
		return "", fmt.Errorf("%w (run apt-get update if the package index is missing)", err)
	}
	found, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(found) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d .deb files", pkg, len(found))
	}
	if err := b.Runner.Run(ctx, "dpkg-deb", "--extract", found[0], x); err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s has no %s", pkg, file)
	}
	return p, nil
}

func (b *ImageBuilder) build(ctx context.Context, dir, df string, files map[string]string, tag string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for name, from := range files {
		if err := copyFile(from, filepath.Join(dir, name), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	r := *b.Runner
	r.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	return r.Run(ctx, "docker", "build", "--quiet", "--tag", tag, dir)
}

// NodeNames are the names the kind node's containerd gives an image
// reference, the way the kubelet's CRI resolves it: docker.io and
// library/ added, and a tag dropped when a digest is given (the digest is
// the name the kubelet looks up).
func NodeNames(ref string) []string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	first, _, hasSlash := strings.Cut(name, "/")
	if !hasSlash || !strings.ContainsAny(first, ".:") && first != "localhost" {
		if !hasSlash {
			name = "library/" + name
		}
		name = "docker.io/" + name
	}
	if !hasDigest {
		return []string{name}
	}
	bare := name
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		bare = name[:i]
	}
	return []string{name, bare + "@" + digest}
}
