# ib_atomic_bw with ODP memory (--odp) over rxe0 in loopback.
# Debian's perftest 4.5+0.17 refuses --odp with atomics in its own option
# parser ("ODP does not support ATOMICS for now"), before it opens the
# device: then this test skips with that reason.  ODP atomics are covered by
# pyverbs test_odp_rc_atomic_* and tests/c/odp_errors.c.
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
out=$(ib_atomic_bw -d "$DEV" -x "$GID_INDEX" --odp 2>&1 </dev/null)
if echo "$out" | grep -q "ODP does not support ATOMICS"; then
	skip "perftest $(dpkg-query -W -f='${Version}' perftest) refuses --odp with atomics: ODP does not support ATOMICS for now"
fi
bw=$(perftest_pair ib_atomic_bw --odp -D 2) || fail "ib_atomic_bw --odp failed"
echo "ib_atomic_bw --odp: $bw MB/s"
awk -v b="$bw" 'BEGIN { exit !(b > 0) }' || fail "no bandwidth measured"
