// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Soft-RoCE on-demand paging: ODP memory regions on the HMM mirror.
 *
 * The translation table (MTT) of an ODP MR is mr->odp_mtt, an xarray indexed
 * by virtual page number whose entries are struct page pointers, tagged with
 * RXE_ODP_WRITABLE when the device may write the page.  Every access to MR
 * memory (requester, responder and completer copies, atomics) looks the
 * pages up there without locks, under RCU.  A missing entry, or a read-only
 * entry for a write, enters the page-fault handler: it calls
 * hmm_mirror_fault() (through ib_umem_odp_map_and_lock()) for the needed
 * range rounded out to RXE_ODP_FAULT_SIZE and clipped to the MR, fills the
 * MTT from the mirror entries under the mirror lock, and the access retries.
 *
 * All of this runs in rxe's QP tasks, which are work items: faults may
 * sleep.  Packets arriving in softirq context are only queued to the QP's
 * task, so their order is kept and nothing spins.
 *
 * The invalidate op zaps the MTT entries of the range, then waits for an RCU
 * grace period: a copy that found a page before the zap has finished with it
 * when invalidation returns, and a copy starting after the zap faults.
 */

#include <linux/hmm_mirror.h>
#include <linux/highmem.h>
#include <linux/rcupdate.h>
#include <rdma/ib_umem_odp.h>

#include "rxe.h"
#include "rxe_loc.h"

/* Faults are served in blocks of this size around the missing pages. */
#define RXE_ODP_FAULT_SIZE	SZ_2M

/* Faults that time out on racing invalidations (-EBUSY) are tried again. */
#define RXE_ODP_BUSY_RETRIES	10

/* xarray pointer tag of an MTT entry the device may write through */
#define RXE_ODP_WRITABLE	1UL

static inline unsigned long rxe_odp_va(struct rxe_mr *mr, u64 iova)
{
	return iova - mr->ibmr.iova + mr->umem->address;
}

static void rxe_odp_invalidate(struct ib_umem_odp *umem_odp,
			       unsigned long start, unsigned long end)
{
	struct rxe_mr *mr = umem_odp->private;
	XA_STATE(xas, &mr->odp_mtt, start >> PAGE_SHIFT);
	bool zapped = false;
	void *entry;

	xas_lock(&xas);
	xas_for_each(&xas, entry, (end - 1) >> PAGE_SHIFT) {
		/* a slot reserved by a fault (rxe_odp_reserve()): no page */
		if (xa_is_zero(entry))
			continue;
		xas_store(&xas, NULL);
		zapped = true;
		if (need_resched()) {
			xas_pause(&xas);
			xas_unlock(&xas);
			cond_resched();
			xas_lock(&xas);
		}
	}
	xas_unlock(&xas);

	/* Wait for the copies that found one of these pages before the zap. */
	if (zapped)
		synchronize_rcu_expedited();
}

static const struct ib_umem_odp_ops rxe_odp_ops = {
	.invalidate = rxe_odp_invalidate,
};

static int rxe_odp_fill_entry(struct ib_umem_odp *umem_odp,
			      unsigned long addr, dma_addr_t dma,
			      unsigned int access, void *priv)
{
	unsigned long i, n = 1UL << (umem_odp->page_shift - PAGE_SHIFT);
	unsigned long tag = access & ODP_WRITE_ALLOWED_BIT ? RXE_ODP_WRITABLE : 0;
	/* rxe does not DMA-map: the mirror hands out physical addresses. */
	struct page *page = pfn_to_page(PHYS_PFN(dma));
	struct rxe_mr *mr = priv;
	void *old;

	/*
	 * The umem is locked, and its invalidation runs in reclaim: no
	 * allocation here may reclaim.  rxe_odp_fault() reserved the slots;
	 * one lost to an invalidation since is -ENOMEM, and the fault retries.
	 */
	for (i = 0; i < n; i++) {
		old = xa_store(&mr->odp_mtt, (addr >> PAGE_SHIFT) + i,
			       xa_tag_pointer(page + i, tag),
			       GFP_NOWAIT | __GFP_NOWARN);
		if (xa_is_err(old))
			return xa_err(old);
	}
	return 0;
}

/*
 * Make room in the MTT for every page of [start, end), widened to whole ODP
 * pages, before the umem is locked: filling it then needs no allocation.
 */
static int rxe_odp_reserve(struct rxe_mr *mr, unsigned long start,
			   unsigned long end)
{
	struct ib_umem_odp *umem_odp = to_ib_umem_odp(mr->umem);
	unsigned long idx = ALIGN_DOWN(start, BIT(umem_odp->page_shift)) >>
			    PAGE_SHIFT;
	unsigned long last = ALIGN(end, BIT(umem_odp->page_shift)) >> PAGE_SHIFT;
	int err;

	for (; idx < last; idx++) {
		err = xa_reserve(&mr->odp_mtt, idx, GFP_KERNEL);
		if (err)
			return err;
		cond_resched();
	}
	return 0;
}

/* Fault [start, end) in and copy it into the MTT; retries a lost slot. */
static int rxe_odp_map(struct rxe_mr *mr, unsigned long start,
		       unsigned long end, u64 access)
{
	struct ib_umem_odp *umem_odp = to_ib_umem_odp(mr->umem);
	int err, tries = 3;

	do {
		err = rxe_odp_reserve(mr, start, end);
		if (err)
			return err;
		err = ib_umem_odp_map_and_lock(umem_odp, start, end - start,
					       access, true);
		if (err < 0)
			return err;
		err = ib_umem_odp_walk(umem_odp, start, end, rxe_odp_fill_entry,
				       mr);
		ib_umem_odp_unlock(umem_odp);
	} while (err == -ENOMEM && --tries);
	return err;
}

/*
 * rxe_odp_fault - the page-fault handler of an ODP MR
 *
 * Makes [va, va + length) present in the MTT, writable if @write.  Faults a
 * whole RXE_ODP_FAULT_SIZE block around it when the block is mapped, or just
 * the needed pages when it is not (a hole or a read-only mapping in the
 * block must not fail an access that does not touch it).
 */
static int rxe_odp_fault(struct rxe_mr *mr, unsigned long va,
			 unsigned int length, bool write)
{
	struct ib_umem_odp *umem_odp = to_ib_umem_odp(mr->umem);
	u64 access = ODP_READ_ALLOWED_BIT | (write ? ODP_WRITE_ALLOWED_BIT : 0);
	unsigned long start, end;
	int err, tries;

	might_sleep();
	start = max(ALIGN_DOWN(va, RXE_ODP_FAULT_SIZE), ib_umem_start(umem_odp));
	end = min(ALIGN(va + length, RXE_ODP_FAULT_SIZE), ib_umem_end(umem_odp));
	err = rxe_odp_map(mr, start, end, access);
	if (err < 0 && (start < ALIGN_DOWN(va, PAGE_SIZE) ||
			end > PAGE_ALIGN(va + length))) {
		start = ALIGN_DOWN(va, PAGE_SIZE);
		end = PAGE_ALIGN(va + length);
		err = rxe_odp_map(mr, start, end, access);
	}
	/*
	 * -EBUSY: invalidations of the MR kept racing with the fault for a
	 * whole time-out (reclaim of the MR's own pages under memory
	 * pressure).  Transient, not a protection error: try again.
	 */
	for (tries = RXE_ODP_BUSY_RETRIES; err == -EBUSY && tries; tries--) {
		if (fatal_signal_pending(current))
			break;
		cond_resched();
		err = rxe_odp_map(mr, start, end, access);
	}
	if (err < 0)
		rxe_dbg_mr(mr, "fault at %#lx+%u failed, err = %d\n", va,
			   length, err);
	return err;
}

static inline struct page *rxe_odp_lookup(struct rxe_mr *mr, unsigned long va,
					  bool write)
{
	void *entry = xa_load(&mr->odp_mtt, va >> PAGE_SHIFT);

	if (!entry || (write && xa_pointer_tag(entry) != RXE_ODP_WRITABLE))
		return NULL;
	return xa_untag_pointer(entry);
}

/* Copy what is present, page by page; return the number of bytes copied. */
static unsigned int rxe_odp_copy_present(struct rxe_mr *mr, unsigned long va,
					 void *addr, unsigned int length,
					 enum rxe_mr_copy_dir dir)
{
	bool to_mr = dir == RXE_TO_MR_OBJ;
	unsigned int done = 0;

	while (done < length) {
		unsigned int offset = (va + done) & ~PAGE_MASK;
		unsigned int bytes = min_t(unsigned int, length - done,
					   PAGE_SIZE - offset);
		struct page *page;
		u8 *kaddr;

		rcu_read_lock();
		page = rxe_odp_lookup(mr, va + done, to_mr);
		if (!page) {
			rcu_read_unlock();
			break;
		}
		kaddr = kmap_local_page(page);
		if (to_mr)
			memcpy(kaddr + offset, addr + done, bytes);
		else
			memcpy(addr + done, kaddr + offset, bytes);
		kunmap_local(kaddr);
		rcu_read_unlock();
		done += bytes;
	}
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
 * Context: process context (rxe QP tasks); may sleep.
 * Return: 0, or -EFAULT when a page could not be faulted in.
 */
int rxe_odp_mr_copy(struct rxe_mr *mr, u64 iova, void *addr,
		    unsigned int length, enum rxe_mr_copy_dir dir)
{
	unsigned long va = rxe_odp_va(mr, iova);
	unsigned int done;

	for (;;) {
		done = rxe_odp_copy_present(mr, va, addr, length, dir);
		if (done == length)
			return 0;
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

/*
 * Find the page of @va for an atomic access, faulting it in writable if
 * needed.  On success the caller is in an RCU read-side section that keeps
 * the page from being invalidated; it must rcu_read_unlock() when done and
 * must not sleep until then.
 */
static struct page *rxe_odp_get_writable(struct rxe_mr *mr, unsigned long va)
{
	struct page *page;
	int err;

	for (;;) {
		rcu_read_lock();
		page = rxe_odp_lookup(mr, va, true);
		if (page)
			return page;
		rcu_read_unlock();
		err = rxe_odp_fault(mr, va, sizeof(u64), true);
		if (err)
			return ERR_PTR(err);
	}
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
	unsigned long va = rxe_odp_va(mr, iova);
	struct page *page;
	u64 *kaddr;

	if (unlikely(va & 7))
		return RESPST_ERR_MISALIGNED_ATOMIC;

	page = rxe_odp_get_writable(mr, va);
	if (IS_ERR(page))
		return RESPST_ERR_RKEY_VIOLATION;
	kaddr = kmap_local_page(page);
	rxe_atomic_op_page(kaddr + ((va & ~PAGE_MASK) >> 3), opcode, compare,
			   swap_add, orig_val);
	kunmap_local(kaddr);
	rcu_read_unlock();
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
	unsigned long va = rxe_odp_va(mr, iova);
	struct page *page;
	u64 *kaddr;

	if (unlikely(va & 7))
		return RESPST_ERR_MISALIGNED_ATOMIC;

	page = rxe_odp_get_writable(mr, va);
	if (IS_ERR(page))
		return RESPST_ERR_RKEY_VIOLATION;
	kaddr = kmap_local_page(page);
	/* Do atomic write after all prior operations have completed */
	smp_store_release(&kaddr[(va & ~PAGE_MASK) >> 3], value);
	kunmap_local(kaddr);
	rcu_read_unlock();
	return 0;
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

	if (access & (IB_ACCESS_FLUSH_GLOBAL | IB_ACCESS_FLUSH_PERSISTENT))
		return -EOPNOTSUPP;

	rxe_mr_init(access, mr);
	xa_init(&mr->odp_mtt);

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

	/* No entry is valid before the first fault: no invalidation yet. */
	umem_odp->private = mr;
	mr->umem = &umem_odp->umem;
	mr->ibmr.type = IB_MR_TYPE_USER;
	mr->state = RXE_MR_STATE_VALID;
	return 0;
}

/**
 * rxe_odp_mr_cleanup - release the ODP state of an MR
 * @mr: the ODP MR
 *
 * Releasing the umem removes the mirror, so no invalidation can run after
 * it; only then is the MTT freed.
 */
void rxe_odp_mr_cleanup(struct rxe_mr *mr)
{
	ib_umem_release(mr->umem);
	mr->umem = NULL;
	xa_destroy(&mr->odp_mtt);
}
