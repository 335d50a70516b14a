/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * User API of the HMM mirror test driver for QEMU's edu device
 * (lib/test_hmm_mirror_edu.c).  Not a stable ABI: it is shared with the
 * test programs only.
 */
#ifndef _LIB_TEST_HMM_MIRROR_EDU_UAPI_H
#define _LIB_TEST_HMM_MIRROR_EDU_UAPI_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* Size of the edu device's DMA buffer */
#define EDU_MIRROR_DEV_BUF_SIZE		4096
/*
 * A transfer must end before the last byte of the buffer: QEMU's edu device
 * (at least up to QEMU 7.2) treats a transfer that reaches the end of the
 * buffer as out of bounds and stops the whole machine, so the driver refuses
 * one with -EINVAL.
 */
#define EDU_MIRROR_DEV_XFER_END		(EDU_MIRROR_DEV_BUF_SIZE - 1)

/* struct edu_mirror_cmd.flags */
#define EDU_MIRROR_NOFAULT	0x1	/* DMA only what is mirrored */

/* struct edu_mirror_init.dma_mode: enum hmm_mirror_dma_mode */
#define EDU_MIRROR_DMA_NONE	0
#define EDU_MIRROR_DMA_DIRECT	1
#define EDU_MIRROR_DMA_IOVA	2

/* struct edu_mirror_counts.have: which counters could be attached */
#define EDU_MIRROR_HAVE_MAP	0x1	/* iommu:map, iommu:unmap */
#define EDU_MIRROR_HAVE_FLUSH	0x2	/* intel_iommu:cache_tag_flush_* */
#define EDU_MIRROR_HAVE_QI	0x4	/* intel_iommu:qi_submit */

/**
 * struct edu_mirror_counts - IOMMU work done by one phase of an ioctl
 * @ns: time the phase took (ktime_get_ns())
 * @iommu_maps: iommu_map()/iommu_map_nosync() calls that mapped something
 *	(tracepoint iommu:map)
 * @iommu_unmaps: iommu_unmap*() calls (tracepoint iommu:unmap)
 * @iotlb_syncs: IOTLB flushes the VT-d driver issued: after a map in caching
 *	mode (intel_iommu:cache_tag_flush_range_np) and after an unmap
 *	(intel_iommu:cache_tag_flush_range, cache_tag_flush_all)
 * @inv_descs: invalidation descriptors queued to the VT-d unit
 *	(intel_iommu:qi_submit; the wait descriptor is not counted)
 * @have: EDU_MIRROR_HAVE_* bits of the counters that are real
 *
 * Only events raised by the ioctl's own task, outside interrupts, count.
 */
struct edu_mirror_counts {
	__u64 ns;
	__u64 iommu_maps;
	__u64 iommu_unmaps;
	__u64 iotlb_syncs;
	__u64 inv_descs;
	__u32 have;
	__u32 pad;
};

/**
 * struct edu_mirror_init - argument of EDU_MIRROR_IOC_INIT
 * @addr: start of the range to mirror, page aligned
 * @len: its length, page aligned
 * @dma_mode: out: how the mirror maps pages for the device
 *	(EDU_MIRROR_DMA_*)
 */
struct edu_mirror_init {
	__u64 addr;
	__u64 len;
	__u32 dma_mode;
	__u32 pad;
};

/**
 * struct edu_mirror_cmd - argument of the DMA, fault and unmap ioctls
 * @addr: user address
 * @len: length in bytes
 * @dev_off: offset in the device buffer (DMA ioctls)
 * @flags: EDU_MIRROR_NOFAULT (DMA ioctls)
 * @pad: zero
 * @pages: out: pages DMA'd (DMA ioctls), pages mapped (FAULT, BASELINE) or
 *	unmapped (UNMAP)
 * @map: out: the mapping phase (FAULT, BASELINE)
 * @unmap: out: the unmapping phase (UNMAP, BASELINE)
 */
struct edu_mirror_cmd {
	__u64 addr;
	__u64 len;
	__u64 dev_off;
	__u32 flags;
	__u32 pad;
	__u64 pages;
	struct edu_mirror_counts map;
	struct edu_mirror_counts unmap;
};

/**
 * struct edu_mirror_stats - counters of the open file and its device
 * @faults: the mirror's successful faults
 * @pages_faulted: entries made valid
 * @invalidations: invalidations that found valid entries
 * @pages_invalidated: entries they cleared
 * @dma_maps: the mirror's DMA map operations (runs linked)
 * @dma_syncs: the mirror's IOTLB syncs after mapping
 * @dma_flushes: the mirror's IOTLB flushes after unmapping
 * @dma_started: DMA transfers this file started on the device
 * @dma_refused: DMA ioctls refused because a page was not mirrored
 * @inval_calls: calls of the driver's invalidate op
 * @inval_waited: invalidate calls that found a DMA in flight and waited
 */
struct edu_mirror_stats {
	__u64 faults;
	__u64 pages_faulted;
	__u64 invalidations;
	__u64 pages_invalidated;
	__u64 dma_maps;
	__u64 dma_syncs;
	__u64 dma_flushes;
	__u64 dma_started;
	__u64 dma_refused;
	__u64 inval_calls;
	__u64 inval_waited;
};

/**
 * struct edu_mirror_iova_check - argument of EDU_MIRROR_IOC_IOVA_CHECK
 * @addr: user address, page aligned
 * @len: length in bytes, page aligned
 * @entries: out: valid mirror entries in the range
 * @wrong: out: entries whose DMA address the device's IOMMU domain does not
 *	translate to the entry's page
 * @first_iova: out: DMA address of the first valid entry
 */
struct edu_mirror_iova_check {
	__u64 addr;
	__u64 len;
	__u64 entries;
	__u64 wrong;
	__u64 first_iova;
};

/**
 * struct edu_mirror_iova_mapped - argument of EDU_MIRROR_IOC_IOVA_MAPPED
 * @iova: DMA address, page aligned
 * @len: length in bytes, page aligned
 * @pages: out: pages of [@iova, @iova + @len) the device's IOMMU domain
 *	still translates
 */
struct edu_mirror_iova_mapped {
	__u64 iova;
	__u64 len;
	__u64 pages;
};

#define EDU_MIRROR_IOC_INIT	_IOWR('E', 0x00, struct edu_mirror_init)
/* user memory -> device buffer */
#define EDU_MIRROR_IOC_TO_DEV	_IOWR('E', 0x01, struct edu_mirror_cmd)
/* device buffer -> user memory */
#define EDU_MIRROR_IOC_FROM_DEV	_IOWR('E', 0x02, struct edu_mirror_cmd)
/* hmm_mirror_fault() of a range (writable), no DMA */
#define EDU_MIRROR_IOC_FAULT	_IOWR('E', 0x03, struct edu_mirror_cmd)
/* hmm_mirror_unmap() of a range */
#define EDU_MIRROR_IOC_UNMAP	_IOWR('E', 0x04, struct edu_mirror_cmd)
/* pin + dma_map_page() page by page, then dma_unmap_page() + unpin */
#define EDU_MIRROR_IOC_BASELINE	_IOWR('E', 0x05, struct edu_mirror_cmd)
#define EDU_MIRROR_IOC_STATS	_IOR('E', 0x06, struct edu_mirror_stats)
/* the IOMMU's view of the mirror's DMA addresses (EDU_MIRROR_DMA_IOVA only) */
#define EDU_MIRROR_IOC_IOVA_CHECK	\
	_IOWR('E', 0x07, struct edu_mirror_iova_check)
#define EDU_MIRROR_IOC_IOVA_MAPPED	\
	_IOWR('E', 0x08, struct edu_mirror_iova_mapped)

#endif /* _LIB_TEST_HMM_MIRROR_EDU_UAPI_H */
