// SPDX-License-Identifier: GPL-2.0
/*
 * HMM mirror: a device's view of a range of a process address space.
 *
 * The mirror page table is sparse: an xarray of leaves, each leaf the
 * entries of HMM_MIRROR_LEAF_ENTRIES consecutive mirror pages (a full array
 * of them, only the valid ones, or a run of them packed into the xarray
 * slot), and the valid entries of scattered leaves kept together, 64
 * leaves at a time, in groups, so its memory follows the pages actually
 * mirrored rather than the size of the range.  Entries are filled by
 * hmm_mirror_fault() with hmm_range_fault() and the mmu_interval_notifier
 * sequence protocol, and cleared by the notifier's invalidate callback after
 * the driver has stopped its device.
 *
 * See Documentation/mm/hmm_mirror.rst.
 */
#include <kunit/static_stub.h>
#include <kunit/visibility.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/export.h>
#include <linux/hmm.h>
#include <linux/hmm_mirror.h>
#include <linux/jiffies.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#define HMM_MIRROR_LEAF_MASK	(HMM_MIRROR_LEAF_ENTRIES - 1)
/*
 * A leaf holds its entries in one of two widths.  A narrow leaf keeps 32-bit
 * entries, the page frame number above the three flag bits: half the memory
 * of the 64-bit entries of the API, for every page frame below 2^29 (2 TiB
 * of physical addresses with 4 KiB pages), which on most machines is all of
 * RAM.  A wide leaf keeps 64-bit entries.  Leaves are created narrow unless
 * the fault that creates them maps a page above that limit (device memory
 * high in the physical address space), and such a fault widens a narrow
 * leaf it adds the page to.
 */
#define HMM_MIRROR_NARROW_FLAG_BITS	3
#define HMM_MIRROR_NARROW_PFN_LIMIT	BIT_ULL(32 - HMM_MIRROR_NARROW_FLAG_BITS)
/*
 * Empty leaves an IOVA mirror keeps for its next faults instead of freeing
 * them: reserving a leaf's IOVA range (larger than what the IOVA caches
 * hold) is the dearest part of creating a leaf.
 */
#define HMM_MIRROR_SPARE_LEAVES	4
/*
 * What the mirror allocates for a fault is charged to the mirrored mm's
 * memory cgroup (see hmm_mirror_fault()).  Past the cgroup's limit the
 * fault fails with -ENOMEM instead of invoking the OOM killer: the device
 * can fail the access it faults for, and its bookkeeping should not kill a
 * process of the cgroup to go on.
 */
#define HMM_MIRROR_GFP		(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | \
				 __GFP_NOWARN)
/* xarray levels below index bit BITS_PER_LONG - 1 */
#define HMM_MIRROR_XA_LEVELS	((BITS_PER_LONG - 1) / XA_CHUNK_SHIFT)

/*
 * What a table slot points to, told apart by their first byte.  (A slot may
 * also hold an extent, an xarray value: see HMM_MIRROR_EXTENTS.)
 */
enum hmm_mirror_leaf_kind {
	HMM_MIRROR_LEAF_FULL,		/* struct hmm_mirror_leaf */
	HMM_MIRROR_LEAF_SPARSE,		/* struct hmm_mirror_sparse */
};

/**
 * struct hmm_mirror_leaf - one leaf of the mirror page table
 * @kind: HMM_MIRROR_LEAF_FULL
 * @wide: the entries are 64-bit, not narrow
 * @nr_valid: number of valid entries
 * @entries: HMM_MIRROR_LEAF_ENTRIES entries, u32 or u64 (@wide); read and
 *	written with hmm_mirror_leaf_entry() and hmm_mirror_leaf_set_entry()
 * @iova: the leaf's IOVA range (HMM_MIRROR_DMA_IOVA only)
 * @next: link in a fault's pool of new leaves, in the mirror's spare leaves or
 *	in a list of leaves to free
 */
struct hmm_mirror_leaf {
	u8 kind;
	bool wide;
	unsigned int nr_valid;
	void *entries;
	struct dma_iova_state iova;
	struct hmm_mirror_leaf *next;
};

/**
 * struct hmm_mirror_sparse - a leaf that holds only its valid entries
 * @kind: HMM_MIRROR_LEAF_SPARSE
 * @class: its size class (hmm_mirror_class_caps[@class] entries)
 * @nr: number of entries, all valid
 * @slot: the entries' slots, increasing; room for as many as the class
 *	holds, followed by their narrow entries (hmm_mirror_sparse_narrow())
 *
 * Scattered pages (an implicit mirror written 4 KiB at a time at random
 * addresses) leave leaves with a few valid entries: such a leaf is kept in
 * 6 bytes per entry instead of 2 KiB when its group has no room for them.
 * See hmm_mirror_leaf_compact().
 */
struct hmm_mirror_sparse {
	u8 kind;
	u8 class;
	u16 nr;
	u16 slot[];
};

/*
 * Leaves allocated by a fault before it takes the lock, so that filling the
 * table under the lock allocates nothing: the lock is also taken by
 * invalidations, which run from reclaim.
 */
struct hmm_mirror_pool {
	struct hmm_mirror_leaf *head;	/* narrow leaves */
	struct hmm_mirror_leaf *wide;	/* wide leaves */
	bool reserved;		/* xarray slots were reserved */
	bool want_wide;		/* the last attempt met a page a leaf could not hold */
};

/* A run of consecutive entries of one leaf being DMA-mapped or unmapped */
struct hmm_mirror_run {
	struct hmm_mirror_leaf *leaf;
	unsigned long leaf_index;
	unsigned int slot;	/* first entry of the run */
	unsigned int nr;	/* number of entries, 0 when no run is open */
	phys_addr_t phys;	/* physical address of the first entry */
};

/*
 * What a fault batches: the open run, and the part of the last leaf it
 * linked runs into that still needs an IOTLB sync.
 */
struct hmm_mirror_batch {
	struct hmm_mirror_run run;
	struct hmm_mirror_leaf *sync_leaf;	/* NULL: nothing to sync */
	size_t sync_start;	/* offsets in sync_leaf's IOVA range */
	size_t sync_end;
	unsigned long maps;	/* DMA map operations, for stats.dma_maps */
	unsigned long syncs;	/* IOTLB syncs, for stats.dma_syncs */
};

/* Index of the mirror page that holds @addr */
static unsigned long hmm_mirror_index(struct hmm_mirror *mirror,
				      unsigned long addr)
{
	return (addr - mirror->start) >> mirror->page_shift;
}

static unsigned long hmm_mirror_addr(struct hmm_mirror *mirror,
				     unsigned long leaf_index,
				     unsigned int slot)
{
	unsigned long index = (leaf_index << HMM_MIRROR_LEAF_SHIFT) | slot;

	return mirror->start + (index << mirror->page_shift);
}

/* Size of a leaf's IOVA range */
static size_t hmm_mirror_leaf_span(struct hmm_mirror *mirror)
{
	return (size_t)HMM_MIRROR_LEAF_ENTRIES << mirror->page_shift;
}

/* Offset of entry @slot in its leaf's IOVA range */
static size_t hmm_mirror_slot_offset(struct hmm_mirror *mirror,
				     unsigned int slot)
{
	return (size_t)slot << mirror->page_shift;
}

static dma_addr_t hmm_mirror_leaf_iova(struct hmm_mirror *mirror,
				       struct hmm_mirror_leaf *leaf,
				       unsigned int slot)
{
	return leaf->iova.addr + hmm_mirror_slot_offset(mirror, slot);
}

/*
 * The first page frame a narrow entry cannot hold.  KUnit lowers it with
 * kunit_activate_static_stub() to make faults widen leaves.
 */
VISIBLE_IF_KUNIT u64 hmm_mirror_narrow_pfn_limit(void)
{
	KUNIT_STATIC_STUB_REDIRECT(hmm_mirror_narrow_pfn_limit);
	return HMM_MIRROR_NARROW_PFN_LIMIT;
}
EXPORT_SYMBOL_IF_KUNIT(hmm_mirror_narrow_pfn_limit);

static size_t hmm_mirror_leaf_bytes(bool wide)
{
	return HMM_MIRROR_LEAF_ENTRIES * (wide ? sizeof(u64) : sizeof(u32));
}

static u64 hmm_mirror_narrow_to_entry(u32 narrow)
{
	return PFN_PHYS(narrow >> HMM_MIRROR_NARROW_FLAG_BITS) |
	       (narrow & HMM_MIRROR_ENTRY_FLAGS);
}

/* The narrow form of @entry, whose page frame must be below the limit */
static u32 hmm_mirror_entry_to_narrow(u64 entry)
{
	return (u32)(PHYS_PFN(hmm_mirror_entry_phys(entry)) <<
		     HMM_MIRROR_NARROW_FLAG_BITS) |
	       (entry & HMM_MIRROR_ENTRY_FLAGS);
}

/* Entry @slot of @leaf, as the API's 64-bit entry */
static u64 hmm_mirror_leaf_entry(struct hmm_mirror_leaf *leaf,
				 unsigned int slot)
{
	if (leaf->wide)
		return ((u64 *)leaf->entries)[slot];
	return hmm_mirror_narrow_to_entry(((u32 *)leaf->entries)[slot]);
}

/* Can @leaf hold an entry for the page at @phys? */
static bool hmm_mirror_leaf_fits(struct hmm_mirror_leaf *leaf,
				 phys_addr_t phys)
{
	return leaf->wide || PHYS_PFN(phys) < hmm_mirror_narrow_pfn_limit();
}

/* Set entry @slot of @leaf, which must fit it (hmm_mirror_leaf_fits()) */
static void hmm_mirror_leaf_set_entry(struct hmm_mirror_leaf *leaf,
				      unsigned int slot, u64 entry)
{
	if (leaf->wide) {
		((u64 *)leaf->entries)[slot] = entry;
		return;
	}
	((u32 *)leaf->entries)[slot] = hmm_mirror_entry_to_narrow(entry);
}

/*
 * A leaf whose valid entries form one run, consecutive slots that map
 * consecutive mirror pages with the same flags, is not kept as a leaf: its
 * xarray slot holds the run as an xarray value (xa_mk_value()), an
 * "extent": the narrow entry of the run's first page, the run's first slot
 * above it and its length minus one above that.  A page alone in its leaf
 * (an implicit mirror faulted 4 KiB at a time) and a 2 MiB mapping mirrored
 * whole (a THP or a hugetlb page seen through 4 KiB mirror pages) then cost
 * a share of an xarray node instead of a leaf.  Only 64-bit kernels (the
 * value holds 50 bits) and mirrors without IOVA ranges (an IOVA range is a
 * leaf's) have them.
 *
 * Faults make extents (hmm_mirror_leaf_compact()) and turn them back into
 * leaves (hmm_mirror_get_leaf()) when they add entries to one.  An
 * invalidation or an unmap that clears part of an extent shrinks it in
 * place if what is left is at one end; if it cuts the extent in two, the
 * extent becomes a full leaf, allocated without waiting, or, when that
 * fails, is cleared whole (hmm_mirror_prepare_cut()).  A dirty mark on part
 * of one dirties those pages at once (hmm_mirror_extent_set_dirty()).
 */
#define HMM_MIRROR_EXTENTS	(BITS_PER_LONG - 1 >= 32 + 2 * HMM_MIRROR_LEAF_SHIFT)
#define HMM_MIRROR_EXTENT_SLOT_SHIFT	32
#define HMM_MIRROR_EXTENT_NR_SHIFT	(32 + HMM_MIRROR_LEAF_SHIFT)

static bool hmm_mirror_is_extent(struct hmm_mirror_leaf *leaf)
{
	return xa_is_value(leaf);
}

/* Only made where an xarray value holds it (HMM_MIRROR_EXTENTS) */
static void *hmm_mirror_extent_make(unsigned int slot, unsigned int nr,
				    u32 narrow)
{
	return xa_mk_value((unsigned long)((u64)(nr - 1) <<
					   HMM_MIRROR_EXTENT_NR_SHIFT |
					   (u64)slot << HMM_MIRROR_EXTENT_SLOT_SHIFT |
					   narrow));
}

static unsigned int hmm_mirror_extent_slot(struct hmm_mirror_leaf *ext)
{
	return ((u64)xa_to_value(ext) >> HMM_MIRROR_EXTENT_SLOT_SHIFT) &
	       HMM_MIRROR_LEAF_MASK;
}

/* The last slot of @ext */
static unsigned int hmm_mirror_extent_last(struct hmm_mirror_leaf *ext)
{
	return hmm_mirror_extent_slot(ext) +
	       (((u64)xa_to_value(ext) >> HMM_MIRROR_EXTENT_NR_SHIFT) &
		HMM_MIRROR_LEAF_MASK);
}

/* How far apart the narrow entries of consecutive mirror pages are */
static u32 hmm_mirror_narrow_step(struct hmm_mirror *mirror)
{
	return 1U << (mirror->page_shift - PAGE_SHIFT +
		      HMM_MIRROR_NARROW_FLAG_BITS);
}

/* The narrow entry of slot @slot of @ext, which must hold it */
static u32 hmm_mirror_extent_narrow(struct hmm_mirror *mirror,
				    struct hmm_mirror_leaf *ext,
				    unsigned int slot)
{
	return (u32)xa_to_value(ext) +
	       (slot - hmm_mirror_extent_slot(ext)) *
	       hmm_mirror_narrow_step(mirror);
}

/* The entry of slot @slot of @ext, which must hold it */
static u64 hmm_mirror_extent_entry(struct hmm_mirror *mirror,
				   struct hmm_mirror_leaf *ext,
				   unsigned int slot)
{
	return hmm_mirror_narrow_to_entry(hmm_mirror_extent_narrow(mirror, ext,
								   slot));
}

/*
 * Clip the slots [*@slot, *@slot_end] to those @ext holds; false if none of
 * them is.
 */
static bool hmm_mirror_extent_clip(struct hmm_mirror_leaf *ext,
				   unsigned int *slot, unsigned int *slot_end)
{
	*slot = max(*slot, hmm_mirror_extent_slot(ext));
	*slot_end = min(*slot_end, hmm_mirror_extent_last(ext));
	return *slot <= *slot_end;
}

/*
 * Sparse leaves and groups keep 6 bytes per entry (a 16-bit position and a
 * narrow entry) after a 4-byte header.  They are allocated in size classes
 * four per doubling of the number of entries, from caches of their own, so
 * that one wastes about a tenth of its memory on average instead of the
 * third that kmalloc()'s power-of-two sizes would, and a power-of-two
 * number of entries does not take twice its size.  The largest class is
 * within 4 KiB.
 */
static const u16 hmm_mirror_class_caps[] = {
	8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112,
	128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 680,
};

#define HMM_MIRROR_CLASSES	ARRAY_SIZE(hmm_mirror_class_caps)

static struct kmem_cache *hmm_mirror_class_cache[HMM_MIRROR_CLASSES];
static char hmm_mirror_class_name[HMM_MIRROR_CLASSES][24];
static DEFINE_MUTEX(hmm_mirror_class_lock);

/* Bytes of a sparse leaf or a group with room for @cap entries */
static size_t hmm_mirror_class_bytes(unsigned int cap)
{
	return ALIGN(sizeof(u32) + ALIGN(cap, 2) * sizeof(u16) +
		     cap * sizeof(u32), sizeof(u64));
}

/* The smallest size class with room for @nr entries, or -1 */
static int hmm_mirror_class_of(unsigned int nr)
{
	int c;

	for (c = 0; c < HMM_MIRROR_CLASSES; c++)
		if (hmm_mirror_class_caps[c] >= nr)
			return c;
	return -1;
}

/*
 * Create the caches of the size classes, once, on the first
 * hmm_mirror_init() of a mirror that may use them.  A class whose cache
 * cannot be created is left to kmalloc().
 */
static void hmm_mirror_classes_init(void)
{
	static bool done;
	unsigned int c;

	/* every later registration: no global lock */
	if (smp_load_acquire(&done))
		return;
	mutex_lock(&hmm_mirror_class_lock);
	for (c = 0; !done && c < HMM_MIRROR_CLASSES; c++) {
		snprintf(hmm_mirror_class_name[c],
			 sizeof(hmm_mirror_class_name[c]), "hmm_mirror-%u",
			 hmm_mirror_class_caps[c]);
		WRITE_ONCE(hmm_mirror_class_cache[c],
			   kmem_cache_create(hmm_mirror_class_name[c],
					     hmm_mirror_class_bytes(hmm_mirror_class_caps[c]),
					     sizeof(u64), 0, NULL));
	}
	/* the caches are set before anyone can see done */
	smp_store_release(&done, true);
	mutex_unlock(&hmm_mirror_class_lock);
}

/* What an allocation of size class @c takes */
static size_t hmm_mirror_class_size(int c)
{
	struct kmem_cache *cache = READ_ONCE(hmm_mirror_class_cache[c]);

	if (cache)
		return kmem_cache_size(cache);
	return kmalloc_size_roundup(hmm_mirror_class_bytes(hmm_mirror_class_caps[c]));
}

/*
 * Allocate size class @c without waiting (the mirror is locked), charged
 * to the current memory cgroup (the fault's, the mirrored mm's); freed
 * with kfree().
 */
static void *hmm_mirror_class_alloc(int c)
{
	gfp_t gfp = GFP_NOWAIT | __GFP_NOWARN | __GFP_ACCOUNT;
	struct kmem_cache *cache = READ_ONCE(hmm_mirror_class_cache[c]);

	if (cache)
		return kmem_cache_alloc(cache, gfp);
	return kmalloc(hmm_mirror_class_bytes(hmm_mirror_class_caps[c]), gfp);
}

/*
 * Sparse leaves (struct hmm_mirror_sparse) are made by faults in mirrors
 * without IOVA ranges, for leaves with at most HMM_MIRROR_SPARSE_MAX valid
 * entries that their group has no room for (hmm_mirror_leaf_compact()); a
 * fault that adds to one turns it into a full
 * leaf (hmm_mirror_get_leaf()) first, and invalidations shrink it in place.
 * The table marks their slots with HMM_MIRROR_SPARSE_MARK, so that a fault
 * can tell them from full leaves before it takes the lock, without looking
 * into a leaf that an invalidation may be freeing.
 */
/*
 * Past this many entries the 2 KiB array of a full leaf (and its header)
 * is smaller than 6 bytes an entry: such a leaf is kept whole, neither as
 * a sparse leaf nor in its group.
 */
#define HMM_MIRROR_SPARSE_MAX	320
#define HMM_MIRROR_SPARSE_MARK		XA_MARK_1

static bool hmm_mirror_is_sparse(struct hmm_mirror_leaf *leaf)
{
	return !xa_is_value(leaf) && leaf->kind == HMM_MIRROR_LEAF_SPARSE;
}

/* Is it a full leaf, neither an extent nor a sparse leaf? */
static bool hmm_mirror_is_full(struct hmm_mirror_leaf *leaf)
{
	return !xa_is_value(leaf) && leaf->kind == HMM_MIRROR_LEAF_FULL;
}

static struct hmm_mirror_sparse *hmm_mirror_to_sparse(struct hmm_mirror_leaf *leaf)
{
	return (struct hmm_mirror_sparse *)leaf;
}

/* The narrow entries of @sp, after its slots */
static u32 *hmm_mirror_sparse_narrow(struct hmm_mirror_sparse *sp)
{
	return (u32 *)&sp->slot[ALIGN(hmm_mirror_class_caps[sp->class], 2)];
}

/* Index of the first of the @nr increasing @keys that is @key or more */
static unsigned int hmm_mirror_find(const u16 *keys, unsigned int nr,
				    unsigned int key)
{
	unsigned int lo = 0, hi = nr;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (keys[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first entry of @sp whose slot is @slot or more */
static unsigned int hmm_mirror_sparse_find(struct hmm_mirror_sparse *sp,
					   unsigned int slot)
{
	return hmm_mirror_find(sp->slot, sp->nr, slot);
}

/*
 * The entries of @sp whose slots are in [@slot, @slot_end]: indices
 * [return value, *@end)
 */
static unsigned int hmm_mirror_sparse_range(struct hmm_mirror_sparse *sp,
					    unsigned int slot,
					    unsigned int slot_end,
					    unsigned int *end)
{
	*end = hmm_mirror_sparse_find(sp, slot_end + 1);
	return hmm_mirror_sparse_find(sp, slot);
}

/* Entry @slot of what a table slot holds: a leaf of any kind or an extent */
static u64 hmm_mirror_slot_entry(struct hmm_mirror *mirror,
				 struct hmm_mirror_leaf *leaf,
				 unsigned int slot)
{
	unsigned int slot_end = slot, i;
	struct hmm_mirror_sparse *sp;

	if (hmm_mirror_is_full(leaf))
		return hmm_mirror_leaf_entry(leaf, slot);
	if (hmm_mirror_is_sparse(leaf)) {
		sp = hmm_mirror_to_sparse(leaf);
		i = hmm_mirror_sparse_find(sp, slot);
		if (i == sp->nr || sp->slot[i] != slot)
			return 0;
		return hmm_mirror_narrow_to_entry(hmm_mirror_sparse_narrow(sp)[i]);
	}
	if (!hmm_mirror_extent_clip(leaf, &slot, &slot_end))
		return 0;
	return hmm_mirror_extent_entry(mirror, leaf, slot);
}

/*
 * The slots of leaf @leaf_index that hold entries [@first, @last] of the
 * table: all of them, except in the leaves at either end of the range.
 */
static void hmm_mirror_leaf_slots(unsigned long leaf_index,
				  unsigned long first, unsigned long last,
				  unsigned int *slot, unsigned int *slot_end)
{
	*slot = leaf_index == first >> HMM_MIRROR_LEAF_SHIFT ?
		first & HMM_MIRROR_LEAF_MASK : 0;
	*slot_end = leaf_index == last >> HMM_MIRROR_LEAF_SHIFT ?
		    last & HMM_MIRROR_LEAF_MASK : HMM_MIRROR_LEAF_MASK;
}

/* Each existing leaf that holds entries of [@first, @last] */
#define hmm_mirror_for_each_leaf(mirror, first, last, leaf_index, leaf)	\
	xa_for_each_range(&(mirror)->leaves, leaf_index, leaf,		\
			  (first) >> HMM_MIRROR_LEAF_SHIFT,			\
			  (last) >> HMM_MIRROR_LEAF_SHIFT)

/*
 * Clip [*start, *end) to the mirror and widen it to whole mirror pages.
 * Return false if nothing is left.
 */
static bool hmm_mirror_clip(struct hmm_mirror *mirror, unsigned long *start,
			    unsigned long *end)
{
	unsigned long s = max(*start, mirror->start);
	unsigned long e = min(*end, mirror->end);

	if (s >= e)
		return false;
	/* mirror->start and mirror->end are aligned, so this stays inside */
	*start = ALIGN_DOWN(s, hmm_mirror_page_size(mirror));
	*end = ALIGN(e, hmm_mirror_page_size(mirror));
	return true;
}

static struct hmm_mirror_leaf *hmm_mirror_leaf_alloc(struct hmm_mirror *mirror,
						     bool wide, gfp_t gfp)
{
	struct hmm_mirror_leaf *leaf;

	leaf = kmalloc(sizeof(*leaf), gfp);
	if (!leaf)
		return ERR_PTR(-ENOMEM);
	leaf->entries = kzalloc(hmm_mirror_leaf_bytes(wide), gfp);
	if (!leaf->entries) {
		kfree(leaf);
		return ERR_PTR(-ENOMEM);
	}
	leaf->kind = HMM_MIRROR_LEAF_FULL;
	leaf->iova = (struct dma_iova_state){};
	leaf->nr_valid = 0;
	leaf->wide = wide;
	leaf->next = NULL;

	if (mirror->dma_mode == HMM_MIRROR_DMA_IOVA &&
	    !dma_iova_try_alloc(mirror->dma_dev, &leaf->iova, 0,
				hmm_mirror_leaf_span(mirror))) {
		kfree(leaf->entries);
		kfree(leaf);
		return ERR_PTR(-ENOMEM);
	}
	return leaf;
}

/* Free a leaf that the device can no longer reach */
static void hmm_mirror_leaf_free(struct hmm_mirror *mirror,
				 struct hmm_mirror_leaf *leaf)
{
	if (mirror->dma_mode == HMM_MIRROR_DMA_IOVA)
		dma_iova_free(mirror->dma_dev, &leaf->iova);
	kfree(leaf->entries);
	kfree(leaf);
}

/*
 * Dispose of a leaf removed from the table, with the mirror locked: keep it
 * as a spare, IOVA range included, or free it.  The leaf is empty (all its
 * entries are zero) and nothing is linked in its IOVA range any more: its
 * entries were unlinked and the IOTLB flushed, or they were never linked.
 * Reusing the range is then no different from allocating it again.
 */
static void hmm_mirror_leaf_put(struct hmm_mirror *mirror,
				struct hmm_mirror_leaf *leaf)
{
	lockdep_assert_held(&mirror->lock);

	/* Spares are narrow: a fault takes one for any leaf it creates */
	if (mirror->dma_mode != HMM_MIRROR_DMA_IOVA || leaf->wide ||
	    mirror->nr_spare_leaves >= HMM_MIRROR_SPARE_LEAVES) {
		hmm_mirror_leaf_free(mirror, leaf);
		return;
	}
	VM_WARN_ON_ONCE(leaf->nr_valid ||
			memchr_inv(leaf->entries, 0,
				   hmm_mirror_leaf_bytes(leaf->wide)));
	leaf->next = mirror->spare_leaves;
	mirror->spare_leaves = leaf;
	/* read without the lock by hmm_mirror_prepare() */
	WRITE_ONCE(mirror->nr_spare_leaves, mirror->nr_spare_leaves + 1);
}

/* Take a spare leaf, with the mirror locked; NULL if there is none */
static struct hmm_mirror_leaf *hmm_mirror_leaf_get_spare(struct hmm_mirror *mirror)
{
	struct hmm_mirror_leaf *leaf = mirror->spare_leaves;

	lockdep_assert_held(&mirror->lock);

	if (!leaf)
		return NULL;
	mirror->spare_leaves = leaf->next;
	leaf->next = NULL;
	WRITE_ONCE(mirror->nr_spare_leaves, mirror->nr_spare_leaves - 1);
	return leaf;
}

/* Drop an entry that was made valid, with the mirror locked */
static void hmm_mirror_clear_entry(struct hmm_mirror *mirror,
				   struct hmm_mirror_leaf *leaf,
				   unsigned int slot)
{
	hmm_mirror_leaf_set_entry(leaf, slot, 0);
	leaf->nr_valid--;
	mirror->nr_valid--;
}

/*
 * Remove an empty leaf from the table.  The caller frees it once the device
 * can no longer reach anything through the leaf's IOVA range.
 */
static void hmm_mirror_leaf_remove(struct hmm_mirror *mirror,
				   unsigned long leaf_index,
				   struct hmm_mirror_leaf *leaf)
{
	xa_erase(&mirror->leaves, leaf_index);
	mirror->nr_leaves--;
}

/*
 * Mark the page of an entry that is being unmapped dirty if the device may
 * have written it.  The page is still mapped by the CPU (invalidations run
 * before the CPU page table changes, and destroy unmaps before removing the
 * notifier), so it can neither be freed nor truncated under us; as in
 * ib_umem_odp the page lock is not taken, since invalidations may be called
 * with it held.
 */
static void hmm_mirror_dirty_page(struct hmm_mirror *mirror, u64 entry)
{
	/* Only entries the driver marked (hmm_mirror_set_dirty()) */
	if (!(entry & HMM_MIRROR_ENTRY_DIRTY))
		return;
	folio_mark_dirty(page_folio(hmm_mirror_entry_page(entry)));
}

/* -------------------------------------------------------------------------
 * Unmapping
 */

/* Undo the dma_map_page() of a dma-direct entry */
static void hmm_mirror_unmap_direct(struct hmm_mirror *mirror, u64 entry)
{
	dma_unmap_page(mirror->dma_dev,
		       phys_to_dma(mirror->dma_dev, hmm_mirror_entry_phys(entry)),
		       hmm_mirror_page_size(mirror), DMA_BIDIRECTIONAL);
}

/*
 * Give up the page of an entry kept outside a full leaf (an extent's or a
 * sparse leaf's, never IOVA-mapped), with the mirror locked
 */
static void hmm_mirror_release_entry(struct hmm_mirror *mirror, u64 entry)
{
	if (mirror->dma_mode == HMM_MIRROR_DMA_DIRECT)
		hmm_mirror_unmap_direct(mirror, entry);
	hmm_mirror_dirty_page(mirror, entry);
}

/*
 * Unmap and clear the entries of extent @ext (slot @leaf_index) in [@slot,
 * @slot_end], with the mirror locked: what is left of it at either end
 * stays an extent.  Callers never cut one in the middle
 * (hmm_mirror_prepare_cut()).  Return the number of entries cleared.
 */
static unsigned long hmm_mirror_extent_unmap(struct hmm_mirror *mirror,
					     unsigned long leaf_index,
					     struct hmm_mirror_leaf *ext,
					     unsigned int slot,
					     unsigned int slot_end)
{
	unsigned int first = hmm_mirror_extent_slot(ext);
	unsigned int last = hmm_mirror_extent_last(ext);
	unsigned int s;
	void *rest;

	if (!hmm_mirror_extent_clip(ext, &slot, &slot_end))
		return 0;
	if (WARN_ON_ONCE(slot > first && slot_end < last))
		return 0;

	for (s = slot; s <= slot_end; s++)
		hmm_mirror_release_entry(mirror,
					 hmm_mirror_extent_entry(mirror, ext, s));
	if (slot == first && slot_end == last) {
		xa_erase(&mirror->leaves, leaf_index);
		mirror->nr_leaves--;
	} else {
		rest = slot == first ?
		       hmm_mirror_extent_make(slot_end + 1, last - slot_end,
					      hmm_mirror_extent_narrow(mirror, ext,
								       slot_end + 1)) :
		       hmm_mirror_extent_make(first, slot - first,
					      hmm_mirror_extent_narrow(mirror, ext,
								       first));
		/* Replaces a present entry: allocates nothing */
		xa_store(&mirror->leaves, leaf_index, rest,
			 GFP_NOWAIT | __GFP_NOWARN);
	}
	mirror->nr_valid -= slot_end - slot + 1;
	return slot_end - slot + 1;
}

/*
 * Replace sparse leaf @sp of slot @leaf_index, with the mirror locked: by an
 * extent if one entry is left, by nothing if none.  Neither allocates.
 */
static void hmm_mirror_sparse_shrunk(struct hmm_mirror *mirror,
				     unsigned long leaf_index,
				     struct hmm_mirror_sparse *sp)
{
	if (sp->nr > 1 || (sp->nr && !HMM_MIRROR_EXTENTS))
		return;
	if (sp->nr) {
		xa_store(&mirror->leaves, leaf_index,
			 hmm_mirror_extent_make(sp->slot[0], 1,
						hmm_mirror_sparse_narrow(sp)[0]),
			 GFP_NOWAIT | __GFP_NOWARN);
		xa_clear_mark(&mirror->leaves, leaf_index,
			      HMM_MIRROR_SPARSE_MARK);
	} else {
		xa_erase(&mirror->leaves, leaf_index);
		mirror->nr_leaves--;
	}
	/* nothing of it is mapped for the device: no IOVA range */
	kfree(sp);
}

/*
 * Unmap and clear the entries of sparse leaf @sp (slot @leaf_index) in
 * [@slot, @slot_end], with the mirror locked.  Return the number cleared.
 */
static unsigned long hmm_mirror_sparse_unmap(struct hmm_mirror *mirror,
					     unsigned long leaf_index,
					     struct hmm_mirror_sparse *sp,
					     unsigned int slot,
					     unsigned int slot_end)
{
	u32 *narrow = hmm_mirror_sparse_narrow(sp);
	unsigned int end, first = hmm_mirror_sparse_range(sp, slot, slot_end,
							    &end);
	unsigned int i, n;

	for (i = first; i < end; i++)
		hmm_mirror_release_entry(mirror,
					 hmm_mirror_narrow_to_entry(narrow[i]));
	n = end - first;
	if (!n)
		return 0;
	memmove(&sp->slot[first], &sp->slot[end],
		(sp->nr - end) * sizeof(*sp->slot));
	memmove(&narrow[first], &narrow[end], (sp->nr - end) * sizeof(*narrow));
	sp->nr -= n;
	mirror->nr_valid -= n;
	hmm_mirror_sparse_shrunk(mirror, leaf_index, sp);
	return n;
}

/*
 * Set the @nr entries @narrow of empty leaf @leaf at the slots their
 * positions @pos give (the low HMM_MIRROR_LEAF_SHIFT bits: a sparse leaf's
 * slots, or positions in a group)
 */
static void hmm_mirror_leaf_unpack(struct hmm_mirror_leaf *leaf,
				   const u16 *pos, const u32 *narrow,
				   unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		hmm_mirror_leaf_set_entry(leaf, pos[i] & HMM_MIRROR_LEAF_MASK,
					  hmm_mirror_narrow_to_entry(narrow[i]));
	leaf->nr_valid = nr;
}

/*
 * Copy the valid entries of narrow leaf @leaf to @pos and @narrow, their
 * positions being @base plus their slots; return how many there are
 */
static unsigned int hmm_mirror_leaf_pack(struct hmm_mirror_leaf *leaf,
					 unsigned int base, u16 *pos,
					 u32 *narrow)
{
	u32 *entries = leaf->entries;
	unsigned int slot, n = 0;

	for (slot = 0; n < leaf->nr_valid; slot++) {
		if (!(entries[slot] & HMM_MIRROR_ENTRY_VALID))
			continue;
		pos[n] = base + slot;
		narrow[n++] = entries[slot];
	}
	return n;
}

/* Copy the entries of extent or sparse leaf @from into empty leaf @leaf */
static void hmm_mirror_leaf_fill(struct hmm_mirror *mirror,
				 struct hmm_mirror_leaf *leaf,
				 struct hmm_mirror_leaf *from)
{
	struct hmm_mirror_sparse *sp;
	unsigned int slot;

	if (hmm_mirror_is_extent(from)) {
		for (slot = hmm_mirror_extent_slot(from);
		     slot <= hmm_mirror_extent_last(from); slot++)
			hmm_mirror_leaf_set_entry(leaf, slot,
						  hmm_mirror_extent_entry(mirror,
									  from,
									  slot));
		leaf->nr_valid = hmm_mirror_extent_last(from) -
				 hmm_mirror_extent_slot(from) + 1;
		return;
	}
	sp = hmm_mirror_to_sparse(from);
	hmm_mirror_leaf_unpack(leaf, sp->slot, hmm_mirror_sparse_narrow(sp),
			       sp->nr);
}

/* -------------------------------------------------------------------------
 * Groups
 *
 * Pages scattered a few to a leaf, or one to a leaf, would each cost a
 * slot of the table (9 bytes of a 576-byte xarray node of 64 slots) and,
 * for a sparse leaf, a header and kmalloc()'s rounding on top of their 6
 * bytes.  A group keeps the entries of the leaves of an aligned
 * HMM_MIRROR_GROUP_LEAVES of them together, in a second xarray
 * (@mirror->groups, one slot per group): the position of each entry in the
 * group (16 bits, increasing) and its narrow entry, allocated from caches
 * four sizes per doubling apart, so that a group wastes about a tenth of
 * its memory instead of a third.  A leaf whose entries are in its group has
 * no slot in @mirror->leaves, and a leaf with a slot there has none of its
 * entries in its group.
 *
 * Faults move a leaf's entries into its group when the leaf is compacted
 * and it is not one run of several pages (hmm_mirror_leaf_compact()), and
 * take them out again into a full leaf when they add to it
 * (hmm_mirror_get_leaf()).  Invalidations remove entries in place.  Only
 * mirrors without IOVA ranges have groups, as they have sparse leaves.
 */
#define HMM_MIRROR_GROUP_SHIFT		6
#define HMM_MIRROR_GROUP_LEAVES		BIT(HMM_MIRROR_GROUP_SHIFT)
/* Positions in a group: mirror page index bits below this */
#define HMM_MIRROR_GROUP_POS_SHIFT	(HMM_MIRROR_GROUP_SHIFT + HMM_MIRROR_LEAF_SHIFT)
#define HMM_MIRROR_GROUP_POS_MASK	(BIT(HMM_MIRROR_GROUP_POS_SHIFT) - 1)
static_assert(HMM_MIRROR_GROUP_POS_SHIFT <= 16);

/**
 * struct hmm_mirror_group - the scattered entries of neighbouring leaves
 * @class: its size class (hmm_mirror_class_caps[@class] entries)
 * @nr: number of entries, all valid
 * @pos: the entries' positions in the group (the low
 *	HMM_MIRROR_GROUP_POS_SHIFT bits of their mirror page index),
 *	increasing; room for as many as the class holds, followed by their
 *	narrow entries (hmm_mirror_group_narrow())
 */
struct hmm_mirror_group {
	u8 class;
	u16 nr;
	u16 pos[];
};

/*
 * An empty group with room for @nr entries; NULL if @nr is more than the
 * largest class holds or no memory comes without waiting.
 */
static struct hmm_mirror_group *hmm_mirror_group_alloc(unsigned int nr)
{
	int class = hmm_mirror_class_of(nr);
	struct hmm_mirror_group *g;

	if (class < 0)
		return NULL;
	g = hmm_mirror_class_alloc(class);
	if (!g)
		return NULL;
	g->class = class;
	g->nr = 0;
	return g;
}

static u32 *hmm_mirror_group_narrow(struct hmm_mirror_group *g)
{
	return (u32 *)&g->pos[ALIGN(hmm_mirror_class_caps[g->class], 2)];
}

/* Position of entry @slot of leaf @leaf_index in its group */
static unsigned int hmm_mirror_group_pos(unsigned long leaf_index,
					 unsigned int slot)
{
	return (leaf_index & (HMM_MIRROR_GROUP_LEAVES - 1)) <<
	       HMM_MIRROR_LEAF_SHIFT | slot;
}

/* Index of the first entry of @g whose position is @pos or more */
static unsigned int hmm_mirror_group_find(struct hmm_mirror_group *g,
					  unsigned int pos)
{
	return hmm_mirror_find(g->pos, g->nr, pos);
}

/*
 * The entries of group @gi (@g) for mirror pages [@first, @last]: indices
 * [return value, *@end)
 */
static unsigned int hmm_mirror_group_range(struct hmm_mirror_group *g,
					   unsigned long gi,
					   unsigned long first,
					   unsigned long last,
					   unsigned int *end)
{
	unsigned long start = gi << HMM_MIRROR_GROUP_POS_SHIFT;

	*end = hmm_mirror_group_find(g, min(last - start,
					    HMM_MIRROR_GROUP_POS_MASK) + 1);
	return hmm_mirror_group_find(g, first > start ? first - start : 0);
}

/* Each group that may hold entries of mirror pages [@first, @last] */
#define hmm_mirror_for_each_group(mirror, first, last, gi, g)		\
	xa_for_each_range(&(mirror)->groups, gi, g,			\
			  (first) >> HMM_MIRROR_GROUP_POS_SHIFT,		\
			  (last) >> HMM_MIRROR_GROUP_POS_SHIFT)

/* The entry of mirror page @index if its group holds it, else 0 */
static u64 hmm_mirror_group_entry(struct hmm_mirror *mirror,
				  unsigned long index)
{
	struct hmm_mirror_group *g;
	unsigned int i, pos = index & HMM_MIRROR_GROUP_POS_MASK;

	g = xa_load(&mirror->groups, index >> HMM_MIRROR_GROUP_POS_SHIFT);
	if (!g)
		return 0;
	i = hmm_mirror_group_find(g, pos);
	if (i == g->nr || g->pos[i] != pos)
		return 0;
	return hmm_mirror_narrow_to_entry(hmm_mirror_group_narrow(g)[i]);
}

/* How many leaves lose their last entry when entries [@b, @e) of @g go */
static unsigned int hmm_mirror_group_leaves_gone(struct hmm_mirror_group *g,
						 unsigned int b,
						 unsigned int e)
{
	unsigned int shift = HMM_MIRROR_LEAF_SHIFT, n = 0, i;
	unsigned int first = g->pos[b] >> shift, last = g->pos[e - 1] >> shift;
	bool first_stays = b > 0 && g->pos[b - 1] >> shift == first;
	bool last_stays = e < g->nr && g->pos[e] >> shift == last;

	for (i = b; i < e; i++)
		if (i == b || g->pos[i] >> shift != g->pos[i - 1] >> shift)
			n++;
	if (first == last)
		return n - (first_stays || last_stays);
	return n - first_stays - last_stays;
}

/*
 * Remove entries [@b, @e) of group @gi (@g), with the mirror locked; free
 * the group if that empties it.  Allocates nothing.
 */
static void hmm_mirror_group_cut(struct hmm_mirror *mirror, unsigned long gi,
				 struct hmm_mirror_group *g, unsigned int b,
				 unsigned int e)
{
	u32 *narrow = hmm_mirror_group_narrow(g);

	memmove(&g->pos[b], &g->pos[e], (g->nr - e) * sizeof(*g->pos));
	memmove(&narrow[b], &narrow[e], (g->nr - e) * sizeof(*narrow));
	g->nr -= e - b;
	if (g->nr)
		return;
	xa_erase(&mirror->groups, gi);
	kfree(g);
}

/*
 * Move the entries of leaf @leaf_index that its group holds into empty full
 * leaf @leaf, with the mirror locked.  Return how many there were; the
 * leaf stays counted in @mirror->nr_leaves if any.  Allocates nothing.
 */
static unsigned int hmm_mirror_group_take(struct hmm_mirror *mirror,
					  unsigned long leaf_index,
					  struct hmm_mirror_leaf *leaf)
{
	unsigned long gi = leaf_index >> HMM_MIRROR_GROUP_SHIFT;
	unsigned long first = leaf_index << HMM_MIRROR_LEAF_SHIFT;
	struct hmm_mirror_group *g = xa_load(&mirror->groups, gi);
	unsigned int b, e;

	if (!g)
		return 0;
	b = hmm_mirror_group_range(g, gi, first, first + HMM_MIRROR_LEAF_MASK,
				   &e);
	hmm_mirror_leaf_unpack(leaf, &g->pos[b], &hmm_mirror_group_narrow(g)[b],
			       e - b);
	if (e > b)
		hmm_mirror_group_cut(mirror, gi, g, b, e);
	return e - b;
}

/*
 * Make room in group @gi (@g) for @nr entries of another leaf, with the
 * mirror locked: move the leaf with the most entries in it, if it has more
 * than @nr, out to a sparse leaf in its own slot.  So a full group keeps
 * the leaves with the fewest entries, which a slot and an array of their
 * own would cost the most per page.  False if no leaf there has more, or no
 * memory comes without waiting.
 */
static bool hmm_mirror_group_evict(struct hmm_mirror *mirror, unsigned long gi,
				   struct hmm_mirror_group *g, unsigned int nr)
{
	u16 count[HMM_MIRROR_GROUP_LEAVES] = {};
	u32 *narrow = hmm_mirror_group_narrow(g), *sp_narrow;
	unsigned int i, b, big = 0;
	struct hmm_mirror_sparse *sp;
	unsigned long leaf_index;
	int class;

	for (i = 0; i < g->nr; i++)
		count[g->pos[i] >> HMM_MIRROR_LEAF_SHIFT]++;
	for (i = 1; i < HMM_MIRROR_GROUP_LEAVES; i++)
		if (count[i] > count[big])
			big = i;
	/* a leaf in a group has at most HMM_MIRROR_SPARSE_MAX entries */
	if (count[big] <= nr)
		return false;
	class = hmm_mirror_class_of(count[big]);
	sp = hmm_mirror_class_alloc(class);
	if (!sp)
		return false;
	sp->kind = HMM_MIRROR_LEAF_SPARSE;
	sp->class = class;
	sp->nr = count[big];
	sp_narrow = hmm_mirror_sparse_narrow(sp);
	b = hmm_mirror_group_find(g, big << HMM_MIRROR_LEAF_SHIFT);
	for (i = 0; i < sp->nr; i++) {
		sp->slot[i] = g->pos[b + i] & HMM_MIRROR_LEAF_MASK;
		sp_narrow[i] = narrow[b + i];
	}
	leaf_index = gi << HMM_MIRROR_GROUP_SHIFT | big;
	/* The slot is free (the leaf's entries are in the group): may allocate */
	if (xa_is_err(xa_store(&mirror->leaves, leaf_index, sp,
			       GFP_NOWAIT | __GFP_NOWARN))) {
		kfree(sp);
		return false;
	}
	xa_set_mark(&mirror->leaves, leaf_index, HMM_MIRROR_SPARSE_MARK);
	hmm_mirror_group_cut(mirror, gi, g, b, b + sp->nr);
	return true;
}

/*
 * Move the valid entries of narrow leaf @leaf (slot @leaf_index) into its
 * group and give up the leaf's slot, with the mirror locked.  The group is
 * reallocated to its new size without waiting; if it would outgrow the
 * largest class, a leaf with more entries leaves it first
 * (hmm_mirror_group_evict()).  False (the leaf stays as it is) if there is
 * none or no memory comes.
 */
static bool hmm_mirror_group_put(struct hmm_mirror *mirror,
				 unsigned long leaf_index,
				 struct hmm_mirror_leaf *leaf)
{
	unsigned long gi = leaf_index >> HMM_MIRROR_GROUP_SHIFT;
	struct hmm_mirror_group *old = xa_load(&mirror->groups, gi), *g;
	unsigned int at = 0, old_nr = old ? old->nr : 0, n;
	u32 *narrow, *old_narrow;

	if (leaf->nr_valid > HMM_MIRROR_SPARSE_MAX)
		return false;
	if (old && hmm_mirror_class_of(old_nr + leaf->nr_valid) < 0) {
		if (!hmm_mirror_group_evict(mirror, gi, old, leaf->nr_valid))
			return false;
		/* the group shrank in place, or was freed if that emptied it */
		old = xa_load(&mirror->groups, gi);
		old_nr = old ? old->nr : 0;
	}
	g = hmm_mirror_group_alloc(old_nr + leaf->nr_valid);
	if (!g)
		return false;
	narrow = hmm_mirror_group_narrow(g);
	/* the old entries before the leaf's, the leaf's, the old ones after */
	if (old) {
		old_narrow = hmm_mirror_group_narrow(old);
		at = hmm_mirror_group_find(old,
					   hmm_mirror_group_pos(leaf_index, 0));
		memcpy(g->pos, old->pos, at * sizeof(*g->pos));
		memcpy(narrow, old_narrow, at * sizeof(*narrow));
	}
	n = at + hmm_mirror_leaf_pack(leaf, hmm_mirror_group_pos(leaf_index, 0),
				      &g->pos[at], &narrow[at]);
	if (old) {
		memcpy(&g->pos[n], &old->pos[at], (old_nr - at) * sizeof(*g->pos));
		memcpy(&narrow[n], &old_narrow[at],
		       (old_nr - at) * sizeof(*narrow));
	}
	g->nr = old_nr + leaf->nr_valid;

	/* Allocates a node (without waiting) only for a new group */
	if (xa_is_err(xa_store(&mirror->groups, gi, g,
			       GFP_NOWAIT | __GFP_NOWARN))) {
		kfree(g);
		return false;
	}
	kfree(old);
	xa_erase(&mirror->leaves, leaf_index);
	memset(leaf->entries, 0, hmm_mirror_leaf_bytes(false));
	leaf->nr_valid = 0;
	return true;
}

/*
 * Unmap and clear the entries that groups hold of mirror pages [@first,
 * @last], with the mirror locked.  Return the number cleared.
 */
static unsigned long hmm_mirror_groups_unmap(struct hmm_mirror *mirror,
					     unsigned long first,
					     unsigned long last)
{
	struct hmm_mirror_group *g;
	unsigned long gi, cleared = 0;
	unsigned int b, e, i;
	u32 *narrow;

	hmm_mirror_for_each_group(mirror, first, last, gi, g) {
		b = hmm_mirror_group_range(g, gi, first, last, &e);
		if (b == e)
			continue;
		narrow = hmm_mirror_group_narrow(g);
		for (i = b; i < e; i++)
			hmm_mirror_release_entry(mirror,
						 hmm_mirror_narrow_to_entry(narrow[i]));
		mirror->nr_leaves -= hmm_mirror_group_leaves_gone(g, b, e);
		mirror->nr_valid -= e - b;
		cleared += e - b;
		hmm_mirror_group_cut(mirror, gi, g, b, e);
	}
	return cleared;
}

/* Does a group hold an entry of mirror pages [@first, @last]? */
static bool hmm_mirror_groups_any(struct hmm_mirror *mirror,
				  unsigned long first, unsigned long last)
{
	struct hmm_mirror_group *g;
	unsigned long gi;
	unsigned int e;

	hmm_mirror_for_each_group(mirror, first, last, gi, g)
		if (hmm_mirror_group_range(g, gi, first, last, &e) < e)
			return true;
	return false;
}

/* hmm_mirror_set_dirty() on the grouped entries of [@first, @last] */
static void hmm_mirror_groups_set_dirty(struct hmm_mirror *mirror,
					unsigned long first,
					unsigned long last)
{
	struct hmm_mirror_group *g;
	unsigned int i, e;
	unsigned long gi;
	u32 *narrow;

	hmm_mirror_for_each_group(mirror, first, last, gi, g) {
		narrow = hmm_mirror_group_narrow(g);
		for (i = hmm_mirror_group_range(g, gi, first, last, &e); i < e;
		     i++)
			if (narrow[i] & HMM_MIRROR_ENTRY_WRITE)
				narrow[i] |= HMM_MIRROR_ENTRY_DIRTY;
	}
}

/*
 * Allocate the full leaf that an extent cut in two becomes, without waiting
 * for memory.  KUnit replaces it with kunit_activate_static_stub() to make
 * it fail.
 */
VISIBLE_IF_KUNIT struct hmm_mirror_leaf *
hmm_mirror_cut_leaf_alloc(struct hmm_mirror *mirror)
{
	struct mem_cgroup *memcg, *old_memcg;
	struct hmm_mirror_leaf *leaf;

	KUNIT_STATIC_STUB_REDIRECT(hmm_mirror_cut_leaf_alloc, mirror);
	/* Charged as a fault's leaves are, whoever invalidates */
	memcg = get_mem_cgroup_from_mm(mirror->notifier.mm);
	old_memcg = set_active_memcg(memcg);
	leaf = hmm_mirror_leaf_alloc(mirror, false,
				     GFP_NOWAIT | __GFP_NOWARN | __GFP_ACCOUNT);
	set_active_memcg(old_memcg);
	mem_cgroup_put(memcg);
	return leaf;
}
EXPORT_SYMBOL_IF_KUNIT(hmm_mirror_cut_leaf_alloc);

/*
 * Turn extent @ext of slot @leaf_index into a full leaf with the same
 * entries, with the mirror locked; NULL if no memory comes without waiting.
 */
static struct hmm_mirror_leaf *hmm_mirror_extent_split(struct hmm_mirror *mirror,
						       unsigned long leaf_index,
						       struct hmm_mirror_leaf *ext)
{
	struct hmm_mirror_leaf *leaf = hmm_mirror_cut_leaf_alloc(mirror);

	if (IS_ERR(leaf))
		return NULL;
	hmm_mirror_leaf_fill(mirror, leaf, ext);
	/* Replaces a present entry: allocates nothing */
	xa_store(&mirror->leaves, leaf_index, leaf, GFP_NOWAIT | __GFP_NOWARN);
	return leaf;
}

/*
 * Get ready to clear [*@start, *@end) (clipped and aligned), with the mirror
 * locked.  An extent the range cuts at one end is shrunk by the unmap; one
 * it cuts in the middle, which would become two, is turned into a full leaf
 * if memory comes without waiting (nothing here may wait for reclaim),
 * else the range is widened to the whole extent.  Only a range inside one
 * leaf can cut an extent in the middle.
 */
static void hmm_mirror_prepare_cut(struct hmm_mirror *mirror,
				   unsigned long *start, unsigned long *end)
{
	unsigned long first = hmm_mirror_index(mirror, *start);
	unsigned long last = hmm_mirror_index(mirror, *end - 1);
	unsigned long leaf_index = first >> HMM_MIRROR_LEAF_SHIFT;
	struct hmm_mirror_leaf *ext;

	if (last >> HMM_MIRROR_LEAF_SHIFT != leaf_index)
		return;
	ext = xa_load(&mirror->leaves, leaf_index);
	if (!ext || !hmm_mirror_is_extent(ext) ||
	    (first & HMM_MIRROR_LEAF_MASK) <= hmm_mirror_extent_slot(ext) ||
	    (last & HMM_MIRROR_LEAF_MASK) >= hmm_mirror_extent_last(ext))
		return;

	if (hmm_mirror_extent_split(mirror, leaf_index, ext))
		return;
	*start = hmm_mirror_addr(mirror, leaf_index,
				 hmm_mirror_extent_slot(ext));
	*end = hmm_mirror_addr(mirror, leaf_index,
			       hmm_mirror_extent_last(ext)) +
	       hmm_mirror_page_size(mirror);
}

/* Unlink the open run; the IOTLB flush is left to the unlink batch */
static void hmm_mirror_unlink_run(struct hmm_mirror *mirror,
				  struct hmm_mirror_run *run,
				  struct dma_iova_unlink_batch *batch)
{
	if (!run->nr)
		return;
	dma_iova_unlink_batched(mirror->dma_dev, &run->leaf->iova,
				hmm_mirror_slot_offset(mirror, run->slot),
				hmm_mirror_slot_offset(mirror, run->nr),
				DMA_BIDIRECTIONAL, 0, batch);
	run->nr = 0;
}

/*
 * Unmap and clear every valid entry of [start, end) (clipped and aligned),
 * with one IOTLB flush, and free the leaves that became empty.  The device
 * must no longer use the range.  Returns the number of entries cleared.
 */
static unsigned long hmm_mirror_unmap_locked(struct hmm_mirror *mirror,
					     unsigned long start,
					     unsigned long end)
{
	unsigned long first = hmm_mirror_index(mirror, start);
	unsigned long last = hmm_mirror_index(mirror, end - 1);
	struct hmm_mirror_leaf *leaf, *freelist = NULL;
	struct hmm_mirror_run run = {};
	struct dma_iova_unlink_batch batch;
	unsigned long leaf_index, cleared = 0;
	bool unlinked = false;

	lockdep_assert_held(&mirror->lock);
	dma_iova_unlink_batch_init(&batch);

	hmm_mirror_for_each_leaf(mirror, first, last, leaf_index, leaf) {
		unsigned int slot, slot_end;

		hmm_mirror_leaf_slots(leaf_index, first, last, &slot, &slot_end);
		if (hmm_mirror_is_extent(leaf)) {
			cleared += hmm_mirror_extent_unmap(mirror, leaf_index,
							   leaf, slot, slot_end);
			continue;
		}
		if (hmm_mirror_is_sparse(leaf)) {
			cleared += hmm_mirror_sparse_unmap(mirror, leaf_index,
							   hmm_mirror_to_sparse(leaf),
							   slot, slot_end);
			continue;
		}

		for (; slot <= slot_end && leaf->nr_valid; slot++) {
			u64 entry = hmm_mirror_leaf_entry(leaf, slot);

			if (!hmm_mirror_entry_valid(entry)) {
				hmm_mirror_unlink_run(mirror, &run, &batch);
				continue;
			}

			switch (mirror->dma_mode) {
			case HMM_MIRROR_DMA_IOVA:
				/* consecutive slots have consecutive IOVAs */
				if (!run.nr) {
					run.leaf = leaf;
					run.slot = slot;
				}
				run.nr++;
				unlinked = true;
				break;
			case HMM_MIRROR_DMA_DIRECT:
				hmm_mirror_unmap_direct(mirror, entry);
				break;
			case HMM_MIRROR_DMA_NONE:
				break;
			}

			hmm_mirror_dirty_page(mirror, entry);
			hmm_mirror_clear_entry(mirror, leaf, slot);
			cleared++;
		}
		hmm_mirror_unlink_run(mirror, &run, &batch);

		if (!leaf->nr_valid) {
			hmm_mirror_leaf_remove(mirror, leaf_index, leaf);
			leaf->next = freelist;
			freelist = leaf;
		}
	}
	cleared += hmm_mirror_groups_unmap(mirror, first, last);

	/* One IOTLB flush for every run of every leaf */
	if (unlinked) {
		dma_iova_unlink_batch_sync(mirror->dma_dev, &batch);
		atomic64_inc(&mirror->stats.dma_flushes);
	}

	while (freelist) {
		leaf = freelist;
		freelist = leaf->next;
		hmm_mirror_leaf_put(mirror, leaf);
	}
	return cleared;
}

/* Is any entry of [start, end) (clipped and aligned) valid? */
static bool hmm_mirror_any_valid(struct hmm_mirror *mirror,
				 unsigned long start, unsigned long end)
{
	unsigned long first = hmm_mirror_index(mirror, start);
	unsigned long last = hmm_mirror_index(mirror, end - 1);
	struct hmm_mirror_leaf *leaf;
	unsigned long leaf_index;

	hmm_mirror_for_each_leaf(mirror, first, last, leaf_index, leaf) {
		unsigned int slot, slot_end;

		hmm_mirror_leaf_slots(leaf_index, first, last, &slot, &slot_end);

		if (hmm_mirror_is_extent(leaf)) {
			if (hmm_mirror_extent_clip(leaf, &slot, &slot_end))
				return true;
			continue;
		}
		if (hmm_mirror_is_sparse(leaf)) {
			unsigned int end;

			if (hmm_mirror_sparse_range(hmm_mirror_to_sparse(leaf),
						    slot, slot_end, &end) < end)
				return true;
			continue;
		}
		if (!leaf->nr_valid)
			continue;
		if (slot == 0 && slot_end == HMM_MIRROR_LEAF_MASK)
			return true;
		for (; slot <= slot_end; slot++)
			if (hmm_mirror_entry_valid(hmm_mirror_leaf_entry(leaf,
									 slot)))
				return true;
	}
	return hmm_mirror_groups_any(mirror, first, last);
}

static bool hmm_mirror_invalidate(struct mmu_interval_notifier *mni,
				  const struct mmu_notifier_range *range,
				  unsigned long cur_seq)
{
	struct hmm_mirror *mirror = container_of(mni, struct hmm_mirror,
						 notifier);
	bool blockable = mmu_notifier_range_blockable(range);
	unsigned long start = range->start, end = range->end;
	unsigned long cleared;
	bool ret = true;

	if (blockable)
		mutex_lock(&mirror->lock);
	else if (!mutex_trylock(&mirror->lock))
		return false;

	/* Any fault that looked at the CPU page tables before now retries. */
	mmu_interval_set_seq(mni, cur_seq);

	if (!hmm_mirror_clip(mirror, &start, &end) ||
	    !hmm_mirror_any_valid(mirror, start, end))
		goto out;

	/* ->invalidate() may sleep */
	if (!blockable) {
		ret = false;
		goto out;
	}

	/* The driver stops the device for all that is cleared */
	hmm_mirror_prepare_cut(mirror, &start, &end);
	mirror->ops->invalidate(mirror, start, end);
	cleared = hmm_mirror_unmap_locked(mirror, start, end);
	atomic64_inc(&mirror->stats.invalidations);
	atomic64_add(cleared, &mirror->stats.pages_invalidated);
out:
	mutex_unlock(&mirror->lock);
	return ret;
}

static const struct mmu_interval_notifier_ops hmm_mirror_mni_ops = {
	.invalidate = hmm_mirror_invalidate,
};

/* -------------------------------------------------------------------------
 * Faulting
 */

/* What a fault needs of one leaf */
enum hmm_mirror_need {
	HMM_MIRROR_NEED_NONE,		/* no present page */
	HMM_MIRROR_NEED_NARROW,		/* a leaf */
	HMM_MIRROR_NEED_WIDE,		/* a wide leaf */
};

/*
 * Does the part [@addr, @end) of one leaf that @range covers have a present
 * page, and (if @check_wide) one only a wide leaf can hold?
 */
static enum hmm_mirror_need hmm_mirror_leaf_need(struct hmm_mirror *mirror,
						 struct hmm_range *range,
						 unsigned long addr,
						 unsigned long end,
						 bool check_wide)
{
	enum hmm_mirror_need need = HMM_MIRROR_NEED_NONE;
	u64 limit = hmm_mirror_narrow_pfn_limit();

	for (; addr < end; addr += hmm_mirror_page_size(mirror)) {
		unsigned long hpfn = range->hmm_pfns[(addr - range->start) >>
						     PAGE_SHIFT];

		if (!(hpfn & HMM_PFN_VALID))
			continue;
		if (!check_wide)
			return HMM_MIRROR_NEED_NARROW;
		if ((hpfn & ~HMM_PFN_FLAGS) >= limit)
			return HMM_MIRROR_NEED_WIDE;
		need = HMM_MIRROR_NEED_NARROW;
	}
	return need;
}

/*
 * Before taking the lock, allocate a leaf and reserve the xarray slot for
 * every leaf that the range needs (it has a present page) and that does not
 * exist yet.  After an attempt met a page that a narrow leaf cannot hold,
 * also allocate a wide leaf for each leaf with such a page, existing or not.
 * This runs unlocked, so hmm_mirror_populate() copes with the table having
 * changed since.
 */
static int hmm_mirror_prepare(struct hmm_mirror *mirror,
			      struct hmm_range *range,
			      struct hmm_mirror_pool *pool)
{
	/* A racing fault may take them first: populate then says -EAGAIN. */
	unsigned int spares = READ_ONCE(mirror->nr_spare_leaves);
	unsigned long addr = range->start;

	while (addr < range->end) {
		unsigned long leaf_index = hmm_mirror_index(mirror, addr) >>
					   HMM_MIRROR_LEAF_SHIFT;
		unsigned long next = hmm_mirror_addr(mirror, leaf_index + 1, 0);
		unsigned long leaf_end = min(next, range->end);
		struct hmm_mirror_leaf *old = xa_load(&mirror->leaves, leaf_index);
		/*
		 * An extent or a sparse leaf is turned into a full leaf if the
		 * fault adds to it.  @old may be freed meanwhile: tell a sparse
		 * leaf by its mark, not by looking into it.
		 */
		bool exists = old && !hmm_mirror_is_extent(old) &&
			      !xa_get_mark(&mirror->leaves, leaf_index,
					   HMM_MIRROR_SPARSE_MARK);
		enum hmm_mirror_need need = HMM_MIRROR_NEED_NONE;
		struct hmm_mirror_leaf *leaf;
		int ret;

		if (!exists || pool->want_wide)
			need = hmm_mirror_leaf_need(mirror, range, addr, leaf_end,
						    pool->want_wide);
		addr = leaf_end;
		if (need == HMM_MIRROR_NEED_NONE ||
		    (exists && need != HMM_MIRROR_NEED_WIDE))
			continue;

		ret = xa_reserve(&mirror->leaves, leaf_index, HMM_MIRROR_GFP);
		if (ret)
			return ret;
		pool->reserved = true;

		/* hmm_mirror_get_leaf() takes a spare before the pool */
		if (need == HMM_MIRROR_NEED_NARROW && spares) {
			spares--;
			continue;
		}
		leaf = hmm_mirror_leaf_alloc(mirror,
					     need == HMM_MIRROR_NEED_WIDE,
					     HMM_MIRROR_GFP);
		if (IS_ERR(leaf))
			return PTR_ERR(leaf);
		if (leaf->wide) {
			leaf->next = pool->wide;
			pool->wide = leaf;
		} else {
			leaf->next = pool->head;
			pool->head = leaf;
		}
	}
	return 0;
}

/* Free a list of leaves that were never in the table */
static void hmm_mirror_free_list(struct hmm_mirror *mirror,
				 struct hmm_mirror_leaf **head)
{
	struct hmm_mirror_leaf *leaf;

	while (*head) {
		leaf = *head;
		*head = leaf->next;
		hmm_mirror_leaf_free(mirror, leaf);
	}
}

/* Free what a fault did not use; called with or without the lock */
static void hmm_mirror_pool_release(struct hmm_mirror *mirror,
				    struct hmm_range *range,
				    struct hmm_mirror_pool *pool)
{
	unsigned long index, last;

	hmm_mirror_free_list(mirror, &pool->head);
	hmm_mirror_free_list(mirror, &pool->wide);

	if (!pool->reserved)
		return;
	/* Only drops slots that are still reserved, not stored leaves. */
	index = hmm_mirror_index(mirror, range->start) >> HMM_MIRROR_LEAF_SHIFT;
	last = hmm_mirror_index(mirror, range->end - 1) >> HMM_MIRROR_LEAF_SHIFT;
	for (; index <= last; index++)
		xa_release(&mirror->leaves, index);
	pool->reserved = false;
}

/*
 * Find or insert the leaf @leaf_index, with the mirror locked: a new leaf is
 * @wide if the fault asked for it (hmm_mirror_prepare() allocated it then).
 * An extent or a sparse leaf there, or entries of the leaf in its group,
 * become a full leaf with the same entries.
 */
static struct hmm_mirror_leaf *hmm_mirror_get_leaf(struct hmm_mirror *mirror,
						   unsigned long leaf_index,
						   struct hmm_mirror_pool *pool,
						   bool wide)
{
	struct hmm_mirror_leaf **from = NULL, *leaf, *old;

	old = xa_load(&mirror->leaves, leaf_index);
	if (old && hmm_mirror_is_full(old))
		return old;

	leaf = NULL;
	if (!wide && !old)
		leaf = hmm_mirror_leaf_get_spare(mirror);
	if (!leaf) {
		from = wide ? &pool->wide : &pool->head;
		leaf = *from;
		/* Raced with an invalidation or a fault: start over. */
		if (!leaf)
			return ERR_PTR(-EAGAIN);
	}
	/* Does not allocate unless our reservation was dropped meanwhile */
	if (xa_is_err(xa_store(&mirror->leaves, leaf_index, leaf,
			       GFP_NOWAIT | __GFP_NOWARN))) {
		if (!from)
			hmm_mirror_leaf_put(mirror, leaf);
		return ERR_PTR(-EAGAIN);
	}
	if (from) {
		*from = leaf->next;
		leaf->next = NULL;
	}
	if (!old) {
		/* A leaf whose entries its group held is counted already */
		if (!hmm_mirror_group_take(mirror, leaf_index, leaf))
			mirror->nr_leaves++;
		return leaf;
	}
	/* Replaced present entries: the table slot is still counted */
	hmm_mirror_leaf_fill(mirror, leaf, old);
	if (hmm_mirror_is_sparse(old)) {
		xa_clear_mark(&mirror->leaves, leaf_index,
			      HMM_MIRROR_SPARSE_MARK);
		kfree(old);
	}
	return leaf;
}

/*
 * The first valid slot of narrow leaf @leaf if its valid entries form one
 * run (see HMM_MIRROR_EXTENTS), else -1.
 */
static int hmm_mirror_leaf_run(struct hmm_mirror *mirror,
			       struct hmm_mirror_leaf *leaf)
{
	u32 *entries = leaf->entries;
	u64 step = hmm_mirror_narrow_step(mirror);
	unsigned int slot = 0, i;

	while (!(entries[slot] & HMM_MIRROR_ENTRY_VALID))
		slot++;
	if (slot + leaf->nr_valid > HMM_MIRROR_LEAF_ENTRIES)
		return -1;
	for (i = 1; i < leaf->nr_valid; i++)
		if (entries[slot + i] != entries[slot] + i * step)
			return -1;
	return slot;
}

/*
 * A sparse leaf holding the valid entries of narrow leaf @leaf, which are
 * cleared; NULL if there are more than HMM_MIRROR_SPARSE_MAX or no memory
 * comes without waiting (the mirror is locked: the full leaf stays).
 */
static struct hmm_mirror_sparse *hmm_mirror_sparse_from(struct hmm_mirror_leaf *leaf)
{
	int class = hmm_mirror_class_of(leaf->nr_valid);
	struct hmm_mirror_sparse *sp;

	if (leaf->nr_valid > HMM_MIRROR_SPARSE_MAX)
		return NULL;
	sp = hmm_mirror_class_alloc(class);
	if (!sp)
		return NULL;
	sp->kind = HMM_MIRROR_LEAF_SPARSE;
	sp->class = class;
	sp->nr = hmm_mirror_leaf_pack(leaf, 0, sp->slot,
				      hmm_mirror_sparse_narrow(sp));
	memset(leaf->entries, 0, hmm_mirror_leaf_bytes(false));
	leaf->nr_valid = 0;
	return sp;
}

/* Store the valid entries of @leaf, one run from @slot, as an extent */
static void hmm_mirror_leaf_to_extent(struct hmm_mirror *mirror,
				      unsigned long leaf_index,
				      struct hmm_mirror_leaf *leaf, int slot)
{
	/* Replaces a present entry: allocates nothing */
	xa_store(&mirror->leaves, leaf_index,
		 hmm_mirror_extent_make(slot, leaf->nr_valid,
					((u32 *)leaf->entries)[slot]),
		 GFP_NOWAIT | __GFP_NOWARN);
	memset((u32 *)leaf->entries + slot, 0, leaf->nr_valid * sizeof(u32));
	leaf->nr_valid = 0;
}

/* Store the valid entries of @leaf as a sparse leaf; false if they cannot */
static bool hmm_mirror_leaf_to_sparse(struct hmm_mirror *mirror,
				      unsigned long leaf_index,
				      struct hmm_mirror_leaf *leaf)
{
	struct hmm_mirror_sparse *sp = hmm_mirror_sparse_from(leaf);

	if (!sp)
		return false;
	xa_store(&mirror->leaves, leaf_index, sp, GFP_NOWAIT | __GFP_NOWARN);
	xa_set_mark(&mirror->leaves, leaf_index, HMM_MIRROR_SPARSE_MARK);
	return true;
}

/*
 * Keep a narrow leaf in less memory if it can be, with the mirror locked:
 * as an extent if its valid entries form one run of several pages (see
 * HMM_MIRROR_EXTENTS), else in its group if that has room, else as an
 * extent of its one page or as a sparse leaf if they are few.  The leaf
 * goes back to the fault's pool, which frees what the fault did not use.
 */
static void hmm_mirror_leaf_compact(struct hmm_mirror *mirror,
				    unsigned long leaf_index,
				    struct hmm_mirror_leaf *leaf,
				    struct hmm_mirror_pool *pool)
{
	int slot;

	if (!leaf->nr_valid || leaf->wide ||
	    mirror->dma_mode == HMM_MIRROR_DMA_IOVA)
		return;
	slot = HMM_MIRROR_EXTENTS ? hmm_mirror_leaf_run(mirror, leaf) : -1;
	if (slot >= 0 && leaf->nr_valid > 1) {
		hmm_mirror_leaf_to_extent(mirror, leaf_index, leaf, slot);
	} else if (!hmm_mirror_group_put(mirror, leaf_index, leaf)) {
		if (slot >= 0)
			hmm_mirror_leaf_to_extent(mirror, leaf_index, leaf, slot);
		else if (!hmm_mirror_leaf_to_sparse(mirror, leaf_index, leaf))
			return;
	}
	leaf->next = pool->head;
	pool->head = leaf;
}

/*
 * Replace narrow leaf @leaf of the table, with the mirror locked, by a wide
 * leaf of the fault's pool that holds the same entries in the same IOVA
 * range (the device may be using them).  No run of the fault may be open in
 * @leaf.  Without a wide leaf in the pool the fault starts over and
 * allocates one first.
 */
static struct hmm_mirror_leaf *hmm_mirror_leaf_widen(struct hmm_mirror *mirror,
						     unsigned long leaf_index,
						     struct hmm_mirror_leaf *leaf,
						     struct hmm_mirror_pool *pool)
{
	struct hmm_mirror_leaf *wide = pool->wide;
	unsigned int slot;

	if (!wide) {
		pool->want_wide = true;
		return ERR_PTR(-EAGAIN);
	}
	pool->wide = wide->next;
	wide->next = NULL;

	for (slot = 0; slot < HMM_MIRROR_LEAF_ENTRIES; slot++)
		hmm_mirror_leaf_set_entry(wide, slot,
					  hmm_mirror_leaf_entry(leaf, slot));
	wide->nr_valid = leaf->nr_valid;
	swap(wide->iova, leaf->iova);
	/* Replaces a present entry: allocates nothing */
	xa_store(&mirror->leaves, leaf_index, wide, GFP_NOWAIT | __GFP_NOWARN);

	/* Nothing is linked in the IOVA range @leaf got in exchange */
	memset(leaf->entries, 0, hmm_mirror_leaf_bytes(leaf->wide));
	leaf->nr_valid = 0;
	hmm_mirror_leaf_put(mirror, leaf);
	return wide;
}

/*
 * Make the links of the batch's sync leaf visible to the device: one IOTLB
 * sync for all the runs a fault linked into one leaf.
 */
static int hmm_mirror_sync_leaf(struct hmm_mirror *mirror,
				struct hmm_mirror_batch *batch)
{
	struct hmm_mirror_leaf *leaf = batch->sync_leaf;

	if (!leaf)
		return 0;
	batch->sync_leaf = NULL;
	batch->syncs++;
	return dma_iova_sync(mirror->dma_dev, &leaf->iova, batch->sync_start,
			     batch->sync_end - batch->sync_start);
}

/*
 * Map the open run into its leaf's IOVA range.  On failure its entries are
 * cleared again, and the leaf freed if that left it empty (nothing of the
 * run is mapped then, and nothing else in the leaf: it is not the sync
 * leaf).  The links of the previous leaf are synced first, so that a fault
 * costs one IOTLB sync per leaf it maps pages in.
 */
static int hmm_mirror_link_run(struct hmm_mirror *mirror,
			       struct hmm_mirror_batch *batch)
{
	struct hmm_mirror_run *run = &batch->run;
	struct hmm_mirror_leaf *leaf = run->leaf;
	size_t offset = hmm_mirror_slot_offset(mirror, run->slot);
	size_t size = hmm_mirror_slot_offset(mirror, run->nr);
	unsigned int i;
	int ret = 0;

	if (!run->nr)
		return 0;

	if (batch->sync_leaf != leaf)
		ret = hmm_mirror_sync_leaf(mirror, batch);
	if (!ret)
		ret = dma_iova_link(mirror->dma_dev, &leaf->iova, run->phys,
				    offset, size, DMA_BIDIRECTIONAL, 0);
	if (ret) {
		for (i = 0; i < run->nr; i++)
			hmm_mirror_clear_entry(mirror, leaf, run->slot + i);
		if (!leaf->nr_valid) {
			hmm_mirror_leaf_remove(mirror, run->leaf_index, leaf);
			hmm_mirror_leaf_put(mirror, leaf);
		}
		run->nr = 0;
		return ret;
	}
	batch->maps++;

	if (batch->sync_leaf != leaf) {
		batch->sync_leaf = leaf;
		batch->sync_start = offset;
		batch->sync_end = offset + size;
	} else {
		batch->sync_start = min(batch->sync_start, offset);
		batch->sync_end = max(batch->sync_end, offset + size);
	}
	run->nr = 0;
	return 0;
}

/*
 * Free the empty leaves of [start, end) that a failed fault inserted.  An
 * empty leaf has nothing mapped in its IOVA range: its entries were either
 * unmapped with a flush or never linked.
 */
static void hmm_mirror_prune(struct hmm_mirror *mirror, unsigned long start,
			     unsigned long end)
{
	unsigned long first = hmm_mirror_index(mirror, start);
	unsigned long last = hmm_mirror_index(mirror, end - 1);
	struct hmm_mirror_leaf *leaf;
	unsigned long leaf_index;

	hmm_mirror_for_each_leaf(mirror, first, last, leaf_index, leaf) {
		if (!hmm_mirror_is_full(leaf) || leaf->nr_valid)
			continue;
		hmm_mirror_leaf_remove(mirror, leaf_index, leaf);
		hmm_mirror_leaf_put(mirror, leaf);
	}
}

/* DMA-map the page of a new entry, or add it to the open run */
static int hmm_mirror_map_page(struct hmm_mirror *mirror,
			       struct hmm_mirror_batch *batch,
			       struct hmm_mirror_leaf *leaf,
			       unsigned long leaf_index, unsigned int slot,
			       phys_addr_t phys)
{
	struct hmm_mirror_run *run = &batch->run;
	struct device *dev = mirror->dma_dev;
	dma_addr_t dma;
	int ret;

	switch (mirror->dma_mode) {
	case HMM_MIRROR_DMA_IOVA:
		if (run->nr && run->leaf == leaf && run->slot + run->nr == slot &&
		    run->phys + ((phys_addr_t)run->nr << mirror->page_shift) ==
		    phys) {
			run->nr++;
			return 0;
		}
		ret = hmm_mirror_link_run(mirror, batch);
		if (ret)
			return ret;
		run->leaf = leaf;
		run->leaf_index = leaf_index;
		run->slot = slot;
		run->phys = phys;
		run->nr = 1;
		return 0;
	case HMM_MIRROR_DMA_DIRECT:
		dma = dma_map_page(dev, pfn_to_page(PHYS_PFN(phys)), 0,
				   hmm_mirror_page_size(mirror), DMA_BIDIRECTIONAL);
		if (dma_mapping_error(dev, dma))
			return -ENOMEM;
		batch->maps++;
		/* Checked at init: the device does not bounce */
		if (WARN_ON_ONCE(dma != phys_to_dma(dev, phys))) {
			dma_unmap_page(dev, dma, hmm_mirror_page_size(mirror),
				       DMA_BIDIRECTIONAL);
			return -EOPNOTSUPP;
		}
		return 0;
	case HMM_MIRROR_DMA_NONE:
		break;
	}
	return 0;
}

/*
 * Close a fault's batch: link the open run and make what is linked in the
 * last leaf visible to the device (the leaves before were synced when the
 * fault moved on from them).
 */
static int hmm_mirror_finish_batch(struct hmm_mirror *mirror,
				   struct hmm_mirror_batch *batch)
{
	int ret, err;

	if (mirror->dma_mode != HMM_MIRROR_DMA_IOVA)
		return 0;

	ret = hmm_mirror_link_run(mirror, batch);
	err = hmm_mirror_sync_leaf(mirror, batch);
	return ret ?: err;
}

/*
 * Must leaf @leaf_index be created wide?  Only asked after an attempt met a
 * page that a narrow leaf cannot hold: the answer is then the one
 * hmm_mirror_prepare() gave when it allocated the leaves.
 */
static bool hmm_mirror_populate_wide(struct hmm_mirror *mirror,
				     struct hmm_range *range,
				     struct hmm_mirror_pool *pool,
				     unsigned long leaf_index)
{
	unsigned long start = hmm_mirror_addr(mirror, leaf_index, 0);
	unsigned long end = hmm_mirror_addr(mirror, leaf_index + 1, 0);

	if (!pool->want_wide)
		return false;
	return hmm_mirror_leaf_need(mirror, range, max(start, range->start),
				    min(end, range->end), true) ==
	       HMM_MIRROR_NEED_WIDE;
}

/*
 * Fill the entries of @range from the hmm_range_fault() result, with the
 * mirror locked and the notifier sequence checked.  Entries made valid stay
 * valid (and mapped) even when an error stops the loop.
 *
 * This loop runs once per page of every fault, so it does as little as it
 * can per page: the leaf is looked up once per leaf, not per entry, and the
 * physical address is taken straight from the hmm pfn.
 */
static int hmm_mirror_populate(struct hmm_mirror *mirror,
			       struct hmm_range *range, unsigned int flags,
			       struct hmm_mirror_pool *pool)
{
	unsigned long pgsize = hmm_mirror_page_size(mirror);
	unsigned long step = pgsize >> PAGE_SHIFT;
	unsigned long npfns = (range->end - range->start) >> PAGE_SHIFT;
	unsigned long index = hmm_mirror_index(mirror, range->start);
	unsigned long nr_valid = mirror->nr_valid;
	u64 write = flags & HMM_MIRROR_FAULT_WRITE ? HMM_MIRROR_ENTRY_WRITE : 0;
	struct hmm_mirror_batch batch = {};
	struct hmm_mirror_leaf *leaf = NULL;
	unsigned long leaf_index = 0, i;
	int ret = 0, err;

	for (i = 0; i < npfns; i += step, index++) {
		unsigned long hpfn = range->hmm_pfns[i];
		unsigned int slot = index & HMM_MIRROR_LEAF_MASK;
		phys_addr_t phys;
		u64 eflags, entry;

		if (!(hpfn & HMM_PFN_VALID) || (hpfn & HMM_PFN_ERROR)) {
			if (flags & HMM_MIRROR_FAULT_SNAPSHOT)
				continue;
			/* hmm_range_fault() succeeded: cannot happen */
			WARN_ON_ONCE(1);
			ret = -EFAULT;
			break;
		}

		phys = PFN_PHYS(hpfn & ~HMM_PFN_FLAGS);
		/* One entry covers a whole mirror page: it must be mapped so */
		if (step > 1 &&
		    (hmm_pfn_to_map_order(hpfn) + PAGE_SHIFT < mirror->page_shift ||
		     !IS_ALIGNED(phys, pgsize))) {
			ret = -EINVAL;
			break;
		}

		eflags = HMM_MIRROR_ENTRY_VALID;
		if (hpfn & HMM_PFN_WRITE)
			eflags |= write;

		if (!leaf || index >> HMM_MIRROR_LEAF_SHIFT != leaf_index) {
			if (leaf)
				hmm_mirror_leaf_compact(mirror, leaf_index,
							leaf, pool);
			leaf_index = index >> HMM_MIRROR_LEAF_SHIFT;
			leaf = hmm_mirror_get_leaf(mirror, leaf_index, pool,
						   hmm_mirror_populate_wide(mirror, range,
									    pool, leaf_index));
			if (IS_ERR(leaf)) {
				ret = PTR_ERR(leaf);
				break;
			}
		}

		entry = hmm_mirror_leaf_entry(leaf, slot);
		if (hmm_mirror_entry_valid(entry)) {
			/*
			 * No invalidation since the entry was made: the CPU
			 * still maps the same page.  Only ever upgrade.
			 */
			VM_WARN_ON_ONCE(hmm_mirror_entry_phys(entry) != phys);
			hmm_mirror_leaf_set_entry(leaf, slot, entry | eflags);
			continue;
		}

		if (unlikely(!hmm_mirror_leaf_fits(leaf, phys))) {
			/* The batch's open run and sync may be in @leaf */
			ret = hmm_mirror_finish_batch(mirror, &batch);
			if (ret)
				break;
			leaf = hmm_mirror_leaf_widen(mirror, leaf_index, leaf,
						     pool);
			if (IS_ERR(leaf)) {
				ret = PTR_ERR(leaf);
				break;
			}
		}

		ret = hmm_mirror_map_page(mirror, &batch, leaf, leaf_index,
					  slot, phys);
		if (ret)
			break;
		hmm_mirror_leaf_set_entry(leaf, slot,
					  hmm_mirror_entry_make(phys, eflags));
		leaf->nr_valid++;
		mirror->nr_valid++;
	}

	err = hmm_mirror_finish_batch(mirror, &batch);
	if (!ret)
		ret = err;
	if (ret)
		hmm_mirror_prune(mirror, range->start, range->end);
	else if (leaf)
		hmm_mirror_leaf_compact(mirror, leaf_index, leaf, pool);
	atomic64_add(batch.maps, &mirror->stats.dma_maps);
	atomic64_add(batch.syncs, &mirror->stats.dma_syncs);
	atomic64_add(mirror->nr_valid - nr_valid, &mirror->stats.pages_faulted);
	return ret;
}

/*
 * Runs between hmm_range_fault() and taking the lock, where a racing
 * invalidation must make the fault start over: KUnit replaces it with
 * kunit_activate_static_stub() to make one happen there.  Does nothing
 * otherwise.
 */
VISIBLE_IF_KUNIT void hmm_mirror_fault_test_hook(struct hmm_mirror *mirror)
{
	KUNIT_STATIC_STUB_REDIRECT(hmm_mirror_fault_test_hook, mirror);
}
EXPORT_SYMBOL_IF_KUNIT(hmm_mirror_fault_test_hook);

/**
 * hmm_mirror_fault() - mirror part of the address space, and lock the mirror
 * @mirror: the mirror
 * @addr: start of the range to mirror
 * @len: length of the range
 * @flags: HMM_MIRROR_FAULT_WRITE to get writable entries (and have the CPU
 *	page tables made writable first), HMM_MIRROR_FAULT_SNAPSHOT to mirror
 *	only the pages the CPU already maps, without faulting anything
 *
 * Fault in the CPU pages of [@addr, @addr + @len), widened to whole mirror
 * pages, DMA-map the pages that were not mirrored yet in one batch and fill
 * their entries.  Entries that are already valid are kept; a write fault only
 * adds write permission to them.  A new entry is writable only if
 * %HMM_MIRROR_FAULT_WRITE was asked and the CPU maps the page writable
 * (always the case for a write fault that succeeds).  In snapshot mode pages
 * the CPU does not map are skipped, and this is not an error.
 *
 * The CPU page tables are read without the mirror lock; if an invalidation
 * hits the range meanwhile, the fault starts over (counted in stats.retries),
 * for up to %HMM_RANGE_DEFAULT_TIMEOUT milliseconds.
 *
 * Context: process context, may sleep; takes the mmap lock of the mirrored
 * mm, so the caller must not hold it, nor the mirror lock.
 * Return: 0 with the mirror LOCKED: the entries of the range are valid until
 * hmm_mirror_unlock(), which the caller calls once its device page table is
 * updated.  On failure a negative errno, with the mirror not locked:
 * -EINVAL for a zero or overflowing @len, unknown @flags, or pages mapped
 * with a smaller size than the mirror page size; -EFAULT if the range is not
 * inside the mirror or not mapped by the CPU; -EPERM for a write fault on
 * read-only memory; -ESRCH if the mm has exited; -ENOMEM; -EBUSY if
 * invalidations kept racing with the fault until the time-out.
 */
int hmm_mirror_fault(struct hmm_mirror *mirror, unsigned long addr,
		     unsigned long len, unsigned int flags)
{
	struct hmm_range range = { .notifier = &mirror->notifier };
	struct mm_struct *mm = mirror->notifier.mm;
	struct mem_cgroup *memcg, *old_memcg;
	struct hmm_mirror_pool pool = {};
	unsigned long end, timeout;
	bool locked = false;
	int ret;

	if (!len || check_add_overflow(addr, len, &end) ||
	    (flags & ~(HMM_MIRROR_FAULT_WRITE | HMM_MIRROR_FAULT_SNAPSHOT))) {
		ret = -EINVAL;
		goto out;
	}
	if (addr < mirror->start || end > mirror->end) {
		ret = -EFAULT;
		goto out;
	}

	range.start = ALIGN_DOWN(addr, hmm_mirror_page_size(mirror));
	range.end = ALIGN(end, hmm_mirror_page_size(mirror));
	if (!(flags & HMM_MIRROR_FAULT_SNAPSHOT)) {
		range.default_flags = HMM_PFN_REQ_FAULT;
		if (flags & HMM_MIRROR_FAULT_WRITE)
			range.default_flags |= HMM_PFN_REQ_WRITE;
	}
	/*
	 * What the mirror allocates for the mm is charged to the mm's memory
	 * cgroup, whichever task faults for the device (often a kernel
	 * worker): a process cannot make the kernel hold memory for it beyond
	 * its own limit.
	 */
	memcg = get_mem_cgroup_from_mm(mm);
	old_memcg = set_active_memcg(memcg);
	range.hmm_pfns = kvmalloc_array((range.end - range.start) >> PAGE_SHIFT,
					sizeof(*range.hmm_pfns),
					HMM_MIRROR_GFP);
	if (!range.hmm_pfns) {
		ret = -ENOMEM;
		goto out_memcg;
	}

	if (!mmget_not_zero(mm)) {
		ret = -ESRCH;
		goto out_free;
	}

	timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	for (;;) {
		/* Leaves allocated for an attempt that failed may not fit. */
		hmm_mirror_pool_release(mirror, &range, &pool);
		if (time_after(jiffies, timeout)) {
			ret = -EBUSY;
			break;
		}

		range.notifier_seq = mmu_interval_read_begin(&mirror->notifier);
		mmap_read_lock(mm);
		ret = hmm_range_fault(&range);
		mmap_read_unlock(mm);
		if (ret == -EBUSY)
			continue;
		if (ret)
			break;

		ret = hmm_mirror_prepare(mirror, &range, &pool);
		if (ret)
			break;

		hmm_mirror_fault_test_hook(mirror);

		mutex_lock(&mirror->lock);
		if (mmu_interval_read_retry(&mirror->notifier,
					    range.notifier_seq)) {
			mutex_unlock(&mirror->lock);
			atomic64_inc(&mirror->stats.retries);
			continue;
		}

		ret = hmm_mirror_populate(mirror, &range, flags, &pool);
		if (!ret) {
			locked = true;
			break;
		}
		mutex_unlock(&mirror->lock);
		/* -EAGAIN: the table changed under us, allocate again */
		if (ret != -EAGAIN)
			break;
	}

	hmm_mirror_pool_release(mirror, &range, &pool);
	/* The last reference may tear the mm down, which needs our lock. */
	mmput_async(mm);
out_free:
	kvfree(range.hmm_pfns);
out_memcg:
	set_active_memcg(old_memcg);
	mem_cgroup_put(memcg);
out:
	if (locked)
		atomic64_inc(&mirror->stats.faults);
	else
		atomic64_inc(&mirror->stats.fault_errors);
	return ret;
}
EXPORT_SYMBOL_GPL(hmm_mirror_fault);

/* -------------------------------------------------------------------------
 * Set-up and tear-down
 */

/*
 * Can @dev use one IOVA range per leaf, each mirror page of @page_shift
 * linked on its own?  dma_iova_link() wants every link but the first to
 * start on a merge boundary; then the IOVA-based API must work for @dev at
 * all, which only trying tells.
 */
static bool hmm_mirror_can_use_iova(struct device *dev,
				    unsigned int page_shift)
{
	struct dma_iova_state state;

	if (dma_get_merge_boundary(dev) > (1UL << page_shift) - 1)
		return false;
	if (!dma_iova_try_alloc(dev, &state, 0, 1UL << page_shift))
		return false;
	dma_iova_free(dev, &state);
	return true;
}

static int hmm_mirror_pick_dma_mode(struct hmm_mirror *mirror,
				    struct device *dma_dev,
				    unsigned int page_shift)
{
	if (!dma_dev)
		mirror->dma_mode = HMM_MIRROR_DMA_NONE;
	else if (hmm_mirror_can_use_iova(dma_dev, page_shift))
		mirror->dma_mode = HMM_MIRROR_DMA_IOVA;
	else if (dma_can_map_phys_direct(dma_dev))
		mirror->dma_mode = HMM_MIRROR_DMA_DIRECT;
	else
		return -EOPNOTSUPP;
	mirror->dma_dev = dma_dev;
	return 0;
}

/**
 * hmm_mirror_init() - start mirroring a range of an address space
 * @mirror: the mirror to initialise (its previous content is ignored)
 * @mm: the address space
 * @start: start of the range, aligned to the mirror page size
 * @length: length of the range, aligned to the mirror page size
 * @page_shift: log2 of the mirror page size: PAGE_SHIFT, or up to PUD_SHIFT
 *	when the whole range is mapped by huge pages of at least that size
 * @dma_dev: the device to DMA-map pages for, or NULL for a device that
 *	reaches memory through the CPU (the DMA address is then the physical
 *	address)
 * @ops: driver callbacks; ->invalidate is mandatory
 *
 * No page is mirrored until hmm_mirror_fault() is called.  With a @dma_dev
 * translated by iommu-dma every leaf of the mirror page table gets its own
 * IOVA range; with a dma-direct @dma_dev the DMA address of a page is
 * phys_to_dma() of it.  The mirror holds a reference on the mm_struct (not
 * on the address space) until hmm_mirror_destroy().
 *
 * Context: process context, may sleep; takes the mmap lock of @mm.
 * Return: 0 on success; -EINVAL for bad arguments; -EOPNOTSUPP if @dma_dev
 * would need bounce buffering or uses DMA ops other than dma-direct and
 * iommu-dma; -ENOMEM.
 */
int hmm_mirror_init(struct hmm_mirror *mirror, struct mm_struct *mm,
		    unsigned long start, unsigned long length,
		    unsigned int page_shift, struct device *dma_dev,
		    const struct hmm_mirror_ops *ops)
{
	unsigned long end;
	int ret;

	if (!mm || !ops || !ops->invalidate)
		return -EINVAL;
	if (page_shift < PAGE_SHIFT || page_shift > PUD_SHIFT)
		return -EINVAL;
	if (!length || !IS_ALIGNED(start | length, 1UL << page_shift))
		return -EINVAL;
	if (check_add_overflow(start, length, &end) || end > mm->task_size)
		return -EINVAL;

	memset(mirror, 0, sizeof(*mirror));
	ret = hmm_mirror_pick_dma_mode(mirror, dma_dev, page_shift);
	if (ret)
		return ret;
	mirror->ops = ops;
	mirror->start = start;
	mirror->end = end;
	mirror->page_shift = page_shift;
	mutex_init(&mirror->lock);
	/* charged to the memory cgroup of the faulting context */
	xa_init_flags(&mirror->leaves, XA_FLAGS_ACCOUNT);
	xa_init_flags(&mirror->groups, XA_FLAGS_ACCOUNT);
	if (mirror->dma_mode != HMM_MIRROR_DMA_IOVA)
		hmm_mirror_classes_init();

	/*
	 * The lock is taken by invalidations, which reclaim can run: teach
	 * lockdep that nothing may allocate with GFP_KERNEL under it.
	 */
	if (IS_ENABLED(CONFIG_LOCKDEP)) {
		fs_reclaim_acquire(GFP_KERNEL);
		might_lock(&mirror->lock);
		fs_reclaim_release(GFP_KERNEL);
	}

	ret = mmu_interval_notifier_insert(&mirror->notifier, mm, start,
					   length, &hmm_mirror_mni_ops);
	if (ret) {
		mutex_destroy(&mirror->lock);
		return ret;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(hmm_mirror_init);

/**
 * hmm_mirror_init_whole() - start mirroring a whole address space
 * @mirror: the mirror to initialise
 * @mm: the address space
 * @dma_dev: the device to DMA-map pages for, or NULL (see hmm_mirror_init())
 * @ops: driver callbacks
 *
 * Mirror all of @mm's user addresses with PAGE_SIZE entries, for implicit
 * on-demand paging.  Only the leaves of the pages actually faulted are
 * allocated.  Every change of @mm's page tables calls the invalidate
 * callback, which returns quickly when no entry is affected.
 *
 * Context: process context, may sleep; takes the mmap lock of @mm.
 * Return: as hmm_mirror_init().
 */
int hmm_mirror_init_whole(struct hmm_mirror *mirror, struct mm_struct *mm,
			  struct device *dma_dev,
			  const struct hmm_mirror_ops *ops)
{
	if (!mm)
		return -EINVAL;
	return hmm_mirror_init(mirror, mm, 0, mm->task_size, PAGE_SHIFT,
			       dma_dev, ops);
}
EXPORT_SYMBOL_GPL(hmm_mirror_init_whole);

/**
 * hmm_mirror_destroy() - stop mirroring and free everything
 * @mirror: the mirror
 *
 * Unmap every page still mirrored (dirtying them as an invalidation does,
 * but without calling ->invalidate()), remove the notifier and free the
 * mirror page table.  The device must no longer use the mirror, and no
 * hmm_mirror_fault() may be running or start.
 *
 * Context: process context, may sleep; must not hold the mirror lock.
 */
void hmm_mirror_destroy(struct hmm_mirror *mirror)
{
	struct hmm_mirror_leaf *leaf;

	/* Unmap while the CPU still maps the pages, i.e. before the removal */
	mutex_lock(&mirror->lock);
	hmm_mirror_unmap_locked(mirror, mirror->start, mirror->end);
	while ((leaf = hmm_mirror_leaf_get_spare(mirror)))
		hmm_mirror_leaf_free(mirror, leaf);
	mutex_unlock(&mirror->lock);

	mmu_interval_notifier_remove(&mirror->notifier);

	WARN_ON(mirror->nr_valid || mirror->nr_leaves ||
		!xa_empty(&mirror->groups));
	xa_destroy(&mirror->leaves);
	xa_destroy(&mirror->groups);
	mutex_destroy(&mirror->lock);
}
EXPORT_SYMBOL_GPL(hmm_mirror_destroy);

/* -------------------------------------------------------------------------
 * Accessors for the driver
 */

/**
 * hmm_mirror_unmap() - unmap part of a mirror on the driver's initiative
 * @mirror: the mirror, locked
 * @start: start of the range
 * @end: end of the range (exclusive)
 *
 * Clear the entries of [@start, @end) (clipped to the mirror, widened to
 * whole mirror pages), unmapping their DMA with one IOTLB flush and dirtying
 * the pages the device may have written, as an invalidation does.  The
 * driver must already have stopped the device from using the range.  The
 * pages are faulted again by the next hmm_mirror_fault() on them.
 *
 * A run of entries that the mirror keeps as one (an extent, see
 * Documentation/mm/hmm_mirror.rst) and that the range cuts in two is split
 * with memory allocated without waiting; if there is none, the run is
 * cleared whole, and the ->invalidate() op is first called for the parts of
 * it outside the range, as for an invalidation.
 *
 * Context: the mirror lock is held.
 */
void hmm_mirror_unmap(struct hmm_mirror *mirror, unsigned long start,
		      unsigned long end)
{
	unsigned long wstart, wend;

	lockdep_assert_held(&mirror->lock);

	if (!hmm_mirror_clip(mirror, &start, &end))
		return;
	wstart = start;
	wend = end;
	hmm_mirror_prepare_cut(mirror, &wstart, &wend);
	if (wstart < start)
		mirror->ops->invalidate(mirror, wstart, start);
	if (wend > end)
		mirror->ops->invalidate(mirror, end, wend);
	hmm_mirror_unmap_locked(mirror, wstart, wend);
}
EXPORT_SYMBOL_GPL(hmm_mirror_unmap);

/**
 * hmm_mirror_entry() - read the entry of one mirror page
 * @mirror: the mirror, locked
 * @addr: any address in the mirror page
 *
 * Context: the mirror lock is held.
 * Return: the entry, or 0 if @addr is outside the mirror or not mirrored.
 */
u64 hmm_mirror_entry(struct hmm_mirror *mirror, unsigned long addr)
{
	struct hmm_mirror_leaf *leaf;
	unsigned long index;

	lockdep_assert_held(&mirror->lock);

	if (addr < mirror->start || addr >= mirror->end)
		return 0;
	index = hmm_mirror_index(mirror, addr);
	leaf = xa_load(&mirror->leaves, index >> HMM_MIRROR_LEAF_SHIFT);
	if (!leaf)
		return hmm_mirror_group_entry(mirror, index);
	return hmm_mirror_slot_entry(mirror, leaf, index & HMM_MIRROR_LEAF_MASK);
}
EXPORT_SYMBOL_GPL(hmm_mirror_entry);

static dma_addr_t hmm_mirror_dma(struct hmm_mirror *mirror,
				 struct hmm_mirror_leaf *leaf,
				 unsigned int slot, u64 entry)
{
	phys_addr_t phys = hmm_mirror_entry_phys(entry);

	switch (mirror->dma_mode) {
	case HMM_MIRROR_DMA_IOVA:
		return hmm_mirror_leaf_iova(mirror, leaf, slot);
	case HMM_MIRROR_DMA_DIRECT:
		return phys_to_dma(mirror->dma_dev, phys);
	case HMM_MIRROR_DMA_NONE:
		break;
	}
	return phys;
}

/**
 * hmm_mirror_entry_dma() - DMA address of a mirrored byte
 * @mirror: the mirror, locked
 * @addr: the virtual address
 * @entry: the entry of @addr's mirror page, from hmm_mirror_entry()
 *
 * Context: the mirror lock is held.
 * Return: the address the device uses to reach @addr: the IOVA, the
 * dma-direct address, or the physical address for a mirror without DMA
 * device; DMA_MAPPING_ERROR if @entry is not valid.
 */
dma_addr_t hmm_mirror_entry_dma(struct hmm_mirror *mirror, unsigned long addr,
				u64 entry)
{
	unsigned long offset = addr & (hmm_mirror_page_size(mirror) - 1);
	struct hmm_mirror_leaf *leaf = NULL;
	unsigned long index;

	lockdep_assert_held(&mirror->lock);

	if (!hmm_mirror_entry_valid(entry) || addr < mirror->start ||
	    addr >= mirror->end)
		return DMA_MAPPING_ERROR;

	index = hmm_mirror_index(mirror, addr);
	if (mirror->dma_mode == HMM_MIRROR_DMA_IOVA) {
		leaf = xa_load(&mirror->leaves, index >> HMM_MIRROR_LEAF_SHIFT);
		if (WARN_ON_ONCE(!leaf))
			return DMA_MAPPING_ERROR;
	}
	return hmm_mirror_dma(mirror, leaf, index & HMM_MIRROR_LEAF_MASK,
			      entry) + offset;
}
EXPORT_SYMBOL_GPL(hmm_mirror_entry_dma);

/**
 * hmm_mirror_entry_page() - the page an entry maps
 * @entry: a mirror entry
 *
 * For a mirror page larger than PAGE_SIZE this is the first page of it.
 *
 * Return: the page, or NULL if @entry is not valid.
 */
struct page *hmm_mirror_entry_page(u64 entry)
{
	if (!hmm_mirror_entry_valid(entry))
		return NULL;
	return pfn_to_page(PHYS_PFN(hmm_mirror_entry_phys(entry)));
}
EXPORT_SYMBOL_GPL(hmm_mirror_entry_page);

/* hmm_mirror_set_dirty() on the slots [@slot, @slot_end] of full leaf @leaf */
static void hmm_mirror_leaf_set_dirty(struct hmm_mirror_leaf *leaf,
				      unsigned int slot, unsigned int slot_end)
{
	for (; slot <= slot_end; slot++) {
		u64 entry = hmm_mirror_leaf_entry(leaf, slot);

		if (hmm_mirror_entry_writable(entry))
			hmm_mirror_leaf_set_entry(leaf, slot, entry |
						  HMM_MIRROR_ENTRY_DIRTY);
	}
}

/*
 * hmm_mirror_set_dirty() on the slots [@slot, @slot_end] of extent @ext of
 * slot @leaf_index.  All the entries of an extent have the same flags: if
 * the range holds it whole, its flags say dirty.  If only part of it, the
 * extent becomes a full leaf whose entries say it, or, when no memory comes
 * without waiting, those pages are marked dirty now rather than when they
 * are unmapped: the device wrote them already, and cannot write them again
 * once the CPU cleans them, since cleaning invalidates the writable entries
 * first.
 */
static void hmm_mirror_extent_set_dirty(struct hmm_mirror *mirror,
					unsigned long leaf_index,
					struct hmm_mirror_leaf *ext,
					unsigned int slot,
					unsigned int slot_end)
{
	u32 first = hmm_mirror_extent_narrow(mirror, ext,
					     hmm_mirror_extent_slot(ext));
	struct hmm_mirror_leaf *leaf;
	u64 entry;

	if (!(first & HMM_MIRROR_ENTRY_WRITE) ||
	    !hmm_mirror_extent_clip(ext, &slot, &slot_end))
		return;
	if (slot == hmm_mirror_extent_slot(ext) &&
	    slot_end == hmm_mirror_extent_last(ext)) {
		/* Replaces a present entry: allocates nothing */
		xa_store(&mirror->leaves, leaf_index,
			 hmm_mirror_extent_make(slot, slot_end - slot + 1,
						first | HMM_MIRROR_ENTRY_DIRTY),
			 GFP_NOWAIT | __GFP_NOWARN);
		return;
	}
	leaf = hmm_mirror_extent_split(mirror, leaf_index, ext);
	if (leaf) {
		hmm_mirror_leaf_set_dirty(leaf, slot, slot_end);
		return;
	}
	for (; slot <= slot_end; slot++) {
		entry = hmm_mirror_extent_entry(mirror, ext, slot);
		folio_mark_dirty(page_folio(hmm_mirror_entry_page(entry)));
	}
}

/* hmm_mirror_set_dirty() on the slots [@slot, @slot_end] of @sp */
static void hmm_mirror_sparse_set_dirty(struct hmm_mirror_sparse *sp,
					unsigned int slot,
					unsigned int slot_end)
{
	u32 *narrow = hmm_mirror_sparse_narrow(sp);
	unsigned int i, end;

	for (i = hmm_mirror_sparse_range(sp, slot, slot_end, &end); i < end; i++)
		if (narrow[i] & HMM_MIRROR_ENTRY_WRITE)
			narrow[i] |= HMM_MIRROR_ENTRY_DIRTY;
}

/**
 * hmm_mirror_set_dirty() - record that the device wrote a range
 * @mirror: the mirror, locked
 * @start: start of the range
 * @end: end of the range (exclusive)
 *
 * Mark the writable entries of [@start, @end) dirty: their pages are marked
 * dirty when the entries are unmapped, and those of no other entry are.  A
 * driver that knows what its device wrote marks exactly that; one whose
 * device cannot tell marks the whole range of each write fault.  (Part of a
 * run of entries the mirror keeps as one, an extent, is split off to say
 * it; when no memory comes without waiting for that, its pages are marked
 * dirty at once instead.)
 *
 * Context: the mirror lock is held.
 */
void hmm_mirror_set_dirty(struct hmm_mirror *mirror, unsigned long start,
			  unsigned long end)
{
	struct hmm_mirror_leaf *leaf;
	unsigned long first, last, leaf_index;

	lockdep_assert_held(&mirror->lock);

	if (!hmm_mirror_clip(mirror, &start, &end))
		return;
	first = hmm_mirror_index(mirror, start);
	last = hmm_mirror_index(mirror, end - 1);

	hmm_mirror_for_each_leaf(mirror, first, last, leaf_index, leaf) {
		unsigned int slot, slot_end;

		hmm_mirror_leaf_slots(leaf_index, first, last, &slot, &slot_end);
		if (hmm_mirror_is_extent(leaf)) {
			hmm_mirror_extent_set_dirty(mirror, leaf_index, leaf,
						    slot, slot_end);
			continue;
		}
		if (hmm_mirror_is_sparse(leaf)) {
			hmm_mirror_sparse_set_dirty(hmm_mirror_to_sparse(leaf),
						    slot, slot_end);
			continue;
		}
		hmm_mirror_leaf_set_dirty(leaf, slot, slot_end);
	}
	hmm_mirror_groups_set_dirty(mirror, first, last);
}
EXPORT_SYMBOL_GPL(hmm_mirror_set_dirty);

/* hmm_mirror_walk() over the slots [@slot, @slot_end] of @sp */
static int hmm_mirror_sparse_walk(struct hmm_mirror *mirror,
				  unsigned long leaf_index,
				  struct hmm_mirror_sparse *sp,
				  unsigned int slot, unsigned int slot_end,
				  hmm_mirror_walk_fn fn, void *priv)
{
	u32 *narrow = hmm_mirror_sparse_narrow(sp);
	unsigned int i, end;
	int ret;

	for (i = hmm_mirror_sparse_range(sp, slot, slot_end, &end); i < end;
	     i++) {
		u64 entry = hmm_mirror_narrow_to_entry(narrow[i]);

		ret = fn(mirror, hmm_mirror_addr(mirror, leaf_index, sp->slot[i]),
			 entry, hmm_mirror_dma(mirror, NULL, sp->slot[i], entry),
			 priv);
		if (ret)
			return ret;
	}
	return 0;
}

/* hmm_mirror_walk() over the grouped entries of mirror pages [@first, @last] */
static int hmm_mirror_groups_walk(struct hmm_mirror *mirror,
				  unsigned long first, unsigned long last,
				  hmm_mirror_walk_fn fn, void *priv)
{
	struct hmm_mirror_group *g;
	unsigned long gi, index;
	unsigned int i, e;
	u64 entry;
	int ret;

	if (first > last)
		return 0;
	hmm_mirror_for_each_group(mirror, first, last, gi, g) {
		for (i = hmm_mirror_group_range(g, gi, first, last, &e); i < e;
		     i++) {
			index = gi << HMM_MIRROR_GROUP_POS_SHIFT | g->pos[i];
			entry = hmm_mirror_narrow_to_entry(hmm_mirror_group_narrow(g)[i]);
			ret = fn(mirror,
				 hmm_mirror_addr(mirror,
						 index >> HMM_MIRROR_LEAF_SHIFT,
						 index & HMM_MIRROR_LEAF_MASK),
				 entry, hmm_mirror_dma(mirror, NULL, 0, entry),
				 priv);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/**
 * hmm_mirror_walk() - call a function for each valid entry of a range
 * @mirror: the mirror, locked
 * @start: start of the range
 * @end: end of the range (exclusive)
 * @fn: called with the address of each valid mirror page in the range (in
 *	increasing order), its entry and its DMA address
 * @priv: passed to @fn
 *
 * The range is clipped to the mirror and widened to whole mirror pages.
 * @fn must not change the mirror.
 *
 * Context: the mirror lock is held.
 * Return: 0 after visiting every valid entry, or the first non-zero value
 * returned by @fn, which stops the walk.
 */
int hmm_mirror_walk(struct hmm_mirror *mirror, unsigned long start,
		    unsigned long end, hmm_mirror_walk_fn fn, void *priv)
{
	unsigned long first, last, leaf_index, next;
	struct hmm_mirror_leaf *leaf;
	int ret;

	lockdep_assert_held(&mirror->lock);

	if (!hmm_mirror_clip(mirror, &start, &end))
		return 0;
	first = hmm_mirror_index(mirror, start);
	last = hmm_mirror_index(mirror, end - 1);
	next = first;

	hmm_mirror_for_each_leaf(mirror, first, last, leaf_index, leaf) {
		unsigned long leaf_first = leaf_index << HMM_MIRROR_LEAF_SHIFT;
		unsigned int slot, slot_end;

		/* grouped entries come before this leaf's, in page order */
		if (next < leaf_first) {
			ret = hmm_mirror_groups_walk(mirror, next,
						     leaf_first - 1, fn, priv);
			if (ret)
				return ret;
		}
		next = leaf_first + HMM_MIRROR_LEAF_ENTRIES;

		hmm_mirror_leaf_slots(leaf_index, first, last, &slot, &slot_end);
		/* just the slots of an extent */
		if (hmm_mirror_is_extent(leaf) &&
		    !hmm_mirror_extent_clip(leaf, &slot, &slot_end))
			continue;
		if (hmm_mirror_is_sparse(leaf)) {
			ret = hmm_mirror_sparse_walk(mirror, leaf_index,
						     hmm_mirror_to_sparse(leaf),
						     slot, slot_end, fn, priv);
			if (ret)
				return ret;
			continue;
		}

		for (; slot <= slot_end; slot++) {
			u64 entry = hmm_mirror_slot_entry(mirror, leaf, slot);

			if (!hmm_mirror_entry_valid(entry))
				continue;
			ret = fn(mirror, hmm_mirror_addr(mirror, leaf_index, slot),
				 entry, hmm_mirror_dma(mirror, leaf, slot, entry),
				 priv);
			if (ret)
				return ret;
		}
	}
	return hmm_mirror_groups_walk(mirror, next, last, fn, priv);
}
EXPORT_SYMBOL_GPL(hmm_mirror_walk);

/**
 * hmm_mirror_read_counters() - read the event counters of a mirror
 * @mirror: the mirror
 * @counters: filled with the current values
 *
 * The counters are read one by one, without locking.
 */
void hmm_mirror_read_counters(struct hmm_mirror *mirror,
			      struct hmm_mirror_counters *counters)
{
	struct hmm_mirror_stats *st = &mirror->stats;

	counters->faults = atomic64_read(&st->faults);
	counters->pages_faulted = atomic64_read(&st->pages_faulted);
	counters->invalidations = atomic64_read(&st->invalidations);
	counters->pages_invalidated = atomic64_read(&st->pages_invalidated);
	counters->retries = atomic64_read(&st->retries);
	counters->fault_errors = atomic64_read(&st->fault_errors);
	counters->dma_maps = atomic64_read(&st->dma_maps);
	counters->dma_syncs = atomic64_read(&st->dma_syncs);
	counters->dma_flushes = atomic64_read(&st->dma_flushes);
}
EXPORT_SYMBOL_GPL(hmm_mirror_read_counters);

/*
 * The number of nodes of @xa, computed from the indices present, which is
 * exact for an xarray that holds no reservation and no multi-index entry.
 */
static unsigned long hmm_mirror_xa_nodes(struct xarray *xa)
{
	unsigned long last[HMM_MIRROR_XA_LEVELS + 1];
	unsigned long nodes = 0, entries = 0, max = 0, index;
	unsigned int level;
	void *entry;

	xa_for_each(xa, index, entry) {
		/*
		 * The xarray node of level L that holds @index (level 1 holds
		 * the entries) is identified by index >> (L * XA_CHUNK_SHIFT).
		 */
		for (level = 1; level <= HMM_MIRROR_XA_LEVELS; level++) {
			unsigned long node = index >> (level * XA_CHUNK_SHIFT);

			if (entries && node == last[level])
				continue;
			last[level] = node;
			nodes++;
		}
		entries++;
		max = index;
	}
	/*
	 * Levels above the root were counted once each: the root is the
	 * lowest level L with max >> (L * XA_CHUNK_SHIFT) == 0, and none is
	 * needed when index 0 is the only one (it lives in xa_head).
	 */
	for (level = 1; entries && level <= HMM_MIRROR_XA_LEVELS; level++)
		if (!(max >> ((level - 1) * XA_CHUNK_SHIFT)))
			nodes--;
	return nodes;
}

/**
 * hmm_mirror_metadata_bytes() - memory used by a mirror's page table
 * @mirror: the mirror, locked or not
 *
 * Count the bytes allocated for the mirror: the structure itself, its
 * leaves (entry arrays and headers, as rounded up by the slab allocator), its
 * groups (as their caches size them) and the xarray nodes that index both
 * (computed from the indices present, which is exact for an xarray that
 * holds no reservation).  Without the lock the result is a snapshot that
 * may already be stale.
 *
 * Return: the number of bytes.
 */
size_t hmm_mirror_metadata_bytes(struct hmm_mirror *mirror)
{
	size_t header = kmalloc_size_roundup(sizeof(struct hmm_mirror_leaf));
	size_t bytes = 0;
	struct hmm_mirror_leaf *leaf;
	struct hmm_mirror_group *g;
	unsigned long index;

	mutex_lock(&mirror->lock);
	xa_for_each(&mirror->leaves, index, leaf) {
		/* an extent lives in its xarray slot */
		if (hmm_mirror_is_sparse(leaf))
			bytes += hmm_mirror_class_size(hmm_mirror_to_sparse(leaf)->class);
		else if (hmm_mirror_is_full(leaf))
			bytes += header +
				 kmalloc_size_roundup(hmm_mirror_leaf_bytes(leaf->wide));
	}
	xa_for_each(&mirror->groups, index, g)
		bytes += hmm_mirror_class_size(g->class);
	bytes += (hmm_mirror_xa_nodes(&mirror->leaves) +
		  hmm_mirror_xa_nodes(&mirror->groups)) * sizeof(struct xa_node);

	/* spare leaves (IOVA mirrors only, narrow) are allocated memory too */
	bytes += mirror->nr_spare_leaves *
		 (header + kmalloc_size_roundup(hmm_mirror_leaf_bytes(false)));
	mutex_unlock(&mirror->lock);
	return bytes + sizeof(*mirror);
}
EXPORT_SYMBOL_GPL(hmm_mirror_metadata_bytes);
