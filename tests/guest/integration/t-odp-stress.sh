# ODP invalidation race stress (tests/c/odp_stress.c): RDMA READ/WRITE and
# atomics on explicit and implicit ODP MRs while the same addresses are
# unmapped, remapped, zapped, write-protected, moved, forked, THP split and
# collapsed.  Fails on any stale or freed page seen by the device, any wrong
# atomic, any completion that never comes.  ODP_STRESS_SECONDS sets the length.
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
secs=${ODP_STRESS_SECONDS:-40}
# the debug kernel is several times slower: same wall time, fewer operations
"$TESTS_BIN/odp_stress" --dev "$DEV" --seconds "$secs" || fail "odp_stress found a violation (see above)"
