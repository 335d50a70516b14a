// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile input to ODP memory regions, as an unprivileged process could
 * give it (issue 12): every case must end in a clean completion status or
 * errno, within a time bound, with kernel memory bounded by what is really
 * mirrored and charged to the process's memory cgroup.  Prints TAP.
 *
 *   odp_hostile [DEVICE [CASE...]]    (all cases when none is named)
 *
 * Bounds.  A hang is detected with BOUND_MS: it sits well below rxe's 50 s
 * forced clean-up of objects still referenced (__rxe_cleanup()), so a
 * destroy or deregistration that only returns because of that time-out
 * fails here, and above the longest a single fault may legitimately take
 * (the 3 s busy-retry budget of rxe_odp_fault() plus hmm_mirror_fault()'s
 * own 1 s retry time-out).
 *
 * Cases:
 *   top     WRs and prefetches crossing the end of an implicit MR at the top
 *           of the user address space (TASK_SIZE is not 2 MiB-aligned)
 *   slab    PREFETCH_NO_FAULT of 4 GiB SGEs over an unmapped 1 TiB MR: no
 *           kernel memory kept
 *   memcg   mirror memory is charged to the owner's memory cgroup, freed
 *           with it, and its limit holds
 *   write1  a 1-byte RDMA WRITE into a shared / private file mapping
 *           allocates, writes and copies exactly one page
 *   uffd    WRs into a userfaultfd range nobody serves
 *   livelock a thread unmapping the target of RDMA WRITEs in a loop
 *   kill    SIGKILL of a process with WRs in flight into such a range
 *   qpqueue destroying QPs with RDMA READs of 2 GiB queued at them
 *   fork    fork() of a THP mirrored by two MRs, then COW of every page
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "tap.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

#define BOUND_MS	10000
#define ODP_ALL		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC | \
			 IBV_ACCESS_ON_DEMAND)
/* x86-64 TASK_SIZE with 4-level paging: the end of an implicit MR's umem */
#define TOP		0x7ffffffff000UL
#define BLOCK		(2UL << 20)	/* rxe's read-fault block */
#define CGROOT		"/sys/fs/cgroup"
#define CG		CGROOT "/odp_hostile"

static const char *dev = "rxe0";
static long page;
static struct rdma_ctx r;

static const char *st_str(int st)
{
	return st < 0 ? "no completion" : ibv_wc_status_str(st);
}

static struct ibv_mr *reg_implicit(void)
{
	return ibv_reg_mr(r.pd, NULL, SIZE_MAX, ODP_ALL);
}

/* An anonymous buffer of @len bytes filled with @fill, with an ODP MR */
struct buf {
	unsigned char *p;
	size_t len;
	struct ibv_mr *mr;
};

static int buf_new(struct buf *b, size_t len, int fill)
{
	b->len = len;
	b->p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->p == MAP_FAILED) {
		b->p = NULL;
		return -1;
	}
	memset(b->p, fill, len);
	b->mr = ibv_reg_mr(r.pd, b->p, len, ODP_ALL);
	return b->mr ? 0 : -1;
}

static void buf_free(struct buf *b)
{
	if (b->mr)
		ibv_dereg_mr(b->mr);
	if (b->p)
		munmap(b->p, b->len);
	memset(b, 0, sizeof(*b));
}

/* Destroy a pair and deregister an MR, each within BOUND_MS; report both */
static void teardown_bounded(const char *what, struct rdma_pair *p,
			     struct ibv_mr *mr)
{
	long t0 = now_ms(), t_qp, t_mr;
	int err = 0;

	rdma_pair_destroy(p);
	t_qp = now_ms() - t0;
	if (mr)
		err = ibv_dereg_mr(mr);
	t_mr = now_ms() - t0 - t_qp;
	tap(t_qp < BOUND_MS && t_mr < BOUND_MS && !err,
	    "%s: QPs destroyed in %ld ms, MR deregistered in %ld ms (%s), bound %d ms",
	    what, t_qp, t_mr, err ? strerror(err) : "ok", BOUND_MS);
}

/* Post one RDMA op on a fresh pair and expect status @want within BOUND_MS */
static void rw_case(const char *what, enum ibv_wr_opcode op, void *laddr,
		    uint32_t lkey, uint64_t raddr, uint32_t rkey, size_t len,
		    int want, struct ibv_mr *teardown_mr)
{
	struct rdma_pair p = {};
	struct ibv_wc wc;
	long t0;
	int st = -2;

	if (rdma_pair_create(&r, &p)) {
		tap(false, "%s: QP pair", what);
		return;
	}
	t0 = now_ms();
	if (!rdma_post_rw(&p, op, laddr, lkey, raddr, rkey, len))
		st = rdma_wait(&r, &wc, BOUND_MS);
	tap(st == want, "%s: %s in %ld ms (want %s)", what, st_str(st),
	    now_ms() - t0, ibv_wc_status_str(want));
	teardown_bounded(what, &p, teardown_mr);
}

/* ------------------------------------------------------------------ */
/* top: the end of an implicit MR at the top of the address space */

static unsigned char *top_block;

/*
 * Map [TOP - 2 MiB + 4 KiB .. TOP) rounded to the 2 MiB block that holds
 * TOP - 1, so that rxe's read-fault block below TOP is entirely mapped.
 * With ASLR the stack is almost never there; main() re-executes the
 * program with a new layout if it is.
 */
static int map_top_block(void)
{
	unsigned long base = (TOP - 1) & ~(BLOCK - 1);
	void *p = mmap((void *)base, TOP - base, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	if (p != (void *)base) {
		munmap(p, TOP - base);
		return -EEXIST;
	}
	top_block = p;
	memset(top_block, 0x11, TOP - base);
	return 0;
}

static int advise(enum ibv_advise_mr_advice advice, uint32_t flags,
		  uint64_t addr, uint32_t len, uint32_t lkey)
{
	struct ibv_sge sge = { .addr = addr, .length = len, .lkey = lkey };

	return ibv_cmd_advise_mr(r.pd, advice, flags, &sge, 1);
}

static void case_top(void)
{
	struct buf other = {};
	struct ibv_mr *im;
	uint64_t last8 = TOP - 8;
	int err;

	if (buf_new(&other, page, 0x22)) {
		tap(false, "top: buffer");
		return;
	}
	/* Positive control: the last 8 bytes below TOP work both ways. */
	im = reg_implicit();
	rw_case("top: local WRITE of the last 8 bytes below TASK_SIZE",
		IBV_WR_RDMA_WRITE, (void *)last8, im ? im->lkey : 0,
		(uintptr_t)other.p, other.mr->rkey, 8, IBV_WC_SUCCESS, im);
	tap(!memcmp(other.p, (void *)last8, 8), "top: the 8 bytes arrived");
	memset(other.p, 0x77, 8);
	im = reg_implicit();
	rw_case("top: remote WRITE of the last 8 bytes below TASK_SIZE",
		IBV_WR_RDMA_WRITE, other.p, other.mr->lkey, last8,
		im ? im->rkey : 0, 8, IBV_WC_SUCCESS, im);
	tap(!memcmp(other.p, (void *)last8, 8), "top: the 8 bytes arrived");

	/* The hang of issue 12: 16 bytes from 8 below TOP. */
	im = reg_implicit();
	rw_case("top: local WRITE SGE {TASK_SIZE - 8, 16}", IBV_WR_RDMA_WRITE,
		(void *)last8, im ? im->lkey : 0, (uintptr_t)other.p,
		other.mr->rkey, 16, IBV_WC_LOC_PROT_ERR, im);
	im = reg_implicit();
	rw_case("top: remote WRITE to {TASK_SIZE - 8, 16} via the implicit rkey",
		IBV_WR_RDMA_WRITE, other.p, other.mr->lkey, last8,
		im ? im->rkey : 0, 16, IBV_WC_REM_ACCESS_ERR, im);
	im = reg_implicit();
	rw_case("top: remote READ of {TASK_SIZE - 8, 16}", IBV_WR_RDMA_READ,
		other.p, other.mr->lkey, last8, im ? im->rkey : 0, 16,
		IBV_WC_REM_ACCESS_ERR, im);
	im = reg_implicit();
	rw_case("top: remote WRITE at TASK_SIZE itself", IBV_WR_RDMA_WRITE,
		other.p, other.mr->lkey, TOP, im ? im->rkey : 0, 8,
		IBV_WC_REM_ACCESS_ERR, im);
	im = reg_implicit();
	rw_case("top: remote WRITE at 2^64 - 4 KiB", IBV_WR_RDMA_WRITE,
		other.p, other.mr->lkey, -(uint64_t)page, im ? im->rkey : 0, 8,
		IBV_WC_REM_ACCESS_ERR, im);

	/* Prefetch: EINVAL for anything not inside the umem, never EFAULT */
	im = reg_implicit();
	if (!im) {
		tap(false, "top: implicit MR for the prefetch cases");
		goto out;
	}
	err = advise(IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_FLAG_FLUSH,
		     TOP - page, page, im->lkey);
	tap(err == 0, "top: prefetch of the last page below TASK_SIZE: %s (want success)",
	    strerror(err));
	err = advise(IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_FLAG_FLUSH,
		     TOP - page, 2 * page, im->lkey);
	tap(err == EINVAL, "top: prefetch across TASK_SIZE: %s (want EINVAL)",
	    strerror(err));
	err = advise(IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
		     IBV_ADVISE_MR_FLAG_FLUSH, TOP + page, page, im->lkey);
	tap(err == EINVAL, "top: prefetch past TASK_SIZE: %s (want EINVAL)",
	    strerror(err));
	err = advise(IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
		     IBV_ADVISE_MR_FLAG_FLUSH, -(uint64_t)page, page, im->lkey);
	tap(err == EINVAL, "top: prefetch at 2^64 - 4 KiB: %s (want EINVAL)",
	    strerror(err));
	ibv_dereg_mr(im);
out:
	buf_free(&other);
}

/* ------------------------------------------------------------------ */
/* slab: PREFETCH_NO_FAULT over unmapped memory keeps nothing */

static long meminfo_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = atol(line + n + 1);
			break;
		}
	fclose(f);
	return v;
}

#define SLAB_CALLS	4
#define SGE_MAX		(0x100000000UL - 4096)	/* ibv_sge.length is 32 bits */

static void case_slab(void)
{
	size_t len = 1UL << 40;
	unsigned char *base;
	struct ibv_mr *mr;
	long slab0, slab1, bound_kb, t0;
	int i, err = 0;

	/* A 1 TiB hole in the address space: reserve it, then free it. */
	base = mmap(NULL, len, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		tap(false, "slab: 1 TiB of address space: %s", strerror(errno));
		return;
	}
	munmap(base, len);
	mr = ibv_reg_mr(r.pd, base, len, ODP_ALL);
	if (!mr) {
		tap(false, "slab: ODP MR of 1 TiB over unmapped memory: %s",
		    strerror(errno));
		return;
	}
	/* One call first, so that lazily created slab caches do not count. */
	advise(IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, IBV_ADVISE_MR_FLAG_FLUSH,
	       (uintptr_t)base, SGE_MAX, mr->lkey);
	slab0 = meminfo_kb("Slab");
	t0 = now_ms();
	for (i = 1; i <= SLAB_CALLS && !err; i++)
		err = advise(IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
			     IBV_ADVISE_MR_FLAG_FLUSH,
			     (uintptr_t)base + i * SGE_MAX, SGE_MAX, mr->lkey);
	slab1 = meminfo_kb("Slab");
	/*
	 * Keeping one 8-byte MTT slot per 4 KiB page of one SGE alone would
	 * be SGE_MAX / page * 8 bytes: the bound is that, for all the calls.
	 */
	bound_kb = (long)(SGE_MAX / page * 8 / 1024);
	tap(!err, "slab: %d PREFETCH_NO_FAULT calls of 4 GiB over unmapped memory: %s in %ld ms",
	    SLAB_CALLS, strerror(err), now_ms() - t0);
	tap(slab1 - slab0 < bound_kb,
	    "slab: Slab grew by %ld KiB over %d calls (bound: %ld KiB, one SGE's worth of MTT slots)",
	    slab1 - slab0, SLAB_CALLS, bound_kb);
	ibv_dereg_mr(mr);
}

/* ------------------------------------------------------------------ */
/* memcg: mirror memory charged to the owner's cgroup */

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* The value of @key in a flat-keyed cgroup file, -1 if absent */
static long long cg_key(const char *file, const char *key)
{
	char path[256], line[256];
	size_t n = strlen(key);
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), CG "/%s", file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ' ') {
			v = atoll(line + n + 1);
			break;
		}
	fclose(f);
	return v;
}

static long long cg_value(const char *file)
{
	char path[256], line[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), CG "/%s", file);
	f = fopen(path, "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	return atoll(line);
}

static int cg_setup(const char *max)
{
	struct stat st;
	int err;

	if (stat(CGROOT "/cgroup.controllers", &st) &&
	    mount("none", CGROOT, "cgroup2", 0, NULL))
		return -errno;
	err = write_file(CGROOT "/cgroup.subtree_control", "+memory");
	if (err)
		return err;
	rmdir(CG);
	if (mkdir(CG, 0755))
		return -errno;
	return write_file(CG "/memory.max", max);
}

/* The odp_mirror_bytes of the MR with @lkey, from rdma res */
static long long mirror_bytes(uint32_t lkey)
{
	char cmd[160], line[1024], *s;
	long long v = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma res show mr lkey %u -dd 2>/dev/null", lkey);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		s = strstr(line, "odp_mirror_bytes ");
		if (s)
			v = atoll(s + strlen("odp_mirror_bytes "));
	}
	pclose(f);
	return v;
}

/*
 * In the child: touch one page per 2 MiB block of a large region and
 * prefetch it through an implicit MR, @blocks times, so that each block
 * costs the mirror a leaf and the MTT its nodes while the user memory is
 * one page.  Reports over @out: mirror bytes after the loop.
 */
/*
 * What memcg_child() reports once its prefetch loop ends, in a page shared
 * with the parent and faulted in before the fork: a cgroup at its limit has
 * no memory for a pipe buffer or for running rdma(8), so the parent, out of
 * the cgroup, reads the MR's odp_mirror_bytes.
 */
struct memcg_report {
	atomic_int ready;	/* set last */
	uint32_t lkey;		/* the implicit MR's */
	_Atomic long done;	/* prefetches that succeeded */
	int err;		/* errno of the one that failed, or 0 */
};

static struct memcg_report *memcg_report_new(void)
{
	struct memcg_report *rep;

	rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rep == MAP_FAILED)
		return NULL;
	memset(rep, 0, sizeof(*rep));
	return rep;
}

/*
 * Wait for @pid's report.  BOUND_MS bounds each prefetch, not the loop: a
 * debug kernel under emulation takes longer than that for 2048 of them, so
 * the wait gives up only when the count of prefetches done stops moving for
 * BOUND_MS.  Return NULL once the report is there, else why it is not.
 */
static const char *memcg_report_wait(struct memcg_report *rep, pid_t pid)
{
	long t0 = now_ms(), done = -1;
	siginfo_t info;

	while (!atomic_load(&rep->ready)) {
		memset(&info, 0, sizeof(info));
		if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) ||
		    info.si_pid == pid)
			return "the child died";
		if (atomic_load(&rep->done) != done) {
			done = atomic_load(&rep->done);
			t0 = now_ms();
		} else if (now_ms() - t0 > BOUND_MS) {
			return "a prefetch took longer than the bound";
		}
		usleep(10000);
	}
	return NULL;
}

static void memcg_child(struct memcg_report *rep, long blocks, int ready,
			int go)
{
	size_t len = blocks * BLOCK;
	unsigned char *p;
	struct ibv_mr *im;
	char c;
	long i;

	if (write_file(CG "/cgroup.procs", "0") || rdma_open(&r, dev, 1))
		_exit(10);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	im = reg_implicit();
	if (p == MAP_FAILED || !im)
		_exit(11);
	for (i = 0; i < blocks; i++)
		p[i * BLOCK] = 1;
	if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1)
		_exit(12);
	for (rep->done = 0; rep->done < blocks; rep->done++)
		if (advise(IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
			   IBV_ADVISE_MR_FLAG_FLUSH,
			   (uintptr_t)p + rep->done * BLOCK, page, im->lkey)) {
			rep->err = errno;
			break;
		}
	rep->lkey = im->lkey;
	atomic_store(&rep->ready, 1);
	if (read(go, &c, 1) != 1)
		_exit(14);
	_exit(0);
}

/*
 * The cgroup's unreclaimable slab (kmalloc: mirror leaves, MTT nodes; not
 * the dentries and inodes its processes leave in the caches).  memory.stat
 * may lag small changes until the kernel's periodic flush of memcg
 * statistics (every 2 s, FLUSH_TIME in mm/memcontrol.c): wait for one.
 */
#define MEMCG_FLUSH_MS	2500

/*
 * Freed objects are subtracted from the statistics through a per-CPU cache
 * of up to a page of bytes (obj_stock in mm/memcontrol.c): "back to the
 * level before" means within that much per CPU.
 */
static long long slab_slack(void)
{
	return (long long)page * sysconf(_SC_NPROCESSORS_ONLN);
}

static long long slab_now(void)
{
	usleep(MEMCG_FLUSH_MS * 1000);
	return cg_key("memory.stat", "slab_unreclaimable");
}

/* Poll until the cgroup's slab falls to @target bytes or BOUND_MS pass */
static long long slab_settles(long long target)
{
	long t0 = now_ms();
	long long v;

	while ((v = slab_now()) > target + slab_slack() &&
	       now_ms() - t0 < BOUND_MS)
		;
	return v;
}

static void case_memcg_charged(void)
{
	long blocks = 2048;	/* 4 GiB of address space, 8 MiB of pages */
	long long slab0, slab1, slab2, mb;
	struct memcg_report *rep;
	int ready[2], go[2], status;
	pid_t pid;
	const char *why;
	char c;
	int err;

	err = cg_setup("max");
	if (err) {
		tap(false, "memcg: cgroup v2 with the memory controller: %s",
		    strerror(-err));
		return;
	}
	rep = memcg_report_new();
	if (!rep || pipe(ready) || pipe(go)) {
		tap(false, "memcg: pipes and report page");
		return;
	}
	pid = fork();
	if (pid == 0)
		memcg_child(rep, blocks, ready[1], go[0]);
	if (read(ready[0], &c, 1) != 1) {
		tap(false, "memcg: the child did not get ready");
		goto reap;
	}
	slab0 = slab_now();
	why = write(go[1], "g", 1) != 1 ? "the pipe to the child" :
	      memcg_report_wait(rep, pid);
	if (why || rep->err) {
		tap(false, "memcg: the child's prefetch loop failed after %ld prefetches: %s",
		    atomic_load(&rep->done), why ? why : strerror(rep->err));
		goto reap;
	}
	slab1 = slab_now();
	mb = mirror_bytes(rep->lkey);
	tap(mb > 0 && slab1 - slab0 >= mb,
	    "memcg: %ld sparse prefetches: the cgroup's unreclaimable slab grew by %lld bytes, the MR's mirror holds %lld (want growth >= mirror)",
	    blocks, slab1 - slab0, mb);
	if (write(go[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	slab2 = slab_settles(slab0);
	tap(WIFEXITED(status) && !WEXITSTATUS(status) &&
	    slab2 <= slab0 + slab_slack(),
	    "memcg: after the owner exits the cgroup's unreclaimable slab is %lld bytes, %lld before its prefetches (want <= that + %lld of per-CPU statistics cache)",
	    slab2, slab0, slab_slack());
	goto out;
reap:
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
out:
	close(ready[0]); close(ready[1]); close(go[0]); close(go[1]);
	munmap(rep, sizeof(*rep));
}

/*
 * The limit holds: with memory.max = 64 MiB, a loop that would make the
 * mirror hold more than the cgroup has left fails.  The prefetch that needs
 * memory past the limit returns ENOMEM (the mirror's leaves and rxe's MTT
 * blocks give up rather than invoke the OOM killer), the process lives on,
 * and what it made the kernel hold returns when it exits.
 */
#define HOST_SLAB_NOISE_KB	1024	/* the VM's own Slab moves by ~100 KiB */

static void case_memcg_limit(void)
{
	long long max = 64LL << 20, events0 = -1, events1, slab0 = -1, slab1;
	long long mb = -1;
	/*
	 * Before its prefetches each block costs the process two pages (the
	 * page it touches and a page-table page), and mirroring it at least
	 * one more (a mirror leaf): with max / 2.5 pages of blocks, touching
	 * them takes 80% of the limit, mirroring them would need 120%.
	 */
	long blocks = max * 2 / (5 * page);
	struct memcg_report *rep;
	int ready[2], go[2], status;
	long host0, host1;
	char c, smax[32];
	const char *why = "the child did not get ready";
	bool got = false;
	pid_t pid;
	int err;

	snprintf(smax, sizeof(smax), "%lld", max);
	err = cg_setup(smax);
	if (err) {
		tap(false, "memcg: cgroup with memory.max: %s", strerror(-err));
		return;
	}
	rep = memcg_report_new();
	if (!rep || pipe(ready) || pipe(go)) {
		tap(false, "memcg: pipes and report page");
		return;
	}
	host0 = meminfo_kb("Slab");
	pid = fork();
	if (pid == 0)
		memcg_child(rep, blocks, ready[1], go[0]);
	if (read(ready[0], &c, 1) == 1) {
		events0 = cg_key("memory.events", "oom_kill");
		slab0 = slab_now();
		why = write(go[1], "g", 1) != 1 ? "the pipe to the child" :
		      memcg_report_wait(rep, pid);
		got = !why;
	}
	events1 = cg_key("memory.events", "oom_kill");
	if (got)
		mb = mirror_bytes(rep->lkey);
	tap(got && rep->err == ENOMEM && rep->done < blocks &&
	    events0 >= 0 && events1 == events0,
	    "memcg: mirroring %ld sparse blocks in a %lld MiB cgroup: prefetch %ld %s (want ENOMEM), the mirror then held %lld KiB; oom_kill %lld -> %lld (want unchanged)",
	    blocks, max >> 20, rep->done,
	    !got ? why :
	    rep->err ? strerror(rep->err) : "none failed",
	    mb >> 10, events0, events1);
	if (!got || write(go[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	tap(WIFEXITED(status) && !WEXITSTATUS(status),
	    "memcg: the process lives on after the failed prefetch and exits 0 (status %#x)",
	    status);
	slab1 = slab_settles(slab0);
	host1 = meminfo_kb("Slab");
	tap(cg_value("memory.peak") <= max && slab1 <= slab0 + slab_slack() &&
	    host1 <= host0 + HOST_SLAB_NOISE_KB,
	    "memcg: peak %lld <= max %lld; cgroup unreclaimable slab back to %lld (%lld before the prefetches, slack %lld); host Slab %ld -> %ld KiB (want within %d KiB)",
	    cg_value("memory.peak"), max, slab1, slab0, slab_slack(), host0,
	    host1, HOST_SLAB_NOISE_KB);
	close(ready[0]); close(ready[1]); close(go[0]); close(go[1]);
	munmap(rep, sizeof(*rep));
	rmdir(CG);
}

/* ------------------------------------------------------------------ */
/* write1: a 1-byte RDMA WRITE touches one page */

#define FILE_LEN	(8UL << 20)
#define W1_OFF		(12 * 1024 + 5)

static void case_write1(int flags)
{
	const char *kind = flags == MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE";
	int fd = memfd_create("odp_hostile", 0);
	struct buf src = {};
	struct rdma_pair p = {};
	struct ibv_mr *mr = NULL;
	unsigned char *map = MAP_FAILED, *back = NULL;
	struct ibv_wc wc;
	struct stat st;
	size_t i, bad = 0;
	int s = -2;

	if (fd < 0 || ftruncate(fd, FILE_LEN) || buf_new(&src, page, 0x5a) ||
	    rdma_pair_create(&r, &p)) {
		tap(false, "write1 %s: setup", kind);
		goto out;
	}
	map = mmap(NULL, FILE_LEN, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (map == MAP_FAILED)
		goto out;
	mr = ibv_reg_mr(r.pd, map, FILE_LEN, ODP_ALL);
	if (!mr)
		goto out;
	if (!rdma_post_rw(&p, IBV_WR_RDMA_WRITE, src.p, src.mr->lkey,
			  (uintptr_t)map + W1_OFF, mr->rkey, 1))
		s = rdma_wait(&r, &wc, BOUND_MS);
	msync(map, FILE_LEN, MS_SYNC);
	fstat(fd, &st);
	tap(s == IBV_WC_SUCCESS && map[W1_OFF] == 0x5a,
	    "write1 %s: 1-byte RDMA WRITE: %s, byte %s", kind, st_str(s),
	    map[W1_OFF] == 0x5a ? "arrived" : "MISSING");
	/* A private write copies the file page: at most that page is read in */
	tap(flags == MAP_SHARED ? st.st_blocks * 512 == page
				: st.st_blocks * 512 <= page,
	    "write1 %s: the file holds %lld bytes of blocks (want %s %ld, one page)",
	    kind, (long long)st.st_blocks * 512,
	    flags == MAP_SHARED ? "==" : "<=", page);
	if (flags == MAP_PRIVATE) {
		long anon = smaps_kb(map, "Anonymous");

		tap(anon * 1024 == page,
		    "write1 %s: %ld KiB of the mapping copied (want one page)",
		    kind, anon);
	}
	/* Every other byte of the file, as the file sees it, is zero. */
	back = malloc(FILE_LEN);
	if (back && pread(fd, back, FILE_LEN, 0) == (ssize_t)FILE_LEN)
		for (i = 0; i < FILE_LEN; i++)
			bad += back[i] != ((flags == MAP_SHARED && i == W1_OFF) ?
					   0x5a : 0);
	tap(back && !bad, "write1 %s: the file reads back %s (%zu wrong bytes)",
	    kind, flags == MAP_SHARED ? "the byte and zeros" : "zeros only", bad);
out:
	free(back);
	rdma_pair_destroy(&p);
	if (mr)
		ibv_dereg_mr(mr);
	else
		tap(false, "write1 %s: ODP MR over the file mapping", kind);
	if (map != MAP_FAILED)
		munmap(map, FILE_LEN);
	buf_free(&src);
	if (fd >= 0)
		close(fd);
}

static void case_write1_shared(void)
{
	case_write1(MAP_SHARED);
}

static void case_write1_private(void)
{
	case_write1(MAP_PRIVATE);
}

/* ------------------------------------------------------------------ */
/* uffd: a range whose faults nobody serves */

static void *uffd_region(int *uffd)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {};
	void *p;

	*uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (*uffd < 0 || ioctl(*uffd, UFFDIO_API, &api))
		return NULL;
	p = mmap(NULL, 16 * page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	reg.range.start = (uintptr_t)p;
	reg.range.len = 16 * page;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(*uffd, UFFDIO_REGISTER, &reg))
		return NULL;
	return p;
}

static void case_uffd(void)
{
	struct buf other = {};
	struct ibv_mr *mr;
	unsigned char *p;
	int uffd = -1;

	p = uffd_region(&uffd);
	if (!p || buf_new(&other, page, 0x33)) {
		tap(false, "uffd: userfaultfd region: %s", strerror(errno));
		goto out;
	}
	mr = ibv_reg_mr(r.pd, p, 16 * page, ODP_ALL);
	rw_case("uffd: remote WRITE into an unserved userfaultfd range",
		IBV_WR_RDMA_WRITE, other.p, other.mr->lkey, (uintptr_t)p,
		mr ? mr->rkey : 0, 64, IBV_WC_REM_ACCESS_ERR, mr);
	mr = ibv_reg_mr(r.pd, p, 16 * page, ODP_ALL);
	rw_case("uffd: RDMA READ into an unserved userfaultfd range",
		IBV_WR_RDMA_READ, p + page, mr ? mr->lkey : 0,
		(uintptr_t)other.p, other.mr->rkey, 64, IBV_WC_LOC_PROT_ERR, mr);
out:
	buf_free(&other);
	if (uffd >= 0)
		close(uffd);
}

/* ------------------------------------------------------------------ */
/* livelock: the target of the WRITEs is unmapped in a loop */

static atomic_int zap_stop;

static void *zapper(void *arg)
{
	while (!atomic_load(&zap_stop))
		madvise(arg, 4 * page, MADV_DONTNEED);
	return NULL;
}

#define LIVELOCK_WRS	200

static void case_livelock(void)
{
	struct buf src = {}, dst = {};
	struct rdma_pair p = {};
	int ok = 0, err = 0, other = 0, i, s;
	long worst = 0, t0;
	struct ibv_wc wc;
	pthread_t th;

	if (buf_new(&src, 4 * page, 0x44) || buf_new(&dst, 4 * page, 0)) {
		tap(false, "livelock: buffers");
		return;
	}
	atomic_store(&zap_stop, 0);
	pthread_create(&th, NULL, zapper, dst.p);
	for (i = 0; i < LIVELOCK_WRS && !other; i++) {
		if (!p.a && rdma_pair_create(&r, &p))
			break;
		t0 = now_ms();
		s = -2;
		if (!rdma_post_rw(&p, IBV_WR_RDMA_WRITE, src.p, src.mr->lkey,
				  (uintptr_t)dst.p, dst.mr->rkey, 4 * page))
			s = rdma_wait(&r, &wc, BOUND_MS);
		worst = now_ms() - t0 > worst ? now_ms() - t0 : worst;
		if (s == IBV_WC_SUCCESS) {
			ok++;
		} else if (s == IBV_WC_REM_ACCESS_ERR) {
			/* the copy gave up: the QP is in error, start over */
			err++;
			rdma_pair_destroy(&p);
			memset(&p, 0, sizeof(p));
		} else {
			other++;
		}
	}
	atomic_store(&zap_stop, 1);
	pthread_join(th, NULL);
	tap(ok + err == LIVELOCK_WRS && !other,
	    "livelock: %d 16 KiB WRITEs into a range unmapped in a loop: %d succeeded, %d remote access errors, %d other; slowest %ld ms (bound %d)",
	    LIVELOCK_WRS, ok, err, other, worst, BOUND_MS);
	teardown_bounded("livelock", &p, NULL);
	buf_free(&src);
	buf_free(&dst);
}

/* ------------------------------------------------------------------ */
/* qpqueue: destroy QPs while RDMA READs are queued at them */

#define QQ_LEN		(256UL << 20)	/* divided by debug_slowdown() */
#define QQ_READS	8		/* rdma_pair_create()'s max_rd_atomic */
#define QQ_BOUND_MS	1000		/* multiplied by debug_slowdown() */

/*
 * A destroyed QP must drop the requests and responses queued at it, not
 * serve them first: destroying the responder of QQ_READS 256 MiB READs
 * would otherwise take as long as sending 2 GiB (4.5 s here before the
 * fix; on the debug kernel the READs are 64 MiB, since one of 256 MiB took
 * over a minute there).  One READ alone is timed for scale.
 */
static void case_qpqueue(void)
{
	struct buf src = {}, dst = {};
	struct rdma_pair p = {};
	int qps0 = rdma_res_count(dev, "qp"), qps1, i, st = -2, err_a, err_b;
	long t_one = -1, t_a, t_b, t0, bound = QQ_BOUND_MS * debug_slowdown();
	long wait = BOUND_MS * debug_slowdown();
	size_t len = QQ_LEN / debug_slowdown();
	struct ibv_wc wc;

	if (buf_new(&src, len, 0x5a) || buf_new(&dst, len, 0) ||
	    rdma_pair_create(&r, &p)) {
		tap(false, "qpqueue: buffers and QPs");
		goto out;
	}
	t0 = now_ms();
	if (!rdma_post_rw(&p, IBV_WR_RDMA_READ, dst.p, dst.mr->lkey,
			  (uintptr_t)src.p, src.mr->rkey, len))
		st = rdma_wait(&r, &wc, 6 * wait);
	t_one = now_ms() - t0;
	tap(st == IBV_WC_SUCCESS, "qpqueue: one %zu MiB RDMA READ: %s in %ld ms",
	    len >> 20, st_str(st), t_one);
	memset(dst.p, 0, page);
	for (i = 0, st = 0; i < QQ_READS && !st; i++)
		st = rdma_post_rw(&p, IBV_WR_RDMA_READ, dst.p, dst.mr->lkey,
				  (uintptr_t)src.p, src.mr->rkey, len);
	/* the first response has arrived: the requests are at the responder */
	for (t0 = now_ms(); !st && !dst.p[0] && now_ms() - t0 < wait;)
		sched_yield();
	t0 = now_ms();
	err_a = ibv_destroy_qp(p.a);
	t_a = now_ms() - t0;
	err_b = ibv_destroy_qp(p.b);
	t_b = now_ms() - t0 - t_a;
	p.a = p.b = NULL;
	qps1 = rdma_res_count(dev, "qp");
	/* below the bound, and below what serving one of the READs takes */
	tap(!st && dst.p[0] == 0x5a && !err_a && !err_b &&
	    t_a <= bound && t_b <= bound && t_a < t_one && t_b < t_one &&
	    qps1 == qps0,
	    "qpqueue: %d READs of %zu MiB queued: requester destroyed in %ld ms (%s), responder in %ld ms (%s), bound %ld ms each and below one READ's %ld ms; QPs %d -> %d%s",
	    QQ_READS, len >> 20, t_a, err_a ? strerror(err_a) : "ok", t_b,
	    err_b ? strerror(err_b) : "ok", bound, t_one, qps0, qps1,
	    st ? ": post failed" : !dst.p[0] ? ": no response arrived" : "");
	/* the completions of the destroyed QP's WRs, if any, are not ours */
	while (ibv_poll_cq(r.cq, 1, &wc) > 0)
		;
out:
	rdma_pair_destroy(&p);
	buf_free(&src);
	buf_free(&dst);
}

/* ------------------------------------------------------------------ */
/* kill: SIGKILL with WRs in flight */

static void kill_child(int ready)
{
	struct buf src = {}, dst = {};
	struct rdma_pair p = {};
	pthread_t th;
	int i;

	if (rdma_open(&r, dev, 1) || buf_new(&src, 4 * page, 0x55) ||
	    buf_new(&dst, 4 * page, 0) || rdma_pair_create(&r, &p))
		_exit(2);
	pthread_create(&th, NULL, zapper, dst.p);
	if (write(ready, "r", 1) != 1)
		_exit(3);
	for (i = 0;; i++) {
		struct ibv_wc wc[16];

		/* keep the send queue busy; completions are drained as they come */
		rdma_post_rw(&p, IBV_WR_RDMA_WRITE, src.p, src.mr->lkey,
			     (uintptr_t)dst.p, dst.mr->rkey, 4 * page);
		ibv_poll_cq(r.cq, 16, wc);
	}
}

static void case_kill(void)
{
	int mrs0 = rdma_res_count(dev, "mr"), qps0 = rdma_res_count(dev, "qp"), status, ready[2];
	long t0;
	pid_t pid;
	char c;

	if (pipe(ready)) {
		tap(false, "kill: pipe");
		return;
	}
	pid = fork();
	if (pid == 0)
		kill_child(ready[1]);
	if (read(ready[0], &c, 1) == 1)
		usleep(500000);
	t0 = now_ms();
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, WNOHANG) == 0 && now_ms() - t0 < BOUND_MS)
		usleep(10000);
	if (now_ms() - t0 >= BOUND_MS) {
		tap(false, "kill: the owner did not die within %d ms of SIGKILL",
		    BOUND_MS);
		waitpid(pid, &status, 0);
	} else {
		tap(WIFSIGNALED(status),
		    "kill: SIGKILL with WRITEs in flight into a range unmapped in a loop: dead in %ld ms (bound %d)",
		    now_ms() - t0, BOUND_MS);
	}
	tap(rdma_res_count(dev, "mr") == mrs0 && rdma_res_count(dev, "qp") == qps0,
	    "kill: MRs %d -> %d, QPs %d -> %d after the owner's death (want back to the start)",
	    mrs0, rdma_res_count(dev, "mr"), qps0, rdma_res_count(dev, "qp"));
	close(ready[0]);
	close(ready[1]);
}

/* ------------------------------------------------------------------ */
/* fork: COW of a THP mirrored by two MRs */

static long cow_all(unsigned char *p, int v)
{
	long t0 = now_ms();
	size_t i;

	for (i = 0; i < BLOCK; i += page)
		p[i] = v;
	return now_ms() - t0;
}

/* Fork, then write one byte of every page in the parent; time the writes */
static long fork_and_cow(unsigned char *thp, int v, int *child_ok)
{
	int status, go[2];
	long t;
	pid_t pid;
	char c;

	if (pipe(go))
		return -1;
	pid = fork();
	if (pid == 0) {
		size_t i, bad = 0;

		if (read(go[0], &c, 1) != 1)
			_exit(2);
		for (i = 0; i < BLOCK; i += page)
			bad += thp[i] != v - 1;
		_exit(bad ? 1 : 0);
	}
	t = cow_all(thp, v);
	if (write(go[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	*child_ok = WIFEXITED(status) && !WEXITSTATUS(status);
	close(go[0]);
	close(go[1]);
	return t;
}

/* A fresh 2 MiB-aligned region backed by a THP, or NULL */
static unsigned char *thp_new(unsigned char **raw, int fill)
{
	unsigned char *thp;

	*raw = mmap(NULL, 2 * BLOCK, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*raw == MAP_FAILED)
		return NULL;
	thp = (unsigned char *)(((uintptr_t)*raw + BLOCK - 1) & ~(BLOCK - 1));
	madvise(thp, BLOCK, MADV_HUGEPAGE);
	memset(thp, fill, BLOCK);
	if (smaps_kb(*raw, "AnonHugePages") < (long)(BLOCK >> 10)) {
		munmap(*raw, 2 * BLOCK);
		return NULL;
	}
	return thp;
}

static void case_fork(void)
{
	unsigned char *raw1 = MAP_FAILED, *raw2 = MAP_FAILED, *thp;
	struct ibv_mr *mr1 = NULL, *mr2 = NULL;
	struct buf dst = {};
	struct rdma_pair p = {};
	long t_plain, t_odp;
	int ok_plain = 0, ok_odp = 0, s1 = -2, s2 = -2;
	struct ibv_sge sge;
	struct ibv_wc wc;
	size_t i, bad = 0;

	/* The control: fork and COW of a THP with no MR. */
	thp = thp_new(&raw1, 1);
	if (!thp) {
		tap_skip("fork: no transparent huge page could be allocated");
		return;
	}
	t_plain = fork_and_cow(thp, 2, &ok_plain);

	/* The same with two MRs that mirror the huge page, writable. */
	thp = thp_new(&raw2, 3);
	if (!thp) {
		tap_skip("fork: no second transparent huge page");
		goto out;
	}
	mr1 = ibv_reg_mr(r.pd, thp, BLOCK, ODP_ALL);
	mr2 = ibv_reg_mr(r.pd, thp, BLOCK, ODP_ALL);
	if (!mr1 || !mr2 || buf_new(&dst, BLOCK, 0) ||
	    rdma_pair_create(&r, &p)) {
		tap(false, "fork: MRs and QPs");
		goto out;
	}
	sge = (struct ibv_sge){ .addr = (uintptr_t)thp, .length = BLOCK };
	sge.lkey = mr1->lkey;
	ibv_cmd_advise_mr(r.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
			  IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1);
	sge.lkey = mr2->lkey;
	ibv_cmd_advise_mr(r.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
			  IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1);
	t_odp = fork_and_cow(thp, 4, &ok_odp);
	printf("# fork: COW of a 2 MiB THP after fork: %ld ms without MRs, %ld ms with two ODP MRs mirroring it\n",
	       t_plain, t_odp);
	tap(ok_plain && ok_odp, "fork: the children saw the pages as they were at fork");

	/* Both MRs now see the parent's new pages. */
	if (!rdma_post_rw(&p, IBV_WR_RDMA_READ, dst.p, dst.mr->lkey,
			  (uintptr_t)thp, mr1->rkey, BLOCK))
		s1 = rdma_wait(&r, &wc, BOUND_MS);
	for (i = 0; i < BLOCK; i += page)
		bad += dst.p[i] != 4;
	memset(dst.p, 0, BLOCK);
	if (!rdma_post_rw(&p, IBV_WR_RDMA_READ, dst.p, dst.mr->lkey,
			  (uintptr_t)thp, mr2->rkey, BLOCK))
		s2 = rdma_wait(&r, &wc, BOUND_MS);
	for (i = 0; i < BLOCK; i += page)
		bad += dst.p[i] != 4;
	tap(s1 == IBV_WC_SUCCESS && s2 == IBV_WC_SUCCESS && !bad,
	    "fork: RDMA READ through both MRs after COW: %s, %s, %zu stale pages",
	    st_str(s1), st_str(s2), bad);
out:
	rdma_pair_destroy(&p);
	if (mr1)
		ibv_dereg_mr(mr1);
	if (mr2)
		ibv_dereg_mr(mr2);
	buf_free(&dst);
	munmap(raw1, 2 * BLOCK);
	if (raw2 != MAP_FAILED && thp)
		munmap(raw2, 2 * BLOCK);
}

/* ------------------------------------------------------------------ */

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "slab", case_slab },
	{ "write1", case_write1_shared },
	{ "write1", case_write1_private },
	{ "uffd", case_uffd },
	{ "livelock", case_livelock },
	{ "fork", case_fork },
	{ "kill", case_kill },
	{ "qpqueue", case_qpqueue },
	{ "memcg", case_memcg_charged },
	{ "memcg", case_memcg_limit },
};

static bool wanted(int argc, char **argv, const char *name)
{
	int i;

	if (argc <= 2)
		return true;
	for (i = 2; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const char *again = getenv("ODP_HOSTILE_REEXEC");
	size_t i;
	int err = 0;

	if (argc > 1)
		dev = argv[1];
	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (wanted(argc, argv, "top"))
		err = map_top_block();
	if (err == -EEXIST && (!again || atoi(again) < 5)) {
		char n[16];

		/* Something (the stack) sits there: try another layout. */
		snprintf(n, sizeof(n), "%d", again ? atoi(again) + 1 : 1);
		setenv("ODP_HOSTILE_REEXEC", n, 1);
		execv("/proc/self/exe", argv);
	}
	if (rdma_open(&r, dev, 1)) {
		printf("not ok 1 open %s\n1..1\n", dev);
		return 1;
	}
	if (err)
		tap(false, "top: map the 2 MiB block below TASK_SIZE: %s",
		    strerror(-err));
	else if (wanted(argc, argv, "top"))
		case_top();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (wanted(argc, argv, cases[i].name))
			cases[i].fn();
	rdma_close(&r);
	return tap_done();
}
