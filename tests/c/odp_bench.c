// SPDX-License-Identifier: GPL-2.0
/*
 * Micro-benchmarks of ODP memory regions against pinned ones, on one device
 * in loopback (RC QP pairs from rdma_util.c).  Used by tests/guest/bench/bench.py.
 *
 *   odp_bench [-d DEV] [-g GID] [-r ROUNDS] TEST [ARGS]
 *
 *   reg SIZE...        ibv_reg_mr time, ODP against pinned, on populated memory,
 *                      and a pinned registration of one 4 KiB page before each
 *   implicit           ibv_reg_mr(pd, NULL, SIZE_MAX, ON_DEMAND) time, and a
 *                      pinned registration of one 4 KiB page before each
 *   cold SIZE          RDMA WRITE of SIZE into a fresh ODP MR (registration
 *                      included), into a fresh pinned MR (pinning included),
 *                      and again into the same ODP MR once warm
 *   fault BLOCKS       RDMA READ of one 4 KiB page not yet mirrored, then of
 *                      the same page warm, BLOCKS times; CPU minor faults
 *   inval SIZE         MADV_DONTNEED and munmap of a fully mirrored ODP range
 *                      against the same range with no MR
 *   meta SIZE SPAN PCT [THP]
 *                      mirror bytes per mirrored page: an explicit MR of SIZE
 *                      fully faulted; an implicit MR with PCT % of the pages
 *                      of a SPAN mapping (MAP_NORESERVE) read at random (2 MiB
 *                      read faults), then written at random (4 KiB write
 *                      faults), then one random page in each 2 MiB of SPAN
 *                      written; an explicit MR of THP (default SIZE) over
 *                      THPs
 *   fork               fork(), then COW of every 4 KiB page of a 2 MiB THP
 *                      that two ODP MRs mirror writable, against no MR
 *   copy               rxe's copy path inside the kernel (debugfs
 *                      rxe/copy_bench, CONFIG_RDMA_RXE_COPY_BENCH): READ,
 *                      WRITE of 4 KiB and 64 KiB and an 8-byte atomic
 *                      through a warm ODP MR against a pinned MR of the
 *                      same memory
 *
 * Every test runs ROUNDS rounds; inside a round the variants alternate
 * (A B, A B, ...), never A A A B B B.  Each round prints one JSON object on
 * one line; times are in nanoseconds (CLOCK_MONOTONIC).  Mirror statistics
 * come from the program named by $ODP_BENCH_MRSTAT (tests/guest/bench/mrstat.py),
 * which reads the MR's restrack driver attributes; its JSON answer is
 * embedded as is.
 */
#define _GNU_SOURCE
#include "rdma_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096UL
#define BLOCK		(2UL << 20)	/* one touch per block faults it all (rxe) */
#define ACCESS		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ)
#define BATCH		32		/* RDMA operations in flight */

/*
 * From rdma-core's <infiniband/driver.h> (not shipped by Debian's
 * libibverbs-dev); exported by libibverbs.  Returns 0 or a positive errno.
 */
int ibv_cmd_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
		      uint32_t flags, struct ibv_sge *sg_list,
		      uint32_t num_sge);

static int rounds = 3;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t parse_size(const char *s)
{
	char *end;
	size_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; break;
	}
	return v;
}

static void *map_anon(size_t size, int flags)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* 4 KiB pages throughout, whatever the THP mode */
	madvise(p, size, MADV_NOHUGEPAGE);
	return p;
}

/* Map SIZE bytes aligned to BLOCK, populated. */
static void *map_blocks(size_t size)
{
	char *p = map_anon(size + BLOCK, 0), *q;

	if (!p)
		return NULL;
	q = (char *)(((unsigned long)p + BLOCK - 1) & ~(BLOCK - 1));
	if (q > p)
		munmap(p, q - p);
	munmap(q + size, p + BLOCK - q);
	if (madvise(q, size, MADV_POPULATE_WRITE)) {
		munmap(q, size);
		return NULL;
	}
	return q;
}

static struct ibv_mr *reg(struct rdma_ctx *r, void *addr, size_t len, int odp)
{
	return ibv_reg_mr(r->pd, addr, len, ACCESS | (odp ? IBV_ACCESS_ON_DEMAND : 0));
}

static int rw_sync(struct rdma_ctx *r, struct rdma_pair *p, enum ibv_wr_opcode op,
		   void *laddr, uint32_t lkey, uint64_t raddr, uint32_t rkey,
		   size_t len)
{
	if (rdma_post_rw(p, op, laddr, lkey, raddr, rkey, len))
		return -1;
	return rdma_complete(r, 1);
}

/*
 * Mirror every block of [addr, addr + len) of @mr whole, by an RDMA READ of
 * 8 bytes per block into @src: a read fault maps the whole 2 MiB block
 * around the access (a write fault maps only the pages written).
 */
static int fault_blocks(struct rdma_ctx *r, struct rdma_pair *p, struct ibv_mr *mr,
			char *addr, size_t len, uint64_t *src, uint32_t src_lkey)
{
	size_t off;
	int n = 0, st;

	for (off = 0; off < len; off += BLOCK) {
		if (rdma_post_rw(p, IBV_WR_RDMA_READ, src, src_lkey,
				 (uintptr_t)addr + off, mr->rkey, 8))
			return -1;
		if (++n == BATCH) {
			st = rdma_complete(r, n);
			if (st)
				return st;
			n = 0;
		}
	}
	return n ? rdma_complete(r, n) : 0;
}

/* Mirror statistics of the MR with @rkey, as a JSON value (or null). */
static void mrstat(uint32_t rkey, char *out, size_t outlen)
{
	const char *prog = getenv("ODP_BENCH_MRSTAT");
	char cmd[512];
	FILE *f;
	size_t n;

	snprintf(out, outlen, "null");
	if (!prog)
		return;
	snprintf(cmd, sizeof(cmd), "%s 0x%x", prog, rkey);
	f = popen(cmd, "r");
	if (!f)
		return;
	n = fread(out, 1, outlen - 1, f);
	out[n] = 0;
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = 0;
	if (pclose(f) || !n)
		snprintf(out, outlen, "null");
}

static void report_error(const char *test, const char *what)
{
	printf("{\"test\":\"%s\",\"error\":\"%s: %s\"}\n", test, what,
	       errno ? strerror(errno) : "failed");
	fflush(stdout);
}

/* ---- registration time ---- */

/*
 * Run each registration path once before timing it: under emulation the
 * first run of kernel code pays for translating it.
 */
static void warm_up_reg(struct rdma_ctx *r, int implicit)
{
	void *buf = map_blocks(BLOCK);
	struct ibv_mr *mr;

	if (!buf)
		return;
	mr = implicit ? ibv_reg_mr(r->pd, NULL, SIZE_MAX, ACCESS | IBV_ACCESS_ON_DEMAND) :
			reg(r, buf, BLOCK, 1);
	if (mr)
		ibv_dereg_mr(mr);
	mr = reg(r, buf, BLOCK, 0);
	if (mr)
		ibv_dereg_mr(mr);
	munmap(buf, BLOCK);
}

/*
 * The reference for every ODP registration: a pinned registration of one
 * populated 4 KiB page (@page), timed right before it.  Returns its time in
 * ns, or -1.
 */
static long long pinned_page_reg_ns(struct rdma_ctx *r, void *page)
{
	struct ibv_mr *mr;
	long long t0, t1;

	t0 = now_ns();
	mr = reg(r, page, PAGE, 0);
	t1 = now_ns();
	if (!mr)
		return -1;
	ibv_dereg_mr(mr);
	return t1 - t0;
}

static int bench_reg(struct rdma_ctx *r, int argc, char **argv)
{
	void *page = map_blocks(PAGE);
	int i, k, bad = 0;

	if (!page) {
		report_error("reg", "mmap");
		return 1;
	}
	warm_up_reg(r, 0);

	for (i = 0; i < argc; i++) {
		size_t size = parse_size(argv[i]);
		void *buf = map_blocks(size);

		if (!buf) {
			report_error("reg", "mmap");
			bad = 1;
			continue;
		}
		for (k = 0; k < rounds; k++) {
			long long t0, t1, t2, t3, t4, t5, page_ns;
			struct ibv_mr *mr;

			page_ns = pinned_page_reg_ns(r, page);
			if (page_ns < 0) {
				report_error("reg", "pinned 4 KiB ibv_reg_mr");
				bad = 1;
				break;
			}
			t0 = now_ns();
			mr = reg(r, buf, size, 1);
			t1 = now_ns();
			if (!mr) {
				report_error("reg", "ODP ibv_reg_mr");
				bad = 1;
				break;
			}
			ibv_dereg_mr(mr);
			t2 = now_ns();
			mr = reg(r, buf, size, 0);
			t3 = now_ns();
			if (!mr) {
				report_error("reg", "pinned ibv_reg_mr");
				bad = 1;
				break;
			}
			t4 = now_ns();
			ibv_dereg_mr(mr);
			t5 = now_ns();
			printf("{\"test\":\"reg\",\"size\":%zu,\"round\":%d,"
			       "\"odp_reg_ns\":%lld,\"odp_dereg_ns\":%lld,"
			       "\"pinned_reg_ns\":%lld,\"pinned_dereg_ns\":%lld,"
			       "\"pinned_4k_reg_ns\":%lld}\n",
			       size, k, t1 - t0, t2 - t1, t3 - t2, t5 - t4, page_ns);
			fflush(stdout);
		}
		munmap(buf, size);
	}
	munmap(page, PAGE);
	return bad;
}

static int bench_implicit(struct rdma_ctx *r)
{
	void *page = map_blocks(PAGE);
	int k;

	if (!page) {
		report_error("implicit", "mmap");
		return 1;
	}
	warm_up_reg(r, 1);

	for (k = 0; k < rounds; k++) {
		long long t0, t1, t2, page_ns;
		struct ibv_mr *mr;

		page_ns = pinned_page_reg_ns(r, page);
		if (page_ns < 0) {
			report_error("implicit", "pinned 4 KiB ibv_reg_mr");
			return 1;
		}
		t0 = now_ns();
		mr = ibv_reg_mr(r->pd, NULL, SIZE_MAX, ACCESS | IBV_ACCESS_ON_DEMAND);
		t1 = now_ns();
		if (!mr) {
			report_error("implicit", "implicit ibv_reg_mr");
			return 1;
		}
		ibv_dereg_mr(mr);
		t2 = now_ns();
		printf("{\"test\":\"implicit\",\"round\":%d,\"odp_reg_ns\":%lld,"
		       "\"odp_dereg_ns\":%lld,\"pinned_4k_reg_ns\":%lld}\n",
		       k, t1 - t0, t2 - t1, page_ns);
		fflush(stdout);
	}
	munmap(page, PAGE);
	return 0;
}

/* ---- cold first touch ---- */

/* Register fresh memory (@odp or pinned) and RDMA WRITE @size into it. */
static int cold_one(struct rdma_ctx *r, struct rdma_pair *p, struct ibv_mr *src,
		    size_t size, int odp, long long *reg_ns, long long *total_ns,
		    long long *warm_ns)
{
	unsigned char *dst = map_anon(size, 0);
	struct ibv_mr *mr;
	long long t0, t1, t2;
	int st;

	if (!dst)
		return -1;
	t0 = now_ns();
	mr = reg(r, dst, size, odp);
	t1 = now_ns();
	if (!mr) {
		munmap(dst, size);
		return -1;
	}
	st = rw_sync(r, p, IBV_WR_RDMA_WRITE, src->addr, src->lkey,
		     (uintptr_t)dst, mr->rkey, size);
	t2 = now_ns();
	*reg_ns = t1 - t0;
	*total_ns = t2 - t0;
	if (!st && warm_ns) {
		t0 = now_ns();
		st = rw_sync(r, p, IBV_WR_RDMA_WRITE, src->addr, src->lkey,
			     (uintptr_t)dst, mr->rkey, size);
		*warm_ns = now_ns() - t0;
	}
	if (!st && (dst[0] != 0x5a || dst[size / 2] != 0x5a || dst[size - 1] != 0x5a))
		st = -2;
	ibv_dereg_mr(mr);
	munmap(dst, size);
	return st;
}

static int bench_cold(struct rdma_ctx *r, int argc, char **argv)
{
	size_t size = argc > 0 ? parse_size(argv[0]) : 256UL << 20;
	struct rdma_pair p;
	struct ibv_mr *src;
	void *sbuf = map_blocks(size);
	int k, st;

	if (!sbuf || rdma_pair_create(r, &p)) {
		report_error("cold", "setup");
		return 1;
	}
	memset(sbuf, 0x5a, size);
	src = reg(r, sbuf, size, 0);
	if (!src) {
		report_error("cold", "source ibv_reg_mr");
		return 1;
	}
	for (k = 0; k < rounds; k++) {
		long long oreg, ocold, owarm, preg, ptotal;

		st = cold_one(r, &p, src, size, 1, &oreg, &ocold, &owarm);
		if (st) {
			errno = 0;
			report_error("cold", st == -2 ? "ODP data check" : "ODP write");
			return 1;
		}
		st = cold_one(r, &p, src, size, 0, &preg, &ptotal, NULL);
		if (st) {
			errno = 0;
			report_error("cold", st == -2 ? "pinned data check" : "pinned write");
			return 1;
		}
		printf("{\"test\":\"cold\",\"size\":%zu,\"round\":%d,"
		       "\"odp_cold_ns\":%lld,\"odp_reg_ns\":%lld,\"odp_warm_ns\":%lld,"
		       "\"pinned_ns\":%lld,\"pinned_reg_ns\":%lld}\n",
		       size, k, ocold, oreg, owarm, ptotal, preg);
		fflush(stdout);
	}
	ibv_dereg_mr(src);
	rdma_pair_destroy(&p);
	munmap(sbuf, size);
	return 0;
}

/* ---- one cold fault ---- */

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* The @q quantile (0..1) of @n values, sorted in place (nearest rank). */
static long long quantile(long long *v, int n, double q)
{
	int i;

	qsort(v, n, sizeof(*v), cmp_ll);
	i = (int)(q * n + 0.999999) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static int bench_fault(struct rdma_ctx *r, int argc, char **argv)
{
	int blocks = argc > 0 ? atoi(argv[0]) : 128;
	size_t size = blocks * BLOCK, npages = blocks * 4;
	long long *cold = calloc(blocks, sizeof(*cold));
	long long *warm = calloc(blocks, sizeof(*warm));
	long long *minor = calloc(npages, sizeof(*minor));
	long long *clk = calloc(npages, sizeof(*clk));
	struct rdma_pair p;
	struct ibv_mr *lmr;
	void *local = map_blocks(PAGE);
	int i, k, st;

	if (!cold || !warm || !minor || !clk || !local || rdma_pair_create(r, &p)) {
		report_error("fault", "setup");
		return 1;
	}
	lmr = reg(r, local, PAGE, 0);
	if (!lmr) {
		report_error("fault", "local ibv_reg_mr");
		return 1;
	}
	for (k = 0; k < rounds; k++) {
		char *buf = map_blocks(size), *page;
		struct ibv_mr *mr;
		long long t0, t1, t2;

		if (!buf) {
			report_error("fault", "mmap");
			return 1;
		}
		mr = reg(r, buf, size, 1);
		if (!mr) {
			report_error("fault", "ODP ibv_reg_mr");
			return 1;
		}
		/* One page in every block: a block is mirrored all at once. */
		for (i = 0; i < blocks; i++) {
			page = buf + i * BLOCK + (rand() % (BLOCK / PAGE)) * PAGE;
			t0 = now_ns();
			st = rw_sync(r, &p, IBV_WR_RDMA_READ, local, lmr->lkey,
				     (uintptr_t)page, mr->rkey, PAGE);
			t1 = now_ns();
			st |= rw_sync(r, &p, IBV_WR_RDMA_READ, local, lmr->lkey,
				      (uintptr_t)page, mr->rkey, PAGE);
			t2 = now_ns();
			if (st) {
				errno = 0;
				report_error("fault", "RDMA READ");
				return 1;
			}
			cold[i] = t1 - t0;
			warm[i] = t2 - t1;
		}
		ibv_dereg_mr(mr);
		munmap(buf, size);

		/* CPU minor faults: first write to fresh anonymous pages. */
		buf = map_anon(npages * PAGE, 0);
		if (!buf) {
			report_error("fault", "mmap");
			return 1;
		}
		for (i = 0; i < (int)npages; i++) {
			t0 = now_ns();
			buf[i * PAGE] = 1;
			t1 = now_ns();
			minor[i] = t1 - t0;
			t2 = now_ns();
			clk[i] = t2 - t1;
		}
		munmap(buf, npages * PAGE);

		printf("{\"test\":\"fault\",\"round\":%d,\"samples\":%d,"
		       "\"cold_median_ns\":%lld,\"cold_p99_ns\":%lld,"
		       "\"warm_median_ns\":%lld,\"warm_p99_ns\":%lld,",
		       k, blocks, quantile(cold, blocks, 0.5), quantile(cold, blocks, 0.99),
		       quantile(warm, blocks, 0.5), quantile(warm, blocks, 0.99));
		printf("\"minor_samples\":%zu,\"minor_median_ns\":%lld,\"minor_p99_ns\":%lld,"
		       "\"clock_median_ns\":%lld}\n", npages,
		       quantile(minor, npages, 0.5), quantile(minor, npages, 0.99),
		       quantile(clk, npages, 0.5));
		fflush(stdout);
	}
	ibv_dereg_mr(lmr);
	rdma_pair_destroy(&p);
	return 0;
}

/* ---- invalidation ---- */

static int inval_one(struct rdma_ctx *r, struct rdma_pair *p, struct ibv_mr *lmr,
		     size_t size, int with_mr, long long *dontneed_ns,
		     long long *munmap_ns, char *stat, size_t statlen)
{
	char *buf = map_blocks(size);
	struct ibv_mr *mr = NULL;
	long long t0;

	if (!buf)
		return -1;
	if (with_mr) {
		mr = reg(r, buf, size, 1);
		if (!mr || fault_blocks(r, p, mr, buf, size, lmr->addr, lmr->lkey))
			return -1;
		if (stat)
			mrstat(mr->rkey, stat, statlen);
	}
	t0 = now_ns();
	if (madvise(buf, size, MADV_DONTNEED))
		return -1;
	*dontneed_ns = now_ns() - t0;

	if (madvise(buf, size, MADV_POPULATE_WRITE))
		return -1;
	if (mr && fault_blocks(r, p, mr, buf, size, lmr->addr, lmr->lkey))
		return -1;
	t0 = now_ns();
	if (munmap(buf, size))
		return -1;
	*munmap_ns = now_ns() - t0;
	if (mr)
		ibv_dereg_mr(mr);
	return 0;
}

static int bench_inval(struct rdma_ctx *r, int argc, char **argv)
{
	size_t size = argc > 0 ? parse_size(argv[0]) : 1UL << 30;
	struct rdma_pair p;
	struct ibv_mr *lmr;
	void *local = map_blocks(PAGE);
	char stat[1024];
	int k;

	if (!local || rdma_pair_create(r, &p) || !(lmr = reg(r, local, PAGE, 0))) {
		report_error("inval", "setup");
		return 1;
	}
	for (k = 0; k < rounds; k++) {
		long long mr_dn, mr_un, no_dn, no_un;

		/*
		 * A B, then B A: whichever variant runs second in a round
		 * finds the memory just freed by the first, so the order
		 * alternates between rounds.
		 */
		if ((k & 1) && inval_one(r, &p, lmr, size, 0, &no_dn, &no_un, NULL, 0)) {
			report_error("inval", "without an MR");
			return 1;
		}
		if (inval_one(r, &p, lmr, size, 1, &mr_dn, &mr_un,
			      k ? NULL : stat, sizeof(stat))) {
			report_error("inval", "with an ODP MR");
			return 1;
		}
		if (!(k & 1) && inval_one(r, &p, lmr, size, 0, &no_dn, &no_un, NULL, 0)) {
			report_error("inval", "without an MR");
			return 1;
		}
		printf("{\"test\":\"inval\",\"size\":%zu,\"round\":%d,"
		       "\"odp_dontneed_ns\":%lld,\"odp_munmap_ns\":%lld,"
		       "\"nomr_dontneed_ns\":%lld,\"nomr_munmap_ns\":%lld,"
		       "\"first\":\"%s\",\"mirror\":%s}\n", size, k, mr_dn, mr_un,
		       no_dn, no_un, k & 1 ? "no MR" : "ODP MR",
		       k ? "null" : stat);
		fflush(stdout);
	}
	ibv_dereg_mr(lmr);
	rdma_pair_destroy(&p);
	return 0;
}

/* ---- fork: COW of a mirrored THP ---- */

/*
 * Fork, then write one byte of each 4 KiB page of a 2 MiB THP in the parent
 * (every write a COW, every COW an invalidation of whatever mirrors it);
 * the child waits until the parent is done.  Returns the time of the
 * writes, or -1.
 */
static long long fork_cow_ns(unsigned char *thp)
{
	int go[2], status;
	long long t0, t;
	pid_t pid;
	size_t i;
	char c;

	if (pipe(go))
		return -1;
	pid = fork();
	if (pid == 0) {
		_exit(read(go[0], &c, 1) == 1 ? 0 : 1);
	}
	t0 = now_ns();
	for (i = 0; i < BLOCK; i += PAGE)
		thp[i]++;
	t = now_ns() - t0;
	if (write(go[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(go[0]);
	close(go[1]);
	return t;
}

/* A 2 MiB THP, written, and with @nmr ODP MRs prefetched writable over it */
static unsigned char *thp_mirrored(struct rdma_ctx *r, int nmr,
				   struct ibv_mr **mrs)
{
	unsigned char *thp = map_blocks(BLOCK);
	int i;

	if (!thp)
		return NULL;
	madvise(thp, BLOCK, MADV_HUGEPAGE);
	memset(thp, 1, BLOCK);
	for (i = 0; i < nmr; i++) {
		struct ibv_sge sge = { .addr = (uintptr_t)thp, .length = BLOCK };

		mrs[i] = reg(r, thp, BLOCK, 1);
		if (!mrs[i])
			return NULL;
		sge.lkey = mrs[i]->lkey;
		ibv_cmd_advise_mr(r->pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
				  IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1);
	}
	return thp;
}

static int bench_fork(struct rdma_ctx *r)
{
	int k, i;

	for (k = 0; k < rounds; k++) {
		long long t[2];
		int nmr[2] = { 2, 0 };

		/* interleaved: with two mirroring MRs, then with none */
		for (i = 0; i < 2; i++) {
			struct ibv_mr *mrs[2] = {};
			unsigned char *thp = thp_mirrored(r, nmr[i], mrs);

			t[i] = thp ? fork_cow_ns(thp) : -1;
			while (nmr[i]--)
				if (mrs[nmr[i]])
					ibv_dereg_mr(mrs[nmr[i]]);
			if (thp)
				munmap(thp, BLOCK);
			if (t[i] < 0) {
				report_error("fork", "fork and COW");
				return 1;
			}
		}
		printf("{\"test\":\"fork\",\"round\":%d,\"odp2_cow_ns\":%lld,"
		       "\"nomr_cow_ns\":%lld}\n", k, t[0], t[1]);
		fflush(stdout);
	}
	return 0;
}

/* ---- metadata ---- */

/* Kinds of implicit-MR metadata runs */
enum meta_touch {
	META_READ,		/* PCT % of the pages, 8-byte RDMA READs */
	META_WRITE,		/* PCT % of the pages, 8-byte RDMA WRITEs */
	META_WRITE_BLOCK,	/* one page in each 2 MiB, 8-byte RDMA WRITEs */
};

/* The next page of SPAN to touch: the @n-th of the run */
static size_t meta_page(enum meta_touch touch, size_t n, size_t npages)
{
	size_t per_block = BLOCK / PAGE;

	if (touch == META_WRITE_BLOCK)
		return n * per_block + (size_t)rand() % per_block;
	return ((size_t)rand() << 31 ^ rand()) % npages;
}

/*
 * Implicit MR, PCT % of the pages of SPAN touched at random by an 8-byte
 * RDMA READ (which mirrors the whole 2 MiB block around it, read-only:
 * never-written anonymous memory maps the zero page, so SPAN needs no RAM)
 * or RDMA WRITE (whose fault maps only the page written: 4 KiB faults,
 * scattered pages; PCT % of SPAN of RAM), or one random page in each 2 MiB
 * of SPAN written (the sparsest pattern: every page alone in its 2 MiB).
 */
static int meta_implicit(struct rdma_ctx *r, struct rdma_pair *p,
			 struct ibv_mr *lmr, size_t span, double pct,
			 enum meta_touch touch)
{
	static const char *const kinds[] = {
		[META_READ] = "implicit",
		[META_WRITE] = "implicit_write",
		[META_WRITE_BLOCK] = "implicit_block",
	};
	int opcode = touch == META_READ ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE;
	const char *kind = kinds[touch];
	size_t npages = span / PAGE, ntouch = npages * pct / 100, i, n;
	unsigned char *seen = calloc(npages / 8 + 1, 1);
	void *local = (void *)(uintptr_t)lmr->addr;
	struct ibv_mr *mr;
	char stat[1024];
	int inflight = 0;
	long long t0;
	char *buf;

	buf = map_anon(span, MAP_NORESERVE);
	mr = ibv_reg_mr(r->pd, NULL, SIZE_MAX, ACCESS | IBV_ACCESS_ON_DEMAND);
	if (!seen || !buf || !mr) {
		report_error("meta", "implicit MR");
		return 1;
	}
	if (touch == META_WRITE_BLOCK)
		ntouch = span / BLOCK;
	t0 = now_ns();
	for (n = 0; n < ntouch;) {
		i = meta_page(touch, n, npages);
		if (seen[i / 8] & (1 << (i % 8)))
			continue;
		seen[i / 8] |= 1 << (i % 8);
		n++;
		if (rdma_post_rw(p, opcode, local, lmr->lkey,
				 (uintptr_t)buf + i * PAGE, mr->rkey, 8)) {
			report_error("meta", "post RDMA READ/WRITE");
			return 1;
		}
		if (++inflight == BATCH || n == ntouch) {
			if (rdma_complete(r, inflight)) {
				errno = 0;
				report_error("meta", "RDMA READ/WRITE through the implicit MR");
				return 1;
			}
			inflight = 0;
		}
	}
	mrstat(mr->rkey, stat, sizeof(stat));
	printf("{\"test\":\"meta\",\"kind\":\"%s\",\"size\":%zu,"
	       "\"pages\":%zu,\"touched_pages\":%zu,\"touch_ns\":%lld,\"mirror\":%s}\n",
	       kind, span, npages, ntouch, now_ns() - t0, stat);
	fflush(stdout);
	ibv_dereg_mr(mr);
	munmap(buf, span);
	free(seen);
	return 0;
}

/*
 * Explicit MR of SIZE over transparent huge pages, fully faulted: what the
 * mirror costs per 2 MiB mapping.  Skipped (said) when the kernel gives no
 * THP.
 */
static int meta_thp(struct rdma_ctx *r, struct rdma_pair *p,
		    struct ibv_mr *lmr, size_t size)
{
	char stat[1024], *buf = map_anon(size + BLOCK, 0), *q;
	long thp_kb = -1;
	struct ibv_mr *mr;

	if (!buf) {
		report_error("meta", "THP mapping");
		return 1;
	}
	q = (char *)(((unsigned long)buf + BLOCK - 1) & ~(BLOCK - 1));
	/* without THP (EINVAL) the record's thp_kb says so, the table too */
	madvise(q, size, MADV_HUGEPAGE);
	if (madvise(q, size, MADV_POPULATE_WRITE)) {
		report_error("meta", "populate the THP mapping");
		return 1;
	}
	thp_kb = smaps_kb(q, "AnonHugePages");
	if (!(mr = reg(r, q, size, 1)) ||
	    fault_blocks(r, p, mr, q, size, lmr->addr, lmr->lkey)) {
		report_error("meta", "THP MR");
		return 1;
	}
	mrstat(mr->rkey, stat, sizeof(stat));
	printf("{\"test\":\"meta\",\"kind\":\"thp\",\"size\":%zu,"
	       "\"pages\":%zu,\"touched_pages\":%zu,\"thp_kb\":%ld,\"mirror\":%s}\n",
	       size, size / PAGE, size / PAGE, thp_kb, stat);
	fflush(stdout);
	ibv_dereg_mr(mr);
	munmap(buf, size + BLOCK);
	return 0;
}

static int bench_meta(struct rdma_ctx *r, int argc, char **argv)
{
	size_t size = argc > 0 ? parse_size(argv[0]) : 64UL << 20;
	size_t span = argc > 1 ? parse_size(argv[1]) : 64UL << 30;
	double pct = argc > 2 ? atof(argv[2]) : 1.0;
	size_t thp = argc > 3 ? parse_size(argv[3]) : size;
	char stat[1024];
	struct rdma_pair p;
	struct ibv_mr *lmr, *mr;
	void *local = map_blocks(PAGE);
	char *buf;

	if (!local || rdma_pair_create(r, &p) || !(lmr = reg(r, local, PAGE, 0))) {
		report_error("meta", "setup");
		return 1;
	}

	/* Explicit MR, fully faulted. */
	buf = map_blocks(size);
	if (!buf || !(mr = reg(r, buf, size, 1)) ||
	    fault_blocks(r, &p, mr, buf, size, lmr->addr, lmr->lkey)) {
		report_error("meta", "explicit MR");
		return 1;
	}
	mrstat(mr->rkey, stat, sizeof(stat));
	printf("{\"test\":\"meta\",\"kind\":\"explicit\",\"size\":%zu,"
	       "\"pages\":%zu,\"touched_pages\":%zu,\"mirror\":%s}\n",
	       size, size / PAGE, size / PAGE, stat);
	fflush(stdout);
	ibv_dereg_mr(mr);
	munmap(buf, size);
	/* Without the attributes the implicit run would measure nothing. */
	if (!strstr(stat, "\"odp_mirror_bytes\":")) {
		printf("{\"test\":\"meta\",\"kind\":\"implicit\",\"size\":%zu,"
		       "\"pages\":%zu,\"touched_pages\":0,\"skipped\":"
		       "\"no mirror statistics\",\"mirror\":%s}\n",
		       span, span / PAGE, stat);
		return 0;
	}

	if (meta_implicit(r, &p, lmr, span, pct, META_READ) ||
	    meta_implicit(r, &p, lmr, span, pct, META_WRITE) ||
	    meta_implicit(r, &p, lmr, span, pct, META_WRITE_BLOCK) ||
	    meta_thp(r, &p, lmr, thp))
		return 1;
	ibv_dereg_mr(lmr);
	rdma_pair_destroy(&p);
	return 0;
}

/* ---- the copy path in the kernel ---- */

#define COPY_BENCH	"/sys/kernel/debug/rxe/copy_bench"
#define COPY_SPAN	(64UL << 10)
#define COPY_MAX_ROUNDS	64

/*
 * One command to the kernel's copy benchmark: @rounds rounds of @iters
 * operations on each MR, their times in @ns_pinned / @ns_odp.
 */
static int copy_run(const char *dev, struct ibv_mr *pinned, struct ibv_mr *odp,
		    void *addr, unsigned int len, const char *op,
		    unsigned int iters, long long *ns_pinned, long long *ns_odp)
{
	char cmd[160], out[COPY_MAX_ROUNDS * 48];
	int fd, n, got = 0;
	ssize_t len_out;
	char *line;

	snprintf(cmd, sizeof(cmd), "%s %x %x %lx %u %s %u %d", dev, pinned->lkey,
		 odp->lkey, (unsigned long)addr, len, op, iters, rounds);
	fd = open(COPY_BENCH, O_RDWR);
	if (fd < 0)
		return -1;
	n = write(fd, cmd, strlen(cmd));
	if (n != (int)strlen(cmd)) {
		close(fd);
		return -1;
	}
	len_out = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	if (len_out <= 0)
		return -1;
	out[len_out] = 0;
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		int round;
		long long a, b;

		if (sscanf(line, "%d %lld %lld", &round, &a, &b) != 3 ||
		    round != got || got >= rounds)
			return -1;
		ns_pinned[got] = a;
		ns_odp[got] = b;
		got++;
	}
	errno = got == rounds ? 0 : EPROTO;
	return got == rounds ? 0 : -1;
}

static void print_ns(const char *key, long long *v, int n)
{
	int i;

	printf("\"%s\":[", key);
	for (i = 0; i < n; i++)
		printf("%s%lld", i ? "," : "", v[i]);
	printf("]");
}

static int bench_copy(struct rdma_ctx *r, const char *dev)
{
	static const struct {
		const char *op;
		unsigned int len;
		unsigned int iters;
	} rows[] = {
		/* 8 bytes: the per-call cost of each path, the copy negligible */
		{ "read", 8, 200000 },
		{ "read", 4096, 50000 }, { "read", 65536, 5000 },
		{ "write", 4096, 50000 }, { "write", 65536, 5000 },
		{ "atomic", 8, 200000 },
	};
	long long ns_pinned[COPY_MAX_ROUNDS], ns_odp[COPY_MAX_ROUNDS];
	struct ibv_mr *pinned, *odp;
	unsigned int i;
	void *buf;

	if (rounds < 1 || rounds > COPY_MAX_ROUNDS) {
		errno = EINVAL;
		report_error("copy", "rounds");
		return 1;
	}
	if (access(COPY_BENCH, W_OK)) {
		report_error("copy", COPY_BENCH);
		return 1;
	}
	buf = map_blocks(BLOCK);
	if (!buf) {
		report_error("copy", "mmap");
		return 1;
	}
	memset(buf, 0x5a, BLOCK);
	/* the kernel wants local write for "write", remote atomic for "atomic" */
	pinned = ibv_reg_mr(r->pd, buf, COPY_SPAN, ACCESS | IBV_ACCESS_REMOTE_ATOMIC);
	odp = ibv_reg_mr(r->pd, buf, COPY_SPAN,
			 ACCESS | IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_ON_DEMAND);
	if (!pinned || !odp) {
		report_error("copy", "ibv_reg_mr");
		return 1;
	}
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		/* the kernel warms both MRs (faults the ODP one) before timing */
		if (copy_run(dev, pinned, odp, buf, rows[i].len, rows[i].op,
			     rows[i].iters, ns_pinned, ns_odp)) {
			report_error("copy", rows[i].op);
			return 1;
		}
		printf("{\"test\":\"copy\",\"op\":\"%s\",\"len\":%u,\"iters\":%u,",
		       rows[i].op, rows[i].len, rows[i].iters);
		print_ns("pinned_ns", ns_pinned, rounds);
		printf(",");
		print_ns("odp_ns", ns_odp, rounds);
		printf(",\"order\":\"pinned first in even rounds, ODP first in odd ones\"}\n");
		fflush(stdout);
	}
	ibv_dereg_mr(odp);
	ibv_dereg_mr(pinned);
	munmap(buf, BLOCK);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dev = "rxe0", *test;
	struct rdma_ctx r;
	int gid = 1, opt, ret;

	while ((opt = getopt(argc, argv, "+d:g:r:")) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'g': gid = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (optind >= argc)
		goto usage;
	test = argv[optind++];
	srand(4321);
	if (rdma_open(&r, dev, gid)) {
		fprintf(stderr, "odp_bench: cannot open %s\n", dev);
		return 1;
	}
	argc -= optind;
	argv += optind;
	if (!strcmp(test, "reg"))
		ret = bench_reg(&r, argc, argv);
	else if (!strcmp(test, "implicit"))
		ret = bench_implicit(&r);
	else if (!strcmp(test, "cold"))
		ret = bench_cold(&r, argc, argv);
	else if (!strcmp(test, "fault"))
		ret = bench_fault(&r, argc, argv);
	else if (!strcmp(test, "inval"))
		ret = bench_inval(&r, argc, argv);
	else if (!strcmp(test, "meta"))
		ret = bench_meta(&r, argc, argv);
	else if (!strcmp(test, "fork"))
		ret = bench_fork(&r);
	else if (!strcmp(test, "copy"))
		ret = bench_copy(&r, dev);
	else
		goto usage;
	rdma_close(&r);
	return ret;
usage:
	fprintf(stderr, "usage: odp_bench [-d DEV] [-g GID] [-r ROUNDS] "
		"reg SIZE... | implicit | cold SIZE | fault BLOCKS | inval SIZE | "
		"meta SIZE SPAN PCT [THP] | fork | copy\n");
	return 2;
}
