// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * On-demand paging (ODP) user memory on top of the HMM mirror.
 *
 * Each ODP umem owns one struct hmm_mirror.  The mirror does the hard part:
 * the mmu_interval_notifier, the hmm_range_fault() sequence/retry protocol,
 * the DMA mapping and the sparse page table.  What is left here is the RDMA
 * policy: access checks at registration, the implicit (whole address space)
 * and child umems, the mapping of IB access bits onto mirror faults, dirty
 * accounting and the translation of mirror entries for drivers.
 *
 * Locking: the mirror lock is the umem lock.  A successful
 * ib_umem_odp_map_and_lock() returns with it held so that the driver can
 * program its device page table before any invalidation can run; the
 * driver's ->invalidate() op is called with it held.
 *
 * Copyright (c) 2014 Mellanox Technologies. All rights reserved.
 */

#include <linux/export.h>
#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>

#include <rdma/ib_umem_odp.h>

static void ib_umem_odp_mirror_invalidate(struct hmm_mirror *mirror,
					  unsigned long start,
					  unsigned long end)
{
	struct ib_umem_odp *umem_odp =
		container_of(mirror, struct ib_umem_odp, mirror);

	start = max(start, umem_odp->start);
	end = min(end, umem_odp->end);
	if (start >= end || !umem_odp->ops || !umem_odp->ops->invalidate)
		return;
	umem_odp->ops->invalidate(umem_odp, start, end);
}

static const struct hmm_mirror_ops ib_umem_odp_mirror_ops = {
	.invalidate = ib_umem_odp_mirror_invalidate,
};

/*
 * Devices that use virtual DMA (soft-RoCE, siw) reach memory through the CPU:
 * the mirror does not DMA-map for them and hands out physical addresses.
 */
static struct device *ib_umem_odp_dma_dev(struct ib_device *device)
{
	return ib_uses_virt_dma(device) ? NULL : device->dma_device;
}

/*
 * The common part of the three constructors: a umem of @device over @mm,
 * owned by @tgid (a reference the umem takes), with no mirror yet.  Undone
 * by ib_umem_odp_free() until the mirror is initialised.
 */
static struct ib_umem_odp *ib_umem_odp_alloc(struct ib_device *device,
					     struct mm_struct *mm, int access,
					     const struct ib_umem_odp_ops *ops,
					     struct pid *tgid)
{
	struct ib_umem_odp *umem_odp;

	umem_odp = kzalloc(sizeof(*umem_odp), GFP_KERNEL);
	if (!umem_odp)
		return NULL;

	umem_odp->tgid = get_pid(tgid);
	umem_odp->umem.ibdev = device;
	umem_odp->umem.writable = ib_access_writable(access);
	umem_odp->umem.owning_mm = mm;
	umem_odp->umem.is_odp = 1;
	umem_odp->ops = ops;
	umem_odp->page_shift = PAGE_SHIFT;
	atomic64_set(&umem_odp->prefetches, 0);
	atomic64_set(&umem_odp->fault_errors, 0);
	return umem_odp;
}

static void ib_umem_odp_free(struct ib_umem_odp *umem_odp)
{
	put_pid(umem_odp->tgid);
	kfree(umem_odp);
}

/* The thread group leader of the current process */
static struct pid *ib_umem_odp_current_tgid(void)
{
	return task_pid(current->group_leader);
}

/*
 * Cache the geometry of a freshly initialised mirror, so that ib_umem_start()
 * and friends are plain loads.
 */
static void ib_umem_odp_set_range(struct ib_umem_odp *umem_odp)
{
	umem_odp->start = hmm_mirror_start(&umem_odp->mirror);
	umem_odp->end = hmm_mirror_end(&umem_odp->mirror);
}

static int ib_umem_odp_init_range(struct ib_umem_odp *umem_odp,
				  struct mm_struct *mm, unsigned long addr,
				  unsigned long end)
{
	unsigned long page_size = BIT(umem_odp->page_shift);
	unsigned long start = ALIGN_DOWN(addr, page_size);
	unsigned long aligned_end = ALIGN(end, page_size);
	int ret;

	/* ALIGN() wrapped around the top of the address space. */
	if (aligned_end < end)
		return -EINVAL;

	ret = hmm_mirror_init(&umem_odp->mirror, mm, start, aligned_end - start,
			      umem_odp->page_shift,
			      ib_umem_odp_dma_dev(umem_odp->umem.ibdev),
			      &ib_umem_odp_mirror_ops);
	if (ret)
		return ret;
	ib_umem_odp_set_range(umem_odp);
	return 0;
}

#ifdef CONFIG_HUGETLB_PAGE
/*
 * IB_ACCESS_HUGETLB promises that [start, end) is backed by hugetlb pages of
 * one size.  Check it, and return that size, so that the mirror can use one
 * entry per huge page.
 */
static int ib_umem_odp_hugetlb_shift(struct mm_struct *mm, unsigned long start,
				     unsigned long end, unsigned int *shift)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;
	unsigned long next = start;
	unsigned int page_shift = 0;
	int ret = 0;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	for_each_vma_range(vmi, vma, end) {
		unsigned int vma_shift;

		if (vma->vm_start > next || !is_vm_hugetlb_page(vma)) {
			ret = -EINVAL;
			break;
		}
		vma_shift = huge_page_shift(hstate_vma(vma));
		if (page_shift && vma_shift != page_shift) {
			ret = -EINVAL;
			break;
		}
		page_shift = vma_shift;
		next = vma->vm_end;
		if (next >= end)
			break;
	}
	mmap_read_unlock(mm);

	if (ret)
		return ret;
	if (next < end)
		return -EINVAL;
	*shift = page_shift;
	return 0;
}
#else
static int ib_umem_odp_hugetlb_shift(struct mm_struct *mm, unsigned long start,
				     unsigned long end, unsigned int *shift)
{
	return -EINVAL;
}
#endif

/**
 * ib_umem_odp_get - create an ODP umem over a range of the current process
 * @device: IB device the memory is registered with
 * @addr: first user virtual address of the range
 * @size: length of the range in bytes, not zero
 * @access: IB_ACCESS_* flags; IB_ACCESS_ON_DEMAND must be set
 * @ops: driver callbacks; ->invalidate() is required once pages are mapped
 *
 * Nothing is pinned or mapped, and no memory proportional to @size is
 * allocated: pages are brought in by ib_umem_odp_map_and_lock() and dropped by
 * invalidations.  With IB_ACCESS_HUGETLB the whole range must be covered by
 * hugetlb mappings of a single huge page size, which becomes the ODP page
 * size.
 *
 * Context: process context of the registering process.
 * Return: the new umem, or an ERR_PTR(): -EINVAL for bad access flags, a zero
 * or overflowing range, a range not backed by hugetlb pages as requested or
 * a caller without an mm, -ENOMEM on allocation failure.
 */
struct ib_umem_odp *ib_umem_odp_get(struct ib_device *device,
				    unsigned long addr, size_t size, int access,
				    const struct ib_umem_odp_ops *ops)
{
	struct mm_struct *mm = current->mm;
	struct ib_umem_odp *umem_odp;
	unsigned int page_shift = PAGE_SHIFT;
	unsigned long end;
	int ret;

	if (WARN_ON_ONCE(!(access & IB_ACCESS_ON_DEMAND)))
		return ERR_PTR(-EINVAL);
	if (!size || check_add_overflow(addr, (unsigned long)size, &end))
		return ERR_PTR(-EINVAL);
	if (!mm)
		return ERR_PTR(-EINVAL);

	if (access & IB_ACCESS_HUGETLB) {
		ret = ib_umem_odp_hugetlb_shift(mm, addr, end, &page_shift);
		if (ret)
			return ERR_PTR(ret);
	}

	umem_odp = ib_umem_odp_alloc(device, mm, access, ops,
				     ib_umem_odp_current_tgid());
	if (!umem_odp)
		return ERR_PTR(-ENOMEM);
	umem_odp->umem.address = addr;
	umem_odp->umem.length = size;
	umem_odp->page_shift = page_shift;

	ret = ib_umem_odp_init_range(umem_odp, mm, addr, end);
	if (ret) {
		ib_umem_odp_free(umem_odp);
		return ERR_PTR(ret);
	}
	return umem_odp;
}
EXPORT_SYMBOL(ib_umem_odp_get);

/**
 * ib_umem_odp_alloc_implicit - create an implicit ODP umem
 * @device: IB device the memory is registered with
 * @access: IB_ACCESS_* flags; IB_ACCESS_HUGETLB is not supported
 * @ops: driver callbacks, or NULL if the driver maps only through children
 *	(ib_umem_odp_alloc_child())
 *
 * An implicit umem mirrors the whole user address space of the current
 * process with a single mirror.  The mirror's page table is sparse, so only
 * the parts the device touches cost memory.  ib_umem_start() and
 * ib_umem_end() report the range the mirror covers.
 *
 * Context: process context of the registering process.
 * Return: the new umem, or an ERR_PTR() (-EINVAL, -ENOMEM).
 */
struct ib_umem_odp *ib_umem_odp_alloc_implicit(struct ib_device *device,
					       int access,
					       const struct ib_umem_odp_ops *ops)
{
	struct mm_struct *mm = current->mm;
	struct ib_umem_odp *umem_odp;
	int ret;

	if (access & IB_ACCESS_HUGETLB)
		return ERR_PTR(-EINVAL);
	if (!mm)
		return ERR_PTR(-EINVAL);

	umem_odp = ib_umem_odp_alloc(device, mm, access, ops,
				     ib_umem_odp_current_tgid());
	if (!umem_odp)
		return ERR_PTR(-ENOMEM);
	umem_odp->is_implicit_odp = true;

	ret = hmm_mirror_init_whole(&umem_odp->mirror, mm,
				    ib_umem_odp_dma_dev(device),
				    &ib_umem_odp_mirror_ops);
	if (ret) {
		ib_umem_odp_free(umem_odp);
		return ERR_PTR(ret);
	}
	ib_umem_odp_set_range(umem_odp);
	return umem_odp;
}
EXPORT_SYMBOL(ib_umem_odp_alloc_implicit);

/**
 * ib_umem_odp_alloc_child - create an explicit ODP umem under an implicit one
 * @root: implicit umem from ib_umem_odp_alloc_implicit(); the caller keeps it
 *	alive during the call
 * @addr: first user virtual address of the child
 * @size: length of the child in bytes, not zero
 * @ops: driver callbacks of the child
 *
 * For drivers that build an implicit MR out of fixed-size explicit chunks
 * (mlx5): the child is an ordinary explicit umem over [@addr, @addr + @size)
 * of the root's mm, with the root's device, access and owner.  It has its own
 * mirror and lock, and is released with ib_umem_odp_release().
 *
 * Context: any process context; the root's mm may belong to another process.
 * Return: the new umem, or an ERR_PTR(): -EINVAL for a bad root or range,
 * -EFAULT if the root's mm is gone, -ENOMEM.
 */
struct ib_umem_odp *ib_umem_odp_alloc_child(struct ib_umem_odp *root,
					    unsigned long addr, size_t size,
					    const struct ib_umem_odp_ops *ops)
{
	struct mm_struct *mm = root->umem.owning_mm;
	struct ib_umem_odp *umem_odp;
	unsigned long end;
	int ret;

	if (WARN_ON(!root->is_implicit_odp))
		return ERR_PTR(-EINVAL);
	if (!size || check_add_overflow(addr, (unsigned long)size, &end))
		return ERR_PTR(-EINVAL);

	umem_odp = ib_umem_odp_alloc(root->umem.ibdev, mm, 0, ops, root->tgid);
	if (!umem_odp)
		return ERR_PTR(-ENOMEM);
	umem_odp->umem.address = addr;
	umem_odp->umem.length = size;
	umem_odp->umem.writable = root->umem.writable;

	/*
	 * Registering a notifier needs a live mm; the root only keeps the mm
	 * struct itself alive.
	 */
	if (!mmget_not_zero(mm)) {
		ret = -EFAULT;
		goto err_free;
	}
	ret = ib_umem_odp_init_range(umem_odp, mm, addr, end);
	mmput(mm);
	if (ret)
		goto err_free;
	return umem_odp;

err_free:
	ib_umem_odp_free(umem_odp);
	return ERR_PTR(ret);
}
EXPORT_SYMBOL(ib_umem_odp_alloc_child);

/**
 * ib_umem_odp_release - destroy an ODP umem
 * @umem_odp: the umem
 *
 * Unmaps every page still mapped (dirtying those the device could write),
 * stops the invalidation callbacks and frees the umem.  The driver must have
 * made sure that the device no longer uses the umem's pages and that no
 * fault on it is in progress.
 *
 * Context: process context, may sleep.  The umem must not be locked.
 */
void ib_umem_odp_release(struct ib_umem_odp *umem_odp)
{
	/* unmaps (and dirties) what is still mapped, then stops the notifier */
	hmm_mirror_destroy(&umem_odp->mirror);
	ib_umem_odp_free(umem_odp);
}
EXPORT_SYMBOL(ib_umem_odp_release);

/**
 * ib_umem_odp_map_and_lock - fault in and map part of an ODP umem, then lock it
 * @umem_odp: the umem
 * @user_va: first user virtual address needed
 * @bcnt: number of bytes needed from @user_va
 * @access_mask: ODP_READ_ALLOWED_BIT, plus ODP_WRITE_ALLOWED_BIT if the device
 *	is going to write; unless the driver tracks what it writes
 *	(ib_umem_odp_track_dirty()), a write mapping marks the pages dirty, so
 *	that they are written back once unmapped
 * @fault: fault in missing pages; when false only the pages already present
 *	in the CPU page tables are mapped (snapshot) and nothing is faulted
 *
 * The range is widened to whole ODP pages.  On success the umem is left
 * locked, so that the driver can copy the mapping into its device page table
 * (ib_umem_odp_lookup(), ib_umem_odp_walk()) before an invalidation can run;
 * the driver then calls ib_umem_odp_unlock().  In snapshot mode pages that are
 * not present stay unmapped and show up as such.
 *
 * Context: process context, may sleep; the umem must not be locked.
 * Return: the number of ODP pages of the widened range, with the umem locked;
 * or, with the umem unlocked, -EFAULT if the range is not inside the umem or
 * cannot be faulted in, -EINVAL if @access_mask is empty, the range spans
 * more than INT_MAX pages or the owning process is gone, -EINTR if the
 * owning process has a fatal signal pending, -EPERM for a write
 * to a read-only umem, or another error of hmm_mirror_fault().
 */
int ib_umem_odp_map_and_lock(struct ib_umem_odp *umem_odp, u64 user_va,
			     u64 bcnt, u64 access_mask, bool fault)
{
	unsigned long page_size = BIT(umem_odp->page_shift);
	bool write = access_mask & ODP_WRITE_ALLOWED_BIT;
	struct task_struct *owner;
	unsigned long start, end;
	unsigned int flags;
	u64 va_end;
	int ret;

	if (!(access_mask & (ODP_READ_ALLOWED_BIT | ODP_WRITE_ALLOWED_BIT))) {
		ret = -EINVAL;
		goto err;
	}
	if (check_add_overflow(user_va, bcnt, &va_end) ||
	    user_va < umem_odp->start || va_end > umem_odp->end) {
		ret = -EFAULT;
		goto err;
	}
	if (write && !umem_odp->umem.writable) {
		ret = -EPERM;
		goto err;
	}

	start = ALIGN_DOWN(user_va, page_size);
	end = ALIGN(va_end, page_size);
	/* The page count is returned as an int. */
	if ((end - start) >> umem_odp->page_shift > INT_MAX) {
		ret = -EINVAL;
		goto err;
	}
	if (start == end) {
		/* Nothing to map, but callers expect the lock either way. */
		ib_umem_odp_lock(umem_odp);
		return 0;
	}

	/*
	 * The mm may outlive the process that registered the umem; do not
	 * fault on behalf of a process that no longer exists.
	 */
	owner = get_pid_task(umem_odp->tgid, PIDTYPE_PID);
	if (!owner) {
		ret = -EINVAL;
		goto err;
	}
	/*
	 * Nor for one that is being killed: its memory is about to go, and
	 * the fault may run in a kernel worker that the signal cannot stop.
	 */
	if (fatal_signal_pending(owner)) {
		put_task_struct(owner);
		ret = -EINTR;
		goto err;
	}

	if (fault)
		flags = write ? HMM_MIRROR_FAULT_WRITE : 0;
	else
		flags = HMM_MIRROR_FAULT_SNAPSHOT;
	ret = hmm_mirror_fault(&umem_odp->mirror, start, end - start, flags);
	put_task_struct(owner);
	if (ret)
		goto err;

	/*
	 * The device may write from now on.  Unless the driver reports what
	 * it writes itself (ib_umem_odp_track_dirty()), have the mirror dirty
	 * every page of the range when it unmaps them.
	 */
	if (write && !umem_odp->tracks_dirty)
		hmm_mirror_set_dirty(&umem_odp->mirror, start, end);

	return (end - start) >> umem_odp->page_shift;

err:
	atomic64_inc(&umem_odp->fault_errors);
	return ret;
}
EXPORT_SYMBOL(ib_umem_odp_map_and_lock);

/**
 * ib_umem_odp_track_dirty - the driver reports the pages its device writes
 * @umem_odp: a new umem, before its first fault
 *
 * By default every page of a write fault is marked dirty when it is
 * unmapped, because an adapter cannot tell which pages it really wrote.  A
 * driver that knows (one that copies the data itself, like soft-RoCE) calls
 * this once after creating the umem and then reports each page its device
 * writes with ib_umem_odp_set_dirty(); only those pages are dirtied.
 */
void ib_umem_odp_track_dirty(struct ib_umem_odp *umem_odp)
{
	umem_odp->tracks_dirty = true;
}
EXPORT_SYMBOL(ib_umem_odp_track_dirty);

/**
 * ib_umem_odp_set_dirty - record that the device wrote part of a locked umem
 * @umem_odp: the umem, locked, with ib_umem_odp_track_dirty() set
 * @start: first user virtual address written
 * @end: end of the range written (exclusive)
 *
 * The range is clipped to the umem and widened to whole ODP pages.  Its
 * writable pages are marked dirty when they are unmapped (by an
 * invalidation, ib_umem_odp_unmap_dma_pages() or release); call it before
 * that, for instance from the ->invalidate() op.  Does not sleep.
 */
void ib_umem_odp_set_dirty(struct ib_umem_odp *umem_odp, unsigned long start,
			   unsigned long end)
{
	ib_umem_odp_assert_locked(umem_odp);

	start = max(start, umem_odp->start);
	end = min(end, umem_odp->end);
	if (start < end)
		hmm_mirror_set_dirty(&umem_odp->mirror, start, end);
}
EXPORT_SYMBOL(ib_umem_odp_set_dirty);

/**
 * ib_umem_odp_unmap_dma_pages - unmap part of a locked ODP umem
 * @umem_odp: the umem, locked
 * @start: first user virtual address to unmap
 * @end: end of the range to unmap (exclusive)
 *
 * The range is clipped to the umem.  Pages the device may have written are
 * marked dirty (see ib_umem_odp_track_dirty()).  The driver must have
 * stopped the device from using the range first;
 * the ->invalidate() op is not called.
 */
void ib_umem_odp_unmap_dma_pages(struct ib_umem_odp *umem_odp, u64 start,
				 u64 end)
{
	ib_umem_odp_assert_locked(umem_odp);

	start = max_t(u64, start, umem_odp->start);
	end = min_t(u64, end, umem_odp->end);
	if (start >= end)
		return;
	hmm_mirror_unmap(&umem_odp->mirror, start, end);
}
EXPORT_SYMBOL(ib_umem_odp_unmap_dma_pages);

/* The ODP access bits of a mirror entry (writable only after a write fault) */
static unsigned int ib_umem_odp_entry_access(u64 entry)
{
	if (!hmm_mirror_entry_valid(entry))
		return 0;
	if (hmm_mirror_entry_writable(entry))
		return ODP_READ_ALLOWED_BIT | ODP_WRITE_ALLOWED_BIT;
	return ODP_READ_ALLOWED_BIT;
}

/**
 * ib_umem_odp_lookup - look up the mapping of one page of a locked ODP umem
 * @umem_odp: the umem, locked
 * @addr: any user virtual address inside the ODP page of interest
 * @dma: if not NULL and the page is mapped, set to its DMA address (the
 *	physical address for virtual-DMA devices, see ib_uses_virt_dma())
 * @page: if not NULL and the page is mapped, set to its struct page (the head
 *	of the ODP page, which may be a huge page)
 *
 * Return: 0 if the page is not mapped (or @addr is outside the umem),
 * otherwise ODP_READ_ALLOWED_BIT, with ODP_WRITE_ALLOWED_BIT if the device
 * may write it.
 */
unsigned int ib_umem_odp_lookup(struct ib_umem_odp *umem_odp,
				unsigned long addr, dma_addr_t *dma,
				struct page **page)
{
	unsigned int access;
	u64 entry;

	ib_umem_odp_assert_locked(umem_odp);

	if (addr < umem_odp->start || addr >= umem_odp->end)
		return 0;
	addr = ALIGN_DOWN(addr, BIT(umem_odp->page_shift));
	entry = hmm_mirror_entry(&umem_odp->mirror, addr);
	access = ib_umem_odp_entry_access(entry);
	if (!access)
		return 0;
	if (dma)
		*dma = hmm_mirror_entry_dma(&umem_odp->mirror, addr, entry);
	if (page)
		*page = hmm_mirror_entry_page(entry);
	return access;
}
EXPORT_SYMBOL(ib_umem_odp_lookup);

struct ib_umem_odp_walk_ctx {
	struct ib_umem_odp *umem_odp;
	ib_umem_odp_walk_fn fn;
	void *priv;
};

static int ib_umem_odp_walk_entry(struct hmm_mirror *mirror,
				  unsigned long addr, u64 entry,
				  dma_addr_t dma, void *priv)
{
	struct ib_umem_odp_walk_ctx *ctx = priv;

	return ctx->fn(ctx->umem_odp, addr, dma,
		       ib_umem_odp_entry_access(entry), ctx->priv);
}

/**
 * ib_umem_odp_walk - call a function for each mapped page of a locked ODP umem
 * @umem_odp: the umem, locked
 * @start: first user virtual address of interest
 * @end: end of the range of interest (exclusive)
 * @fn: called in address order for each mapped ODP page in the range; must
 *	not sleep
 * @priv: passed to @fn
 *
 * The range is clipped to the umem.  Unmapped pages cost nothing, so this is
 * the way to scan large, sparsely mapped umems.
 *
 * Return: 0 once the whole range is walked, or the first non-zero value
 * returned by @fn.
 */
int ib_umem_odp_walk(struct ib_umem_odp *umem_odp, unsigned long start,
		     unsigned long end, ib_umem_odp_walk_fn fn, void *priv)
{
	struct ib_umem_odp_walk_ctx ctx = {
		.umem_odp = umem_odp,
		.fn = fn,
		.priv = priv,
	};

	ib_umem_odp_assert_locked(umem_odp);

	start = max(start, umem_odp->start);
	end = min(end, umem_odp->end);
	if (start >= end)
		return 0;
	return hmm_mirror_walk(&umem_odp->mirror, start, end,
			       ib_umem_odp_walk_entry, &ctx);
}
EXPORT_SYMBOL(ib_umem_odp_walk);

/**
 * ib_umem_odp_get_counters - read the event counters of an ODP umem
 * @umem_odp: the umem
 * @counters: filled with the current values
 *
 * Faults and invalidations are counted by the mirror, prefetches and fault
 * errors by the ODP core.  The values are read one by one, without locking.
 */
void ib_umem_odp_get_counters(struct ib_umem_odp *umem_odp,
			      struct ib_umem_odp_counters *counters)
{
	struct hmm_mirror_counters mc;

	hmm_mirror_read_counters(&umem_odp->mirror, &mc);
	counters->faults = mc.faults;
	counters->pages_faulted = mc.pages_faulted;
	counters->invalidations = mc.invalidations;
	counters->pages_invalidated = mc.pages_invalidated;
	counters->prefetches = atomic64_read(&umem_odp->prefetches);
	counters->fault_errors = atomic64_read(&umem_odp->fault_errors);
}
EXPORT_SYMBOL(ib_umem_odp_get_counters);
