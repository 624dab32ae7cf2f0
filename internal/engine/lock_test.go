package engine

import (
	"fmt"
	"os"
	"testing"
)

func TestDeadHere(t *testing.T) {
	host, _ := os.Hostname()
	if deadHere(Holder("all")) {
		t.Error("this live run counts as dead")
	}
	if !deadHere(fmt.Sprintf("me@%s pid %d running \"all\" since now", host, 1<<22-3)) {
		t.Error("a run whose pid does not exist counts as alive")
	}
	if deadHere("ops@another-host pid 4242 running \"all\" since now") {
		t.Error("a run on another machine counts as dead")
	}
}
