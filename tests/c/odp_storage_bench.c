// SPDX-License-Identifier: GPL-2.0
/*
 * Storage-target figures on a mounted file system (make bench-storage):
 *
 *   odp_storage_bench DEV DIR [MIB] [ROUNDS]
 *
 * 1. RDMA READ bandwidth of a file-backed ODP MR (page cache warm, mirror
 *    warm) against anonymous ODP memory, same size, same requests;
 * 2. a cold RDMA READ of a file evicted from the page cache (drop_caches),
 *    against the same READ with the file cached but the mirror cold (a new
 *    MR): the difference is the disk's;
 * 3. serving the file to a client at 1 MiB requests: zero-copy (the client
 *    RDMA READs the target's ODP-registered file mapping) against copy
 *    serving (the target pread()s each request into a pinned buffer and RDMA
 *    WRITEs it to the client).
 * Each figure is the median of ROUNDS interleaved rounds; every round moves
 * the whole file (MIB MiB, default 256) and the CPU checks every byte the
 * client got in the first round of each mode.  Prints "figure name value",
 * and for each ratio "NAME_rounds median min max" of the per-round ratios.
 */
#define _GNU_SOURCE
#include "rdma_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MiB	(1024UL * 1024)
#define REQ	MiB
#define WINDOW	8	/* requests in flight */

static struct rdma_ctx r;
static struct rdma_pair qp;
static size_t len;
static unsigned char *client;	/* the client's buffer: pinned */
static struct ibv_mr *client_mr;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned char pat(uint64_t off)
{
	return (unsigned char)((off * 2654435761u) >> 13) | 1;
}

static void die(const char *what)
{
	fprintf(stderr, "odp_storage_bench: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Wait for @n completions; any error is fatal. */
static void reap(int n)
{
	int st = rdma_complete(&r, n);

	if (st) {
		fprintf(stderr, "odp_storage_bench: completion status %d\n", st);
		exit(2);
	}
}

/* The client RDMA READs [0, len) of @mr at @base into its buffer. */
static double read_all(struct ibv_mr *mr, unsigned char *base)
{
	double t = now();
	size_t off;
	int inflight = 0;

	for (off = 0; off < len; off += REQ) {
		if (inflight == WINDOW) {
			reap(1);
			inflight--;
		}
		if (rdma_post_rw(&qp, IBV_WR_RDMA_READ, client + off, client_mr->lkey,
				 (uintptr_t)base + off, mr->rkey, REQ))
			die("post READ");
		inflight++;
	}
	reap(inflight);
	return now() - t;
}

/* Copy serving: pread each request into a pinned buffer, RDMA WRITE it. */
static double copy_serve(int fd, unsigned char *bounce, struct ibv_mr *bmr)
{
	double t = now();
	size_t off;
	int inflight = 0, slot = 0;

	for (off = 0; off < len; off += REQ) {
		if (inflight == WINDOW) {
			reap(1);
			inflight--;
		}
		/* slot reuse is safe: WINDOW slots, at most WINDOW in flight */
		if (pread(fd, bounce + slot * REQ, REQ, off) != (ssize_t)REQ)
			die("pread");
		if (rdma_post_rw(&qp, IBV_WR_RDMA_WRITE, bounce + slot * REQ, bmr->lkey,
				 (uintptr_t)client + off, client_mr->rkey, REQ))
			die("post WRITE");
		inflight++;
		slot = (slot + 1) % WINDOW;
	}
	reap(inflight);
	return now() - t;
}

static int check_client(const char *what)
{
	for (size_t i = 0; i < len; i++)
		if (client[i] != pat(i)) {
			fprintf(stderr, "odp_storage_bench: %s: byte %zu is %#x, expected %#x\n",
				what, i, client[i], pat(i));
			return -1;
		}
	return 0;
}

static struct ibv_mr *reg_odp(void *p)
{
	struct ibv_mr *mr = ibv_reg_mr(r.pd, p, len, IBV_ACCESS_LOCAL_WRITE |
				       IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND);

	if (!mr)
		die("ibv_reg_mr(ODP)");
	return mr;
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd < 0 || write(fd, "3\n", 2) != 2)
		die("drop_caches");
	close(fd);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Print "NAME median min max" of the per-round ratios @num[i] / @den[i]: each
 * round's two passes ran side by side, so their ratio carries that round's
 * load, and min..max shows the spread.  Call before median() sorts either.
 */
static void print_ratio(const char *name, const double *num, const double *den, int n)
{
	double *q = calloc(n, sizeof(*q));
	int i;

	if (!q)
		die("calloc");
	for (i = 0; i < n; i++)
		q[i] = num[i] / den[i];
	qsort(q, n, sizeof(*q), cmp);
	printf("%s %.3f %.3f %.3f\n", name, median(q, n), q[0], q[n - 1]);
	free(q);
}

int main(int argc, char **argv)
{
	int rounds, fd, i;
	unsigned char *file, *anon, *bounce;
	struct ibv_mr *fmr, *amr, *bmr;
	char path[512];
	double *t[6];
	size_t off;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DEV DIR [MIB] [ROUNDS]\n", argv[0]);
		return 2;
	}
	len = (argc > 3 ? strtoul(argv[3], NULL, 0) : 256) * MiB;
	rounds = argc > 4 ? atoi(argv[4]) : 3;
	for (i = 0; i < 6; i++)
		t[i] = calloc(rounds, sizeof(double));
	if (rdma_open(&r, argv[1], 1) || rdma_pair_create(&r, &qp))
		die("rdma setup");

	/* The file, written and on disk; the anonymous twin; the client. */
	snprintf(path, sizeof(path), "%s/served", argv[2]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	client = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
		      MAP_POPULATE, -1, 0);
	anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
		    MAP_POPULATE, -1, 0);
	bounce = mmap(NULL, WINDOW * REQ, PROT_READ | PROT_WRITE, MAP_PRIVATE |
		      MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (fd < 0 || client == MAP_FAILED || anon == MAP_FAILED || bounce == MAP_FAILED)
		die("setup");
	for (off = 0; off < len; off++)
		anon[off] = pat(off);
	for (off = 0; off < len; off += MiB)
		if (pwrite(fd, anon + off, MiB, off) != (ssize_t)MiB)
			die("pwrite");
	if (fsync(fd))
		die("fsync");
	file = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (file == MAP_FAILED)
		die("mmap");
	client_mr = ibv_reg_mr(r.pd, client, len, IBV_ACCESS_LOCAL_WRITE |
			       IBV_ACCESS_REMOTE_WRITE);
	bmr = ibv_reg_mr(r.pd, bounce, WINDOW * REQ, IBV_ACCESS_LOCAL_WRITE);
	if (!client_mr || !bmr)
		die("ibv_reg_mr");

	for (i = 0; i < rounds; i++) {
		/* 2: cold (evicted) against cached, each with a new, cold MR */
		drop_caches();
		fmr = reg_odp(file);
		memset(client, 0, len);
		t[2][i] = read_all(fmr, file);
		if (i == 0 && check_client("cold file READ"))
			return 1;
		ibv_dereg_mr(fmr);
		fmr = reg_odp(file);
		t[3][i] = read_all(fmr, file);
		/* 1: warm file against warm anonymous (same MR, second pass) */
		memset(client, 0, len);
		t[0][i] = read_all(fmr, file);
		if (i == 0 && check_client("warm file READ"))
			return 1;
		amr = reg_odp(anon);
		read_all(amr, anon);
		memset(client, 0, len);
		t[1][i] = read_all(amr, anon);
		if (i == 0 && check_client("anonymous READ"))
			return 1;
		ibv_dereg_mr(amr);
		/* 3: zero-copy is t[0]; copy serving from the warm page cache */
		memset(client, 0, len);
		t[4][i] = copy_serve(fd, bounce, bmr);
		if (i == 0 && check_client("copy serving"))
			return 1;
		ibv_dereg_mr(fmr);
		fprintf(stderr, "round %d: warm file %.3fs anon %.3fs cold %.3fs cached %.3fs copy %.3fs\n",
			i + 1, t[0][i], t[1][i], t[2][i], t[3][i], t[4][i]);
	}

	printf("size_mib %zu\nrounds %d\n", len / MiB, rounds);
	print_ratio("file_over_anon_rounds", t[1], t[0], rounds);
	print_ratio("cold_over_cached_time_rounds", t[2], t[3], rounds);
	print_ratio("zero_copy_over_copy_rounds", t[4], t[0], rounds);

	double mb = len / 1e6, warm = median(t[0], rounds), an = median(t[1], rounds);
	double cold = median(t[2], rounds), cached = median(t[3], rounds);
	double copy = median(t[4], rounds);

	printf("read_file_warm_MBps %.2f\nread_anon_MBps %.2f\nfile_over_anon %.3f\n",
	       mb / warm, mb / an, an / warm);
	printf("read_cold_evicted_MBps %.2f\nread_cached_cold_mirror_MBps %.2f\n"
	       "cold_over_cached_time %.3f\n", mb / cold, mb / cached, cold / cached);
	printf("serve_zero_copy_MBps %.2f\nserve_copy_MBps %.2f\nzero_copy_over_copy %.3f\n",
	       mb / warm, mb / copy, copy / warm);
	return 0;
}
