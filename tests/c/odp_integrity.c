// SPDX-License-Identifier: GPL-2.0
/*
 * Data integrity of RDMA WRITE, READ and SEND through ODP (and, as a
 * control, pinned) memory regions on one device in loopback.
 *
 * Messages from 1 byte to 16 MiB start at random offsets inside pages on
 * both sides (independently, so a copy that lands at the wrong offset inside
 * a page is caught).  Memory is anonymous or file-backed (a shared mapping
 * of a tmpfs file) and cold (zeroed and dropped from the mirror just before
 * the operation: MADV_DONTNEED, or a punched hole for the file) or warm
 * (mirrored by an earlier operation, refilled with a sentinel by the CPU).
 * After every operation the CPU checks every byte of the target range and
 * the bytes around it.  Prints TAP, one line per (memory, state, op, MR kind).
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "tap.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE		4096UL
#define MAX_MSG		(16UL << 20)
#define BUF_SIZE	(MAX_MSG + 2 * PAGE)
#define SENTINEL	0xa5
#define GUARD		256

static const size_t sizes[] = {
	1, 2, 3, 8, 100, 4095, 4096, 4097, 12289, 65541, (1 << 20) + 17, MAX_MSG,
};

struct mem {
	const char *name;
	int fd;			/* -1 for anonymous memory */
	unsigned char *buf[2];	/* [0] requester side, [1] responder side */
	struct ibv_mr *mr[2];
};

static int map_mem(struct mem *m, int file)
{
	int i;

	m->fd = -1;
	if (file) {
		char path[] = "/tmp/odp-integrity-XXXXXX";

		m->fd = mkstemp(path);
		if (m->fd < 0 || unlink(path) || ftruncate(m->fd, 2 * BUF_SIZE))
			return -1;
	}
	for (i = 0; i < 2; i++) {
		m->buf[i] = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
				 file ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS,
				 m->fd, file ? i * BUF_SIZE : 0);
		if (m->buf[i] == MAP_FAILED)
			return -1;
	}
	return 0;
}

/* Zero both buffers and drop their pages, so the mirror is cold. */
static int make_cold(struct mem *m)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (m->fd >= 0) {
			if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      i * BUF_SIZE, BUF_SIZE))
				return -1;
		} else if (madvise(m->buf[i], BUF_SIZE, MADV_DONTNEED)) {
			return -1;
		}
	}
	return 0;
}

static void fill_random(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		p[i] = seed >> 16;
	}
}

/* Check dst[0, len) == src and the guard bytes around it == expect_around. */
static int check(const unsigned char *dst, const unsigned char *src, size_t len,
		 size_t dst_off, int expect_around, char *why, size_t whylen)
{
	size_t i, lo = dst_off > GUARD ? dst_off - GUARD : 0;
	size_t hi = dst_off + len + GUARD;
	const unsigned char *base = dst - dst_off;

	if (hi > BUF_SIZE)
		hi = BUF_SIZE;
	for (i = 0; i < len; i++) {
		if (dst[i] != src[i]) {
			snprintf(why, whylen, "byte %zu of %zu: %#x, want %#x",
				 i, len, dst[i], src[i]);
			return 0;
		}
	}
	for (i = lo; i < hi; i++) {
		if (i >= dst_off && i < dst_off + len)
			continue;
		if (base[i] != expect_around) {
			snprintf(why, whylen, "byte at %+ld outside the target: %#x, want %#x",
				 (long)i - (long)dst_off, base[i], expect_around);
			return 0;
		}
	}
	return 1;
}

enum op { OP_WRITE, OP_READ, OP_SEND };
static const char *const op_name[] = { "write", "read", "send" };

/* One operation; 1 if every byte checks out. */
static int run_one(struct rdma_ctx *r, struct rdma_pair *p, struct mem *m,
		   enum op op, size_t len, int cold, unsigned int seed,
		   char *why, size_t whylen)
{
	size_t off_a = rand() % PAGE, off_b = rand() % PAGE;
	/* data flows src -> dst: requester -> responder except for READ */
	int from = op == OP_READ ? 1 : 0, to = !from;
	size_t off_src = from ? off_b : off_a, off_dst = from ? off_a : off_b;
	unsigned char *src = m->buf[from] + off_src, *dst = m->buf[to] + off_dst;
	unsigned char *expect = malloc(len);
	int around, st, ok;

	if (!expect)
		return 0;
	if (cold) {
		if (make_cold(m)) {
			snprintf(why, whylen, "could not drop the pages");
			free(expect);
			return 0;
		}
		around = 0;
	} else {
		memset(m->buf[to], SENTINEL, BUF_SIZE);
		around = SENTINEL;
	}
	fill_random(expect, len, seed);
	memcpy(src, expect, len);

	switch (op) {
	case OP_WRITE:
		st = rdma_post_rw(p, IBV_WR_RDMA_WRITE, src, m->mr[0]->lkey,
				  (uintptr_t)dst, m->mr[1]->rkey, len);
		break;
	case OP_READ:
		st = rdma_post_rw(p, IBV_WR_RDMA_READ, dst, m->mr[0]->lkey,
				  (uintptr_t)src, m->mr[1]->rkey, len);
		break;
	default:
		st = rdma_post_send_recv(p, src, m->mr[0]->lkey, dst,
					 m->mr[1]->lkey, len);
		break;
	}
	if (!st)
		st = rdma_complete(r, op == OP_SEND ? 2 : 1);
	if (st) {
		snprintf(why, whylen, "%zu bytes: completion status %d (%s)", len,
			 st, st > 0 ? ibv_wc_status_str(st) : "timeout/post error");
		free(expect);
		return 0;
	}
	ok = check(dst, expect, len, off_dst, around, why, whylen);
	free(expect);
	return ok;
}

static int run_group(struct rdma_ctx *r, struct mem *m, int odp, int cold,
		     enum op op)
{
	struct rdma_pair p;
	char why[160] = "";
	unsigned int i;
	int ok = 1;

	if (rdma_pair_create(r, &p)) {
		tap(0, "%s %s %s %s: cannot create QPs", m->name,
		    cold ? "cold" : "warm", op_name[op], odp ? "odp" : "pinned");
		return 0;
	}
	for (i = 0; ok && i < sizeof(sizes) / sizeof(sizes[0]); i++)
		ok = run_one(r, &p, m, op, sizes[i], cold, i * 7919 + op, why,
			     sizeof(why));
	rdma_pair_destroy(&p);
	tap(ok, "%s %s %s %s: %zu sizes 1 B..16 MiB%s%s", m->name,
	    cold ? "cold" : "warm", op_name[op], odp ? "odp" : "pinned",
	    sizeof(sizes) / sizeof(sizes[0]), ok ? "" : ": ", ok ? "" : why);
	return ok;
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "rxe0";
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		     IBV_ACCESS_REMOTE_READ;
	struct rdma_ctx r;
	int failed = 0, file, odp, cold, i;
	enum op op;

	srand(1234);
	if (rdma_open(&r, dev, 1)) {
		printf("not ok 1 open %s\n1..1\n", dev);
		return 1;
	}
	for (file = 0; file < 2; file++) {
		for (odp = 1; odp >= 0; odp--) {
			struct mem m = { .name = file ? "file" : "anon" };

			if (map_mem(&m, file)) {
				tap(0, "%s: mmap failed", m.name);
				failed++;
				continue;
			}
			for (i = 0; i < 2; i++) {
				if (!odp)	/* pinning needs the pages */
					memset(m.buf[i], 0, BUF_SIZE);
				m.mr[i] = ibv_reg_mr(r.pd, m.buf[i], BUF_SIZE,
						     access | (odp ? IBV_ACCESS_ON_DEMAND : 0));
			}
			if (!m.mr[0] || !m.mr[1]) {
				tap(0, "%s %s: ibv_reg_mr failed", m.name,
				    odp ? "odp" : "pinned");
				failed++;
			} else {
				/* pinned MRs cannot be made cold */
				for (cold = odp; cold >= 0; cold--)
					for (op = OP_WRITE; op <= OP_SEND; op++)
						failed += !run_group(&r, &m, odp, cold, op);
			}
			for (i = 0; i < 2; i++) {
				if (m.mr[i])
					ibv_dereg_mr(m.mr[i]);
				munmap(m.buf[i], BUF_SIZE);
			}
			if (m.fd >= 0)
				close(m.fd);
		}
	}
	rdma_close(&r);
	return tap_done() | (failed != 0);
}
