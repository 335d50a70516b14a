// SPDX-License-Identifier: GPL-2.0
/*
 * ODP prefetch (ibv_advise_mr) and ODP counters on rxe, asserted exactly.
 *
 * Debian's rdma-core 44 rxe provider does not route ibv_advise_mr() to the
 * kernel, so the advise_mr command is issued with ibv_cmd_advise_mr(), the
 * libibverbs helper a provider calls (see rdma-core-patches/).
 *
 * Per-MR counters are read from "rdma -dd res show mr" (driver attributes of
 * the MR), device-wide ones from "rdma statistic show link DEV/1".  The
 * expected values follow from the design (rxe_odp.c):
 *   - every ib_umem_odp_map_and_lock() that succeeds is one fault (odp_faults),
 *     one that fails one fault error; a prefetch makes one such call per
 *     2 MiB-aligned chunk of its range, a no-fault prefetch included;
 *   - odp_pages_faulted counts mirror entries made valid; odp_prefetches the
 *     ODP pages present in the prefetched range after each call;
 *   - a CPU page-table change over valid entries is one invalidation of that
 *     many pages; munmap() of one VMA is one change;
 *   - the device-wide counters are the sums over the MRs, destroyed included.
 * Usage: odp_prefetch [DEV [SCRIPT]]: SCRIPT is one of errors, explicit,
 * implicit, blocks, async, async-dereg, async-exit (default: all).  Prints TAP.
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "tap.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * From rdma-core's <infiniband/driver.h> (not shipped by Debian's
 * libibverbs-dev); exported by libibverbs.  Returns 0 or a positive errno.
 */
int ibv_cmd_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
		      uint32_t flags, struct ibv_sge *sg_list,
		      uint32_t num_sge);

/* ODP pages are CPU pages; a fault or prefetch chunk is 2 MiB */
static unsigned long page_size;
#define PAGE	page_size
#define CHUNK	(2UL << 20)
#define N	16			/* pages of the explicit MR */
#define FLUSH	IBV_ADVISE_MR_FLAG_FLUSH
#define PF	IBV_ADVISE_MR_ADVICE_PREFETCH
#define PF_W	IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE
#define PF_NF	IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT

static const char *dev = "rxe0";
/* ------------------------------------------------------------------ */
/* Counters */

enum { FAULTS, PAGES_FAULTED, INVALIDATIONS, PAGES_INVALIDATED, PREFETCHES,
       FAULT_ERRORS, MIRROR_BYTES, MIRROR_PAGES, NCNT };
static const char *const cnt_name[NCNT] = {
	"odp_faults", "odp_pages_faulted", "odp_invalidations",
	"odp_pages_invalidated", "odp_prefetches", "odp_fault_errors",
	"odp_mirror_bytes", "odp_mirror_pages",
};
#define NDEV	6	/* the device-wide ones: FAULTS .. FAULT_ERRORS */

struct cnt {
	long long v[NCNT];
	char odp[16];	/* "explicit" / "implicit" */
};

static char *run(const char *cmd)
{
	size_t cap = 1 << 16, len = 0, n;
	char *buf = malloc(cap);
	FILE *f = popen(cmd, "r");

	if (!f || !buf) {
		free(buf);
		return NULL;
	}
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = 0;
	pclose(f);
	return buf;
}

/* The value after token @name (or "drv_" @name) in @s, -1 if absent. */
static long long token_value(const char *s, const char *name, char *str,
			     size_t strsz)
{
	char drv[64];
	const char *p = s;
	size_t l;

	snprintf(drv, sizeof(drv), "drv_%s", name);
	while (*p) {
		while (*p == ' ' || *p == '\n' || *p == '\t')
			p++;
		l = strcspn(p, " \n\t");
		if ((l == strlen(name) && !strncmp(p, name, l)) ||
		    (l == strlen(drv) && !strncmp(p, drv, l))) {
			p += l;
			while (*p == ' ')
				p++;
			if (str) {
				l = strcspn(p, " \n\t");
				snprintf(str, strsz, "%.*s", (int)l, p);
			}
			return strtoll(p, NULL, 0);
		}
		p += l;
	}
	return -1;
}

/* Per-MR counters of the MR with this lkey; 0 or -1 if not found. */
static int mr_cnt(uint32_t lkey, struct cnt *c)
{
	char *out = run("rdma -dd res show mr dev rxe0 2>&1"), *rec, *next;
	char key[32];
	int i, found = -1;

	if (!out)
		return -1;
	snprintf(key, sizeof(key), "%#x", lkey);
	/* One record per MR, each starting with "dev " at a line start. */
	for (rec = out; rec && *rec; rec = next) {
		char val[32] = "";

		next = strstr(rec + 1, "\ndev ");
		if (next)
			*next++ = 0;
		token_value(rec, "lkey", val, sizeof(val));
		if (strtoul(val, NULL, 0) != lkey || !val[0])
			continue;
		for (i = 0; i < NCNT; i++)
			c->v[i] = token_value(rec, cnt_name[i], NULL, 0);
		c->odp[0] = 0;
		token_value(rec, "odp", c->odp, sizeof(c->odp));
		found = 0;
		break;
	}
	if (found)
		fprintf(stderr, "# no MR with lkey %s in:\n%s", key, out);
	free(out);
	return found;
}

static int dev_cnt(struct cnt *c)
{
	char cmd[128], *out;
	int i, ret = 0;

	/* The core caches hardware counters for 10 ms. */
	usleep(20000);
	snprintf(cmd, sizeof(cmd), "rdma statistic show link %s/1 2>&1", dev);
	out = run(cmd);
	if (!out)
		return -1;
	for (i = 0; i < NDEV; i++) {
		c->v[i] = token_value(out, cnt_name[i], NULL, 0);
		if (c->v[i] < 0)
			ret = -1;
	}
	if (ret)
		fprintf(stderr, "# ODP counters missing in:\n%s", out);
	free(out);
	return ret;
}

static void fmt_cnt(char *buf, size_t sz, const long long *v, int n)
{
	int i, o = 0;

	for (i = 0; i < n; i++)
		o += snprintf(buf + o, sz - o, "%s%s=%lld", i ? " " : "",
			      cnt_name[i] + 4, v[i]);
}

/*
 * Expect the per-MR counters of @mr: faults, pages_faulted, invalidations,
 * pages_invalidated, prefetches, fault_errors, mirror_pages.
 */
static void expect_mr(struct ibv_mr *mr, const char *what, long long f,
		      long long pf, long long inv, long long pinv,
		      long long pre, long long ferr, long long mpages)
{
	long long want[NCNT] = { f, pf, inv, pinv, pre, ferr, 0, mpages };
	char gs[512], ws[512];
	struct cnt c;
	int ok;

	if (mr_cnt(mr->lkey, &c)) {
		tap(0, "%s: MR counters not found", what);
		return;
	}
	want[MIRROR_BYTES] = c.v[MIRROR_BYTES];	/* checked separately */
	ok = !memcmp(want, c.v, sizeof(want));
	fmt_cnt(gs, sizeof(gs), c.v, NCNT);
	if (ok) {
		tap(1, "%s: %s", what, gs);
	} else {
		fmt_cnt(ws, sizeof(ws), want, NCNT);
		tap(0, "%s:\n#   got  %s\n#   want %s", what, gs, ws);
	}
}

/* Expect the device-wide counters to have moved by @d since @base. */
static void expect_dev(const struct cnt *base, const long long *d,
		       const char *what)
{
	long long got[NDEV];
	char gs[512], ws[512];
	struct cnt now;
	int i, ok = 1;

	if (dev_cnt(&now)) {
		tap(0, "%s: device counters not readable", what);
		return;
	}
	for (i = 0; i < NDEV; i++) {
		got[i] = now.v[i] - base->v[i];
		ok &= got[i] == d[i];
	}
	fmt_cnt(gs, sizeof(gs), got, NDEV);
	fmt_cnt(ws, sizeof(ws), d, NDEV);
	if (ok)
		tap(1, "%s: device-wide deltas %s", what, gs);
	else
		tap(0, "%s:\n#   got  %s\n#   want %s", what, gs, ws);
}

/* ------------------------------------------------------------------ */
/* Helpers */

static int advise(struct ibv_mr *mr, int advice, uint32_t flags, void *addr,
		  size_t len)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)addr, .length = len, .lkey = mr->lkey,
	};

	return ibv_cmd_advise_mr(mr->pd, advice, flags, &sge, 1);
}

static int advise_lkey(struct ibv_pd *pd, uint32_t lkey, int advice,
		       uint32_t flags, void *addr, size_t len)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)addr, .length = len, .lkey = lkey,
	};

	return ibv_cmd_advise_mr(pd, advice, flags, &sge, 1);
}

/* @len bytes of fresh anonymous memory at a 2 MiB-aligned address, alone
 * in its VMA.
 */
static unsigned char *map_aligned(size_t len)
{
	unsigned char *p = mmap(NULL, len + CHUNK, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (unsigned char *)(((uintptr_t)p + CHUNK - 1) & ~(CHUNK - 1));
	if (a > p)
		munmap(p, a - p);
	if (a + len < p + len + CHUNK)
		munmap(a + len, p + len + CHUNK - (a + len));
	/*
	 * No THP: the expected page counts are in base pages.  Not in a
	 * child: a fork would write-protect these pages in the parent, which
	 * is an invalidation.
	 */
	madvise(a, len, MADV_NOHUGEPAGE);
	madvise(a, len, MADV_DONTFORK);
	return a;
}

static const int mr_access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			     IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND;

/* RDMA WRITE @len bytes of pattern @c from a pinned buffer to @dst/@rkey. */
static int rdma_write_pattern(struct rdma_ctx *r, struct rdma_pair *p,
			      void *dst, uint32_t rkey, size_t len, int c)
{
	unsigned char *src = malloc(len);
	struct ibv_mr *smr;
	int st;

	memset(src, c, len);
	smr = ibv_reg_mr(r->pd, src, len, IBV_ACCESS_LOCAL_WRITE);
	if (!smr) {
		free(src);
		return -1;
	}
	st = rdma_post_rw(p, IBV_WR_RDMA_WRITE, src, smr->lkey,
			  (uintptr_t)dst, rkey, len);
	if (!st)
		st = rdma_complete(r, 1);
	ibv_dereg_mr(smr);
	free(src);
	return st;
}

static int all_bytes(const unsigned char *p, size_t len, int c)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != c)
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Scripts */

/*
 * Explicit MR over N fresh pages, one 2 MiB chunk.  Every step's effect on
 * the counters follows from the rules at the top of this file.
 */
static void explicit_script(struct rdma_ctx *r, struct rdma_pair *p)
{
	long long total[NDEV] = { 5, N, 1, N / 2, 2 * N, 1 };
	unsigned char *b = map_aligned(N * PAGE);
	struct cnt base, c = {};
	struct ibv_mr *mr;
	int st;

	if (!b || dev_cnt(&base)) {
		tap(0, "explicit: setup failed");
		return;
	}
	mr = ibv_reg_mr(r->pd, b, N * PAGE, mr_access);
	if (!mr) {
		tap(0, "explicit: ibv_reg_mr: %s", strerror(errno));
		return;
	}
	expect_mr(mr, "explicit: registered, nothing mapped", 0, 0, 0, 0, 0, 0, 0);
	st = mr_cnt(mr->lkey, &c);
	tap(!st && !strcmp(c.odp, "explicit"), "explicit: restrack says odp=%s",
	    c.odp);

	st = advise(mr, PF_NF, FLUSH, b, N * PAGE);
	tap(st == 0, "explicit: no-fault prefetch of untouched pages returns %d", st);
	expect_mr(mr, "explicit: no-fault prefetch of untouched pages maps 0 pages",
		  1, 0, 0, 0, 0, 0, 0);

	memset(b, 0x11, N / 2 * PAGE);	/* the CPU maps the first half */
	st = advise(mr, PF_NF, FLUSH, b, N * PAGE);
	tap(st == 0, "explicit: no-fault prefetch, first half touched, returns %d", st);
	expect_mr(mr, "explicit: no-fault prefetch maps the N/2 touched pages",
		  2, N / 2, 0, 0, N / 2, 0, N / 2);

	st = advise(mr, PF, FLUSH, b, N * PAGE);
	tap(st == 0, "explicit: sync prefetch returns %d", st);
	expect_mr(mr, "explicit: sync prefetch faults the other N/2",
		  3, N, 0, 0, N / 2 + N, 0, N);

	st = advise(mr, PF_W, FLUSH, b, N / 2 * PAGE);
	tap(st == 0, "explicit: sync write prefetch of the first half returns %d", st);
	expect_mr(mr, "explicit: write prefetch of present pages maps nothing new",
		  4, N, 0, 0, 2 * N, 0, N);

	st = rdma_write_pattern(r, p, b, mr->rkey, N / 2 * PAGE, 0x22);
	tap(st == 0 && all_bytes(b, N / 2 * PAGE, 0x22),
	    "explicit: RDMA WRITE into the prefetched half: status %d, data %s",
	    st, all_bytes(b, N / 2 * PAGE, 0x22) ? "ok" : "wrong");
	expect_mr(mr, "explicit: RDMA WRITE into prefetched pages takes no fault",
		  4, N, 0, 0, 2 * N, 0, N);

	munmap(b + N / 2 * PAGE, N / 2 * PAGE);
	expect_mr(mr, "explicit: munmap of the second half is 1 invalidation of N/2 pages",
		  4, N, 1, N / 2, 2 * N, 0, N / 2);

	st = advise(mr, PF, FLUSH, b + N / 2 * PAGE, N / 2 * PAGE);
	tap(st == EFAULT, "explicit: sync prefetch of unmapped pages fails with EFAULT (got %d)",
	    st);
	expect_mr(mr, "explicit: failed prefetch counts 1 fault error",
		  4, N, 1, N / 2, 2 * N, 1, N / 2);

	st = advise(mr, PF_NF, FLUSH, b + N / 2 * PAGE, N / 2 * PAGE);
	tap(st == 0, "explicit: no-fault prefetch of unmapped pages succeeds (got %d)", st);
	expect_mr(mr, "explicit: no-fault prefetch of unmapped pages maps 0 pages",
		  5, N, 1, N / 2, 2 * N, 1, N / 2);

	expect_dev(&base, total, "explicit: while registered");
	ibv_dereg_mr(mr);
	expect_dev(&base, total, "explicit: after dereg (destroyed MRs still count)");
	munmap(b, N / 2 * PAGE);
}

/*
 * Implicit MR: a 4 MiB region is two chunks; an RDMA WRITE into pages that
 * are not prefetched faults the whole 2 MiB block around them.
 */
static void implicit_script(struct rdma_ctx *r, struct rdma_pair *p)
{
	const size_t len = 2 * CHUNK, wlen = 64 << 10;
	const long long cp = CHUNK / PAGE;	/* ODP pages per chunk */
	const long long wp = wlen / PAGE;	/* pages of the RDMA WRITE */
	long long total[NDEV] = { 5, 3 * cp, 2, 3 * cp, 4 * cp, 0 };
	unsigned char *b = map_aligned(len);
	long long empty_bytes;
	struct cnt base, c = {};
	struct ibv_mr *mr;
	int st;

	if (!b || dev_cnt(&base)) {
		tap(0, "implicit: setup failed");
		return;
	}
	mr = ibv_reg_mr(r->pd, NULL, SIZE_MAX, mr_access);
	if (!mr) {
		tap(0, "implicit: ibv_reg_mr: %s", strerror(errno));
		return;
	}
	expect_mr(mr, "implicit: registered", 0, 0, 0, 0, 0, 0, 0);
	if (mr_cnt(mr->lkey, &c))
		return;
	tap(!strcmp(c.odp, "implicit"), "implicit: restrack says odp=%s", c.odp);
	empty_bytes = c.v[MIRROR_BYTES];
	tap(empty_bytes > 0, "implicit: empty mirror uses %lld bytes", empty_bytes);

	st = advise(mr, PF_W, FLUSH, b, len);
	tap(st == 0, "implicit: sync write prefetch of 4 MiB returns %d", st);
	expect_mr(mr, "implicit: 4 MiB write prefetch is 2 faults of CHUNK / PAGE pages",
		  2, 2 * cp, 0, 0, 2 * cp, 0, 2 * cp);
	st = mr_cnt(mr->lkey, &c);
	tap(!st && c.v[MIRROR_BYTES] > empty_bytes,
	    "implicit: mirror of %lld pages uses %lld bytes", 2 * cp, c.v[MIRROR_BYTES]);

	st = rdma_write_pattern(r, p, b, mr->rkey, wlen, 0x33);
	tap(st == 0 && all_bytes(b, wlen, 0x33),
	    "implicit: RDMA WRITE into prefetched memory: status %d", st);
	expect_mr(mr, "implicit: no fault for prefetched memory",
		  2, 2 * cp, 0, 0, 2 * cp, 0, 2 * cp);

	/* Drop the second chunk from the mirror, then let the device fault it. */
	munmap(b + CHUNK, CHUNK);
	if (mmap(b + CHUNK, CHUNK, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		tap(0, "implicit: remap failed");
		return;
	}
	madvise(b + CHUNK, CHUNK, MADV_NOHUGEPAGE);
	madvise(b + CHUNK, CHUNK, MADV_DONTFORK);
	expect_mr(mr, "implicit: munmap of 2 MiB is 1 invalidation of CHUNK / PAGE pages",
		  2, 2 * cp, 1, cp, 2 * cp, 0, cp);

	st = rdma_write_pattern(r, p, b + CHUNK, mr->rkey, wlen, 0x44);
	tap(st == 0 && all_bytes(b + CHUNK, wlen, 0x44),
	    "implicit: RDMA WRITE into fresh memory: status %d", st);
	/* a write fault maps writable what the WRITE writes, nothing more */
	expect_mr(mr, "implicit: the device write fault maps the pages of the WRITE",
		  3, 2 * cp + wp, 1, cp, 2 * cp, 0, cp + wp);

	st = advise(mr, PF, FLUSH, b, len);
	tap(st == 0, "implicit: sync prefetch of present memory returns %d", st);
	expect_mr(mr, "implicit: prefetch of present pages: 2 faults, 2 x CHUNK / PAGE prefetched",
		  5, 3 * cp, 1, cp, 4 * cp, 0, 2 * cp);

	munmap(b, len);
	expect_mr(mr, "implicit: munmap of everything is 1 invalidation of 2 x CHUNK / PAGE pages",
		  5, 3 * cp, 2, 3 * cp, 4 * cp, 0, 0);
	st = mr_cnt(mr->lkey, &c);
	tap(!st && c.v[MIRROR_BYTES] == empty_bytes,
	    "implicit: empty mirror is back to %lld bytes (got %lld)", empty_bytes,
	    c.v[MIRROR_BYTES]);

	expect_dev(&base, total, "implicit: while registered");
	ibv_dereg_mr(mr);
	expect_dev(&base, total, "implicit: after dereg");
}

/*
 * A message into fresh ODP memory faults in writable what it writes a block
 * at a time, not a page per packet: an RDMA WRITE (responder) and an RDMA
 * READ response (completer) of 4 MiB - 2 pages into an explicit MR, from 16
 * bytes into its second page, so that one packet straddles the 2 MiB
 * boundary.  Three faults: the first block's part, the straddling packet's
 * own first page in the second block, the rest of the second block; exactly
 * the 2 x CHUNK / PAGE - 1 pages the message writes.
 */
static void blocks_case(struct rdma_ctx *r, struct rdma_pair *p,
			enum ibv_wr_opcode op, const char *name)
{
	const size_t len = 2 * CHUNK, off = PAGE + 16, mlen = len - 2 * PAGE;
	const long long pages = 2 * (CHUNK / PAGE) - 1;
	unsigned char *b = map_aligned(len), *src = malloc(mlen);
	struct ibv_mr *mr = NULL, *smr = NULL;
	char what[128];
	size_t i, bad = 0;
	int st = -1;

	if (!b || !src)
		goto out;
	memset(src, 0x5a, mlen);
	mr = ibv_reg_mr(r->pd, b, len, mr_access);
	smr = ibv_reg_mr(r->pd, src, mlen, IBV_ACCESS_LOCAL_WRITE |
			 IBV_ACCESS_REMOTE_READ);
	if (!mr || !smr)
		goto out;
	if (op == IBV_WR_RDMA_WRITE)
		st = rdma_post_rw(p, op, src, smr->lkey, (uintptr_t)(b + off),
				  mr->rkey, mlen);
	else
		st = rdma_post_rw(p, op, b + off, mr->lkey, (uintptr_t)src,
				  smr->rkey, mlen);
	if (!st)
		st = rdma_complete(r, 1);
	snprintf(what, sizeof(what),
		 "blocks: %s of 4 MiB - 2 pages across a 2 MiB boundary is 3 faults of %lld pages",
		 name, pages);
	expect_mr(mr, what, 3, pages, 0, 0, 0, 0, pages);
	for (i = 0; i < len; i++)
		bad += b[i] != (i >= off && i < off + mlen ? 0x5a : 0);
	tap(st == 0 && !bad, "blocks: %s status %d, %zu wrong bytes", name, st, bad);
	ibv_dereg_mr(mr);
	ibv_dereg_mr(smr);
	munmap(b, len);
	free(src);
	return;
out:
	tap(0, "blocks: %s: setup failed: %s", name, strerror(errno));
	if (mr)
		ibv_dereg_mr(mr);
	if (smr)
		ibv_dereg_mr(smr);
	if (b)
		munmap(b, len);
	free(src);
}

/* Asynchronous prefetch: done by a work item, counted the same way. */
static void async_script(struct rdma_ctx *r)
{
	unsigned char *b = map_aligned(N * PAGE);
	struct ibv_mr *mr;
	struct cnt c = {};
	int st, i;

	mr = b ? ibv_reg_mr(r->pd, b, N * PAGE, mr_access) : NULL;
	if (!mr) {
		tap(0, "async: setup failed");
		return;
	}
	st = advise(mr, PF_W, 0, b, N * PAGE);
	tap(st == 0, "async: write prefetch returns %d", st);
	for (i = 0; i < 500; i++) {
		if (!mr_cnt(mr->lkey, &c) && c.v[PREFETCHES] == N)
			break;
		usleep(10000);
	}
	tap(c.v[PREFETCHES] == N, "async: prefetch done after about %d ms", i * 10);
	expect_mr(mr, "async: 1 fault of N pages", 1, N, 0, 0, N, 0, N);
	ibv_dereg_mr(mr);
	munmap(b, N * PAGE);
}

static int count_mrs(void)
{
	char *out = run("rdma res show mr dev rxe0 2>/dev/null"), *p;
	int n = 0;

	if (!out)
		return -1;
	for (p = out; (p = strstr(p, "mrn ")); p++)
		n++;
	free(out);
	return n;
}

/*
 * Asynchronous prefetch of a large MR, deregistered at once: dereg must wait
 * for (or cut short) the work item, and nothing may leak or crash.  The
 * work stops between chunks, so only whole chunks are counted.
 */
static void async_dereg_script(struct rdma_ctx *r)
{
	const size_t len = 64UL << 20;
	const long long cp = CHUNK / PAGE;
	int mrs = count_mrs(), i, ok = 1, st;
	struct cnt base, now;
	struct timespec t0, t1;
	double worst = 0;

	if (dev_cnt(&base)) {
		tap(0, "async dereg: no device counters");
		return;
	}
	for (i = 0; i < 10; i++) {
		unsigned char *b = map_aligned(len);
		struct ibv_mr *mr = b ? ibv_reg_mr(r->pd, b, len, mr_access) : NULL;
		double ms;

		if (!mr) {
			ok = 0;
			break;
		}
		st = advise(mr, i & 1 ? PF : PF_W, 0, b, len);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ok &= st == 0 && ibv_dereg_mr(mr) == 0;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
		if (ms > worst)
			worst = ms;
		munmap(b, len);
	}
	tap(ok, "async dereg: 10 x (64 MiB async prefetch, dereg at once) succeed; slowest dereg %.0f ms",
	    worst);
	i = count_mrs();
	tap(i == mrs, "async dereg: no MR left behind (%d before, %d after)",
	    mrs, i);
	if (dev_cnt(&now)) {
		tap(0, "async dereg: no device counters");
		return;
	}
	now.v[FAULTS] -= base.v[FAULTS];
	now.v[PAGES_FAULTED] -= base.v[PAGES_FAULTED];
	now.v[PREFETCHES] -= base.v[PREFETCHES];
	now.v[FAULT_ERRORS] -= base.v[FAULT_ERRORS];
	tap(now.v[FAULT_ERRORS] == 0 && now.v[PAGES_FAULTED] == now.v[FAULTS] * cp &&
	    now.v[PREFETCHES] == now.v[PAGES_FAULTED] && now.v[FAULTS] <= 10 * 32,
	    "async dereg: whole chunks only: %lld faults, %lld pages, %lld prefetched, %lld errors",
	    now.v[FAULTS], now.v[PAGES_FAULTED], now.v[PREFETCHES], now.v[FAULT_ERRORS]);
}

/* A process exits (without dereg) while its asynchronous prefetch runs. */
static void async_exit_script(void)
{
	int mrs = count_mrs(), status = -1;
	pid_t pid = fork();

	if (pid == 0) {
		struct rdma_ctx r;
		size_t len = 64UL << 20;
		unsigned char *b;
		struct ibv_mr *mr;

		if (rdma_open(&r, dev, 1))
			_exit(2);
		b = map_aligned(len);
		mr = b ? ibv_reg_mr(r.pd, b, len, mr_access) : NULL;
		if (!mr || advise(mr, PF_W, 0, b, len))
			_exit(3);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	tap(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "async exit: process exits during its prefetch (status %#x)", status);
	status = count_mrs();
	tap(status == mrs, "async exit: its MR is gone (%d before, %d after)",
	    mrs, status);
}

static void errors_script(struct rdma_ctx *r)
{
	unsigned char *b = map_aligned(N * PAGE);
	struct ibv_mr *odp, *pinned, *ro, *other;
	struct ibv_pd *pd2 = ibv_alloc_pd(r->ctx);
	struct ibv_sge sge[2];
	int st;

	odp = ibv_reg_mr(r->pd, b, N * PAGE, mr_access);
	pinned = ibv_reg_mr(r->pd, b, N * PAGE, IBV_ACCESS_LOCAL_WRITE);
	ro = ibv_reg_mr(r->pd, b, N * PAGE, IBV_ACCESS_ON_DEMAND);
	other = pd2 ? ibv_reg_mr(pd2, b, N * PAGE, mr_access) : NULL;
	if (!odp || !pinned || !ro || !other) {
		tap(0, "errors: setup failed");
		return;
	}

	st = advise(pinned, PF, FLUSH, b, PAGE);
	tap(st == EINVAL, "errors: prefetch of a non-ODP MR: EINVAL (got %d)", st);
	st = advise(pinned, PF, 0, b, PAGE);
	tap(st == EINVAL, "errors: async prefetch of a non-ODP MR: EINVAL (got %d)", st);
	st = advise(odp, PF, FLUSH, b + PAGE, N * PAGE);
	tap(st == EINVAL, "errors: range past the end of the MR: EINVAL (got %d)", st);
	st = advise(odp, PF, FLUSH, b - PAGE, PAGE);
	tap(st == EINVAL, "errors: range before the MR: EINVAL (got %d)", st);
	st = advise(odp, 3, FLUSH, b, PAGE);
	tap(st == EOPNOTSUPP, "errors: unknown advice 3: EOPNOTSUPP (got %d)", st);
	st = advise(odp, 1000, 0, b, PAGE);
	tap(st == EOPNOTSUPP, "errors: unknown advice 1000: EOPNOTSUPP (got %d)", st);
	st = advise_lkey(r->pd, odp->lkey ^ 0xffff00, PF, FLUSH, b, PAGE);
	tap(st == ENOENT, "errors: lkey of no MR: ENOENT (got %d)", st);
	st = advise_lkey(r->pd, other->lkey, PF, FLUSH, b, PAGE);
	tap(st == ENOENT, "errors: lkey of an MR of another PD: ENOENT (got %d)", st);
	st = advise(ro, PF_W, FLUSH, b, PAGE);
	tap(st == EPERM, "errors: write prefetch without local write: EPERM (got %d)", st);
	st = advise(ro, PF, FLUSH, b, PAGE);
	tap(st == 0, "errors: read prefetch of that MR is fine (got %d)", st);
	st = advise(odp, PF, 8, b, PAGE);
	tap(st == EINVAL || st == EOPNOTSUPP,
	    "errors: unknown flag refused by the core (got %d)", st);

	/* A bad SGE anywhere fails the whole call before anything is done. */
	sge[0] = (struct ibv_sge){ (uintptr_t)b, PAGE, odp->lkey };
	sge[1] = (struct ibv_sge){ (uintptr_t)b, PAGE, pinned->lkey };
	st = ibv_cmd_advise_mr(r->pd, PF, FLUSH, sge, 2);
	tap(st == EINVAL, "errors: one bad SGE of two: EINVAL (got %d)", st);
	expect_mr(odp, "errors: nothing was prefetched by the failed calls",
		  0, 0, 0, 0, 0, 0, 0);
	sge[1].lkey = odp->lkey;
	sge[1].addr = (uintptr_t)(b + PAGE);
	st = ibv_cmd_advise_mr(r->pd, PF_NF, FLUSH, sge, 2);
	tap(st == 0, "errors: two good SGEs (got %d)", st);
	/*
	 * The pinned MR faulted every page in: both are present.  Each SGE is
	 * mapped on its own.
	 */
	expect_mr(odp, "errors: two SGEs are 2 faults of 1 page each",
		  2, 2, 0, 0, 2, 0, 2);

	/* What the Debian provider does with ibv_advise_mr() itself. */
	st = ibv_advise_mr(r->pd, PF, FLUSH, sge, 1);
	if (st == 0)
		tap(1, "provider: ibv_advise_mr() reaches the kernel");
	else
		tap_skip("provider: ibv_advise_mr() returns %d (%s): the installed rxe provider lacks advise_mr (rdma-core-patches/)",
			 st, strerror(st));

	ibv_dereg_mr(odp);
	ibv_dereg_mr(pinned);
	ibv_dereg_mr(ro);
	ibv_dereg_mr(other);
	ibv_dealloc_pd(pd2);
	munmap(b, N * PAGE);
}

int main(int argc, char **argv)
{
	const char *only = argc > 2 ? argv[2] : NULL;
	struct rdma_ctx r;
	struct rdma_pair p;

	if (argc > 1)
		dev = argv[1];
	page_size = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# page size %lu, %lu pages per %lu KiB chunk\n", PAGE, CHUNK / PAGE, CHUNK >> 10);
	if (rdma_open(&r, dev, 1) || rdma_pair_create(&r, &p)) {
		printf("not ok 1 cannot open %s\n1..1\n", dev);
		return 1;
	}
#define RUN(name, call) do { if (!only || !strcmp(only, name)) call; } while (0)
	RUN("errors", errors_script(&r));
	RUN("explicit", explicit_script(&r, &p));
	RUN("implicit", implicit_script(&r, &p));
	RUN("blocks", blocks_case(&r, &p, IBV_WR_RDMA_WRITE, "RDMA WRITE"));
	RUN("blocks", blocks_case(&r, &p, IBV_WR_RDMA_READ, "RDMA READ"));
	RUN("async", async_script(&r));
	RUN("async-dereg", async_dereg_script(&r));
	RUN("async-exit", async_exit_script());
	rdma_pair_destroy(&p);
	rdma_close(&r);
	return tap_done();
}
