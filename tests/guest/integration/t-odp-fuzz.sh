# The ODP verbs fuzzer (tests/c/odp_fuzz.c): seeded random registrations
# (explicit, implicit, at edge addresses), deregistrations, advise_mr, RDMA
# READ/WRITE/SEND/atomics with random keys, addresses and lengths, memory
# changes under the MRs (mmap, munmap, mprotect, madvise, mremap) and forked
# children that exit with work in flight.  Fails on a WR that never completes,
# an errno outside a verb's documented set, MR/QP counts or Slab not back
# after a child.  The seed is printed; ODP_FUZZ_SEED=N replays it.
#
# Op classes that hit kernel bugs still being fixed are excluded, as listed
# with their reasons in tests/odp-fuzz-exclude (ODP_FUZZ_EXCLUDE="--no-CLASS
# ..." overrides the list; an empty value runs every class).
. ./lib.sh
odp_supported || fail "rxe0 reports no ODP support"
secs=${ODP_FUZZ_SECONDS:-60}
# the debug kernel is several times slower (VM_SLOWDOWN, from tests/host/vm-run): run
# as many times longer for about the same number of operations
secs=$((secs * ${VM_SLOWDOWN:-1}))
if [ -z "${ODP_FUZZ_EXCLUDE+set}" ]; then
	ODP_FUZZ_EXCLUDE=$(awk -F'\t' '!/^#/ && NF { printf "--no-%s ", $1 }' ../../odp-fuzz-exclude)
	awk -F'\t' '!/^#/ && NF { print "excluded " $1 ": " $2 }' ../../odp-fuzz-exclude
fi
exclude=$ODP_FUZZ_EXCLUDE
# shellcheck disable=SC2086
"$TESTS_BIN/odp_fuzz" --dev "$DEV" --seconds "$secs" ${ODP_FUZZ_SEED:+--seed "$ODP_FUZZ_SEED"} $exclude ||
	fail "odp_fuzz found a violation (see above; replay with the printed seed)"
