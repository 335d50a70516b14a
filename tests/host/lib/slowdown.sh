# The one place the debug kernel's slowdown is set.  The debug kernel (KASAN,
# lockdep, DEBUG_VM, kmemleak) under emulation does the same work about this
# many times slower than the normal one (ibv_rc_pingpong across two nodes:
# 14-17 s normal, 94-101 s debug on 2026-12-03), so every time limit meant
# for the normal kernel is multiplied by it there: the host's (slow, in
# tests/host/lib/common.sh) and, through VM_SLOWDOWN that tests/host/vm-run
# exports to the guest, the guest scripts' (SLOW) and the C tests'
# (debug_slowdown(), tests/c/rdma_util.c).
# shellcheck shell=bash
debug_slowdown=4

# slowdown_for DEBUG: the factor for a kernel built with DEBUG (0 or 1)
slowdown_for() {
	if [ "$1" = 1 ]; then echo "$debug_slowdown"; else echo 1; fi
}
