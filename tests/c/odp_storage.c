// SPDX-License-Identifier: GPL-2.0
/*
 * File-backed ODP on a real file system: a storage target that maps a file
 * MAP_SHARED and registers the mapping with ODP, while the kernel keeps
 * managing the pages (writeback, eviction, truncate, hole punching, DAX).
 *
 *   odp_storage [--dax] DEV FSLABEL MOUNTPOINT BLOCKDEV FSTYPE [MOUNTOPTS]
 *
 * The file system on BLOCKDEV is mounted at MOUNTPOINT (with MOUNTOPTS) when
 * this starts; it is unmounted and mounted again by the persistence case.
 * Each case prints one TAP line named "FSLABEL: ..."; the details of a
 * failure are printed as "#" lines before it.  Every byte is checked: data
 * written by RDMA is read back through a fresh O_DIRECT descriptor (from
 * the disk, after fsync), data written by the CPU is read back by RDMA READ.
 * An RDMA operation into memory the kernel cannot provide (past EOF, no
 * space left) must complete in error, never hang and never signal the
 * target process.
 */
#define _GNU_SOURCE
#include "rdma_util.h"
#include "pattern.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB		(1024UL * 1024)
/* The test file: 8 MiB, four 2 MiB fault blocks of the ODP MR. */
#define FILE_LEN	(8 * MiB)

static long page_size;
static const char *dev_name, *label, *mnt, *blockdev, *fstype, *mntopts = "";
static int dax;
static struct rdma_ctx r;
/* The local side of every transfer: pinned anonymous memory */
static unsigned char *lbuf;
static struct ibv_mr *lmr;
/* A buffer for O_DIRECT reads and other checks */
static unsigned char *cbuf;

static void check(bool ok, const char *what)
{
	tap(ok, "%s: %s", label, what);
}

static const char *path_of(const char *name)
{
	static char buf[4][512];
	static int n;
	char *p = buf[n++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", mnt, name);
	return p;
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd < 0 || write(fd, "3\n", 2) != 2)
		tap_diag("drop_caches: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * Read [off, off + len) of @path through a fresh O_DIRECT descriptor, widened
 * to whole pages (O_DIRECT needs aligned I/O); returns where byte @off is in
 * cbuf, or NULL.
 */
static unsigned char *read_direct(const char *path, uint64_t off, size_t len)
{
	uint64_t start = off & ~(uint64_t)(page_size - 1);
	uint64_t end = (off + len + page_size - 1) & ~(uint64_t)(page_size - 1);
	int fd = open(path, O_RDONLY | O_DIRECT);
	size_t done = 0;
	ssize_t n;

	if (fd < 0) {
		tap_diag("open(%s, O_DIRECT): %s", path, strerror(errno));
		return NULL;
	}
	while (done < end - start) {
		n = pread(fd, cbuf + done, end - start - done, start + done);
		if (n <= 0) {
			tap_diag("O_DIRECT pread: %s", n ? strerror(errno) : "EOF");
			close(fd);
			return NULL;
		}
		done += n;
	}
	close(fd);
	return cbuf + (off - start);
}

/* Is the O_DIRECT image of [off, off + len) pattern @seed (0: zeros)? */
static bool on_disk(const char *path, unsigned int seed, uint64_t off,
		    size_t len, const char *what)
{
	unsigned char *p = read_direct(path, off, len);

	return p && same(p, seed, off, len, what);
}

/* Pages of [p, p + len) resident in the page cache (mincore) */
static long resident(void *p, size_t len)
{
	size_t n = (len + page_size - 1) / page_size;
	unsigned char *vec = malloc(n);
	long count = 0;

	if (!vec || mincore(p, len, vec)) {
		free(vec);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		count += vec[i] & 1;
	free(vec);
	return count;
}

/* A file of the test, mapped MAP_SHARED and registered with ODP */
struct target {
	const char *path;
	int fd;
	unsigned char *p;
	size_t len;
	struct ibv_mr *mr;
};

static int target_create(struct target *t, const char *name, size_t len,
			 unsigned int seed)
{
	memset(t, 0, sizeof(*t));
	t->path = path_of(name);
	t->len = len;
	t->fd = open(t->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (t->fd < 0) {
		tap_diag("open %s: %s", t->path, strerror(errno));
		return -1;
	}
	if (ftruncate(t->fd, len)) {
		tap_diag("ftruncate: %s", strerror(errno));
		return -1;
	}
	/* Written by the CPU through write(): allocated, on disk. */
	for (size_t off = 0; seed && off < len; off += MiB) {
		fill(cbuf, seed, off, MiB);
		if (pwrite(t->fd, cbuf, MiB, off) != (ssize_t)MiB) {
			tap_diag("pwrite: %s", strerror(errno));
			return -1;
		}
	}
	if (fsync(t->fd)) {
		tap_diag("fsync: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int target_map(struct target *t)
{
	t->p = mmap(NULL, t->len, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	if (t->p == MAP_FAILED) {
		t->p = NULL;
		tap_diag("mmap: %s", strerror(errno));
		return -1;
	}
	t->mr = ibv_reg_mr(r.pd, t->p, t->len, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			   IBV_ACCESS_ON_DEMAND);
	if (!t->mr) {
		tap_diag("ibv_reg_mr(ODP) of the file mapping: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void target_close(struct target *t)
{
	if (t->mr)
		ibv_dereg_mr(t->mr);
	if (t->p)
		munmap(t->p, t->len);
	if (t->fd >= 0)
		close(t->fd);
	t->mr = NULL;
	t->p = NULL;
	t->fd = -1;
}

/*
 * One RDMA READ (file -> lbuf) or WRITE (lbuf -> file) of [off, off + len)
 * on a fresh QP pair; returns the completion status, -1 on time-out or when
 * nothing could be posted.
 */
static int rdma_op(struct target *t, enum ibv_wr_opcode op, uint64_t off,
		   size_t len)
{
	struct rdma_pair p;
	int st;

	if (rdma_pair_create(&r, &p)) {
		tap_diag("QP pair: %s", strerror(errno));
		return -1;
	}
	if (rdma_post_rw(&p, op, lbuf, lmr->lkey, (uintptr_t)t->p + off,
			 t->mr->rkey, len)) {
		tap_diag("post: %s", strerror(errno));
		rdma_pair_destroy(&p);
		return -1;
	}
	st = rdma_complete(&r, 1);
	rdma_pair_destroy(&p);
	if (st)
		tap_diag("%s of [%" PRIu64 ", +%zu): status %d (%s)",
		     op == IBV_WR_RDMA_READ ? "RDMA READ" : "RDMA WRITE", off,
		     len, st, st < 0 ? "time-out" : ibv_wc_status_str(st));
	return st;
}

/* RDMA WRITE pattern @seed into [off, off + len) of the file */
static bool rdma_write(struct target *t, unsigned int seed, uint64_t off,
		       size_t len)
{
	fill(lbuf, seed, off, len);
	return rdma_op(t, IBV_WR_RDMA_WRITE, off, len) == IBV_WC_SUCCESS;
}

/* RDMA READ [off, off + len) of the file: is it pattern @seed (0: zeros)? */
static bool rdma_read_is(struct target *t, unsigned int seed, uint64_t off,
			 size_t len, const char *what)
{
	memset(lbuf, 0xa5, len);
	if (rdma_op(t, IBV_WR_RDMA_READ, off, len) != IBV_WC_SUCCESS)
		return false;
	return same(lbuf, seed, off, len, what);
}

/* ---- the cases on the page cache (and on DAX, where they apply) ---- */

static void case_read_evicted(void)
{
	struct target t;
	long res = -1;
	bool ok;

	ok = !target_create(&t, "evicted", FILE_LEN, 11);
	drop_caches();
	ok = ok && !target_map(&t);
	if (ok && !dax) {
		/* Nothing of the file is in the page cache now. */
		res = resident(t.p, t.len);
		if (res != 0) {
			tap_diag("%ld pages of the file still cached after drop_caches", res);
			ok = false;
		}
	}
	ok = ok && rdma_read_is(&t, 11, 0, t.len, "RDMA READ of the evicted file");
	if (ok && !dax) {
		res = resident(t.p, t.len);
		if (res != (long)(t.len / page_size)) {
			tap_diag("after the READ %ld of %zu pages are cached", res,
			     t.len / page_size);
			ok = false;
		}
	}
	check(ok, dax ? "RDMA READ of a file after drop_caches (DAX: from pmem, no page cache)" :
			"RDMA READ of an evicted file reads it from disk");
	target_close(&t);
}

/*
 * A pinned, writable registration of a shared page-cache file mapping is
 * refused: since 6.5 GUP does not take long-term writable pins of file
 * pages that need dirty tracking (writable_file_mapping_allowed(): EFAULT).
 * Read-only pins are allowed; ODP registers it either way.
 */
static void case_pinned_pagecache(void)
{
	struct target t;
	struct ibv_mr *mr;
	bool ok;

	ok = !target_create(&t, "pinned", FILE_LEN, 5);
	t.p = ok ? mmap(NULL, t.len, PROT_READ | PROT_WRITE, MAP_SHARED, t.fd, 0) : MAP_FAILED;
	if (t.p == MAP_FAILED) {
		t.p = NULL;
		ok = false;
	}
	mr = ok ? ibv_reg_mr(r.pd, t.p, t.len, IBV_ACCESS_LOCAL_WRITE |
			     IBV_ACCESS_REMOTE_WRITE) : NULL;
	ok = ok && !mr && errno == EFAULT;
	if (mr)
		ibv_dereg_mr(mr);
	check(ok, "pinned writable ibv_reg_mr of a MAP_SHARED page-cache file fails with EFAULT");
	mr = t.p ? ibv_reg_mr(r.pd, t.p, t.len, IBV_ACCESS_REMOTE_READ) : NULL;
	check(mr, "pinned read-only ibv_reg_mr of the same mapping works");
	if (mr)
		ibv_dereg_mr(mr);
	target_close(&t);
}

/* WRITE; fsync; evict; O_DIRECT.  Then again after writeback cleaned them. */
static void case_write_fsync(void)
{
	struct target t;
	bool ok;

	ok = !target_create(&t, "written", FILE_LEN, 21) && !target_map(&t);
	/* A span over a 2 MiB boundary, not page aligned at either end */
	ok = ok && rdma_write(&t, 22, 2 * MiB - 3 * page_size - 5, 5 * page_size + 9);
	ok = ok && !fsync(t.fd);
	drop_caches();
	ok = ok && on_disk(t.path, 22, 2 * MiB - 3 * page_size - 5,
			   5 * page_size + 9, "O_DIRECT after fsync");
	/* The bytes around it are untouched. */
	ok = ok && on_disk(t.path, 21, 0, 2 * MiB - 3 * page_size - 5, "before") &&
	     on_disk(t.path, 21, 2 * MiB + 2 * page_size + 4,
		     FILE_LEN - (2 * MiB + 2 * page_size + 4), "after");
	check(ok, "RDMA WRITE, fsync, evict: O_DIRECT reads the data from disk");

	/* fsync cleaned the pages (page_mkclean): the mirror must re-dirty. */
	ok = ok && rdma_write(&t, 23, 0, FILE_LEN);
	ok = ok && !fsync(t.fd);
	drop_caches();
	ok = ok && on_disk(t.path, 23, 0, FILE_LEN, "O_DIRECT after the second fsync");
	check(ok, "second RDMA WRITE after writeback: the new data is on disk");

	/* And a third time, a single page in the middle. */
	ok = ok && rdma_write(&t, 24, 5 * MiB + page_size, page_size);
	ok = ok && !fsync(t.fd);
	ok = ok && on_disk(t.path, 24, 5 * MiB + page_size, page_size, "third") &&
	     on_disk(t.path, 23, 0, 5 * MiB + page_size, "third, before");
	check(ok, "third RDMA WRITE of one page after writeback: on disk");
	target_close(&t);
}

/* Only the mirror knows the pages were written: the CPU mapping is gone. */
static void case_write_dontneed(void)
{
	struct target t;
	bool ok;

	ok = !target_create(&t, "dontneed", FILE_LEN, 31) && !target_map(&t);
	ok = ok && rdma_write(&t, 32, MiB, 4 * MiB);
	if (ok && madvise(t.p, t.len, MADV_DONTNEED)) {
		tap_diag("MADV_DONTNEED: %s", strerror(errno));
		ok = false;
	}
	ok = ok && !syncfs(t.fd);
	drop_caches();
	ok = ok && on_disk(t.path, 32, MiB, 4 * MiB, "O_DIRECT after syncfs") &&
	     on_disk(t.path, 31, 0, MiB, "before") &&
	     on_disk(t.path, 31, 5 * MiB, 3 * MiB, "after");
	ok = ok && rdma_read_is(&t, 32, MiB, 4 * MiB, "RDMA READ after eviction");
	check(ok, "RDMA WRITE, MADV_DONTNEED, syncfs, evict: the data is on disk");
	target_close(&t);
}

/* Writes through another descriptor are what the next RDMA READ sees. */
static void case_other_fd(void)
{
	struct target t;
	int fd = -1, dfd = -1;
	bool ok;

	ok = !target_create(&t, "otherfd", FILE_LEN, 41) && !target_map(&t);
	/* The mirror holds every page before the writes. */
	ok = ok && rdma_read_is(&t, 41, 0, t.len, "first READ");
	if (ok) {
		fd = open(t.path, O_RDWR);
		fill(cbuf, 42, 3 * MiB + 100, 3 * page_size);
		ok = fd >= 0 && pwrite(fd, cbuf, 3 * page_size, 3 * MiB + 100) ==
				(ssize_t)(3 * page_size);
	}
	ok = ok && rdma_read_is(&t, 42, 3 * MiB + 100, 3 * page_size,
				"READ after pwrite") &&
	     rdma_read_is(&t, 41, 0, 3 * MiB + 100, "READ before the pwrite range");
	check(ok, "pwrite() from another descriptor is seen by the next RDMA READ");

	if (ok) {
		dfd = open(t.path, O_RDWR | O_DIRECT);
		fill(cbuf, 43, 6 * MiB, MiB);
		ok = dfd >= 0 && pwrite(dfd, cbuf, MiB, 6 * MiB) == (ssize_t)MiB;
		if (!ok)
			tap_diag("O_DIRECT pwrite: %s", strerror(errno));
	}
	ok = ok && rdma_read_is(&t, 43, 6 * MiB, MiB, "READ after O_DIRECT write") &&
	     rdma_read_is(&t, 41, 7 * MiB, MiB, "READ after the O_DIRECT range");
	check(ok, "O_DIRECT write from another descriptor is seen by the next RDMA READ");

	/* A punched hole reads back as zeros, its neighbours unchanged. */
	if (ok && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			    MiB, 2 * MiB)) {
		tap_diag("fallocate(PUNCH_HOLE): %s", strerror(errno));
		ok = false;
	}
	ok = ok && rdma_read_is(&t, 0, MiB, 2 * MiB, "READ of the hole") &&
	     rdma_read_is(&t, 41, 0, MiB, "READ before the hole") &&
	     rdma_read_is(&t, 42, 3 * MiB + 100, 3 * page_size, "READ after the hole");
	ok = ok && on_disk(t.path, 0, MiB, 2 * MiB, "O_DIRECT of the hole");
	check(ok, "fallocate(PUNCH_HOLE) reads back as zeros through RDMA");

	/* An RDMA WRITE into the hole fills it again. */
	ok = ok && rdma_write(&t, 44, MiB + page_size, 2 * page_size) &&
	     !fsync(t.fd) &&
	     on_disk(t.path, 44, MiB + page_size, 2 * page_size, "refilled hole") &&
	     on_disk(t.path, 0, MiB, page_size, "rest of the hole");
	check(ok, "RDMA WRITE into a punched hole lands on disk");
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	target_close(&t);
}

static sigjmp_buf sigbus_jmp;
static volatile sig_atomic_t sigbus_seen;

static void on_sigbus(int sig)
{
	(void)sig;
	sigbus_seen++;
	siglongjmp(sigbus_jmp, 1);
}

/* ftruncate() to half while registered. */
static void case_truncate(void)
{
	size_t half = FILE_LEN / 2;
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	struct target t;
	int st;
	bool ok;

	sigaction(SIGBUS, &sa, &old);
	sigbus_seen = 0;
	ok = !target_create(&t, "truncated", FILE_LEN, 51) && !target_map(&t);
	ok = ok && rdma_read_is(&t, 51, 0, t.len, "READ before truncate");
	if (ok && ftruncate(t.fd, half)) {
		tap_diag("ftruncate: %s", strerror(errno));
		ok = false;
	}
	if (ok) {
		st = rdma_op(&t, IBV_WR_RDMA_READ, half + page_size, 2 * page_size);
		ok = st == IBV_WC_REM_ACCESS_ERR;
		if (!ok)
			tap_diag("READ past EOF: status %d, expected %d (remote access error)",
			     st, IBV_WC_REM_ACCESS_ERR);
	}
	check(ok && !sigbus_seen, "RDMA READ past EOF after ftruncate completes with a remote access error");

	if (ok) {
		fill(lbuf, 52, half, page_size);
		st = rdma_op(&t, IBV_WR_RDMA_WRITE, half, page_size);
		ok = st == IBV_WC_REM_ACCESS_ERR;
		if (!ok)
			tap_diag("WRITE past EOF: status %d, expected %d", st,
			     IBV_WC_REM_ACCESS_ERR);
	}
	check(ok && !sigbus_seen, "RDMA WRITE past EOF after ftruncate completes with a remote access error");

	/* The first half still works, READ and WRITE, up to the last byte. */
	ok = ok && rdma_read_is(&t, 51, 0, half, "READ of the first half") &&
	     rdma_write(&t, 53, half - 2 * page_size, 2 * page_size) &&
	     !fsync(t.fd) &&
	     on_disk(t.path, 53, half - 2 * page_size, 2 * page_size, "WRITE below EOF");
	check(ok, "the first half still works after ftruncate (READ and WRITE)");

	/* Extended again: the second half reads zeros, and takes writes. */
	if (ok && ftruncate(t.fd, FILE_LEN)) {
		tap_diag("ftruncate (extend): %s", strerror(errno));
		ok = false;
	}
	ok = ok && rdma_read_is(&t, 0, half, half, "READ of the re-extended half") &&
	     rdma_write(&t, 54, half + page_size, page_size) && !fsync(t.fd) &&
	     on_disk(t.path, 54, half + page_size, page_size, "WRITE after extend") &&
	     on_disk(t.path, 0, half, page_size, "zeros after extend");
	check(ok && !sigbus_seen, "extended again: the new half reads zeros and takes writes");
	if (sigbus_seen)
		tap_diag("the target process got %d SIGBUS", (int)sigbus_seen);
	target_close(&t);
	sigaction(SIGBUS, &old, NULL);
}

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

/*
 * Dirty pages of @fd's page cache, from cachestat(2) (Linux 6.5; the
 * structures are declared here for older uapi headers); -1 on error.
 */
static long long dirty_pages(int fd)
{
	struct { uint64_t off, len; } range = { 0, 0 };	/* to the end */
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback;
		uint64_t nr_evicted, nr_recently_evicted;
	} cs;

	if (syscall(__NR_cachestat, fd, &range, &cs, 0))
		return -1;
	return (long long)cs.nr_dirty;
}

/*
 * What one CPU store at @off does to a fresh sparse file: the bytes it
 * allocates (*@bytes) and the pages it dirties (*@dirty), or -1.
 */
static void cpu_store(uint64_t off, long long *bytes, long long *dirty)
{
	const char *path = path_of("sparse-cpu");
	struct stat st;
	unsigned char *p;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	*bytes = *dirty = -1;
	if (fd < 0 || ftruncate(fd, FILE_LEN))
		goto out;
	p = mmap(NULL, FILE_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto out;
	p[off] = pat(61, off);
	munmap(p, FILE_LEN);
	*dirty = dirty_pages(fd);
	if (!fsync(fd) && !fstat(fd, &st))
		*bytes = (long long)st.st_blocks * 512;
out:
	if (fd >= 0)
		close(fd);
	unlink(path);
}

/*
 * A 1-byte RDMA WRITE into a sparse file allocates and dirties what a CPU
 * store to the same byte does: one block and one page on ext4; on xfs the
 * page cache folio the store dirties may be larger than a page (large
 * folios), and on DAX the fault may map, and so allocate, a whole 2 MiB
 * extent (PMD fault).  The device must not allocate or dirty more than
 * that, e.g. the whole 2 MiB fault block around the byte.
 */
static void case_sparse_one_byte(void)
{
	struct target t;
	struct stat st;
	uint64_t off = 3 * MiB + 5 * page_size + 17;
	long long cpu, cpu_dirty, dirty = -1;
	bool ok;

	cpu_store(off, &cpu, &cpu_dirty);
	tap_diag("a CPU store of 1 byte into a sparse file allocates %lld bytes (block size %ld) and dirties %lld pages",
	     cpu, (long)page_size, cpu_dirty);
	/*
	 * The page cache tags what a store dirties; a DAX file has no page
	 * cache to count (its dirty entries are not pages), so there only the
	 * allocation is compared.
	 */
	ok = cpu > 0 && (dax ? cpu_dirty >= 0 : cpu_dirty > 0);
	ok = ok && !target_create(&t, "sparse", FILE_LEN, 0) && !target_map(&t);
	ok = ok && !fstat(t.fd, &st);
	if (ok && st.st_blocks) {
		tap_diag("the new sparse file has %lld blocks", (long long)st.st_blocks);
		ok = false;
	}
	ok = ok && rdma_write(&t, 61, off, 1);
	if (ok && !dax) {
		dirty = dirty_pages(t.fd);
		if (dirty != cpu_dirty) {
			tap_diag("after a 1-byte RDMA WRITE %lld pages of the file are dirty, a CPU store dirties %lld",
			     dirty, cpu_dirty);
			ok = false;
		}
	}
	ok = ok && !fsync(t.fd) && !fstat(t.fd, &st);
	ok = ok && on_disk(t.path, 61, off, 1, "the byte") &&
	     on_disk(t.path, 0, 0, off, "zeros before") &&
	     on_disk(t.path, 0, off + 1, FILE_LEN - off - 1, "zeros after");
	if (ok && (long long)st.st_blocks * 512 != cpu) {
		tap_diag("after a 1-byte RDMA WRITE the file has %lld bytes allocated, a CPU store allocates %lld",
		     (long long)st.st_blocks * 512, cpu);
		ok = false;
	}
	check(ok, dax ? "1-byte RDMA WRITE into a sparse file allocates what a CPU store does (DAX: no page cache to dirty)" :
		  "1-byte RDMA WRITE into a sparse file allocates and dirties what a CPU store does (one block or folio, not 2 MiB)");
	target_close(&t);
}

/* Last WRITE, deregister, unmount, mount: the data is there. */
static void case_remount(void)
{
	struct target t;
	bool ok;

	ok = !target_create(&t, "persist", FILE_LEN, 71) && !target_map(&t);
	ok = ok && rdma_write(&t, 72, MiB / 2, 6 * MiB);
	target_close(&t);
	if (ok && umount(mnt)) {
		tap_diag("umount %s: %s", mnt, strerror(errno));
		ok = false;
	}
	if (ok && mount(blockdev, mnt, fstype, 0, mntopts)) {
		tap_diag("mount %s: %s", blockdev, strerror(errno));
		ok = false;
	}
	ok = ok && on_disk(path_of("persist"), 72, MiB / 2, 6 * MiB, "after remount") &&
	     on_disk(path_of("persist"), 71, 0, MiB / 2, "before") &&
	     on_disk(path_of("persist"), 71, 6 * MiB + MiB / 2, MiB + MiB / 2, "after");
	if (ok) {
		/* And through the page cache (or DAX) of the new mount */
		int fd = open(path_of("persist"), O_RDONLY);

		ok = fd >= 0 && pread(fd, cbuf, FILE_LEN, 0) == (ssize_t)FILE_LEN &&
		     same(cbuf + MiB / 2, 72, MiB / 2, 6 * MiB, "buffered read");
		if (fd >= 0)
			close(fd);
	}
	check(ok, "RDMA WRITE, deregister, unmount, mount: the data is there");
}

/* Child: write one byte at @p; exits 0, or dies of SIGBUS. */
static int cpu_write_status(unsigned char *p)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		*(volatile unsigned char *)p = 1;
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

/* A full file system: a WRITE that needs a new block fails, nothing is lost. */
static void case_enospc(void)
{
	struct target t;
	size_t half = FILE_LEN / 2, chunk;
	int ffd = -1, st;
	off_t filled = 0;
	bool ok;

	/* The first half written and on disk, the second half a hole. */
	ok = !target_create(&t, "full", FILE_LEN, 0);
	for (size_t off = 0; ok && off < half; off += MiB) {
		fill(cbuf, 81, off, MiB);
		ok = pwrite(t.fd, cbuf, MiB, off) == (ssize_t)MiB;
	}
	ok = ok && !fsync(t.fd) && !target_map(&t);
	/* Fill the file system: fallocate in halving chunks down to one block. */
	if (ok) {
		ffd = open(path_of("filler"), O_RDWR | O_CREAT | O_TRUNC, 0644);
		ok = ffd >= 0;
	}
	for (chunk = 1UL << 30; ok && chunk >= (size_t)page_size; ) {
		if (!fallocate(ffd, 0, filled, chunk))
			filled += chunk;
		else if (errno == ENOSPC)
			chunk /= 2;
		else {
			tap_diag("fallocate: %s", strerror(errno));
			ok = false;
		}
	}
	ok = ok && !fsync(ffd);
	if (ok && (!fallocate(ffd, 0, filled, page_size) || errno != ENOSPC)) {
		tap_diag("the file system is not full: one more block: %s", strerror(errno));
		ok = false;
	}
	tap_diag("filler: %lld MiB", (long long)(filled / MiB));
	/* A WRITE into blocks the file already has still works. */
	ok = ok && rdma_write(&t, 82, MiB, MiB);
	check(ok, "full file system: RDMA WRITE into allocated blocks works");

	if (ok) {
		fill(lbuf, 83, half + MiB, page_size);
		st = rdma_op(&t, IBV_WR_RDMA_WRITE, half + MiB, page_size);
		ok = st == IBV_WC_REM_ACCESS_ERR;
		if (!ok)
			tap_diag("WRITE into a hole: status %d, expected %d", st,
			     IBV_WC_REM_ACCESS_ERR);
		/* What the CPU gets for the same store: SIGBUS (ENOSPC) */
		st = cpu_write_status(t.p + half + MiB);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGBUS) {
			tap_diag("a CPU store into the hole: wait status %#x, expected SIGBUS", st);
			ok = false;
		}
	}
	check(ok, "full file system: RDMA WRITE needing a new block completes in error");

	/* Nothing already written is lost, nothing was written to the hole. */
	ok = ok && !fsync(t.fd);
	drop_caches();
	ok = ok && on_disk(t.path, 81, 0, MiB, "first MiB") &&
	     on_disk(t.path, 82, MiB, MiB, "WRITE before ENOSPC") &&
	     on_disk(t.path, 81, 2 * MiB, half - 2 * MiB, "rest of the first half") &&
	     on_disk(t.path, 0, half, half, "hole");
	check(ok, "full file system: nothing already written is lost");
	if (ffd >= 0) {
		close(ffd);
		unlink(path_of("filler"));
	}
	target_close(&t);
	unlink(path_of("full"));
}

/* ---- DAX only ---- */

/* The physical address of the page the CPU maps at @p (/proc/self/pagemap) */
static uint64_t phys_of(void *p)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, ((uintptr_t)p / page_size) * 8) != 8)
		e = 0;
	close(fd);
	if (!(e >> 63))
		return 0;
	return (e & ((1ULL << 55) - 1)) * page_size;
}

/* The physical range of the pmem namespace ("Persistent Memory" in /proc/iomem) */
static bool in_pmem(uint64_t phys)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	bool in = false;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long a, b;

		if (strstr(line, "Persistent Memory") &&
		    sscanf(line, " %llx-%llx", &a, &b) == 2 && phys >= a && phys <= b)
			in = true;
	}
	if (f)
		fclose(f);
	return in;
}

static void case_dax(void)
{
	struct target t;
	struct ibv_mr *pinned;
	uint64_t phys;
	bool ok;

	ok = !target_create(&t, "dax", FILE_LEN, 91);
	t.p = mmap(NULL, t.len, PROT_READ | PROT_WRITE, MAP_SHARED, t.fd, 0);
	if (t.p == MAP_FAILED) {
		t.p = NULL;
		ok = false;
	}
	if (ok) {
		pinned = ibv_reg_mr(r.pd, t.p, t.len, IBV_ACCESS_LOCAL_WRITE |
				    IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
		ok = !pinned && errno == EOPNOTSUPP;
		if (pinned)
			ibv_dereg_mr(pinned);
		else
			tap_diag("pinned ibv_reg_mr: %s", strerror(errno));
	}
	check(ok, "pinned ibv_reg_mr of a MAP_SHARED DAX mapping fails with EOPNOTSUPP");

	if (t.p) {
		t.mr = ibv_reg_mr(r.pd, t.p, t.len, IBV_ACCESS_LOCAL_WRITE |
				  IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
				  IBV_ACCESS_ON_DEMAND);
		if (!t.mr)
			tap_diag("ODP ibv_reg_mr: %s", strerror(errno));
	}
	ok = t.mr && rdma_write(&t, 92, 3 * MiB - 7, 2 * MiB + 13);
	/* The CPU sees the device's bytes in the pmem page it maps. */
	ok = ok && same(t.p + 3 * MiB - 7, 92, 3 * MiB - 7, 2 * MiB + 13, "CPU view");
	phys = ok ? phys_of(t.p + 3 * MiB) : 0;
	if (ok && !in_pmem(phys)) {
		tap_diag("the file page is at physical %#" PRIx64 ", not in persistent memory", phys);
		ok = false;
	}
	ok = ok && rdma_read_is(&t, 91, 0, 3 * MiB - 7, "READ before") &&
	     rdma_read_is(&t, 92, 3 * MiB - 7, 2 * MiB + 13, "READ of the written range");
	check(ok, "ODP registration of the DAX mapping works: RDMA lands in the pmem page the CPU maps");
	target_close(&t);
}

int main(int argc, char **argv)
{
	int a = 1;

	if (a < argc && !strcmp(argv[a], "--dax")) {
		dax = 1;
		a++;
	}
	if (argc - a < 5) {
		fprintf(stderr, "usage: %s [--dax] DEV FSLABEL MOUNTPOINT BLOCKDEV FSTYPE [MOUNTOPTS]\n",
			argv[0]);
		return 2;
	}
	dev_name = argv[a];
	label = argv[a + 1];
	mnt = argv[a + 2];
	blockdev = argv[a + 3];
	fstype = argv[a + 4];
	if (argc - a > 5)
		mntopts = argv[a + 5];
	page_size = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (rdma_open(&r, dev_name, 1)) {
		tap(false, "%s: open %s", label, dev_name);
		return tap_done();
	}
	/*
	 * A fault may wait for the disk (or, on a full file system, for
	 * journal commits) much longer than rxe's default ACK timeout: the
	 * requester must not give up (retry exceeded) before the responder
	 * answers.  18: 1.07 s, seven retries.
	 */
	r.qp_timeout = 18;
	lbuf = mmap(NULL, FILE_LEN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	cbuf = mmap(NULL, FILE_LEN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (lbuf == MAP_FAILED || cbuf == MAP_FAILED) {
		tap(false, "%s: buffers", label);
		return tap_done();
	}
	lmr = ibv_reg_mr(r.pd, lbuf, FILE_LEN, IBV_ACCESS_LOCAL_WRITE);
	if (!lmr) {
		tap(false, "%s: register the local buffer: %s", label, strerror(errno));
		return tap_done();
	}

	if (dax)
		case_dax();
	else
		case_pinned_pagecache();
	case_read_evicted();
	case_write_fsync();
	case_write_dontneed();
	case_other_fd();
	case_truncate();
	case_sparse_one_byte();
	case_enospc();
	case_remount();

	ibv_dereg_mr(lmr);
	rdma_close(&r);
	return tap_done();
}
