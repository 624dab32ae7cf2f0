package check

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// NoProbesAnnotation on a pod says why its long-running containers have no
// probes (a process that listens on nothing); the contract check holds it
// to docs/alt-contract.yaml.
const NoProbesAnnotation = "alt-platform.io/no-probes"

// Policy checks every workload (Pod, Deployment, StatefulSet, DaemonSet,
// ReplicaSet, Job, CronJob) of the objects, per profile:
//
//   - every image has a tag or digest, and the tag is not "latest";
//   - no imagePullPolicy Never;
//   - every container and init container requests and limits cpu and memory;
//   - the main containers of long-running workloads (Deployment,
//     StatefulSet, DaemonSet, ReplicaSet) have liveness and readiness probes,
//     unless the pod annotation NoProbesAnnotation says why not;
//   - the pod satisfies the Pod Security level its namespace enforces
//     (pod-security.kubernetes.io/enforce on the rendered Namespace):
//     baseline or restricted, the rules of Pod Security Standards v1.34.
//
// A workload in a namespace that no rendered Namespace object declares is
// a note (its level is unknown); References reports the namespace itself.
func Policy(objs []*Object) ([]Note, error) {
	var ps Problems
	var notes []Note
	order, groups := byProfile(objs)
	for _, p := range order {
		nss := namespaces(groups[p])
		for _, w := range workloads(groups[p]) {
			ps = append(ps, workloadPolicy(w)...)
			labels, ok := nss[w.obj.Namespace]
			if !ok {
				notes = append(notes, Note{Check: "policy", What: "Pod Security of " + w.obj.Desc(),
					Why: fmt.Sprintf("namespace %s is not among the rendered Namespace objects, so its enforced level is unknown", w.obj.Namespace)})
				continue
			}
			level := labels["pod-security.kubernetes.io/enforce"]
			var violations []string
			switch level {
			case "restricted":
				violations = append(baseline(w), restricted(w)...)
			case "baseline":
				violations = baseline(w)
			}
			for _, v := range violations {
				ps = append(ps, w.obj.problem("namespace %s enforces Pod Security %q: %s", w.obj.Namespace, level, v))
			}
		}
	}
	return dedupeNotes(notes), ps.Err()
}

func workloadPolicy(w workload) Problems {
	var ps Problems
	add := func(format string, a ...any) { ps = append(ps, w.obj.problem(format, a...)) }
	for _, c := range w.containers() {
		img := c.c.Image
		tag, digest := imageRef(img)
		switch {
		case img == "":
			add("%s.image: empty", c.path)
		case tag == "" && digest == "":
			add("%s.image: %q has no tag; pin a version (third-party images are pinned in the chart's values.yaml)", c.path, img)
		case tag == "latest":
			add("%s.image: %q uses the tag latest; pin a version", c.path, img)
		}
		if c.c.ImagePullPolicy == corev1.PullNever {
			add("%s.imagePullPolicy: Never; images are pulled (IfNotPresent), one tag policy for every cluster", c.path)
		}
		var missing []string
		for _, kind := range []string{"requests", "limits"} {
			rl := c.c.Resources.Requests
			if kind == "limits" {
				rl = c.c.Resources.Limits
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := rl[r]; !ok || q.IsZero() {
					missing = append(missing, kind+"."+string(r))
				}
			}
		}
		if len(missing) > 0 {
			add("%s.resources: no %s", c.path, strings.Join(missing, ", "))
		}
		if w.longRunning && !c.init && w.annotations[NoProbesAnnotation] == "" {
			if c.c.LivenessProbe == nil {
				add("%s: no livenessProbe (a long-running %s container needs liveness and readiness probes)", c.path, w.obj.Kind)
			}
			if c.c.ReadinessProbe == nil {
				add("%s: no readinessProbe (a long-running %s container needs liveness and readiness probes, or the pod annotation %s saying why it has none)", c.path, w.obj.Kind, NoProbesAnnotation)
			}
		}
	}
	return ps
}

// imageRef returns the tag and digest of an image reference.
func imageRef(img string) (tag, digest string) {
	if i := strings.Index(img, "@"); i >= 0 {
		img, digest = img[:i], img[i+1:]
	}
	last := img[strings.LastIndex(img, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		tag = last[i+1:]
	}
	return tag, digest
}

// allContainers are init, main and ephemeral containers as securityContext
// carriers, with their paths.
type scHolder struct {
	path string
	sc   *corev1.SecurityContext
	c    *corev1.Container
}

func (w workload) securityHolders() []scHolder {
	var hs []scHolder
	for _, c := range w.containers() {
		hs = append(hs, scHolder{path: c.path, sc: c.c.SecurityContext, c: c.c})
	}
	for i := range w.spec.EphemeralContainers {
		ec := &w.spec.EphemeralContainers[i]
		hs = append(hs, scHolder{path: w.specPath + ".ephemeralContainers[" + ec.Name + "]", sc: ec.SecurityContext})
	}
	return hs
}

var baselineCapabilities = []corev1.Capability{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

var safeSysctls = []string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}

var seLinuxTypes = []string{"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

// baseline returns the violations of the Pod Security baseline level.
func baseline(w workload) []string {
	var v []string
	s := w.spec
	p := w.specPath
	if s.HostNetwork {
		v = append(v, p+".hostNetwork: true")
	}
	if s.HostPID {
		v = append(v, p+".hostPID: true")
	}
	if s.HostIPC {
		v = append(v, p+".hostIPC: true")
	}
	for _, vol := range s.Volumes {
		if vol.HostPath != nil {
			v = append(v, fmt.Sprintf("%s.volumes[%s]: hostPath volumes are forbidden", p, vol.Name))
		}
	}
	psc := s.SecurityContext
	if psc != nil {
		if psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
			v = append(v, p+".securityContext.seccompProfile.type: Unconfined")
		}
		if psc.AppArmorProfile != nil && psc.AppArmorProfile.Type == corev1.AppArmorProfileTypeUnconfined {
			v = append(v, p+".securityContext.appArmorProfile.type: Unconfined")
		}
		v = append(v, seLinux(p+".securityContext", psc.SELinuxOptions)...)
		for _, sc := range psc.Sysctls {
			if !slices.Contains(safeSysctls, sc.Name) {
				v = append(v, fmt.Sprintf("%s.securityContext.sysctls[%s]: not a safe sysctl", p, sc.Name))
			}
		}
		if psc.WindowsOptions != nil && psc.WindowsOptions.HostProcess != nil && *psc.WindowsOptions.HostProcess {
			v = append(v, p+".securityContext.windowsOptions.hostProcess: true")
		}
	}
	for k, val := range w.annotations {
		if strings.HasPrefix(k, "container.apparmor.security.beta.kubernetes.io/") && val != "runtime/default" && !strings.HasPrefix(val, "localhost/") {
			v = append(v, fmt.Sprintf("annotation %s: %q (want runtime/default or localhost/*)", k, val))
		}
	}
	for _, h := range w.securityHolders() {
		if h.c != nil {
			for _, port := range h.c.Ports {
				if port.HostPort != 0 {
					v = append(v, fmt.Sprintf("%s.ports[%d].hostPort: %d (host ports are forbidden)", h.path, port.ContainerPort, port.HostPort))
				}
			}
		}
		sc := h.sc
		if sc == nil {
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			v = append(v, h.path+".securityContext.privileged: true")
		}
		if sc.Capabilities != nil {
			for _, c := range sc.Capabilities.Add {
				if !slices.Contains(baselineCapabilities, c) {
					v = append(v, fmt.Sprintf("%s.securityContext.capabilities.add: %s is not allowed", h.path, c))
				}
			}
		}
		if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			v = append(v, fmt.Sprintf("%s.securityContext.procMount: %s (want Default)", h.path, *sc.ProcMount))
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
			v = append(v, h.path+".securityContext.seccompProfile.type: Unconfined")
		}
		if sc.AppArmorProfile != nil && sc.AppArmorProfile.Type == corev1.AppArmorProfileTypeUnconfined {
			v = append(v, h.path+".securityContext.appArmorProfile.type: Unconfined")
		}
		v = append(v, seLinux(h.path+".securityContext", sc.SELinuxOptions)...)
		if sc.WindowsOptions != nil && sc.WindowsOptions.HostProcess != nil && *sc.WindowsOptions.HostProcess {
			v = append(v, h.path+".securityContext.windowsOptions.hostProcess: true")
		}
	}
	return v
}

func seLinux(path string, o *corev1.SELinuxOptions) []string {
	if o == nil {
		return nil
	}
	var v []string
	if !slices.Contains(seLinuxTypes, o.Type) {
		v = append(v, fmt.Sprintf("%s.seLinuxOptions.type: %q is not allowed", path, o.Type))
	}
	if o.User != "" {
		v = append(v, path+".seLinuxOptions.user: must not be set")
	}
	if o.Role != "" {
		v = append(v, path+".seLinuxOptions.role: must not be set")
	}
	return v
}

var restrictedVolumes = "configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret"

// restricted returns the violations of the Pod Security restricted level
// beyond baseline.
func restricted(w workload) []string {
	var v []string
	s := w.spec
	p := w.specPath
	for _, vol := range s.Volumes {
		src := vol.VolumeSource
		ok := src.ConfigMap != nil || src.CSI != nil || src.DownwardAPI != nil || src.EmptyDir != nil || src.Ephemeral != nil ||
			src.PersistentVolumeClaim != nil || src.Projected != nil || src.Secret != nil
		if !ok && src.HostPath == nil { // hostPath is reported by baseline
			v = append(v, fmt.Sprintf("%s.volumes[%s]: volume type not allowed (allowed: %s)", p, vol.Name, restrictedVolumes))
		}
	}
	psc := s.SecurityContext
	podNonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	podSeccomp := psc != nil && psc.SeccompProfile != nil &&
		(psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault || psc.SeccompProfile.Type == corev1.SeccompProfileTypeLocalhost)
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		v = append(v, p+".securityContext.runAsUser: 0 (root)")
	}
	if psc != nil && psc.RunAsNonRoot != nil && !*psc.RunAsNonRoot {
		v = append(v, p+".securityContext.runAsNonRoot: false")
	}
	for _, h := range w.securityHolders() {
		sc := h.sc
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		scp := h.path + ".securityContext"
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			v = append(v, scp+".allowPrivilegeEscalation: must be false")
		}
		switch {
		case sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
			v = append(v, scp+".runAsNonRoot: false")
		case sc.RunAsNonRoot == nil && !podNonRoot:
			v = append(v, scp+".runAsNonRoot: must be true (here or in the pod's securityContext)")
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			v = append(v, scp+".runAsUser: 0 (root)")
		}
		switch {
		case sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault && sc.SeccompProfile.Type != corev1.SeccompProfileTypeLocalhost:
			if sc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined { // Unconfined is reported by baseline
				v = append(v, fmt.Sprintf("%s.seccompProfile.type: %s (want RuntimeDefault or Localhost)", scp, sc.SeccompProfile.Type))
			}
		case sc.SeccompProfile == nil && !podSeccomp:
			v = append(v, scp+".seccompProfile.type: must be RuntimeDefault or Localhost (here or in the pod's securityContext)")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			v = append(v, scp+".capabilities.drop: must include ALL")
		}
		if sc.Capabilities != nil {
			for _, c := range sc.Capabilities.Add {
				if c != "NET_BIND_SERVICE" && slices.Contains(baselineCapabilities, c) {
					v = append(v, fmt.Sprintf("%s.capabilities.add: %s (only NET_BIND_SERVICE may be added)", scp, c))
				}
			}
		}
	}
	return v
}
