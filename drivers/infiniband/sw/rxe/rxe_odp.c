// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Soft-RoCE on-demand paging: ODP memory regions on the HMM mirror.
 *
 * The translation table (MTT) of an ODP MR is mr->odp_mtt, an xarray of
 * blocks indexed by virtual address >> RXE_ODP_BLOCK_SHIFT, counted from
 * the block of the MR's start: a block is the array of the entries of the
 * pages of one aligned 2 MiB of address space.
 * An entry is a struct page pointer, tagged with RXE_ODP_WRITABLE when the
 * device may write the page, and RXE_ODP_WRITTEN once it has; 0 when the
 * page is not mapped.  A block exists while one of its entries is non-zero,
 * so the MTT holds memory only for blocks with mirrored pages, and an
 * invalidation of a whole block drops it with one store.  Every access to MR
 * memory (requester, responder and completer copies, atomics) looks the
 * pages up there holding mr->odp_mtt_lock for reading, and keeps holding it
 * while it uses the page.  A missing entry, or a read-only entry for a
 * write, enters the page-fault handler: it calls hmm_mirror_fault() (through
 * ib_umem_odp_map_and_lock()), fills the MTT from the mirror entries under
 * the mirror lock, and the access retries.  A read fault maps a whole
 * RXE_ODP_FAULT_SIZE block around the access, read-only; a write fault maps
 * writable only the pages the access writes (for an RDMA WRITE, the rest
 * of the message, and for an RDMA READ response the rest of the SGE, up to
 * the end of the block: rxe_odp_prepare_write()), so that a 1-byte write
 * neither allocates file blocks nor dirties pages it does not touch.
 *
 * All of this runs in rxe's QP tasks, which are work items: faults may
 * sleep.  Packets arriving in softirq context are only queued to the QP's
 * task, so their order is kept and nothing spins.  A fault is bounded: it
 * covers the faulting address or fails, a copy gives up after
 * RXE_ODP_FAULT_RETRIES faults that let it make no progress, and faults
 * that time out on racing invalidations are retried only for
 * RXE_ODP_BUSY_TIMEOUT_MS, and not at all once the MR is being destroyed or
 * its owner is dying.
 *
 * Dirty pages: rxe knows every byte it writes, so it reports exactly the
 * pages it wrote (ib_umem_odp_track_dirty()): a write tags the MTT entry
 * RXE_ODP_WRITTEN, and the invalidate op and teardown hand the written pages
 * to ib_umem_odp_set_dirty() before the mirror unmaps them.  A page mapped
 * writable but never written is not dirtied.
 *
 * The invalidate op zaps the MTT entries of the range holding odp_mtt_lock
 * for writing: a copy that found a page before the zap has finished with it
 * when invalidation returns, and a copy starting after the zap faults.  The
 * wait is per MR, and costs nothing when nobody copies.
 *
 * The MTT is filled under the mirror lock, where allocations must not
 * reclaim (see rxe_odp_fill_entry()); when that finds no memory, the blocks
 * are allocated outside the lock and the fill tried again, and the blocks
 * that got no page are freed right after, so the MTT holds memory only for
 * blocks with mirrored pages.  Its blocks and nodes, like the mirror's
 * leaves, are charged to the memory cgroup of the MR's owner.
 *
 * Prefetch (ibv_advise_mr()) goes through the same map-and-fill path as a
 * fault, over exactly the advised range, in chunks of RXE_ODP_PREFETCH_CHUNK.
 * With IB_UVERBS_ADVISE_MR_FLAG_FLUSH it runs in the caller's context;
 * otherwise in a work item.  Either way it holds a reference on each MR,
 * which makes deregistration wait for it, and stops at the next chunk once
 * the MR is being destroyed.
 *
 * Counters: each ODP umem counts its faults, invalidations and prefetches
 * (ib_umem_odp_get_counters()); they are reported per MR through restrack
 * (rdma res show mr -dd).  The device-wide hardware counters are the sum over
 * the live ODP MRs of the device, kept on rxe->odp_mrs, plus what the
 * destroyed ones had counted, so the two views always agree.
 */

#include <linux/highmem.h>
#include <linux/fs.h>
#include <linux/memcontrol.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/workqueue.h>
#include <rdma/ib_umem_odp.h>
#include <rdma/rdma_netlink.h>

#include "rxe.h"
#include "rxe_loc.h"

#define CREATE_TRACE_POINTS
#include "rxe_trace.h"

/* Faults are served in blocks of this size around the missing pages. */
#define RXE_ODP_FAULT_SIZE	SZ_2M

/*
 * Prefetches are served in aligned chunks of this size (or of one ODP page if
 * larger): each chunk is one ib_umem_odp_map_and_lock() call.
 */
#define RXE_ODP_PREFETCH_CHUNK	SZ_2M

/*
 * Faults that time out on racing invalidations (-EBUSY: reclaim of the MR's
 * own pages under memory pressure) are tried again for this long in all.
 */
#define RXE_ODP_BUSY_TIMEOUT_MS	3000

/*
 * A copy fails after this many successful faults in a row that let it make
 * no progress: every one of them lost its pages to an invalidation before
 * the copy could use them (the owner unmapping the range in a loop).
 */
#define RXE_ODP_FAULT_RETRIES	8

/*
 * MTT blocks are charged to the MR owner's memory cgroup; past its limit a
 * fault fails (-ENOMEM, the access completes in error) rather than have the
 * OOM killer make room for it, as the mirror does for its own leaves.
 */
#define RXE_ODP_GFP		(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | \
				 __GFP_NOWARN)

/* The MTT block: the entries of the pages of an aligned 2 MiB */
#define RXE_ODP_BLOCK_SHIFT	21
#define RXE_ODP_BLOCK_PAGES	(1UL << (RXE_ODP_BLOCK_SHIFT - PAGE_SHIFT))

struct rxe_odp_block {
	unsigned long entry[RXE_ODP_BLOCK_PAGES];
};

/* Asynchronous prefetches (ibv_advise_mr() without the flush flag) */
static struct workqueue_struct *rxe_odp_wq;

/* Tags in the low bits of an MTT entry's struct page pointer */
#define RXE_ODP_WRITABLE	1UL	/* the device may write the page */
#define RXE_ODP_WRITTEN		3UL	/* ... and has written it */
#define RXE_ODP_TAGS		3UL

static inline struct page *rxe_odp_entry_page(unsigned long entry)
{
	return (struct page *)(entry & ~RXE_ODP_TAGS);
}

static inline unsigned long rxe_odp_entry_tag(unsigned long entry)
{
	return entry & RXE_ODP_TAGS;
}

/*
 * The MTT is indexed from the aligned 2 MiB holding the start of the umem
 * (its first ODP page), so that the xarray of an explicit MR is as shallow
 * as its length allows: the block of an MR within one aligned 2 MiB sits in
 * the xarray's head, and a look-up walks no node.  The page index of the
 * first page of block 0:
 */
static inline unsigned long rxe_odp_mtt_base(struct rxe_mr *mr)
{
	return ALIGN_DOWN(ib_umem_start(to_ib_umem_odp(mr->umem)),
			  1UL << RXE_ODP_BLOCK_SHIFT) >> PAGE_SHIFT;
}

/*
 * The index of the MTT block of page @index, and of the page in the block;
 * @index is in the umem, hence not below the base.
 */
static inline unsigned long rxe_odp_block_index(struct rxe_mr *mr,
						unsigned long index)
{
	return (index - rxe_odp_mtt_base(mr)) >> (RXE_ODP_BLOCK_SHIFT - PAGE_SHIFT);
}

/* The page index of the first page of MTT block @bi */
static inline unsigned long rxe_odp_block_first(struct rxe_mr *mr,
						unsigned long bi)
{
	return rxe_odp_mtt_base(mr) + (bi << (RXE_ODP_BLOCK_SHIFT - PAGE_SHIFT));
}

static inline unsigned int rxe_odp_block_slot(unsigned long index)
{
	return index & (RXE_ODP_BLOCK_PAGES - 1);
}

/*
 * The MTT entry of page @index, or NULL when its block does not exist; with
 * odp_mtt_lock held (blocks are freed under it for writing) or the umem
 * locked (blocks are allocated and filled under it).
 */
static inline unsigned long *rxe_odp_mtt_slot(struct rxe_mr *mr,
					      unsigned long index)
{
	struct rxe_odp_block *block;

	block = xa_load(&mr->odp_mtt, rxe_odp_block_index(mr, index));
	return block ? &block->entry[rxe_odp_block_slot(index)] : NULL;
}

/* Does the block hold no page any more? */
static bool rxe_odp_block_empty(const struct rxe_odp_block *block)
{
	return !memchr_inv(block->entry, 0, sizeof(block->entry));
}

static inline unsigned long rxe_odp_va(struct rxe_mr *mr, u64 iova)
{
	return iova - mr->ibmr.iova + mr->umem->address;
}

/* A run of consecutive MTT pages that the device wrote */
struct rxe_odp_dirty_run {
	struct ib_umem_odp *umem_odp;
	unsigned long first;	/* page index */
	unsigned long end;	/* first == end: empty */
};

/* Report the run as written (the umem is locked) and empty it */
static void rxe_odp_dirty_flush(struct rxe_odp_dirty_run *run)
{
	if (run->first != run->end)
		ib_umem_odp_set_dirty(run->umem_odp, run->first << PAGE_SHIFT,
				      run->end << PAGE_SHIFT);
	run->first = run->end;
}

/* Add the MTT entry of page @index to the run if the device wrote it */
static void rxe_odp_dirty_add(struct rxe_odp_dirty_run *run,
			      unsigned long index, unsigned long entry)
{
	if (rxe_odp_entry_tag(entry) != RXE_ODP_WRITTEN)
		return;
	if (run->first == run->end || run->end != index) {
		rxe_odp_dirty_flush(run);
		run->first = index;
	}
	run->end = index + 1;
}

/*
 * Zap the entries of slots [slot, slot_end] of @block, the MTT block whose
 * first page has index @base, and report the written ones to @run; returns
 * how many there were.  The block is empty afterwards if the slots span it.
 */
static unsigned long rxe_odp_zap_block(struct rxe_odp_block *block,
				       unsigned long base, unsigned int slot,
				       unsigned int slot_end,
				       struct rxe_odp_dirty_run *run)
{
	unsigned long zapped = 0;

	for (; slot <= slot_end; slot++) {
		unsigned long entry = block->entry[slot];

		if (!entry)
			continue;
		rxe_odp_dirty_add(run, base + slot, entry);
		block->entry[slot] = 0;
		zapped++;
	}
	return zapped;
}

static void rxe_odp_invalidate(struct ib_umem_odp *umem_odp,
			       unsigned long start, unsigned long end)
{
	struct rxe_mr *mr = umem_odp->private;
	struct rxe_odp_dirty_run run = { .umem_odp = umem_odp };
	unsigned long first = start >> PAGE_SHIFT;
	unsigned long last = (end - 1) >> PAGE_SHIFT;
	XA_STATE(xas, &mr->odp_mtt, rxe_odp_block_index(mr, first));
	struct rxe_odp_block *block;
	unsigned long zapped = 0;

	/*
	 * Copies hold odp_mtt_lock for reading from the look-up of a page to
	 * the end of its use: once the write lock is taken, no copy uses a
	 * page zapped or a block freed under it, and a copy starting later
	 * faults.  It is dropped after each block, which is safe for the
	 * same reason: a page not zapped yet may still be found, and the
	 * next write lock waits for its user.  The pages written are
	 * reported before the mirror unmaps them.  A block left empty is
	 * freed: one store for a block the range covers whole.
	 */
	write_lock(&mr->odp_mtt_lock);
	xas_lock(&xas);
	xas_for_each(&xas, block, rxe_odp_block_index(mr, last)) {
		unsigned long bi = xas.xa_index;
		unsigned int slot = 0, slot_end = RXE_ODP_BLOCK_PAGES - 1;
		bool whole;

		if (bi == rxe_odp_block_index(mr, first))
			slot = rxe_odp_block_slot(first);
		if (bi == rxe_odp_block_index(mr, last))
			slot_end = rxe_odp_block_slot(last);
		whole = !slot && slot_end == RXE_ODP_BLOCK_PAGES - 1;
		zapped += rxe_odp_zap_block(block, rxe_odp_block_first(mr, bi),
					    slot, slot_end, &run);
		if (whole || rxe_odp_block_empty(block)) {
			xas_store(&xas, NULL);
			kfree(block);
		}
		/*
		 * Not xas_pause(): when the store freed the node, 6.12's
		 * xas_pause() steps a whole node of the parent from the index
		 * and skips the next node's entries.
		 */
		xas_set(&xas, bi + 1);
		xas_unlock(&xas);
		write_unlock(&mr->odp_mtt_lock);
		cond_resched();
		write_lock(&mr->odp_mtt_lock);
		xas_lock(&xas);
	}
	xas_unlock(&xas);
	write_unlock(&mr->odp_mtt_lock);
	rxe_odp_dirty_flush(&run);

	trace_rxe_odp_invalidate(mr->elem.index, mr->lkey, start, end, zapped);
}

static const struct ib_umem_odp_ops rxe_odp_ops = {
	.invalidate = rxe_odp_invalidate,
};

struct rxe_odp_fill {
	struct rxe_mr *mr;
	unsigned long npages;	/* ODP pages copied into the MTT */
	/* the block filled last, and its index (valid under the umem lock) */
	struct rxe_odp_block *block;
	unsigned long bi;
};

/*
 * The MTT block of index @bi, allocated if it does not exist yet; with the
 * umem locked, so that no invalidation frees it meanwhile.  The block may
 * have just been allocated outside the lock by rxe_odp_reserve().
 */
static struct rxe_odp_block *rxe_odp_block_get(struct rxe_mr *mr,
					       unsigned long bi, gfp_t gfp)
{
	struct rxe_odp_block *block = xa_load(&mr->odp_mtt, bi);
	int err;

	if (block)
		return block;
	block = kzalloc(sizeof(*block), gfp);
	if (!block)
		return ERR_PTR(-ENOMEM);
	err = xa_insert(&mr->odp_mtt, bi, block, gfp);
	if (!err)
		return block;
	kfree(block);
	if (err != -EBUSY)
		return ERR_PTR(err);
	block = xa_load(&mr->odp_mtt, bi);
	return block ?: ERR_PTR(-ENOMEM);
}

/*
 * Store @entry for page @index unless the MTT already maps the same page as
 * written: a fault must not forget that the device wrote a page.  Writes tag
 * entries concurrently (rxe_odp_mark_written()), hence the compare and
 * exchange; invalidations cannot run, the umem is locked.
 */
static int rxe_odp_fill_one(struct rxe_odp_fill *fill, unsigned long index,
			    unsigned long entry, gfp_t gfp)
{
	unsigned long bi = rxe_odp_block_index(fill->mr, index), *slot, cur, old;

	if (!fill->block || fill->bi != bi) {
		struct rxe_odp_block *block = rxe_odp_block_get(fill->mr, bi, gfp);

		if (IS_ERR(block))
			return PTR_ERR(block);
		fill->block = block;
		fill->bi = bi;
	}
	slot = &fill->block->entry[rxe_odp_block_slot(index)];
	cur = READ_ONCE(*slot);
	for (;;) {
		if (rxe_odp_entry_tag(cur) == RXE_ODP_WRITTEN &&
		    rxe_odp_entry_page(cur) == rxe_odp_entry_page(entry))
			return 0;
		old = cmpxchg(slot, cur, entry);
		if (old == cur)
			return 0;
		cur = old;
	}
}

static int rxe_odp_fill_entry(struct ib_umem_odp *umem_odp,
			      unsigned long addr, dma_addr_t dma,
			      unsigned int access, void *priv)
{
	unsigned long i, n = 1UL << (umem_odp->page_shift - PAGE_SHIFT);
	unsigned long tag = access & ODP_WRITE_ALLOWED_BIT ? RXE_ODP_WRITABLE : 0;
	/* rxe does not DMA-map: the mirror hands out physical addresses. */
	struct page *page = pfn_to_page(PHYS_PFN(dma));
	struct rxe_odp_fill *fill = priv;
	int err;

	/*
	 * The umem is locked, and its invalidation runs in reclaim: no
	 * allocation here may reclaim.  -ENOMEM makes rxe_odp_map() allocate
	 * the blocks outside the lock and try again.
	 */
	for (i = 0; i < n; i++) {
		err = rxe_odp_fill_one(fill, (addr >> PAGE_SHIFT) + i,
				       (unsigned long)(page + i) | tag,
				       GFP_NOWAIT | __GFP_NOWARN | __GFP_ACCOUNT);
		if (err)
			return err;
	}
	fill->npages++;
	return 0;
}

/* The MTT slots [*first, *last) of [start, end), widened to whole ODP pages */
static void rxe_odp_slots(struct rxe_mr *mr, unsigned long start,
			  unsigned long end, unsigned long *first,
			  unsigned long *last)
{
	unsigned long odp_page = BIT(to_ib_umem_odp(mr->umem)->page_shift);

	*first = ALIGN_DOWN(start, odp_page) >> PAGE_SHIFT;
	*last = ALIGN(end, odp_page) >> PAGE_SHIFT;
}

/*
 * Make room in the MTT for every page of [start, end) before the umem is
 * locked: filling it then needs no allocation.  Called in the memory cgroup
 * scope of the MR's owner (rxe_odp_map()), so the blocks are charged to it.
 */
static int rxe_odp_reserve(struct rxe_mr *mr, unsigned long start,
			   unsigned long end)
{
	unsigned long idx, last, bi;
	struct rxe_odp_block *block;
	int err;

	rxe_odp_slots(mr, start, end, &idx, &last);
	for (bi = rxe_odp_block_index(mr, idx);
	     bi <= rxe_odp_block_index(mr, last - 1); bi++) {
		if (xa_load(&mr->odp_mtt, bi))
			continue;
		block = kzalloc(sizeof(*block), RXE_ODP_GFP);
		if (!block)
			return -ENOMEM;
		err = xa_insert(&mr->odp_mtt, bi, block, RXE_ODP_GFP);
		if (err)
			kfree(block);
		if (err && err != -EBUSY)
			return err;
		cond_resched();
	}
	return 0;
}

/*
 * Free the blocks of [start, end) that got no page: pages that are not
 * mapped, a fault that failed, a prefetch that mapped nothing.  The MTT
 * then holds memory only for blocks with mirrored pages, whatever ranges a
 * process has its MR fault or prefetch.  The umem lock keeps fills out and
 * odp_mtt_lock the copies, which may hold a pointer to a block.
 */
static void rxe_odp_release_unfilled(struct rxe_mr *mr, unsigned long start,
				     unsigned long end)
{
	struct ib_umem_odp *umem_odp = to_ib_umem_odp(mr->umem);
	unsigned long first, last;
	struct rxe_odp_block *block;
	XA_STATE(xas, &mr->odp_mtt, 0);

	rxe_odp_slots(mr, start, end, &first, &last);
	ib_umem_odp_lock(umem_odp);
	write_lock(&mr->odp_mtt_lock);
	xas_set(&xas, rxe_odp_block_index(mr, first));
	xas_lock(&xas);
	xas_for_each(&xas, block, rxe_odp_block_index(mr, last - 1)) {
		if (rxe_odp_block_empty(block)) {
			xas_store(&xas, NULL);
			kfree(block);
		}
		if (need_resched()) {
			/* not xas_pause(): see rxe_odp_invalidate() */
			xas_set(&xas, xas.xa_index + 1);
			xas_unlock(&xas);
			write_unlock(&mr->odp_mtt_lock);
			cond_resched();
			write_lock(&mr->odp_mtt_lock);
			xas_lock(&xas);
		}
	}
	xas_unlock(&xas);
	write_unlock(&mr->odp_mtt_lock);
	ib_umem_odp_unlock(umem_odp);
}

/*
 * Map [start, end) of the umem (fault it in unless @fault is false) and copy
 * the mirror entries of the range into the MTT.  Returns 0 or a negative
 * errno; *npages is set to the number of ODP pages present in the range.
 *
 * The MTT is filled under the umem lock without reclaim; when that finds no
 * memory, the slots of the range are reserved outside the lock and the map
 * is tried again.  Whatever the outcome, no slot of the range stays
 * reserved without a page.
 */
static int rxe_odp_map(struct rxe_mr *mr, unsigned long start,
		       unsigned long end, u64 access, bool fault,
		       unsigned long *npages)
{
	struct ib_umem_odp *umem_odp = to_ib_umem_odp(mr->umem);
	struct rxe_odp_fill fill = { .mr = mr };
	struct mem_cgroup *memcg, *old_memcg;
	bool reserved = false;
	int err, tries = 3;

	*npages = 0;
	memcg = get_mem_cgroup_from_mm(mr->umem->owning_mm);
	old_memcg = set_active_memcg(memcg);
	do {
		if (reserved) {
			err = rxe_odp_reserve(mr, start, end);
			if (err)
				break;
		}
		fill.npages = 0;
		err = ib_umem_odp_map_and_lock(umem_odp, start, end - start,
					       access, fault);
		if (err < 0)
			break;
		err = ib_umem_odp_walk(umem_odp, start, end,
				       rxe_odp_fill_entry, &fill);
		ib_umem_odp_unlock(umem_odp);
		if (err != -ENOMEM)
			break;
		reserved = true;
	} while (--tries);
	set_active_memcg(old_memcg);
	mem_cgroup_put(memcg);

	if (reserved)
		rxe_odp_release_unfilled(mr, start, end);
	*npages = fill.npages;
	return err;
}

/*
 * Destroying an MR first removes it from the MR pool (__rxe_cleanup()), then
 * waits for the references on it to go; a prefetch holds one, and uses this
 * to stop early.
 */
static bool rxe_odp_mr_dying(struct rxe_mr *mr)
{
	return xa_load(&mr->elem.pool->xa, mr->elem.index) != &mr->elem;
}

/*
 * Should a fault that timed out on racing invalidations be tried again?
 * Not once the MR is being destroyed or the retries have taken
 * RXE_ODP_BUSY_TIMEOUT_MS.  (Once its owner is dying, faults fail with
 * -EINTR rather than -EBUSY: see ib_umem_odp_map_and_lock().)
 */
static bool rxe_odp_retry_busy(struct rxe_mr *mr, unsigned long deadline)
{
	return !rxe_odp_mr_dying(mr) && time_before(jiffies, deadline);
}

/*
 * rxe_odp_fault - the page-fault handler of an ODP MR
 *
 * Makes [va, va + length) present in the MTT, writable if @write.  The range
 * must lie inside the umem.  A write fault maps exactly the ODP pages of the
 * range, writable.  A read fault maps the whole RXE_ODP_FAULT_SIZE block
 * around the range when the block is mapped, or just the needed pages when
 * it is not (a hole or a read-only mapping in the block must not fail an
 * access that does not touch it).  Either way the pages mapped always
 * include the whole range, or the fault fails.
 */
static int rxe_odp_fault(struct rxe_mr *mr, unsigned long va,
			 unsigned int length, bool write)
{
	struct ib_umem_odp *umem_odp = to_ib_umem_odp(mr->umem);
	u64 access = ODP_READ_ALLOWED_BIT | (write ? ODP_WRITE_ALLOWED_BIT : 0);
	unsigned long start, end, npages, deadline;
	int err;

	might_sleep();
	if (va < ib_umem_start(umem_odp) || va >= ib_umem_end(umem_odp) ||
	    length > ib_umem_end(umem_odp) - va) {
		err = -EFAULT;
		goto out;
	}

	start = ALIGN_DOWN(va, PAGE_SIZE);
	end = PAGE_ALIGN(va + length);
	if (!write) {
		unsigned long block_start, block_end;

		block_start = max(ALIGN_DOWN(va, RXE_ODP_FAULT_SIZE),
				  ib_umem_start(umem_odp));
		block_end = min(ALIGN(va + length, RXE_ODP_FAULT_SIZE),
				ib_umem_end(umem_odp));
		err = rxe_odp_map(mr, block_start, block_end, access, true,
				  &npages);
		if (err >= 0)
			goto out;
	}
	err = rxe_odp_map(mr, start, end, access, true, &npages);

	deadline = jiffies + msecs_to_jiffies(RXE_ODP_BUSY_TIMEOUT_MS);
	while (err == -EBUSY && rxe_odp_retry_busy(mr, deadline)) {
		cond_resched();
		err = rxe_odp_map(mr, start, end, access, true, &npages);
	}
out:
	trace_rxe_odp_fault(mr->elem.index, mr->lkey, va, length, write, err);
	if (err < 0)
		rxe_dbg_mr(mr, "fault at %#lx+%u failed, err = %d\n", va,
			   length, err);
	return err < 0 ? err : 0;
}

/*
 * Tag the MTT entry at @slot, @entry when read, written; with odp_mtt_lock
 * held for reading (so it cannot be zapped meanwhile).  A fill may replace
 * it concurrently with the same page, untagged, and then it is tagged again.
 */
static void rxe_odp_mark_written(unsigned long *slot, unsigned long entry)
{
	unsigned long old;

	while (rxe_odp_entry_tag(entry) != RXE_ODP_WRITTEN) {
		old = cmpxchg(slot, entry, (entry & ~RXE_ODP_TAGS) | RXE_ODP_WRITTEN);
		if (old == entry || !old)
			return;
		entry = old;
	}
}

/*
 * The page of the MTT entry at @slot (NULL: its block does not exist) for
 * an access, with odp_mtt_lock held for reading; for a write, only a
 * writable page, which is then tagged written.
 */
static inline struct page *rxe_odp_slot_page(unsigned long *slot, bool write)
{
	unsigned long entry;

	if (!slot)
		return NULL;
	entry = READ_ONCE(*slot);
	if (!entry)
		return NULL;
	if (write) {
		if (!rxe_odp_entry_tag(entry))
			return NULL;
		rxe_odp_mark_written(slot, entry);
	}
	return rxe_odp_entry_page(entry);
}

/* Look up the page of @va for an access, with odp_mtt_lock held for reading */
static inline struct page *rxe_odp_lookup(struct rxe_mr *mr, unsigned long va,
					  bool write)
{
	return rxe_odp_slot_page(rxe_odp_mtt_slot(mr, va >> PAGE_SHIFT), write);
}

/* Is @va mapped in the MTT for a write?  Marks nothing. */
static bool rxe_odp_writable(struct rxe_mr *mr, unsigned long va)
{
	unsigned long *slot;
	bool ret;

	read_lock(&mr->odp_mtt_lock);
	slot = rxe_odp_mtt_slot(mr, va >> PAGE_SHIFT);
	ret = slot && rxe_odp_entry_tag(READ_ONCE(*slot));
	read_unlock(&mr->odp_mtt_lock);
	return ret;
}

/* Copy what is present, page by page; return the number of bytes copied. */
static unsigned int rxe_odp_copy_present(struct rxe_mr *mr, unsigned long va,
					 void *addr, unsigned int length,
					 enum rxe_mr_copy_dir dir)
{
	bool to_mr = dir == RXE_TO_MR_OBJ;
	struct rxe_odp_block *block = NULL;
	unsigned int done = 0;

	read_lock(&mr->odp_mtt_lock);
	while (done < length) {
		unsigned long index = (va + done) >> PAGE_SHIFT;
		unsigned int offset = (va + done) & ~PAGE_MASK;
		unsigned int bytes = min_t(unsigned int, length - done,
					   PAGE_SIZE - offset);
		struct page *page;
		u8 *kaddr;

		/*
		 * One look-up per 2 MiB block, not per page: the pages are
		 * consecutive, so a new block starts at its slot 0.
		 */
		if (!done || !rxe_odp_block_slot(index))
			block = xa_load(&mr->odp_mtt,
					rxe_odp_block_index(mr, index));
		page = rxe_odp_slot_page(block ?
					 &block->entry[rxe_odp_block_slot(index)] :
					 NULL, to_mr);
		if (!page)
			break;
		kaddr = kmap_local_page(page);
		/*
		 * GCC bounds bytes by PAGE_SIZE here and would expand the
		 * copy inline (rep movsq); call the kernel's memcpy(), tuned
		 * for the CPU, as the pinned path does.
		 */
		OPTIMIZER_HIDE_VAR(bytes);
		if (to_mr)
			memcpy(kaddr + offset, addr + done, bytes);
		else
			memcpy(addr + done, kaddr + offset, bytes);
		kunmap_local(kaddr);
		done += bytes;
	}
	read_unlock(&mr->odp_mtt_lock);
	return done;
}

/**
 * rxe_odp_mr_copy - copy to or from an ODP MR, faulting what is missing
 * @mr: the ODP MR
 * @iova: MR address of the first byte (already checked against the MR)
 * @addr: kernel buffer
 * @length: bytes to copy
 * @dir: RXE_TO_MR_OBJ or RXE_FROM_MR_OBJ
 *
 * An implicit MR spans the whole 64-bit address range while its umem stops
 * at the top of the user address space, so the range is checked against the
 * umem here.
 *
 * Context: process context (rxe QP tasks); may sleep.
 * Return: 0, or -EFAULT when a page could not be faulted in, lies outside
 * the umem, or was invalidated again after each of RXE_ODP_FAULT_RETRIES
 * faults in a row.
 */
int rxe_odp_mr_copy(struct rxe_mr *mr, u64 iova, void *addr,
		    unsigned int length, enum rxe_mr_copy_dir dir)
{
	unsigned long va = rxe_odp_va(mr, iova);
	unsigned int done, faults = 0;

	for (;;) {
		done = rxe_odp_copy_present(mr, va, addr, length, dir);
		if (done == length)
			return 0;
		if (done)
			faults = 0;
		else if (faults++ == RXE_ODP_FAULT_RETRIES)
			return -EFAULT;
		va += done;
		addr += done;
		length -= done;
		/*
		 * Not mapped, or not writable: either way a protection error
		 * for the requester and the responder alike.
		 */
		if (rxe_odp_fault(mr, va, length, dir == RXE_TO_MR_OBJ))
			return -EFAULT;
	}
}

/**
 * rxe_odp_prepare_write - fault in writable what a message is going to write
 * @mr: the ODP MR
 * @iova: MR address of the next byte the message writes
 * @length: bytes the message still writes from @iova
 *
 * A write fault maps only the pages of the copy at hand, one packet, so a
 * message larger than a packet would fault page by page.  The responder
 * knows the whole length of an RDMA WRITE, and the completer how much of
 * an SGE an RDMA READ response is to fill: take the range from @iova to the
 * end of the message or of the RXE_ODP_FAULT_SIZE block around @iova,
 * whichever comes first, and unless its first and last pages are mapped
 * writable already, fault it in writable in one fault.  Nothing beyond the
 * message is touched; a message cut short by an error may leave pages of
 * the range writable that it did not write.  Errors are left to the copy,
 * which faults again for exactly what it needs and reports them.
 *
 * Context: process context (rxe responder or completer task); may sleep.
 */
void rxe_odp_prepare_write(struct rxe_mr *mr, u64 iova, u64 length)
{
	struct ib_umem_odp *umem_odp = to_ib_umem_odp(mr->umem);
	unsigned long va = rxe_odp_va(mr, iova), block_end, npages;
	int err;

	if (!length || va < ib_umem_start(umem_odp) ||
	    va >= ib_umem_end(umem_odp))
		return;

	block_end = min(ALIGN_DOWN(va, RXE_ODP_FAULT_SIZE) + RXE_ODP_FAULT_SIZE,
			ib_umem_end(umem_odp));
	length = min_t(u64, length, block_end - va);
	/*
	 * The last page too: a packet that straddled the start of this block
	 * made only the first page writable (its own copy's write fault).
	 */
	if (rxe_odp_writable(mr, va) && rxe_odp_writable(mr, va + length - 1))
		return;
	err = rxe_odp_map(mr, ALIGN_DOWN(va, PAGE_SIZE), PAGE_ALIGN(va + length),
			  ODP_READ_ALLOWED_BIT | ODP_WRITE_ALLOWED_BIT, true,
			  &npages);
	trace_rxe_odp_fault(mr->elem.index, mr->lkey, va, length, true, err);
}

/*
 * Find the page of @va for an atomic access, faulting it in writable if
 * needed.  On success the caller holds odp_mtt_lock for reading, which keeps
 * the page from being invalidated; it must read_unlock() it when done and
 * must not sleep until then.
 */
static struct page *rxe_odp_get_writable(struct rxe_mr *mr, unsigned long va)
{
	unsigned int faults;
	struct page *page;
	int err;

	for (faults = 0; faults <= RXE_ODP_FAULT_RETRIES; faults++) {
		read_lock(&mr->odp_mtt_lock);
		page = rxe_odp_lookup(mr, va, true);
		if (page)
			return page;
		read_unlock(&mr->odp_mtt_lock);
		err = rxe_odp_fault(mr, va, sizeof(u64), true);
		if (err)
			return ERR_PTR(err);
	}
	return ERR_PTR(-EFAULT);
}

/*
 * Map the 64-bit word at @iova for an atomic access, faulting its page in
 * writable if needed.  On success the word stays mapped, and its page safe
 * from invalidation, until rxe_odp_unmap_word(); the caller must not sleep
 * in between.  Returns the word, or NULL with *@err set to an enum
 * resp_states error.
 */
static u64 *rxe_odp_map_word(struct rxe_mr *mr, u64 iova, int *err)
{
	unsigned long va = rxe_odp_va(mr, iova);
	struct page *page;

	if (unlikely(va & 7)) {
		*err = RESPST_ERR_MISALIGNED_ATOMIC;
		return NULL;
	}
	page = rxe_odp_get_writable(mr, va);
	if (IS_ERR(page)) {
		*err = RESPST_ERR_RKEY_VIOLATION;
		return NULL;
	}
	return (u64 *)kmap_local_page(page) + ((va & ~PAGE_MASK) >> 3);
}

static void rxe_odp_unmap_word(struct rxe_mr *mr, u64 *word)
{
	kunmap_local(word);
	read_unlock(&mr->odp_mtt_lock);
}

/**
 * rxe_odp_do_atomic_op - compare-and-swap or fetch-and-add on an ODP MR
 * @mr: the ODP MR
 * @iova: MR address of the 64-bit operand (already checked against the MR)
 * @opcode: IB_OPCODE_RC_COMPARE_SWAP or a fetch-and-add opcode
 * @compare: value compared with for compare-and-swap
 * @swap_add: value swapped in or added
 * @orig_val: returns the value before the operation
 *
 * Context: process context (rxe responder task); may sleep to fault.
 * Return: 0 or an enum resp_states error.
 */
int rxe_odp_do_atomic_op(struct rxe_mr *mr, u64 iova, int opcode,
			 u64 compare, u64 swap_add, u64 *orig_val)
{
	int err;
	u64 *word = rxe_odp_map_word(mr, iova, &err);

	if (!word)
		return err;
	rxe_atomic_op_page(word, opcode, compare, swap_add, orig_val);
	rxe_odp_unmap_word(mr, word);
	return 0;
}

/**
 * rxe_odp_do_atomic_write - 64-bit atomic write to an ODP MR
 * @mr: the ODP MR
 * @iova: MR address of the 64-bit word (already checked against the MR)
 * @value: value to store, after all prior operations
 *
 * Context: process context (rxe responder task); may sleep to fault.
 * Return: 0 or an enum resp_states error.
 */
int rxe_odp_do_atomic_write(struct rxe_mr *mr, u64 iova, u64 value)
{
	int err;
	u64 *word = rxe_odp_map_word(mr, iova, &err);

	if (!word)
		return err;
	/* Do atomic write after all prior operations have completed */
	smp_store_release(word, value);
	rxe_odp_unmap_word(mr, word);
	return 0;
}

/**
 * rxe_odp_flush_iova - execute an RDMA FLUSH on a range of an ODP MR
 * @mr: the ODP MR
 * @iova: MR address of the first byte (already checked against the MR)
 * @length: bytes to flush
 * @persistent: IB_FLUSH_PERSISTENT (else IB_FLUSH_GLOBAL only)
 *
 * The range must be mapped in the owner's address space, and writable
 * there when the MR is; otherwise the FLUSH fails like any other access.
 *
 * Global visibility: rxe writes MR memory with CPU stores, all done before
 * the FLUSH runs (the responder executes requests in order), so nothing is
 * left to make visible.
 *
 * Persistence: every part of the range must be a MAP_SHARED mapping of a
 * file, and its file range is written back with vfs_fsync_range()
 * (datasync).  For a file in the page cache this writes the dirty pages
 * (which the write faults of the mirror dirtied) to the disk; for a DAX
 * file it writes the CPU cache lines of the dirty pmem pages back to
 * persistent memory.  Either way the file system also commits the blocks
 * allocated for them, so the data survives a crash or a remount.
 * Anonymous and private memory has nothing to persist to: -EOPNOTSUPP.
 *
 * Context: process context (rxe responder task); may sleep.
 * Return: 0, -EFAULT for a range that is not (writably) mapped,
 * -EOPNOTSUPP for a persistent flush of memory that is not a shared file
 * mapping, or the error of vfs_fsync_range().
 */
int rxe_odp_flush_iova(struct rxe_mr *mr, u64 iova, u64 length,
		       bool persistent)
{
	struct mm_struct *mm = mr->umem->owning_mm;
	unsigned long va = rxe_odp_va(mr, iova);
	unsigned long end = va + length;
	int err = 0;

	if (!length)
		return 0;
	if (!mmget_not_zero(mm))
		return -EFAULT;
	while (va < end && !err) {
		struct vm_area_struct *vma;
		struct file *file = NULL;
		loff_t pos = 0, last = 0;

		mmap_read_lock(mm);
		vma = vma_lookup(mm, va);
		if (!vma || !(vma->vm_flags & VM_READ) ||
		    (mr->umem->writable && !(vma->vm_flags & VM_WRITE))) {
			err = -EFAULT;
		} else if (persistent && (!vma->vm_file ||
					  !(vma->vm_flags & VM_SHARED))) {
			err = -EOPNOTSUPP;
		} else if (persistent) {
			file = get_file(vma->vm_file);
			pos = ((loff_t)vma->vm_pgoff << PAGE_SHIFT) +
			      (va - vma->vm_start);
			last = pos + (min(end, vma->vm_end) - va) - 1;
		}
		if (!err)
			va = min(end, vma->vm_end);
		mmap_read_unlock(mm);
		if (file) {
			err = vfs_fsync_range(file, pos, last, 1);
			fput(file);
		}
	}
	mmput(mm);
	if (err)
		rxe_dbg_mr(mr, "flush at %#llx+%llu failed, err = %d\n", iova,
			   length, err);
	return err;
}

/**
 * rxe_odp_mr_init_user - register an ODP MR
 * @rxe: the device
 * @start: user address of the region, 0 for an implicit MR
 * @length: length of the region, U64_MAX for an implicit MR
 * @access: IB access flags, including IB_ACCESS_ON_DEMAND
 * @mr: the MR being created
 *
 * Pins nothing: the cost does not depend on @length.
 *
 * Return: 0 or a negative errno.
 */
int rxe_odp_mr_init_user(struct rxe_dev *rxe, u64 start, u64 length,
			 int access, struct rxe_mr *mr)
{
	struct ib_umem_odp *umem_odp;

	/* A flush of an implicit MR's whole range would be meaningless. */
	if (access & (IB_ACCESS_FLUSH_GLOBAL | IB_ACCESS_FLUSH_PERSISTENT) &&
	    !start && length == U64_MAX)
		return -EOPNOTSUPP;

	rxe_mr_init(access, mr);
	/* blocks and nodes allocated under the xa_lock are charged too */
	xa_init_flags(&mr->odp_mtt, XA_FLAGS_ACCOUNT);
	rwlock_init(&mr->odp_mtt_lock);

	if (!start && length == U64_MAX)
		umem_odp = ib_umem_odp_alloc_implicit(&rxe->ib_dev, access,
						      &rxe_odp_ops);
	else
		umem_odp = ib_umem_odp_get(&rxe->ib_dev, start, length, access,
					   &rxe_odp_ops);
	if (IS_ERR(umem_odp)) {
		rxe_dbg_mr(mr, "unable to create ODP umem, err = %ld\n",
			   PTR_ERR(umem_odp));
		return PTR_ERR(umem_odp);
	}

	/* rxe reports the pages it writes, no more (see the top of the file) */
	ib_umem_odp_track_dirty(umem_odp);
	/* No entry is valid before the first fault: no invalidation yet. */
	umem_odp->private = mr;
	mr->umem = &umem_odp->umem;
	mr->ibmr.type = IB_MR_TYPE_USER;
	mr->state = RXE_MR_STATE_VALID;

	spin_lock(&rxe->odp_lock);
	list_add_tail(&mr->odp_node, &rxe->odp_mrs);
	spin_unlock(&rxe->odp_lock);
	return 0;
}

static void rxe_odp_counters_add(struct ib_umem_odp_counters *sum,
				 const struct ib_umem_odp_counters *c)
{
	sum->faults += c->faults;
	sum->pages_faulted += c->pages_faulted;
	sum->invalidations += c->invalidations;
	sum->pages_invalidated += c->pages_invalidated;
	sum->prefetches += c->prefetches;
	sum->fault_errors += c->fault_errors;
}

/**
 * rxe_odp_mr_cleanup - release the ODP state of an MR
 * @mr: the ODP MR, no longer used by anything
 *
 * The mirror is emptied first, under its lock, so that no invalidation is
 * counted once the MR's counters have been added to the device's totals.
 * Releasing the umem removes the mirror, so no invalidation can run after
 * it; only then is the MTT freed.
 */
void rxe_odp_mr_cleanup(struct rxe_mr *mr)
{
	struct ib_umem_odp *umem_odp = to_ib_umem_odp(mr->umem);
	struct rxe_dev *rxe = to_rdev(mr->ibmr.device);
	struct rxe_odp_dirty_run run = { .umem_odp = umem_odp };
	struct ib_umem_odp_counters c;
	struct rxe_odp_block *block;
	unsigned long bi;
	unsigned int slot;

	/* The pages written are dirtied as the mirror unmaps them. */
	ib_umem_odp_lock(umem_odp);
	xa_for_each(&mr->odp_mtt, bi, block)
		for (slot = 0; slot < RXE_ODP_BLOCK_PAGES; slot++)
			rxe_odp_dirty_add(&run, rxe_odp_block_first(mr, bi) + slot,
					  block->entry[slot]);
	rxe_odp_dirty_flush(&run);
	ib_umem_odp_unmap_dma_pages(umem_odp, ib_umem_start(umem_odp),
				    ib_umem_end(umem_odp));
	ib_umem_odp_unlock(umem_odp);

	spin_lock(&rxe->odp_lock);
	list_del(&mr->odp_node);
	ib_umem_odp_get_counters(umem_odp, &c);
	rxe_odp_counters_add(&rxe->odp_retired, &c);
	spin_unlock(&rxe->odp_lock);

	ib_umem_release(mr->umem);
	mr->umem = NULL;
	xa_for_each(&mr->odp_mtt, bi, block)
		kfree(block);
	xa_destroy(&mr->odp_mtt);
}

/**
 * rxe_odp_get_hw_stats - the device-wide ODP counters
 * @rxe: the device
 * @value: the hardware counter values, indexed by enum rxe_counters; the
 *	RXE_CNT_ODP_* entries are filled
 *
 * Each counter is the sum of the counters of the device's live ODP MRs and
 * of those its destroyed ODP MRs had when they were destroyed.
 */
void rxe_odp_get_hw_stats(struct rxe_dev *rxe, u64 *value)
{
	struct ib_umem_odp_counters sum, c;
	struct rxe_mr *mr;

	spin_lock(&rxe->odp_lock);
	sum = rxe->odp_retired;
	list_for_each_entry(mr, &rxe->odp_mrs, odp_node) {
		ib_umem_odp_get_counters(to_ib_umem_odp(mr->umem), &c);
		rxe_odp_counters_add(&sum, &c);
	}
	spin_unlock(&rxe->odp_lock);

	value[RXE_CNT_ODP_FAULTS] = sum.faults;
	value[RXE_CNT_ODP_PAGES_FAULTED] = sum.pages_faulted;
	value[RXE_CNT_ODP_INVALIDATIONS] = sum.invalidations;
	value[RXE_CNT_ODP_PAGES_INVALIDATED] = sum.pages_invalidated;
	value[RXE_CNT_ODP_PREFETCHES] = sum.prefetches;
	value[RXE_CNT_ODP_FAULT_ERRORS] = sum.fault_errors;
}

/**
 * rxe_odp_fill_res_mr_entry - the driver attributes of an MR for restrack
 * @msg: the netlink message being built
 * @ibmr: the MR
 *
 * For an ODP MR: whether it is explicit or implicit, its event counters
 * (see struct ib_umem_odp_counters), and the pages and memory its mirror
 * holds now.  Shown by "rdma res show mr -dd".
 *
 * Return: 0, or -EMSGSIZE when @msg is full.
 */
int rxe_odp_fill_res_mr_entry(struct sk_buff *msg, struct ib_mr *ibmr)
{
	struct rxe_mr *mr = to_rmr(ibmr);
	struct ib_umem_odp_counters c;
	struct ib_umem_odp *umem_odp;
	struct nlattr *table_attr;

	if (!rxe_mr_is_odp(mr))
		return 0;
	umem_odp = to_ib_umem_odp(mr->umem);
	ib_umem_odp_get_counters(umem_odp, &c);

	table_attr = nla_nest_start_noflag(msg, RDMA_NLDEV_ATTR_DRIVER);
	if (!table_attr)
		return -EMSGSIZE;
	if (rdma_nl_put_driver_string(msg, "odp", umem_odp->is_implicit_odp ?
				      "implicit" : "explicit") ||
	    rdma_nl_put_driver_u64(msg, "odp_faults", c.faults) ||
	    rdma_nl_put_driver_u64(msg, "odp_pages_faulted", c.pages_faulted) ||
	    rdma_nl_put_driver_u64(msg, "odp_invalidations", c.invalidations) ||
	    rdma_nl_put_driver_u64(msg, "odp_pages_invalidated",
				   c.pages_invalidated) ||
	    rdma_nl_put_driver_u64(msg, "odp_prefetches", c.prefetches) ||
	    rdma_nl_put_driver_u64(msg, "odp_fault_errors", c.fault_errors) ||
	    rdma_nl_put_driver_u64(msg, "odp_mirror_bytes",
				   ib_umem_odp_mirror_bytes(umem_odp)) ||
	    rdma_nl_put_driver_u64(msg, "odp_mirror_pages",
				   ib_umem_odp_mirror_pages(umem_odp))) {
		nla_nest_cancel(msg, table_attr);
		return -EMSGSIZE;
	}
	nla_nest_end(msg, table_attr);
	return 0;
}

/* One SGE of a prefetch, with a reference on its MR */
struct rxe_odp_prefetch_frag {
	struct rxe_mr *mr;
	unsigned long va;
	unsigned long length;
};

struct rxe_odp_prefetch {
	struct work_struct work;
	enum ib_uverbs_advise_mr_advice advice;
	u32 num_sge;
	struct rxe_odp_prefetch_frag frags[] __counted_by(num_sge);
};

static int rxe_odp_prefetch_frag(struct rxe_odp_prefetch_frag *frag,
				 enum ib_uverbs_advise_mr_advice advice)
{
	struct rxe_mr *mr = frag->mr;
	struct ib_umem_odp *umem_odp = to_ib_umem_odp(mr->umem);
	unsigned long chunk = max_t(unsigned long, RXE_ODP_PREFETCH_CHUNK,
				    BIT(umem_odp->page_shift));
	bool fault = advice != IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT;
	unsigned long va = frag->va, end = frag->va + frag->length;
	u64 access = ODP_READ_ALLOWED_BIT;
	unsigned long next, npages;
	int err;

	if (advice == IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE)
		access |= ODP_WRITE_ALLOWED_BIT;

	while (va < end) {
		if (rxe_odp_mr_dying(mr))
			return -ENOENT;
		next = min(ALIGN_DOWN(va, chunk) + chunk, end);
		err = rxe_odp_map(mr, va, next, access, fault, &npages);
		trace_rxe_odp_prefetch(mr->elem.index, mr->lkey, va, next - va,
				       advice, npages, err);
		if (err)
			return err;
		ib_umem_odp_account_prefetch(umem_odp, npages);
		va = next;
		cond_resched();
	}
	return 0;
}

static void rxe_odp_prefetch_free(struct rxe_odp_prefetch *pf)
{
	u32 i;

	for (i = 0; i < pf->num_sge; i++)
		if (pf->frags[i].mr)
			rxe_put(pf->frags[i].mr);
	kvfree(pf);
}

static void rxe_odp_prefetch_work(struct work_struct *work)
{
	struct rxe_odp_prefetch *pf =
		container_of(work, struct rxe_odp_prefetch, work);
	u32 i;

	/* Nobody waits for the result: failures show in odp_fault_errors. */
	for (i = 0; i < pf->num_sge; i++)
		rxe_odp_prefetch_frag(&pf->frags[i], pf->advice);
	rxe_odp_prefetch_free(pf);
}

/* Look up and check the MR of an SGE; takes a reference on it. */
static int rxe_odp_prefetch_get(struct rxe_pd *pd,
				enum ib_uverbs_advise_mr_advice advice,
				const struct ib_sge *sge,
				struct rxe_odp_prefetch_frag *frag)
{
	struct rxe_mr *mr = lookup_mr(pd, 0, sge->lkey, RXE_LOOKUP_LOCAL);
	struct ib_umem_odp *umem_odp;
	unsigned long va;
	int err;

	if (!mr)
		return -ENOENT;
	err = -EINVAL;
	if (!rxe_mr_is_odp(mr))
		goto err;
	err = -EPERM;
	if (advice == IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE &&
	    !(mr->access & IB_ACCESS_LOCAL_WRITE))
		goto err;
	err = mr_check_range(mr, sge->addr, sge->length);
	if (err)
		goto err;
	umem_odp = to_ib_umem_odp(mr->umem);
	va = rxe_odp_va(mr, sge->addr);
	err = -EINVAL;
	/* An implicit MR is larger than its umem: @va may be past its end. */
	if (va < ib_umem_start(umem_odp) || va >= ib_umem_end(umem_odp) ||
	    sge->length > ib_umem_end(umem_odp) - va)
		goto err;

	frag->mr = mr;
	frag->va = va;
	frag->length = sge->length;
	return 0;

err:
	rxe_put(mr);
	return err;
}

/**
 * rxe_ib_advise_mr - the advise_mr verb: prefetch ranges of ODP MRs
 * @ibpd: the PD of the MRs
 * @advice: IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH (make readable),
 *	_PREFETCH_WRITE (make writable) or _PREFETCH_NO_FAULT (map what the
 *	CPU already maps, fault nothing)
 * @flags: IB_UVERBS_ADVISE_MR_FLAG_FLUSH to prefetch before returning;
 *	otherwise the prefetch runs later in a work item
 * @sg_list: the ranges: lkey, MR address and length
 * @num_sge: number of entries in @sg_list
 * @attrs: uverbs attributes (unused)
 *
 * Every SGE is checked before anything is prefetched.  The pages prefetched
 * are copied into the MTT, so later accesses to them do not fault, and are
 * counted in the MR's odp_prefetches.
 *
 * Context: process context, may sleep.
 * Return: 0; -EOPNOTSUPP for an unknown @advice; -ENOENT if an lkey names no
 * valid MR of @ibpd; -EINVAL for an MR that is not ODP or a range outside its
 * MR; -EPERM for a write prefetch of an MR without local write access;
 * -ENOMEM; with the flush flag, an error of the prefetch itself (-EFAULT
 * when a page cannot be faulted in, -ENOENT when the MR is deregistered
 * meanwhile).
 */
int rxe_ib_advise_mr(struct ib_pd *ibpd,
		     enum ib_uverbs_advise_mr_advice advice, u32 flags,
		     struct ib_sge *sg_list, u32 num_sge,
		     struct uverbs_attr_bundle *attrs)
{
	struct rxe_pd *pd = to_rpd(ibpd);
	struct rxe_odp_prefetch *pf;
	int err = 0;
	u32 i;

	switch (advice) {
	case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH:
	case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE:
	case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT:
		break;
	default:
		return -EOPNOTSUPP;
	}

	pf = kvzalloc(struct_size(pf, frags, num_sge), GFP_KERNEL);
	if (!pf)
		return -ENOMEM;
	pf->advice = advice;
	pf->num_sge = num_sge;
	for (i = 0; i < num_sge; i++) {
		err = rxe_odp_prefetch_get(pd, advice, &sg_list[i],
					   &pf->frags[i]);
		if (err)
			goto out;
	}

	if (!(flags & IB_UVERBS_ADVISE_MR_FLAG_FLUSH)) {
		INIT_WORK(&pf->work, rxe_odp_prefetch_work);
		queue_work(rxe_odp_wq, &pf->work);
		return 0;
	}

	for (i = 0; i < num_sge && !err; i++)
		err = rxe_odp_prefetch_frag(&pf->frags[i], advice);
out:
	rxe_odp_prefetch_free(pf);
	return err;
}

/**
 * rxe_odp_init - set up the ODP state of a device
 * @rxe: the device
 */
void rxe_odp_init(struct rxe_dev *rxe)
{
	spin_lock_init(&rxe->odp_lock);
	INIT_LIST_HEAD(&rxe->odp_mrs);
	memset(&rxe->odp_retired, 0, sizeof(rxe->odp_retired));
}

/**
 * rxe_odp_alloc_wq - create the workqueue of asynchronous prefetches
 *
 * Return: 0 or -ENOMEM.
 */
int rxe_odp_alloc_wq(void)
{
	rxe_odp_wq = alloc_workqueue("rxe_odp", WQ_UNBOUND, 0);
	return rxe_odp_wq ? 0 : -ENOMEM;
}

/**
 * rxe_odp_destroy_wq - destroy the workqueue of asynchronous prefetches
 *
 * Called once every device is gone: each prefetch still queued or running
 * then only has its own code left to run, which this waits for.
 */
void rxe_odp_destroy_wq(void)
{
	destroy_workqueue(rxe_odp_wq);
}
