// SPDX-License-Identifier: GPL-2.0
/*
 * Errors on ODP memory regions: RDMA to an address that is not mapped, or a
 * write to read-only memory, inside a registered ODP MR.  Each must complete
 * with the right status (remote access error at the responder, local
 * protection error at the requester), move the requester QP to the error
 * state, and leave the device working.  Prints TAP.
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE	4096UL
#define NPAGES	16
#define LEN	(NPAGES * PAGE)

enum hole { HOLE_UNMAPPED, HOLE_READONLY };
enum side { LOCAL, REMOTE };
enum kind { K_WRITE, K_READ, K_ATOMIC, K_SEND };
static const char *const kind_name[] = { "RDMA WRITE", "RDMA READ", "atomic", "SEND" };

struct buf {
	unsigned char *p;
	struct ibv_mr *mr;
};

static int make_buf(struct rdma_ctx *r, struct buf *b)
{
	b->p = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->p == MAP_FAILED)
		return -1;
	memset(b->p, 1, LEN);
	b->mr = ibv_reg_mr(r->pd, b->p, LEN, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			   IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_ON_DEMAND);
	return b->mr ? 0 : -1;
}

static void free_buf(struct buf *b)
{
	if (b->mr)
		ibv_dereg_mr(b->mr);
	munmap(b->p, LEN);
}

/* Page 8 of the buffer becomes a hole: unmapped or read-only. */
static unsigned char *make_hole(struct buf *b, enum hole h)
{
	unsigned char *hole = b->p + 8 * PAGE;

	if (h == HOLE_UNMAPPED)
		munmap(hole, PAGE);
	else
		mprotect(hole, PAGE, PROT_READ);
	return hole;
}

static int qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_attr attr;
	struct ibv_qp_init_attr init;

	if (ibv_query_qp(qp, &attr, IBV_QP_STATE, &init))
		return -1;
	return attr.qp_state;
}

/*
 * Post one operation of @kind whose @side buffer has a @h hole; expect
 * the requester completion status @want (and @want_recv for a SEND's
 * receive completion, if not -1).
 */
static void one_case(struct rdma_ctx *r, enum kind kind, enum side side,
		     enum hole h, int want, int want_recv)
{
	struct buf lb = {}, rb = {};
	struct rdma_pair p = {};
	struct ibv_wc wc;
	int st, st_recv = -1, got = -2, qst;
	unsigned char *hole, *l, *rem;
	const char *what = h == HOLE_UNMAPPED ? "unmapped" : "read-only";

	if (make_buf(r, &lb) || make_buf(r, &rb) || rdma_pair_create(r, &p)) {
		tap(0, "%s into %s %s page: setup failed", kind_name[kind],
		    side == LOCAL ? "local" : "remote", what);
		goto out;
	}
	hole = make_hole(side == LOCAL ? &lb : &rb, h);
	l = side == LOCAL ? hole : lb.p;
	rem = side == REMOTE ? hole : rb.p;

	switch (kind) {
	case K_WRITE:
		st = rdma_post_rw(&p, IBV_WR_RDMA_WRITE, l, lb.mr->lkey,
				  (uintptr_t)rem, rb.mr->rkey, 64);
		break;
	case K_READ:
		st = rdma_post_rw(&p, IBV_WR_RDMA_READ, l, lb.mr->lkey,
				  (uintptr_t)rem, rb.mr->rkey, 64);
		break;
	case K_ATOMIC:
		st = rdma_post_atomic(&p, IBV_WR_ATOMIC_FETCH_AND_ADD,
				      (uint64_t *)l, lb.mr->lkey,
				      (uintptr_t)rem, rb.mr->rkey, 1, 0);
		break;
	default:
		st = rdma_post_send_recv(&p, l, lb.mr->lkey, rem, rb.mr->lkey, 64);
		break;
	}
	if (st) {
		tap(0, "%s: post failed", kind_name[kind]);
		goto out;
	}
	/* Completions: the requester's, plus the receive for a SEND. */
	for (int n = kind == K_SEND ? 2 : 1; n > 0; n--) {
		st = rdma_wait(r, &wc, 30000);
		if (st < 0)
			break;
		if (wc.wr_id == 2)
			st_recv = st;
		else
			got = st;
	}
	qst = qp_state(p.a);
	tap(got == want && (want_recv < 0 || st_recv == want_recv) &&
	    qst == IBV_QPS_ERR,
	    "%s with %s %s page: %s (want %s)%s%s, requester QP %s",
	    kind_name[kind], side == LOCAL ? "local" : "remote", what,
	    got >= 0 ? ibv_wc_status_str(got) : "no completion",
	    ibv_wc_status_str(want),
	    want_recv >= 0 ? ", receive " : "",
	    want_recv >= 0 ? (st_recv >= 0 ? ibv_wc_status_str(st_recv) : "none") : "",
	    qst == IBV_QPS_ERR ? "in error" : "NOT in error");
out:
	rdma_pair_destroy(&p);
	free_buf(&lb);
	free_buf(&rb);
}

/* After all the errors, the device still moves data. */
static void still_works(struct rdma_ctx *r)
{
	struct buf a = {}, b = {};
	struct rdma_pair p = {};
	int st = -1;

	if (!make_buf(r, &a) && !make_buf(r, &b) && !rdma_pair_create(r, &p)) {
		memset(a.p, 0x5a, LEN);
		st = rdma_post_rw(&p, IBV_WR_RDMA_WRITE, a.p, a.mr->lkey,
				  (uintptr_t)b.p, b.mr->rkey, LEN);
		if (!st)
			st = rdma_complete(r, 1);
	}
	tap(st == 0 && b.p && !memcmp(a.p, b.p, LEN),
	    "a new QP pair still moves data after the errors");
	rdma_pair_destroy(&p);
	free_buf(&a);
	free_buf(&b);
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "rxe0";
	struct rdma_ctx r;

	if (rdma_open(&r, dev, 1)) {
		printf("not ok 1 open %s\n1..1\n", dev);
		return 1;
	}
	/* Responder side: the NAK comes back as a remote access error. */
	one_case(&r, K_WRITE, REMOTE, HOLE_UNMAPPED, IBV_WC_REM_ACCESS_ERR, -1);
	one_case(&r, K_WRITE, REMOTE, HOLE_READONLY, IBV_WC_REM_ACCESS_ERR, -1);
	one_case(&r, K_READ, REMOTE, HOLE_UNMAPPED, IBV_WC_REM_ACCESS_ERR, -1);
	one_case(&r, K_ATOMIC, REMOTE, HOLE_UNMAPPED, IBV_WC_REM_ACCESS_ERR, -1);
	one_case(&r, K_ATOMIC, REMOTE, HOLE_READONLY, IBV_WC_REM_ACCESS_ERR, -1);
	/* Requester side: local protection errors. */
	one_case(&r, K_WRITE, LOCAL, HOLE_UNMAPPED, IBV_WC_LOC_PROT_ERR, -1);
	one_case(&r, K_SEND, LOCAL, HOLE_UNMAPPED, IBV_WC_LOC_PROT_ERR, -1);
	one_case(&r, K_READ, LOCAL, HOLE_UNMAPPED, IBV_WC_LOC_PROT_ERR, -1);
	one_case(&r, K_READ, LOCAL, HOLE_READONLY, IBV_WC_LOC_PROT_ERR, -1);
	/* A receive buffer that cannot be written. */
	one_case(&r, K_SEND, REMOTE, HOLE_UNMAPPED, IBV_WC_REM_OP_ERR,
		 IBV_WC_LOC_PROT_ERR);
	still_works(&r);
	rdma_close(&r);
	return tap_done();
}
