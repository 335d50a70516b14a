# ODP hardware counters in "rdma statistic" and the rxe ODP trace events:
# ibv_rc_pingpong with an implicit ODP MR (-O, payload checked) must move
# odp_faults and odp_pages_faulted; the trace must show faults, prefetches
# and invalidations with the values the scripted implicit-MR sequence of
# tests/c/odp_prefetch.c implies.
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"

stat() { rdma statistic show link "$DEV/1"; }
counter() { stat | tr ' ' '\n' | awk -v n="$1" '$0 == n { getline; print; exit }'; }

for c in odp_faults odp_pages_faulted odp_invalidations odp_pages_invalidated \
	 odp_prefetches odp_fault_errors; do
	v=$(counter $c)
	[ -n "$v" ] || fail "rdma statistic has no $c: $(stat)"
	echo "$c $v"
done

tr=/sys/kernel/tracing
[ -d $tr/events/rxe ] || fail "no rxe trace events in $tr/events"
for e in rxe_odp_fault rxe_odp_invalidate rxe_odp_prefetch; do
	[ -d $tr/events/rxe/$e ] || fail "no trace event rxe/$e"
done
echo 0 > $tr/tracing_on
echo > $tr/trace
echo 1 > $tr/events/rxe/enable
echo 1 > $tr/tracing_on

# Implicit ODP ping-pong: the counters must move.
f0=$(counter odp_faults) p0=$(counter odp_pages_faulted)
rc_pingpong_pair 20515 -O -c -n 100
sleep 0.1	# the core caches hardware counters for 10 ms
f1=$(counter odp_faults) p1=$(counter odp_pages_faulted)
echo "rc_pingpong -O -c: odp_faults $f0 -> $f1, odp_pages_faulted $p0 -> $p1"
[ "$f1" -gt "$f0" ] || fail "odp_faults did not move"
[ "$p1" -gt "$p0" ] || fail "odp_pages_faulted did not move"
grep -q 'rxe_odp_fault:.* err=0' $tr/trace || fail "no rxe_odp_fault event for the ping-pong"

# The implicit-MR script: its prefetches, device fault and invalidations.
echo > $tr/trace
"$TESTS_BIN/odp_prefetch" "$DEV" implicit || fail "implicit script failed"
echo 0 > $tr/events/rxe/enable
grep -c 'rxe_odp_' $tr/trace | sed 's/^/trace events: /'
grep 'rxe_odp_' $tr/trace | sed 's/^ *//' | head -20
check() { grep -Eq "$1" $tr/trace || fail "no trace line matching: $1"; }
# A fault or prefetch chunk is 2 MiB of CPU pages (MTT entries are CPU pages too)
chunk=$((2 * 1024 * 1024))
cp=$((chunk / $(getconf PAGESIZE)))
echo "page size $(getconf PAGESIZE): $cp pages per chunk"
# 4 MiB write prefetch: two chunks
n=$(grep -Ec "rxe_odp_prefetch: .* len=$chunk advice=prefetch_write pages=$cp err=0" $tr/trace)
[ "$n" = 2 ] || fail "expected 2 write-prefetch chunks of $cp pages, saw $n"
check 'rxe_odp_fault: .* write=1 err=0'
check "rxe_odp_invalidate: .* zapped=$cp\$"
check "rxe_odp_invalidate: .* zapped=$((2 * cp))\$"
echo > $tr/trace
