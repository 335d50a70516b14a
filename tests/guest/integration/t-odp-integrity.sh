# RDMA WRITE/READ/SEND of 1 B..16 MiB at random page offsets through cold and
# warm ODP memory (anonymous and file-backed), pinned as control; every byte
# checked by the CPU (tests/c/odp_integrity.c).  The retransmissions rxe
# counted meanwhile are printed: each duplicate READ request is served again.
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
hw=/sys/class/infiniband/$DEV/ports/1/hw_counters
counters="completer_retry_err duplicate_request retry_exceeded_err"
declare -A before
for c in $counters; do before[$c]=$(cat "$hw/$c"); done
"$TESTS_BIN/odp_integrity" "$DEV" || fail "data mismatch or error (see the TAP lines above)"
for c in $counters; do echo "rxe counter $c: ${before[$c]} -> $(cat "$hw/$c")"; done
