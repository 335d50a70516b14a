/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * On-demand paging (ODP) user memory, built on the HMM mirror.
 *
 * An ODP umem pins nothing.  Its pages are faulted in and DMA-mapped on
 * demand by ib_umem_odp_map_and_lock() and are dropped again when the CPU
 * page tables change, after the driver's ->invalidate() op has stopped the
 * device from using them.  The page table behind it is a struct hmm_mirror
 * (include/linux/hmm_mirror.h): sparse, so the cost of a umem does not depend
 * on its size, only on what the device actually touches.
 *
 * Copyright (c) 2014 Mellanox Technologies. All rights reserved.
 */

#ifndef IB_UMEM_ODP_H
#define IB_UMEM_ODP_H

#include <linux/atomic.h>
#include <linux/hmm_mirror.h>
#include <linux/lockdep.h>
#include <rdma/ib_umem.h>
#include <rdma/ib_verbs.h>

struct ib_umem_odp;

/**
 * struct ib_umem_odp_ops - driver callbacks of an ODP umem
 * @invalidate: the CPU mapping of [@start, @end) is going away.  Stop all
 *	device access to the range (zap the device page table, flush caches)
 *	and return only once the device can no longer touch those pages.
 *	Called with the umem locked (see ib_umem_odp_lock()), in a context that
 *	may sleep; the range is already clipped to the umem.  The entries of
 *	the range are still valid during the call and can be looked up with
 *	ib_umem_odp_lookup() or ib_umem_odp_walk(); they are unmapped and
 *	cleared by the core right after the call returns.  The driver must
 *	not call ib_umem_odp_unmap_dma_pages() from here.
 */
struct ib_umem_odp_ops {
	void (*invalidate)(struct ib_umem_odp *umem_odp, unsigned long start,
			   unsigned long end);
};

/**
 * struct ib_umem_odp - an on-demand paging umem
 * @umem: the generic umem; @umem.is_odp is set
 * @mirror: the HMM mirror holding the umem's page table and its lock.  Private
 *	to the ODP core: drivers go through the ib_umem_odp_*() helpers.
 * @ops: driver callbacks, may be NULL (e.g. an implicit root whose children
 *	do all the mapping)
 * @tgid: the process that registered the umem; faults fail once it is gone
 * @private: for the driver to use
 * @is_implicit_odp: the umem mirrors the whole address space of its process
 *	(ib_umem_odp_alloc_implicit())
 * @tracks_dirty: the driver reports the pages its device writes
 *	(ib_umem_odp_track_dirty()); private to the ODP core
 * @page_shift: log2 of the ODP page size (PAGE_SHIFT or a huge page shift)
 * @start: first address mirrored, aligned to the ODP page size
 * @end: end of the mirrored range (exclusive), aligned to the ODP page size
 * @prefetches: pages prefetched, as accounted by ib_umem_odp_account_prefetch()
 * @fault_errors: failed ib_umem_odp_map_and_lock() calls
 */
struct ib_umem_odp {
	struct ib_umem umem;
	struct hmm_mirror mirror;
	const struct ib_umem_odp_ops *ops;
	struct pid *tgid;
	void *private;
	bool is_implicit_odp;
	bool tracks_dirty;
	unsigned int page_shift;
	unsigned long start;
	unsigned long end;
	atomic64_t prefetches;
	atomic64_t fault_errors;
};

/**
 * struct ib_umem_odp_counters - a snapshot of the event counters of a umem
 * @faults: successful faults (ib_umem_odp_map_and_lock() calls)
 * @pages_faulted: pages made present by faults
 * @invalidations: invalidations that hit at least one present page
 * @pages_invalidated: pages dropped by invalidations
 * @prefetches: pages prefetched (ib_umem_odp_account_prefetch())
 * @fault_errors: failed faults
 */
struct ib_umem_odp_counters {
	u64 faults;
	u64 pages_faulted;
	u64 invalidations;
	u64 pages_invalidated;
	u64 prefetches;
	u64 fault_errors;
};

/**
 * typedef ib_umem_odp_walk_fn - called for each present page by
 *	ib_umem_odp_walk()
 * @umem_odp: the umem being walked
 * @addr: virtual address of the ODP page
 * @dma: its DMA address; for a device using virtual DMA (ib_uses_virt_dma())
 *	this is the physical address of the page
 * @access: ODP_READ_ALLOWED_BIT, plus ODP_WRITE_ALLOWED_BIT if the device may
 *	write the page
 * @priv: the walker's private data
 *
 * Called with the umem locked; must not sleep.
 *
 * Return: 0 to go on, anything else stops the walk and is returned by it.
 */
typedef int (*ib_umem_odp_walk_fn)(struct ib_umem_odp *umem_odp,
				   unsigned long addr, dma_addr_t dma,
				   unsigned int access, void *priv);

/**
 * to_ib_umem_odp - the ODP umem of a umem
 * @umem: a umem with @umem->is_odp set
 *
 * Return: the ODP umem embedding @umem.
 */
static inline struct ib_umem_odp *to_ib_umem_odp(struct ib_umem *umem)
{
	return container_of(umem, struct ib_umem_odp, umem);
}

/**
 * ib_umem_start - first address of an ODP umem
 * @umem_odp: the umem
 *
 * Return: the first user virtual address mirrored, aligned down to the ODP
 * page size.
 */
static inline unsigned long ib_umem_start(struct ib_umem_odp *umem_odp)
{
	return umem_odp->start;
}

/**
 * ib_umem_end - end of an ODP umem
 * @umem_odp: the umem
 *
 * Return: the end (exclusive) of the mirrored range, aligned up to the ODP
 * page size.
 */
static inline unsigned long ib_umem_end(struct ib_umem_odp *umem_odp)
{
	return umem_odp->end;
}

/**
 * ib_umem_odp_num_pages - size of an ODP umem in ODP pages
 * @umem_odp: the umem
 *
 * Return: the number of ODP pages between ib_umem_start() and ib_umem_end().
 */
static inline size_t ib_umem_odp_num_pages(struct ib_umem_odp *umem_odp)
{
	return (ib_umem_end(umem_odp) - ib_umem_start(umem_odp)) >>
	       umem_odp->page_shift;
}

/**
 * ib_umem_odp_lock - lock an ODP umem against faults and invalidations
 * @umem_odp: the umem
 *
 * While the umem is locked its pages cannot be faulted in nor invalidated, so
 * the driver can update its device page table from ib_umem_odp_lookup() or
 * ib_umem_odp_walk() without racing with the ->invalidate() op.
 */
static inline void ib_umem_odp_lock(struct ib_umem_odp *umem_odp)
{
	hmm_mirror_lock(&umem_odp->mirror);
}

/**
 * ib_umem_odp_unlock - unlock an ODP umem
 * @umem_odp: the umem, locked by ib_umem_odp_lock() or by a successful
 *	ib_umem_odp_map_and_lock()
 */
static inline void ib_umem_odp_unlock(struct ib_umem_odp *umem_odp)
{
	hmm_mirror_unlock(&umem_odp->mirror);
}

/**
 * ib_umem_odp_assert_locked - lockdep check that an ODP umem is locked
 * @umem_odp: the umem
 */
static inline void ib_umem_odp_assert_locked(struct ib_umem_odp *umem_odp)
{
	hmm_mirror_lockdep_assert_held(&umem_odp->mirror);
}

/**
 * ib_umem_odp_account_prefetch - count pages prefetched into an ODP umem
 * @umem_odp: the umem
 * @npages: number of pages the prefetch mapped
 *
 * The core cannot tell a prefetch from a device fault, so drivers account
 * their prefetches (ib_advise_mr) themselves.
 */
static inline void ib_umem_odp_account_prefetch(struct ib_umem_odp *umem_odp,
						u64 npages)
{
	atomic64_add(npages, &umem_odp->prefetches);
}

/**
 * ib_umem_odp_mirror_pages - number of ODP pages currently mapped
 * @umem_odp: the umem, locked or not
 *
 * Return: the number of valid entries of the umem's mirror.  Without the lock
 * this is a snapshot that may already be stale.
 */
static inline unsigned long
ib_umem_odp_mirror_pages(struct ib_umem_odp *umem_odp)
{
	return hmm_mirror_nr_valid(&umem_odp->mirror);
}

/**
 * ib_umem_odp_mirror_bytes - memory used by the page table of an ODP umem
 * @umem_odp: the umem, locked or not
 *
 * Return: the bytes allocated for the page table of the umem's mirror, as
 * counted by hmm_mirror_metadata_bytes().
 */
static inline size_t ib_umem_odp_mirror_bytes(struct ib_umem_odp *umem_odp)
{
	return hmm_mirror_metadata_bytes(&umem_odp->mirror);
}

/*
 * Access bits of an ODP page, as requested from ib_umem_odp_map_and_lock()
 * and as reported by ib_umem_odp_lookup() and ib_umem_odp_walk().
 */
#define ODP_READ_ALLOWED_BIT	BIT(0)
#define ODP_WRITE_ALLOWED_BIT	BIT(1)

#ifdef CONFIG_INFINIBAND_ON_DEMAND_PAGING

struct ib_umem_odp *ib_umem_odp_get(struct ib_device *device,
				    unsigned long addr, size_t size,
				    int access,
				    const struct ib_umem_odp_ops *ops);
struct ib_umem_odp *ib_umem_odp_alloc_implicit(struct ib_device *device,
					       int access,
					       const struct ib_umem_odp_ops *ops);
struct ib_umem_odp *ib_umem_odp_alloc_child(struct ib_umem_odp *root,
					    unsigned long addr, size_t size,
					    const struct ib_umem_odp_ops *ops);
void ib_umem_odp_release(struct ib_umem_odp *umem_odp);

int ib_umem_odp_map_and_lock(struct ib_umem_odp *umem_odp, u64 user_va,
			     u64 bcnt, u64 access_mask, bool fault);
void ib_umem_odp_unmap_dma_pages(struct ib_umem_odp *umem_odp, u64 start,
				 u64 end);
void ib_umem_odp_track_dirty(struct ib_umem_odp *umem_odp);
void ib_umem_odp_set_dirty(struct ib_umem_odp *umem_odp, unsigned long start,
			   unsigned long end);

unsigned int ib_umem_odp_lookup(struct ib_umem_odp *umem_odp,
				unsigned long addr, dma_addr_t *dma,
				struct page **page);
int ib_umem_odp_walk(struct ib_umem_odp *umem_odp, unsigned long start,
		     unsigned long end, ib_umem_odp_walk_fn fn, void *priv);
void ib_umem_odp_get_counters(struct ib_umem_odp *umem_odp,
			      struct ib_umem_odp_counters *counters);

#else /* CONFIG_INFINIBAND_ON_DEMAND_PAGING */

static inline struct ib_umem_odp *
ib_umem_odp_get(struct ib_device *device, unsigned long addr, size_t size,
		int access, const struct ib_umem_odp_ops *ops)
{
	return ERR_PTR(-EINVAL);
}

static inline void ib_umem_odp_release(struct ib_umem_odp *umem_odp) {}

#endif /* CONFIG_INFINIBAND_ON_DEMAND_PAGING */

#endif /* IB_UMEM_ODP_H */
