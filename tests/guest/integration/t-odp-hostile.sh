# Hostile input to ODP MRs (issue 12): the top of the address space, huge
# no-fault prefetches, memory cgroup charging and limits, 1-byte writes into
# file mappings, userfaultfd, unmap livelock, SIGKILL with WRs in flight,
# fork of a mirrored THP (tests/c/odp_hostile.c).
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
"$TESTS_BIN/odp_hostile" "$DEV" || fail "a hostile input was not handled (see the TAP lines above)"
