// SPDX-License-Identifier: GPL-2.0
/*
 * Tests and benchmark of the HMM mirror on a real DMA path: QEMU's edu
 * device behind an emulated VT-d IOMMU, driven by lib/test_hmm_mirror_edu.c
 * through /dev/hmm_mirror_edu.
 *
 *   edu_mirror test                 TAP: data integrity both ways, refault
 *                                   after munmap/mmap, refused DMA to
 *                                   invalidated pages, invalidation waiting
 *                                   for a running DMA, the IOMMU's
 *                                   translations, IOMMU work counted
 *   edu_mirror bench [RUNS] [PAGES] table: batched mirror fault against
 *                                   per-page dma_map_page(), same pages,
 *                                   RUNS interleaved runs (default 9, 512)
 */
#define _GNU_SOURCE
#include "tap.h"
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "test_hmm_mirror_edu_uapi.h"

#define PAGE 4096UL
/* Longest transfer: QEMU 7.2's edu never lets one reach the buffer's last byte */
#define XFER EDU_MIRROR_DEV_XFER_END
#define HALF (PAGE / 2)

static void die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

static int fd;

static int xfer(unsigned long req, void *addr, size_t len, size_t dev_off,
		unsigned int flags, struct edu_mirror_cmd *out)
{
	struct edu_mirror_cmd cmd = {
		.addr = (uintptr_t)addr, .len = len, .dev_off = dev_off,
		.flags = flags,
	};
	int ret = ioctl(fd, req, &cmd);

	if (out)
		*out = cmd;
	return ret ? -errno : 0;
}

/* user memory -> device buffer */
static int to_dev(void *addr, size_t len, size_t off, unsigned int flags)
{
	return xfer(EDU_MIRROR_IOC_TO_DEV, addr, len, off, flags, NULL);
}

/* device buffer -> user memory */
static int from_dev(void *addr, size_t len, size_t off, unsigned int flags)
{
	return xfer(EDU_MIRROR_IOC_FROM_DEV, addr, len, off, flags, NULL);
}

static struct edu_mirror_stats stats(void)
{
	struct edu_mirror_stats s;

	if (ioctl(fd, EDU_MIRROR_IOC_STATS, &s))
		die("EDU_MIRROR_IOC_STATS");
	return s;
}

static void fill(void *p, size_t len, unsigned int seed)
{
	unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		c[i] = seed >> 16;
	}
}

/* A reserved, aligned address range, mirrored as a whole */
static char *arena;
static size_t arena_len = 1024 * PAGE;

static int open_and_init(char *base, size_t len, unsigned int *mode)
{
	struct edu_mirror_init init = { .addr = (uintptr_t)base, .len = len };

	fd = open("/dev/hmm_mirror_edu", O_RDWR);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, EDU_MIRROR_IOC_INIT, &init))
		return -errno;
	*mode = init.dma_mode;
	return 0;
}

/* Which IOMMU domain type does the bound edu device have? */
static int iommu_domain_type(char *buf, size_t size)
{
	glob_t g;
	char path[512];
	FILE *f;
	int ret = -1;

	if (glob("/sys/bus/pci/drivers/test_hmm_mirror_edu/0000:*", 0, NULL, &g))
		return -1;
	snprintf(path, sizeof(path), "%s/iommu_group/type", g.gl_pathv[0]);
	globfree(&g);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, size, f)) {
		buf[strcspn(buf, "\n")] = 0;
		ret = 0;
	}
	fclose(f);
	return ret;
}

/* ---- test cases -------------------------------------------------------- */

static void t_roundtrip(void)
{
	char *a = arena, *b = arena + 8 * PAGE;
	struct edu_mirror_stats s0, s1;
	int i, h, ret = 0;

	/* Every byte of 4 pages, half a page per transfer each way */
	fill(a, 4 * PAGE, 1);
	memset(b, 0, 4 * PAGE);
	s0 = stats();
	for (i = 0; i < 4 && !ret; i++) {
		for (h = 0; h < 2 && !ret; h++) {
			size_t off = i * PAGE + h * HALF;

			ret = to_dev(a + off, HALF, 0, 0);
			if (!ret)
				ret = from_dev(b + off, HALF, 0, 0);
		}
	}
	s1 = stats();
	tap(!ret && !memcmp(a, b, 4 * PAGE),
	    "4 pages CPU -> device -> CPU through the IOMMU, every byte equal (ret %d)", ret);
	tap(s1.dma_started - s0.dma_started == 16,
	    "one device DMA per half page and direction (%llu started)",
	    (unsigned long long)(s1.dma_started - s0.dma_started));
}

static void t_unaligned(void)
{
	char *a = arena + 16 * PAGE, *b = arena + 20 * PAGE;
	struct edu_mirror_cmd c1, c2;
	char *pat = malloc(PAGE);
	int r1, r2, r3, r4, r5;

	/* 4000 bytes from offset 100 and to offset 3000: two pages each */
	fill(a, 3 * PAGE, 2);
	memset(b, 0x5a, 3 * PAGE);
	r1 = xfer(EDU_MIRROR_IOC_TO_DEV, a + 100, 4000, 0, 0, &c1);
	r2 = xfer(EDU_MIRROR_IOC_FROM_DEV, b + 3000, 4000, 0, 0, &c2);
	tap(!r1 && !r2 && c1.pages == 2 && c2.pages == 2 &&
	    !memcmp(a + 100, b + 3000, 4000) &&
	    b[2999] == 0x5a && b[3000 + 4000] == 0x5a,
	    "unaligned 4000 bytes across two pages each way, bytes around untouched (%d %d, %llu+%llu transfers)",
	    r1, r2, (unsigned long long)c1.pages, (unsigned long long)c2.pages);

	/* partial: 1000 bytes into the device buffer at offset 3000 */
	fill(pat, PAGE, 3);
	memcpy(a, pat, PAGE);
	r1 = to_dev(a, XFER, 0, 0);
	fill(a + 5, 1000, 4);
	r2 = to_dev(a + 5, 1000, 3000, 0);
	memcpy(pat + 3000, a + 5, 1000);
	memset(b, 0, PAGE);
	r3 = from_dev(b, XFER, 0, 0);
	r4 = to_dev(a, 1, XFER, 0);	/* the last byte: QEMU 7.2 would stop */
	r5 = to_dev(a, PAGE, 0, 0);
	tap(!r1 && !r2 && !r3 && !memcmp(b, pat, XFER) && r4 == -EINVAL &&
	    r5 == -EINVAL,
	    "partial transfer at a device offset lands exactly there; one reaching the buffer's last byte is -EINVAL (%d %d %d %d %d)",
	    r1, r2, r3, r4, r5);
	free(pat);
}

/*
 * munmap + mmap(MAP_FIXED) of new anonymous content: the old page is freed
 * and the new one faulted, the device must see the new bytes.
 */
static void t_remap_anon(void)
{
	char *x = arena + 24 * PAGE, *chk = arena + 25 * PAGE;
	struct edu_mirror_stats s0, s1;
	int r1, r2, r3, r4;
	char *p;

	fill(x, PAGE, 10);
	r1 = to_dev(x, XFER, 0, 0);
	s0 = stats();
	if (munmap(x, PAGE))
		die("munmap");
	s1 = stats();
	/*
	 * At least that page: splitting the VMA in a region that THP could
	 * map makes 6.12 (__split_huge_pmd) invalidate the whole 2 MiB
	 * around the split, even where no huge page is mapped.
	 */
	tap(!r1 && s1.inval_calls > s0.inval_calls &&
	    s1.pages_invalidated >= s0.pages_invalidated + 1,
	    "munmap of a mirrored page invalidates it (%llu pages invalidated)",
	    (unsigned long long)(s1.pages_invalidated - s0.pages_invalidated));

	p = mmap(x, PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p != x)
		die("mmap MAP_FIXED");
	fill(x, PAGE, 11);
	r2 = to_dev(x, XFER, 0, 0);
	memset(chk, 0, PAGE);
	r3 = from_dev(chk, XFER, 0, 0);
	r4 = memcmp(chk, x, XFER);
	fill(chk, PAGE, 10);
	tap(!r2 && !r3 && !r4 && memcmp(x, chk, XFER),
	    "after munmap + mmap(MAP_FIXED) the device reads the new page's bytes (%d %d)", r2, r3);
}

/*
 * The stronger variant: the old page stays alive (a memfd page), so a stale
 * IOMMU mapping would show its old bytes.  Also both directions, and the
 * DMA refused while the new page is mapped by the CPU but not mirrored.
 */
static void t_remap_memfd(void)
{
	char *x = arena + 28 * PAGE, *chk = arena + 29 * PAGE;
	struct edu_mirror_stats s0, s1;
	char *view, *old = malloc(PAGE), *before = malloc(PAGE);
	int mfd, r1, r2, r3, r4, r5, r6;

	mfd = memfd_create("edu", 0);
	if (mfd < 0 || ftruncate(mfd, 4 * PAGE))
		die("memfd");
	view = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (view == MAP_FAILED)
		die("mmap memfd");
	fill(view, PAGE, 20);		/* page 0: old content */
	fill(view + PAGE, PAGE, 21);	/* page 1: new content */
	memcpy(old, view, PAGE);

	if (mmap(x, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 mfd, 0) != x)
		die("mmap memfd page 0");
	r1 = to_dev(x, XFER, 0, 0);	/* mirrors x -> page 0 */

	/* x now shows page 1: invalidation of x, entry cleared */
	if (mmap(x, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 mfd, PAGE) != x)
		die("mmap memfd page 1");

	/* Not mirrored any more: refused, never performed */
	s0 = stats();
	r2 = to_dev(x, XFER, 0, EDU_MIRROR_NOFAULT);
	memcpy(before, x, PAGE);
	r3 = from_dev(x, XFER, 0, EDU_MIRROR_NOFAULT);
	s1 = stats();
	tap(r1 == 0 && r2 == -EFAULT && r3 == -EFAULT &&
	    s1.dma_started == s0.dma_started &&
	    s1.dma_refused == s0.dma_refused + 2 && !memcmp(x, before, PAGE),
	    "DMA without fault to the invalidated page is refused both ways, no transfer started, memory untouched (%d %d, %llu started)",
	    r2, r3, (unsigned long long)(s1.dma_started - s0.dma_started));

	memset(chk, 0, PAGE);
	r4 = from_dev(chk, XFER, 0, 0);
	tap(!r4 && !memcmp(chk, old, XFER),
	    "the refused DMA left the device buffer as it was (%d)", r4);

	/* Faulting DMA: the device must read page 1, not the old page 0 */
	r5 = to_dev(x, XFER, 0, 0);
	memset(chk, 0, PAGE);
	r6 = from_dev(chk, XFER, 0, 0);
	tap(!r5 && !r6 && !memcmp(chk, view + PAGE, XFER) &&
	    memcmp(chk, old, XFER),
	    "after the remap the device reads the new page while the old one is still alive (%d %d)", r5, r6);

	/* And writes go to the new page only */
	fill(chk, PAGE, 22);
	r5 = to_dev(chk, XFER, 0, 0);
	r6 = from_dev(x, XFER, 0, 0);
	tap(!r5 && !r6 && !memcmp(view + PAGE, chk, XFER) &&
	    !memcmp(view, old, PAGE),
	    "device writes land in the new page, the old page keeps its bytes (%d %d)", r5, r6);

	munmap(view, 4 * PAGE);
	close(mfd);
	free(old);
	free(before);
}

/* MADV_DONTNEED zaps the page: the mirror entry goes, NOFAULT is refused */
static void t_dontneed(void)
{
	char *x = arena + 32 * PAGE;
	struct edu_mirror_stats s0, s1;
	int r1, r2, r3;

	fill(x, PAGE, 30);
	r1 = to_dev(x, XFER, 0, EDU_MIRROR_NOFAULT);	/* not faulted yet */
	r2 = to_dev(x, XFER, 0, 0);
	madvise(x, PAGE, MADV_DONTNEED);
	s0 = stats();
	r3 = to_dev(x, XFER, 0, EDU_MIRROR_NOFAULT);
	s1 = stats();
	tap(r1 == -EFAULT && r2 == 0 && r3 == -EFAULT &&
	    s1.dma_started == s0.dma_started,
	    "never-faulted and MADV_DONTNEED'd pages are refused without fault (%d %d %d)", r1, r2, r3);
}

struct bg_xfer {
	char *addr;
	int ret;
	struct timespec started;
};

static void *bg_to_dev(void *arg)
{
	struct bg_xfer *b = arg;

	clock_gettime(CLOCK_MONOTONIC, &b->started);
	b->ret = to_dev(b->addr, XFER, 0, 0);
	return NULL;
}

static double ms_since(struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1e3 + (now.tv_nsec - t->tv_nsec) / 1e6;
}

/*
 * Invalidate a page while the device is reading it: the invalidation must
 * wait for the transfer, which then read the old page completely.
 */
static void t_inval_waits(void)
{
	char *y = arena + 36 * PAGE, *chk = arena + 37 * PAGE;
	char *view, *marker = malloc(PAGE);
	struct edu_mirror_stats s0, s1;
	int mfd, attempt, waited = 0, good = 1, r;
	double remap_ms = 0;

	mfd = memfd_create("edu-inval", 0);
	if (mfd < 0 || ftruncate(mfd, 2 * PAGE))
		die("memfd");
	view = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (view == MAP_FAILED)
		die("mmap memfd");

	for (attempt = 0; attempt < 5 && !waited; attempt++) {
		struct bg_xfer b = { .addr = y };
		struct timespec t;
		pthread_t th;

		fill(view, PAGE, 40 + attempt);		/* what the DMA must read */
		fill(view + PAGE, PAGE, 50 + attempt);	/* what replaces it */
		fill(marker, PAGE, 60 + attempt);	/* device buffer before */
		if (mmap(y, PAGE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, mfd, 0) != y)
			die("mmap");
		memcpy(chk, marker, PAGE);
		if (to_dev(chk, XFER, 0, 0))
			die("to_dev marker");

		s0 = stats();
		pthread_create(&th, NULL, bg_to_dev, &b);
		usleep(40000);	/* the transfer takes ~100 ms */
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (mmap(y, PAGE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, mfd, PAGE) != y)
			die("mmap over");
		remap_ms = ms_since(&t);
		pthread_join(th, NULL);
		s1 = stats();
		waited = s1.inval_waited > s0.inval_waited;

		memset(chk, 0, PAGE);
		r = from_dev(chk, XFER, 0, 0);
		/*
		 * The transfer read the old page, or, only if it did not
		 * overlap the invalidation, the new one; never anything else.
		 */
		if (b.ret || r || (memcmp(chk, view, XFER) &&
				   (waited || memcmp(chk, view + PAGE, XFER))))
			good = 0;
		tap_diag("attempt %d: remap took %.1f ms, invalidation waited: %s, DMA %d, device read the old page: %s",
		     attempt + 1, remap_ms, waited ? "yes" : "no", b.ret,
		     !memcmp(chk, view, XFER) ? "yes" : "no");
	}
	tap(waited, "an invalidation during a running DMA waited for the device (%d attempts)", attempt);
	tap(good, "the DMA overlapped by the invalidation read the whole old page, never a torn or unmapped one");
	munmap(view, 2 * PAGE);
	close(mfd);
	free(marker);
}

static int iova_check(void *addr, size_t len, struct edu_mirror_iova_check *c)
{
	*c = (struct edu_mirror_iova_check){ .addr = (uintptr_t)addr, .len = len };
	return ioctl(fd, EDU_MIRROR_IOC_IOVA_CHECK, c) ? -errno : 0;
}

/* Pages of [iova, iova + len) the IOMMU still translates, or -errno */
static long iova_mapped(uint64_t iova, size_t len)
{
	struct edu_mirror_iova_mapped m = { .iova = iova, .len = len };

	return ioctl(fd, EDU_MIRROR_IOC_IOVA_MAPPED, &m) ? -errno : (long)m.pages;
}

/*
 * The IOMMU's own page table agrees with the mirror: every entry's IOVA
 * translates to the entry's page, and the IOVAs of invalidated entries are
 * gone from the IOMMU's page table (the flush itself is counted by
 * t_counts()).
 */
static void t_iova(void)
{
	char *x = arena + 64 * PAGE;
	struct edu_mirror_iova_check c1, c2;
	int r1, r2, r3;
	long m_rest, m_first, m_bad;

	fill(x, 16 * PAGE, 40);
	r1 = xfer(EDU_MIRROR_IOC_FAULT, x, 16 * PAGE, 0, 0, NULL);
	r2 = iova_check(x, 16 * PAGE, &c1);
	tap(!r1 && !r2 && c1.entries == 16 && c1.wrong == 0,
	    "16 faulted pages: the IOMMU translates each entry's IOVA to its page (%d %d, %llu entries, %llu wrong)",
	    r1, r2, (unsigned long long)c1.entries, (unsigned long long)c1.wrong);
	tap(iova_mapped(c1.first_iova, 16 * PAGE) == 16,
	    "the 16 IOVAs of one leaf are one contiguous mapped range");

	madvise(x + PAGE, 15 * PAGE, MADV_DONTNEED);
	r3 = iova_check(x, 16 * PAGE, &c2);
	m_rest = iova_mapped(c1.first_iova + PAGE, 15 * PAGE);
	m_first = iova_mapped(c1.first_iova, PAGE);
	tap(!r3 && c2.entries == 1 && c2.wrong == 0 &&
	    c2.first_iova == c1.first_iova && m_rest == 0 && m_first == 1,
	    "MADV_DONTNEED of 15 pages: their IOVAs are unmapped in the IOMMU (%ld of 15 still mapped), page 0 stays (%ld, %llu entries)",
	    m_rest, m_first, (unsigned long long)c2.entries);
	m_bad = iova_mapped(c1.first_iova + 1, PAGE);
	tap(m_bad == -EINVAL && iova_mapped(c1.first_iova, 0) == -EINVAL,
	    "an unaligned or empty IOVA range is refused with EINVAL (%ld)", m_bad);
}

static void t_counts(void)
{
	size_t len = 512 * PAGE;
	char *buf = arena + 512 * PAGE;	/* the second half: 2 MiB, aligned */
	struct edu_mirror_cmd f, u, base;
	struct edu_mirror_stats s0, s1;
	int r1, r2, r3;
	unsigned int have;

	madvise(buf, len, MADV_NOHUGEPAGE);
	fill(buf, len, 70);
	s0 = stats();
	r1 = xfer(EDU_MIRROR_IOC_FAULT, buf, len, 0, 0, &f);
	r2 = xfer(EDU_MIRROR_IOC_UNMAP, buf, len, 0, 0, &u);
	s1 = stats();
	r3 = xfer(EDU_MIRROR_IOC_BASELINE, buf, len, 0, 0, &base);
	have = f.map.have;
	tap(!r1 && !r2 && !r3 && (have & EDU_MIRROR_HAVE_MAP) &&
	    (have & EDU_MIRROR_HAVE_FLUSH) && (have & EDU_MIRROR_HAVE_QI),
	    "fault, unmap and per-page baseline of 512 pages run, IOMMU counters attached (%d %d %d, have %#x)",
	    r1, r2, r3, have);
	tap_diag("batched fault: %llu pages, %llu map calls, %llu IOTLB flushes, %llu inv descs; mirror: %llu dma_maps %llu dma_syncs",
	     (unsigned long long)f.pages, (unsigned long long)f.map.iommu_maps,
	     (unsigned long long)f.map.iotlb_syncs, (unsigned long long)f.map.inv_descs,
	     (unsigned long long)(s1.dma_maps - s0.dma_maps),
	     (unsigned long long)(s1.dma_syncs - s0.dma_syncs));
	tap_diag("per-page map: %llu pages, %llu map calls, %llu IOTLB flushes, %llu inv descs",
	     (unsigned long long)base.pages, (unsigned long long)base.map.iommu_maps,
	     (unsigned long long)base.map.iotlb_syncs, (unsigned long long)base.map.inv_descs);
	/*
	 * The design guarantees one IOTLB sync per batched fault and one
	 * flush per unmap (the mirror's dma_syncs / dma_flushes and the VT-d
	 * driver's flush requests); how many invalidation descriptors the
	 * driver queues for one flush is the IOMMU's detail (one in QEMU's
	 * caching mode), printed only.
	 */
	tap_diag("unmap: %llu IOTLB flushes, %llu inv descs; mirror: %llu dma_flushes",
	     (unsigned long long)u.unmap.iotlb_syncs, (unsigned long long)u.unmap.inv_descs,
	     (unsigned long long)(s1.dma_flushes - s0.dma_flushes));
	tap(f.pages == 512 && f.map.iotlb_syncs == 1 &&
	    s1.dma_syncs - s0.dma_syncs == 1 &&
	    f.map.iommu_maps == s1.dma_maps - s0.dma_maps &&
	    f.map.iommu_maps >= 1 && f.map.iommu_maps <= 512,
	    "batched fault of 512 pages: one IOTLB sync (mirror dma_syncs %llu, driver %llu), one map call per contiguous run (%llu)",
	    (unsigned long long)(s1.dma_syncs - s0.dma_syncs), (unsigned long long)f.map.iotlb_syncs,
	    (unsigned long long)f.map.iommu_maps);
	tap(u.pages == 512 && u.unmap.iotlb_syncs == 1 && s1.dma_flushes - s0.dma_flushes == 1,
	    "unmap of the 512 pages: one flush (mirror dma_flushes %llu, driver IOTLB flushes %llu)",
	    (unsigned long long)(s1.dma_flushes - s0.dma_flushes), (unsigned long long)u.unmap.iotlb_syncs);
	tap(base.pages == 512 && base.map.iommu_maps == 512 &&
	    base.map.iotlb_syncs == 512 && base.unmap.iotlb_syncs == 512,
	    "per-page baseline of the same pages: 512 map calls, 512 IOTLB syncs, 512 flushes on unmap (%llu %llu %llu)",
	    (unsigned long long)base.map.iommu_maps,
	    (unsigned long long)base.map.iotlb_syncs,
	    (unsigned long long)base.unmap.iotlb_syncs);
}

static int cmd_test(void)
{
	char type[64] = "";
	unsigned int mode = 99;
	int ret;

	printf("TAP version 13\n");
	/* 4 MiB at a 2 MiB boundary; the second 2 MiB are for t_counts */
	arena = mmap(NULL, arena_len + (2UL << 20), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (arena == MAP_FAILED)
		die("mmap arena");
	arena = (char *)(((uintptr_t)arena + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	madvise(arena, arena_len, MADV_NOHUGEPAGE);

	ret = open_and_init(arena, arena_len, &mode);
	tap(ret == 0, "open /dev/hmm_mirror_edu and mirror 4 MiB (%d)", ret);
	if (ret) {
		return tap_done();
	}
	tap(mode == EDU_MIRROR_DMA_IOVA,
	    "the mirror maps through IOVA ranges of the IOMMU (dma mode %u)", mode);
	ret = iommu_domain_type(type, sizeof(type));
	tap(!ret && !strncmp(type, "DMA", 3),
	    "the edu device's IOMMU group has a DMA domain (%s)", type);

	t_roundtrip();
	t_unaligned();
	t_remap_anon();
	t_remap_memfd();
	t_dontneed();
	t_inval_waits();
	t_iova();
	t_counts();
	return tap_done();
}

/* ---- benchmark --------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct series {
	uint64_t *ns, *maps, *syncs, *descs;
};

static void series_alloc(struct series *s, int n)
{
	s->ns = calloc(n, 8);
	s->maps = calloc(n, 8);
	s->syncs = calloc(n, 8);
	s->descs = calloc(n, 8);
}

static void series_put(struct series *s, int i, struct edu_mirror_counts *c)
{
	s->ns[i] = c->ns;
	s->maps[i] = c->iommu_maps + c->iommu_unmaps;
	s->syncs[i] = c->iotlb_syncs;
	s->descs[i] = c->inv_descs;
}

/* "N" when every run agrees, "min-max" otherwise */
static const char *span(uint64_t *v, int n, char *buf)
{
	uint64_t lo = v[0], hi = v[0];
	int i;

	for (i = 1; i < n; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	if (lo == hi)
		sprintf(buf, "%llu", (unsigned long long)lo);
	else
		sprintf(buf, "%llu-%llu", (unsigned long long)lo,
			(unsigned long long)hi);
	return buf;
}

static void row(const char *path, const char *phase, struct series *s, int n,
		uint64_t med)
{
	char b1[48], b2[48], b3[48];

	printf("%-24s %-6s %14s %14s %12s %12.1f\n", path, phase,
	       span(s->maps, n, b1), span(s->syncs, n, b2),
	       span(s->descs, n, b3), med / 1e3);
}

static int cmd_bench(int runs, int npages)
{
	size_t len = (size_t)npages * PAGE;
	struct series bm, bu, pm, pu;
	uint64_t bm_med, bu_med, pm_med, pu_med, *tmp;
	struct edu_mirror_stats s0, s1;
	unsigned int mode;
	struct utsname un;
	char *raw, *buf;
	int i, ret;

	raw = mmap(NULL, len + (2UL << 20), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap");
	buf = (char *)(((uintptr_t)raw + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	madvise(buf, len, MADV_NOHUGEPAGE);
	fill(buf, len, 1);	/* present before both paths map them */

	ret = open_and_init(buf, len, &mode);
	if (ret) {
		errno = -ret;
		die("open/init /dev/hmm_mirror_edu");
	}
	series_alloc(&bm, runs);
	series_alloc(&bu, runs);
	series_alloc(&pm, runs);
	series_alloc(&pu, runs);
	tmp = calloc(runs, 8);

	s0 = stats();
	for (i = 0; i < runs; i++) {
		struct edu_mirror_cmd f, u, b;
		int k;

		/* interleaved, alternating which path goes first */
		for (k = 0; k < 2; k++) {
			if ((i + k) % 2 == 0) {
				if (xfer(EDU_MIRROR_IOC_FAULT, buf, len, 0, 0, &f) ||
				    xfer(EDU_MIRROR_IOC_UNMAP, buf, len, 0, 0, &u))
					die("batched fault/unmap");
				if (f.pages != (uint64_t)npages || u.pages != (uint64_t)npages) {
					errno = EIO;
					die("batched path mapped a wrong page count");
				}
				series_put(&bm, i, &f.map);
				series_put(&bu, i, &u.unmap);
			} else {
				if (xfer(EDU_MIRROR_IOC_BASELINE, buf, len, 0, 0, &b))
					die("per-page baseline");
				series_put(&pm, i, &b.map);
				series_put(&pu, i, &b.unmap);
			}
		}
	}
	s1 = stats();

	memcpy(tmp, bm.ns, runs * 8); bm_med = median(tmp, runs);
	memcpy(tmp, bu.ns, runs * 8); bu_med = median(tmp, runs);
	memcpy(tmp, pm.ns, runs * 8); pm_med = median(tmp, runs);
	memcpy(tmp, pu.ns, runs * 8); pu_med = median(tmp, runs);

	uname(&un);
	printf("edu-bench: %d pages (%zu KiB) of anonymous memory, already present, %d interleaved runs\n",
	       npages, len / 1024, runs);
	printf("kernel %s; edu device behind VT-d (QEMU intel-iommu, caching mode); mirror dma mode %s\n",
	       un.release, mode == EDU_MIRROR_DMA_IOVA ? "IOVA" : "NOT IOVA");
	printf("counters: map calls = iommu:map + iommu:unmap tracepoints, IOTLB syncs = intel_iommu:cache_tag_flush_range{,_np}/flush_all,\n");
	printf("          inv descs = intel_iommu:qi_submit (descriptors queued to VT-d); events of the measuring task only\n\n");
	printf("%-24s %-6s %14s %14s %12s %12s\n", "path", "phase", "map calls", "IOTLB syncs",
	       "inv descs", "median us");
	row("mirror batched fault", "map", &bm, runs, bm_med);
	row("per-page dma_map_page", "map", &pm, runs, pm_med);
	row("mirror batched unmap", "unmap", &bu, runs, bu_med);
	row("per-page dma_unmap_page", "unmap", &pu, runs, pu_med);
	printf("\nmirror's own counters over the run: %llu faults, %llu IOTLB syncs (%.2f per fault), %llu DMA map runs, %llu flushes\n",
	       (unsigned long long)(s1.faults - s0.faults),
	       (unsigned long long)(s1.dma_syncs - s0.dma_syncs),
	       (double)(s1.dma_syncs - s0.dma_syncs) / (s1.faults - s0.faults),
	       (unsigned long long)(s1.dma_maps - s0.dma_maps),
	       (unsigned long long)(s1.dma_flushes - s0.dma_flushes));
	printf("map time ratio (per-page / batched, medians): %.2f   target >= 5: %s\n",
	       (double)pm_med / bm_med, (double)pm_med / bm_med >= 5 ? "met" : "NOT met");
	printf("unmap time ratio (per-page / batched, medians): %.2f\n",
	       (double)pu_med / bu_med);
	printf("map + unmap time ratio (sums of the medians): %.2f\n",
	       (double)(pm_med + pu_med) / (bm_med + bu_med));
	{
		char b1[48];

		printf("IOTLB syncs per batched fault: %s   target 1: %s\n",
		       span(bm.syncs, runs, b1),
		       (memcpy(tmp, bm.syncs, runs * 8), median(tmp, runs) == 1 &&
			tmp[0] == 1 && tmp[runs - 1] == 1) ? "met" : "NOT met");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "test"))
		return cmd_test();
	if (argc >= 2 && !strcmp(argv[1], "bench")) {
		int runs = argc > 2 ? atoi(argv[2]) : 9;
		int pages = argc > 3 ? atoi(argv[3]) : 512;

		if (runs < 1 || pages < 1 || pages > 16384) {
			fprintf(stderr, "edu_mirror bench [RUNS] [PAGES<=16384]\n");
			return 2;
		}
		return cmd_bench(runs, pages);
	}
	fprintf(stderr, "usage: edu_mirror test | bench [RUNS] [PAGES]\n");
	return 2;
}
