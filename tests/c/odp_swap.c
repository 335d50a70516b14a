// SPDX-License-Identifier: GPL-2.0
/*
 * ODP under memory pressure: an ODP MR larger than the free memory of the
 * VM, with swap (zram) on.  The device reads and writes every byte of it:
 *
 *   1. the CPU fills the region (generation 1), pushing most of it to swap;
 *   2. RDMA WRITEs with the region as source (requester side, explicit ODP
 *      MR) copy it chunk by chunk to a small buffer: every byte checked;
 *   3. RDMA WRITEs into the region (responder side, implicit ODP MR) write
 *      generation 2 over all of it;
 *   4. RDMA READs of the region (responder side, explicit ODP MR) bring it
 *      back: every byte checked; then the CPU checks it all once more.
 *
 * Pages are mostly one repeated word, so that zram can compress them and the
 * VM does not run out of memory, with a per-page header of distinct words.
 * /proc/vmstat pswpout and pswpin must grow: pages went to swap and came
 * back while the MR was registered.  Prints TAP.
 *
 *   odp_swap [--mib N | --percent P (of MemAvailable, default 125)] [--quick] [DEV]
 *   (--quick leaves out step 4)
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "tap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define ODP	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND)
#define PAGE	4096UL
#define CHUNK	(1UL << 20)

static uint64_t word(unsigned int gen, unsigned long page, unsigned int w)
{
	if (w < 8)
		return ((uint64_t)gen << 60) ^ (page * 0x9e3779b97f4a7c15ULL) ^ w;
	return ((uint64_t)gen << 56) | page;
}

static void fill_page(uint64_t *p, unsigned int gen, unsigned long page)
{
	for (unsigned int w = 0; w < PAGE / 8; w++)
		p[w] = word(gen, page, w);
}

/* Check @len bytes at @p against region offset @off; returns bad bytes. */
static unsigned long check(const unsigned char *p, unsigned long off,
			   unsigned long len, unsigned int gen)
{
	unsigned long bad = 0;

	for (unsigned long i = 0; i < len; i += 8) {
		unsigned long o = off + i;
		uint64_t want = word(gen, o / PAGE, (o % PAGE) / 8);

		if (memcmp(p + i, &want, 8)) {
			if (!bad)
				printf("# first bad word at region offset %#lx: %#llx, want %#llx\n",
				       o, (unsigned long long)*(const uint64_t *)(p + i),
				       (unsigned long long)want);
			bad += 8;
		}
	}
	return bad;
}

static struct rdma_ctx r;
static struct rdma_pair p;

/*
 * One RDMA operation to completion.  Nothing is retried: under this memory
 * pressure rxe used to fail work requests when a GFP_ATOMIC packet
 * allocation failed (patch "RDMA/rxe: allocate packets where the QP tasks
 * may sleep"); now every operation must succeed first time.
 */
static int xfer(enum ibv_wr_opcode op, void *laddr, uint32_t lkey,
		uint64_t raddr, uint32_t rkey, size_t len)
{
	if (rdma_post_rw(&p, op, laddr, lkey, raddr, rkey, len))
		return -1;
	return rdma_complete(&r, 1);
}

/* A line every 128 MiB, so that a slow run shows where it is. */
static void progress(const char *what, unsigned long off, unsigned long len)
{
	static long t0;

	if (!off)
		t0 = now_ms();
	if ((off + CHUNK) % (128UL << 20) == 0 || off + CHUNK >= len)
		printf("# %s: %lu of %lu MiB, %ld ms\n", what, (off + CHUNK) >> 20,
		       len >> 20, now_ms() - t0);
	fflush(stdout);
}

static long vmstat(const char *name)
{
	FILE *f = fopen("/proc/vmstat", "r");
	char key[64];
	long v, ret = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &v) == 2)
		if (!strcmp(key, name))
			ret = v;
	fclose(f);
	return ret;
}

static long mem_available_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char key[64];
	long v, ret = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld kB\n", key, &v) == 2)
		if (!strcmp(key, "MemAvailable:"))
			ret = v / 1024;
	fclose(f);
	return ret;
}

int main(int argc, char **argv)
{
	const char *dev = "rxe0";
	unsigned long mib = 0, percent = 125, len, bad;
	bool quick = false;
	struct ibv_mr *mr, *imr, *small_mr;
	unsigned char *region, *small;
	long out0, in0, out1, in1, out2, in2, avail;
	int st = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mib") && i + 1 < argc)
			mib = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--percent") && i + 1 < argc)
			percent = strtoul(argv[++i], NULL, 0);
		else
			dev = argv[i];
	}
	avail = mem_available_mib();
	if (!mib)
		mib = avail * percent / 100;
	len = mib << 20;
	printf("# MemAvailable %ld MiB, ODP region %lu MiB\n", avail, mib);
	if (rdma_open(&r, dev, 1) || rdma_pair_create(&r, &p)) {
		printf("not ok 1 open %s\n1..1\n", dev);
		return 1;
	}
	region = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	small = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mr = ibv_reg_mr(r.pd, region, len, ODP);
	imr = ibv_reg_mr(r.pd, NULL, SIZE_MAX, ODP);
	small_mr = ibv_reg_mr(r.pd, small, CHUNK, ODP);
	tap(region != MAP_FAILED && mr && imr && small_mr,
	    "register an explicit ODP MR of %lu MiB (more than the %ld MiB available) and an implicit one",
	    mib, avail);
	if (!mr || !imr || !small_mr)
		goto out;

	out0 = vmstat("pswpout");
	in0 = vmstat("pswpin");
	for (unsigned long pg = 0; pg < len / PAGE; pg++)
		fill_page((uint64_t *)(region + pg * PAGE), 1, pg);
	out1 = vmstat("pswpout");
	in1 = vmstat("pswpin");
	tap(out1 - out0 > 0, "CPU fill pushed pages to swap: pswpout +%ld pages",
	    out1 - out0);

	/* 2: the requester reads every byte of the region */
	bad = 0;
	for (unsigned long off = 0; off < len && !st; off += CHUNK) {
		st = xfer(IBV_WR_RDMA_WRITE, region + off, mr->lkey,
			  (uintptr_t)small, small_mr->rkey, CHUNK);
		if (!st)
			bad += check(small, off, CHUNK, 1);
		progress("requester reads", off, len);
	}
	tap(!st && !bad, "RDMA WRITE from every byte of the region (requester, explicit MR): status %d, %lu bad bytes",
	    st, bad);

	/* 3: the responder writes every byte (implicit MR) */
	for (unsigned long off = 0; off < len && !st; off += CHUNK) {
		for (unsigned long pg = 0; pg < CHUNK / PAGE; pg++)
			fill_page((uint64_t *)(small + pg * PAGE), 2, (off + pg * PAGE) / PAGE);
		st = xfer(IBV_WR_RDMA_WRITE, small, small_mr->lkey,
			  (uintptr_t)region + off, imr->rkey, CHUNK);
		progress("responder writes", off, len);
	}
	tap(!st, "RDMA WRITE of generation 2 into every byte of the region (responder, implicit MR): status %d", st);

	/* 4: the responder reads every byte back (not with --quick) */
	bad = 0;
	for (unsigned long off = 0; off < len && !st && !quick; off += CHUNK) {
		memset(small, 0, CHUNK);
		st = xfer(IBV_WR_RDMA_READ, small, small_mr->lkey,
			  (uintptr_t)region + off, mr->rkey, CHUNK);
		if (!st)
			bad += check(small, off, CHUNK, 2);
		progress("responder reads", off, len);
	}
	if (quick)
		tap_skip("RDMA READ of every byte of the region: --quick");
	else
		tap(!st && !bad, "RDMA READ of every byte of the region (responder, explicit MR): status %d, %lu bad bytes",
		    st, bad);
	bad = check(region, 0, len, 2);
	tap(!bad, "CPU sees generation 2 in every byte: %lu bad bytes", bad);

	out2 = vmstat("pswpout");
	in2 = vmstat("pswpin");
	tap(in2 - in1 > 0 && out2 - out1 > 0,
	    "while registered, pages came back from swap and went out again: pswpin +%ld, pswpout +%ld",
	    in2 - in1, out2 - out1);
	printf("# pswpout %ld -> %ld -> %ld, pswpin %ld -> %ld -> %ld\n",
	       out0, out1, out2, in0, in1, in2);
out:
	if (mr)
		ibv_dereg_mr(mr);
	if (imr)
		ibv_dereg_mr(imr);
	if (small_mr)
		ibv_dereg_mr(small_mr);
	rdma_pair_destroy(&p);
	rdma_close(&r);
	return tap_done();
}
