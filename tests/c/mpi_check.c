// SPDX-License-Identifier: GPL-2.0
/*
 * MPI data checks for the cluster suite (tests/guest/cluster): every byte that
 * arrives is compared with what was sent.
 *
 *   mpi_check pingpong SIZE ITERS fresh|reuse
 *	Ranks r and r + n/2 form a pair (with -H node1:K,node2:K every pair
 *	spans the two nodes).  The lower rank sends SIZE bytes, the upper one
 *	sends them back.  "fresh": every message goes out of and into a buffer
 *	malloc()ed for it and freed after it (malloc hands large buffers out
 *	with mmap and takes them back with munmap, so a registration cache
 *	misses every time); "reuse": one pair of buffers for the whole run.
 *	Every byte of every message is checked, outside the timed part.
 *	Prints the ping-pong bandwidth (2 * SIZE per round trip) of rank 0.
 *   mpi_check allreduce BYTES
 *	MPI_Allreduce(SUM) of BYTES of int64 per rank, every element checked.
 *   mpi_check alltoall BYTES
 *	MPI_Alltoall with BYTES of send buffer per rank, every byte checked.
 *
 * Exit status 0 only when no rank saw a wrong byte or an MPI error.
 */
#include <mpi.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, nranks;

static void die(const char *what)
{
	fprintf(stderr, "mpi_check: rank %d: %s\n", rank, what);
	MPI_Abort(MPI_COMM_WORLD, 2);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

/* Byte i of message (seed): a cheap hash, different for every byte position. */
static inline uint8_t pat(uint64_t seed, size_t i)
{
	uint64_t x = (seed + i) * 0x9E3779B97F4A7C15ull;

	return (uint8_t)(x >> 56) ^ (uint8_t)i;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(seed, i);
}

/* Number of wrong bytes; the first one is reported. */
static size_t check(const uint8_t *p, size_t n, uint64_t seed, const char *what)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != pat(seed, i)) {
			if (!bad)
				fprintf(stderr, "mpi_check: rank %d: %s: byte %zu of %zu is 0x%02x, expected 0x%02x\n",
					rank, what, i, n, p[i], pat(seed, i));
			bad++;
		}
	}
	return bad;
}

static uint64_t seed_of(int iter, int from, int to)
{
	return ((uint64_t)iter << 32) ^ ((uint64_t)from << 16) ^ (uint64_t)to ^ 0x5a5a0000000ull;
}

static size_t pingpong(size_t size, int iters, int fresh, double *secs)
{
	int half = nranks / 2, peer, lower, tag = 7;
	uint8_t *out = NULL, *in = NULL;
	size_t bad = 0;
	double t = 0;

	if (nranks % 2)
		die("pingpong needs an even number of ranks");
	lower = rank < half;
	peer = lower ? rank + half : rank - half;
	if (!fresh) {
		out = xmalloc(size);
		in = xmalloc(size);
	}
	MPI_Barrier(MPI_COMM_WORLD);
	for (int it = 0; it < iters; it++) {
		uint64_t sout = seed_of(it, rank, peer), sin = seed_of(it, peer, rank);
		double t0;

		if (fresh) {
			out = xmalloc(size);
			in = xmalloc(size);
		}
		/* Both sides prepare what they send before the timed part. */
		fill(out, size, sout);
		memset(in, 0, size);
		if (lower) {
			t0 = MPI_Wtime();
			if (MPI_Send(out, (int)size, MPI_BYTE, peer, tag, MPI_COMM_WORLD) ||
			    MPI_Recv(in, (int)size, MPI_BYTE, peer, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE))
				die("MPI_Send/MPI_Recv failed");
			t += MPI_Wtime() - t0;
		} else {
			if (MPI_Recv(in, (int)size, MPI_BYTE, peer, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE) ||
			    MPI_Send(out, (int)size, MPI_BYTE, peer, tag, MPI_COMM_WORLD))
				die("MPI_Recv/MPI_Send failed");
		}
		bad += check(in, size, sin, "pingpong");
		if (fresh) {
			free(out);
			free(in);
		}
	}
	if (!fresh) {
		free(out);
		free(in);
	}
	*secs = t;
	return bad;
}

static int64_t elem(int r, size_t i)
{
	return (int64_t)((i * 2654435761u) % 1000003) * (r + 1) - (int64_t)r * 17;
}

static size_t allreduce(size_t bytes)
{
	size_t n = bytes / sizeof(int64_t), bad = 0;
	int64_t *a = xmalloc(n * sizeof(*a)), *s = xmalloc(n * sizeof(*s));

	for (size_t i = 0; i < n; i++)
		a[i] = elem(rank, i);
	memset(s, 0, n * sizeof(*s));
	if (MPI_Allreduce(a, s, (int)n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD))
		die("MPI_Allreduce failed");
	for (size_t i = 0; i < n; i++) {
		int64_t want = 0;

		for (int r = 0; r < nranks; r++)
			want += elem(r, i);
		if (s[i] != want) {
			if (!bad)
				fprintf(stderr, "mpi_check: rank %d: allreduce element %zu is %" PRId64 ", expected %" PRId64 "\n",
					rank, i, s[i], want);
			bad++;
		}
	}
	free(a);
	free(s);
	return bad;
}

static size_t alltoall(size_t bytes)
{
	size_t blk = bytes / nranks, bad = 0;
	uint8_t *sb = xmalloc(blk * nranks), *rb = xmalloc(blk * nranks);

	for (int d = 0; d < nranks; d++)
		fill(sb + d * blk, blk, seed_of(0, rank, d));
	memset(rb, 0, blk * nranks);
	if (MPI_Alltoall(sb, (int)blk, MPI_BYTE, rb, (int)blk, MPI_BYTE, MPI_COMM_WORLD))
		die("MPI_Alltoall failed");
	for (int s = 0; s < nranks; s++)
		bad += check(rb + s * blk, blk, seed_of(0, s, rank), "alltoall");
	free(sb);
	free(rb);
	return bad;
}

int main(int argc, char **argv)
{
	unsigned long long bad = 0, total = 0;
	double secs = 0;
	size_t size;
	int iters = 1, fresh = 0;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	if (argc < 3)
		die("usage: mpi_check pingpong SIZE ITERS fresh|reuse | allreduce BYTES | alltoall BYTES");
	size = strtoull(argv[2], NULL, 0);
	if (!strcmp(argv[1], "pingpong")) {
		if (argc < 5 || (strcmp(argv[4], "fresh") && strcmp(argv[4], "reuse")))
			die("usage: mpi_check pingpong SIZE ITERS fresh|reuse");
		iters = atoi(argv[3]);
		fresh = !strcmp(argv[4], "fresh");
		bad = pingpong(size, iters, fresh, &secs);
	} else if (!strcmp(argv[1], "allreduce")) {
		bad = allreduce(size);
	} else if (!strcmp(argv[1], "alltoall")) {
		bad = alltoall(size);
	} else {
		die("unknown test");
	}
	MPI_Allreduce(&bad, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
	if (rank == 0) {
		printf("mpi_check %s ranks=%d bytes=%zu", argv[1], nranks, size);
		if (!strcmp(argv[1], "pingpong"))
			printf(" iters=%d buffers=%s seconds=%.6f MBps=%.3f", iters, argv[4], secs,
			       secs > 0 ? 2.0 * size * iters / secs / 1e6 : 0.0);
		printf(" wrong_bytes=%llu\n", total);
	}
	MPI_Finalize();
	return total ? 1 : 0;
}
