/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HMM mirror: a device's view of a range of a process address space.
 *
 * A mirror keeps a sparse mirror page table, one 64-bit entry per mirror
 * page, filled by hmm_mirror_fault() through hmm_range_fault() and emptied
 * when the CPU page tables change (mmu_interval_notifier).  Before any entry
 * is dropped the driver's ->invalidate() op is called so that the device stops
 * using the pages first.
 *
 * See Documentation/mm/hmm_mirror.rst.
 */
#ifndef _LINUX_HMM_MIRROR_H
#define _LINUX_HMM_MIRROR_H

#include <linux/bits.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/xarray.h>

struct device;
struct hmm_mirror;
struct hmm_mirror_leaf;

/*
 * A mirror entry is the physical address of the mirrored page (aligned to the
 * mirror's page size) with flags in its low bits.  The DMA address is derived
 * from it (see hmm_mirror_entry_dma()), so an entry never exceeds 8 bytes and
 * the page stays reachable for dirtying without reverse IOMMU look-ups.  The
 * mirror stores most entries in 4 bytes (see Documentation/mm/hmm_mirror.rst);
 * the API always hands out this 64-bit form.
 */
#define HMM_MIRROR_ENTRY_VALID		BIT_ULL(0)
#define HMM_MIRROR_ENTRY_WRITE		BIT_ULL(1)
#define HMM_MIRROR_ENTRY_DIRTY		BIT_ULL(2)
#define HMM_MIRROR_ENTRY_FLAGS		GENMASK_ULL(2, 0)
#define HMM_MIRROR_ENTRY_ADDR_MASK	(~(u64)(PAGE_SIZE - 1))

/* The mirror page table: one leaf of 512 entries per 512 mirror pages. */
#define HMM_MIRROR_LEAF_SHIFT		9
#define HMM_MIRROR_LEAF_ENTRIES		BIT(HMM_MIRROR_LEAF_SHIFT)

/* hmm_mirror_fault() flags */
#define HMM_MIRROR_FAULT_WRITE		BIT(0)	/* need write access */
#define HMM_MIRROR_FAULT_SNAPSHOT	BIT(1)	/* mirror what is present, fault nothing */

/**
 * struct hmm_mirror_ops - driver callbacks of a mirror
 * @invalidate: stop all device access to [@start, @end) and return only once
 *	the device can no longer read or write those pages.  Called with the
 *	mirror locked, in a context that may sleep, before the mirror unmaps and
 *	clears the entries of the range.  The entries are still valid during the
 *	call, so the driver may read them (for instance to find what to zap).
 */
struct hmm_mirror_ops {
	void (*invalidate)(struct hmm_mirror *mirror, unsigned long start,
			   unsigned long end);
};

/**
 * struct hmm_mirror_stats - event counters of one mirror
 * @faults: successful hmm_mirror_fault() calls
 * @pages_faulted: entries made valid by faults
 * @invalidations: invalidations that found at least one valid entry
 * @pages_invalidated: entries cleared by invalidations
 * @retries: faults that raced with an invalidation and started over
 * @fault_errors: failed hmm_mirror_fault() calls
 * @dma_maps: DMA map operations: one per contiguous run linked into an IOVA
 *	range, one per page mapped with dma-direct
 * @dma_syncs: IOTLB syncs after mapping (one per leaf a fault linked pages
 *	in: one for a fault inside one leaf)
 * @dma_flushes: IOTLB flushes after unmapping (at most one per invalidation
 *	or hmm_mirror_unmap() call)
 */
struct hmm_mirror_stats {
	atomic64_t faults;
	atomic64_t pages_faulted;
	atomic64_t invalidations;
	atomic64_t pages_invalidated;
	atomic64_t retries;
	atomic64_t fault_errors;
	atomic64_t dma_maps;
	atomic64_t dma_syncs;
	atomic64_t dma_flushes;
};

/**
 * enum hmm_mirror_dma_mode - how a mirror makes pages reachable by its device
 * @HMM_MIRROR_DMA_NONE: no DMA mapping, the device (or software acting for
 *	it) uses physical addresses or struct pages
 * @HMM_MIRROR_DMA_DIRECT: dma-direct without bouncing, DMA address is
 *	phys_to_dma() of the page
 * @HMM_MIRROR_DMA_IOVA: the IOVA-based DMA API (iommu-dma), each leaf owns
 *	one IOVA range (struct dma_iova_state) of
 *	%HMM_MIRROR_LEAF_ENTRIES mirror pages, DMA address is the leaf's IOVA
 *	plus the entry's offset in the leaf
 */
enum hmm_mirror_dma_mode {
	HMM_MIRROR_DMA_NONE,
	HMM_MIRROR_DMA_DIRECT,
	HMM_MIRROR_DMA_IOVA,
};

/**
 * struct hmm_mirror - a device mirror of part of one mm
 * @notifier: interval notifier over [@start, @end)
 * @ops: driver callbacks
 * @dma_dev: device the pages are DMA-mapped for; NULL for devices that access
 *	memory through the CPU (virtual DMA, e.g. soft-RoCE)
 * @lock: serialises faults, invalidations and device page-table updates;
 *	entries may be read only with it held
 * @start: first mirrored address (aligned to the mirror page size)
 * @end: end of the mirrored range (exclusive, aligned)
 * @page_shift: log2 of the mirror page size (PAGE_SHIFT, or more for huge pages)
 * @leaves: sparse table: index -> struct hmm_mirror_leaf, or an extent (a
 *	run of entries kept in the slot)
 * @groups: the scattered entries of neighbouring leaves kept together:
 *	index -> struct hmm_mirror_group, for the leaves without a slot in
 *	@leaves
 * @nr_valid: number of valid entries
 * @nr_leaves: number of leaves holding valid entries, in their own slot of
 *	@leaves or in @groups
 * @spare_leaves: empty leaves kept, with their IOVA ranges, for later faults
 * @nr_spare_leaves: number of leaves in @spare_leaves
 * @dma_mode: how pages are DMA-mapped, chosen by hmm_mirror_init()
 * @stats: event counters (read them with hmm_mirror_read_counters())
 *
 * All fields are private to mm/hmm_mirror.c (and its white-box KUnit test,
 * mm/hmm_mirror_kunit.c): drivers use the accessors below
 * (hmm_mirror_start(), hmm_mirror_nr_valid(), ...).
 */
struct hmm_mirror {
	struct mmu_interval_notifier notifier;
	const struct hmm_mirror_ops *ops;
	struct device *dma_dev;
	struct mutex lock;	/* protects the entries, see above */
	unsigned long start;
	unsigned long end;
	unsigned int page_shift;
	struct xarray leaves;
	struct xarray groups;
	unsigned long nr_valid;
	unsigned long nr_leaves;
	struct hmm_mirror_leaf *spare_leaves;
	unsigned int nr_spare_leaves;
	enum hmm_mirror_dma_mode dma_mode;
	struct hmm_mirror_stats stats;
};

/**
 * struct hmm_mirror_counters - a snapshot of the event counters of a mirror
 * @faults: see struct hmm_mirror_stats, as are all the other fields
 * @pages_faulted: entries made valid by faults
 * @invalidations: invalidations that found at least one valid entry
 * @pages_invalidated: entries cleared by invalidations
 * @retries: faults that raced with an invalidation and started over
 * @fault_errors: failed hmm_mirror_fault() calls
 * @dma_maps: DMA map operations
 * @dma_syncs: IOTLB syncs after mapping
 * @dma_flushes: IOTLB flushes after unmapping
 */
struct hmm_mirror_counters {
	u64 faults;
	u64 pages_faulted;
	u64 invalidations;
	u64 pages_invalidated;
	u64 retries;
	u64 fault_errors;
	u64 dma_maps;
	u64 dma_syncs;
	u64 dma_flushes;
};

int hmm_mirror_init(struct hmm_mirror *mirror, struct mm_struct *mm,
		    unsigned long start, unsigned long length,
		    unsigned int page_shift, struct device *dma_dev,
		    const struct hmm_mirror_ops *ops);
int hmm_mirror_init_whole(struct hmm_mirror *mirror, struct mm_struct *mm,
			  struct device *dma_dev,
			  const struct hmm_mirror_ops *ops);
void hmm_mirror_destroy(struct hmm_mirror *mirror);

int hmm_mirror_fault(struct hmm_mirror *mirror, unsigned long addr,
		     unsigned long len, unsigned int flags);

/**
 * hmm_mirror_lock - lock a mirror's entries against faults and invalidations
 * @mirror: the mirror
 */
static inline void hmm_mirror_lock(struct hmm_mirror *mirror)
{
	mutex_lock(&mirror->lock);
}

/**
 * hmm_mirror_unlock - unlock a mirror locked by hmm_mirror_lock() or by a
 *	successful hmm_mirror_fault()
 * @mirror: the mirror
 */
static inline void hmm_mirror_unlock(struct hmm_mirror *mirror)
{
	mutex_unlock(&mirror->lock);
}

void hmm_mirror_unmap(struct hmm_mirror *mirror, unsigned long start,
		      unsigned long end);
u64 hmm_mirror_entry(struct hmm_mirror *mirror, unsigned long addr);
dma_addr_t hmm_mirror_entry_dma(struct hmm_mirror *mirror, unsigned long addr,
				u64 entry);
struct page *hmm_mirror_entry_page(u64 entry);
void hmm_mirror_set_dirty(struct hmm_mirror *mirror, unsigned long start,
			  unsigned long end);

/**
 * typedef hmm_mirror_walk_fn - called for each valid entry by hmm_mirror_walk()
 * @mirror: the mirror being walked
 * @addr: virtual address of the entry's mirror page
 * @entry: the entry
 * @dma: its DMA address (or physical address for a virtual-DMA mirror)
 * @priv: the walker's private data
 *
 * Return: 0 to go on, anything else to stop the walk and return that value.
 */
typedef int (*hmm_mirror_walk_fn)(struct hmm_mirror *mirror,
				  unsigned long addr, u64 entry,
				  dma_addr_t dma, void *priv);
int hmm_mirror_walk(struct hmm_mirror *mirror, unsigned long start,
		    unsigned long end, hmm_mirror_walk_fn fn, void *priv);

size_t hmm_mirror_metadata_bytes(struct hmm_mirror *mirror);
void hmm_mirror_read_counters(struct hmm_mirror *mirror,
			      struct hmm_mirror_counters *counters);

#if IS_ENABLED(CONFIG_KUNIT)
/* KUnit replaces it to race an invalidation with a fault (static stub) */
void hmm_mirror_fault_test_hook(struct hmm_mirror *mirror);
/* KUnit replaces it to make faults widen leaves (static stub) */
u64 hmm_mirror_narrow_pfn_limit(void);
/* KUnit replaces it to make splitting an extent fail (static stub) */
struct hmm_mirror_leaf *hmm_mirror_cut_leaf_alloc(struct hmm_mirror *mirror);
#endif

/**
 * hmm_mirror_lockdep_assert_held - lockdep check that a mirror is locked
 * @mirror: the mirror
 */
static inline void hmm_mirror_lockdep_assert_held(struct hmm_mirror *mirror)
{
	lockdep_assert_held(&mirror->lock);
}

/**
 * hmm_mirror_start - first address a mirror covers
 * @mirror: an initialised mirror
 *
 * Return: the start of the mirrored range, aligned to the mirror page size.
 */
static inline unsigned long hmm_mirror_start(struct hmm_mirror *mirror)
{
	return mirror->start;
}

/**
 * hmm_mirror_end - end of the range a mirror covers
 * @mirror: an initialised mirror
 *
 * Return: the end (exclusive) of the mirrored range, aligned to the mirror
 * page size.
 */
static inline unsigned long hmm_mirror_end(struct hmm_mirror *mirror)
{
	return mirror->end;
}

/**
 * hmm_mirror_nr_valid - number of valid entries of a mirror
 * @mirror: the mirror, locked or not
 *
 * Return: the number of valid entries; without the lock a snapshot that may
 * already be stale.
 */
static inline unsigned long hmm_mirror_nr_valid(struct hmm_mirror *mirror)
{
	return READ_ONCE(mirror->nr_valid);
}

/**
 * hmm_mirror_dma_mode - how a mirror makes pages reachable by its device
 * @mirror: an initialised mirror
 *
 * Return: the mode hmm_mirror_init() chose for the mirror's DMA device.
 */
static inline enum hmm_mirror_dma_mode
hmm_mirror_dma_mode(struct hmm_mirror *mirror)
{
	return mirror->dma_mode;
}

/**
 * hmm_mirror_entry_make - pack a physical address and flags into an entry
 * @phys: physical address of the mirrored page, aligned to the mirror page
 * @flags: HMM_MIRROR_ENTRY_* flags
 *
 * Return: the entry.
 */
static inline u64 hmm_mirror_entry_make(phys_addr_t phys, u64 flags)
{
	return ((u64)phys & HMM_MIRROR_ENTRY_ADDR_MASK) |
	       (flags & HMM_MIRROR_ENTRY_FLAGS);
}

/**
 * hmm_mirror_entry_phys - physical address of the page an entry maps
 * @entry: a valid mirror entry
 *
 * Return: the physical address, aligned to the mirror page size.
 */
static inline phys_addr_t hmm_mirror_entry_phys(u64 entry)
{
	return entry & HMM_MIRROR_ENTRY_ADDR_MASK;
}

/**
 * hmm_mirror_entry_valid - does the entry map a page?
 * @entry: a mirror entry
 *
 * Return: %true if the entry is valid.
 */
static inline bool hmm_mirror_entry_valid(u64 entry)
{
	return entry & HMM_MIRROR_ENTRY_VALID;
}

/**
 * hmm_mirror_entry_writable - may the device write through the entry?
 * @entry: a mirror entry
 *
 * Return: %true if the entry is valid and writable.
 */
static inline bool hmm_mirror_entry_writable(u64 entry)
{
	return (entry & (HMM_MIRROR_ENTRY_VALID | HMM_MIRROR_ENTRY_WRITE)) ==
	       (HMM_MIRROR_ENTRY_VALID | HMM_MIRROR_ENTRY_WRITE);
}

/**
 * hmm_mirror_page_size - size of one mirror page
 * @mirror: the mirror
 *
 * Return: the size in bytes.
 */
static inline unsigned long hmm_mirror_page_size(struct hmm_mirror *mirror)
{
	return 1UL << mirror->page_shift;
}

#endif /* _LINUX_HMM_MIRROR_H */
