# shellcheck shell=sh
# The library every script of scripts/ sources (". "${0%/*}/lib/kube.sh"").
#
# One convention for the cluster: every kubectl call goes through kube,
# which names the context Skaffold gives its hooks (SKAFFOLD_KUBE_CONTEXT).
# Run by hand, that variable is unset and kubectl uses the current context
# of KUBECONFIG (the engine's own kubeconfig for a run:
# .cache/<cluster>/kubeconfig, printed by `mage status`).

# kube runs kubectl in the deploy's kube context.
kube() {
	kubectl --context="${SKAFFOLD_KUBE_CONTEXT:-}" "$@"
}

# fail prints its arguments on stderr after the script's name and exits 1.
fail() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# usage prints the script's header comment: its synopsis and what it checks.
usage() {
	sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}

# need_args MIN "$@": -h or --help prints the usage and exits 0; fewer than
# MIN arguments print it on stderr and exit 2.
need_args() {
	min=$1
	shift
	case "${1:-}" in
	-h | --help)
		usage
		exit 0
		;;
	esac
	if [ "$#" -lt "$min" ]; then
		usage >&2
		exit 2
	fi
}

# check_secret NAMESPACE NAME KEY...: the Secret exists in the namespace and
# each key in its data holds a value. A key written KEY? may be empty (the
# OAuth token Secret starts empty until the first sign-in).
check_secret() {
	ns=$1 name=$2
	shift 2
	data=$(kube --namespace="$ns" get secret "$name" -o 'jsonpath={.data}') ||
		fail "Secret $ns/$name cannot be read (see docs/contract.md for who provides it)"
	for key in "$@"; do
		may_be_empty=
		case $key in
		*"?")
			key=${key%"?"}
			may_be_empty=yes
			;;
		esac
		case "$data" in
		*"\"$key\":\"\""*)
			[ -n "$may_be_empty" ] ||
				fail "Secret $ns/$name has key '$key' but no value in it (see docs/contract.md)"
			;;
		*"\"$key\":"*) ;;
		*) fail "Secret $ns/$name has no key '$key' (see docs/contract.md)" ;;
		esac
	done
}
