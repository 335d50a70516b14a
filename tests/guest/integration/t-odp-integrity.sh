# RDMA WRITE/READ/SEND of 1 B..16 MiB at random page offsets through cold and
# warm ODP memory (anonymous and file-backed), pinned as control; every byte
# checked by the CPU (tests/c/odp_integrity.c).
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
"$TESTS_BIN/odp_integrity" "$DEV" || fail "data mismatch or error (see the TAP lines above)"
