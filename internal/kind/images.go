package kind

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LoadImage is a Docker image to put into the nodes' containerd, under
// extra names (the exact references the charts use, digest-pinned ones
// included: a registry could not serve those, a name in the node can).
type LoadImage struct {
	Tag   string   // in the Docker daemon
	Names []string // in the node's containerd (k8s.io namespace)
}

// stampFile in each node records the last set of images loaded.
const stampFile = "/kind/alt-node-images.stamp"

// LoadImages imports the images into every node's containerd (as `kind
// load docker-image` does), names each under its extra names and pins them
// (the kubelet's image GC leaves pinned images alone). A node that already
// holds this exact set (same image IDs and names) is left as it is.
func (p *Provider) LoadImages(ctx context.Context, imgs []LoadImage) (loaded bool, err error) {
	r := p.o.Runner
	var tags []string
	for _, im := range imgs {
		tags = append(tags, im.Tag)
	}
	ids, err := r.Output(ctx, "docker", append([]string{"image", "inspect", "--format", "{{.Id}}"}, tags...)...)
	if err != nil {
		return false, fmt.Errorf("images to load into the kind node: %w", err)
	}
	h := sha256.New()
	fmt.Fprintln(h, ids)
	for _, im := range imgs {
		fmt.Fprintln(h, im.Tag, strings.Join(im.Names, " "))
	}
	stamp := hex.EncodeToString(h.Sum(nil))
	nodes, err := p.o.Lib.Nodes(p.spec.Name)
	if err != nil {
		return false, fmt.Errorf("listing the nodes of kind cluster %s: %w", p.spec.Name, err)
	}
	var todo []string
	for _, n := range nodes {
		if have, _ := r.Output(ctx, "docker", "exec", n, "cat", stampFile); strings.TrimSpace(have) != stamp {
			todo = append(todo, n)
		}
	}
	if len(todo) == 0 {
		return false, nil
	}
	tarball := filepath.Join(p.dir, "node-images.tar")
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return false, err
	}
	defer os.Remove(tarball)
	if err := r.Run(ctx, "docker", append([]string{"save", "--output", tarball}, tags...)...); err != nil {
		return false, err
	}
	for _, n := range todo {
		if err := p.loadInto(ctx, n, tarball, imgs, stamp); err != nil {
			return false, fmt.Errorf("loading images into node %s: %w", n, err)
		}
	}
	return true, nil
}

func (p *Provider) loadInto(ctx context.Context, node, tarball string, imgs []LoadImage, stamp string) error {
	r := p.o.Runner
	in := "/alt-node-images.tar"
	if err := r.Run(ctx, "docker", "cp", tarball, node+":"+in); err != nil {
		return err
	}
	defer r.Run(context.WithoutCancel(ctx), "docker", "exec", node, "rm", "-f", in)
	ctr := func(args ...string) error {
		return r.Run(ctx, "docker", append([]string{"exec", node, "ctr", "--namespace=k8s.io", "images"}, args...)...)
	}
	if err := ctr("import", "--all-platforms", "--digests", "--no-unpack", in); err != nil {
		return err
	}
	for _, im := range imgs {
		names := append([]string{im.Tag}, im.Names...)
		if len(im.Names) > 0 {
			if err := ctr(append([]string{"tag", "--force", im.Tag}, im.Names...)...); err != nil {
				return err
			}
		}
		for _, n := range names {
			if err := ctr("label", n, "io.cri-containerd.pinned=pinned"); err != nil {
				return err
			}
		}
	}
	return r.Run(ctx, "docker", "exec", node, "sh", "-c", `printf '%s\n' "$1" > "$2"`, "sh", stamp, stampFile)
}
