# Fault injection (debug kernel only): failslab and fail_page_alloc during ODP
# registration (fail-nth) and ODP page faults (stack-trace filter on
# ib_umem_odp_map_and_lock()); clean errors, right data, no hang.  Leaks and
# splats are caught by tests/host/vm-run (kmemleak scan, kernel log).
. ./lib.sh
[ -d /sys/kernel/debug/failslab ] || skip "fault injection needs the debug kernel (make check DEBUG=1)"
odp_supported || fail "rxe0 reports no ODP support"
"$TESTS_BIN/odp_faultinject" "$DEV" || fail "fault injection gave a wrong result (see above)"
