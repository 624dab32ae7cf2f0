//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// The layer graph. Each target deploys its layer after the layers it needs;
// mg.CtxDeps runs those concurrently, each once per run, so a layer starts
// as soon as its own dependencies are verified. This file is the one place
// the graph is written (internal/stack reads it back for checks and plans).
//
// Every layer target reads ALT_PROFILE, ALT_CLUSTER, ALT_KUBE_CONTEXT,
// ALT_SRC, ALT_REGISTRY, ALT_RELEASE, ALT_TOOLS_DIR, ALT_FORCE_CONTEXT,
// ALT_LAYER_TIMEOUT, ALT_CERT_MANAGER and ALT_OTHER_PROFILE (see `config:show`).

// Foundation deploys 01-foundation: namespaces, policies, PKI.
func Foundation(ctx context.Context) (err error) {
	defer guard(&ctx, &err)()
	return deployLayer(ctx, "alt-foundation")
}

// Infrastructure deploys 02-infrastructure (the databases) after 01.
func Infrastructure(ctx context.Context) (err error) {
	defer guard(&ctx, &err)()
	mg.CtxDeps(ctx, Foundation)
	return deployLayer(ctx, "alt-infrastructure")
}

// CoreServices deploys 04-core-services (alt-backend, sidecar-proxy, envoy-proxy) after 02.
func CoreServices(ctx context.Context) (err error) {
	defer guard(&ctx, &err)()
	// alt-backend calls postgres (02); it reads no auth-service address.
	mg.CtxDeps(ctx, Infrastructure)
	return deployLayer(ctx, "alt-core-services")
}

// AuthPlatform deploys 05-auth-platform (kratos, auth-service) after 02.
func AuthPlatform(ctx context.Context) (err error) {
	defer guard(&ctx, &err)()
	mg.CtxDeps(ctx, Infrastructure)
	return deployLayer(ctx, "alt-auth-platform")
}

// Application deploys 06-application (frontend, nginx-external) after 04 and 05.
func Application(ctx context.Context) (err error) {
	defer guard(&ctx, &err)()
	mg.CtxDeps(ctx, CoreServices, AuthPlatform)
	return deployLayer(ctx, "alt-application")
}

// Processing deploys 07-processing (feed pipeline, LLM) after 02 and 04.
func Processing(ctx context.Context) (err error) {
	defer guard(&ctx, &err)()
	mg.CtxDeps(ctx, Infrastructure, CoreServices)
	return deployLayer(ctx, "alt-processing")
}

// Operations deploys 08-operations (monitoring, backups) after 02.
func Operations(ctx context.Context) (err error) {
	defer guard(&ctx, &err)()
	mg.CtxDeps(ctx, Infrastructure)
	return deployLayer(ctx, "alt-operations")
}

// All deploys every layer along the graph and prints the summary.
func All(ctx context.Context) (err error) {
	defer guard(&ctx, &err)()
	mg.CtxDeps(ctx, Application, Processing, Operations)
	return nil
}
