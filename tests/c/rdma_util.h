/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small libibverbs helpers shared by the project's C tests: one device, one
 * PD and CQ, and pairs of RC QPs connected to each other in loopback.
 */
#ifndef RDMA_UTIL_H
#define RDMA_UTIL_H

#include <infiniband/verbs.h>
#include <stddef.h>
#include <stdint.h>

struct rdma_ctx {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	int port;
	int gid_index;
	/* Local ACK timeout of the QPs connected from now on (0: 14, 67 ms) */
	int qp_timeout;
};

struct rdma_pair {
	struct ibv_qp *a;	/* requester */
	struct ibv_qp *b;	/* responder */
};

int rdma_open(struct rdma_ctx *r, const char *dev_name, int gid_index);
void rdma_close(struct rdma_ctx *r);
int rdma_pair_create(struct rdma_ctx *r, struct rdma_pair *p);
void rdma_pair_destroy(struct rdma_pair *p);
/* Move a QP of @r to INIT with these access flags / connect it to RTS. */
int rdma_qp_init(struct rdma_ctx *r, struct ibv_qp *qp, int access);
int rdma_qp_connect(struct rdma_ctx *r, struct ibv_qp *qp, uint32_t dest_qpn);
/* Wait for one completion; returns its status, or -1 on timeout. */
int rdma_wait(struct rdma_ctx *r, struct ibv_wc *wc, int timeout_ms);
int rdma_post_rw(struct rdma_pair *p, enum ibv_wr_opcode op, void *laddr,
		 uint32_t lkey, uint64_t raddr, uint32_t rkey, size_t len);
int rdma_post_send_recv(struct rdma_pair *p, void *src, uint32_t lkey,
			void *dst, uint32_t dkey, size_t len);
int rdma_post_atomic(struct rdma_pair *p, enum ibv_wr_opcode op,
		     uint64_t *result, uint32_t lkey, uint64_t raddr,
		     uint32_t rkey, uint64_t compare_add, uint64_t swap);
/* Run one posted operation to completion: the worst status seen, -1 on timeout. */
int rdma_complete(struct rdma_ctx *r, int nwc);
int rdma_odp_caps(struct rdma_ctx *r, uint32_t *general, uint32_t *rc);
/* CLOCK_MONOTONIC in milliseconds */
long now_ms(void);
/*
 * How many times slower the kernel under test runs than the normal one, the
 * factor time limits are scaled by: VM_SLOWDOWN, which tests/host/vm-run
 * sets (tests/host/lib/slowdown.sh), else 1.
 */
int debug_slowdown(void);
/*
 * Bound on ibv_dereg_mr() and ibv_destroy_qp() while faults are in flight,
 * in ms: 10 s scaled by debug_slowdown(), and always below rxe's forced
 * clean-up time-out RXE_FORCED_CLEANUP_MS.
 */
long teardown_bound_ms(void);
/* drivers/infiniband/sw/rxe/rxe_pool.c: __rxe_cleanup()'s forced clean-up */
#define RXE_FORCED_CLEANUP_MS	50000
/* The kB of @key ("Anonymous", ...) of the smaps entry that starts at @addr */
long smaps_kb(void *addr, const char *key);
/* Resources of @dev that "rdma res show @what" (mr, qp, ...) lists; -1 on error */
int rdma_res_count(const char *dev, const char *what);

#endif
