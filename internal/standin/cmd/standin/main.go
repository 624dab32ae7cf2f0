// Command standin is the program inside every stand-in image (package
// standin): a service, a server or a client tool, as argv[0] and the
// image's /standin/config.json say. Built static (CGO_ENABLED=0).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/alt-platform/orchestration/internal/standin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(standin.Main(standin.Proc{
		Args: os.Args, Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Ctx: ctx,
	}))
}
