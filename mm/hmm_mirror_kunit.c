// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the HMM mirror (mm/hmm_mirror.c).
 *
 * The tests run the mirror against the test thread's own user address space,
 * created by kunit_vm_mmap(): faults go through hmm_range_fault() and
 * invalidations come from real munmap() and mmap(MAP_FIXED) calls.
 */
#include <kunit/device.h>
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/hmm_mirror.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/prandom.h>
#include <linux/sizes.h>
#include <linux/uaccess.h>

/* A mirror and what its invalidate callback saw */
struct test_mirror {
	struct hmm_mirror mirror;
	bool live;			/* initialised, not destroyed */
	unsigned int nr_invalidate;	/* ->invalidate() calls */
	unsigned long inv_start;	/* range of the last call */
	unsigned long inv_end;
	unsigned long inv_valid;	/* valid entries seen by the last call */
	bool inv_locked;		/* the mirror was locked in every call */
	struct kunit *test;
	/* for the retry test */
	unsigned long hook_addr;
	unsigned int hook_calls;
	int hook_ret;
};

static struct test_mirror *to_tm(struct hmm_mirror *mirror)
{
	return container_of(mirror, struct test_mirror, mirror);
}

static int count_entry(struct hmm_mirror *mirror, unsigned long addr,
		       u64 entry, dma_addr_t dma, void *priv)
{
	(*(unsigned long *)priv)++;
	return 0;
}

static void test_invalidate(struct hmm_mirror *mirror, unsigned long start,
			    unsigned long end)
{
	struct test_mirror *tm = to_tm(mirror);
	unsigned long valid = 0;

	if (tm->nr_invalidate == 0)
		tm->inv_locked = true;
	tm->inv_locked &= mutex_is_locked(&mirror->lock);
	tm->nr_invalidate++;
	tm->inv_start = start;
	tm->inv_end = end;
	hmm_mirror_walk(mirror, start, end, count_entry, &valid);
	tm->inv_valid = valid;
}

static const struct hmm_mirror_ops test_ops = {
	.invalidate = test_invalidate,
};

static void test_mirror_destroy(void *data)
{
	struct test_mirror *tm = data;

	if (tm->live)
		hmm_mirror_destroy(&tm->mirror);
	tm->live = false;
}

/*
 * Initialise a mirror of [start, start + length) of the test's mm, destroyed
 * at the end of the test (after the test thread and its mm are gone, unless
 * the test destroys it itself).  Returns the errno of hmm_mirror_init().
 */
static int test_mirror_init(struct kunit *test, struct test_mirror *tm,
			    unsigned long start, unsigned long length,
			    unsigned int page_shift, struct device *dev)
{
	int ret;

	ret = hmm_mirror_init(&tm->mirror, current->mm, start, length,
			      page_shift, dev, &test_ops);
	if (ret)
		return ret;
	tm->live = true;
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test,
							   test_mirror_destroy,
							   tm));
	return 0;
}

static int test_mirror_init_whole(struct kunit *test, struct test_mirror *tm)
{
	int ret;

	ret = hmm_mirror_init_whole(&tm->mirror, current->mm, NULL, &test_ops);
	if (ret)
		return ret;
	tm->live = true;
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test,
							   test_mirror_destroy,
							   tm));
	return 0;
}

static struct test_mirror *test_mirror_alloc(struct kunit *test)
{
	struct test_mirror *tm = kunit_kzalloc(test, sizeof(*tm), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, tm);
	return tm;
}

/* Map anonymous private memory in the test's mm (creating the mm) */
static unsigned long test_mmap(struct kunit *test, unsigned long len,
			       unsigned long prot)
{
	unsigned long addr;

	addr = kunit_vm_mmap(test, NULL, 0, len, prot,
			     MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_NE_MSG(test, addr, 0, "kunit_vm_mmap failed");
	KUNIT_ASSERT_FALSE(test, IS_ERR_VALUE(addr));
	return addr;
}

/* Let the CPU write @val at @addr (faulting the page in) */
static void cpu_write(struct kunit *test, unsigned long addr, u64 val)
{
	KUNIT_ASSERT_EQ(test, 0, put_user(val, (u64 __user *)addr));
}

static u64 page_read(struct page *page, unsigned long offset)
{
	u64 *p = kmap_local_page(page);
	u64 val = p[offset / sizeof(u64)];

	kunmap_local(p);
	return val;
}

/*
 * Fault [addr, addr + len), check that it succeeded and unlock.  The tests
 * must not touch user memory with the mirror locked: the lock nests inside
 * the mmap lock.
 */
static void fault_ok(struct kunit *test, struct test_mirror *tm,
		     unsigned long addr, unsigned long len, unsigned int flags)
{
	int ret = hmm_mirror_fault(&tm->mirror, addr, len, flags);

	KUNIT_ASSERT_EQ_MSG(test, ret, 0, "fault %lx+%lx flags %x", addr, len,
			    flags);
	KUNIT_EXPECT_TRUE(test, mutex_is_locked(&tm->mirror.lock));
	hmm_mirror_unlock(&tm->mirror);
}

static u64 entry_of(struct test_mirror *tm, unsigned long addr)
{
	u64 entry;

	hmm_mirror_lock(&tm->mirror);
	entry = hmm_mirror_entry(&tm->mirror, addr);
	hmm_mirror_unlock(&tm->mirror);
	return entry;
}

/*
 * Check that the entry of @addr maps the page the CPU sees at @addr: write
 * a value through the CPU mapping and read it back through the entry.
 */
static void expect_cpu_page(struct kunit *test, struct test_mirror *tm,
			    unsigned long addr, u64 val)
{
	u64 entry = entry_of(tm, addr);
	unsigned long offset = addr & (hmm_mirror_page_size(&tm->mirror) - 1);

	KUNIT_ASSERT_TRUE(test, hmm_mirror_entry_valid(entry));
	cpu_write(test, addr, val);
	/* writing did not change the mapping: still the same entry */
	KUNIT_ASSERT_EQ(test, entry, entry_of(tm, addr));
	KUNIT_EXPECT_EQ(test, page_read(nth_page(hmm_mirror_entry_page(entry),
						 offset >> PAGE_SHIFT),
					offset & ~PAGE_MASK),
			val);
}

static unsigned long stat(atomic64_t *counter)
{
	return atomic64_read(counter);
}

/* ------------------------------------------------------------------------ */

static void hmm_mirror_test_entry_packing(struct kunit *test)
{
	static const phys_addr_t addrs[] = {
		0, PAGE_SIZE, SZ_2M, SZ_1G + 5 * PAGE_SIZE,
		(phys_addr_t)1 << 40, ((phys_addr_t)1 << 51) - PAGE_SIZE,
	};
	static const u64 flag_sets[] = {
		0, HMM_MIRROR_ENTRY_VALID,
		HMM_MIRROR_ENTRY_VALID | HMM_MIRROR_ENTRY_WRITE,
		HMM_MIRROR_ENTRY_VALID | HMM_MIRROR_ENTRY_WRITE |
		HMM_MIRROR_ENTRY_DIRTY,
		HMM_MIRROR_ENTRY_WRITE,
	};
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(addrs); i++) {
		for (j = 0; j < ARRAY_SIZE(flag_sets); j++) {
			u64 e = hmm_mirror_entry_make(addrs[i], flag_sets[j]);
			bool valid = flag_sets[j] & HMM_MIRROR_ENTRY_VALID;

			KUNIT_EXPECT_EQ(test, hmm_mirror_entry_phys(e),
					addrs[i]);
			KUNIT_EXPECT_EQ(test, e & HMM_MIRROR_ENTRY_FLAGS,
					flag_sets[j]);
			KUNIT_EXPECT_EQ(test, hmm_mirror_entry_valid(e), valid);
			KUNIT_EXPECT_EQ(test, hmm_mirror_entry_writable(e),
					valid && (flag_sets[j] &
						  HMM_MIRROR_ENTRY_WRITE));
		}
	}

	/* Flags never leak into the address, nor address bits into flags */
	KUNIT_EXPECT_EQ(test, hmm_mirror_entry_make(PAGE_SIZE | 0xfff, 0),
			(u64)PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, hmm_mirror_entry_make(0, ~0ULL),
			HMM_MIRROR_ENTRY_FLAGS);
	KUNIT_EXPECT_EQ(test, HMM_MIRROR_ENTRY_FLAGS &
			HMM_MIRROR_ENTRY_ADDR_MASK, 0ULL);

	/* An entry maps back to its struct page */
	{
		struct page *page = alloc_page(GFP_KERNEL);
		u64 e;

		KUNIT_ASSERT_NOT_NULL(test, page);
		e = hmm_mirror_entry_make(page_to_phys(page),
					  HMM_MIRROR_ENTRY_VALID);
		KUNIT_EXPECT_PTR_EQ(test, hmm_mirror_entry_page(e), page);
		KUNIT_EXPECT_NULL(test, hmm_mirror_entry_page(e & ~1ULL));
		__free_page(page);
	}
}

static void hmm_mirror_test_bad_input(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long addr, errors;
	struct mm_struct *mm;

	addr = test_mmap(test, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	mm = current->mm;

	/* init */
	KUNIT_EXPECT_EQ(test, -EINVAL, hmm_mirror_init(m, mm, addr, PAGE_SIZE,
						       PAGE_SHIFT - 1, NULL,
						       &test_ops));
	KUNIT_EXPECT_EQ(test, -EINVAL, hmm_mirror_init(m, mm, addr + 1,
						       PAGE_SIZE, PAGE_SHIFT,
						       NULL, &test_ops));
	KUNIT_EXPECT_EQ(test, -EINVAL, hmm_mirror_init(m, mm, addr, 0,
						       PAGE_SHIFT, NULL,
						       &test_ops));
	KUNIT_EXPECT_EQ(test, -EINVAL, hmm_mirror_init(m, mm, addr, PAGE_SIZE,
						       PAGE_SHIFT, NULL, NULL));
	KUNIT_EXPECT_EQ(test, -EINVAL,
			hmm_mirror_init(m, mm, ALIGN(addr, SZ_2M) + PAGE_SIZE,
					SZ_2M, 21, NULL, &test_ops));
	KUNIT_EXPECT_EQ(test, -EINVAL,
			hmm_mirror_init(m, mm, 0, SZ_1G, PUD_SHIFT + 1, NULL,
					&test_ops));
	KUNIT_EXPECT_EQ(test, -EINVAL,
			hmm_mirror_init(m, mm, PAGE_MASK, 2 * PAGE_SIZE,
					PAGE_SHIFT, NULL, &test_ops));
	KUNIT_EXPECT_EQ(test, -EINVAL,
			hmm_mirror_init(m, mm, mm->task_size, PAGE_SIZE,
					PAGE_SHIFT, NULL, &test_ops));
	KUNIT_EXPECT_EQ(test, -EINVAL, hmm_mirror_init_whole(m, NULL, NULL,
							     &test_ops));

	/* a mirror of the 4 mapped pages and 4 more that nothing maps */
	vm_munmap(addr + 2 * PAGE_SIZE, PAGE_SIZE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  4 * PAGE_SIZE, PAGE_SHIFT,
						  NULL));

	KUNIT_EXPECT_EQ(test, -EINVAL, hmm_mirror_fault(m, addr, 0, 0));
	KUNIT_EXPECT_EQ(test, -EINVAL, hmm_mirror_fault(m, addr, PAGE_SIZE,
							BIT(7)));
	KUNIT_EXPECT_EQ(test, -EINVAL, hmm_mirror_fault(m, ULONG_MAX - 10, 100,
							0));
	KUNIT_EXPECT_EQ(test, -EFAULT, hmm_mirror_fault(m, addr - PAGE_SIZE,
							PAGE_SIZE, 0));
	KUNIT_EXPECT_EQ(test, -EFAULT, hmm_mirror_fault(m, addr,
							5 * PAGE_SIZE, 0));
	KUNIT_EXPECT_EQ(test, -EFAULT, hmm_mirror_fault(m, addr + 4 * PAGE_SIZE,
							1, 0));
	/* the hole in the middle */
	KUNIT_EXPECT_EQ(test, -EFAULT, hmm_mirror_fault(m, addr + 2 * PAGE_SIZE,
							PAGE_SIZE, 0));
	KUNIT_EXPECT_EQ(test, -EFAULT, hmm_mirror_fault(m, addr, 4 * PAGE_SIZE,
							HMM_MIRROR_FAULT_WRITE));
	errors = stat(&m->stats.fault_errors);
	KUNIT_EXPECT_EQ(test, errors, 8);
	KUNIT_EXPECT_FALSE(test, mutex_is_locked(&m->lock));
	KUNIT_EXPECT_EQ(test, stat(&m->stats.faults), 0);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);

	/* write fault on read-only memory */
	vm_munmap(addr + 3 * PAGE_SIZE, PAGE_SIZE);
	KUNIT_ASSERT_EQ(test, addr + 3 * PAGE_SIZE,
			vm_mmap(NULL, addr + 3 * PAGE_SIZE, PAGE_SIZE,
				PROT_READ, MAP_ANONYMOUS | MAP_PRIVATE |
				MAP_FIXED, 0));
	KUNIT_EXPECT_EQ(test, -EPERM, hmm_mirror_fault(m, addr + 3 * PAGE_SIZE,
						       PAGE_SIZE,
						       HMM_MIRROR_FAULT_WRITE));
	KUNIT_EXPECT_FALSE(test, mutex_is_locked(&m->lock));
	/* ...while a read fault is fine */
	fault_ok(test, tm, addr + 3 * PAGE_SIZE, 1, 0);
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_writable(entry_of(tm, addr +
								    3 * PAGE_SIZE)));

	/* accessors outside the mirror or on invalid entries */
	hmm_mirror_lock(m);
	KUNIT_EXPECT_EQ(test, hmm_mirror_entry(m, addr - 1), 0ULL);
	KUNIT_EXPECT_EQ(test, hmm_mirror_entry(m, addr + 4 * PAGE_SIZE), 0ULL);
	KUNIT_EXPECT_EQ(test, hmm_mirror_entry(m, addr), 0ULL);
	KUNIT_EXPECT_EQ(test, hmm_mirror_entry_dma(m, addr, 0),
			DMA_MAPPING_ERROR);
	hmm_mirror_unlock(m);
}

static void hmm_mirror_test_fault_invalidate(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long addr, mstart, i;

	addr = test_mmap(test, 32 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	mstart = addr + 4 * PAGE_SIZE;
	/* mirror pages 4..19 of the mapping */
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, mstart,
						  16 * PAGE_SIZE, PAGE_SHIFT,
						  NULL));
	KUNIT_EXPECT_EQ(test, m->dma_mode, HMM_MIRROR_DMA_NONE);

	/* fault pages 4..11, an unaligned range */
	fault_ok(test, tm, mstart + 100, 8 * PAGE_SIZE - 200,
		 HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 8);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.pages_faulted), 8);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.faults), 1);
	for (i = 0; i < 16; i++) {
		u64 e = entry_of(tm, mstart + i * PAGE_SIZE);

		KUNIT_EXPECT_EQ(test, hmm_mirror_entry_valid(e), i < 8);
		KUNIT_EXPECT_EQ(test, hmm_mirror_entry_writable(e), i < 8);
		if (i < 8)
			expect_cpu_page(test, tm, mstart + i * PAGE_SIZE + 8,
					0x1234000 + i);
	}

	/* the DMA address of a mirror without device is the physical one */
	hmm_mirror_lock(m);
	{
		u64 e = hmm_mirror_entry(m, mstart + PAGE_SIZE);

		KUNIT_EXPECT_EQ(test, hmm_mirror_entry_dma(m, mstart +
							   PAGE_SIZE + 24, e),
				(dma_addr_t)hmm_mirror_entry_phys(e) + 24);
	}
	hmm_mirror_unlock(m);

	/* no ->invalidate() when nothing mirrored is hit */
	vm_munmap(addr + 24 * PAGE_SIZE, 8 * PAGE_SIZE);
	vm_munmap(mstart + 14 * PAGE_SIZE, 2 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 0);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.invalidations), 0);

	/* unmap pages 8..23: clipped to the mirror, hits pages 8..11 */
	vm_munmap(mstart + 4 * PAGE_SIZE, 16 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 1);
	KUNIT_EXPECT_EQ(test, tm->inv_start, mstart + 4 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, tm->inv_end, mstart + 16 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, tm->inv_valid, 4);
	KUNIT_EXPECT_TRUE(test, tm->inv_locked);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.invalidations), 1);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.pages_invalidated), 4);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 4);
	for (i = 0; i < 16; i++) {
		u64 e = entry_of(tm, mstart + i * PAGE_SIZE);

		KUNIT_EXPECT_EQ(test, hmm_mirror_entry_valid(e), i < 4);
	}

	/* unmapping the rest frees the leaf */
	vm_munmap(addr, 8 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 2);
	KUNIT_EXPECT_EQ(test, tm->inv_start, mstart);
	KUNIT_EXPECT_EQ(test, tm->inv_end, mstart + 4 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	KUNIT_EXPECT_EQ(test, hmm_mirror_metadata_bytes(m), sizeof(*m));
}

static void hmm_mirror_test_write_upgrade(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long addr;
	u64 e1, e2;

	addr = test_mmap(test, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  2 * PAGE_SIZE, PAGE_SHIFT,
						  NULL));
	cpu_write(test, addr, 42);	/* a writable, present page */

	fault_ok(test, tm, addr, PAGE_SIZE, 0);
	e1 = entry_of(tm, addr);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_valid(e1));
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_writable(e1));
	KUNIT_EXPECT_EQ(test, page_read(hmm_mirror_entry_page(e1), 0), 42);

	fault_ok(test, tm, addr, PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	e2 = entry_of(tm, addr);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_writable(e2));
	KUNIT_EXPECT_EQ(test, hmm_mirror_entry_phys(e1),
			hmm_mirror_entry_phys(e2));
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 0);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.pages_faulted), 1);

	/* a read fault never downgrades */
	fault_ok(test, tm, addr, PAGE_SIZE, 0);
	KUNIT_EXPECT_EQ(test, entry_of(tm, addr), e2);

	/*
	 * A read fault on untouched memory mirrors the shared zero page
	 * read-only; the write fault breaks COW, which invalidates the entry,
	 * and mirrors the new page.
	 */
	fault_ok(test, tm, addr + PAGE_SIZE, PAGE_SIZE, 0);
	e1 = entry_of(tm, addr + PAGE_SIZE);
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_writable(e1));
	fault_ok(test, tm, addr + PAGE_SIZE, PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	e2 = entry_of(tm, addr + PAGE_SIZE);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_writable(e2));
	KUNIT_EXPECT_NE(test, hmm_mirror_entry_phys(e1),
			hmm_mirror_entry_phys(e2));
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 1);
	expect_cpu_page(test, tm, addr + PAGE_SIZE, 7);
}

static void hmm_mirror_test_snapshot(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long addr;
	u64 e;

	addr = test_mmap(test, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  4 * PAGE_SIZE, PAGE_SHIFT,
						  NULL));

	/* nothing present: nothing mirrored, nothing allocated */
	fault_ok(test, tm, addr, 4 * PAGE_SIZE, HMM_MIRROR_FAULT_SNAPSHOT);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	fault_ok(test, tm, addr, 4 * PAGE_SIZE,
		 HMM_MIRROR_FAULT_SNAPSHOT | HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);

	/* the CPU touches page 1 */
	cpu_write(test, addr + PAGE_SIZE, 5);
	fault_ok(test, tm, addr, 4 * PAGE_SIZE, HMM_MIRROR_FAULT_SNAPSHOT);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 1);
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_valid(entry_of(tm, addr)));
	e = entry_of(tm, addr + PAGE_SIZE);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_valid(e));
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_writable(e));
	KUNIT_EXPECT_EQ(test, page_read(hmm_mirror_entry_page(e), 0), 5);

	/* with WRITE, a snapshot takes the write permission the CPU has */
	fault_ok(test, tm, addr, 4 * PAGE_SIZE,
		 HMM_MIRROR_FAULT_SNAPSHOT | HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_writable(entry_of(tm, addr +
								   PAGE_SIZE)));
	KUNIT_EXPECT_EQ(test, m->nr_valid, 1);
	/* snapshots never faulted anything in */
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 0);
}

/* Number of distinct 2 MiB blocks (leaves of a whole-mm mirror) */
static unsigned long count_blocks(unsigned long addr,
				  const unsigned long *offsets, unsigned int n)
{
	unsigned long blocks = 0, prev = ULONG_MAX;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if ((addr + offsets[i]) / SZ_2M != prev)
			blocks++;
		prev = (addr + offsets[i]) / SZ_2M;
	}
	return blocks;
}

/*
 * Slots of the table that hold full leaves (512 entries), not extents nor
 * sparse leaves, which the table marks
 */
static unsigned long count_full_leaves(struct hmm_mirror *m)
{
	struct hmm_mirror_leaf *leaf;
	unsigned long index, n = 0;

	xa_for_each(&m->leaves, index, leaf)
		n += !xa_is_value(leaf) &&
		     !xa_get_mark(&m->leaves, index, XA_MARK_1);
	return n;
}

static void hmm_mirror_test_sparse(struct kunit *test)
{
	static const unsigned long offsets[] = {
		0, SZ_1M, SZ_2M + PAGE_SIZE, SZ_2M + 3 * PAGE_SIZE,
		10 * SZ_1M, 33 * SZ_1M, 33 * SZ_1M + SZ_512K, 63 * SZ_1M,
	};
	static const unsigned long rest[] = { 0, SZ_1M, SZ_2M + 3 * PAGE_SIZE,
					      10 * SZ_1M };
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long addr, leaves, i, a;
	size_t empty_bytes, bytes;

	addr = test_mmap(test, 64 * SZ_1M, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init_whole(test, tm));
	KUNIT_EXPECT_EQ(test, m->start, 0);
	KUNIT_EXPECT_EQ(test, m->end, current->mm->task_size);
	empty_bytes = hmm_mirror_metadata_bytes(m);
	KUNIT_EXPECT_EQ(test, empty_bytes, sizeof(*m));

	for (i = 0; i < ARRAY_SIZE(offsets); i++) {
		fault_ok(test, tm, addr + offsets[i], 1, HMM_MIRROR_FAULT_WRITE);
		KUNIT_EXPECT_EQ(test, m->nr_leaves,
				count_blocks(addr, offsets, i + 1));
		KUNIT_EXPECT_EQ(test, m->nr_valid, i + 1);
	}
	leaves = m->nr_leaves;
	bytes = hmm_mirror_metadata_bytes(m);
	/*
	 * Pages alone in their block and blocks of a few pages not next to
	 * each other all go to the groups of their blocks: no slot in the
	 * table of leaves.  A group of up to 8 entries takes 56 bytes (a
	 * 4-byte header, 6 bytes an entry), the 64 MiB lie in at most two
	 * groups, and the groups' xarray has at most one node per level.
	 */
	KUNIT_EXPECT_EQ(test, count_full_leaves(m), 0);
	KUNIT_EXPECT_TRUE(test, xa_empty(&m->leaves));
	KUNIT_EXPECT_FALSE(test, xa_empty(&m->groups));
	KUNIT_EXPECT_LE(test, bytes, empty_bytes + 2 * 56 +
			BITS_PER_LONG / XA_CHUNK_SHIFT * sizeof(struct xa_node));
	for (i = 0; i < ARRAY_SIZE(offsets); i++)
		KUNIT_EXPECT_TRUE(test,
				  hmm_mirror_entry_writable(entry_of(tm, addr +
								      offsets[i])));

	kunit_info(test, "whole-mm mirror, %lu pages in %lu leaves: %zu bytes\n",
		   m->nr_valid, leaves, bytes);

	/*
	 * unmapping [32 MiB, 64 MiB) drops the leaves of its 3 pages (groups
	 * shrink in place: no allocation in an invalidation)
	 */
	vm_munmap(addr + 32 * SZ_1M, 32 * SZ_1M);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 5);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, count_blocks(addr, offsets, 5));
	KUNIT_EXPECT_LE(test, hmm_mirror_metadata_bytes(m), bytes);
	for (i = 5; i < ARRAY_SIZE(offsets); i++)
		KUNIT_EXPECT_EQ(test, entry_of(tm, addr + offsets[i]), 0);

	/*
	 * Dropping one page of a leaf that has two keeps the leaf.  (Done by
	 * the driver: a munmap() splitting the VMA there would invalidate the
	 * whole 2 MiB around the split, see vma_adjust_trans_huge().)
	 */
	hmm_mirror_lock(m);
	hmm_mirror_unmap(m, addr + offsets[2], addr + offsets[2] + 1);
	hmm_mirror_unlock(m);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 4);
	KUNIT_EXPECT_EQ(test, m->nr_leaves,
			count_blocks(addr, rest, ARRAY_SIZE(rest)));
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_valid(entry_of(tm, addr +
								 offsets[2])));
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_valid(entry_of(tm, addr +
								offsets[3])));

	/*
	 * The page at offsets[4] is alone in its block: a second page there,
	 * not next to it (two pages next to each other may be one extent),
	 * joins it in its group, which has room for it: nothing allocated.
	 */
	a = addr + offsets[4];
	a = a / SZ_2M == (a + 2 * PAGE_SIZE) / SZ_2M ? a + 2 * PAGE_SIZE :
						      a - 2 * PAGE_SIZE;
	bytes = hmm_mirror_metadata_bytes(m);
	fault_ok(test, tm, a, 1, 0);
	KUNIT_EXPECT_EQ(test, hmm_mirror_metadata_bytes(m), bytes);
	KUNIT_EXPECT_EQ(test, m->nr_leaves,
			count_blocks(addr, rest, ARRAY_SIZE(rest)));
	KUNIT_EXPECT_EQ(test, m->nr_valid, 5);
	KUNIT_EXPECT_TRUE(test, xa_empty(&m->leaves));
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_valid(entry_of(tm, a)));
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_valid(entry_of(tm, addr +
								offsets[4])));

	vm_munmap(addr, 32 * SZ_1M);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	KUNIT_EXPECT_EQ(test, hmm_mirror_metadata_bytes(m), empty_bytes);
}

struct walk_state {
	unsigned long count;
	unsigned long last;
	unsigned long stop_after;
	bool ordered;
	bool dma_ok;
};

static int walk_fn(struct hmm_mirror *mirror, unsigned long addr, u64 entry,
		   dma_addr_t dma, void *priv)
{
	struct walk_state *ws = priv;

	if (ws->count && addr <= ws->last)
		ws->ordered = false;
	if (!hmm_mirror_entry_valid(entry) ||
	    dma != (dma_addr_t)hmm_mirror_entry_phys(entry) ||
	    hmm_mirror_entry(mirror, addr) != entry)
		ws->dma_ok = false;
	ws->last = addr;
	ws->count++;
	if (ws->stop_after && ws->count == ws->stop_after)
		return 99;
	return 0;
}

static void hmm_mirror_test_walk(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	struct walk_state ws = { .ordered = true, .dma_ok = true };
	unsigned long addr, i, expected = 0, last = 0;

	addr = test_mmap(test, 1200 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  1200 * PAGE_SIZE, PAGE_SHIFT,
						  NULL));
	/* every third page of [100, 1100): spans three leaves */
	for (i = 100; i < 1100; i += 3)
		fault_ok(test, tm, addr + i * PAGE_SIZE, PAGE_SIZE, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 3);
	for (i = 100; i < 1100; i += 3)
		if (i >= 200 && i < 1000) {
			expected++;
			last = i;
		}

	hmm_mirror_lock(m);
	KUNIT_EXPECT_EQ(test, 0, hmm_mirror_walk(m, addr + 200 * PAGE_SIZE,
						 addr + 1000 * PAGE_SIZE,
						 walk_fn, &ws));
	KUNIT_EXPECT_EQ(test, ws.count, expected);
	KUNIT_EXPECT_TRUE(test, ws.ordered);
	KUNIT_EXPECT_TRUE(test, ws.dma_ok);
	KUNIT_EXPECT_EQ(test, ws.last, addr + last * PAGE_SIZE);

	/* whole mirror, and clipping of a range larger than the mirror */
	memset(&ws, 0, sizeof(ws));
	ws.ordered = true;
	ws.dma_ok = true;
	KUNIT_EXPECT_EQ(test, 0, hmm_mirror_walk(m, 0, ULONG_MAX, walk_fn, &ws));
	KUNIT_EXPECT_EQ(test, ws.count, m->nr_valid);
	KUNIT_EXPECT_TRUE(test, ws.ordered);

	/* an unaligned range covers its partial pages */
	memset(&ws, 0, sizeof(ws));
	KUNIT_EXPECT_EQ(test, 0, hmm_mirror_walk(m, addr + 100 * PAGE_SIZE + 5,
						 addr + 103 * PAGE_SIZE + 1,
						 walk_fn, &ws));
	KUNIT_EXPECT_EQ(test, ws.count, 2);

	/* stopping early */
	memset(&ws, 0, sizeof(ws));
	ws.stop_after = 10;
	KUNIT_EXPECT_EQ(test, 99, hmm_mirror_walk(m, addr, addr + 1200 *
						  PAGE_SIZE, walk_fn, &ws));
	KUNIT_EXPECT_EQ(test, ws.count, 10);

	/* empty ranges */
	memset(&ws, 0, sizeof(ws));
	KUNIT_EXPECT_EQ(test, 0, hmm_mirror_walk(m, addr, addr + 100 *
						 PAGE_SIZE, walk_fn, &ws));
	KUNIT_EXPECT_EQ(test, 0, hmm_mirror_walk(m, addr + PAGE_SIZE, addr,
						 walk_fn, &ws));
	KUNIT_EXPECT_EQ(test, ws.count, 0);
	hmm_mirror_unlock(m);
}

/* Replace the page at tm->hook_addr behind the fault's back, once */
static void race_hook(struct hmm_mirror *mirror)
{
	struct test_mirror *tm = to_tm(mirror);
	unsigned long addr;

	if (tm->hook_calls++)
		return;
	addr = vm_mmap(NULL, tm->hook_addr, PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE | MAP_FIXED, 0);
	tm->hook_ret = addr == tm->hook_addr ? 0 : -EIO;
}

static void hmm_mirror_test_race_retry(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long addr;
	u64 e;

	addr = test_mmap(test, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  2 * PAGE_SIZE, PAGE_SHIFT,
						  NULL));
	cpu_write(test, addr, 0xaaaa);
	cpu_write(test, addr + PAGE_SIZE, 0xbbbb);
	/* page 1 is mirrored, so the invalidation reaches ->invalidate() */
	fault_ok(test, tm, addr + PAGE_SIZE, PAGE_SIZE, 0);

	tm->hook_addr = addr;
	kunit_activate_static_stub(test, hmm_mirror_fault_test_hook, race_hook);
	fault_ok(test, tm, addr, 2 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	kunit_deactivate_static_stub(test, hmm_mirror_fault_test_hook);

	KUNIT_EXPECT_EQ(test, tm->hook_ret, 0);
	KUNIT_EXPECT_EQ(test, tm->hook_calls, 2);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.retries), 1);
	/* the mmap(MAP_FIXED) invalidated page 0 only, mirrored nothing */
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 0);

	/* the retry mirrored the new page, not the old one */
	e = entry_of(tm, addr);
	KUNIT_ASSERT_TRUE(test, hmm_mirror_entry_writable(e));
	KUNIT_EXPECT_EQ(test, page_read(hmm_mirror_entry_page(e), 0), 0);
	expect_cpu_page(test, tm, addr, 0xcccc);
	expect_cpu_page(test, tm, addr + PAGE_SIZE, 0xdddd);

	/* again, now with page 0 mirrored when the hook replaces it */
	tm->hook_calls = 0;
	kunit_activate_static_stub(test, hmm_mirror_fault_test_hook, race_hook);
	fault_ok(test, tm, addr, 2 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	kunit_deactivate_static_stub(test, hmm_mirror_fault_test_hook);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.retries), 2);
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 1);
	KUNIT_EXPECT_EQ(test, tm->inv_start, addr);
	KUNIT_EXPECT_EQ(test, tm->inv_end, addr + PAGE_SIZE);
	e = entry_of(tm, addr);
	KUNIT_EXPECT_EQ(test, page_read(hmm_mirror_entry_page(e), 0), 0);
	expect_cpu_page(test, tm, addr, 0xeeee);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 2);
}

/* The folio an entry maps, with the mirror locked */
static struct folio *folio_at(struct hmm_mirror *m, unsigned long addr)
{
	return page_folio(hmm_mirror_entry_page(hmm_mirror_entry(m, addr)));
}

static void hmm_mirror_test_dirty(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	struct folio *folios[4];
	unsigned long addr, i;

	addr = test_mmap(test, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  4 * PAGE_SIZE, PAGE_SHIFT,
						  NULL));
	for (i = 0; i < 4; i++)
		cpu_write(test, addr + i * PAGE_SIZE, i);

	/*
	 * A driver that cannot tell what its device wrote marks the range of
	 * each write fault; marking a read-only entry does nothing.
	 */
	fault_ok(test, tm, addr, 2 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	fault_ok(test, tm, addr + 2 * PAGE_SIZE, 2 * PAGE_SIZE, 0);
	hmm_mirror_lock(m);
	hmm_mirror_set_dirty(m, addr, addr + 4 * PAGE_SIZE);
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry(m, addr + 2 * PAGE_SIZE) &
			   HMM_MIRROR_ENTRY_DIRTY);
	for (i = 0; i < 4; i++) {
		folios[i] = folio_at(m, addr + i * PAGE_SIZE);
		/* the CPU keeps the dirty bit in its PTE; start clean */
		folio_clear_dirty(folios[i]);
	}
	hmm_mirror_unmap(m, addr, addr + 4 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	for (i = 0; i < 4; i++)
		KUNIT_EXPECT_EQ(test, folio_test_dirty(folios[i]), i < 2);
	hmm_mirror_unlock(m);
	/* driver-side unmaps are not invalidations */
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 0);

	/*
	 * A driver that knows marks what was written: a writable entry that
	 * the device did not write is not dirtied.
	 */
	fault_ok(test, tm, addr, 4 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	hmm_mirror_lock(m);
	for (i = 0; i < 4; i++) {
		/* same pages: the CPU mapping did not change */
		KUNIT_EXPECT_PTR_EQ(test, folios[i],
				    folio_at(m, addr + i * PAGE_SIZE));
		/* keep them after munmap to look at their flags */
		folio_get(folios[i]);
		folio_clear_dirty(folios[i]);
	}
	hmm_mirror_set_dirty(m, addr + PAGE_SIZE, addr + PAGE_SIZE + 1);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry(m, addr + PAGE_SIZE) &
			  HMM_MIRROR_ENTRY_DIRTY);
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry(m, addr) &
			   HMM_MIRROR_ENTRY_DIRTY);
	hmm_mirror_unlock(m);
	/* through a real invalidation this time */
	vm_munmap(addr, 4 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 1);
	for (i = 0; i < 4; i++) {
		KUNIT_EXPECT_EQ(test, folio_test_dirty(folios[i]), i == 1);
		folio_put(folios[i]);
	}
}

/*
 * Map @len of 2 MiB hugetlb pages from the VM's hugepages= pool, shared, in
 * the test's mm; skip the test if there is no pool or no free page.
 */
static unsigned long test_mmap_huge(struct kunit *test, unsigned long len)
{
	struct file *file;
	unsigned long addr;

	file = filp_open("/dev/hugepages", O_TMPFILE | O_RDWR, 0600);
	if (IS_ERR(file))
		kunit_skip(test, "no hugetlbfs at /dev/hugepages (%ld)",
			   PTR_ERR(file));
	addr = kunit_vm_mmap(test, file, 0, len, PROT_READ | PROT_WRITE,
			     MAP_SHARED, 0);
	fput(file);
	/*
	 * A shared hugetlbfs mapping reserves its huge pages at mmap time
	 * (hugetlb_reserve_pages()), which fails with -ENOMEM when the pool
	 * has too few free unreserved pages: that alone is a lack of huge
	 * pages.  Once mapped, the pages are reserved and faults must succeed.
	 */
	if (addr == (unsigned long)-ENOMEM)
		kunit_skip(test, "no free huge page: the mmap reservation failed (-ENOMEM)");
	KUNIT_ASSERT_TRUE_MSG(test, addr && !IS_ERR_VALUE(addr),
			      "mmap of %lu bytes of huge pages: %ld", len,
			      (long)addr);
	KUNIT_ASSERT_TRUE(test, IS_ALIGNED(addr, SZ_2M));
	return addr;
}

static void hmm_mirror_test_huge(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long addr;
	struct page *page;
	u64 e;
	int ret;

	addr = test_mmap_huge(test, SZ_2M);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr, SZ_2M, 21,
						  NULL));
	ret = hmm_mirror_fault(m, addr + 5 * PAGE_SIZE, 100,
			       HMM_MIRROR_FAULT_WRITE);
	KUNIT_ASSERT_EQ(test, ret, 0);
	e = hmm_mirror_entry(m, addr + SZ_1M);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 1);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 1);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_writable(e));
	KUNIT_EXPECT_TRUE(test, IS_ALIGNED(hmm_mirror_entry_phys(e), SZ_2M));
	KUNIT_EXPECT_EQ(test, e, hmm_mirror_entry(m, addr));
	KUNIT_EXPECT_EQ(test, hmm_mirror_entry_dma(m, addr + 5 * PAGE_SIZE + 8,
						   e),
			(dma_addr_t)hmm_mirror_entry_phys(e) + 5 * PAGE_SIZE + 8);
	page = hmm_mirror_entry_page(e);
	KUNIT_EXPECT_EQ(test, folio_order(page_folio(page)), 21 - PAGE_SHIFT);
	KUNIT_EXPECT_PTR_EQ(test, &page_folio(page)->page, page);
	hmm_mirror_unlock(m);

	/* the CPU sees the same 2 MiB, at any offset */
	expect_cpu_page(test, tm, addr + 3 * PAGE_SIZE + 16, 0x4242);
	expect_cpu_page(test, tm, addr + SZ_2M - 8, 0x4343);

	vm_munmap(addr, SZ_2M);
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 1);
	KUNIT_EXPECT_EQ(test, tm->inv_start, addr);
	KUNIT_EXPECT_EQ(test, tm->inv_end, addr + SZ_2M);
	KUNIT_EXPECT_EQ(test, tm->inv_valid, 1);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
}

static void hmm_mirror_test_huge_mismatch(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	unsigned long addr, aligned;

	/* 2 MiB mirror pages over 4 KiB-mapped memory: refused */
	addr = test_mmap(test, 2 * SZ_2M, PROT_READ | PROT_WRITE);
	aligned = ALIGN(addr, SZ_2M);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, aligned, SZ_2M,
						  21, NULL));
	KUNIT_EXPECT_EQ(test, -EINVAL, hmm_mirror_fault(&tm->mirror, aligned,
							PAGE_SIZE, 0));
	KUNIT_EXPECT_FALSE(test, mutex_is_locked(&tm->mirror.lock));
	KUNIT_EXPECT_EQ(test, tm->mirror.nr_valid, 0);
}

static void hmm_mirror_test_dma_direct(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	struct device *dev, *dev24;
	unsigned long addr, i;

	dev = kunit_device_register(test, "hmm_mirror_dma64");
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(dev));
	dev->coherent_dma_mask = DMA_BIT_MASK(64);
	dev->dma_mask = &dev->coherent_dma_mask;
	dev24 = kunit_device_register(test, "hmm_mirror_dma24");
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(dev24));
	dev24->coherent_dma_mask = DMA_BIT_MASK(24);
	dev24->dma_mask = &dev24->coherent_dma_mask;

	addr = test_mmap(test, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	/* a device that would bounce is refused */
	KUNIT_EXPECT_EQ(test, -EOPNOTSUPP,
			test_mirror_init(test, tm, addr, 8 * PAGE_SIZE,
					 PAGE_SHIFT, dev24));

	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  8 * PAGE_SIZE, PAGE_SHIFT,
						  dev));
	KUNIT_EXPECT_EQ(test, m->dma_mode, HMM_MIRROR_DMA_DIRECT);
	fault_ok(test, tm, addr, 8 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_maps), 8);
	hmm_mirror_lock(m);
	for (i = 0; i < 8; i++) {
		unsigned long a = addr + i * PAGE_SIZE + 16;
		u64 e = hmm_mirror_entry(m, a);

		KUNIT_EXPECT_EQ(test, hmm_mirror_entry_dma(m, a, e),
				phys_to_dma(dev, hmm_mirror_entry_phys(e)) + 16);
	}
	hmm_mirror_unlock(m);
	vm_munmap(addr, 8 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	/* no IOMMU, nothing to sync or flush */
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_syncs), 0);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_flushes), 0);
}

/* A device the IOVA-based DMA API works for */
static int find_iova_dev(struct device *dev, const void *data)
{
	struct dma_iova_state state;

	if (!dma_iova_try_alloc(dev, &state, 0, PAGE_SIZE))
		return 0;
	dma_iova_free(dev, &state);
	return 1;
}

static void put_dev(void *dev)
{
	put_device(dev);
}

/*
 * Only the DMA addresses are checked here: what the IOMMU translates them
 * to is the device's business, checked by the edu test driver
 * (lib/test_hmm_mirror_edu.c, EDU_MIRROR_IOC_IOVA_CHECK and _MAPPED).
 */
struct iova_check {
	unsigned long count;
	unsigned long bad;
	dma_addr_t prev;
};

static int check_iova_entry(struct hmm_mirror *mirror, unsigned long addr,
			    u64 entry, dma_addr_t dma, void *priv)
{
	struct iova_check *ic = priv;

	if (dma == DMA_MAPPING_ERROR)
		ic->bad++;
	/* entries of one leaf are IOVA-contiguous */
	if (ic->count && dma != ic->prev + PAGE_SIZE)
		ic->bad++;
	ic->prev = dma;
	ic->count++;
	return 0;
}

static void hmm_mirror_test_dma_iommu(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	struct iova_check ic = {};
	struct device *dev;
	unsigned long addr;

	dev = bus_find_device(&pci_bus_type, NULL, NULL, find_iova_dev);
	if (!dev)
		kunit_skip(test, "no device translated by iommu-dma");
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, put_dev, dev));
	kunit_info(test, "using %s\n", dev_name(dev));

	addr = test_mmap(test, 16 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  16 * PAGE_SIZE, PAGE_SHIFT,
						  dev));
	KUNIT_EXPECT_EQ(test, m->dma_mode, HMM_MIRROR_DMA_IOVA);

	/* one fault: any number of map calls, one IOTLB sync */
	fault_ok(test, tm, addr, 16 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_syncs), 1);
	KUNIT_EXPECT_GE(test, stat(&m->stats.dma_maps), 1);
	KUNIT_EXPECT_LE(test, stat(&m->stats.dma_maps), 16);
	kunit_info(test, "16 pages: %lu map calls, %lu sync\n",
		   stat(&m->stats.dma_maps), stat(&m->stats.dma_syncs));

	hmm_mirror_lock(m);
	KUNIT_EXPECT_EQ(test, 0, hmm_mirror_walk(m, addr, addr + 16 * PAGE_SIZE,
						 check_iova_entry, &ic));
	KUNIT_EXPECT_EQ(test, ic.count, 16);
	KUNIT_EXPECT_EQ(test, ic.bad, 0);
	hmm_mirror_unlock(m);

	/* page 0 stays mapped by the CPU, so the leaf and its IOVA stay */
	expect_cpu_page(test, tm, addr + 3 * PAGE_SIZE, 0x77);
	vm_munmap(addr + PAGE_SIZE, 15 * PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_flushes), 1);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 1);

	/* a read fault on the unmapped part now fails, page 0 still works */
	KUNIT_EXPECT_EQ(test, -EFAULT, hmm_mirror_fault(m, addr, 2 * PAGE_SIZE,
							0));
	fault_ok(test, tm, addr, PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_syncs), 1);

	/* destroying unmaps the last page with one more flush */
	test_mirror_destroy(tm);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_flushes), 2);
}

/*
 * A leaf that empties keeps its IOVA range as a spare for later faults:
 * nothing stays mapped in it, its memory is still counted, and the next
 * fault that needs a leaf takes it instead of reserving a new range.
 */
static void hmm_mirror_test_dma_iommu_spare(struct kunit *test)
{
	unsigned long npages = HMM_MIRROR_LEAF_ENTRIES + 8, leaf1;
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	dma_addr_t dma[2], d;
	struct device *dev;
	unsigned long addr;
	size_t empty;
	u64 e;

	dev = bus_find_device(&pci_bus_type, NULL, NULL, find_iova_dev);
	if (!dev)
		kunit_skip(test, "no device translated by iommu-dma");
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, put_dev, dev));

	addr = test_mmap(test, npages * PAGE_SIZE, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  npages * PAGE_SIZE,
						  PAGE_SHIFT, dev));
	KUNIT_ASSERT_EQ(test, m->dma_mode, HMM_MIRROR_DMA_IOVA);
	empty = hmm_mirror_metadata_bytes(m);
	leaf1 = addr + HMM_MIRROR_LEAF_ENTRIES * PAGE_SIZE;

	/* 8 pages at the start of each of two leaves */
	fault_ok(test, tm, addr, 8 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	fault_ok(test, tm, leaf1, 8 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 2);
	KUNIT_EXPECT_EQ(test, m->nr_spare_leaves, 0);
	e = entry_of(tm, addr);
	hmm_mirror_lock(m);
	dma[0] = hmm_mirror_entry_dma(m, addr, e);
	hmm_mirror_unlock(m);
	e = entry_of(tm, leaf1);
	hmm_mirror_lock(m);
	dma[1] = hmm_mirror_entry_dma(m, leaf1, e);
	hmm_mirror_unlock(m);
	KUNIT_EXPECT_NE(test, dma[0], dma[1]);

	/* unmapping everything keeps both leaves as spares, nothing mapped */
	hmm_mirror_lock(m);
	hmm_mirror_unmap(m, addr, addr + npages * PAGE_SIZE);
	hmm_mirror_unlock(m);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	KUNIT_EXPECT_EQ(test, m->nr_spare_leaves, 2);
	KUNIT_EXPECT_GT(test, hmm_mirror_metadata_bytes(m), empty);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_flushes), 1);

	/* the next fault takes a spare: one of the two ranges, mapped right */
	fault_ok(test, tm, leaf1 + PAGE_SIZE, 2 * PAGE_SIZE,
		 HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 1);
	KUNIT_EXPECT_EQ(test, m->nr_spare_leaves, 1);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_syncs), 3);
	e = entry_of(tm, leaf1 + PAGE_SIZE);
	hmm_mirror_lock(m);
	d = hmm_mirror_entry_dma(m, leaf1 + PAGE_SIZE, e) - PAGE_SIZE;
	hmm_mirror_unlock(m);
	KUNIT_EXPECT_TRUE(test, d == dma[0] || d == dma[1]);

	/* a fault across two leaves syncs each leaf once (the spare, leaf1) */
	fault_ok(test, tm, leaf1 - 2 * PAGE_SIZE, 4 * PAGE_SIZE,
		 HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 2);
	KUNIT_EXPECT_EQ(test, m->nr_spare_leaves, 0);
	KUNIT_EXPECT_EQ(test, stat(&m->stats.dma_syncs), 5);
	e = entry_of(tm, leaf1 - PAGE_SIZE);
	hmm_mirror_lock(m);
	d = hmm_mirror_entry_dma(m, leaf1 - PAGE_SIZE, e);
	hmm_mirror_unlock(m);
	KUNIT_EXPECT_NE(test, d, DMA_MAPPING_ERROR);

	/* destroy frees the leaves in use (it WARNs otherwise) */
	test_mirror_destroy(tm);
	KUNIT_EXPECT_EQ(test, m->nr_spare_leaves, 0);
}

/*
 * Metadata per mirrored page.  The page table costs 4 bytes per entry (a
 * narrow leaf), plus per leaf (512 entries) its header and the xarray nodes
 * indexing it: at most 8 bytes per mirrored page when the pages are dense.
 */
static void report_bytes(struct kunit *test, const char *what,
			 size_t bytes, unsigned long pages)
{
	kunit_info(test, "%s: %lu pages, %zu bytes, %zu.%02zu bytes/page\n",
		   what, pages, bytes, bytes / pages,
		   (bytes % pages) * 100 / pages);
}

static void hmm_mirror_test_metadata_dense(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct test_mirror *whole = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long len = 32 * SZ_1M, pages = len >> PAGE_SHIFT;
	unsigned long addr;
	size_t bytes, empty;

	addr = test_mmap(test, len, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr, len,
						  PAGE_SHIFT, NULL));
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init_whole(test, whole));
	/*
	 * The structure itself is a constant per mirror, whose size depends
	 * on the configuration (lockdep, mutex debugging): not per page.
	 */
	empty = hmm_mirror_metadata_bytes(m);
	KUNIT_EXPECT_EQ(test, empty, sizeof(*m));

	fault_ok(test, tm, addr, len, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, m->nr_valid, pages);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, pages / HMM_MIRROR_LEAF_ENTRIES);
	bytes = hmm_mirror_metadata_bytes(m) - empty;
	report_bytes(test, "explicit 32 MiB mirror, dense", bytes, pages);
	/* a leaf whose pages happen to be physically contiguous is an extent */
	KUNIT_EXPECT_GE(test, bytes, count_full_leaves(m) *
			HMM_MIRROR_LEAF_ENTRIES * sizeof(u32));
	KUNIT_EXPECT_LE(test, bytes, pages * 8);

	/* unaligned: one more leaf, and a taller xarray */
	fault_ok(test, whole, addr, len, 0);
	bytes = hmm_mirror_metadata_bytes(&whole->mirror) - empty;
	report_bytes(test, "whole-mm mirror, same 32 MiB dense", bytes, pages);
	KUNIT_EXPECT_LE(test, bytes, pages * 8);
}

/* Fault the page at each @step from @start below @end; the number faulted */
static unsigned long fault_each(struct kunit *test, struct test_mirror *tm,
				unsigned long start, unsigned long end,
				unsigned long step)
{
	unsigned long a, n = 0;

	for (a = start; a + SZ_2M <= end; a += step, n++)
		fault_ok(test, tm, a, PAGE_SIZE, 0);
	return n;
}

/*
 * Reserve @len bytes of address space, populated only where faulted: no
 * commit charge, so a range larger than the machine's memory fits.
 */
static unsigned long test_mmap_sparse(struct kunit *test, unsigned long len)
{
	unsigned long addr;

	addr = kunit_vm_mmap(test, NULL, 0, len, PROT_READ | PROT_WRITE,
			     MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, 0);
	KUNIT_ASSERT_NE_MSG(test, addr, 0, "kunit_vm_mmap failed");
	KUNIT_ASSERT_FALSE(test, IS_ERR_VALUE(addr));
	return addr;
}

/*
 * Scattered pages, as an implicit mirror faulted 4 KiB at a time holds
 * them: one page in each 4 MiB, then in each 2 MiB of 16 GiB, and 16 pages
 * in each 2 MiB of 1 GiB.  Pages alone in their 2 MiB or a few to it go to
 * the groups of 64 leaves: 6 bytes an entry, the group's header and size
 * class, and the groups' xarray (one slot per 128 MiB) shared among them.
 * A group holds up to 680 entries; the blocks of 16 pages that do not fit
 * are sparse leaves (4 + 16 * 6 bytes, rounded up by kmalloc(), and a slot
 * of the table of leaves).  At most 8 bytes per page in each pattern, the
 * structure of the mirror aside.
 */
static void hmm_mirror_test_metadata_scattered(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct test_mirror *tm16 = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long len = 16UL * SZ_1G, addr, start, a, i, pages, blocks;
	size_t bytes;

	addr = test_mmap_sparse(test, len);
	start = ALIGN(addr, SZ_2M);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init_whole(test, tm));
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init_whole(test, tm16));

	pages = fault_each(test, tm, start, addr + len, 2 * SZ_2M);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, pages);
	KUNIT_EXPECT_TRUE(test, xa_empty(&m->leaves));
	bytes = hmm_mirror_metadata_bytes(m) - sizeof(*m);
	report_bytes(test, "whole-mm mirror, 1 page per 4 MiB of 16 GiB",
		     bytes, pages);
	KUNIT_EXPECT_LE(test, bytes, pages * 8);

	pages += fault_each(test, tm, start + SZ_2M, addr + len, 2 * SZ_2M);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, pages);
	KUNIT_EXPECT_EQ(test, m->nr_valid, pages);
	KUNIT_EXPECT_TRUE(test, xa_empty(&m->leaves));
	bytes = hmm_mirror_metadata_bytes(m) - sizeof(*m);
	report_bytes(test, "whole-mm mirror, 1 page per 2 MiB of 16 GiB",
		     bytes, pages);
	KUNIT_EXPECT_LE(test, bytes, pages * 8);

	/*
	 * 16 pages in each 2 MiB, every other page (pages next to each other
	 * may be physically contiguous, an extent), each block faulted page
	 * by page.
	 */
	for (a = start, blocks = 0; a + SZ_2M <= start + SZ_1G; a += SZ_2M) {
		for (i = 0; i < 16; i++)
			fault_ok(test, tm16, a + 2 * i * PAGE_SIZE, 1, 0);
		blocks++;
	}
	pages = blocks * 16;
	KUNIT_EXPECT_EQ(test, tm16->mirror.nr_valid, pages);
	KUNIT_EXPECT_EQ(test, tm16->mirror.nr_leaves, blocks);
	KUNIT_EXPECT_EQ(test, count_full_leaves(&tm16->mirror), 0);
	bytes = hmm_mirror_metadata_bytes(&tm16->mirror) - sizeof(*m);
	report_bytes(test, "whole-mm mirror, 16 pages per 2 MiB of 1 GiB",
		     bytes, pages);
	KUNIT_EXPECT_LE(test, bytes, pages * 8);

	/* every page reads back, in order */
	hmm_mirror_lock(m);
	for (a = start, i = 0; a + SZ_2M <= addr + len; a += SZ_2M, i++)
		if (!hmm_mirror_entry_valid(hmm_mirror_entry(m, a)) ||
		    hmm_mirror_entry_valid(hmm_mirror_entry(m, a + PAGE_SIZE)))
			break;
	hmm_mirror_unlock(m);
	KUNIT_EXPECT_EQ(test, i, m->nr_valid);

	vm_munmap(addr, len);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	KUNIT_EXPECT_TRUE(test, xa_empty(&m->groups));
	KUNIT_EXPECT_EQ(test, hmm_mirror_metadata_bytes(m), sizeof(*m));
	KUNIT_EXPECT_EQ(test, tm16->mirror.nr_valid, 0);
	KUNIT_EXPECT_EQ(test, hmm_mirror_metadata_bytes(&tm16->mirror),
			sizeof(*m));
}

/*
 * 1 % of the pages of 4 GiB written at random, 4 KiB at a time (an implicit
 * ODP MR the device writes here and there): 5 pages a 2 MiB on average, in
 * groups of 64 such blocks.  At most 8 bytes per page.  The sequence is
 * fixed (seeded), so the figure is the same from run to run.
 */
static void hmm_mirror_test_metadata_random(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long len = 4UL * SZ_1G, addr, i, pages = 0;
	struct rnd_state rnd;
	size_t bytes;

	addr = test_mmap_sparse(test, len);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init_whole(test, tm));
	prandom_seed_state(&rnd, 42);
	for (i = 0; i < len >> PAGE_SHIFT; i++) {
		if (prandom_u32_state(&rnd) % 100)
			continue;
		fault_ok(test, tm, addr + i * PAGE_SIZE, 8,
			 HMM_MIRROR_FAULT_WRITE);
		pages++;
	}
	KUNIT_EXPECT_EQ(test, m->nr_valid, pages);
	bytes = hmm_mirror_metadata_bytes(m) - sizeof(*m);
	report_bytes(test, "whole-mm mirror, 1 % of 4 GiB written at random",
		     bytes, pages);
	KUNIT_EXPECT_LE(test, bytes, pages * 8);

	vm_munmap(addr, len);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	KUNIT_EXPECT_EQ(test, hmm_mirror_metadata_bytes(m), sizeof(*m));
}

/*
 * Walk [@start, @end) of @tm's mirror: every valid entry once, in address
 * order, each with its own DMA address and entry
 */
static struct walk_state walk_all(struct kunit *test, struct test_mirror *tm,
				  unsigned long start, unsigned long end)
{
	struct walk_state ws = { .ordered = true, .dma_ok = true };
	struct hmm_mirror *m = &tm->mirror;

	hmm_mirror_lock(m);
	KUNIT_EXPECT_EQ(test, 0, hmm_mirror_walk(m, start, end, walk_fn, &ws));
	hmm_mirror_unlock(m);
	KUNIT_EXPECT_EQ(test, ws.count, m->nr_valid);
	KUNIT_EXPECT_TRUE(test, ws.ordered);
	KUNIT_EXPECT_TRUE(test, ws.dma_ok);
	return ws;
}

/* Number of slots in use in the table of leaves */
static unsigned long count_slots(struct hmm_mirror *m)
{
	struct hmm_mirror_leaf *leaf;
	unsigned long index, n = 0;

	xa_for_each(&m->leaves, index, leaf)
		n++;
	return n;
}

/* Fault every other page of the 2 MiB block at @block, page by page */
static void fault_every_other(struct kunit *test, struct test_mirror *tm,
			      unsigned long block)
{
	unsigned long a;

	for (a = block; a < block + SZ_2M; a += 2 * PAGE_SIZE)
		fault_ok(test, tm, a, 1, HMM_MIRROR_FAULT_WRITE);
}

/*
 * Grouped leaves and a leaf with its own slot among them, in one group of
 * 64 blocks of 2 MiB: walks visit every entry in address order, a fault
 * that adds to a grouped leaf takes its entries out and puts them back,
 * dirty marks and unmaps work in place, and the leaves they empty are
 * counted.  A group holds up to 680 entries: after three single pages and
 * blocks 4 and 5 of 256 (every other page, never one run), block 2 fills
 * it at 165; for its 166th page block 4, which has more, moves out to a
 * sparse leaf in its own slot, and block 2 takes its place.
 */
static void hmm_mirror_test_groups(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long addr, len = SZ_128M + 16 * SZ_2M, blk[7];
	struct walk_state ws;
	unsigned int i;
	u64 e;

	addr = test_mmap(test, len, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init_whole(test, tm));
	/* 7 blocks at the start of a group (128 MiB of a whole-mm mirror) */
	for (i = 0; i < 7; i++)
		blk[i] = ALIGN(addr, SZ_128M) + i * SZ_2M;

	fault_ok(test, tm, blk[0] + 5 * PAGE_SIZE, 1, HMM_MIRROR_FAULT_WRITE);
	fault_ok(test, tm, blk[1], 1, HMM_MIRROR_FAULT_WRITE);
	fault_ok(test, tm, blk[3] + SZ_1M, 1, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, count_slots(m), 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 3);

	fault_every_other(test, tm, blk[4]);
	fault_every_other(test, tm, blk[5]);
	KUNIT_EXPECT_EQ(test, count_slots(m), 0);
	fault_every_other(test, tm, blk[2]);
	fault_ok(test, tm, blk[6] + SZ_1M, 1, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 4 + 3 * 256);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 7);
	KUNIT_EXPECT_EQ(test, count_slots(m), 1);
	KUNIT_EXPECT_EQ(test, count_full_leaves(m), 0);
	KUNIT_EXPECT_TRUE(test, xa_get_mark(&m->leaves, blk[4] >> 21,
					    XA_MARK_1));

	ws = walk_all(test, tm, addr, addr + len);
	KUNIT_EXPECT_EQ(test, ws.last, blk[6] + SZ_1M);

	/* each entry maps the page the CPU sees */
	expect_cpu_page(test, tm, blk[0] + 5 * PAGE_SIZE + 8, 0x1111);
	expect_cpu_page(test, tm, blk[2] + 78 * PAGE_SIZE, 0x2222);
	expect_cpu_page(test, tm, blk[5] + SZ_2M - PAGE_SIZE - 8, 0x3333);
	expect_cpu_page(test, tm, blk[6] + SZ_1M, 0x4444);

	/* a read fault next to a grouped page: both in the group again */
	fault_ok(test, tm, blk[1] + 2 * PAGE_SIZE, 1, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 7);
	KUNIT_EXPECT_EQ(test, count_slots(m), 1);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_writable(entry_of(tm, blk[1])));
	e = entry_of(tm, blk[1] + 2 * PAGE_SIZE);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_valid(e));
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_writable(e));
	KUNIT_EXPECT_EQ(test, entry_of(tm, blk[1] + PAGE_SIZE), 0);

	/* dirty marks on grouped entries, on the writable ones only */
	hmm_mirror_lock(m);
	hmm_mirror_set_dirty(m, blk[1], blk[1] + 4 * PAGE_SIZE);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry(m, blk[1]) &
			  HMM_MIRROR_ENTRY_DIRTY);
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry(m, blk[1] + 2 * PAGE_SIZE) &
			   HMM_MIRROR_ENTRY_DIRTY);

	/*
	 * From the middle of block 1 to the middle of block 4: blocks 2 and
	 * 3 empty, half of block 4 (the sparse leaf, which shrinks in place)
	 * and one page of block 1 gone.
	 */
	hmm_mirror_unmap(m, blk[1] + PAGE_SIZE, blk[4] + SZ_1M);
	hmm_mirror_unlock(m);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 5);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 3 + 128 + 256);
	KUNIT_EXPECT_EQ(test, count_slots(m), 1);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_valid(entry_of(tm, blk[1])));
	KUNIT_EXPECT_EQ(test, entry_of(tm, blk[1] + 2 * PAGE_SIZE), 0);
	KUNIT_EXPECT_EQ(test, entry_of(tm, blk[3] + SZ_1M), 0);
	KUNIT_EXPECT_EQ(test, entry_of(tm, blk[4] + SZ_1M - 2 * PAGE_SIZE), 0);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_valid(entry_of(tm, blk[4] +
								SZ_1M)));

	/* a real invalidation of blocks 0 and 1 sees their two pages */
	vm_munmap(blk[0], 2 * SZ_2M);
	KUNIT_EXPECT_EQ(test, tm->inv_valid, 2);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 3);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 1 + 128 + 256);

	vm_munmap(addr, len);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	KUNIT_EXPECT_TRUE(test, xa_empty(&m->groups));
	KUNIT_EXPECT_EQ(test, count_slots(m), 0);
}

/*
 * A full group makes room for a leaf with few entries by moving its leaf
 * with the most out to a sparse leaf of its own: blocks of 256, 256 and
 * 168 pages (every other page) fill a group's 680 entries; then 61 blocks
 * of two pages each come, and the first block leaves the group for them.
 */
static void hmm_mirror_test_group_full(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long addr, base, len = 2 * SZ_128M, a, i;

	addr = test_mmap(test, len, PROT_READ | PROT_WRITE);
	base = ALIGN(addr, SZ_128M);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init_whole(test, tm));

	fault_every_other(test, tm, base);
	fault_every_other(test, tm, base + SZ_2M);
	for (a = base + 2 * SZ_2M; a < base + 2 * SZ_2M + 336 * PAGE_SIZE;
	     a += 2 * PAGE_SIZE)
		fault_ok(test, tm, a, 1, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 680);
	KUNIT_EXPECT_EQ(test, count_slots(m), 0);

	for (i = 3; i < 64; i++) {
		fault_ok(test, tm, base + i * SZ_2M, 1, HMM_MIRROR_FAULT_WRITE);
		fault_ok(test, tm, base + i * SZ_2M + 2 * PAGE_SIZE, 1,
			 HMM_MIRROR_FAULT_WRITE);
	}
	KUNIT_EXPECT_EQ(test, m->nr_valid, 680 + 61 * 2);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 64);
	/* only the first block has a slot, a sparse leaf */
	KUNIT_EXPECT_EQ(test, count_slots(m), 1);
	KUNIT_EXPECT_TRUE(test, xa_get_mark(&m->leaves, base >> 21, XA_MARK_1));
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_writable(entry_of(tm, base +
								   SZ_2M - 2 * PAGE_SIZE)));
	KUNIT_EXPECT_EQ(test, entry_of(tm, base + PAGE_SIZE), 0);

	walk_all(test, tm, addr, addr + len);

	vm_munmap(addr, len);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	KUNIT_EXPECT_EQ(test, count_slots(m), 0);
	KUNIT_EXPECT_TRUE(test, xa_empty(&m->groups));
}

static struct hmm_mirror_leaf *no_cut_leaf(struct hmm_mirror *mirror)
{
	return ERR_PTR(-ENOMEM);
}

/*
 * A 2 MiB huge page mirrored whole with PAGE_SIZE entries is one extent: no
 * leaf, its share of an xarray node (576 bytes for 64 slots): at most 16
 * bytes per huge page once 36 of them share a node, here 40.  An unmap of
 * its start shrinks it; one that cuts it in two splits it into a full leaf,
 * or without memory for that clears it whole and calls ->invalidate() for
 * the rest; a fault that adds write permission to part of one makes it a
 * full leaf, and one over all of it an extent again.
 */
static void hmm_mirror_test_metadata_huge(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long huge = 40, len = huge * SZ_2M, hole, addr, i, n = 0;
	size_t empty, bytes;
	phys_addr_t phys;
	bool same = true;
	u64 e;

	addr = test_mmap_huge(test, len);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr, len,
						  PAGE_SHIFT, NULL));
	empty = hmm_mirror_metadata_bytes(m);
	fault_ok(test, tm, addr, len, 0);
	KUNIT_EXPECT_EQ(test, m->nr_valid, len >> PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, huge);
	KUNIT_EXPECT_EQ(test, count_full_leaves(m), 0);
	bytes = hmm_mirror_metadata_bytes(m) - empty;
	kunit_info(test, "%lu 2 MiB huge pages, 4 KiB entries: %zu bytes, %zu.%02zu per huge page\n",
		   huge, bytes, bytes / huge, (bytes % huge) * 100 / huge);
	KUNIT_EXPECT_LE(test, bytes, huge * 16);
	vm_munmap(addr + 2 * SZ_2M, len - 2 * SZ_2M);
	len = 2 * SZ_2M;
	KUNIT_EXPECT_EQ(test, m->nr_valid, len >> PAGE_SHIFT);

	/* every entry maps its 4 KiB of the huge page, read-only */
	hmm_mirror_lock(m);
	phys = hmm_mirror_entry_phys(hmm_mirror_entry(m, addr));
	for (i = 0; i < SZ_2M; i += PAGE_SIZE) {
		e = hmm_mirror_entry(m, addr + i);
		same &= hmm_mirror_entry_valid(e) &&
			!hmm_mirror_entry_writable(e) &&
			hmm_mirror_entry_phys(e) == phys + i &&
			hmm_mirror_entry_dma(m, addr + i + 8, e) ==
			(dma_addr_t)(phys + i + 8);
	}
	KUNIT_EXPECT_TRUE(test, same);
	hmm_mirror_walk(m, addr, addr + len, count_entry, &n);
	KUNIT_EXPECT_EQ(test, n, len >> PAGE_SHIFT);
	n = 0;
	hmm_mirror_walk(m, addr + PAGE_SIZE, addr + 3 * PAGE_SIZE,
			count_entry, &n);
	KUNIT_EXPECT_EQ(test, n, 2);

	/* the first page of the second: what is left stays an extent */
	tm->nr_invalidate = 0;
	hmm_mirror_unmap(m, addr + SZ_2M, addr + SZ_2M + PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 2 * 512 - 1);
	KUNIT_EXPECT_EQ(test, count_full_leaves(m), 0);

	/* a page out of its middle: split, into a full leaf */
	hole = addr + SZ_2M + SZ_1M;
	hmm_mirror_unmap(m, hole, hole + PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 0);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 2 * 512 - 2);
	KUNIT_EXPECT_EQ(test, count_full_leaves(m), 1);
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_valid(hmm_mirror_entry(m, hole)));
	KUNIT_EXPECT_EQ(test, hmm_mirror_entry(m, hole + PAGE_SIZE),
			hmm_mirror_entry(m, hole - PAGE_SIZE) +
			2 * PAGE_SIZE);

	/*
	 * Without memory for the split, a page out of the middle of the first
	 * clears all of it, the driver told of the rest first
	 */
	hmm_mirror_unlock(m);
	/* allocates: not under the mirror lock, which reclaim may take */
	kunit_activate_static_stub(test, hmm_mirror_cut_leaf_alloc,
				   no_cut_leaf);
	hole = addr + SZ_1M;
	hmm_mirror_lock(m);
	hmm_mirror_unmap(m, hole, hole + PAGE_SIZE);
	hmm_mirror_unlock(m);
	kunit_deactivate_static_stub(test, hmm_mirror_cut_leaf_alloc);
	KUNIT_EXPECT_EQ(test, tm->nr_invalidate, 2);
	KUNIT_EXPECT_EQ(test, tm->inv_start, hole + PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, tm->inv_end, addr + SZ_2M);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 512 - 2);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 1);
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_valid(entry_of(tm, addr)));

	/*
	 * Faulted again, read-only: an extent.  Write permission on one page:
	 * a full leaf; on all of them: an extent again.
	 */
	fault_ok(test, tm, addr, SZ_2M, 0);
	KUNIT_EXPECT_EQ(test, count_full_leaves(m), 1);
	fault_ok(test, tm, addr + 3 * PAGE_SIZE, 1, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, count_full_leaves(m), 2);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_writable(entry_of(tm, addr +
								   3 * PAGE_SIZE)));
	KUNIT_EXPECT_FALSE(test, hmm_mirror_entry_writable(entry_of(tm, addr +
								    2 * PAGE_SIZE)));
	KUNIT_EXPECT_EQ(test, m->nr_valid, 2 * 512 - 2);
	fault_ok(test, tm, addr, SZ_2M, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, count_full_leaves(m), 1);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 2);
	KUNIT_EXPECT_TRUE(test, hmm_mirror_entry_writable(entry_of(tm, addr +
								   SZ_2M - PAGE_SIZE)));

	vm_munmap(addr, len);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
	KUNIT_EXPECT_EQ(test, hmm_mirror_metadata_bytes(m), empty);
}

/* No page frame fits a narrow entry: every leaf a fault adds to is widened */
static u64 no_narrow_pfn(void)
{
	return 0;
}

/*
 * A fault that meets a page a narrow leaf cannot hold (forced here for every
 * page) widens the leaf: the entries already there keep their pages and
 * their DMA addresses (an IOMMU device may be using them), and a leaf it
 * creates is wide from the start.  On @dev if not NULL (iommu-dma).
 */
static void check_widen(struct kunit *test, struct device *dev)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	struct hmm_mirror *m = &tm->mirror;
	unsigned long len = HMM_MIRROR_LEAF_ENTRIES * PAGE_SIZE * 2, addr;
	size_t narrow = kmalloc_size_roundup(HMM_MIRROR_LEAF_ENTRIES * sizeof(u32));
	size_t wide = kmalloc_size_roundup(HMM_MIRROR_LEAF_ENTRIES * sizeof(u64));
	dma_addr_t dma[4];
	size_t bytes, extra = 0;
	u64 entry[4];
	unsigned int i;
	unsigned long n = 0;

	addr = test_mmap(test, len, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr, len,
						  PAGE_SHIFT, dev));
	fault_ok(test, tm, addr, 4 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	bytes = hmm_mirror_metadata_bytes(m);
	/*
	 * Without a device, four physically contiguous pages are an extent,
	 * not a narrow leaf: then leaf 0 has no narrow array to trade and
	 * gets a header of its own.
	 */
	if (!count_full_leaves(m)) {
		bytes += narrow;
		extra = 64;
	}
	hmm_mirror_lock(m);
	for (i = 0; i < 4; i++) {
		entry[i] = hmm_mirror_entry(m, addr + i * PAGE_SIZE);
		dma[i] = hmm_mirror_entry_dma(m, addr + i * PAGE_SIZE, entry[i]);
	}
	hmm_mirror_unlock(m);

	kunit_activate_static_stub(test, hmm_mirror_narrow_pfn_limit,
				   no_narrow_pfn);
	/* the same leaf: widened; the next one: created wide */
	fault_ok(test, tm, addr + 4 * PAGE_SIZE, 4 * PAGE_SIZE,
		 HMM_MIRROR_FAULT_WRITE);
	fault_ok(test, tm, addr + len / 2, 4 * PAGE_SIZE,
		 HMM_MIRROR_FAULT_WRITE);
	kunit_deactivate_static_stub(test, hmm_mirror_narrow_pfn_limit);

	KUNIT_EXPECT_EQ(test, m->nr_valid, 12);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 2);
	/*
	 * Leaf 0 traded its narrow entry array for a wide one, and leaf 1 came
	 * wide, with its header and an xarray node for the two (a narrow
	 * leaf 0 would have grown the table by far less).  With an IOMMU the
	 * narrow leaf stays as a spare, with the IOVA range it got in exchange.
	 */
	bytes = hmm_mirror_metadata_bytes(m) - bytes;
	KUNIT_EXPECT_GE(test, bytes, 2 * wide - narrow + (dev ? narrow : 0));
	KUNIT_EXPECT_LE(test, bytes, 2 * wide - narrow + 64 + extra +
			sizeof(struct xa_node) + (dev ? narrow + 64 : 0));
	hmm_mirror_lock(m);
	for (i = 0; i < 4; i++) {
		u64 e = hmm_mirror_entry(m, addr + i * PAGE_SIZE);

		KUNIT_EXPECT_EQ(test, e, entry[i]);
		KUNIT_EXPECT_EQ(test, hmm_mirror_entry_dma(m, addr + i * PAGE_SIZE,
							   e), dma[i]);
	}
	KUNIT_EXPECT_EQ(test, 0, hmm_mirror_walk(m, addr, addr + len,
						 count_entry, &n));
	hmm_mirror_unlock(m);
	KUNIT_EXPECT_EQ(test, n, 12);
	expect_cpu_page(test, tm, addr + 5 * PAGE_SIZE, 0x5a);
	expect_cpu_page(test, tm, addr + 2 * PAGE_SIZE, 0xa5);

	/* an invalidation clears wide entries like narrow ones */
	vm_munmap(addr, len);
	KUNIT_EXPECT_EQ(test, m->nr_valid, 0);
	KUNIT_EXPECT_EQ(test, m->nr_leaves, 0);
}

static void hmm_mirror_test_widen(struct kunit *test)
{
	check_widen(test, NULL);
}

static void hmm_mirror_test_widen_iommu(struct kunit *test)
{
	struct device *dev;

	dev = bus_find_device(&pci_bus_type, NULL, NULL, find_iova_dev);
	if (!dev)
		kunit_skip(test, "no device translated by iommu-dma");
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, put_dev, dev));
	check_widen(test, dev);
}

/*
 * The mirror is left populated when the test thread exits: the exit of its
 * mm invalidates everything (MMU_NOTIFY_RELEASE).  The cleanup runs once the
 * thread released its mm, maybe before the mm is torn down: wait for it.
 */
static void check_released(void *data)
{
	struct test_mirror *tm = data;
	struct kunit *test = tm->test;
	unsigned int i, calls = 0;

	unsigned long seen = 0, valid = 0, leaves = 0;

	for (i = 0; i < 250 && !calls; i++) {
		if (i)
			msleep(20);
		/* the invalidation is over once we get the lock */
		hmm_mirror_lock(&tm->mirror);
		calls = tm->nr_invalidate;
		seen = tm->inv_valid;
		valid = tm->mirror.nr_valid;
		leaves = tm->mirror.nr_leaves;
		hmm_mirror_unlock(&tm->mirror);
	}
	KUNIT_EXPECT_EQ(test, calls, 1);
	KUNIT_EXPECT_EQ(test, seen, 4);
	KUNIT_EXPECT_EQ(test, valid, 0);
	KUNIT_EXPECT_EQ(test, leaves, 0);
	KUNIT_EXPECT_EQ(test, stat(&tm->mirror.stats.pages_invalidated), 4);
}

static void hmm_mirror_test_mm_release(struct kunit *test)
{
	struct test_mirror *tm = test_mirror_alloc(test);
	unsigned long addr;

	tm->test = test;
	addr = test_mmap(test, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE);
	KUNIT_ASSERT_EQ(test, 0, test_mirror_init(test, tm, addr,
						  4 * PAGE_SIZE, PAGE_SHIFT,
						  NULL));
	/* runs before the destroy action registered by init */
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, check_released,
							   tm));
	fault_ok(test, tm, addr, 4 * PAGE_SIZE, HMM_MIRROR_FAULT_WRITE);
	KUNIT_EXPECT_EQ(test, tm->mirror.nr_valid, 4);
}

static struct kunit_case hmm_mirror_test_cases[] = {
	KUNIT_CASE(hmm_mirror_test_entry_packing),
	KUNIT_CASE(hmm_mirror_test_bad_input),
	KUNIT_CASE(hmm_mirror_test_fault_invalidate),
	KUNIT_CASE(hmm_mirror_test_write_upgrade),
	KUNIT_CASE(hmm_mirror_test_snapshot),
	KUNIT_CASE(hmm_mirror_test_sparse),
	KUNIT_CASE(hmm_mirror_test_walk),
	KUNIT_CASE(hmm_mirror_test_race_retry),
	KUNIT_CASE(hmm_mirror_test_dirty),
	KUNIT_CASE(hmm_mirror_test_huge),
	KUNIT_CASE(hmm_mirror_test_huge_mismatch),
	KUNIT_CASE(hmm_mirror_test_dma_direct),
	KUNIT_CASE(hmm_mirror_test_dma_iommu),
	KUNIT_CASE(hmm_mirror_test_dma_iommu_spare),
	KUNIT_CASE(hmm_mirror_test_metadata_dense),
	KUNIT_CASE(hmm_mirror_test_metadata_scattered),
	KUNIT_CASE(hmm_mirror_test_metadata_random),
	KUNIT_CASE(hmm_mirror_test_groups),
	KUNIT_CASE(hmm_mirror_test_group_full),
	KUNIT_CASE(hmm_mirror_test_metadata_huge),
	KUNIT_CASE(hmm_mirror_test_widen),
	KUNIT_CASE(hmm_mirror_test_widen_iommu),
	KUNIT_CASE(hmm_mirror_test_mm_release),
	{}
};

static struct kunit_suite hmm_mirror_test_suite = {
	.name = "hmm_mirror",
	.test_cases = hmm_mirror_test_cases,
};

kunit_test_suite(hmm_mirror_test_suite);

MODULE_DESCRIPTION("KUnit tests for the HMM mirror");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
