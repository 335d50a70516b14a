// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA FLUSH and ATOMIC WRITE (IBTA 1.5) on ODP memory regions, on a file of
 * a mounted file system (page cache or DAX) and on anonymous memory.
 *
 *   odp_flush [--dax] DEV FSLABEL MOUNTPOINT BLOCKDEV
 *
 * What is checked (TAP, one line a case, named "FSLABEL: ..."):
 * - ODP MRs register with the flush access rights (implicit ones refuse);
 * - after RDMA WRITE + FLUSH(persistent) the data is in the file's blocks
 *   on BLOCKDEV itself: the blocks are found with FIEMAP (no sync flag) and
 *   read from the raw device with O_DIRECT, so no page cache is involved
 *   and nothing but the FLUSH wrote them back; a WRITE without FLUSH is
 *   checked the same way not to be there yet (on the page cache), so the
 *   check can tell;
 * - FLUSH at MR level, global-visibility FLUSH;
 * - FLUSH of an unmapped or read-only range, persistent FLUSH of anonymous
 *   memory, FLUSH on an MR without flush rights: remote access error;
 * - 8-byte ATOMIC WRITE into a cold ODP page: the value is there, aligned,
 *   neighbours untouched; a misaligned one fails.
 *
 * rdma-core 44 (Debian 12) has no verb to post a FLUSH, so this test posts it
 * on a QP of its own: created with ibv_cmd_create_qp(), its send queue
 * mapped and the FLUSH work request written in the rxe ABI
 * (rdma/rdma_user_rxe.h of Linux 6.12), then rung with a doorbell
 * (ibv_cmd_post_send() with no work request, as the rxe provider does).
 * ATOMIC WRITE goes through rdma-core (ibv_wr_atomic_write()).
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "pattern.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rdma_user_rxe.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB		(1024UL * 1024)
#define FILE_LEN	(4 * MiB)

/* Linux 6.12 uapi (ib_user_verbs.h, rdma_user_rxe.h), not in Debian 12's headers */
#define T_ACCESS_FLUSH_GLOBAL		(1 << 8)
#define T_ACCESS_FLUSH_PERSISTENT	(1 << 9)
#define T_WR_FLUSH			14
#define T_FLUSH_GLOBAL			1
#define T_FLUSH_PERSISTENT		2
#define T_FLUSH_RANGE			0
#define T_FLUSH_MR			1

/* The flush member of struct rxe_send_wr.wr (Linux 6.12 rdma_user_rxe.h) */
struct t_flush_wr {
	uint64_t remote_addr;
	uint32_t length;
	uint32_t rkey;
	uint8_t type;
	uint8_t level;
};

/* libibverbs' driver interface (driver.h is not installed) */
struct ibv_create_qp;
struct ibv_post_send;
int ibv_cmd_create_qp(struct ibv_pd *pd, struct ibv_qp *qp,
		      struct ibv_qp_init_attr *attr, struct ibv_create_qp *cmd,
		      size_t cmd_size, struct ib_uverbs_create_qp_resp *resp,
		      size_t resp_size);
int ibv_cmd_destroy_qp(struct ibv_qp *qp);

static const char *label, *mnt, *blockdev;
static int dax;
static long page_size;
static struct rdma_ctx r;
static unsigned char *lbuf;
static struct ibv_mr *lmr;

static void check(bool ok, const char *what)
{
	tap(ok, "%s: %s", label, what);
}

/* ---- a QP that can post FLUSH: the requester side ---- */

struct fqp {
	struct ibv_qp qp;
	struct rxe_queue_buf *sq;
	size_t sq_size;
};

static int fqp_create(struct fqp *f)
{
	struct ibv_qp_init_attr attr = {
		.send_cq = r.cq, .recv_cq = r.cq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 16, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_create_qp core;
	} cmd;
	struct {
		struct ib_uverbs_create_qp_resp core;
		struct rxe_create_qp_resp drv;
	} resp;

	memset(f, 0, sizeof(*f));
	memset(&cmd, 0, sizeof(cmd));
	memset(&resp, 0, sizeof(resp));
	if (ibv_cmd_create_qp(r.pd, &f->qp, &attr, (struct ibv_create_qp *)&cmd,
			      sizeof(cmd), &resp.core, sizeof(resp))) {
		tap_diag("ibv_cmd_create_qp: %s", strerror(errno));
		return -1;
	}
	f->sq = mmap(NULL, resp.drv.sq_mi.size, PROT_READ | PROT_WRITE, MAP_SHARED,
		     r.ctx->cmd_fd, resp.drv.sq_mi.offset);
	if (f->sq == MAP_FAILED) {
		tap_diag("mmap of the send queue: %s", strerror(errno));
		f->sq = NULL;
		ibv_cmd_destroy_qp(&f->qp);
		return -1;
	}
	f->sq_size = resp.drv.sq_mi.size;
	return 0;
}

static void fqp_destroy(struct fqp *f)
{
	if (f->sq)
		munmap(f->sq, f->sq_size);
	ibv_cmd_destroy_qp(&f->qp);
}

/* The doorbell: a POST_SEND command without work requests */
static int fqp_doorbell(struct fqp *f)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_post_send core;
	} cmd;
	struct ib_uverbs_post_send_resp resp;

	memset(&cmd, 0, sizeof(cmd));
	cmd.hdr.command = IB_USER_VERBS_CMD_POST_SEND;
	cmd.hdr.in_words = sizeof(cmd) / 4;
	cmd.hdr.out_words = sizeof(resp) / 4;
	cmd.core.response = (uintptr_t)&resp;
	cmd.core.qp_handle = f->qp.handle;
	cmd.core.wqe_size = sizeof(struct ibv_send_wr);
	return write(r.ctx->cmd_fd, &cmd, sizeof(cmd)) == sizeof(cmd) ? 0 : -1;
}

static int fqp_post_flush(struct fqp *f, uint64_t raddr, uint32_t rkey,
			  uint32_t len, int type, int level)
{
	_Atomic uint32_t *producer = (_Atomic uint32_t *)&f->sq->producer_index;
	_Atomic uint32_t *consumer = (_Atomic uint32_t *)&f->sq->consumer_index;
	uint32_t prod = atomic_load_explicit(producer, memory_order_relaxed);
	uint32_t cons = atomic_load_explicit(consumer, memory_order_acquire);
	struct t_flush_wr fl = {
		.remote_addr = raddr, .length = len, .rkey = rkey,
		.type = type, .level = level,
	};
	struct rxe_send_wqe *wqe;

	_Static_assert(sizeof(fl) <= sizeof(wqe->wr.wr), "flush fits the wr union");
	if (((prod + 1) & f->sq->index_mask) == (cons & f->sq->index_mask))
		return -1;
	wqe = (void *)(f->sq->data + ((size_t)(prod & f->sq->index_mask) <<
				      f->sq->log2_elem_size));
	memset(wqe, 0, sizeof(*wqe));
	wqe->wr.wr_id = 7;
	wqe->wr.opcode = T_WR_FLUSH;
	wqe->wr.send_flags = IBV_SEND_SIGNALED;
	memcpy(&wqe->wr.wr, &fl, sizeof(fl));
	wqe->iova = raddr;
	wqe->dma.length = len;
	wqe->dma.resid = len;
	atomic_store_explicit(producer, (prod + 1) & f->sq->index_mask,
			      memory_order_release);
	return fqp_doorbell(f);
}

/* The responder: an ordinary QP with the flush rights */
struct link {
	struct fqp f;
	struct ibv_qp *resp;
	struct ibv_qp *req;	/* through rdma-core: WRITE, ATOMIC WRITE */
	struct ibv_qp *resp2;
};

static struct ibv_qp *create_rc(bool atomic_write)
{
	struct ibv_qp_init_attr_ex attr = {
		.send_cq = r.cq, .recv_cq = r.cq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 16, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.comp_mask = IBV_QP_INIT_ATTR_PD,
		.pd = r.pd,
	};

	if (atomic_write) {
		attr.comp_mask |= IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
		attr.send_ops_flags = IBV_QP_EX_WITH_RDMA_WRITE |
				      IBV_QP_EX_WITH_ATOMIC_WRITE;
	}
	return ibv_create_qp_ex(r.ctx, &attr);
}

static const int resp_access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
	IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC |
	T_ACCESS_FLUSH_GLOBAL | T_ACCESS_FLUSH_PERSISTENT;

static int link_up(struct link *l)
{
	memset(l, 0, sizeof(*l));
	if (fqp_create(&l->f))
		return -1;
	l->resp = create_rc(false);
	l->req = create_rc(true);
	l->resp2 = create_rc(false);
	if (!l->resp || !l->req || !l->resp2 ||
	    rdma_qp_init(&r, &l->f.qp, IBV_ACCESS_LOCAL_WRITE) ||
	    rdma_qp_init(&r, l->resp, resp_access) ||
	    rdma_qp_init(&r, l->req, IBV_ACCESS_LOCAL_WRITE) ||
	    rdma_qp_init(&r, l->resp2, resp_access) ||
	    rdma_qp_connect(&r, &l->f.qp, l->resp->qp_num) ||
	    rdma_qp_connect(&r, l->resp, l->f.qp.qp_num) ||
	    rdma_qp_connect(&r, l->req, l->resp2->qp_num) ||
	    rdma_qp_connect(&r, l->resp2, l->req->qp_num)) {
		tap_diag("QPs: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void link_down(struct link *l)
{
	if (l->resp)
		ibv_destroy_qp(l->resp);
	if (l->req)
		ibv_destroy_qp(l->req);
	if (l->resp2)
		ibv_destroy_qp(l->resp2);
	fqp_destroy(&l->f);
}

/* One FLUSH on a fresh link; returns the completion status, -1 if none. */
static int flush(uint64_t raddr, uint32_t rkey, uint32_t len, int type, int level)
{
	struct link l;
	int st = -1;

	if (!link_up(&l) && !fqp_post_flush(&l.f, raddr, rkey, len, type, level))
		st = rdma_complete(&r, 1);
	link_down(&l);
	if (st)
		tap_diag("FLUSH type %d level %d of %#" PRIx64 "+%u: status %d (%s)", type,
		     level, raddr, len, st, st < 0 ? "none" : ibv_wc_status_str(st));
	return st;
}

static int write_or_atomic(bool atomic, uint64_t raddr, uint32_t rkey,
			   size_t len, uint64_t value)
{
	struct ibv_qp_ex *qpx;
	struct link l;
	int st = -1;

	if (!link_up(&l)) {
		qpx = ibv_qp_to_qp_ex(l.req);
		ibv_wr_start(qpx);
		qpx->wr_id = 9;
		qpx->wr_flags = IBV_SEND_SIGNALED;
		if (atomic) {
			ibv_wr_atomic_write(qpx, rkey, raddr, &value);
		} else {
			ibv_wr_rdma_write(qpx, rkey, raddr);
			ibv_wr_set_sge(qpx, lmr->lkey, (uintptr_t)lbuf, len);
		}
		if (!ibv_wr_complete(qpx))
			st = rdma_complete(&r, 1);
	}
	link_down(&l);
	if (st)
		tap_diag("%s of %#" PRIx64 "+%zu: status %d (%s)",
		     atomic ? "ATOMIC WRITE" : "RDMA WRITE", raddr, len, st,
		     st < 0 ? "none" : ibv_wc_status_str(st));
	return st;
}

static bool rdma_write(struct ibv_mr *mr, unsigned char *base, unsigned int seed,
		       uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		lbuf[i] = pat(seed, off + i);
	return write_or_atomic(false, (uintptr_t)base + off, mr->rkey, len, 0) ==
	       IBV_WC_SUCCESS;
}

/*
 * Read [off, off + len) of the file at @fd from the raw block device, where
 * FIEMAP (without FIEMAP_FLAG_SYNC) says its blocks are.  False if a block
 * is not allocated yet (delayed allocation): it is not on the device.
 */
static bool read_raw(int fd, uint64_t off, size_t len, unsigned char *out)
{
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[64];
	} q;
	int dev = open(blockdev, O_RDONLY | O_DIRECT);
	size_t done = 0;
	bool ok = dev >= 0;

	while (ok && done < len) {
		uint64_t pos = off + done, phys, n;
		struct fiemap_extent *e = NULL;

		memset(&q, 0, sizeof(q));
		q.fm.fm_start = pos;
		q.fm.fm_length = len - done;
		q.fm.fm_extent_count = 64;
		if (ioctl(fd, FS_IOC_FIEMAP, &q.fm)) {
			tap_diag("FIEMAP: %s", strerror(errno));
			ok = false;
			break;
		}
		for (unsigned int i = 0; i < q.fm.fm_mapped_extents; i++)
			if (q.ext[i].fe_logical <= pos &&
			    pos < q.ext[i].fe_logical + q.ext[i].fe_length)
				e = &q.ext[i];
		if (!e || e->fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |
					 FIEMAP_EXTENT_UNWRITTEN)) {
			tap_diag("file offset %" PRIu64 " has no written block on %s (flags %#x)",
			     pos, blockdev, e ? e->fe_flags : 0);
			ok = false;
			break;
		}
		phys = e->fe_physical + (pos - e->fe_logical);
		n = e->fe_logical + e->fe_length - pos;
		if (n > len - done)
			n = len - done;
		/* O_DIRECT: whole pages, aligned */
		if ((phys | n) % page_size) {
			tap_diag("unaligned extent");
			ok = false;
			break;
		}
		if (pread(dev, out + done, n, phys) != (ssize_t)n) {
			tap_diag("pread %s: %s", blockdev, strerror(errno));
			ok = false;
		}
		done += n;
	}
	if (dev >= 0)
		close(dev);
	return ok;
}

static int open_file(const char *name, unsigned int seed, unsigned char **map,
		     struct ibv_mr **mr, int access)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", mnt, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	for (size_t off = 0; off < FILE_LEN; off++)
		lbuf[off] = pat(seed, off);
	if (pwrite(fd, lbuf, FILE_LEN, 0) != (ssize_t)FILE_LEN || fsync(fd))
		goto err;
	*map = mmap(NULL, FILE_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map == MAP_FAILED)
		goto err;
	*mr = ibv_reg_mr(r.pd, *map, FILE_LEN, access);
	if (!*mr) {
		tap_diag("ibv_reg_mr(ODP, access %#x): %s", access, strerror(errno));
		munmap(*map, FILE_LEN);
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

static const int odp_flush_access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
	IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_ON_DEMAND |
	T_ACCESS_FLUSH_GLOBAL | T_ACCESS_FLUSH_PERSISTENT;

static void cases_file(void)
{
	unsigned char *map = NULL, *raw = NULL;
	struct ibv_mr *mr = NULL, *mr2;
	uint64_t v = 0x0123456789abcdefULL, w;
	int fd, st;
	bool ok;

	fd = open_file("flush", 1, &map, &mr, odp_flush_access);
	ok = fd >= 0;
	check(ok, "ODP MR of a shared file mapping registers with FLUSH_GLOBAL and FLUSH_PERSISTENT");
	if (!ok)
		return;
	if (posix_memalign((void **)&raw, page_size, FILE_LEN))
		raw = NULL;

	/* WRITE, FLUSH(persistent, range): the data is in the file's blocks. */
	ok = raw && rdma_write(mr, map, 2, MiB, MiB) &&
	     flush((uintptr_t)map + MiB, mr->rkey, MiB, T_FLUSH_PERSISTENT,
		   T_FLUSH_RANGE) == IBV_WC_SUCCESS &&
	     read_raw(fd, MiB, MiB, raw) && same(raw, 2, MiB, MiB, "raw device after FLUSH");
	check(ok, dax ? "RDMA WRITE + FLUSH(persistent) completes; the data is in the file's pmem blocks" :
			"RDMA WRITE + FLUSH(persistent): the data is on the disk (raw device, FIEMAP)");

	/* Without FLUSH the disk still has the old data: the check can tell. */
	ok = raw && rdma_write(mr, map, 3, 2 * MiB, MiB);
	if (!dax) {
		ok = ok && read_raw(fd, 2 * MiB, MiB, raw) &&
		     same(raw, 1, 2 * MiB, MiB, "raw device without FLUSH");
		check(ok, "control: RDMA WRITE without FLUSH is not on the disk yet");
	}

	/* FLUSH at MR level (the whole MR), both types at once */
	ok = flush((uintptr_t)map, mr->rkey, 0, T_FLUSH_PERSISTENT | T_FLUSH_GLOBAL,
		   T_FLUSH_MR) == IBV_WC_SUCCESS &&
	     read_raw(fd, 0, FILE_LEN, raw) && same(raw, 1, 0, MiB, "MR flush, first MiB") &&
	     same(raw + MiB, 2, MiB, MiB, "MR flush, second") &&
	     same(raw + 2 * MiB, 3, 2 * MiB, MiB, "MR flush, third");
	check(ok, "FLUSH(persistent) at MR level: every written byte is in the file's blocks");

	ok = flush((uintptr_t)map + 3 * MiB, mr->rkey, MiB, T_FLUSH_GLOBAL,
		   T_FLUSH_RANGE) == IBV_WC_SUCCESS;
	check(ok, "FLUSH(global visibility) of a mapped range completes");

	/* ATOMIC WRITE into a page the mirror does not hold (cold) */
	madvise(map, FILE_LEN, MADV_DONTNEED);
	st = write_or_atomic(true, (uintptr_t)map + 3 * MiB + 8 * 37, mr->rkey, 8, v);
	memcpy(&w, map + 3 * MiB + 8 * 37, 8);
	ok = st == IBV_WC_SUCCESS && w == v &&
	     same(map + 3 * MiB, 1, 3 * MiB, 8 * 37, "before the atomic word") &&
	     same(map + 3 * MiB + 8 * 38, 1, 3 * MiB + 8 * 38, 64, "after the atomic word");
	if (st == IBV_WC_SUCCESS && w != v)
		tap_diag("the word is %#" PRIx64 ", expected %#" PRIx64, w, v);
	check(ok, "8-byte ATOMIC WRITE into a cold ODP page: the value, aligned, neighbours untouched");

	ok = ok && flush((uintptr_t)map + 3 * MiB, mr->rkey, page_size,
			 T_FLUSH_PERSISTENT, T_FLUSH_RANGE) == IBV_WC_SUCCESS &&
	     read_raw(fd, 3 * MiB, page_size, raw) && !memcmp(raw + 8 * 37, &v, 8);
	check(ok, "ATOMIC WRITE + FLUSH(persistent): the word is in the file's block");

	st = write_or_atomic(true, (uintptr_t)map + 3 * MiB + 4, mr->rkey, 8, v);
	check(st == IBV_WC_REM_INV_REQ_ERR, "misaligned ATOMIC WRITE completes with a remote invalid request error");

	/* Read-only and unmapped pages inside the MR */
	ok = !mprotect(map + MiB, page_size, PROT_READ);
	st = ok ? flush((uintptr_t)map + MiB - page_size, mr->rkey, 3 * page_size,
			T_FLUSH_PERSISTENT, T_FLUSH_RANGE) : -1;
	check(st == IBV_WC_REM_ACCESS_ERR, "FLUSH(persistent) of a range with a read-only page: remote access error");
	st = ok ? flush((uintptr_t)map + MiB, mr->rkey, page_size, T_FLUSH_GLOBAL,
			T_FLUSH_RANGE) : -1;
	check(st == IBV_WC_REM_ACCESS_ERR, "FLUSH(global) of a read-only page: remote access error");
	ok = !munmap(map + 2 * MiB, page_size);
	st = ok ? flush((uintptr_t)map + 2 * MiB - 8, mr->rkey, 16, T_FLUSH_GLOBAL,
			T_FLUSH_RANGE) : -1;
	check(st == IBV_WC_REM_ACCESS_ERR, "FLUSH(global) of a range with an unmapped page: remote access error");
	st = ok ? flush((uintptr_t)map + 2 * MiB - 8, mr->rkey, 16, T_FLUSH_PERSISTENT,
			T_FLUSH_RANGE) : -1;
	check(st == IBV_WC_REM_ACCESS_ERR, "FLUSH(persistent) of a range with an unmapped page: remote access error");

	/* An ODP MR without the flush rights refuses FLUSH. */
	mr2 = ibv_reg_mr(r.pd, map, MiB, odp_flush_access &
			 ~(T_ACCESS_FLUSH_GLOBAL | T_ACCESS_FLUSH_PERSISTENT));
	st = mr2 ? flush((uintptr_t)map, mr2->rkey, page_size, T_FLUSH_GLOBAL,
			 T_FLUSH_RANGE) : -1;
	check(st == IBV_WC_REM_ACCESS_ERR, "FLUSH on an ODP MR without flush access: remote access error");
	if (mr2)
		ibv_dereg_mr(mr2);

	ibv_dereg_mr(mr);
	munmap(map, FILE_LEN);
	close(fd);
	free(raw);
}

static void cases_anon(void)
{
	unsigned char *p = mmap(NULL, MiB, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ibv_mr *mr;
	int st;

	mr = p == MAP_FAILED ? NULL : ibv_reg_mr(r.pd, p, MiB, odp_flush_access);
	check(mr, "anonymous ODP MR registers with the flush access rights");
	if (!mr)
		return;
	st = flush((uintptr_t)p, mr->rkey, MiB, T_FLUSH_GLOBAL, T_FLUSH_RANGE);
	check(st == IBV_WC_SUCCESS, "anonymous memory: FLUSH(global) completes");
	st = flush((uintptr_t)p, mr->rkey, MiB, T_FLUSH_PERSISTENT, T_FLUSH_RANGE);
	check(st == IBV_WC_REM_ACCESS_ERR, "anonymous memory: FLUSH(persistent) is a remote access error (nothing to persist to)");
	ibv_dereg_mr(mr);
	munmap(p, MiB);

	mr = ibv_reg_mr(r.pd, NULL, SIZE_MAX, odp_flush_access);
	check(!mr && errno == EOPNOTSUPP, "implicit ODP MR with flush access is refused (EOPNOTSUPP)");
	if (mr)
		ibv_dereg_mr(mr);
}

int main(int argc, char **argv)
{
	int a = 1;

	if (a < argc && !strcmp(argv[a], "--dax")) {
		dax = 1;
		a++;
	}
	if (argc - a < 4) {
		fprintf(stderr, "usage: %s [--dax] DEV FSLABEL MOUNTPOINT BLOCKDEV\n", argv[0]);
		return 2;
	}
	label = argv[a + 1];
	mnt = argv[a + 2];
	blockdev = argv[a + 3];
	page_size = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (rdma_open(&r, argv[a], 1)) {
		tap(false, "%s: open %s", label, argv[a]);
		return tap_done();
	}
	/* A persistent FLUSH waits for the disk. */
	r.qp_timeout = 18;
	lbuf = mmap(NULL, FILE_LEN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	lmr = lbuf == MAP_FAILED ? NULL : ibv_reg_mr(r.pd, lbuf, FILE_LEN, IBV_ACCESS_LOCAL_WRITE);
	if (!lmr) {
		tap(false, "%s: local buffer", label);
		return tap_done();
	}
	cases_file();
	cases_anon();
	ibv_dereg_mr(lmr);
	rdma_close(&r);
	return tap_done();
}
