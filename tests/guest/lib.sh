# Helpers shared by the guest suites (integration, storage, cluster); sourced.

# perftest_split_args ARGS... [-- CLIENT_ARGS...]: set the arrays sargs and
# cargs: ARGS for both sides, or with '--' ARGS for the server only and
# CLIENT_ARGS for the client.
perftest_split_args() {
	sargs=() cargs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do sargs+=("$1"); shift; done
	if [ $# -gt 0 ]; then shift; cargs=("$@"); else cargs=("${sargs[@]}"); fi
}

# perftest_retry ONCE ARGS...: run ONCE ARGS... (one perftest server/client
# pair: the bandwidth on stdout, perftest's output on stderr) and print its
# bandwidth.  perftest calibrates its cycle counter against the clock first
# and refuses to report when the fit is poor ("Correlation coefficient r^2 <
# 0.9"), which under emulation on a loaded host happens now and then before
# any transfer: only that is tried again, at most 3 times, and said (a
# "perftest_retry:" line on stderr).  Returns non-zero on failure.
perftest_retry() {
	local once=$1 try out st errf
	shift
	errf=$(mktemp)
	for try in 1 2 3; do
		out=$("$once" "$@" 2> "$errf")
		st=$?
		cat "$errf" >&2
		if [ $st -eq 0 ]; then
			rm -f "$errf"
			echo "$out"
			return 0
		fi
		grep -q "Correlation coefficient r^2" "$errf" || break
		echo "perftest_retry: clock calibration failed (r^2 < 0.9), try $try of 3" >&2
	done
	rm -f "$errf"
	return 1
}

# wait_for_line FILE PATTERN PID: wait (at most 10 s) until FILE has a line
# matching PATTERN, or PID ended.
wait_for_line() {
	local i
	for i in $(seq 100); do
		grep -q "$2" "$1" && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# mr_records DEV: `rdma -dd res show mr` of DEV, one line per MR (each record
# starts with "dev " at a line start).
mr_records() {
	rdma -dd res show mr dev "$1" |
		awk '/^dev / { if (r) print r; r = $0; next } { r = r " " $0 } END { print r }'
}
