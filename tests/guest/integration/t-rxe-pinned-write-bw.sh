# Pinned-memory RDMA WRITE bandwidth over rxe0 in loopback completes.
. ./lib.sh
bw=$(perftest_pair ib_write_bw -D 2) || fail "ib_write_bw failed"
echo "ib_write_bw pinned: $bw MB/s"
awk -v b="$bw" 'BEGIN { exit !(b > 0) }' || fail "no bandwidth measured"
