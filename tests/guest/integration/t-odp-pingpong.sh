# ibv_rc_pingpong with an ODP MR (-o), payload checked (-c).
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
rc_pingpong_pair 19515 -o -c -n 100
