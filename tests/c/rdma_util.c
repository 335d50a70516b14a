// SPDX-License-Identifier: GPL-2.0
/* libibverbs helpers for the project's C tests (see rdma_util.h). */
#include "rdma_util.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int rdma_open(struct rdma_ctx *r, const char *dev_name, int gid_index)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	int i;

	memset(r, 0, sizeof(*r));
	if (!list)
		return -1;
	for (i = 0; list[i]; i++)
		if (!dev_name || !strcmp(ibv_get_device_name(list[i]), dev_name))
			break;
	if (list[i])
		r->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!r->ctx)
		return -1;
	r->port = 1;
	r->gid_index = gid_index;
	r->pd = ibv_alloc_pd(r->ctx);
	r->cq = ibv_create_cq(r->ctx, 256, NULL, NULL, 0);
	if (!r->pd || !r->cq) {
		rdma_close(r);
		return -1;
	}
	return 0;
}

void rdma_close(struct rdma_ctx *r)
{
	if (r->cq)
		ibv_destroy_cq(r->cq);
	if (r->pd)
		ibv_dealloc_pd(r->pd);
	if (r->ctx)
		ibv_close_device(r->ctx);
	memset(r, 0, sizeof(*r));
}

int rdma_qp_init(struct rdma_ctx *r, struct ibv_qp *qp, int access)
{
	struct ibv_qp_attr init = {
		.qp_state = IBV_QPS_INIT,
		.port_num = r->port,
		.qp_access_flags = access,
	};

	return ibv_modify_qp(qp, &init, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			     IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
}

static struct ibv_qp *create_qp(struct rdma_ctx *r)
{
	struct ibv_qp_init_attr attr = {
		.send_cq = r->cq,
		.recv_cq = r->cq,
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 64, .max_recv_wr = 64,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp *qp = ibv_create_qp(r->pd, &attr);

	if (!qp)
		return NULL;
	if (rdma_qp_init(r, qp, IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE |
			 IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_LOCAL_WRITE)) {
		ibv_destroy_qp(qp);
		return NULL;
	}
	return qp;
}

int rdma_qp_connect(struct rdma_ctx *r, struct ibv_qp *qp, uint32_t dest_qpn)
{
	union ibv_gid gid;
	struct ibv_qp_attr rtr = {
		.qp_state = IBV_QPS_RTR,
		.path_mtu = IBV_MTU_1024,
		.dest_qp_num = dest_qpn,
		.rq_psn = 0,
		.max_dest_rd_atomic = 8,
		.min_rnr_timer = 1,
		.ah_attr = {
			.is_global = 1,
			.port_num = r->port,
			.grh = { .sgid_index = r->gid_index, .hop_limit = 1 },
		},
	};
	struct ibv_qp_attr rts = {
		.qp_state = IBV_QPS_RTS,
		.timeout = r->qp_timeout ? r->qp_timeout : 14,
		.retry_cnt = 7,
		.rnr_retry = 7,
		.sq_psn = 0,
		.max_rd_atomic = 8,
	};

	if (ibv_query_gid(r->ctx, r->port, r->gid_index, &gid))
		return -1;
	rtr.ah_attr.grh.dgid = gid;
	if (ibv_modify_qp(qp, &rtr, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		return -1;
	return ibv_modify_qp(qp, &rts, IBV_QP_STATE | IBV_QP_TIMEOUT |
			     IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
			     IBV_QP_MAX_QP_RD_ATOMIC);
}

int rdma_pair_create(struct rdma_ctx *r, struct rdma_pair *p)
{
	p->a = create_qp(r);
	p->b = create_qp(r);
	if (!p->a || !p->b ||
	    rdma_qp_connect(r, p->a, p->b->qp_num) || rdma_qp_connect(r, p->b, p->a->qp_num)) {
		rdma_pair_destroy(p);
		return -1;
	}
	return 0;
}

void rdma_pair_destroy(struct rdma_pair *p)
{
	if (p->a)
		ibv_destroy_qp(p->a);
	if (p->b)
		ibv_destroy_qp(p->b);
	p->a = p->b = NULL;
}

long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int debug_slowdown(void)
{
	const char *s = getenv("VM_SLOWDOWN");
	int n = s ? atoi(s) : 1;

	return n > 1 ? n : 1;
}

/*
 * rxe's __rxe_cleanup() waits for the last reference to an object at most
 * RXE_FORCED_CLEANUP_MS, then WARNs and frees it anyway: a bound at or above
 * that time-out would let the forced (use-after-free) path pass as a
 * success, so the bound stops a fifth of the time-out short of it.
 */
long teardown_bound_ms(void)
{
	long bound = 10000L * debug_slowdown();

	return bound < RXE_FORCED_CLEANUP_MS * 4 / 5 ? bound : RXE_FORCED_CLEANUP_MS * 4 / 5;
}

int rdma_wait(struct rdma_ctx *r, struct ibv_wc *wc, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	int n;

	while ((n = ibv_poll_cq(r->cq, 1, wc)) == 0) {
		if (now_ms() > deadline)
			return -1;
		sched_yield();
	}
	return n < 0 ? -1 : (int)wc->status;
}

int rdma_complete(struct rdma_ctx *r, int nwc)
{
	struct ibv_wc wc;
	int worst = 0, st;

	while (nwc--) {
		st = rdma_wait(r, &wc, 120000);
		if (st < 0)
			return -1;
		if (st && !worst)
			worst = st;
	}
	return worst;
}

int rdma_post_rw(struct rdma_pair *p, enum ibv_wr_opcode op, void *laddr,
		 uint32_t lkey, uint64_t raddr, uint32_t rkey, size_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)laddr, .length = len, .lkey = lkey };
	struct ibv_send_wr wr = {
		.wr_id = 1, .sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = raddr, .rkey = rkey },
	}, *bad;

	return ibv_post_send(p->a, &wr, &bad);
}

int rdma_post_send_recv(struct rdma_pair *p, void *src, uint32_t lkey,
			void *dst, uint32_t dkey, size_t len)
{
	struct ibv_sge rsge = { .addr = (uintptr_t)dst, .length = len, .lkey = dkey };
	struct ibv_recv_wr rwr = { .wr_id = 2, .sg_list = &rsge, .num_sge = 1 }, *rbad;
	struct ibv_sge ssge = { .addr = (uintptr_t)src, .length = len, .lkey = lkey };
	struct ibv_send_wr swr = {
		.wr_id = 1, .sg_list = &ssge, .num_sge = 1, .opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	}, *sbad;

	if (ibv_post_recv(p->b, &rwr, &rbad))
		return -1;
	return ibv_post_send(p->a, &swr, &sbad);
}

int rdma_post_atomic(struct rdma_pair *p, enum ibv_wr_opcode op,
		     uint64_t *result, uint32_t lkey, uint64_t raddr,
		     uint32_t rkey, uint64_t compare_add, uint64_t swap)
{
	struct ibv_sge sge = { .addr = (uintptr_t)result, .length = 8, .lkey = lkey };
	struct ibv_send_wr wr = {
		.wr_id = 3, .sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.atomic = { .remote_addr = raddr, .rkey = rkey,
			       .compare_add = compare_add, .swap = swap },
	}, *bad;

	return ibv_post_send(p->a, &wr, &bad);
}

int rdma_odp_caps(struct rdma_ctx *r, uint32_t *general, uint32_t *rc)
{
	struct ibv_device_attr_ex attr;

	if (ibv_query_device_ex(r->ctx, NULL, &attr))
		return -1;
	*general = attr.odp_caps.general_caps;
	*rc = attr.odp_caps.per_transport_caps.rc_odp_caps;
	return 0;
}

int rdma_res_count(const char *dev, const char *what)
{
	char cmd[128], line[512];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "rdma res show %s 2>/dev/null", what);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, dev))
			n++;
	pclose(f);
	return n;
}

/* The kB of @key ("Anonymous", ...) of the smaps entry that starts at @addr */
long smaps_kb(void *addr, const char *key)
{
	char line[256], want[32];
	size_t n = strlen(key);
	int in = 0;
	long v = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, ' ') &&
		    strchr(line, '-') < strchr(line, ' '))
			in = !strncmp(line, want, strlen(want));
		else if (in && !strncmp(line, key, n) && line[n] == ':')
			v = atol(line + n + 1);
	}
	fclose(f);
	return v;
}
