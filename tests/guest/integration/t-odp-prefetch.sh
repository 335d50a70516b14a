# ODP prefetch (advise_mr: sync, async, no-fault; explicit and implicit MRs),
# its errors, and the per-MR and device-wide ODP counters asserted exactly
# over scripted sequences (tests/c/odp_prefetch.c).
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
"$TESTS_BIN/odp_prefetch" "$DEV" || fail "see the TAP lines above"
