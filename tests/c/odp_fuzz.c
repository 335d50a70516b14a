// SPDX-License-Identifier: GPL-2.0
/*
 * odp_fuzz: a seeded verbs fuzzer for on-demand paging on rxe.
 *
 *   odp_fuzz [--dev NAME] [--seed N] [--seconds S] [--ops N] [--verbose]
 *            [--no-CLASS ...] [--only CLASS,...] [--list]
 *
 * One process, one thread, one RC loopback QP pair on DEV.  Random sequences
 * of the operation classes below, each chosen by the seeded generator (the
 * seed is printed; "--seed N --ops M" replays the same sequence of choices;
 * keys, timing and completion order come from the kernel).  Any class can be
 * excluded with --no-CLASS; the excluded ones are printed and counted as
 * skips.
 *
 * Operation classes:
 *   reg          explicit ODP MR (sometimes pinned) over the fuzz region, the
 *                unmapped pool or a random range, random access flags
 *   reg-implicit ibv_reg_mr(pd, NULL, SIZE_MAX, ON_DEMAND | random flags)
 *   reg-edge     explicit MRs at 0, 4 KiB, TASK_SIZE - 4 KiB, TASK_SIZE, 2^47,
 *                2^64 - 4 KiB with lengths 0, 1, page - 1, page, huge, wrapping
 *   dereg        deregister a random MR
 *   advise       ibv_advise_mr (ibv_cmd_advise_mr) with every advice (and
 *                unknown ones), FLUSH or not (and unknown flag bits), 0 to 4
 *                random SGEs inside and around the MRs
 *   advise-edge  advise SGEs at and past the end of the MRs (TASK_SIZE for an
 *                implicit MR): the answer must be EINVAL
 *   advise-huge  PREFETCH_NO_FAULT | FLUSH over 4 GiB of never-mapped memory
 *                of a 1 TiB explicit MR: Slab must not grow (nothing mirrored)
 *   read, write, send (with or without a RECV), cas, fadd
 *                WRs with random lkeys (live, stale, implicit, made up),
 *                rkeys, addresses and lengths
 *   edge-sge     WRs whose local SGE or remote range, through an implicit
 *                MR, reaches TASK_SIZE (0x7ffffffff000) or beyond; the last
 *                2 MiB below TASK_SIZE are mapped and populated for it
 *   mmap, munmap, mprotect, madvise (DONTNEED, FREE, COLD, PAGEOUT,
 *                HUGEPAGE, POPULATE_WRITE), mremap
 *                of random page ranges of the fuzz region
 *   fork         a child opens its own context and does random operations
 *                (no fork), then exits, half of the time with work in flight
 *
 * Where the fuzzer's memory is.  The fuzz region (REGION_LEN at REGION_BASE)
 * and the never-mapped pool (POOL_BASE) sit far below every mapping the
 * kernel picks for mmap(NULL) (top-down from below the stack), so a hole
 * that munmap or mremap opens in the region is never filled by the
 * program's own mappings (malloc, the QP and CQ queues), and MAP_FIXED
 * there replaces only the fuzzer's pages: the problem odp_stress.c solved
 * with its layout lock (git log of tests/c/odp_stress.c) cannot arise.
 * The device only ever writes (READ and RECV targets, WRITE and atomic
 * targets) outside the "foreign band", [lowest mapping at start-up,
 * TASK_SIZE) minus the fuzzer's top pages: a target there is redrawn.
 *
 * Documented errno sets (a verb returning anything else fails the run):
 *   ibv_reg_mr     EINVAL EOPNOTSUPP ENOMEM EFAULT EPERM
 *                  (ib_check_mr_access, rxe access checks, ib_umem_odp_get:
 *                  zero or wrapping range, HUGETLB on non-hugetlb memory;
 *                  pinned MRs: pinning unmapped or read-only pages, DONTFORK)
 *   ibv_dereg_mr   none: a valid MR with no memory window always goes
 *   ibv_post_send  EINVAL ENOMEM     ibv_post_recv  EINVAL ENOMEM
 *   advise_mr      computed per call from the fuzzer's model, in the
 *                  kernel's order of checks: unknown flag bit or no SGE:
 *                  EINVAL; unknown advice: EOPNOTSUPP (or EINVAL when it
 *                  does not fit the enum); then per SGE in order: no live MR
 *                  with that lkey: ENOENT; pinned MR: EINVAL; PREFETCH_WRITE
 *                  without LOCAL_WRITE: EPERM; range outside the MR (for an
 *                  implicit MR: outside [0, TASK_SIZE)): EINVAL.  All valid:
 *                  without FLUSH 0; NO_FAULT|FLUSH: 0 or EBUSY; PREFETCH(_WRITE)
 *                  |FLUSH: 0 EFAULT EPERM EBUSY.  ENOMEM is allowed anywhere.
 *   work completions: any status of enum ibv_wc_status but IBV_WC_FATAL_ERR
 *                  and IBV_WC_GENERAL_ERR; an error moves the pair to error
 *                  and the pair is recreated at the next drain.
 *
 * Bounds and tolerances (printed at start):
 *   WR bound (drain): every WR posted must complete within
 *     T_transport + T_busy + SQ_DEPTH * 2 * MAX_BLOCKS * T_block
 *   after the fuzzer stops to drain (nothing changes the memory meanwhile):
 *     T_transport = (retry_cnt + 1) * 4.096 us * 2^timeout (rnr_retry = 0:
 *                   an RNR NAK fails at once), the requester's retries;
 *     T_busy      = RXE_ODP_BUSY_TIMEOUT + 3 * HMM_RANGE_DEFAULT_TIMEOUT,
 *                   one fault that raced with invalidations: rxe_odp_fault()
 *                   tries the block, then the pages, then retries the pages
 *                   until RXE_ODP_BUSY_TIMEOUT has passed, and each attempt
 *                   gives up after HMM_RANGE_DEFAULT_TIMEOUT;
 *     T_block     = the measured time of a synchronous PREFETCH_WRITE of a
 *                   fresh 2 MiB chunk (the block one device fault maps), the
 *                   slowest of three;
 *     MAX_BLOCKS  = 2 MiB blocks of all the memory a WR can find mapped
 *                   (region + top pages), faulted on each side.
 *   Child bound: CHILD_SECONDS of operations + WR bound + teardown bound
 *     (teardown_bound_ms(), rdma_util.c: below rxe's 50 s forced clean-up).
 *   Slab tolerance: before the run, CALIB_CHILDREN children do a minimal
 *     ODP round (context, pair, MR, one WRITE, clean teardown) and exit; the
 *     largest |Slab after - Slab before| of them (after dropping caches and
 *     shrinking every slab cache, as for every measurement) is the
 *     tolerance.  MR and QP counts (rdma res show) must come back exactly.
 *     A child (or a 4 GiB NO_FAULT prefetch) that leaves Slab above the
 *     tolerance is replayed SLAB_REPLAYS times (the same child seed; other
 *     4 GiB ranges): a leak grows again each time, a cache the kernel grows
 *     once does not, so only growth in every replay too is a violation.
 *
 * Prints TAP; exits 1 on any violation.  A WR that never completes is
 * reported with its seed, op number and description, and the program exits
 * without tearing anything down (that would hang on the same QP).
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
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

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* libibverbs' private command (see odp_prefetch.c); returns a positive errno */
int ibv_cmd_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
		      uint32_t flags, struct ibv_sge *sg_list, uint32_t num_sge);

#define TASK_SIZE_X86	0x7ffffffff000UL	/* x86-64, 4-level paging */
#define CHUNK		(2UL << 20)
#define REGION_BASE	0x200000000000UL	/* 32 TiB */
#define REGION_CHUNKS	4
#define REGION_LEN	(REGION_CHUNKS * CHUNK)
#define POOL_BASE	0x300000000000UL	/* 48 TiB, never mapped */
#define POOL_LEN	(1UL << 40)
#define TOP_BASE	(TASK_SIZE_X86 & ~(CHUNK - 1))	/* 0x7fffffe00000 */
#define TOP_LEN		(TASK_SIZE_X86 - TOP_BASE)
#define HUGE_ADVISE	(4UL << 30)
#define MAX_MRS		24
#define MAX_STALE	16
#define SQ_DEPTH	16
#define RQ_DEPTH	16
#define MAX_SGE		2
#define CQ_DEPTH	(2 * (SQ_DEPTH + RQ_DEPTH))
#define HIST		32

/* QP transport parameters, and what the WR bound derives from them */
#define QP_TIMEOUT	14	/* 4.096 us * 2^14 = 67 ms */
#define QP_RETRY_CNT	7
#define QP_RNR_RETRY	0
/* drivers/infiniband/sw/rxe/rxe_odp.c, include/linux/hmm.h */
#define RXE_ODP_BUSY_TIMEOUT_MS	3000
#define HMM_RANGE_DEFAULT_TIMEOUT_MS	1000

#define CHILD_SECONDS	3
#define CHILD_MAX_OPS	80
#define CALIB_CHILDREN	6

#define ODP_BASE	IBV_ACCESS_ON_DEMAND
#define ACC_FLUSH_GLOBAL	(1 << 8)	/* kernel uAPI bits rdma-core 44 lacks */
#define ACC_FLUSH_PERSISTENT	(1 << 9)

/* ---- operation classes ------------------------------------------------- */

enum cls {
	C_REG, C_REG_IMPLICIT, C_REG_EDGE, C_DEREG, C_ADVISE, C_ADVISE_EDGE,
	C_ADVISE_HUGE, C_READ, C_WRITE, C_SEND, C_CAS, C_FADD, C_EDGE_SGE,
	C_MMAP, C_MUNMAP, C_MPROTECT, C_MADVISE, C_MREMAP, C_FORK, C_NCLS
};
static const char *const cls_name[C_NCLS] = {
	"reg", "reg-implicit", "reg-edge", "dereg", "advise", "advise-edge",
	"advise-huge", "read", "write", "send", "cas", "fadd", "edge-sge",
	"mmap", "munmap", "mprotect", "madvise", "mremap", "fork",
};
static const unsigned int cls_weight[C_NCLS] = {
	[C_REG] = 6, [C_REG_IMPLICIT] = 2, [C_REG_EDGE] = 3, [C_DEREG] = 5,
	[C_ADVISE] = 8, [C_ADVISE_EDGE] = 3, [C_ADVISE_HUGE] = 1,
	[C_READ] = 10, [C_WRITE] = 10, [C_SEND] = 6, [C_CAS] = 4, [C_FADD] = 4,
	[C_EDGE_SGE] = 3, [C_MMAP] = 4, [C_MUNMAP] = 3, [C_MPROTECT] = 3,
	[C_MADVISE] = 5, [C_MREMAP] = 2, [C_FORK] = 1,
};
static bool enabled[C_NCLS];
static unsigned long cls_ops[C_NCLS];

/* ---- state --------------------------------------------------------------- */

struct mr_ent {
	struct ibv_mr *mr;
	uint64_t addr, len;	/* iova == addr */
	unsigned int access;
	bool implicit, odp;
};

struct wr_ent {
	uint64_t id;
	long t_post;
	char desc[160];
};

struct fz {
	bool child;
	uint64_t rng;
	struct rdma_ctx r;	/* own CQ per pair, r.cq unused */
	struct ibv_cq *cq;
	struct ibv_qp *qa, *qb;
	bool pair_err;
	struct mr_ent mrs[MAX_MRS];
	int nmrs;
	uint32_t stale[MAX_STALE];
	int nstale;
	struct wr_ent wrs[SQ_DEPTH + RQ_DEPTH];
	int nwrs;
	uint64_t next_id;
	unsigned long op;
	int memfd;
};

static const char *dev_name = "rxe0";
static uint64_t seed;
static bool verbose;
static long page;
static bool top_ours;
static uint64_t foreign_lo;
static long wr_bound_ms, child_bound_ms, teardown_ms, t_block_ms;
/* the parts of the bounds that do not depend on the machine's speed */
static long t_transport_ms, t_busy_ms, max_blocks;
static long slab_tol_kib = -1;
static char hist[HIST][200];
static unsigned long hist_n;

/* results */
static unsigned long n_verbs, n_wrs, n_recvs, n_children, n_recreate;
static unsigned long v_errno, v_status, v_hang, v_counts, v_slab, v_child, v_advise_einval,
	v_huge, v_other;
static unsigned long wc_hist[32];
static unsigned long errno_seen[C_NCLS][8];	/* small histogram: 0, then first 7 errnos */
static int errno_val[C_NCLS][8];

static uint64_t rnd64(struct fz *f)
{
	/* xorshift64* */
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t rnd(struct fz *f, uint64_t n)
{
	return n ? rnd64(f) % n : 0;
}

static bool coin(struct fz *f, unsigned int pct)
{
	return rnd(f, 100) < pct;
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (x ^ (x >> 31)) | 1;
}

static void logop(struct fz *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logop(struct fz *f, const char *fmt, ...)
{
	char *h = hist[hist_n++ % HIST];
	int n;
	va_list ap;

	n = snprintf(h, sizeof(hist[0]), "%s#%lu ", f->child ? "child " : "", f->op);
	va_start(ap, fmt);
	vsnprintf(h + n, sizeof(hist[0]) - n, fmt, ap);
	va_end(ap);
	if (verbose)
		printf("# %s\n", h);
}

/*
 * The kernel log gets the seed and progress marks: when the kernel panics,
 * the console tail that vm-run prints is all that is left (the test's own
 * output may still sit in a pipe).  They are vm-run marks, so that vm-run's
 * one-line digest of a kernel report names the seed and op to replay.
 */
static void kmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void kmsg(const char *fmt, ...)
{
	char buf[256];
	int fd = open("/dev/kmsg", O_WRONLY), n;
	va_list ap;

	if (fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && write(fd, buf, n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1) < 0) {
		/* nothing to do */
	}
	close(fd);
}

static void dump_hist(void)
{
	unsigned long i = hist_n > HIST ? hist_n - HIST : 0;

	printf("# the last operations:\n");
	for (; i < hist_n; i++)
		printf("#   %s\n", hist[i % HIST]);
}

static void violation(unsigned long *counter, struct fz *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void violation(unsigned long *counter, struct fz *f, const char *fmt, ...)
{
	va_list ap;
	static unsigned long printed;

	(*counter)++;
	if (printed++ == 50)
		printf("# (more violations are counted, not printed)\n");
	if (printed > 50)
		return;
	printf("# VIOLATION (seed %" PRIu64 ", %sop %lu): ", seed, f && f->child ? "child " : "",
	       f ? f->op : 0);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void note_errno(enum cls c, int e)
{
	for (int i = 0; i < 8; i++) {
		if (errno_seen[c][i] && errno_val[c][i] != e)
			continue;
		errno_val[c][i] = e;
		errno_seen[c][i]++;
		return;
	}
}

static bool in_set(int e, const int *set)
{
	for (; *set; set++)
		if (*set == e)
			return true;
	return false;
}

static const char *ename(int e)
{
	static char buf[4][16];
	static unsigned int n;
	char *b = buf[n++ % 4];

	if (!e)
		return "0";
	if (strerrorname_np(e))
		return strerrorname_np(e);
	snprintf(b, sizeof(buf[0]), "errno %d", e);
	return b;
}

/* ---- address safety ----------------------------------------------------- */

/* May the device write [a, a + len)?  Not in the program's own memory. */
static bool safe_target(uint64_t a, uint64_t len)
{
	uint64_t end = a + len;

	if (!len)
		return true;
	if (end < a)	/* wraps: [a, 2^64) and [0, end) */
		return end <= foreign_lo && a >= TASK_SIZE_X86;
	if (end <= foreign_lo || a >= TASK_SIZE_X86)
		return true;
	if (top_ours && a >= TOP_BASE && end <= TASK_SIZE_X86)
		return true;
	return false;
}

static struct mr_ent *find_key(struct fz *f, uint32_t key)
{
	for (int i = 0; i < f->nmrs; i++)
		if (f->mrs[i].mr->lkey == key)
			return &f->mrs[i];
	return NULL;
}

/* Does [a, a + len) through @key reach the end of an implicit MR? */
static bool edge_hit(struct fz *f, uint32_t key, uint64_t a, uint64_t len)
{
	struct mr_ent *m = find_key(f, key);

	if (!m || !m->implicit)
		return false;
	return a >= TASK_SIZE_X86 || a + len > TASK_SIZE_X86 || a + len < a;
}

/* ---- memory measurements ------------------------------------------------ */

static long meminfo_kib(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *fp = fopen("/proc/meminfo", "r");

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = atol(line + n + 1);
			break;
		}
	fclose(fp);
	return v;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	if (fd >= 0) {
		if (write(fd, s, strlen(s)) < 0) {
			/* not every cache can be shrunk; nothing to do */
		}
		close(fd);
	}
}

/*
 * Per-cache slab sizes (KiB, num_slabs * pagesperslab pages) at the last
 * settled_slab() and at a saved base, so that a Slab violation names the
 * caches that grew.  Slab in /proc/meminfo also counts kmalloc() blocks above
 * the largest kmalloc cache, which come from the page allocator and are in no
 * cache: they are the remainder.
 */
#define MAX_CACHES	1024
#define GROWTH_LEN	320	/* room for slab_growth()'s text */
struct slab_snap {
	int n;
	struct { char name[64]; long kib; } c[MAX_CACHES];
};
static struct slab_snap snap_now, snap_base;

static void read_slabinfo(struct slab_snap *s)
{
	char line[512], name[64];
	long slabs, pps;
	FILE *fp = fopen("/proc/slabinfo", "r");

	s->n = 0;
	if (!fp)
		return;
	while (fgets(line, sizeof(line), fp) && s->n < MAX_CACHES) {
		char *sd = strstr(line, ": slabdata ");

		if (!sd || sscanf(line, "%63s %*d %*d %*d %*d %ld", name, &pps) != 2 ||
		    sscanf(sd, ": slabdata %*d %ld", &slabs) != 1)
			continue;
		snprintf(s->c[s->n].name, sizeof(s->c[0].name), "%s", name);
		s->c[s->n++].kib = slabs * pps * (page / 1024);
	}
	fclose(fp);
}

/*
 * "cache +N KiB, ..., large kmalloc +N KiB": the (up to 4) caches that grew
 * most since the base and what of @delta_kib no cache holds.
 */
static const char *slab_growth(long delta_kib)
{
	static char buf[GROWTH_LEN];
	long d[MAX_CACHES], in_caches = 0;
	int len = 0;

	for (int i = 0; i < snap_now.n; i++) {
		d[i] = snap_now.c[i].kib;
		for (int j = 0; j < snap_base.n; j++)
			if (!strcmp(snap_base.c[j].name, snap_now.c[i].name)) {
				d[i] -= snap_base.c[j].kib;
				break;
			}
		in_caches += d[i];
	}
	buf[0] = 0;
	for (int k = 0; k < 4; k++) {
		int best = -1;

		for (int i = 0; i < snap_now.n; i++)
			if (d[i] > 0 && (best < 0 || d[i] > d[best]))
				best = i;
		if (best < 0)
			break;
		len += snprintf(buf + len, sizeof(buf) - len, "%s +%ld KiB, ",
				snap_now.c[best].name, d[best]);
		d[best] = 0;
	}
	snprintf(buf + len, sizeof(buf) - len, "large kmalloc and others %+ld KiB",
		 delta_kib - in_caches);
	return buf;
}

/*
 * The "shrink" files of every slab cache, opened once and kept open: opening
 * them at each measurement would create sysfs dentries and inodes (dentry,
 * inode_cache) after drop_caches freed the last ones, and that is noise of
 * the measurement itself, up to a few hundred KiB.
 */
static int shrink_fds[MAX_CACHES];
static int n_shrink_fds = -1;

static void open_shrink_files(void)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir("/sys/kernel/slab");

	n_shrink_fds = 0;
	if (!d)
		return;
	while ((e = readdir(d)) && n_shrink_fds < MAX_CACHES) {
		int fd;

		if (e->d_name[0] == '.' || e->d_type == DT_LNK)
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", e->d_name);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			shrink_fds[n_shrink_fds++] = fd;
	}
	closedir(d);
}

/* Slab in KiB after dropping reclaimable caches and empty slabs */
static long settled_slab(void)
{
	if (n_shrink_fds < 0)
		open_shrink_files();
	sync();
	write_file("/proc/sys/vm/drop_caches", "2");
	for (int i = 0; i < n_shrink_fds; i++)
		if (pwrite(shrink_fds[i], "1", 1, 0) < 0) {
			/* not every cache can be shrunk; nothing to do */
		}
	read_slabinfo(&snap_now);
	return meminfo_kib("Slab");
}

/* settled_slab(), remembered as the base that slab_growth() compares with */
static long slab_base(void)
{
	long s = settled_slab();

	snap_base = snap_now;
	return s;
}

/*
 * Slab now, measured again (SETTLE_MS apart, for up to SETTLE_TOTAL_MS) while
 * it is above @s0 + tolerance: memory freed after an RCU grace period, by a
 * work item or by kfree_rcu() (whose batches drain every 5 s when memory is
 * not short, KFREE_DRAIN_JIFFIES) comes back late, a leak does not.
 */
#define SETTLE_MS	250
#define SETTLE_TOTAL_MS	6000
static long slab_after(long s0)
{
	long s1 = settled_slab(), t0 = now_ms();

	while (s1 - s0 > slab_tol_kib && now_ms() - t0 < SETTLE_TOTAL_MS) {
		usleep(SETTLE_MS * 1000);
		s1 = settled_slab();
	}
	return s1;
}

/*
 * Growth above the tolerance is a leak only if it repeats: a leak grows again
 * every time the same work is done, a cache the kernel grows once does not.
 * The callers try such work again SLAB_REPLAYS times; repeated() writes the
 * replays' deltas to @buf and says whether every one grew above tolerance.
 */
#define SLAB_REPLAYS	2
static bool repeated(const long *r, char *buf, size_t len)
{
	int grew = 0, n = 0;

	buf[0] = 0;
	for (int i = 0; i < SLAB_REPLAYS; i++) {
		n += snprintf(buf + n, len - n, "%s%+ld", i ? ", " : "", r[i]);
		grew += r[i] > slab_tol_kib;
		if (n >= (int)len)
			break;
	}
	return grew == SLAB_REPLAYS;
}

/* MR and QP counts of the device from "rdma res show" */
static int res_counts(int *mrs, int *qps)
{
	char cmd[128], line[512];
	FILE *p;
	int ok = -1;

	snprintf(cmd, sizeof(cmd), "rdma res show 2>/dev/null");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		char *s = strstr(line, dev_name), *t;

		if (!s || s[strlen(dev_name)] != ':')
			continue;
		t = strstr(s, " mr ");
		*mrs = t ? atoi(t + 4) : -1;
		t = strstr(s, " qp ");
		*qps = t ? atoi(t + 4) : -1;
		ok = (*mrs >= 0 && *qps >= 0) ? 0 : -1;
	}
	pclose(p);
	return ok;
}

/* ---- QP pair -------------------------------------------------------------- */

static struct ibv_qp *make_qp(struct fz *f)
{
	struct ibv_qp_init_attr attr = {
		.send_cq = f->cq, .recv_cq = f->cq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = SQ_DEPTH, .max_recv_wr = RQ_DEPTH,
			 .max_send_sge = MAX_SGE, .max_recv_sge = MAX_SGE },
	};
	struct ibv_qp_attr init = {
		.qp_state = IBV_QPS_INIT, .port_num = f->r.port,
		.qp_access_flags = IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_LOCAL_WRITE,
	};
	struct ibv_qp *qp = ibv_create_qp(f->r.pd, &attr);

	if (qp && ibv_modify_qp(qp, &init, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				IBV_QP_PORT | IBV_QP_ACCESS_FLAGS)) {
		ibv_destroy_qp(qp);
		qp = NULL;
	}
	return qp;
}

static int connect_qp(struct fz *f, struct ibv_qp *qp, uint32_t dqpn)
{
	union ibv_gid gid;
	struct ibv_qp_attr rtr = {
		.qp_state = IBV_QPS_RTR, .path_mtu = IBV_MTU_1024,
		.dest_qp_num = dqpn, .max_dest_rd_atomic = 8, .min_rnr_timer = 1,
		.ah_attr = { .is_global = 1, .port_num = f->r.port,
			     .grh = { .sgid_index = f->r.gid_index, .hop_limit = 1 } },
	};
	struct ibv_qp_attr rts = {
		.qp_state = IBV_QPS_RTS, .timeout = QP_TIMEOUT,
		.retry_cnt = QP_RETRY_CNT, .rnr_retry = QP_RNR_RETRY, .max_rd_atomic = 8,
	};

	if (ibv_query_gid(f->r.ctx, f->r.port, f->r.gid_index, &gid))
		return -1;
	rtr.ah_attr.grh.dgid = gid;
	if (ibv_modify_qp(qp, &rtr, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			  IBV_QP_MIN_RNR_TIMER))
		return -1;
	return ibv_modify_qp(qp, &rts, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			     IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
}

static void pair_destroy(struct fz *f)
{
	if (f->qa)
		ibv_destroy_qp(f->qa);
	if (f->qb)
		ibv_destroy_qp(f->qb);
	if (f->cq)
		ibv_destroy_cq(f->cq);
	f->qa = f->qb = NULL;
	f->cq = NULL;
	f->nwrs = 0;
	f->pair_err = false;
}

static int pair_create(struct fz *f)
{
	f->cq = ibv_create_cq(f->r.ctx, CQ_DEPTH, NULL, NULL, 0);
	if (!f->cq)
		return -1;
	f->qa = make_qp(f);
	f->qb = make_qp(f);
	if (!f->qa || !f->qb || connect_qp(f, f->qa, f->qb->qp_num) ||
	    connect_qp(f, f->qb, f->qa->qp_num)) {
		pair_destroy(f);
		return -1;
	}
	f->pair_err = false;
	return 0;
}

/* ---- completions ---------------------------------------------------------- */

static void take_wc(struct fz *f, struct ibv_wc *wc)
{
	int i;

	if (wc->status < 32)
		wc_hist[wc->status]++;
	if (wc->status == IBV_WC_FATAL_ERR || wc->status == IBV_WC_GENERAL_ERR ||
	    wc->status > IBV_WC_TM_RNDV_INCOMPLETE)
		violation(&v_status, f, "completion of WR %" PRIu64 " with status %d (%s)",
			  (uint64_t)wc->wr_id, wc->status, ibv_wc_status_str(wc->status));
	if (wc->status != IBV_WC_SUCCESS)
		f->pair_err = true;
	for (i = 0; i < f->nwrs; i++)
		if (f->wrs[i].id == wc->wr_id)
			break;
	if (i == f->nwrs) {
		violation(&v_other, f, "completion for WR id %" PRIu64 " that is not outstanding",
			  (uint64_t)wc->wr_id);
		return;
	}
	if (verbose)
		printf("# WR %" PRIu64 " done: %s (%s)\n", (uint64_t)wc->wr_id,
		       ibv_wc_status_str(wc->status), f->wrs[i].desc);
	f->wrs[i] = f->wrs[--f->nwrs];
}

static void poll_some(struct fz *f)
{
	struct ibv_wc wc[8];
	int n;

	while (f->cq && (n = ibv_poll_cq(f->cq, 8, wc)) > 0)
		for (int i = 0; i < n; i++)
			take_wc(f, &wc[i]);
}

static void hang_exit(struct fz *f, struct wr_ent *w, long waited);
static long measure_block(struct fz *f);

/* The WR and child bounds for a 2 MiB device fault of @block_ms */
static void set_bounds(long block_ms)
{
	t_block_ms = block_ms;
	wr_bound_ms = t_transport_ms + t_busy_ms + SQ_DEPTH * 2 * max_blocks * t_block_ms;
	child_bound_ms = CHILD_SECONDS * 1000 + wr_bound_ms + teardown_ms;
}

/*
 * A WR or a child is past its bound.  Before calling it a hang, time a
 * 2 MiB fault again: if the machine got slower since the calibration (other
 * VMs and builds on the host), the bounds grow with what the fault now
 * takes, said in the log, and the caller waits on.  What never completes
 * still fails: the new bounds are as finite as the fault just timed.
 */
static bool bounds_grow(struct fz *f)
{
	long t = measure_block(f), old = wr_bound_ms;

	if (t <= t_block_ms)
		return false;
	set_bounds(t);
	printf("# a 2 MiB fault now takes %ld ms: WR bound %ld -> %ld ms, child bound %ld ms\n",
	       t, old, wr_bound_ms, child_bound_ms);
	return true;
}

/*
 * Wait for every posted send WR (receives complete only when a SEND
 * matches them, or are flushed with the pair).  Recreates an errored pair.
 */
static void drain(struct fz *f)
{
	long t0 = now_ms();

	for (;;) {
		int sends = 0;

		poll_some(f);
		for (int i = 0; i < f->nwrs; i++)
			if (!(f->wrs[i].id >> 63)) {
				sends++;
				if (now_ms() - t0 > wr_bound_ms &&
				    (!bounds_grow(f) || now_ms() - t0 > wr_bound_ms))
					hang_exit(f, &f->wrs[i], now_ms() - t0);
			}
		if (!sends)
			break;
		usleep(200);
	}
	if (f->pair_err || !f->qa) {
		pair_destroy(f);
		if (pair_create(f))
			violation(&v_other, f, "cannot recreate the QP pair: %s", strerror(errno));
		n_recreate++;
	}
}

/* ---- MRs ------------------------------------------------------------------ */

static void add_stale(struct fz *f, uint32_t key)
{
	f->stale[f->nstale % MAX_STALE] = key;
	f->nstale++;
}

static unsigned int rnd_access(struct fz *f)
{
	static const unsigned int bits[] = {
		IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_WRITE, IBV_ACCESS_REMOTE_READ,
		IBV_ACCESS_REMOTE_ATOMIC, IBV_ACCESS_MW_BIND, IBV_ACCESS_HUGETLB,
		IBV_ACCESS_RELAXED_ORDERING, ACC_FLUSH_GLOBAL, ACC_FLUSH_PERSISTENT,
	};
	unsigned int a;

	if (coin(f, 60))	/* the usual full access */
		return IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		       IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;
	a = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (coin(f, i < 4 ? 50 : 8))
			a |= bits[i];
	if (coin(f, 3))
		a |= 1u << (10 + rnd(f, 12));	/* a bit nobody knows */
	return a;
}

static const int reg_errnos[] = { EINVAL, EOPNOTSUPP, ENOMEM, EFAULT, EPERM, 0 };

static void do_reg(struct fz *f, enum cls c, uint64_t addr, uint64_t len, unsigned int access)
{
	struct ibv_mr *mr;
	bool implicit = c == C_REG_IMPLICIT;

	if (f->nmrs == MAX_MRS)
		return;
	n_verbs++;
	errno = 0;
	mr = ibv_reg_mr(f->r.pd, (void *)(uintptr_t)addr, (size_t)len, access);
	logop(f, "%s addr %#" PRIx64 " len %#" PRIx64 " access %#x: %s", cls_name[c], addr, len,
	      access, mr ? "ok" : ename(errno));
	note_errno(c, mr ? 0 : errno);
	if (!mr) {
		if (!in_set(errno, reg_errnos))
			violation(&v_errno, f, "ibv_reg_mr(%#" PRIx64 ", %#" PRIx64 ", %#x): %s, not in "
				  "{EINVAL EOPNOTSUPP ENOMEM EFAULT EPERM}", addr, len, access, ename(errno));
		return;
	}
	f->mrs[f->nmrs++] = (struct mr_ent){
		.mr = mr, .addr = implicit ? 0 : addr, .len = implicit ? UINT64_MAX : len,
		.access = access, .implicit = implicit, .odp = access & IBV_ACCESS_ON_DEMAND,
	};
}

static uint64_t rnd_len(struct fz *f, uint64_t cap)
{
	uint64_t l;

	switch (rnd(f, 8)) {
	case 0: l = 0; break;
	case 1: l = 1; break;
	case 2: l = page - 1; break;
	case 3: l = page; break;
	case 4: l = 1 + rnd(f, 64 << 10); break;
	case 5: l = 1 + rnd(f, CHUNK); break;
	case 6: l = 1 + rnd(f, REGION_LEN); break;
	default: l = 1 + rnd(f, 16 * page); break;
	}
	return cap && l > cap ? cap : l;
}

static void op_reg(struct fz *f)
{
	uint64_t addr, len;
	unsigned int access = rnd_access(f);

	switch (rnd(f, 5)) {
	case 0:	/* whole region */
		addr = REGION_BASE;
		len = REGION_LEN;
		break;
	case 1:	/* part of the region, page aligned or not */
		addr = REGION_BASE + rnd(f, REGION_LEN);
		if (coin(f, 70))
			addr &= ~(uint64_t)(page - 1);
		len = 1 + rnd(f, REGION_BASE + REGION_LEN - addr);
		break;
	case 2:	/* region and beyond, into the never-mapped pool */
		addr = REGION_BASE + rnd(f, REGION_CHUNKS) * CHUNK;
		len = POOL_BASE + rnd(f, 64 * CHUNK) - addr;
		break;
	case 3:	/* the never-mapped pool */
		addr = POOL_BASE + rnd(f, POOL_LEN / 2) / page * page;
		len = rnd_len(f, 0) + page;
		break;
	default:	/* a random range */
		addr = rnd64(f) & ((1ULL << (rnd(f, 64) + 1)) - 1);
		len = rnd64(f) & ((1ULL << (rnd(f, 48) + 1)) - 1);
		break;
	}
	if (coin(f, 92))
		access |= ODP_BASE;
	else if (addr < REGION_BASE || addr + len > REGION_BASE + REGION_LEN || len > CHUNK)
		access |= ODP_BASE;	/* pinned only for small region ranges */
	do_reg(f, C_REG, addr, len, access);
}

static void op_reg_implicit(struct fz *f)
{
	do_reg(f, C_REG_IMPLICIT, 0, SIZE_MAX, rnd_access(f) | ODP_BASE);
}

static void op_reg_edge(struct fz *f)
{
	const uint64_t addrs[] = { 0, 4096, TASK_SIZE_X86 - 4096, TASK_SIZE_X86, 1ULL << 47,
				   (uint64_t)-4096, TOP_BASE, TASK_SIZE_X86 - CHUNK };
	uint64_t a = addrs[rnd(f, sizeof(addrs) / sizeof(addrs[0]))], len;

	switch (rnd(f, 7)) {
	case 0: len = 0; break;
	case 1: len = 1; break;
	case 2: len = page - 1; break;
	case 3: len = page; break;
	case 4: len = 1ULL << (30 + rnd(f, 17)); break;	/* huge */
	case 5: len = -a + rnd(f, 3 * page); break;	/* ends at or wraps past 2^64 */
	default: len = TASK_SIZE_X86 - a + rnd(f, 3) * page - page; break;	/* around TASK_SIZE */
	}
	do_reg(f, C_REG_EDGE, a, len, rnd_access(f) | ODP_BASE);
}

static void op_dereg(struct fz *f)
{
	int i, ret;
	struct mr_ent m;

	if (!f->nmrs)
		return;
	i = rnd(f, f->nmrs);
	m = f->mrs[i];
	n_verbs++;
	ret = ibv_dereg_mr(m.mr);
	logop(f, "dereg key %#x (%s %#" PRIx64 "+%#" PRIx64 "): %s", m.mr->lkey,
	      m.implicit ? "implicit" : "explicit", m.addr, m.len, ename(ret));
	note_errno(C_DEREG, ret);
	if (ret) {
		violation(&v_errno, f, "ibv_dereg_mr: %s, want success", ename(ret));
		return;
	}
	add_stale(f, m.mr->lkey);
	f->mrs[i] = f->mrs[--f->nmrs];
}

/* ---- keys, addresses ------------------------------------------------------ */

static uint32_t pick_key(struct fz *f, struct mr_ent **ent)
{
	unsigned int k = rnd(f, 100);

	*ent = NULL;
	if (f->nmrs && k < 70) {
		*ent = &f->mrs[rnd(f, f->nmrs)];
		return (*ent)->mr->lkey;
	}
	if (f->nmrs && k < 80)	/* a live index with another key byte */
		return (f->mrs[rnd(f, f->nmrs)].mr->lkey & ~0xffu) | (uint32_t)rnd(f, 256);
	if (f->nstale && k < 90)
		return f->stale[rnd(f, f->nstale < MAX_STALE ? f->nstale : MAX_STALE)];
	if (k < 95)
		return (uint32_t)(rnd(f, 64) << 8 | rnd(f, 256));
	return coin(f, 50) ? 0 : UINT32_MAX;
}

static uint64_t pick_addr(struct fz *f, struct mr_ent *m, uint64_t len)
{
	uint64_t a;

	switch (rnd(f, 10)) {
	case 0: case 1: case 2: case 3:	/* inside the MR, or the region for an implicit MR */
		if (m && !m->implicit && m->len && m->len < (1ULL << 48)) {
			a = m->addr + rnd(f, m->len);
			if (coin(f, 50) && m->len >= len)
				a = m->addr + rnd(f, m->len - len + 1);
			return a;
		}
		/* fall through */
	case 4: case 5:
		return REGION_BASE + rnd(f, REGION_LEN);
	case 6:	/* around the region's ends */
		return coin(f, 50) ? REGION_BASE - rnd(f, 2 * page) : REGION_BASE + REGION_LEN - rnd(f, 2 * page);
	case 7:
		return POOL_BASE + rnd(f, POOL_LEN);
	case 8:	/* around an MR's ends */
		if (m && !m->implicit)
			return coin(f, 50) ? m->addr - rnd(f, 64) : m->addr + m->len - rnd(f, 64);
		return REGION_BASE + rnd(f, REGION_LEN);
	default:	/* anywhere at all */
		return rnd64(f) >> rnd(f, 20);
	}
}

/*
 * A key and range that are valid: an ODP MR over (part of) the region, the
 * range inside both; @len is cut to fit.  Half of the WRs and advice calls
 * are drawn so, or nearly everything would fail at the first check.
 */
static bool pick_valid(struct fz *f, uint32_t *key, uint64_t *addr, uint32_t *len)
{
	int cand[MAX_MRS], n = 0;
	struct mr_ent *m;
	uint64_t lo, hi;

	for (int i = 0; i < f->nmrs; i++) {
		m = &f->mrs[i];
		if (m->odp && (m->implicit || (m->addr < REGION_BASE + REGION_LEN &&
					       m->addr + m->len > REGION_BASE && m->addr + m->len > m->addr)))
			cand[n++] = i;
	}
	if (!n)
		return false;
	m = &f->mrs[cand[rnd(f, n)]];
	lo = m->implicit || m->addr < REGION_BASE ? REGION_BASE : m->addr;
	hi = m->implicit || m->addr + m->len > REGION_BASE + REGION_LEN ? REGION_BASE + REGION_LEN :
	     m->addr + m->len;
	*key = m->mr->lkey;
	*addr = lo + rnd(f, hi - lo);
	if (*len > hi - *addr)
		*len = hi - *addr;
	return true;
}

/* ---- advise --------------------------------------------------------------- */

enum { ADV_PF = IBV_ADVISE_MR_ADVICE_PREFETCH, ADV_PFW = IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
       ADV_NF = IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT };

/* The answer the kernel must give for one SGE: 0 if valid */
static int sge_verdict(struct fz *f, unsigned int advice, const struct ibv_sge *s, bool *zero_past)
{
	struct mr_ent *m = find_key(f, s->lkey);
	uint64_t end;

	*zero_past = false;
	if (!m)
		return ENOENT;
	if (!m->odp)
		return EINVAL;
	if (advice == ADV_PFW && !(m->access & IBV_ACCESS_LOCAL_WRITE))
		return EPERM;
	/* mr_check_range() */
	if (s->addr < m->addr || s->length > m->len || s->addr - m->addr > m->len - s->length)
		return EINVAL;
	/* the umem: [0, TASK_SIZE) for an implicit MR */
	end = m->implicit ? TASK_SIZE_X86 : m->addr + m->len;
	if (s->addr >= end || s->length > end - s->addr) {
		/* nothing to prefetch at or past the end: either answer */
		if (!s->length)
			*zero_past = true;
		return s->length ? EINVAL : 0;
	}
	return 0;
}

static void do_advise(struct fz *f, enum cls c, unsigned int advice, uint32_t flags,
		      struct ibv_sge *sg, uint32_t n)
{
	static const int valid_flush[] = { EFAULT, EPERM, EBUSY, 0 };
	static const int valid_nf[] = { EBUSY, 0 };
	int ret, want = 0;
	bool zero_past_any = false;
	const int *also = NULL;
	char desc[400];
	int o = 0;

	o += snprintf(desc + o, sizeof(desc) - o, "advice %u flags %#x sges %u:", advice, flags, n);
	for (uint32_t i = 0; i < n && o < (int)sizeof(desc); i++)
		o += snprintf(desc + o, sizeof(desc) - o, " {%#x %#" PRIx64 "+%#x}", sg[i].lkey,
			      (uint64_t)sg[i].addr, sg[i].length);

	if (flags & ~IBV_ADVISE_MR_FLAG_FLUSH || !n)
		want = EINVAL;
	else if (advice > ADV_NF)
		want = EOPNOTSUPP;
	else {
		for (uint32_t i = 0; i < n && !want; i++) {
			bool zp;

			want = sge_verdict(f, advice, &sg[i], &zp);
			zero_past_any |= zp;
		}
		if (!want && flags & IBV_ADVISE_MR_FLAG_FLUSH)
			also = advice == ADV_NF ? valid_nf : valid_flush;
	}
	n_verbs++;
	ret = ibv_cmd_advise_mr(f->r.pd, advice, flags, sg, n);
	if (ret < 0)
		ret = -ret;
	logop(f, "%s %s: %s (want %s%s)", cls_name[c], desc, ename(ret), ename(want),
	      also ? " or a fault error" : "");
	note_errno(c, ret);
	if (ret == want || ret == ENOMEM || (also && in_set(ret, also)))
		return;
	if (zero_past_any && ret == EINVAL)
		return;	/* a zero-length SGE past the end: either answer */
	if (want == EOPNOTSUPP && ret == EINVAL && advice > 255)
		return;	/* uverbs_get_const(): does not fit the enum */
	if (want == EINVAL && c != C_ADVISE_HUGE)
		violation(&v_advise_einval, f, "advise_mr %s: %s, want EINVAL (a range outside its MR)",
			  desc, ename(ret));
	else
		violation(&v_errno, f, "advise_mr %s: %s, want %s%s", desc, ename(ret), ename(want),
			  also ? " or EFAULT/EPERM/EBUSY (FLUSH)" : "");
}

static void rnd_sge(struct fz *f, struct ibv_sge *s, bool edge)
{
	struct mr_ent *m;

	s->lkey = pick_key(f, &m);
	s->length = rnd_len(f, 0);
	if (coin(f, 3))
		s->length = (uint32_t)rnd64(f);
	s->addr = pick_addr(f, m, s->length);
	if (edge && m) {
		/* at or around the end of the MR */
		uint64_t end = m->implicit ? TASK_SIZE_X86 : m->addr + m->len;

		s->addr = end - s->length / 2 + rnd(f, 3) * page - page;
		if (coin(f, 30))
			s->addr = end + rnd(f, 1ULL << 40);
	}
}

static void op_advise(struct fz *f, bool edge)
{
	struct ibv_sge sg[4];
	unsigned int advice = rnd(f, 3), n = 1 + rnd(f, 4);
	uint32_t flags = coin(f, 60) ? IBV_ADVISE_MR_FLAG_FLUSH : 0;

	if (coin(f, 4))
		advice = 3 + rnd(f, 13);
	if (coin(f, 2))
		advice = (unsigned int)rnd64(f);
	if (coin(f, 4))
		flags |= 1u << (1 + rnd(f, 31));
	if (coin(f, 2))
		n = 0;
	bool valid = !edge && coin(f, 50);

	for (unsigned int i = 0; i < n; i++) {
		rnd_sge(f, &sg[i], edge && (i == n - 1 || coin(f, 50)));
		if (valid && !pick_valid(f, &sg[i].lkey, &sg[i].addr, &sg[i].length))
			valid = false;
		/* outside advise-edge, nothing reaches an MR's end */
		if (!edge) {
			bool zp;
			struct mr_ent *m = find_key(f, sg[i].lkey);

			if (sge_verdict(f, advice, &sg[i], &zp) == EINVAL && m && m->odp &&
			    m->implicit)
				sg[i].addr = REGION_BASE + rnd(f, REGION_LEN),
				sg[i].length = rnd_len(f, CHUNK);
			/* no huge no-fault ranges outside advise-huge */
			if (sg[i].length > REGION_LEN)
				sg[i].length = rnd_len(f, REGION_LEN);
		}
	}
	do_advise(f, edge ? C_ADVISE_EDGE : C_ADVISE, advice, flags, sg, n);
}

static struct mr_ent *huge_mr(struct fz *f)
{
	for (int i = 0; i < f->nmrs; i++)
		if (f->mrs[i].odp && !f->mrs[i].implicit && f->mrs[i].addr == POOL_BASE &&
		    f->mrs[i].len == POOL_LEN)
			return &f->mrs[i];
	do_reg(f, C_ADVISE_HUGE, POOL_BASE, POOL_LEN, ODP_BASE | IBV_ACCESS_LOCAL_WRITE |
	       IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
	return f->nmrs && f->mrs[f->nmrs - 1].addr == POOL_BASE ? &f->mrs[f->nmrs - 1] : NULL;
}

/*
 * NO_FAULT prefetch of 4 GiB that nothing maps: no kernel memory may stay.
 * Returns the Slab delta (0 in a child, which does not measure).
 */
static long advise_huge_once(struct fz *f, struct mr_ent *m)
{
	struct ibv_sge sg;
	long s0, s1;

	sg.lkey = m->mr->lkey;
	sg.addr = POOL_BASE + rnd(f, POOL_LEN / HUGE_ADVISE - 1) * HUGE_ADVISE;
	sg.length = (uint32_t)(HUGE_ADVISE - page);	/* an SGE length is 32 bits */
	if (!f->child)
		drain(f);	/* no packet of an earlier WR in flight */
	s0 = f->child ? 0 : slab_base();
	do_advise(f, C_ADVISE_HUGE, ADV_NF, IBV_ADVISE_MR_FLAG_FLUSH, &sg, 1);
	if (f->child)
		return 0;
	s1 = slab_after(s0);
	printf("# advise-huge: NO_FAULT prefetch of %u MiB nothing maps at %#" PRIx64 ": Slab %ld -> "
	       "%ld KiB\n", sg.length >> 20, sg.addr, s0, s1);
	return s1 - s0;
}

/*
 * A prefetch that grew Slab is followed by SLAB_REPLAYS more of other 4 GiB
 * ranges (see repeated()): memory kept per unmapped page grows again with
 * each new range, not with the same one.
 */
static void op_advise_huge(struct fz *f)
{
	struct mr_ent *m = huge_mr(f);
	char growth[GROWTH_LEN], replays[64];
	long d, r[SLAB_REPLAYS];

	if (!m)
		return;
	d = advise_huge_once(f, m);
	if (f->child || d <= slab_tol_kib)
		return;
	snprintf(growth, sizeof(growth), "%s", slab_growth(d));
	for (int i = 0; i < SLAB_REPLAYS; i++)
		r[i] = advise_huge_once(f, m);
	if (repeated(r, replays, sizeof(replays)))
		violation(&v_huge, f, "NO_FAULT prefetches of 4 GiB of unmapped memory grew Slab by %ld "
			  "KiB (%s), then %s KiB (tolerance %ld KiB): kernel memory for pages that "
			  "are not mirrored", d, growth, replays, slab_tol_kib);
	else
		printf("# advise-huge: Slab +%ld KiB (%s), then %s KiB: not repeated, no leak\n", d,
		       growth, replays);
}

/* ---- work requests -------------------------------------------------------- */

static void hang_exit(struct fz *f, struct wr_ent *w, long waited)
{
	violation(&v_hang, f, "WR %" PRIu64 " (%s) did not complete in %ld ms (bound %ld ms)",
		  w->id, w->desc, waited, wr_bound_ms);
	/* a QP processes its WRs in order: the culprit may be a later one */
	printf("# outstanding WRs of the pair:\n");
	for (int i = 0; i < f->nwrs; i++)
		printf("#   WR %" PRIu64 " %s\n", (uint64_t)(f->wrs[i].id & ~(1ULL << 63)), f->wrs[i].desc);
	dump_hist();
	if (f->child) {
		fflush(stdout);
		_exit(3);
	}
	tap(false, "every WR completes within %ld ms: WR %" PRIu64 " (%s) hung; replay: --seed %" PRIu64
	    " --ops %lu", wr_bound_ms, w->id, w->desc, seed, f->op + 1);
	tap_done();
	/* no teardown: destroying the QP would wait for the hung WR too */
	fflush(stdout);
	_exit(1);
}

static const int post_errnos[] = { EINVAL, ENOMEM, 0 };

/* Draw a range the device may write (and that may not reach TASK_SIZE through
 * an implicit key unless @edge); false if none found */
static bool draw_range(struct fz *f, uint32_t *key, uint64_t *addr, uint32_t len, bool writes,
		       bool edge, bool atomic, bool valid)
{
	for (int tries = 0; tries < 16; tries++) {
		struct mr_ent *m;

		*key = pick_key(f, &m);
		*addr = pick_addr(f, m, len);
		if (valid) {
			uint32_t l = len;

			if (!pick_valid(f, key, addr, &l))
				return false;
			if (l < len)	/* keep the length the WR needs: move back */
				*addr = *addr + l >= REGION_BASE + len ? *addr + l - len : REGION_BASE;
		}
		if (edge) {
			struct mr_ent *im = NULL;

			for (int i = 0; i < f->nmrs; i++)
				if (f->mrs[i].implicit)
					im = &f->mrs[i];
			if (!im)
				return false;
			*key = im->mr->lkey;
			/* cross, touch or pass TASK_SIZE */
			*addr = TASK_SIZE_X86 - len / 2 - (atomic ? 0 : rnd(f, 16)) + rnd(f, 2) * page;
			if (coin(f, 20))
				*addr = TASK_SIZE_X86 + rnd(f, 1ULL << 40);
			if (coin(f, 10))
				*addr = 1ULL << 47;
		}
		if (atomic && coin(f, 90))
			*addr &= ~7ULL;
		if (writes && !safe_target(*addr, len))
			continue;
		if (!enabled[C_EDGE_SGE] && edge_hit(f, *key, *addr, len))
			continue;
		return true;
	}
	return false;
}

static void op_wr(struct fz *f, enum cls c, bool edge)
{
	struct ibv_sge sge[MAX_SGE], rsge[MAX_SGE];
	struct ibv_send_wr wr = {}, *bad;
	struct ibv_recv_wr rwr = {}, *rbad;
	unsigned int nsge = c == C_CAS || c == C_FADD ? 1 : rnd(f, MAX_SGE + 1);
	bool atomic = c == C_CAS || c == C_FADD;
	bool local_writes = c == C_READ || atomic;
	bool remote_writes = c == C_WRITE || atomic;
	uint32_t len;
	uint64_t total = 0;
	struct wr_ent *w;
	int ret, o;
	bool valid = coin(f, 50);

	if (!f->qa || f->nwrs >= SQ_DEPTH)
		drain(f);
	if (!f->qa)
		return;
	if (edge && coin(f, 50) && c != C_SEND)
		nsge = 1;
	if (edge)
		valid = false;
	for (unsigned int i = 0; i < nsge; i++) {
		len = atomic ? 8 : rnd_len(f, valid ? CHUNK / 2 : 0);
		if (atomic && coin(f, 5))
			len = rnd_len(f, 0);
		if (!draw_range(f, &sge[i].lkey, &sge[i].addr, len, local_writes, edge && i == 0, atomic,
				 valid))
			return;
		sge[i].length = len;
		total += len;
	}
	if (atomic && nsge == 1 && coin(f, 3))
		nsge = 0;
	wr.wr_id = ++f->next_id;
	wr.sg_list = sge;
	wr.num_sge = nsge;
	wr.send_flags = IBV_SEND_SIGNALED;
	if (c == C_READ || c == C_WRITE || atomic) {
		uint32_t rkey;
		uint64_t raddr;

		if (!draw_range(f, &rkey, &raddr, atomic ? 8 : (uint32_t)total, remote_writes,
				edge && coin(f, 50), atomic, valid))
			return;
		if (atomic) {
			wr.wr.atomic.remote_addr = raddr;
			wr.wr.atomic.rkey = rkey;
			wr.wr.atomic.compare_add = rnd64(f) & 0xff;
			wr.wr.atomic.swap = rnd64(f);
		} else {
			wr.wr.rdma.remote_addr = raddr;
			wr.wr.rdma.rkey = rkey;
		}
	}
	wr.opcode = c == C_READ ? IBV_WR_RDMA_READ : c == C_WRITE ? IBV_WR_RDMA_WRITE :
		    c == C_CAS ? IBV_WR_ATOMIC_CMP_AND_SWP : c == C_FADD ? IBV_WR_ATOMIC_FETCH_AND_ADD :
		    IBV_WR_SEND;

	if (c == C_SEND && coin(f, 75)) {
		unsigned int rn = rnd(f, MAX_SGE + 1);

		for (unsigned int i = 0; i < rn; i++) {
			len = coin(f, 50) ? (uint32_t)total : rnd_len(f, 0);
			if (!draw_range(f, &rsge[i].lkey, &rsge[i].addr, len, true, false, false, valid))
				return;
			rsge[i].length = len;
		}
		rwr.wr_id = (1ULL << 63) | ++f->next_id;
		rwr.sg_list = rsge;
		rwr.num_sge = rn;
		n_verbs++;
		ret = ibv_post_recv(f->qb, &rwr, &rbad);
		logop(f, "post RECV %u sges%s%#x %#" PRIx64 "+%#x: %s", rn, rn ? " first " : "",
		      rn ? rsge[0].lkey : 0, rn ? (uint64_t)rsge[0].addr : 0, rn ? rsge[0].length : 0,
		      ename(ret));
		note_errno(c, ret);
		if (ret && !in_set(ret, post_errnos))
			violation(&v_errno, f, "ibv_post_recv: %s, not in {EINVAL ENOMEM}", ename(ret));
		if (!ret) {
			w = &f->wrs[f->nwrs++];
			w->id = rwr.wr_id;
			w->t_post = now_ms();
			snprintf(w->desc, sizeof(w->desc), "RECV");
			n_recvs++;
		} else {
			f->pair_err = true;
		}
	}

	n_verbs++;
	ret = ibv_post_send(f->qa, &wr, &bad);
	w = &f->wrs[f->nwrs];
	o = snprintf(w->desc, sizeof(w->desc), "%s%s", cls_name[c], edge ? "(edge)" : "");
	for (unsigned int i = 0; i < nsge && o < (int)sizeof(w->desc); i++)
		o += snprintf(w->desc + o, sizeof(w->desc) - o, " l{%#x %#" PRIx64 "+%#x}", sge[i].lkey,
			      (uint64_t)sge[i].addr, sge[i].length);
	if (c != C_SEND && o < (int)sizeof(w->desc))
		snprintf(w->desc + o, sizeof(w->desc) - o, " r{%#x %#" PRIx64 "}",
			 atomic ? wr.wr.atomic.rkey : wr.wr.rdma.rkey,
			 (uint64_t)(atomic ? wr.wr.atomic.remote_addr : wr.wr.rdma.remote_addr));
	logop(f, "post WR %" PRIu64 " %s: %s", (uint64_t)wr.wr_id, w->desc, ename(ret));
	note_errno(c, ret);
	if (ret) {
		if (!in_set(ret, post_errnos))
			violation(&v_errno, f, "ibv_post_send: %s, not in {EINVAL ENOMEM}", ename(ret));
		f->pair_err = true;
		return;
	}
	w->id = wr.wr_id;
	w->t_post = now_ms();
	f->nwrs++;
	n_wrs++;
}

/* ---- memory changes in the region ------------------------------------------ */

static void rnd_range(struct fz *f, uint64_t *a, uint64_t *len)
{
	uint64_t pages = REGION_LEN / page, first = rnd(f, pages), n;

	n = coin(f, 20) ? CHUNK / page : 1 + rnd(f, coin(f, 50) ? 16 : pages - first);
	if (first + n > pages)
		n = pages - first;
	*a = REGION_BASE + first * page;
	*len = n * page;
}

static const int prots[] = { PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE, PROT_READ | PROT_WRITE };

static void op_mmap(struct fz *f)
{
	uint64_t a, len;
	int prot = prots[rnd(f, 4)], kind = rnd(f, 4), flags = MAP_FIXED;
	void *p;

	rnd_range(f, &a, &len);
	switch (kind) {
	case 0: case 1:
		p = mmap((void *)a, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		break;
	case 2:
		p = mmap((void *)a, len, prot, flags | MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		break;
	default:	/* a sparse shared file (tmpfs), at a random offset */
		p = mmap((void *)a, len, prot, flags | (coin(f, 70) ? MAP_SHARED : MAP_PRIVATE),
			 f->memfd, rnd(f, 64) * page);
		break;
	}
	logop(f, "mmap %#" PRIx64 "+%#" PRIx64 " kind %d prot %d: %s", a, len, kind, prot,
	      p == MAP_FAILED ? strerror(errno) : "ok");
	if (p != MAP_FAILED && prot & PROT_WRITE && coin(f, 60))
		madvise(p, len, MADV_POPULATE_WRITE);
	if (p != MAP_FAILED && coin(f, 30))
		madvise(p, len, MADV_HUGEPAGE);
}

static void op_munmap(struct fz *f)
{
	uint64_t a, len;
	int ret;

	rnd_range(f, &a, &len);
	ret = munmap((void *)a, len);
	logop(f, "munmap %#" PRIx64 "+%#" PRIx64 ": %d", a, len, ret);
}

static void op_mprotect(struct fz *f)
{
	uint64_t a, len;
	int prot = prots[rnd(f, 4)], ret;

	rnd_range(f, &a, &len);
	ret = mprotect((void *)a, len, prot);
	logop(f, "mprotect %#" PRIx64 "+%#" PRIx64 " %d: %d", a, len, prot, ret);
}

static void op_madvise(struct fz *f)
{
	static const int adv[] = { MADV_DONTNEED, MADV_FREE, MADV_COLD, MADV_PAGEOUT,
				   MADV_HUGEPAGE, MADV_POPULATE_WRITE };
	static const char *const an[] = { "DONTNEED", "FREE", "COLD", "PAGEOUT", "HUGEPAGE",
					   "POPULATE_WRITE" };
	uint64_t a, len;
	int k = rnd(f, 6), ret;

	rnd_range(f, &a, &len);
	ret = madvise((void *)a, len, adv[k]);
	logop(f, "madvise %#" PRIx64 "+%#" PRIx64 " %s: %d", a, len, an[k], ret);
}

static void op_mremap(struct fz *f)
{
	uint64_t a, len, b, blen;
	void *p;

	rnd_range(f, &a, &len);
	rnd_range(f, &b, &blen);
	if (coin(f, 30)) {	/* shrink in place */
		p = mremap((void *)a, len, len > (uint64_t)page ? len / 2 / page * page : len, 0);
		logop(f, "mremap shrink %#" PRIx64 "+%#" PRIx64 ": %s", a, len,
		      p == MAP_FAILED ? strerror(errno) : "ok");
		return;
	}
	/* move into the region, replacing whatever the region had there */
	if (b + len > REGION_BASE + REGION_LEN)
		len = REGION_BASE + REGION_LEN - b;
	if (a + len > REGION_BASE + REGION_LEN)
		len = REGION_BASE + REGION_LEN - a;
	p = mremap((void *)a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)b);
	logop(f, "mremap %#" PRIx64 "+%#" PRIx64 " -> %#" PRIx64 ": %s", a, len, b,
	      p == MAP_FAILED ? strerror(errno) : "ok");
}

/* ---- fork -------------------------------------------------------------------- */

static void run_ops(struct fz *f, long deadline, unsigned long max_ops);
static void fz_cleanup(struct fz *f);

static int child_main(struct fz *parent, uint64_t cseed, bool calib)
{
	struct fz f = { .child = true, .rng = cseed, .memfd = parent->memfd };

	/* the child's own findings decide its exit status */
	v_errno = v_status = v_hang = v_counts = v_slab = v_child = v_advise_einval = 0;
	v_huge = v_other = 0;
	if (rdma_open(&f.r, dev_name, 1) || pair_create(&f)) {
		printf("# child: cannot open %s or make a QP pair\n", dev_name);
		return 4;
	}
	if (calib) {
		/* the minimal round: an MR, one WRITE within the region, clean teardown */
		do_reg(&f, C_REG, REGION_BASE, REGION_LEN, ODP_BASE | IBV_ACCESS_LOCAL_WRITE |
		       IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
		if (f.nmrs) {
			struct ibv_sge s = { .addr = REGION_BASE, .length = (uint32_t)page,
					     .lkey = f.mrs[0].mr->lkey };
			struct ibv_send_wr wr = { .wr_id = ++f.next_id, .sg_list = &s, .num_sge = 1,
						  .opcode = IBV_WR_RDMA_WRITE,
						  .send_flags = IBV_SEND_SIGNALED,
						  .wr.rdma = { .remote_addr = REGION_BASE + page,
							       .rkey = f.mrs[0].mr->rkey } }, *bad;

			if (!ibv_post_send(f.qa, &wr, &bad)) {
				f.wrs[f.nwrs].id = wr.wr_id;
				snprintf(f.wrs[f.nwrs].desc, sizeof(f.wrs[0].desc), "calibration WRITE");
				f.nwrs++;
			}
		}
		drain(&f);
		fz_cleanup(&f);
		return 0;
	}
	run_ops(&f, now_ms() + CHILD_SECONDS * 1000, 1 + rnd(&f, CHILD_MAX_OPS));
	if (v_errno || v_status || v_advise_einval || v_other)
		return 2;
	if (coin(&f, 50)) {
		/* exit with work in flight: post and leave, the kernel cleans up */
		for (int i = 0; i < 4 && f.nwrs < SQ_DEPTH; i++)
			op_wr(&f, (enum cls[]){ C_READ, C_WRITE, C_SEND }[rnd(&f, 3)], false);
		printf("# child: exits with %d WRs in flight\n", f.nwrs);
		return 0;
	}
	drain(&f);
	fz_cleanup(&f);
	return 0;
}

/*
 * Fork a child of seed @cseed, wait for it (bounded), check its exit and the
 * MR and QP counts; returns the Slab delta, and in @growth (if not NULL) the
 * caches that grew.  A @replay child runs a seed again and is not counted.
 */
static long child_round(struct fz *f, uint64_t cseed, bool calib, bool replay, char *growth,
			size_t growth_len)
{
	int mrs0, qps0, mrs1 = -1, qps1 = -1, status;
	long s0, s1, t0;
	pid_t pid;

	drain(f);
	s0 = slab_base();
	if (res_counts(&mrs0, &qps0)) {
		violation(&v_other, f, "rdma res show gives no counts for %s", dev_name);
		return 0;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		violation(&v_other, f, "fork: %s", strerror(errno));
		return 0;
	}
	if (pid == 0)
		_exit(child_main(f, cseed, calib));
	if (!calib && !replay)
		n_children++;
	logop(f, "fork: child %d seed %#" PRIx64 "%s", pid, cseed,
	      calib ? " (calibration)" : replay ? " (replay)" : "");
	if (!calib)
		kmsg("vm-run-mark: odp_fuzz seed %" PRIu64 " op %lu: child %d\n", seed, f->op, pid);
	t0 = now_ms();
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ms() - t0 > child_bound_ms &&
		    (!bounds_grow(f) || now_ms() - t0 > child_bound_ms)) {
			violation(&v_child, f, "child %d (seed %#" PRIx64 ") did not exit in %ld ms", pid,
				  cseed, child_bound_ms);
			kill(pid, SIGKILL);
			t0 = now_ms();
			while (waitpid(pid, &status, WNOHANG) == 0 && now_ms() - t0 < teardown_ms)
				usleep(10000);
			return 0;
		}
		usleep(5000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		violation(&v_child, f, "child %d (seed %#" PRIx64 ") ended with %s %d", pid, cseed,
			  WIFEXITED(status) ? "exit status" : "signal",
			  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	res_counts(&mrs1, &qps1);
	s1 = calib ? settled_slab() : slab_after(s0);
	if (mrs1 != mrs0 || qps1 != qps0)
		violation(&v_counts, f, "after child %d: MRs %d -> %d, QPs %d -> %d (want equal)", pid,
			  mrs0, mrs1, qps0, qps1);
	if (growth)
		snprintf(growth, growth_len, "%s", slab_growth(s1 - s0));
	if (verbose || calib || replay)
		printf("# %schild %d: MRs %d -> %d, QPs %d -> %d, Slab %ld -> %ld KiB (%+ld)\n",
		       calib ? "calibration " : replay ? "replayed " : "", pid, mrs0, mrs1, qps0,
		       qps1, s0, s1, s1 - s0);
	return s1 - s0;
}

/* A child, and its Slab check: growth above the tolerance must repeat (repeated()) */
static long fork_round(struct fz *f, bool calib)
{
	uint64_t cseed = splitmix(seed ^ (n_children + 1) * 0x9e37ULL);
	char growth[GROWTH_LEN], replays[64];
	long d, r[SLAB_REPLAYS];

	d = child_round(f, cseed, calib, false, growth, sizeof(growth));
	if (calib || d <= slab_tol_kib)
		return d;
	for (int i = 0; i < SLAB_REPLAYS; i++)
		r[i] = child_round(f, cseed, false, true, NULL, 0);
	if (repeated(r, replays, sizeof(replays)))
		violation(&v_slab, f, "child seed %#" PRIx64 ": Slab +%ld KiB (%s), and again %s KiB "
			  "when replayed: > tolerance %ld KiB each time", cseed, d, growth, replays,
			  slab_tol_kib);
	else
		printf("# child seed %#" PRIx64 ": Slab +%ld KiB (%s), replayed: %s KiB: not repeated, "
		       "no leak\n", cseed, d, growth, replays);
	return d;
}

/* ---- the loop ----------------------------------------------------------------- */

static enum cls pick_cls(struct fz *f)
{
	unsigned int total = 0, k;

	for (int c = 0; c < C_NCLS; c++)
		if (enabled[c] && !(f->child && c == C_FORK))
			total += cls_weight[c];
	k = rnd(f, total);
	for (int c = 0; c < C_NCLS; c++) {
		if (!enabled[c] || (f->child && c == C_FORK))
			continue;
		if (k < cls_weight[c])
			return c;
		k -= cls_weight[c];
	}
	return C_READ;
}

static void run_ops(struct fz *f, long deadline, unsigned long max_ops)
{
	for (f->op = 0; (!max_ops || f->op < max_ops) && now_ms() < deadline; f->op++) {
		enum cls c = pick_cls(f);

		if (!f->child)
			cls_ops[c]++;
		if (!f->child && !(f->op % 256))
			kmsg("vm-run-mark: odp_fuzz seed %" PRIu64 " at op %lu\n", seed, f->op);
		switch (c) {
		case C_REG: op_reg(f); break;
		case C_REG_IMPLICIT: op_reg_implicit(f); break;
		case C_REG_EDGE: op_reg_edge(f); break;
		case C_DEREG: op_dereg(f); break;
		case C_ADVISE: op_advise(f, false); break;
		case C_ADVISE_EDGE: op_advise(f, true); break;
		case C_ADVISE_HUGE: op_advise_huge(f); break;
		case C_READ: case C_WRITE: case C_SEND: case C_CAS: case C_FADD:
			op_wr(f, c, false);
			break;
		case C_EDGE_SGE:
			op_wr(f, (enum cls[]){ C_READ, C_WRITE, C_SEND, C_CAS, C_FADD }[rnd(f, 5)], true);
			break;
		case C_MMAP: op_mmap(f); break;
		case C_MUNMAP: op_munmap(f); break;
		case C_MPROTECT: op_mprotect(f); break;
		case C_MADVISE: op_madvise(f); break;
		case C_MREMAP: op_mremap(f); break;
		case C_FORK: fork_round(f, false); break;
		case C_NCLS: break;
		}
		poll_some(f);
		/* a drain now and then, at points the seed decides (the draw comes
		 * first, so that the sequence does not depend on completions) */
		if (rnd(f, 16) == 0 || f->pair_err)
			drain(f);
	}
	drain(f);
}

static void fz_cleanup(struct fz *f)
{
	drain(f);
	pair_destroy(f);
	while (f->nmrs) {
		int ret = ibv_dereg_mr(f->mrs[--f->nmrs].mr);

		if (ret)
			violation(&v_errno, f, "ibv_dereg_mr at the end: %s", ename(ret));
	}
	rdma_close(&f->r);
}

/* ---- set-up -------------------------------------------------------------------- */

static uint64_t lowest_mapping(void)
{
	char line[512];
	uint64_t lo = TASK_SIZE_X86, a;
	FILE *fp = fopen("/proc/self/maps", "r");

	if (!fp)
		return 0x10000;	/* be safe: everything above 64 KiB is foreign */
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "%" SCNx64, &a) == 1 && a < lo &&
		    !(a >= REGION_BASE && a < REGION_BASE + REGION_LEN) && a < TOP_BASE)
			lo = a;
	fclose(fp);
	return lo;
}

static int map_region(void)
{
	void *p = mmap((void *)REGION_BASE, REGION_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p != (void *)REGION_BASE)
		return -1;
	madvise(p, REGION_LEN / 2, MADV_HUGEPAGE);
	memset(p, 0x5a, REGION_LEN);
	p = mmap((void *)TOP_BASE, TOP_LEN, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	top_ours = p == (void *)TOP_BASE;
	if (top_ours)
		memset(p, 0xa5, TOP_LEN);
	return 0;
}

/* The slowest of three synchronous PREFETCH_WRITEs of a fresh 2 MiB chunk */
static long measure_block(struct fz *f)
{
	long worst = -1;

	for (int i = 0; i < 3; i++) {
		struct ibv_mr *mr;
		struct ibv_sge s;
		long t0;
		void *p = mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t a;
		int ret;

		if (p == MAP_FAILED)
			return -1;
		a = ((uint64_t)p + CHUNK - 1) & ~(CHUNK - 1);
		madvise((void *)a, CHUNK, MADV_NOHUGEPAGE);
		mr = ibv_reg_mr(f->r.pd, (void *)a, CHUNK, ODP_BASE | IBV_ACCESS_LOCAL_WRITE);
		if (!mr) {
			munmap(p, 2 * CHUNK);
			return -1;
		}
		s = (struct ibv_sge){ .addr = a, .length = CHUNK, .lkey = mr->lkey };
		t0 = now_ms();
		ret = ibv_cmd_advise_mr(f->r.pd, (enum ibv_advise_mr_advice)ADV_PFW,
					IBV_ADVISE_MR_FLAG_FLUSH, &s, 1);
		t0 = now_ms() - t0;
		ibv_dereg_mr(mr);
		munmap(p, 2 * CHUNK);
		if (ret)
			return -1;
		if (t0 > worst)
			worst = t0;
	}
	return worst < 1 ? 1 : worst;
}

static void usage(void)
{
	printf("usage: odp_fuzz [--dev NAME] [--seed N] [--seconds S] [--ops N] [--verbose]\n"
	       "                [--no-CLASS ...] [--only CLASS,...] [--list]\nclasses:");
	for (int c = 0; c < C_NCLS; c++)
		printf(" %s", cls_name[c]);
	printf("\n");
}

static int cls_by_name(const char *s, size_t n)
{
	for (int c = 0; c < C_NCLS; c++)
		if (strlen(cls_name[c]) == n && !strncmp(cls_name[c], s, n))
			return c;
	return -1;
}

int main(int argc, char **argv)
{
	struct fz f = { .memfd = -1 };
	long seconds = 60, t_end;
	unsigned long max_ops = 0;
	bool seeded = false, debug = debug_slowdown() > 1;
	int mrs_base = -1, qps_base = -1, mrs_end = -1, qps_end = -1;
	long calib[CALIB_CHILDREN];

	setvbuf(stdout, NULL, _IOLBF, 0);
	page = sysconf(_SC_PAGESIZE);
	for (int c = 0; c < C_NCLS; c++)
		enabled[c] = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--dev") && i + 1 < argc) {
			dev_name = argv[++i];
		} else if (!strcmp(a, "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
			seeded = true;
		} else if (!strcmp(a, "--seconds") && i + 1 < argc) {
			seconds = atol(argv[++i]);
		} else if (!strcmp(a, "--ops") && i + 1 < argc) {
			max_ops = strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(a, "--verbose")) {
			verbose = true;
		} else if (!strcmp(a, "--list")) {
			usage();
			return 0;
		} else if (!strcmp(a, "--only") && i + 1 < argc) {
			const char *s = argv[++i];

			for (int c = 0; c < C_NCLS; c++)
				enabled[c] = false;
			while (*s) {
				size_t n = strcspn(s, ",");
				int c = cls_by_name(s, n);

				if (c < 0) {
					usage();
					return 2;
				}
				enabled[c] = true;
				s += n + (s[n] == ',');
			}
		} else if (!strncmp(a, "--no-", 5) && cls_by_name(a + 5, strlen(a + 5)) >= 0) {
			enabled[cls_by_name(a + 5, strlen(a + 5))] = false;
		} else {
			usage();
			return 2;
		}
	}
	if (!seeded) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
		seed %= 1000000000000ULL;
	}
	f.rng = splitmix(seed);
	kmsg("vm-run-mark: odp_fuzz seed %" PRIu64 " (replay: odp_fuzz --seed %" PRIu64 ")\n", seed, seed);
	printf("# odp_fuzz: seed %" PRIu64 " (replay: --seed %" PRIu64 "), %ld s%s, device %s%s\n",
	       seed, seed, seconds, max_ops ? " or --ops limit" : "", dev_name,
	       debug ? ", debug kernel" : "");
	{
		int any = 0;

		printf("# excluded op classes:");
		for (int c = 0; c < C_NCLS; c++)
			if (!enabled[c]) {
				printf(" %s", cls_name[c]);
				any = 1;
			}
		printf("%s\n", any ? "" : " none");
	}

	if (map_region()) {
		tap(false, "map the fuzz region at %#lx: %s", REGION_BASE, strerror(errno));
		return tap_done();
	}
	foreign_lo = lowest_mapping();
	f.memfd = memfd_create("odp_fuzz", 0);
	if (f.memfd < 0 || ftruncate(f.memfd, 128 * page + REGION_LEN)) {
		tap(false, "memfd: %s", strerror(errno));
		return tap_done();
	}
	tap(true, "fuzz region %#lx+%#lx, never-mapped pool %#lx, top pages %#lx+%#lx %s; "
	    "the device writes nothing in [%#" PRIx64 ", %#lx)", REGION_BASE, REGION_LEN, POOL_BASE,
	    TOP_BASE, TOP_LEN, top_ours ? "mapped" : "NOT available (edge-sge has no top pages)",
	    foreign_lo, TASK_SIZE_X86);
	if (res_counts(&mrs_base, &qps_base)) {
		tap(false, "rdma res show gives MR and QP counts for %s", dev_name);
		return tap_done();
	}
	if (rdma_open(&f.r, dev_name, 1) || pair_create(&f)) {
		tap(false, "open %s and connect an RC loopback pair", dev_name);
		return tap_done();
	}

	/* bounds */
	t_block_ms = measure_block(&f);
	if (t_block_ms < 0) {
		tap(false, "measure the time of a 2 MiB device fault (sync PREFETCH_WRITE): failed");
		return tap_done();
	}
	t_transport_ms = (QP_RETRY_CNT + 1) * (long)(4.096e-3 * (1L << QP_TIMEOUT)) + 1;
	t_busy_ms = RXE_ODP_BUSY_TIMEOUT_MS + 3 * HMM_RANGE_DEFAULT_TIMEOUT_MS;
	max_blocks = (REGION_LEN + TOP_LEN) / CHUNK + 2;
	teardown_ms = teardown_bound_ms();
	set_bounds(t_block_ms);
	tap(true, "WR bound %ld ms = transport %ld ms ((%d + 1) x 4.096 us x 2^%d) + busy retries %ld ms "
	    "(%d + 3 x %d ms) + %d WRs x 2 sides x %ld blocks x %ld ms (measured 2 MiB fault); "
	    "child bound %ld ms = %d s of ops + WR bound + teardown %ld ms",
	    wr_bound_ms, t_transport_ms, QP_RETRY_CNT, QP_TIMEOUT, t_busy_ms, RXE_ODP_BUSY_TIMEOUT_MS,
	    HMM_RANGE_DEFAULT_TIMEOUT_MS, SQ_DEPTH, max_blocks, t_block_ms, child_bound_ms,
	    CHILD_SECONDS, teardown_ms);

	/* Slab tolerance from the noise of minimal children */
	fork_round(&f, true);	/* warm-up, not counted */
	slab_tol_kib = 0;
	for (int i = 0; i < CALIB_CHILDREN; i++) {
		calib[i] = fork_round(&f, true);
		if (labs(calib[i]) > slab_tol_kib)
			slab_tol_kib = labs(calib[i]);
	}
	printf("# Slab deltas of %d minimal children (KiB):", CALIB_CHILDREN);
	for (int i = 0; i < CALIB_CHILDREN; i++)
		printf(" %+ld", calib[i]);
	printf("\n");
	tap(!v_counts && !v_child, "calibration: %d minimal children exit cleanly, MR and QP counts come "
	    "back; Slab tolerance = largest |delta| = %ld KiB", CALIB_CHILDREN, slab_tol_kib);
	v_counts = v_child = 0;

	t_end = now_ms() + seconds * 1000;
	run_ops(&f, t_end, max_ops);
	printf("# %lu operations (replay: --seed %" PRIu64 " --ops %lu), %lu verbs, %lu WRs, %lu RECVs, "
	       "%lu children, %lu pair recreations\n", f.op, seed, f.op, n_verbs, n_wrs, n_recvs,
	       n_children, n_recreate);
	printf("# per class: ops, then answers (errno: count)\n");
	for (int c = 0; c < C_NCLS; c++) {
		printf("#   %-13s %6lu %s", cls_name[c], cls_ops[c], enabled[c] ? "" : "(excluded)");
		for (int i = 0; i < 8; i++)
			if (errno_seen[c][i])
				printf(" %s:%lu", ename(errno_val[c][i]), errno_seen[c][i]);
		printf("\n");
	}
	printf("# completion statuses:");
	for (int i = 0; i < 32; i++)
		if (wc_hist[i])
			printf(" %s:%lu", ibv_wc_status_str(i), wc_hist[i]);
	printf("\n");

	fz_cleanup(&f);
	if (res_counts(&mrs_end, &qps_end))
		mrs_end = qps_end = -1;

	tap(!v_hang, "every WR completes within %ld ms (%lu WRs)", wr_bound_ms, n_wrs);
	tap(!v_errno, "every verb's errno is in its documented set (%lu calls, %lu outside)", n_verbs,
	    v_errno);
	if (enabled[C_ADVISE_EDGE])
		tap(!v_advise_einval, "advise_mr SGEs outside their MR give EINVAL (%lu did not)",
		    v_advise_einval);
	else
		tap_skip("advise-edge excluded: advise SGEs past the end of an MR not tried");
	if (enabled[C_ADVISE_HUGE])
		tap(!v_huge, "NO_FAULT prefetch of %lu MiB nothing maps leaves Slab within %ld KiB (%lu "
		    "calls)", HUGE_ADVISE >> 20, slab_tol_kib, cls_ops[C_ADVISE_HUGE]);
	else
		tap_skip("advise-huge excluded: huge NO_FAULT prefetch over unmapped memory not tried");
	tap(!v_status, "every completion status is a defined, non-fatal one");
	if (enabled[C_FORK]) {
		tap(!v_child, "every child exits within %ld ms with status 0 (%lu children)",
		    child_bound_ms, n_children);
		tap(!v_counts, "MR and QP counts are back after every child exits");
		tap(!v_slab, "Slab is back within %ld KiB after every child exits", slab_tol_kib);
	} else {
		tap_skip("fork excluded: no children");
	}
	tap(mrs_end == mrs_base && qps_end == qps_base,
	    "after the run: MRs %d -> %d, QPs %d -> %d on %s (want equal)", mrs_base, mrs_end, qps_base,
	    qps_end, dev_name);
	tap(!v_other, "no other violation (unexpected completions, pair re-creation, rdma res)");
	{
		int missing = 0;

		for (int c = 0; c < C_NCLS; c++)
			if (enabled[c] && !cls_ops[c]) {
				printf("# class %s never ran\n", cls_name[c]);
				missing++;
			}
		tap(!missing, "every enabled op class ran (%d did not)", missing);
	}
	for (int c = 0; c < C_NCLS; c++)
		if (!enabled[c])
			tap_skip("op class %s excluded on the command line (--no-%s)", cls_name[c], cls_name[c]);
	if (tap_failed)
		dump_hist();
	return tap_done();
}
