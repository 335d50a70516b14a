# Bad input on ODP (tests/c/odp_badinput.c): invalid registrations, advise_mr,
# deregistration / QP destruction / process exit while faults are in flight,
# and "rdma link delete rxe0" during ODP traffic (rxe0 is created again).
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
"$TESTS_BIN/odp_badinput" "$DEV"
st=$?
# whatever happened, leave rxe0 for the next tests
if [ ! -e /sys/class/infiniband/rxe0 ]; then
	rdma link add rxe0 type rxe netdev eth0
	for _ in $(seq 50); do grep -q ACTIVE /sys/class/infiniband/rxe0/ports/1/state 2>/dev/null && break; sleep 0.1; done
fi
[ $st -eq 0 ] || fail "a bad-input row did not give the expected result (see the TAP lines above)"
