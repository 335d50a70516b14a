# ibv_rc_pingpong with pinned memory, payload checked (-c).
. ./lib.sh
port=$((19515 + RANDOM % 1000))
ibv_rc_pingpong -d "$DEV" -g "$GID_INDEX" -p $port -c -n 100 > /tmp/pp-s.log 2>&1 &
spid=$!
wait_listen $port $spid || fail "server did not start: $(cat /tmp/pp-s.log)"
ibv_rc_pingpong -d "$DEV" -g "$GID_INDEX" -p $port -c -n 100 "$SERVER" || fail "client failed"
wait $spid || fail "server failed: $(cat /tmp/pp-s.log)"
