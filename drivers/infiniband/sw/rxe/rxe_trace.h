/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Trace events of soft-RoCE on-demand paging (rxe_odp.c), under
 * /sys/kernel/tracing/events/rxe/.
 *
 * MRs are named by their pool index (the lkey without its key byte) and
 * their lkey.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM rxe

#if !defined(_RXE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _RXE_TRACE_H

#include <linux/tracepoint.h>
#include <rdma/ib_user_ioctl_verbs.h>

/*
 * rxe_odp_fault - a device access found pages missing (or read-only for a
 * write) in the MTT of an ODP MR and faulted them in; err is 0 or the errno
 * that failed the access.
 */
TRACE_EVENT(rxe_odp_fault,
	    TP_PROTO(u32 mr_index, u32 lkey, unsigned long va,
		     unsigned int len, bool write, int err),
	    TP_ARGS(mr_index, lkey, va, len, write, err),
	    TP_STRUCT__entry(__field(u32, mr_index)
			     __field(u32, lkey)
			     __field(unsigned long, va)
			     __field(unsigned int, len)
			     __field(bool, write)
			     __field(int, err)),
	    TP_fast_assign(__entry->mr_index = mr_index;
			   __entry->lkey = lkey;
			   __entry->va = va;
			   __entry->len = len;
			   __entry->write = write;
			   __entry->err = err;),
	    TP_printk("mr=%u lkey=%#x va=%#lx len=%u write=%d err=%d",
		      __entry->mr_index, __entry->lkey, __entry->va,
		      __entry->len, __entry->write, __entry->err)
);

/*
 * rxe_odp_invalidate - the CPU mapping of [start, end) of an ODP MR changed;
 * zapped is the number of MTT entries (PAGE_SIZE pages) removed.
 */
TRACE_EVENT(rxe_odp_invalidate,
	    TP_PROTO(u32 mr_index, u32 lkey, unsigned long start,
		     unsigned long end, unsigned long zapped),
	    TP_ARGS(mr_index, lkey, start, end, zapped),
	    TP_STRUCT__entry(__field(u32, mr_index)
			     __field(u32, lkey)
			     __field(unsigned long, start)
			     __field(unsigned long, end)
			     __field(unsigned long, zapped)),
	    TP_fast_assign(__entry->mr_index = mr_index;
			   __entry->lkey = lkey;
			   __entry->start = start;
			   __entry->end = end;
			   __entry->zapped = zapped;),
	    TP_printk("mr=%u lkey=%#x start=%#lx end=%#lx zapped=%lu",
		      __entry->mr_index, __entry->lkey, __entry->start,
		      __entry->end, __entry->zapped)
);

TRACE_DEFINE_ENUM(IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH);
TRACE_DEFINE_ENUM(IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE);
TRACE_DEFINE_ENUM(IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT);

/*
 * rxe_odp_prefetch - one chunk of an ibv_advise_mr() prefetch; pages is the
 * number of ODP pages present in the chunk afterwards.
 */
TRACE_EVENT(rxe_odp_prefetch,
	    TP_PROTO(u32 mr_index, u32 lkey, unsigned long va,
		     unsigned long len, u32 advice, unsigned long pages,
		     int err),
	    TP_ARGS(mr_index, lkey, va, len, advice, pages, err),
	    TP_STRUCT__entry(__field(u32, mr_index)
			     __field(u32, lkey)
			     __field(unsigned long, va)
			     __field(unsigned long, len)
			     __field(u32, advice)
			     __field(unsigned long, pages)
			     __field(int, err)),
	    TP_fast_assign(__entry->mr_index = mr_index;
			   __entry->lkey = lkey;
			   __entry->va = va;
			   __entry->len = len;
			   __entry->advice = advice;
			   __entry->pages = pages;
			   __entry->err = err;),
	    TP_printk("mr=%u lkey=%#x va=%#lx len=%lu advice=%s pages=%lu err=%d",
		      __entry->mr_index, __entry->lkey, __entry->va,
		      __entry->len,
		      __print_symbolic(__entry->advice,
				       { IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH,
					 "prefetch" },
				       { IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
					 "prefetch_write" },
				       { IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
					 "prefetch_no_fault" }),
		      __entry->pages, __entry->err)
);

#endif /* _RXE_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE rxe_trace
#include <trace/define_trace.h>
