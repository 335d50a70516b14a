# RDMA to unmapped or read-only pages inside ODP MRs: right completion
# status, requester QP in error, device still working (tests/c/odp_errors.c).
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
"$TESTS_BIN/odp_errors" "$DEV" || fail "wrong status or hang (see the TAP lines above)"
