// SPDX-License-Identifier: GPL-2.0
/*
 * Bad input on ODP: a table of invalid or hostile uses of on-demand paging,
 * each with the result the kernel must give and why (the code path that
 * gives it).  Prints TAP; exits 1 on any mismatch.
 *
 * RDMA to an unmapped or read-only page inside an ODP MR is covered by
 * odp_errors.c (t-odp-errors.sh) and is not repeated here.
 *
 *   odp_badinput [DEV] [--no-link-delete]
 *
 * The last case deletes rxe0 ("rdma link delete") during ODP traffic and
 * creates it again on eth0; it needs to run as root in the test VM.
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Kernel uAPI access bits that rdma-core 44's verbs.h does not name yet. */
#define ACCESS_FLUSH_GLOBAL	(1 << 8)
#define ACCESS_FLUSH_PERSISTENT	(1 << 9)

/* libibverbs' private command, not in the installed headers. */
int ibv_cmd_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
		      uint32_t flags, struct ibv_sge *sg_list, uint32_t num_sge);

#define ODP	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND)
#define PAGE	4096UL

static const char *dev_name = "rxe0";
static struct rdma_ctx r;
static const char *err_name(int e)
{
	static char buf[32];

	switch (e) {
	case 0: return "success";
	case EINVAL: return "EINVAL";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EFAULT: return "EFAULT";
	case ENOENT: return "ENOENT";
	case EPERM: return "EPERM";
	case ENOMEM: return "ENOMEM";
	case EIO: return "EIO";
	}
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

/* ---- registration ------------------------------------------------------ */

struct reg_case {
	const char *name;
	uintptr_t addr;		/* 0 with buf_off < 0: a NULL address */
	long buf_off;		/* >= 0: addr = buf + buf_off */
	uint64_t len;
	uint64_t iova_delta;	/* iova = addr + iova_delta */
	int access;
	int want;		/* errno, 0 for success */
	const char *why;
};

static unsigned char *buf, *huge;

static void reg_row(const struct reg_case *c, void *base)
{
	void *addr = c->buf_off >= 0 ? (unsigned char *)base + c->buf_off :
		     (void *)c->addr;
	struct ibv_mr *mr;
	int got;

	errno = 0;
	if (c->iova_delta)
		mr = ibv_reg_mr_iova(r.pd, addr, c->len,
				     (uintptr_t)addr + c->iova_delta, c->access);
	else
		mr = ibv_reg_mr(r.pd, addr, c->len, c->access);
	got = mr ? 0 : errno;
	if (mr)
		ibv_dereg_mr(mr);
	tap(got == c->want, "reg_mr %s: %s (want %s: %s)", c->name, err_name(got),
	    err_name(c->want), c->why);
}

static void registration(void)
{
	const struct reg_case cases[] = {
		{ "ODP, length 0", 0, 0, 0, 0, ODP, EINVAL,
		  "ib_umem_odp_get(): !size" },
		{ "ODP, address + length wraps", 0, 0, UINT64_MAX - PAGE, 0, ODP, EINVAL,
		  "ib_umem_odp_get(): check_add_overflow()" },
		{ "ODP, length SIZE_MAX at a non-zero address", 0, 0, UINT64_MAX, 0, ODP,
		  EINVAL, "not implicit (start != 0): explicit, and start + length wraps" },
		{ "ODP, end rounds up past the top of the address space", (uintptr_t)-PAGE + 1, -1,
		  PAGE - 2, 0, ODP, EINVAL,
		  "ib_umem_odp_init_range(): ALIGN(end) wraps" },
		{ "ODP, iova offset in page differs from address", 0, 0, PAGE, 1, ODP, EINVAL,
		  "ib_uverbs_reg_mr(): start and hca_va page offsets differ" },
		{ "ODP, remote write without local write", 0, 0, PAGE, 0,
		  IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND, EINVAL,
		  "ib_check_mr_access(): remote write/atomic needs local write" },
		{ "ODP, unknown access bit 1<<15", 0, 0, PAGE, 0, ODP | (1 << 15), EINVAL,
		  "ib_check_mr_access(): flags & ~IB_ACCESS_SUPPORTED" },
		{ "ODP + FLUSH_GLOBAL (positive)", 0, 0, PAGE, 0, ODP | ACCESS_FLUSH_GLOBAL, 0,
		  "explicit ODP MRs take FLUSH (rxe_odp_flush_iova())" },
		{ "ODP + FLUSH_PERSISTENT (positive)", 0, 0, PAGE, 0, ODP | ACCESS_FLUSH_PERSISTENT,
		  0, "explicit ODP MRs take FLUSH (rxe_odp_flush_iova())" },
		{ "implicit ODP + FLUSH_GLOBAL", 0, -1, UINT64_MAX, 0, ODP | ACCESS_FLUSH_GLOBAL,
		  EOPNOTSUPP, "rxe_odp_mr_init_user(): no flush of a whole address space" },
		{ "implicit ODP + FLUSH_PERSISTENT", 0, -1, UINT64_MAX, 0,
		  ODP | ACCESS_FLUSH_PERSISTENT, EOPNOTSUPP,
		  "rxe_odp_mr_init_user(): no flush of a whole address space" },
		{ "ODP + HUGETLB on small pages", 0, 0, 4 * PAGE, 0, ODP | IBV_ACCESS_HUGETLB,
		  EINVAL, "ib_umem_odp_hugetlb_shift(): VMA is not hugetlb" },
		{ "ODP + HUGETLB on an unmapped range", 0x10000, -1, 2 << 20, 0,
		  ODP | IBV_ACCESS_HUGETLB, EINVAL,
		  "ib_umem_odp_hugetlb_shift(): range not covered by VMAs" },
		{ "implicit ODP + HUGETLB", 0, -1, UINT64_MAX, 0, ODP | IBV_ACCESS_HUGETLB,
		  EINVAL, "ib_umem_odp_alloc_implicit(): IB_ACCESS_HUGETLB" },
		{ "ODP over an unmapped range (positive)", 0x10000, -1, 1 << 20, 0, ODP, 0,
		  "ODP pins nothing: the range is only checked when the device touches it" },
		{ "implicit ODP, address 0 and SIZE_MAX (positive)", 0, -1, UINT64_MAX, 0,
		  ODP, 0, "rxe_odp_mr_init_user(): the implicit MR" },
		{ "ODP at address 0 with a length other than SIZE_MAX", 0, -1, 1UL << 40, 0,
		  ODP, 0, "not implicit: an explicit ODP MR over [0, 1 TiB), legal (mlx5 does the same)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		reg_row(&cases[i], buf);

	if (huge) {
		const struct reg_case hc = {
			"ODP + HUGETLB on hugetlb pages (positive)", 0, 0, 4 << 20, 0,
			ODP | IBV_ACCESS_HUGETLB, 0,
			"ib_umem_odp_hugetlb_shift(): one hstate over the range" };
		const struct reg_case hc2 = {
			"ODP + HUGETLB, range runs past the hugetlb mapping", 0, 0, 8 << 20, 0,
			ODP | IBV_ACCESS_HUGETLB, EINVAL,
			"ib_umem_odp_hugetlb_shift(): next < end" };

		reg_row(&hc, huge);
		reg_row(&hc2, huge);
	} else {
		tap_skip("ODP + HUGETLB on hugetlb pages: no huge page available");
	}
}

/* ---- advise_mr --------------------------------------------------------- */

/*
 * ibv_advise_mr() stops in libibverbs when the provider has no advise_mr op
 * (rxe in rdma-core 44), so the command is sent directly.  rxe has
 * ->advise_mr (series entry 0020), so every row is asserted with its own
 * answer: a kernel that lost prefetch fails the valid row and every row
 * whose answer is not EOPNOTSUPP.
 */
struct advise_case {
	const char *name;
	int mr;			/* 0: ODP MR, 1: pinned MR, 2: bogus lkey */
	long off;
	uint32_t len;
	int advice;
	uint32_t flags;
	int want;
	const char *why;
};

static int advise(struct ibv_mr *mr, uint32_t lkey, long off, uint32_t len,
		  int advice, uint32_t flags)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)mr->addr + off, .length = len, .lkey = lkey,
	};
	int ret = ibv_cmd_advise_mr(r.pd, advice, flags, &sge, 1);

	/* the command returns an errno value; be tolerant of -errno too */
	return ret < 0 ? -ret : ret;
}

static void advise_rows(void)
{
	const int PF = IBV_ADVISE_MR_ADVICE_PREFETCH;
	const int PFW = IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE;
	const uint32_t FL = IBV_ADVISE_MR_FLAG_FLUSH;
	const struct advise_case cases[] = {
		{ "prefetch of a non-ODP MR", 1, 0, PAGE, PF, FL, EINVAL,
		  "only ODP MRs can be prefetched" },
		{ "prefetch past the end of the MR", 0, 15 * PAGE, 2 * PAGE, PF, FL, EINVAL,
		  "range outside the MR" },
		{ "prefetch before the start of the MR", 0, -(long)PAGE, PAGE, PFW, FL, EINVAL,
		  "range outside the MR" },
		{ "prefetch with an lkey that names no MR", 2, 0, PAGE, PF, FL, ENOENT,
		  "lkey lookup fails" },
		{ "unknown advice 7", 0, 0, PAGE, 7, FL, EOPNOTSUPP,
		  "advice is not PREFETCH, PREFETCH_WRITE or PREFETCH_NO_FAULT" },
		{ "unknown flag 1<<5", 0, 0, PAGE, PF, 1 << 5, EINVAL,
		  "uverbs_get_flags32(): flags must be a subset of the known ones" },
	};
	int acc = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
	struct ibv_mr *odp = ibv_reg_mr(r.pd, buf, 16 * PAGE, ODP);
	struct ibv_mr *pinned = ibv_reg_mr(r.pd, buf + 32 * PAGE, 16 * PAGE, acc);
	int ok_ret;

	if (!odp || !pinned) {
		tap(false, "advise_mr: setup failed");
		return;
	}
	ok_ret = advise(odp, odp->lkey, 0, 4 * PAGE, PFW, FL);
	tap(ok_ret == 0, "advise_mr valid PREFETCH_WRITE|FLUSH on an ODP MR: %s (want success: "
	    "rxe_ib_advise_mr() prefetches synchronously)", err_name(ok_ret));

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct advise_case *c = &cases[i];
		struct ibv_mr *mr = c->mr == 1 ? pinned : odp;
		uint32_t lkey = c->mr == 2 ? 0xdead00 : mr->lkey;
		int got = advise(mr, lkey, c->off, c->len, c->advice, c->flags);

		tap(got == c->want, "advise_mr %s: %s (want %s: %s)", c->name,
		    err_name(got), err_name(c->want), c->why);
	}
	ibv_dereg_mr(odp);
	ibv_dereg_mr(pinned);
}

/* ---- teardown while work is in flight ---------------------------------- */

#define BIG	(64UL << 20)

struct odp_buf {
	unsigned char *p;
	size_t len;
	struct ibv_mr *mr;
};

static int odp_buf_new(struct rdma_ctx *c, struct odp_buf *b, size_t len)
{
	b->len = len;
	b->p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (b->p == MAP_FAILED)
		return -1;
	b->mr = ibv_reg_mr(c->pd, b->p, len, ODP | IBV_ACCESS_REMOTE_ATOMIC);
	return b->mr ? 0 : -1;
}

static void odp_buf_free(struct odp_buf *b)
{
	if (b->mr)
		ibv_dereg_mr(b->mr);
	if (b->p && b->p != MAP_FAILED)
		munmap(b->p, b->len);
	memset(b, 0, sizeof(*b));
}

/* A new QP pair on @c moves 1 MiB correctly. */
static bool still_works(struct rdma_ctx *c)
{
	struct odp_buf a = {}, b = {};
	struct rdma_pair p = {};
	bool ok = false;

	if (!odp_buf_new(c, &a, 1 << 20) && !odp_buf_new(c, &b, 1 << 20) &&
	    !rdma_pair_create(c, &p)) {
		memset(a.p, 0x6b, 1 << 20);
		ok = !rdma_post_rw(&p, IBV_WR_RDMA_WRITE, a.p, a.mr->lkey,
				   (uintptr_t)b.p, b.mr->rkey, 1 << 20) &&
		     rdma_complete(c, 1) == 0 && !memcmp(a.p, b.p, 1 << 20);
	}
	rdma_pair_destroy(&p);
	odp_buf_free(&a);
	odp_buf_free(&b);
	return ok;
}

/* Post @n big WRITEs from @src to @dst; returns how many were posted. */
static int post_big(struct rdma_pair *p, struct odp_buf *src, struct odp_buf *dst, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		size_t len = src->len / n;

		if (rdma_post_rw(p, IBV_WR_RDMA_WRITE, src->p + i * len, src->mr->lkey,
				 (uintptr_t)dst->p + i * len, dst->mr->rkey, len))
			break;
	}
	return i;
}

/* Poll @n completions or until @ms; returns the number seen, statuses in @st. */
static int poll_n(struct rdma_ctx *c, int n, int ms, int *worst)
{
	long end = now_ms() + ms;
	struct ibv_wc wc;
	int seen = 0;

	*worst = 0;
	while (seen < n && now_ms() < end) {
		int k = ibv_poll_cq(c->cq, 1, &wc);

		if (k < 0)
			break;
		if (k == 0) {
			usleep(1000);
			continue;
		}
		seen++;
		if (wc.status && !*worst)
			*worst = wc.status;
	}
	return seen;
}

static void dereg_during_faults(void)
{
	struct odp_buf src = {}, dst = {};
	struct rdma_pair p = {};
	int posted, seen, worst, ret;
	long t0;

	if (odp_buf_new(&r, &src, BIG) || odp_buf_new(&r, &dst, BIG) ||
	    rdma_pair_create(&r, &p)) {
		tap(false, "dereg during faults: setup failed");
		goto out;
	}
	posted = post_big(&p, &src, &dst, 8);
	usleep(20000);	/* let the responder start faulting */
	t0 = now_ms();
	ret = ibv_dereg_mr(dst.mr);
	dst.mr = NULL;
	tap(ret == 0 && now_ms() - t0 < teardown_bound_ms(),
	    "dereg of the remote ODP MR while 8 x 8 MiB writes fault it: %s in %ld ms (want success within "
	    "%ld ms, below rxe's %d ms forced clean-up: the MR is destroyed once the responder drops its "
	    "reference; later packets find no MR)",
	    err_name(ret), now_ms() - t0, teardown_bound_ms(), RXE_FORCED_CLEANUP_MS);
	seen = poll_n(&r, posted, teardown_bound_ms(), &worst);
	tap(seen == posted && (worst == 0 || worst == IBV_WC_REM_ACCESS_ERR ||
			       worst == IBV_WC_WR_FLUSH_ERR),
	    "the writes in flight all complete: %d of %d, worst status %s (want success or remote access error)",
	    seen, posted, ibv_wc_status_str(worst));
	ret = ibv_dereg_mr(src.mr);
	src.mr = NULL;
	tap(ret == 0, "dereg of the local ODP MR afterwards: %s", err_name(ret));
out:
	rdma_pair_destroy(&p);
	odp_buf_free(&src);
	odp_buf_free(&dst);
	tap(still_works(&r), "device still moves data after dereg during faults");
}

static void qp_destroy_during_faults(void)
{
	struct odp_buf src = {}, dst = {};
	struct rdma_pair p = {};
	int ra, rb, worst;
	long t0;

	if (odp_buf_new(&r, &src, BIG) || odp_buf_new(&r, &dst, BIG) ||
	    rdma_pair_create(&r, &p)) {
		tap(false, "QP destroy during faults: setup failed");
		goto out;
	}
	post_big(&p, &src, &dst, 8);
	usleep(20000);
	t0 = now_ms();
	ra = ibv_destroy_qp(p.a);
	rb = ibv_destroy_qp(p.b);
	p.a = p.b = NULL;
	tap(ra == 0 && rb == 0 && now_ms() - t0 < teardown_bound_ms(),
	    "destroy both QPs while their writes fault ODP pages: %s, %s in %ld ms (want success within "
	    "%ld ms, below rxe's %d ms forced clean-up: rxe_destroy_qp() stops the QP tasks, a fault in "
	    "progress ends first)",
	    err_name(ra), err_name(rb), now_ms() - t0, teardown_bound_ms(), RXE_FORCED_CLEANUP_MS);
	/* completions of a destroyed QP may or may not have been queued */
	poll_n(&r, 64, 200, &worst);
out:
	rdma_pair_destroy(&p);
	odp_buf_free(&src);
	odp_buf_free(&dst);
	tap(still_works(&r), "device still moves data after QP destruction during faults");
}

static void exit_with_work_pending(void)
{
	int mrs0 = rdma_res_count(dev_name, "mr"), qps0 = rdma_res_count(dev_name, "qp"), mrs1, qps1, mrs_mid = -1, status;
	int ready[2], go[2];
	long t_exit;
	pid_t pid;
	char c1 = 0;

	if (pipe(ready) || pipe(go)) {
		tap(false, "process exit with work pending: pipe");
		return;
	}
	pid = fork();

	if (pid == 0) {
		struct rdma_ctx c;
		struct odp_buf src = {}, dst = {};
		struct rdma_pair p = {};

		if (rdma_open(&c, dev_name, 1) || odp_buf_new(&c, &src, BIG) ||
		    odp_buf_new(&c, &dst, BIG) || rdma_pair_create(&c, &p))
			_exit(2);
		post_big(&p, &src, &dst, 16);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c1, 1) != 1)
			_exit(3);
		_exit(0);	/* no cleanup: the kernel must do it */
	}
	if (read(ready[0], &c1, 1) == 1)
		mrs_mid = rdma_res_count(dev_name, "mr");
	if (write(go[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	t_exit = now_ms();	/* the child exits now: its teardown is bounded like ours */
	while (waitpid(pid, &status, WNOHANG) == 0 && now_ms() - t_exit < teardown_bound_ms())
		usleep(10000);
	t_exit = now_ms() - t_exit;
	if (t_exit >= teardown_bound_ms()) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		tap(false, "process exit with 16 ODP writes in flight: not reaped within %ld ms "
		    "(rxe's forced clean-up takes %d ms)", teardown_bound_ms(), RXE_FORCED_CLEANUP_MS);
		return;
	}
	/* uverbs cleanup of the dead process's objects is synchronous */
	mrs1 = rdma_res_count(dev_name, "mr");
	qps1 = rdma_res_count(dev_name, "qp");
	tap(WIFEXITED(status) && WEXITSTATUS(status) == 0 && mrs_mid == mrs0 + 2 &&
	    mrs1 == mrs0 && qps1 == qps0,
	    "process exit with 16 ODP writes in flight: exit status %d in %ld ms, MRs %d -> %d (child) -> %d, "
	    "QPs %d -> %d (want 0 within %ld ms and no MR or QP left: ib_uverbs_close() destroys them)",
	    WIFEXITED(status) ? WEXITSTATUS(status) : -1, t_exit, mrs0, mrs_mid, mrs1, qps0, qps1,
	    teardown_bound_ms());
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	tap(still_works(&r), "device still moves data after the process died with work pending");
}

/* ---- rdma link delete during traffic ------------------------------------ */

struct traffic {
	struct rdma_ctx *c;
	struct rdma_pair *p;
	struct odp_buf *src, *dst;
	volatile bool stop;
	long ops, errors;
};

static void *traffic_main(void *arg)
{
	struct traffic *t = arg;
	struct ibv_wc wc;

	while (!t->stop) {
		if (rdma_post_rw(t->p, IBV_WR_RDMA_WRITE, t->src->p, t->src->mr->lkey,
				 (uintptr_t)t->dst->p, t->dst->mr->rkey, 1 << 20)) {
			t->errors++;
			usleep(10000);
			continue;
		}
		if (rdma_wait(t->c, &wc, 5000) != 0)
			t->errors++;
		else
			t->ops++;
		/* the next write faults again */
		madvise(t->dst->p, 1 << 20, MADV_DONTNEED);
	}
	return NULL;
}

static bool dev_exists(void)
{
	struct stat st;
	char path[128];

	snprintf(path, sizeof(path), "/sys/class/infiniband/%s", dev_name);
	return !stat(path, &st);
}

/*
 * Wait at most @ms for an async event of @type on @ctx; returns whether it came.
 * Other events (port changes, QP errors as the device goes) are acknowledged
 * and skipped.
 */
static bool async_event_within(struct ibv_context *ctx, enum ibv_event_type type, long ms)
{
	struct ibv_async_event ev;
	long t0 = now_ms();
	int fl = fcntl(ctx->async_fd, F_GETFL);

	fcntl(ctx->async_fd, F_SETFL, fl | O_NONBLOCK);
	while (now_ms() - t0 < ms) {
		if (ibv_get_async_event(ctx, &ev)) {
			usleep(10000);
			continue;
		}
		ibv_ack_async_event(&ev);
		printf("# async event: %s\n", ibv_event_type_str(ev.event_type));
		if (ev.event_type == type)
			return true;
	}
	return false;
}

/*
 * rxe0 goes away while a process has ODP traffic on it and keeps its
 * context open: the delete must finish without waiting for the process
 * (rxe disassociates the context), the process must learn it from
 * IB_EVENT_DEVICE_FATAL and EIO, and its own clean-up afterwards (which
 * unmaps the queue rings of a device already freed) must be clean.
 */
static void link_delete_during_traffic(void)
{
	struct rdma_ctx c;
	struct odp_buf src = {}, dst = {};
	struct rdma_pair p = {};
	struct traffic t = { .c = &c, .p = &p, .src = &src, .dst = &dst };
	long bound = teardown_bound_ms(), took = -1, ops;
	int status = -1, ret;
	bool done = false, fatal;
	pthread_t th;
	pid_t pid;
	long t0;

	if (rdma_open(&c, dev_name, 1) || odp_buf_new(&c, &src, 1 << 20) ||
	    odp_buf_new(&c, &dst, 1 << 20) || rdma_pair_create(&c, &p)) {
		tap(false, "link delete: setup failed");
		return;
	}
	pthread_create(&th, NULL, traffic_main, &t);
	/* delete once ODP writes are moving (each one faults its target) */
	t0 = now_ms();
	while (!t.ops && now_ms() - t0 < bound)
		usleep(10000);
	usleep(100000);
	ops = t.ops;

	pid = fork();
	if (pid == 0) {
		execlp("rdma", "rdma", "link", "delete", dev_name, (char *)NULL);
		_exit(127);
	}
	t0 = now_ms();
	while (now_ms() - t0 < bound) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			done = true;
			took = now_ms() - t0;
			break;
		}
		usleep(10000);
	}
	fatal = async_event_within(c.ctx, IBV_EVENT_DEVICE_FATAL, 5000);
	t.stop = true;
	pthread_join(th, NULL);
	printf("# traffic: %ld writes before the delete, %ld in all, %ld failed\n",
	       ops, t.ops, t.errors);
	tap(ops > 0, "ODP writes move before the delete: %ld", ops);
	tap(done && WIFEXITED(status) && WEXITSTATUS(status) == 0 && !dev_exists(),
	    "rdma link delete %s during ODP traffic, context still open: %s in %ld ms "
	    "(want exit 0 and the device gone within %ld ms, without waiting for the process)",
	    dev_name, done ? (WIFEXITED(status) && !WEXITSTATUS(status) ? "exit 0" : "failed")
			   : "still waiting", took, bound);
	tap(fatal, "the process gets IB_EVENT_DEVICE_FATAL");
	ret = rdma_post_rw(&p, IBV_WR_RDMA_WRITE, src.p, src.mr->lkey,
			   (uintptr_t)dst.p, dst.mr->rkey, PAGE);
	tap(ret == EIO, "RDMA WRITE posted after the delete: %s (want EIO)", err_name(ret));
	/* libibverbs takes EIO from a destroy as success: the object is gone */
	rdma_pair_destroy(&p);
	odp_buf_free(&src);
	odp_buf_free(&dst);
	/* unmaps the rings of a freed device: the harness fails on any kernel report */
	rdma_close(&c);
	if (!done) {
		/* without disassociation the delete goes on once the file is closed */
		t0 = now_ms();
		while (now_ms() - t0 < 60000 && waitpid(pid, &status, WNOHANG) != pid)
			usleep(10000);
		if (dev_exists()) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
	}

	ret = system("rdma link add rxe0 type rxe netdev eth0");
	t0 = now_ms();
	while (now_ms() - t0 < 10000 && system("rdma link show rxe0/1 2>/dev/null | grep -q ACTIVE"))
		usleep(100000);
	tap(ret == 0 && dev_exists(), "rdma link add rxe0 type rxe netdev eth0 again: %s",
	    ret == 0 ? "ok" : "failed");
	if (rdma_open(&c, "rxe0", 1)) {
		tap(false, "the new rxe0 opens");
		return;
	}
	tap(still_works(&c), "the new rxe0 moves data through ODP MRs");
	rdma_close(&c);
}

int main(int argc, char **argv)
{
	bool link_delete = true;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-link-delete"))
			link_delete = false;
		else
			dev_name = argv[i];
	}
	if (rdma_open(&r, dev_name, 1)) {
		printf("not ok 1 open %s\n1..1\n", dev_name);
		return 1;
	}
	buf = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(buf, 1, 64 * PAGE);
	huge = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (huge == MAP_FAILED)
		huge = NULL;
	else
		memset(huge, 2, 4 << 20);

	printf("# RDMA to unmapped or read-only pages inside ODP MRs: see odp_errors (t-odp-errors.sh)\n");
	registration();
	advise_rows();
	dereg_during_faults();
	qp_destroy_during_faults();
	exit_with_work_pending();
	rdma_close(&r);
	if (link_delete && !strcmp(dev_name, "rxe0"))
		link_delete_during_traffic();
	return tap_done();
}
