# ib_write_bw with ODP memory (--odp) runs to completion over rxe0 in loopback.
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
bw=$(perftest_pair ib_write_bw --odp -D 2) || fail "ib_write_bw --odp failed"
echo "ib_write_bw --odp: $bw MB/s"
awk -v b="$bw" 'BEGIN { exit !(b > 0) }' || fail "no bandwidth measured"
