# Helpers for integration tests running in the VM on rxe0.
DEV=${DEV:-rxe0}
GID_INDEX=${GID_INDEX:-1}	# RoCEv2 GID of 10.0.2.15
SERVER=10.0.2.15
# shellcheck source=tests/guest/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# Test programs built by tests/host/build-tests, in the BUILD_DIR of the kernel
# that vm-run booted ($VM_KERNEL_OBJ is BUILD_DIR/obj or BUILD_DIR/obj-debug).
if [ -z "${TESTS_BIN:-}" ] && [ -n "${VM_KERNEL_OBJ:-}" ]; then
	TESTS_BIN=$(dirname "$VM_KERNEL_OBJ")/tests-bin
fi
TESTS_BIN=${TESTS_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build/tests-bin}

# odp_supported: does the device report general ODP support?
odp_supported() {
	ibv_devinfo -v -d "$DEV" | grep -A3 general_odp_caps | grep -q ODP_SUPPORT
}

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "$*"; exit 77; }

# wait_listen PORT PID: wait (at most 10 s) until PID listens on TCP PORT.
wait_listen() {
	local i
	for i in $(seq 100); do
		ss -ltn 2>/dev/null | grep -q ":$1 " && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# rc_pingpong_pair BASEPORT ARGS...: ibv_rc_pingpong server and client in
# loopback with ARGS, on a port drawn from [BASEPORT, BASEPORT + 1000);
# fails the test when either side fails.
rc_pingpong_pair() {
	local port=$(($1 + RANDOM % 1000)) spid
	shift
	ibv_rc_pingpong -d "$DEV" -g "$GID_INDEX" -p $port "$@" > /tmp/pp-s.log 2>&1 &
	spid=$!
	wait_listen $port $spid || fail "server did not start: $(cat /tmp/pp-s.log)"
	ibv_rc_pingpong -d "$DEV" -g "$GID_INDEX" -p $port "$@" "$SERVER" || fail "client failed"
	wait $spid || fail "server failed: $(cat /tmp/pp-s.log)"
}

# perftest_pair TOOL [ARGS...] [-- CLIENT_ARGS...]: run TOOL as server and
# client in loopback and print the client's average bandwidth in MB/s.  ARGS
# go to both sides; with '--', ARGS to the server only and CLIENT_ARGS to the
# client.  Tried again when perftest's clock calibration refuses
# (perftest_retry).  Returns non-zero on failure.
perftest_pair() { perftest_retry perftest_pair_once "$@"; }

perftest_pair_once() {
	local tool=$1; shift
	local port=$((18515 + RANDOM % 1000))
	local slog clog sargs cargs
	perftest_split_args "$@"
	slog=$(mktemp) clog=$(mktemp)
	"$tool" -d "$DEV" -x "$GID_INDEX" -p "$port" "${sargs[@]}" > "$slog" 2>&1 &
	local spid=$!
	wait_listen "$port" $spid
	"$tool" -d "$DEV" -x "$GID_INDEX" -p "$port" "${cargs[@]}" "$SERVER" > "$clog" 2>&1
	local cst=$?
	wait $spid
	local sst=$?
	sed 's/^/server: /' "$slog" >&2
	sed 's/^/client: /' "$clog" >&2
	if [ $cst -ne 0 ] || [ $sst -ne 0 ]; then
		rm -f "$slog" "$clog"
		return 1
	fi
	# The result line follows the '#bytes' header: bytes iters peak avg ...
	awk '/#bytes/ { getline; print $4; exit }' "$clog"
	rm -f "$slog" "$clog"
}
