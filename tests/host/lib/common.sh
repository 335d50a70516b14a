# The set-up tests/host/check and tests/host/stress share.  Sourced without
# arguments after setting runner (check or stress), so that it sees, and takes
# a leading --debug off, the caller's own arguments:
#   runner=check; . "$(dirname "$0")/lib/common.sh"
# Sets top, debug (and exports DEBUG), build, obj (the kernel's build
# directory), slow (time limits are multiplied by it: debug_slowdown of
# tests/host/lib/slowdown.sh on the debug kernel, else 1), vmrun, parse,
# out (BUILD_DIR/runner) and results (out/results.tsv).
# shellcheck shell=bash disable=SC2034
: "${runner:?common.sh: set runner (check or stress) before sourcing it}"
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
debug=${DEBUG:-0}
if [ "${1:-}" = --debug ]; then debug=1; shift; fi
export DEBUG=$debug
build=${BUILD_DIR:-$top/build}
if [ "$debug" = 1 ]; then obj=$build/obj-debug; else obj=$build/obj; fi
# shellcheck source=tests/host/lib/slowdown.sh
. "$top/tests/host/lib/slowdown.sh"
slow=$(slowdown_for "$debug")
vmrun=$top/tests/host/vm-run
parse="python3 $top/tests/host/lib/results.py parse"
out=$build/$runner
results=$out/results.tsv

# prepare: build the kernel and the test programs, start an empty results
# file.  A failed build is one failed case (the summary line says so).
prepare() {
	make -C "$top" -s kernel DEBUG="$debug" ||
		{ echo "$runner: kernel build failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
	"$top/tests/host/build-tests" ||
		{ echo "$runner: building the tests failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
	mkdir -p "$out"
	: > "$results"
}

# summary: the per-suite counts and the last line, 'N passed, N failed, N skipped'.
summary() {
	python3 "$top/tests/host/lib/results.py" summary "$results"
}
