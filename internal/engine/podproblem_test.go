package engine

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// A container that crashed and runs again, not ready, is named with its
// last state: the reason the layer is stuck.
func TestPodProblemNamesTheLastState(t *testing.T) {
	p := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "alt-backend", RestartCount: 2,
			State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 3, Message: "crashing as told"}}}}}}
	got := podProblem(p)
	for _, want := range []string{"container alt-backend not ready (restarts 2)", "last state: terminated Error exit 3", "crashing as told"} {
		if !strings.Contains(got, want) {
			t.Errorf("podProblem = %q, want it to say %q", got, want)
		}
	}
}
