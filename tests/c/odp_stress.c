// SPDX-License-Identifier: GPL-2.0
/*
 * ODP invalidation race stress: RDMA on ODP memory regions while the same
 * addresses are unmapped, remapped, zapped, write-protected, moved, forked,
 * and their transparent huge pages split and collapsed.
 *
 * The region: REGION_CHUNKS chunks of 2 MiB (THP-sized and aligned, with
 * MADV_HUGEPAGE), registered as an explicit ODP MR; an implicit ODP MR
 * covers it too, and every operation picks one of the two keys at random.
 *
 * Content.  Each page is made of 448 "tag" words and 64 "device" words.
 * Every tag word holds tag(gen, page, word), a hash of the page's generation,
 * the page number and the word number, written by the CPU whenever the
 * mapping is (re)created or rewritten; each such change takes the page's
 * next generation.  Per page, the test keeps:
 *   started  the newest generation whose change has begun,
 *   floor    the oldest generation that may still be seen: raised as soon as
 *            the syscall that throws the old pages away has returned,
 *   zero     the newest generation that went through zero-filled pages
 *            (munmap + mmap, MADV_DONTNEED).
 * An RDMA READ of the region (and an RDMA WRITE whose source is the region,
 * which reads it on the requester side) is checked byte by byte: every tag
 * byte must belong to tag(g) for some g with floor(at post) <= g <=
 * started(at completion), or be zero if a zero generation happened since the
 * floor.  Checking bytes, not words, makes a CPU store torn by the device's
 * byte copy harmless; a stale or freed page shows up as bytes of an older
 * generation (or garbage).
 *
 * Device words: each worker owns one 8-word slot per page.  RDMA WRITEs and
 * atomics (fetch-and-add, compare-and-swap) go there.  When no change of the
 * page began between post and check, the CPU must see what the device wrote
 * and an atomic must return the value the slot held.
 *
 * Graveyard: mremap moves old pages out of the region instead of freeing
 * them; once every operation in flight at the move has completed, the old
 * pages are checksummed, and must not change afterwards (a stale device
 * write would land there).
 *
 * Fork: a child writes a marker over the region and exits; the parent must
 * never see it.
 *
 * Failed operations (remote access error while a page is unmapped or
 * read-only, local protection error, flush) are expected: the worker
 * recreates its QP pair.  A completion that never comes is a violation.
 *
 *   odp_stress [--seconds N] [--workers N] [--mutators N] [--dev NAME] [--seed S]
 *
 * Prints the counts and exits 1 on any violation, or if some kind of
 * operation or change never happened.
 */
#define _GNU_SOURCE
#include "rdma_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define PAGE		4096UL
#define WORDS		(PAGE / 8)
#define TAG_WORDS	448
#define SLOT_WORDS	8
#define MAX_WORKERS	((WORDS - TAG_WORDS) / SLOT_WORDS)
#define CHUNK		(2UL << 20)
#define CHUNK_PAGES	(CHUNK / PAGE)
#define REGION_CHUNKS	4
#define REGION		(REGION_CHUNKS * CHUNK)
#define NPAGES		(REGION / PAGE)
#define MAX_OP		(32 * 1024)
#define CHILD_GEN	0xfffffffu
#define OP_TIMEOUT_MS	120000

static unsigned char *region;
static struct rdma_ctx rc;
static struct ibv_mr *region_mr, *implicit_mr;
static int nworkers = 3, nmutators = 2;
static atomic_bool stop;
static bool verbose;

struct page_meta {
	_Atomic unsigned int started, floor, zero;
};
static struct page_meta meta[NPAGES];
static pthread_mutex_t chunk_lock[REGION_CHUNKS];

/*
 * Held while a change leaves a hole in the region (munmap before the new
 * mmap, mremap out before the mremap back) and around every mmap(NULL) of
 * the other threads: creating a QP maps its queues, and the kernel may put
 * such a mapping into the hole, where the change's MAP_FIXED would then
 * replace it (and the next post on that QP writes to anonymous memory or
 * faults).  Order: chunk_lock, then layout_lock.
 */
static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;

/* Operation sequence numbers, for the graveyard. */
static _Atomic unsigned long op_seq = 1;
static _Atomic unsigned long inflight[MAX_WORKERS];

static _Atomic unsigned long violations, timeouts, torn;

enum op_kind { OP_READ, OP_WRITE_FROM, OP_WRITE_INTO, OP_FADD, OP_CAS, OP_KINDS };
static const char *const op_name[] = {
	"rdma-read", "rdma-write-from-region", "rdma-write-into-region",
	"fetch-add", "compare-swap",
};
static _Atomic unsigned long ops_ok[OP_KINDS], ops_err[OP_KINDS], ops_checked[OP_KINDS];
static _Atomic unsigned long err_status[32];
static _Atomic unsigned long qp_recreated;

enum mut_kind {
	M_REMAP, M_MMAP_FIXED, M_DONTNEED, M_MPROTECT, M_MREMAP, M_FORK,
	M_THP_SPLIT, M_THP_COLLAPSE, M_REWRITE, M_KINDS
};
static const char *const mut_name[] = {
	"munmap+mmap", "mmap-fixed", "madv-dontneed", "mprotect-ro-rw",
	"mremap-replace", "fork-child-writes", "thp-split", "thp-collapse",
	"rewrite-in-place",
};
static _Atomic unsigned long muts[M_KINDS], mut_failed[M_KINDS];
static _Atomic unsigned long graves_checked;

static void violation(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&violations, 1) < 20) {
		va_start(ap, fmt);
		printf("VIOLATION: ");
		vprintf(fmt, ap);
		printf("\n");
		fflush(stdout);
		va_end(ap);
	}
}

static uint64_t tag(unsigned int gen, unsigned long page, unsigned int word)
{
	uint64_t z = ((uint64_t)gen << 32) ^ (page << 9) ^ word ^ 0x5bd1e995ULL;

	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z | 0x0101010101010101ULL;	/* no zero byte */
}

static unsigned long rnd(unsigned int *seed, unsigned long n)
{
	return n ? (unsigned long)rand_r(seed) % n : 0;
}

/* Fill the tag words of pages [first, first + n) at @dst with generation @gen. */
static void fill_tags(unsigned char *dst, unsigned long first, unsigned long n,
		      unsigned int gen)
{
	for (unsigned long p = 0; p < n; p++) {
		uint64_t *w = (uint64_t *)(dst + p * PAGE);

		for (unsigned int i = 0; i < TAG_WORDS; i++)
			w[i] = tag(gen, first + p, i);
	}
}

/* ---- checks ------------------------------------------------------------ */

struct window {
	unsigned int lo, hi, zero;
};

static void window_post(unsigned long page, struct window *w)
{
	w->lo = atomic_load(&meta[page].floor);
}

static void window_done(unsigned long page, struct window *w)
{
	w->zero = atomic_load(&meta[page].zero);
	w->hi = atomic_load(&meta[page].started);
}

/*
 * Check @len bytes that an RDMA operation read from region offset @off (now
 * in @buf) against the windows of their pages.
 */
static bool check_read(const unsigned char *buf, unsigned long off,
		       unsigned long len, const struct window *win,
		       const char *what)
{
	unsigned long first = off / PAGE;
	bool ok = true;

	for (unsigned long b = 0; b < len;) {
		unsigned long o = off + b, page = o / PAGE;
		unsigned int word = (o % PAGE) / 8, byte = o % 8;
		unsigned long n = 8 - byte;
		const struct window *w = &win[page - first];
		bool zero_ok = w->zero >= w->lo;

		if (n > len - b)
			n = len - b;
		if (word < TAG_WORDS) {
			uint64_t got = 0;
			bool whole = false;

			memcpy((unsigned char *)&got + byte, buf + b, n);
			/* fast path: the whole piece is one generation */
			for (unsigned int g = w->lo; g <= w->hi && !whole; g++) {
				uint64_t t = tag(g, page, word);

				whole = !memcmp((unsigned char *)&t + byte,
						(unsigned char *)&got + byte, n);
			}
			if (!whole && zero_ok) {
				uint64_t z = 0;

				whole = !memcmp((unsigned char *)&z + byte,
						(unsigned char *)&got + byte, n);
			}
			/* torn: each byte of some valid generation, or zero */
			for (unsigned int i = byte; i < byte + n && !whole; i++) {
				unsigned char c = ((unsigned char *)&got)[i];
				bool byte_ok = zero_ok && c == 0;

				for (unsigned int g = w->lo; g <= w->hi && !byte_ok; g++) {
					uint64_t t = tag(g, page, word);

					byte_ok = ((unsigned char *)&t)[i] == c;
				}
				if (!byte_ok) {
					uint64_t child = tag(CHILD_GEN, page, word);

					violation("%s: page %lu word %u byte %u = %#x: not of generation %u..%u%s%s",
						  what, page, word, i, c, w->lo, w->hi,
						  zero_ok ? " nor zero" : "",
						  ((unsigned char *)&child)[i] == c ?
						  " (fork child's marker?)" : "");
					ok = false;
					return ok;
				}
				if (i == byte + n - 1)
					atomic_fetch_add(&torn, 1);
			}
		}
		b += n;
	}
	return ok;
}

/* Read region memory from the CPU without faulting on holes. */
static int self_mem = -1;

static bool cpu_read(void *dst, const void *src, size_t len)
{
	return pread(self_mem, dst, len, (off_t)(uintptr_t)src) == (ssize_t)len;
}

/* ---- workers ----------------------------------------------------------- */

struct worker {
	int id;
	pthread_t thread;
	struct rdma_ctx r;
	struct ibv_comp_channel *ch;
	struct rdma_pair p;
	unsigned char *buf, *dst;	/* private, ODP */
	struct ibv_mr *buf_mr, *dst_mr;
	unsigned int seed;
};

static bool worker_pair(struct worker *w)
{
	rdma_pair_destroy(&w->p);
	for (int i = 0; i < 50; i++) {
		int ret;

		pthread_mutex_lock(&layout_lock);
		ret = rdma_pair_create(&w->r, &w->p);
		pthread_mutex_unlock(&layout_lock);
		if (!ret)
			return true;
		usleep(10000);
	}
	fprintf(stderr, "worker %d: cannot create a QP pair\n", w->id);
	return false;
}

/*
 * Wait for one completion without spinning: the CPUs are needed by rxe's
 * work items and by the mutators.  Returns its status, or -1 on time-out.
 */
static int worker_wait(struct worker *w, struct ibv_wc *wc, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = w->ch->fd, .events = POLLIN };
	struct ibv_cq *cq;
	void *ctx;
	int n;

	for (;;) {
		n = ibv_poll_cq(w->r.cq, 1, wc);
		if (n)
			return n < 0 ? -1 : (int)wc->status;
		if (ibv_req_notify_cq(w->r.cq, 0))
			return -1;
		n = ibv_poll_cq(w->r.cq, 1, wc);
		if (n)
			return n < 0 ? -1 : (int)wc->status;
		if (now_ms() > deadline)
			return -1;
		if (poll(&pfd, 1, 100) == 1 && !ibv_get_cq_event(w->ch, &cq, &ctx))
			ibv_ack_cq_events(cq, 1);
	}
}

/* Drain anything left on the CQ after an error (flushes, late completions). */
static void drain_cq(struct worker *w)
{
	struct ibv_wc wc[16];

	while (ibv_poll_cq(w->r.cq, 16, wc) > 0)
		;
}

static uint32_t rkey_of(struct worker *w)
{
	return rnd(&w->seed, 2) ? implicit_mr->rkey : region_mr->rkey;
}

static uint32_t lkey_region(struct worker *w)
{
	return rnd(&w->seed, 2) ? implicit_mr->lkey : region_mr->lkey;
}

static void one_op(struct worker *w)
{
	enum op_kind kind = rnd(&w->seed, OP_KINDS);
	unsigned long off, len, first = 0, npages = 0;
	struct window win[MAX_OP / PAGE + 2];
	unsigned int started_post = 0, floor_post = 0;
	uint64_t slot_before = 0, value = 0;
	unsigned long slot_page = 0, slot_off = 0, seq;
	bool strict = false;
	struct ibv_wc wc;
	long t0;
	int st;

	if (kind == OP_READ || kind == OP_WRITE_FROM) {
		len = 1 + rnd(&w->seed, MAX_OP);
		off = rnd(&w->seed, REGION - len + 1);
		first = off / PAGE;
		npages = (off + len - 1) / PAGE - first + 1;
		for (unsigned long i = 0; i < npages; i++)
			window_post(first + i, &win[i]);
	} else {
		slot_page = rnd(&w->seed, NPAGES);
		slot_off = slot_page * PAGE + (TAG_WORDS + w->id * SLOT_WORDS) * 8;
		started_post = atomic_load(&meta[slot_page].started);
		floor_post = atomic_load(&meta[slot_page].floor);
		/* strict only if no change was in progress at post */
		strict = started_post == floor_post &&
			 cpu_read(&slot_before, region + slot_off, 8);
		off = slot_off;
		len = 8;
	}

	seq = atomic_fetch_add(&op_seq, 1);
	atomic_store(&inflight[w->id], seq);
	switch (kind) {
	case OP_READ:
		st = rdma_post_rw(&w->p, IBV_WR_RDMA_READ, w->buf, w->buf_mr->lkey,
				  (uintptr_t)region + off, rkey_of(w), len);
		break;
	case OP_WRITE_FROM:
		st = rdma_post_rw(&w->p, IBV_WR_RDMA_WRITE, region + off,
				  lkey_region(w), (uintptr_t)w->dst,
				  w->dst_mr->rkey, len);
		break;
	case OP_WRITE_INTO:
		value = ((uint64_t)w->id << 56) | (seq & ((1ULL << 56) - 1));
		memcpy(w->buf, &value, 8);
		len = 8 * (1 + rnd(&w->seed, SLOT_WORDS - 1));
		for (unsigned int i = 1; i < len / 8; i++)
			((uint64_t *)w->buf)[i] = value + i;
		st = rdma_post_rw(&w->p, IBV_WR_RDMA_WRITE, w->buf, w->buf_mr->lkey,
				  (uintptr_t)region + off, rkey_of(w), len);
		break;
	case OP_FADD:
		st = rdma_post_atomic(&w->p, IBV_WR_ATOMIC_FETCH_AND_ADD,
				      (uint64_t *)w->buf, w->buf_mr->lkey,
				      (uintptr_t)region + off, rkey_of(w), 3, 0);
		break;
	default:
		st = rdma_post_atomic(&w->p, IBV_WR_ATOMIC_CMP_AND_SWP,
				      (uint64_t *)w->buf, w->buf_mr->lkey,
				      (uintptr_t)region + off, rkey_of(w),
				      slot_before, slot_before ^ seq);
		break;
	}
	if (st) {
		/* the QP went to the error state under us: start over */
		atomic_store(&inflight[w->id], 0);
		drain_cq(w);
		worker_pair(w);
		atomic_fetch_add(&qp_recreated, 1);
		return;
	}
	t0 = now_ms();
	st = worker_wait(w, &wc, OP_TIMEOUT_MS);
	atomic_store(&inflight[w->id], 0);
	if (verbose && now_ms() - t0 > 200)
		printf("slow %s of %lu bytes: %ld ms, status %d\n", op_name[kind],
		       len, now_ms() - t0, st);
	if (st < 0) {
		atomic_fetch_add(&timeouts, 1);
		violation("%s at region+%#lx len %lu: no completion in %d ms",
			  op_name[kind], off, len, OP_TIMEOUT_MS);
		atomic_store(&stop, true);
		return;
	}
	if (st != IBV_WC_SUCCESS) {
		atomic_fetch_add(&ops_err[kind], 1);
		atomic_fetch_add(&err_status[st < 32 ? st : 31], 1);
		drain_cq(w);
		worker_pair(w);
		atomic_fetch_add(&qp_recreated, 1);
		return;
	}
	atomic_fetch_add(&ops_ok[kind], 1);

	switch (kind) {
	case OP_READ:
	case OP_WRITE_FROM:
		for (unsigned long i = 0; i < npages; i++)
			window_done(first + i, &win[i]);
		if (check_read(kind == OP_READ ? w->buf : w->dst, off, len, win,
			       op_name[kind]))
			atomic_fetch_add(&ops_checked[kind], 1);
		break;
	default: {
		uint64_t now[SLOT_WORDS] = {}, orig;
		bool unchanged;

		if (!strict)
			break;
		if (!cpu_read(now, region + off, len))
			break;
		unchanged = atomic_load(&meta[slot_page].started) == started_post;
		if (!unchanged)
			break;
		memcpy(&orig, w->buf, 8);
		if (kind == OP_WRITE_INTO) {
			for (unsigned int i = 0; i < len / 8; i++)
				if (now[i] != value + i) {
					violation("write into page %lu slot word %u: CPU sees %#llx, wrote %#llx",
						  slot_page, i, (unsigned long long)now[i],
						  (unsigned long long)(value + i));
					return;
				}
		} else if (orig != slot_before ||
			   now[0] != (kind == OP_FADD ? slot_before + 3 : slot_before ^ seq)) {
			violation("%s on page %lu: slot was %#llx, returned %#llx, now %#llx",
				  op_name[kind], slot_page,
				  (unsigned long long)slot_before,
				  (unsigned long long)orig, (unsigned long long)now[0]);
			return;
		}
		atomic_fetch_add(&ops_checked[kind], 1);
	}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(&stop))
		one_op(w);
	return NULL;
}

static int worker_init(struct worker *w, int id)
{
	int acc = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		  IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND;

	w->id = id;
	w->seed ^= 0x9e3779b9u * (id + 1);
	w->r = rc;
	w->ch = ibv_create_comp_channel(rc.ctx);
	if (!w->ch)
		return -1;
	w->r.cq = ibv_create_cq(rc.ctx, 64, NULL, w->ch, 0);
	w->buf = mmap(NULL, MAX_OP, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w->dst = mmap(NULL, MAX_OP, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!w->r.cq || w->buf == MAP_FAILED || w->dst == MAP_FAILED)
		return -1;
	w->buf_mr = ibv_reg_mr(rc.pd, w->buf, MAX_OP, acc);
	w->dst_mr = ibv_reg_mr(rc.pd, w->dst, MAX_OP, acc);
	if (!w->buf_mr || !w->dst_mr)
		return -1;
	return worker_pair(w) ? 0 : -1;
}

/* ---- mutators ---------------------------------------------------------- */

struct grave {
	unsigned char *addr;
	unsigned long len;
	unsigned long seq;	/* operations up to this one may still land */
	uint64_t sum;
	bool summed;
};

static uint64_t checksum(const unsigned char *p, unsigned long len)
{
	uint64_t h = 1469598103934665603ULL;

	for (unsigned long i = 0; i < len; i += 8)
		h = (h ^ *(const uint64_t *)(p + i)) * 1099511628211ULL;
	return h;
}

/* Every operation posted up to @seq has completed. */
static bool settled(unsigned long seq)
{
	for (int i = 0; i < nworkers; i++) {
		unsigned long s = atomic_load(&inflight[i]);

		if (s && s <= seq)
			return false;
	}
	return true;
}

static void grave_check(struct grave *g, bool final)
{
	if (!g->addr)
		return;
	if (!g->summed) {
		if (!settled(g->seq)) {
			if (!final)
				return;
			while (!settled(g->seq))
				usleep(1000);
		}
		g->sum = checksum(g->addr, g->len);
		g->summed = true;
		if (!final)
			return;
	}
	if (checksum(g->addr, g->len) != g->sum)
		violation("pages moved out of the region at %p (+%lu) changed after every operation in flight had completed",
			  g->addr, g->len);
	else
		atomic_fetch_add(&graves_checked, 1);
	munmap(g->addr, g->len);
	g->addr = NULL;
}

/* Start generation changes of pages [first, first + n); returns the new gens base. */
static unsigned int gen_begin(unsigned long first, unsigned long n, bool zero)
{
	unsigned int g = 0;

	for (unsigned long p = first; p < first + n; p++) {
		unsigned int ng = atomic_load(&meta[p].started) + 1;

		atomic_store(&meta[p].started, ng);
		if (zero)
			atomic_store(&meta[p].zero, ng);
		if (ng > g)
			g = ng;
	}
	return g;
}

/* The old pages are gone: nothing older than the new generation may be seen. */
static void gen_floor(unsigned long first, unsigned long n)
{
	for (unsigned long p = first; p < first + n; p++)
		atomic_store(&meta[p].floor, atomic_load(&meta[p].started));
}

/* Write the tags of the generation each page has just begun. */
static void fill_current(unsigned char *dst, unsigned long first, unsigned long n)
{
	for (unsigned long p = 0; p < n; p++)
		fill_tags(dst + p * PAGE, first + p, 1,
			  atomic_load(&meta[first + p].started));
}

static void child_writes(unsigned long first, unsigned long n)
{
	signal(SIGSEGV, SIG_DFL);
	for (unsigned long p = first; p < first + n; p++) {
		uint64_t *w = (uint64_t *)(region + p * PAGE);

		for (unsigned int i = 0; i < WORDS; i++)
			w[i] = tag(CHILD_GEN, p, i);
	}
	_exit(0);
}

static unsigned int mut_mask = (1u << M_KINDS) - 1;

static void mutate(unsigned int *seed, struct grave *grave)
{
	enum mut_kind kind;
	unsigned int c = rnd(seed, REGION_CHUNKS);

	do
		kind = rnd(seed, M_KINDS);
	while (!(mut_mask & (1u << kind)));
	unsigned long first, n;
	unsigned char *a, *tmp;
	bool ok = true;

	long t0 = now_ms();

	pthread_mutex_lock(&chunk_lock[c]);
	n = 1 + rnd(seed, 64);
	first = c * CHUNK_PAGES + rnd(seed, CHUNK_PAGES - n + 1);
	if (kind == M_THP_SPLIT || kind == M_THP_COLLAPSE) {
		first = c * CHUNK_PAGES;
		n = CHUNK_PAGES;
	}
	a = region + first * PAGE;

	switch (kind) {
	case M_REMAP:
		gen_begin(first, n, true);
		pthread_mutex_lock(&layout_lock);
		ok = !munmap(a, n * PAGE);
		gen_floor(first, n);
		usleep(rnd(seed, 2000));
		ok &= mmap(a, n * PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == a;
		pthread_mutex_unlock(&layout_lock);
		fill_current(a, first, n);
		break;
	case M_MMAP_FIXED:
		gen_begin(first, n, true);
		ok = mmap(a, n * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == a;
		gen_floor(first, n);
		fill_current(a, first, n);
		break;
	case M_DONTNEED:
		gen_begin(first, n, true);
		ok = !madvise(a, n * PAGE, MADV_DONTNEED);
		gen_floor(first, n);
		usleep(rnd(seed, 1000));
		fill_current(a, first, n);
		break;
	case M_MPROTECT:
		ok = !mprotect(a, n * PAGE, PROT_READ);
		usleep(rnd(seed, 3000));
		ok &= !mprotect(a, n * PAGE, PROT_READ | PROT_WRITE);
		break;
	case M_MREMAP:
		pthread_mutex_lock(&layout_lock);
		tmp = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (tmp == MAP_FAILED) {
			pthread_mutex_unlock(&layout_lock);
			ok = false;
			break;
		}
		gen_begin(first, n, false);
		fill_current(tmp, first, n);
		if (!grave->addr && rnd(seed, 2)) {
			/* old pages to the graveyard, kept alive and watched */
			unsigned char *gy = mmap(NULL, n * PAGE, PROT_NONE,
						 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (gy != MAP_FAILED &&
			    mremap(a, n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				   gy) == gy) {
				grave->addr = gy;
				grave->len = n * PAGE;
				grave->seq = atomic_load(&op_seq);
				grave->summed = false;
			} else if (gy != MAP_FAILED) {
				munmap(gy, n * PAGE);
			}
		}
		ok = mremap(tmp, n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
			    a) == a;
		gen_floor(first, n);
		if (!ok)
			munmap(tmp, n * PAGE);
		pthread_mutex_unlock(&layout_lock);
		break;
	case M_FORK: {
		pid_t pid = fork();
		int status;

		if (pid == 0)
			child_writes(first, n);
		ok = pid > 0 && waitpid(pid, &status, 0) == pid &&
		     WIFEXITED(status) && !WEXITSTATUS(status);
		break;
	}
	case M_THP_SPLIT:
		/* write-protecting half of a PMD mapping splits it */
		ok = !mprotect(a, CHUNK / 2, PROT_READ);
		usleep(rnd(seed, 2000));
		ok &= !mprotect(a, CHUNK / 2, PROT_READ | PROT_WRITE);
		break;
	case M_THP_COLLAPSE:
		/* copies the small pages into a new huge page, frees them */
		if (madvise(a, CHUNK, MADV_COLLAPSE))
			ok = errno == EAGAIN || errno == ENOMEM || errno == EINVAL;
		/* then a rewrite: a stale small page would show the old gen */
		gen_begin(first, n, false);
		fill_current(a, first, n);
		gen_floor(first, n);
		break;
	default:
		gen_begin(first, n, false);
		fill_current(a, first, n);
		gen_floor(first, n);
		break;
	}
	pthread_mutex_unlock(&chunk_lock[c]);
	if (verbose && now_ms() - t0 > 200)
		printf("slow change %s of %lu pages: %ld ms\n", mut_name[kind], n,
		       now_ms() - t0);
	atomic_fetch_add(ok ? &muts[kind] : &mut_failed[kind], 1);
	if (!ok && kind != M_THP_COLLAPSE)
		fprintf(stderr, "mutation %s failed: %s\n", mut_name[kind],
			strerror(errno));
}

static void *mutator_main(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	struct grave grave = {};

	while (!atomic_load(&stop)) {
		mutate(&seed, &grave);
		grave_check(&grave, false);
		usleep(rnd(&seed, 2000));
	}
	grave_check(&grave, true);
	return NULL;
}

/* ---- main -------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "workers", required_argument, NULL, 'w' },
		{ "mutators", required_argument, NULL, 'm' },
		{ "dev", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "changes", required_argument, NULL, 'c' },
		{}
	};
	int acc = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		  IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC |
		  IBV_ACCESS_ON_DEMAND;
	const char *dev = "rxe0";
	unsigned int seed = (unsigned int)time(NULL);
	struct worker *w;
	pthread_t *mt;
	unsigned long total_ok = 0, total_err = 0, total_muts = 0;
	long seconds = 30, t0;
	bool incomplete = false;
	unsigned char *raw;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': seconds = atol(optarg); break;
		case 'w': nworkers = atoi(optarg); break;
		case 'm': nmutators = atoi(optarg); break;
		case 'd': dev = optarg; break;
		case 'r': seed = strtoul(optarg, NULL, 0); break;
		case 'v': verbose = true; break;
		case 'c':
			mut_mask = 0;
			for (int k = 0; k < M_KINDS; k++)
				if (strstr(optarg, mut_name[k]))
					mut_mask |= 1u << k;
			if (!mut_mask) {
				fprintf(stderr, "--changes: none of the known kinds\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: %s [--seconds N] [--workers N] [--mutators N] [--dev NAME] [--seed S]\n",
				argv[0]);
			return 2;
		}
	}
	if (nworkers < 1 || nworkers > (int)MAX_WORKERS || nmutators < 0) {
		fprintf(stderr, "bad --workers/--mutators\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);	/* lines survive a crash */
	printf("odp_stress: %ld s, %d workers, %d mutators, seed %u, region %lu MiB\n",
	       seconds, nworkers, nmutators, seed, REGION >> 20);
	srand(seed);

	self_mem = open("/proc/self/mem", O_RDONLY);
	if (self_mem < 0) {
		perror("/proc/self/mem");
		return 1;
	}
	if (rdma_open(&rc, dev, 1)) {
		fprintf(stderr, "cannot open %s\n", dev);
		return 1;
	}
	/* THP-aligned region with the tags of generation 1 */
	raw = mmap(NULL, REGION + CHUNK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return 1;
	region = (unsigned char *)(((uintptr_t)raw + CHUNK - 1) & ~(CHUNK - 1));
	madvise(region, REGION, MADV_HUGEPAGE);
	for (unsigned long p = 0; p < NPAGES; p++) {
		meta[p].started = meta[p].floor = 1;
		meta[p].zero = 0;
	}
	fill_tags(region, 0, NPAGES, 1);
	for (int i = 0; i < REGION_CHUNKS; i++)
		pthread_mutex_init(&chunk_lock[i], NULL);

	region_mr = ibv_reg_mr(rc.pd, region, REGION, acc);
	implicit_mr = ibv_reg_mr(rc.pd, NULL, SIZE_MAX, acc);
	if (!region_mr || !implicit_mr) {
		fprintf(stderr, "ODP registration failed: %s\n", strerror(errno));
		return 1;
	}

	w = calloc(nworkers, sizeof(*w));
	mt = calloc(nmutators, sizeof(*mt));
	for (int i = 0; i < nworkers; i++) {
		w[i].seed = seed;
		if (worker_init(&w[i], i)) {
			fprintf(stderr, "worker %d setup failed\n", i);
			return 1;
		}
	}
	for (int i = 0; i < nworkers; i++)
		pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
	for (int i = 0; i < nmutators; i++)
		pthread_create(&mt[i], NULL, mutator_main,
			       (void *)(uintptr_t)(seed * 31 + i + 1));

	t0 = now_ms();
	while (now_ms() - t0 < seconds * 1000 && !atomic_load(&stop))
		usleep(100000);
	atomic_store(&stop, true);
	for (int i = 0; i < nworkers; i++)
		pthread_join(w[i].thread, NULL);
	for (int i = 0; i < nmutators; i++)
		pthread_join(mt[i], NULL);

	for (int k = 0; k < OP_KINDS; k++) {
		printf("op %-24s ok %8lu  checked %8lu  errors %6lu\n", op_name[k],
		       ops_ok[k], ops_checked[k], ops_err[k]);
		total_ok += ops_ok[k];
		total_err += ops_err[k];
		if (!ops_ok[k] || !ops_checked[k])
			incomplete = true;
	}
	for (int s = 0; s < 32; s++)
		if (err_status[s])
			printf("completion status %-28s %lu\n",
			       ibv_wc_status_str(s), err_status[s]);
	for (int k = 0; k < M_KINDS; k++) {
		printf("change %-20s done %6lu  refused %4lu\n", mut_name[k],
		       muts[k], mut_failed[k]);
		total_muts += muts[k];
		if (!muts[k] && (mut_mask & (1u << k)))
			incomplete = true;
	}
	printf("graveyards checked %lu, torn reads %lu, QP pairs recreated %lu\n",
	       graves_checked, torn, qp_recreated);
	printf("odp_stress: operations %lu, errors %lu, changes %lu, violations %lu, timeouts %lu\n",
	       total_ok + total_err, total_err, total_muts, violations, timeouts);
	if (incomplete)
		printf("odp_stress: some kind of operation or change never succeeded (see above)\n");

	for (int i = 0; i < nworkers; i++) {
		rdma_pair_destroy(&w[i].p);
		ibv_dereg_mr(w[i].buf_mr);
		ibv_dereg_mr(w[i].dst_mr);
		ibv_destroy_cq(w[i].r.cq);
		ibv_destroy_comp_channel(w[i].ch);
	}
	ibv_dereg_mr(region_mr);
	ibv_dereg_mr(implicit_mr);
	rdma_close(&rc);
	return violations || timeouts || incomplete ? 1 : 0;
}
