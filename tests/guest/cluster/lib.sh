# Helpers for the cluster suite, sourced on node1 of tests/host/vm-run --nodes N.
DEV=${DEV:-rxe0}
GID_INDEX=${GID_INDEX:-1}	# RoCEv2 GID of the node's 10.0.3.K address
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [ -z "${TESTS_BIN:-}" ] && [ -n "${VM_KERNEL_OBJ:-}" ]; then
	TESTS_BIN=$(dirname "$VM_KERNEL_OBJ")/tests-bin
fi
TESTS_BIN=${TESTS_BIN:-$top/build/tests-bin}
PY=/usr/bin/python3
# shellcheck source=tests/guest/lib.sh
. "$top/tests/guest/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# Time limits below are for the normal kernel; they are multiplied by SLOW,
# the factor tests/host/vm-run gives the kernel under test (VM_SLOWDOWN:
# tests/host/lib/slowdown.sh for the debug kernel, else 1).
SLOW=${VM_SLOWDOWN:-1}

# The UCX settings MPI jobs on rxe need (README: "MPI over UCX on soft-RoCE").
# shellcheck source=tests/guest/cluster/ucx.env
. "$top/tests/guest/cluster/ucx.env"

# on NODE CMD...: run a shell command on a node over ssh, through the node's
# master connection when mux_start made one (a new ssh connection costs
# seconds of key exchange under emulation; a multiplexed session does not).
# SSH_MUX_OFF=1: on() makes a new connection each time (on_mux() does not).
SSH_MUX=/tmp/ssh-mux-%h
on() {
	local n=$1 path=$SSH_MUX; shift
	[ "${SSH_MUX_OFF:-0}" = 1 ] && path=none
	ssh -o ControlPath=$path "$n" "$@"
}
on_mux() { local n=$1; shift; ssh -o ControlPath=$SSH_MUX "$n" "$@"; }

# mux_start NODE...: one background master connection to each NODE (ended
# with the VM).  Without one, on() connects the usual way.
mux_start() {
	local n
	for n in "$@"; do
		ssh -f -N -o ControlMaster=yes -o ControlPersist=yes -o ControlPath=$SSH_MUX "$n" \
			< /dev/null > /dev/null 2>&1 || echo "# no ssh master connection to $n"
	done
}

# mpi NP HOSTS [mpirun args...] -- PROGRAM...: mpirun with the UCX settings.
mpi() {
	local np=$1 hosts=$2; shift 2
	local x=() v
	for v in $(env | sed -n 's/^\(UCX_[A-Z_0-9]*\)=.*/\1/p'); do x+=(-x "$v"); done
	mpirun -np "$np" -H "$hosts" --mca pml ucx "${x[@]}" "$@"
}

# rxe_counter NODE NAME: the device-wide hardware counter NAME of NODE's rxe0
# ("none" if the device has no such counter).
rxe_counter() {
	on "$1" rdma statistic show link "$DEV/1" | tr ' ' '\n' | awk -v n="$2" '$1 == n { getline; print; f = 1 } END { if (!f) print "none" }'
}
odp_faults() { rxe_counter "$1" odp_faults; }

# wait_port NODE PORT: wait (at most 20 s) until something listens on TCP PORT
# of NODE (node1 is this node: no ssh round trip per look).
wait_port() {
	local i
	for i in $(seq 200); do
		if [ "$1" = "$(hostname)" ]; then
			ss -ltn | grep -q ":$2 " && return 0
		else
			on "$1" "ss -ltn | grep -q ':$2 '" && return 0
		fi
		sleep 0.1
	done
	return 1
}
