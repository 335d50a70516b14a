// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection on ODP (debug kernel: CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC,
 * CONFIG_FAULT_INJECTION_STACKTRACE_FILTER, debugfs).  Prints TAP.
 *
 * 1. Registration: /proc/thread-self/fail-nth makes the n-th allocation of
 *    this thread fail, for n = 1, 2, ... until a registration makes fewer
 *    than n allocations.  Every explicit and implicit ODP registration must
 *    then either succeed or fail with ENOMEM, and leak nothing (kmemleak is
 *    scanned by the VM at the end).
 *
 * 2. Faults: the ODP page faults run in rxe's work items, not in this task,
 *    so failslab and fail_page_alloc are armed globally (no task filter) but
 *    only for allocations whose call stack goes through
 *    ib_umem_odp_map_and_lock() (the stack-trace filter), one failure at a
 *    time at varying intervals.  Each RDMA WRITE between two fresh ODP
 *    buffers must then complete: with success and the right data, or with an
 *    error status; never hang, never move wrong data.
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ODP	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND)
#define LEN	(4UL << 20)
#define DBG	"/sys/kernel/debug"

static int put(const char *path, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int put(const char *path, const char *fmt, ...)
{
	char val[64];
	va_list ap;
	int fd, n, ret;

	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	ret = write(fd, val, n) == n ? 0 : -1;
	if (ret)
		fprintf(stderr, "%s <- %s: %s\n", path, val, strerror(errno));
	close(fd);
	return ret;
}

static long get(const char *path)
{
	char val[64] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, val, sizeof(val) - 1);
	close(fd);
	return n > 0 ? strtol(val, NULL, 0) : -1;
}

/* ---- 1: registration under fail-nth ------------------------------------ */

static void registration(struct rdma_ctx *r, bool implicit)
{
	unsigned char *buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int n, enomem = 0, other = 0, succeeded = 0, other_errno = 0;
	bool covered = false;

	for (n = 1; n <= 400; n++) {
		struct ibv_mr *mr;
		long left;

		if (put("/proc/thread-self/fail-nth", "%d", n))
			break;
		errno = 0;
		mr = implicit ? ibv_reg_mr(r->pd, NULL, SIZE_MAX, ODP) :
				ibv_reg_mr(r->pd, buf, LEN, ODP);
		left = get("/proc/thread-self/fail-nth");
		put("/proc/thread-self/fail-nth", "0");
		if (mr) {
			succeeded++;
			ibv_dereg_mr(mr);
		} else if (errno == ENOMEM) {
			enomem++;
		} else {
			other++;
			other_errno = errno;
		}
		if (left > 0) {
			/* fewer than n allocations: every site has been hit */
			covered = true;
			break;
		}
	}
	tap(covered && other == 0 && enomem > 0,
	    "%s ODP registration with allocation n failing, n = 1..%d: %d ENOMEM, %d succeeded "
	    "(failure tolerated), %d other errors%s%s",
	    implicit ? "implicit" : "explicit", n - 1, enomem, succeeded, other,
	    other ? ", last: " : "", other ? strerror(other_errno) : "");
	munmap(buf, LEN);
}

/* ---- 2: faults under failslab / fail_page_alloc ------------------------- */

static unsigned long sym_range(const char *name, unsigned long *end)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	unsigned long addr, start = 0;
	char type, sym[256];

	*end = 0;
	if (!f)
		return 0;
	while (fscanf(f, "%lx %c %255s%*[^\n]", &addr, &type, sym) == 3) {
		if (start && addr > start) {
			*end = addr;
			break;
		}
		if (!strcmp(sym, name))
			start = addr;
	}
	fclose(f);
	return start;
}

struct buf {
	unsigned char *p;
	struct ibv_mr *mr;
};

static void attr_set(const char *attr, const char *file, const char *fmt, long v)
{
	char path[128];

	snprintf(path, sizeof(path), DBG "/%s/%s", attr, file);
	put(path, fmt, v);
}

static void faults(struct rdma_ctx *r, const char *attr, unsigned long start,
		   unsigned long end)
{
	int rounds = 24, fired = 0, ok_ops = 0, err_ops = 0, bad_data = 0, hangs = 0;
	char path[128];

	attr_set(attr, "times", "%ld", 0);
	attr_set(attr, "probability", "%ld", 100);
	attr_set(attr, "task-filter", "%ld", 0);
	attr_set(attr, "verbose", "%ld", 1);
	attr_set(attr, "ignore-gfp-wait", "%ld", 0);
	if (!strcmp(attr, "fail_page_alloc")) {
		attr_set(attr, "ignore-gfp-highmem", "%ld", 0);
		attr_set(attr, "min-order", "%ld", 0);
	}
	attr_set(attr, "stacktrace-depth", "%ld", 32);
	attr_set(attr, "require-start", "%#lx", start);
	attr_set(attr, "require-end", "%#lx", end);

	for (int i = 0; i < rounds; i++) {
		struct buf s = {}, d = {};
		struct rdma_pair p = {};
		int st;

		s.p = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		d.p = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (unsigned long k = 0; k < LEN; k += 8)
			*(uint64_t *)(s.p + k) = k * 0x9e3779b97f4a7c15ULL + i;
		s.mr = ibv_reg_mr(r->pd, s.p, LEN, ODP);
		d.mr = ibv_reg_mr(r->pd, d.p, LEN, ODP);
		if (!s.mr || !d.mr || rdma_pair_create(r, &p)) {
			tap(false, "%s: setup of round %d failed", attr, i);
			return;
		}
		/* one failure, at the (1 + i % 8)-th allocation of the faults */
		attr_set(attr, "interval", "%ld", 1 + i % 8);
		attr_set(attr, "times", "%ld", 1);
		st = rdma_post_rw(&p, IBV_WR_RDMA_WRITE, s.p, s.mr->lkey,
				  (uintptr_t)d.p, d.mr->rkey, LEN);
		if (!st)
			st = rdma_complete(r, 1);
		snprintf(path, sizeof(path), DBG "/%s/times", attr);
		if (get(path) == 0)
			fired++;
		attr_set(attr, "times", "%ld", 0);
		if (st < 0)
			hangs++;
		else if (st == 0 && memcmp(s.p, d.p, LEN))
			bad_data++;
		else if (st == 0)
			ok_ops++;
		else
			err_ops++;
		rdma_pair_destroy(&p);
		ibv_dereg_mr(s.mr);
		ibv_dereg_mr(d.mr);
		munmap(s.p, LEN);
		munmap(d.p, LEN);
	}
	tap(fired > 0 && !bad_data && !hangs,
	    "%s in ODP faults: %d rounds, injected in %d; writes: %d right data, %d error completions, "
	    "%d wrong data, %d hung",
	    attr, rounds, fired, ok_ops, err_ops, bad_data, hangs);
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "rxe0";
	unsigned long start, end;
	struct rdma_ctx r;

	if (access(DBG "/failslab", F_OK) || access(DBG "/fail_page_alloc", F_OK)) {
		printf("# no failslab/fail_page_alloc in debugfs (not the debug kernel)\n1..0\n");
		return 77;
	}
	if (rdma_open(&r, dev, 1)) {
		printf("not ok 1 open %s\n1..1\n", dev);
		return 1;
	}
	/* fail-nth works without probability; keep the global attrs quiet */
	put(DBG "/failslab/ignore-gfp-wait", "N");
	put(DBG "/fail_page_alloc/ignore-gfp-wait", "N");
	put(DBG "/fail_page_alloc/ignore-gfp-highmem", "N");
	put(DBG "/failslab/probability", "0");
	put(DBG "/fail_page_alloc/probability", "0");
	registration(&r, false);
	registration(&r, true);

	start = sym_range("ib_umem_odp_map_and_lock", &end);
	if (!start || !end) {
		tap(false, "ib_umem_odp_map_and_lock not in /proc/kallsyms");
	} else {
		printf("# stack filter: ib_umem_odp_map_and_lock %#lx-%#lx\n", start, end);
		faults(&r, "failslab", start, end);
		faults(&r, "fail_page_alloc", start, end);
	}
	put(DBG "/failslab/probability", "0");
	put(DBG "/fail_page_alloc/probability", "0");

	{
		/* and the device still works */
		struct buf a = {}, b = {};
		struct rdma_pair p = {};
		int st = -1;

		a.p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		b.p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(a.p, 0x3c, LEN);
		a.mr = ibv_reg_mr(r.pd, a.p, LEN, ODP);
		b.mr = ibv_reg_mr(r.pd, b.p, LEN, ODP);
		if (a.mr && b.mr && !rdma_pair_create(&r, &p) &&
		    !rdma_post_rw(&p, IBV_WR_RDMA_WRITE, a.p, a.mr->lkey,
				  (uintptr_t)b.p, b.mr->rkey, LEN))
			st = rdma_complete(&r, 1);
		tap(st == 0 && !memcmp(a.p, b.p, LEN),
		    "with injection off, ODP writes move the right data again");
		rdma_pair_destroy(&p);
		if (a.mr)
			ibv_dereg_mr(a.mr);
		if (b.mr)
			ibv_dereg_mr(b.mr);
	}
	rdma_close(&r);
	return tap_done();
}
