// SPDX-License-Identifier: GPL-2.0
/*
 * Test driver for the HMM mirror (mm/hmm_mirror.c) on a real DMA path: QEMU's
 * educational PCI device "edu" (1234:11e8), usually behind an emulated VT-d
 * IOMMU.  Each open file of /dev/hmm_mirror_edu mirrors one range of the
 * caller's address space with the edu device as DMA device, and its ioctls
 * drive the device's DMA engine with the mirror's DMA addresses to copy user
 * memory into the device's 4 KiB buffer and back, page by page.
 *
 * The device has one DMA engine: registers at BAR0 0x80 (source), 0x88
 * (destination), 0x90 (count) and 0x98 (command: bit 0 start, bit 1 direction
 * device -> RAM); its buffer is at 0x40000 of its own address space.  A
 * transfer completes about 100 ms (QEMU virtual clock) after it is started,
 * and bit 0 of the command register stays set until then.  QEMU 7.2 rejects
 * a transfer that reaches the last byte of the buffer by stopping the
 * machine, so transfers end before it (EDU_MIRROR_DEV_XFER_END).
 *
 * A transfer is started with the mirror locked and entries checked, then the
 * lock is dropped while the device works, as a real device would run
 * asynchronously; the mirror's invalidate op therefore waits for the device
 * to go idle before the mirror unmaps anything.
 *
 * For the comparison of the mirror's batched DMA mapping with per-page
 * dma_map_page(), the driver counts IOMMU work with probes on kernel
 * tracepoints (see struct edu_mirror_counts in the uapi header): calls of
 * iommu_map*() and iommu_unmap*(), VT-d IOTLB flushes and invalidation
 * descriptors, counting only events raised by the measuring task.
 *
 * Unbinding the device while files are open is not supported, so its sysfs
 * bind attributes are suppressed.
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/hmm_mirror.h>
#include <linux/io.h>
#include <linux/iommu.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>

#include "test_hmm_mirror_edu_uapi.h"

#define EDU_REG_IDENT		0x00
#define EDU_REG_DMA_SRC		0x80
#define EDU_REG_DMA_DST		0x88
#define EDU_REG_DMA_CNT		0x90
#define EDU_REG_DMA_CMD		0x98
#define EDU_DMA_CMD_START	BIT(0)
#define EDU_DMA_CMD_TO_RAM	BIT(1)
#define EDU_BUF_ADDR		0x40000
#define EDU_IDENT_MAGIC		0xed

/* Largest range for the fault and baseline ioctls: 64 MiB */
#define EDU_MAX_PAGES		16384

static unsigned int dma_bits = 28;
module_param(dma_bits, uint, 0444);
MODULE_PARM_DESC(dma_bits,
		 "DMA address width of the edu device (QEMU property dma_mask; 28 by default)");

struct edu_dev {
	struct pci_dev *pdev;
	void __iomem *mmio;
	/* serialises programming the DMA engine and waiting for it */
	struct mutex dma_lock;
	struct miscdevice misc;
};

struct edu_file {
	struct edu_dev *edu;
	/* serialises INIT against the other ioctls */
	struct mutex init_lock;
	bool initialised;
	struct mm_struct *mm;
	struct hmm_mirror mirror;
	atomic64_t dma_started;
	atomic64_t dma_refused;
	atomic64_t inval_calls;
	atomic64_t inval_waited;
};

/* Only one edu device is driven */
static struct edu_dev *edu_device;
static DEFINE_MUTEX(edu_device_lock);

/* -------------------------------------------------------------------------
 * Counting IOMMU work with tracepoint probes
 */

/* One measurement at a time; probes count only for edu_count_task */
static DEFINE_MUTEX(edu_count_lock);
static struct task_struct *edu_count_task;
static struct edu_mirror_counts *edu_count_into;

static struct edu_mirror_counts *edu_counting(void)
{
	if (!in_task() || READ_ONCE(edu_count_task) != current)
		return NULL;
	return edu_count_into;
}

struct cache_tag;
struct intel_iommu;

static void edu_probe_map(void *data, unsigned long iova, phys_addr_t paddr,
			  size_t size)
{
	struct edu_mirror_counts *c = edu_counting();

	if (c)
		c->iommu_maps++;
}

static void edu_probe_unmap(void *data, unsigned long iova, size_t size,
			    size_t unmapped_size)
{
	struct edu_mirror_counts *c = edu_counting();

	if (c)
		c->iommu_unmaps++;
}

static void edu_probe_flush_range(void *data, struct cache_tag *tag,
				  unsigned long start, unsigned long end,
				  unsigned long addr, unsigned long pages,
				  unsigned long mask)
{
	struct edu_mirror_counts *c = edu_counting();

	if (c)
		c->iotlb_syncs++;
}

static void edu_probe_flush_all(void *data, struct cache_tag *tag)
{
	struct edu_mirror_counts *c = edu_counting();

	if (c)
		c->iotlb_syncs++;
}

static void edu_probe_qi_submit(void *data, struct intel_iommu *iommu,
				u64 qw0, u64 qw1, u64 qw2, u64 qw3)
{
	struct edu_mirror_counts *c = edu_counting();

	if (c)
		c->inv_descs++;
}

struct edu_tracepoint {
	const char *name;
	void *probe;
	u32 have;
	struct tracepoint *tp;
	bool registered;
};

static struct edu_tracepoint edu_tracepoints[] = {
	{ "map", edu_probe_map, EDU_MIRROR_HAVE_MAP },
	{ "unmap", edu_probe_unmap, EDU_MIRROR_HAVE_MAP },
	{ "cache_tag_flush_range_np", edu_probe_flush_range, EDU_MIRROR_HAVE_FLUSH },
	{ "cache_tag_flush_range", edu_probe_flush_range, EDU_MIRROR_HAVE_FLUSH },
	{ "cache_tag_flush_all", edu_probe_flush_all, EDU_MIRROR_HAVE_FLUSH },
	{ "qi_submit", edu_probe_qi_submit, EDU_MIRROR_HAVE_QI },
};

/* EDU_MIRROR_HAVE_* bits whose every tracepoint is attached */
static u32 edu_count_have;

static void edu_find_tracepoint(struct tracepoint *tp, void *priv)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(edu_tracepoints); i++)
		if (!strcmp(tp->name, edu_tracepoints[i].name))
			edu_tracepoints[i].tp = tp;
}

static void edu_counters_attach(void)
{
	u32 missing = 0;
	int i;

	for_each_kernel_tracepoint(edu_find_tracepoint, NULL);
	for (i = 0; i < ARRAY_SIZE(edu_tracepoints); i++) {
		struct edu_tracepoint *t = &edu_tracepoints[i];

		edu_count_have |= t->have;
		if (t->tp && !tracepoint_probe_register(t->tp, t->probe, NULL))
			t->registered = true;
		else
			missing |= t->have;
	}
	edu_count_have &= ~missing;
}

static void edu_counters_detach(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(edu_tracepoints); i++) {
		struct edu_tracepoint *t = &edu_tracepoints[i];

		if (t->registered)
			tracepoint_probe_unregister(t->tp, t->probe, NULL);
		t->registered = false;
	}
	/* No probe may still be running when the module goes */
	tracepoint_synchronize_unregister();
}

/* Start counting the IOMMU work of the current task into @c */
static void edu_count_begin(struct edu_mirror_counts *c)
{
	mutex_lock(&edu_count_lock);
	memset(c, 0, sizeof(*c));
	c->have = edu_count_have;
	edu_count_into = c;
	WRITE_ONCE(edu_count_task, current);
	c->ns = ktime_get_ns();
}

static void edu_count_end(struct edu_mirror_counts *c)
{
	c->ns = ktime_get_ns() - c->ns;
	WRITE_ONCE(edu_count_task, NULL);
	edu_count_into = NULL;
	mutex_unlock(&edu_count_lock);
}

/* -------------------------------------------------------------------------
 * The DMA engine
 */

static bool edu_busy(struct edu_dev *edu)
{
	return readq(edu->mmio + EDU_REG_DMA_CMD) & EDU_DMA_CMD_START;
}

/*
 * Wait until the device has finished its transfer.  It always does (QEMU
 * completes a transfer on a timer), and a caller that stops waiting could let
 * the device reach memory that is already unmapped, so there is no time-out.
 */
static void edu_wait_idle(struct edu_dev *edu)
{
	unsigned long warn = jiffies + 10 * HZ;

	lockdep_assert_held(&edu->dma_lock);
	while (edu_busy(edu)) {
		usleep_range(1000, 2000);
		if (warn && time_after(jiffies, warn)) {
			dev_warn(&edu->pdev->dev, "DMA still running after 10 s\n");
			warn = 0;
		}
	}
}

/*
 * Start one transfer between @ram (a DMA address) and the device buffer at
 * @dev_off.  Called with the mirror locked and the entry behind @ram valid.
 */
static void edu_dma_start(struct edu_file *ef, dma_addr_t ram, u32 dev_off,
			  u32 len, bool to_ram)
{
	struct edu_dev *edu = ef->edu;

	hmm_mirror_lockdep_assert_held(&ef->mirror);
	mutex_lock(&edu->dma_lock);
	edu_wait_idle(edu);	/* a transfer of another file */
	if (to_ram) {
		writeq(EDU_BUF_ADDR + dev_off, edu->mmio + EDU_REG_DMA_SRC);
		writeq(ram, edu->mmio + EDU_REG_DMA_DST);
	} else {
		writeq(ram, edu->mmio + EDU_REG_DMA_SRC);
		writeq(EDU_BUF_ADDR + dev_off, edu->mmio + EDU_REG_DMA_DST);
	}
	writeq(len, edu->mmio + EDU_REG_DMA_CNT);
	writeq(EDU_DMA_CMD_START | (to_ram ? EDU_DMA_CMD_TO_RAM : 0),
	       edu->mmio + EDU_REG_DMA_CMD);
	atomic64_inc(&ef->dma_started);
	mutex_unlock(&edu->dma_lock);
}

/*
 * Wait for the transfer started by edu_dma_start() (or a later one) to end.
 * Without dma_lock, so that an invalidation finds the transfer running and
 * waits for it itself.
 */
static void edu_dma_finish(struct edu_dev *edu)
{
	while (edu_busy(edu))
		usleep_range(1000, 2000);
}

/* -------------------------------------------------------------------------
 * The mirror
 */

/*
 * Transfers are started only with the mirror locked, as it is now, so none
 * can start until the mirror has unmapped [start, end).  One may still be
 * running: wait for it.  The device has a single DMA engine, so waiting
 * until it is idle covers every transfer to the range.
 */
static void edu_mirror_invalidate(struct hmm_mirror *mirror,
				  unsigned long start, unsigned long end)
{
	struct edu_file *ef = container_of(mirror, struct edu_file, mirror);
	struct edu_dev *edu = ef->edu;

	atomic64_inc(&ef->inval_calls);
	mutex_lock(&edu->dma_lock);
	if (edu_busy(edu)) {
		atomic64_inc(&ef->inval_waited);
		edu_wait_idle(edu);
	}
	mutex_unlock(&edu->dma_lock);
}

static const struct hmm_mirror_ops edu_mirror_ops = {
	.invalidate = edu_mirror_invalidate,
};

/* Lock the mirror for one page of a transfer, faulting it unless @nofault */
static int edu_lock_page(struct edu_file *ef, unsigned long addr, size_t len,
			 bool write, bool nofault, u64 *entry)
{
	struct hmm_mirror *mirror = &ef->mirror;
	int ret;

	if (nofault) {
		hmm_mirror_lock(mirror);
	} else {
		ret = hmm_mirror_fault(mirror, addr, len,
				       write ? HMM_MIRROR_FAULT_WRITE : 0);
		if (ret)
			return ret;
	}
	*entry = hmm_mirror_entry(mirror, addr);
	if (write ? !hmm_mirror_entry_writable(*entry) :
		    !hmm_mirror_entry_valid(*entry)) {
		hmm_mirror_unlock(mirror);
		/* A fault that succeeded made the entry valid */
		WARN_ON_ONCE(!nofault);
		atomic64_inc(&ef->dma_refused);
		return -EFAULT;
	}
	return 0;
}

/*
 * Copy between user memory and the device buffer, one DMA transfer per user
 * page.  With EDU_MIRROR_NOFAULT only pages already mirrored are used: the
 * first page that is not is refused with -EFAULT, never transferred.
 */
static int edu_ioctl_dma(struct edu_file *ef, struct edu_mirror_cmd *cmd,
			 bool to_ram)
{
	bool nofault = cmd->flags & EDU_MIRROR_NOFAULT;
	unsigned long addr = cmd->addr;
	u64 done = 0;
	int ret = 0;

	cmd->pages = 0;
	if (cmd->flags & ~EDU_MIRROR_NOFAULT || cmd->pad)
		return -EINVAL;
	if (!cmd->len || cmd->dev_off >= EDU_MIRROR_DEV_XFER_END ||
	    cmd->len > EDU_MIRROR_DEV_XFER_END - cmd->dev_off ||
	    addr + cmd->len < addr)
		return -EINVAL;

	while (done < cmd->len) {
		size_t len = min_t(u64, cmd->len - done,
				   PAGE_SIZE - offset_in_page(addr));
		dma_addr_t dma;
		u64 entry;

		ret = edu_lock_page(ef, addr, len, to_ram, nofault, &entry);
		if (ret)
			break;
		dma = hmm_mirror_entry_dma(&ef->mirror, addr, entry);
		if (WARN_ON_ONCE(dma == DMA_MAPPING_ERROR)) {
			hmm_mirror_unlock(&ef->mirror);
			ret = -EIO;
			break;
		}
		edu_dma_start(ef, dma, cmd->dev_off + done, len, to_ram);
		if (to_ram)
			hmm_mirror_set_dirty(&ef->mirror, addr, addr + len);
		hmm_mirror_unlock(&ef->mirror);
		/* An invalidation of the page now waits for the transfer */
		edu_dma_finish(ef->edu);

		cmd->pages++;
		done += len;
		addr += len;
	}
	return ret;
}

/* A non-empty, page-aligned range that does not wrap */
static bool edu_range_valid(u64 addr, u64 len)
{
	return len && PAGE_ALIGNED(addr | len) && addr + len > addr;
}

static int edu_check_range(struct edu_mirror_cmd *cmd, unsigned long *npages)
{
	if (cmd->flags || cmd->pad || cmd->dev_off)
		return -EINVAL;
	if (!edu_range_valid(cmd->addr, cmd->len))
		return -EINVAL;
	*npages = cmd->len >> PAGE_SHIFT;
	if (*npages > EDU_MAX_PAGES)
		return -E2BIG;
	return 0;
}

/* Mirror a range (for writing) and DMA-map it: the batched path */
static int edu_ioctl_fault(struct edu_file *ef, struct edu_mirror_cmd *cmd)
{
	unsigned long npages, before;
	int ret;

	ret = edu_check_range(cmd, &npages);
	if (ret)
		return ret;

	hmm_mirror_lock(&ef->mirror);
	before = hmm_mirror_nr_valid(&ef->mirror);
	hmm_mirror_unlock(&ef->mirror);

	edu_count_begin(&cmd->map);
	ret = hmm_mirror_fault(&ef->mirror, cmd->addr, cmd->len,
			       HMM_MIRROR_FAULT_WRITE);
	edu_count_end(&cmd->map);
	if (ret)
		return ret;
	cmd->pages = hmm_mirror_nr_valid(&ef->mirror) - before;
	hmm_mirror_unlock(&ef->mirror);
	return 0;
}

/* Unmap a range from the mirror with its single IOTLB flush */
static int edu_ioctl_unmap(struct edu_file *ef, struct edu_mirror_cmd *cmd)
{
	unsigned long npages, before;
	int ret;

	ret = edu_check_range(cmd, &npages);
	if (ret)
		return ret;

	/*
	 * The counting lock comes first, as in the fault path, which holds it
	 * across hmm_mirror_fault() and so takes the mirror lock under it.
	 */
	edu_count_begin(&cmd->unmap);
	hmm_mirror_lock(&ef->mirror);
	/* No transfer of ours runs with the lock held, see invalidate */
	before = hmm_mirror_nr_valid(&ef->mirror);
	hmm_mirror_unmap(&ef->mirror, cmd->addr, cmd->addr + cmd->len);
	cmd->pages = before - hmm_mirror_nr_valid(&ef->mirror);
	hmm_mirror_unlock(&ef->mirror);
	edu_count_end(&cmd->unmap);
	return 0;
}

/*
 * The per-page baseline: pin the pages of a range and map them one by one
 * with dma_map_page(), as a driver without the mirror would, then unmap them
 * one by one and unpin them.  The device is never given these addresses.
 */
static int edu_ioctl_baseline(struct edu_file *ef, struct edu_mirror_cmd *cmd)
{
	struct device *dev = &ef->edu->pdev->dev;
	unsigned long npages, i, mapped = 0;
	struct page **pages;
	dma_addr_t *dma;
	int ret, pinned;

	ret = edu_check_range(cmd, &npages);
	if (ret)
		return ret;

	pages = kvcalloc(npages, sizeof(*pages), GFP_KERNEL);
	dma = kvcalloc(npages, sizeof(*dma), GFP_KERNEL);
	if (!pages || !dma) {
		ret = -ENOMEM;
		goto out_free;
	}

	edu_count_begin(&cmd->map);
	pinned = pin_user_pages_fast(cmd->addr, npages, FOLL_WRITE, pages);
	if (pinned == npages) {
		for (; mapped < npages; mapped++) {
			dma[mapped] = dma_map_page(dev, pages[mapped], 0,
						   PAGE_SIZE,
						   DMA_BIDIRECTIONAL);
			if (dma_mapping_error(dev, dma[mapped]))
				break;
		}
	}
	edu_count_end(&cmd->map);

	if (pinned < 0) {
		ret = pinned;
		goto out_free;
	}
	if (pinned != npages || mapped != npages)
		ret = pinned != npages ? -EFAULT : -ENOMEM;
	cmd->pages = mapped;

	edu_count_begin(&cmd->unmap);
	for (i = 0; i < mapped; i++)
		dma_unmap_page(dev, dma[i], PAGE_SIZE, DMA_BIDIRECTIONAL);
	unpin_user_pages_dirty_lock(pages, pinned, true);
	edu_count_end(&cmd->unmap);

out_free:
	kvfree(dma);
	kvfree(pages);
	return ret;
}

/*
 * The IOMMU's own view of what the mirror mapped: a driver may look at its
 * device's translations, the mirror (in mm/) only uses the DMA API.
 */
static struct iommu_domain *edu_iova_domain(struct edu_file *ef)
{
	if (hmm_mirror_dma_mode(&ef->mirror) != HMM_MIRROR_DMA_IOVA)
		return NULL;
	return iommu_get_domain_for_dev(&ef->edu->pdev->dev);
}

struct edu_iova_walk {
	struct iommu_domain *domain;
	struct edu_mirror_iova_check *check;
};

static int edu_iova_check_entry(struct hmm_mirror *mirror, unsigned long addr,
				u64 entry, dma_addr_t dma, void *priv)
{
	struct edu_iova_walk *walk = priv;
	struct edu_mirror_iova_check *check = walk->check;

	if (!check->entries++)
		check->first_iova = dma;
	if (iommu_iova_to_phys(walk->domain, dma) !=
	    hmm_mirror_entry_phys(entry))
		check->wrong++;
	return 0;
}

static int edu_ioctl_iova_check(struct edu_file *ef, void __user *uarg)
{
	struct edu_mirror_iova_check check;
	struct edu_iova_walk walk = { .check = &check };
	int ret;

	if (copy_from_user(&check, uarg, sizeof(check)))
		return -EFAULT;
	if (!edu_range_valid(check.addr, check.len))
		return -EINVAL;
	walk.domain = edu_iova_domain(ef);
	if (!walk.domain)
		return -EOPNOTSUPP;

	check.entries = 0;
	check.wrong = 0;
	check.first_iova = 0;
	hmm_mirror_lock(&ef->mirror);
	ret = hmm_mirror_walk(&ef->mirror, check.addr, check.addr + check.len,
			      edu_iova_check_entry, &walk);
	hmm_mirror_unlock(&ef->mirror);
	if (ret)
		return ret;
	return copy_to_user(uarg, &check, sizeof(check)) ? -EFAULT : 0;
}

static int edu_ioctl_iova_mapped(struct edu_file *ef, void __user *uarg)
{
	struct edu_mirror_iova_mapped req;
	struct iommu_domain *domain;
	u64 off;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (!edu_range_valid(req.iova, req.len))
		return -EINVAL;
	if (req.len >> PAGE_SHIFT > EDU_MAX_PAGES)
		return -E2BIG;
	domain = edu_iova_domain(ef);
	if (!domain)
		return -EOPNOTSUPP;

	req.pages = 0;
	for (off = 0; off < req.len; off += PAGE_SIZE)
		if (iommu_iova_to_phys(domain, req.iova + off))
			req.pages++;
	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}

static int edu_ioctl_init(struct edu_file *ef, void __user *uarg)
{
	struct edu_mirror_init init;
	int ret;

	if (copy_from_user(&init, uarg, sizeof(init)))
		return -EFAULT;
	if (init.pad)
		return -EINVAL;
	if (ef->initialised)
		return -EBUSY;

	ret = hmm_mirror_init(&ef->mirror, current->mm, init.addr, init.len,
			      PAGE_SHIFT, &ef->edu->pdev->dev,
			      &edu_mirror_ops);
	if (ret)
		return ret;
	ef->mm = current->mm;
	ef->initialised = true;

	init.dma_mode = hmm_mirror_dma_mode(&ef->mirror);
	if (copy_to_user(uarg, &init, sizeof(init)))
		return -EFAULT;
	return 0;
}

static void edu_ioctl_stats(struct edu_file *ef, struct edu_mirror_stats *s)
{
	struct hmm_mirror_counters mc;

	hmm_mirror_read_counters(&ef->mirror, &mc);
	memset(s, 0, sizeof(*s));
	s->faults = mc.faults;
	s->pages_faulted = mc.pages_faulted;
	s->invalidations = mc.invalidations;
	s->pages_invalidated = mc.pages_invalidated;
	s->dma_maps = mc.dma_maps;
	s->dma_syncs = mc.dma_syncs;
	s->dma_flushes = mc.dma_flushes;
	s->dma_started = atomic64_read(&ef->dma_started);
	s->dma_refused = atomic64_read(&ef->dma_refused);
	s->inval_calls = atomic64_read(&ef->inval_calls);
	s->inval_waited = atomic64_read(&ef->inval_waited);
}

static long edu_fop_ioctl(struct file *file, unsigned int command,
			  unsigned long arg)
{
	struct edu_file *ef = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct edu_mirror_stats stats;
	struct edu_mirror_cmd cmd;
	int ret;

	if (command == EDU_MIRROR_IOC_INIT) {
		mutex_lock(&ef->init_lock);
		ret = edu_ioctl_init(ef, uarg);
		mutex_unlock(&ef->init_lock);
		return ret;
	}

	mutex_lock(&ef->init_lock);
	ret = ef->initialised ? 0 : -ENXIO;
	mutex_unlock(&ef->init_lock);
	if (ret)
		return ret;
	if (current->mm != ef->mm)
		return -EINVAL;

	if (command == EDU_MIRROR_IOC_STATS) {
		edu_ioctl_stats(ef, &stats);
		return copy_to_user(uarg, &stats, sizeof(stats)) ? -EFAULT : 0;
	}
	if (command == EDU_MIRROR_IOC_IOVA_CHECK)
		return edu_ioctl_iova_check(ef, uarg);
	if (command == EDU_MIRROR_IOC_IOVA_MAPPED)
		return edu_ioctl_iova_mapped(ef, uarg);

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	switch (command) {
	case EDU_MIRROR_IOC_TO_DEV:
		ret = edu_ioctl_dma(ef, &cmd, false);
		break;
	case EDU_MIRROR_IOC_FROM_DEV:
		ret = edu_ioctl_dma(ef, &cmd, true);
		break;
	case EDU_MIRROR_IOC_FAULT:
		ret = edu_ioctl_fault(ef, &cmd);
		break;
	case EDU_MIRROR_IOC_UNMAP:
		ret = edu_ioctl_unmap(ef, &cmd);
		break;
	case EDU_MIRROR_IOC_BASELINE:
		ret = edu_ioctl_baseline(ef, &cmd);
		break;
	default:
		return -ENOTTY;
	}
	/* The output tells how far a failed transfer got */
	if (copy_to_user(uarg, &cmd, sizeof(cmd)))
		return -EFAULT;
	return ret;
}

static int edu_fop_open(struct inode *inode, struct file *file)
{
	struct edu_dev *edu = container_of(file->private_data, struct edu_dev,
					   misc);
	struct edu_file *ef;

	ef = kzalloc(sizeof(*ef), GFP_KERNEL);
	if (!ef)
		return -ENOMEM;
	ef->edu = edu;
	mutex_init(&ef->init_lock);
	file->private_data = ef;
	return 0;
}

static int edu_fop_release(struct inode *inode, struct file *file)
{
	struct edu_file *ef = file->private_data;

	/* Every transfer finished before its ioctl returned */
	if (ef->initialised)
		hmm_mirror_destroy(&ef->mirror);
	mutex_destroy(&ef->init_lock);
	kfree(ef);
	return 0;
}

static const struct file_operations edu_fops = {
	.owner		= THIS_MODULE,
	.open		= edu_fop_open,
	.release	= edu_fop_release,
	.unlocked_ioctl	= edu_fop_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

/* -------------------------------------------------------------------------
 * PCI driver
 */

/* Is @dev translated by iommu-dma (does the IOVA-based DMA API work)? */
static bool edu_uses_iova(struct device *dev)
{
	struct dma_iova_state state;

	if (!dma_iova_try_alloc(dev, &state, 0, PAGE_SIZE))
		return false;
	dma_iova_free(dev, &state);
	return true;
}

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct edu_dev *edu;
	u32 ident;
	int ret;

	edu = devm_kzalloc(&pdev->dev, sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	edu->pdev = pdev;
	mutex_init(&edu->dma_lock);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	edu->mmio = pcim_iomap_region(pdev, 0, KBUILD_MODNAME);
	if (IS_ERR(edu->mmio))
		return PTR_ERR(edu->mmio);
	ident = readl(edu->mmio + EDU_REG_IDENT);
	if ((ident & 0xff) != EDU_IDENT_MAGIC) {
		dev_err(&pdev->dev, "not an edu device (ident %#x)\n", ident);
		return -ENODEV;
	}
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(dma_bits));
	if (ret)
		return ret;
	pci_set_master(pdev);

	mutex_lock(&edu_device_lock);
	if (edu_device) {
		mutex_unlock(&edu_device_lock);
		dev_info(&pdev->dev, "another edu device is already driven\n");
		return -EBUSY;
	}
	edu->misc.minor = MISC_DYNAMIC_MINOR;
	edu->misc.name = "hmm_mirror_edu";
	edu->misc.fops = &edu_fops;
	edu->misc.parent = &pdev->dev;
	ret = misc_register(&edu->misc);
	if (!ret)
		edu_device = edu;
	mutex_unlock(&edu_device_lock);
	if (ret)
		return ret;

	pci_set_drvdata(pdev, edu);
	dev_info(&pdev->dev, "edu %u.%u, DMA mask %u bits, %s\n",
		 ident >> 24, (ident >> 16) & 0xff, dma_bits,
		 edu_uses_iova(&pdev->dev) ? "behind iommu-dma" :
		 "no IOMMU translation");
	return 0;
}

static void edu_remove(struct pci_dev *pdev)
{
	struct edu_dev *edu = pci_get_drvdata(pdev);

	mutex_lock(&edu_device_lock);
	misc_deregister(&edu->misc);
	edu_device = NULL;
	mutex_unlock(&edu_device_lock);
}

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name		= "test_hmm_mirror_edu",
	.id_table	= edu_ids,
	.probe		= edu_probe,
	.remove		= edu_remove,
	.driver		= {
		.suppress_bind_attrs = true,
	},
};

static int __init edu_init(void)
{
	int ret;

	if (dma_bits < 12 || dma_bits > 64)
		return -EINVAL;
	edu_counters_attach();
	ret = pci_register_driver(&edu_driver);
	if (ret)
		edu_counters_detach();
	return ret;
}

static void __exit edu_exit(void)
{
	pci_unregister_driver(&edu_driver);
	edu_counters_detach();
}

module_init(edu_init);
module_exit(edu_exit);
MODULE_DESCRIPTION("HMM mirror test driver for QEMU's edu DMA device");
MODULE_LICENSE("GPL");
