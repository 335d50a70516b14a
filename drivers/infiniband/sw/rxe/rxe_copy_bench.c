// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * A benchmark of rxe's data path inside the kernel: the copy between an MR
 * and a kernel buffer that every RDMA READ, WRITE and SEND does
 * (rxe_mr_copy()) and the atomic helper (rxe_mr_do_atomic_op()), timed for
 * two MRs of the same memory, typically one pinned and one ODP, in
 * interleaved rounds.  Measured this way, the cost of the ODP look-up is not
 * drowned in the network stack and the scheduling noise that perftest's
 * clock sees under emulation.
 *
 * Write a command to <debugfs>/rxe/copy_bench (root only):
 *
 *	DEV LKEY_A LKEY_B IOVA LENGTH OP ITERATIONS ROUNDS
 *
 * with the keys and IOVA in hex, the other numbers in decimal.
 * OP is "read" (MR to buffer), "write" (buffer to MR) or "atomic" (8-byte
 * fetch-and-add, LENGTH ignored).  Both MRs must be user MRs of DEV covering
 * [IOVA, IOVA + LENGTH), registered with local write access for "write" and
 * remote atomic access for "atomic".  Each round runs ITERATIONS operations on one MR,
 * then on the other, the order alternating between rounds; one warm-up
 * operation on each comes first.  Reading the file gives one line per
 * round, "ROUND NS_A NS_B", of the last command.
 *
 * The operations run in the writer's context, hold a reference on both MRs
 * and stop early on a fatal signal.
 */

#include <linux/debugfs.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "rxe.h"

#define RXE_BENCH_MAX_LENGTH	SZ_1M
#define RXE_BENCH_MAX_ITERS	1000000
#define RXE_BENCH_MAX_ROUNDS	64
#define RXE_BENCH_OUT_SIZE	(RXE_BENCH_MAX_ROUNDS * 48)

enum rxe_bench_op {
	RXE_BENCH_READ,
	RXE_BENCH_WRITE,
	RXE_BENCH_ATOMIC,
};

struct rxe_bench_cmd {
	char dev[IB_DEVICE_NAME_MAX];
	u32 lkey[2];
	u64 iova;
	u32 length;
	enum rxe_bench_op op;
	u32 iters;
	u32 rounds;
};

static struct dentry *rxe_bench_dir;
/* serialises runs and protects the output of the last one */
static DEFINE_MUTEX(rxe_bench_lock);
static char *rxe_bench_out;
static size_t rxe_bench_out_len;

static int rxe_bench_parse(const char *buf, struct rxe_bench_cmd *cmd)
{
	char op[8];

	if (sscanf(buf, "%63s %x %x %llx %u %7s %u %u", cmd->dev,
		   &cmd->lkey[0], &cmd->lkey[1], &cmd->iova, &cmd->length, op,
		   &cmd->iters, &cmd->rounds) != 8)
		return -EINVAL;
	if (!strcmp(op, "read"))
		cmd->op = RXE_BENCH_READ;
	else if (!strcmp(op, "write"))
		cmd->op = RXE_BENCH_WRITE;
	else if (!strcmp(op, "atomic"))
		cmd->op = RXE_BENCH_ATOMIC;
	else
		return -EINVAL;
	if (cmd->op == RXE_BENCH_ATOMIC)
		cmd->length = sizeof(u64);
	if (!cmd->length || cmd->length > RXE_BENCH_MAX_LENGTH ||
	    !cmd->iters || cmd->iters > RXE_BENCH_MAX_ITERS ||
	    !cmd->rounds || cmd->rounds > RXE_BENCH_MAX_ROUNDS)
		return -EINVAL;
	return 0;
}

/*
 * The access an operation needs, as rxe's responder and completer check it:
 * an MR is only written if it was registered for it, so a page pinned
 * read-only is never written.
 */
static int rxe_bench_access(enum rxe_bench_op op)
{
	switch (op) {
	case RXE_BENCH_WRITE:
		return IB_ACCESS_LOCAL_WRITE;
	case RXE_BENCH_ATOMIC:
		return IB_ACCESS_REMOTE_ATOMIC;
	default:
		return 0;
	}
}

/*
 * A valid user MR of @rxe with @lkey that allows @access over the range,
 * referenced
 */
static struct rxe_mr *rxe_bench_get_mr(struct rxe_dev *rxe, u32 lkey,
				       int access, u64 iova, u32 length)
{
	struct rxe_mr *mr = rxe_pool_get_index(&rxe->mr_pool, lkey >> 8);

	if (!mr)
		return ERR_PTR(-ENOENT);
	if (mr->lkey != lkey || mr->state != RXE_MR_STATE_VALID ||
	    mr->ibmr.type != IB_MR_TYPE_USER ||
	    (mr->access & access) != access ||
	    mr_check_range(mr, iova, length)) {
		rxe_put(mr);
		return ERR_PTR(-EINVAL);
	}
	return mr;
}

static int rxe_bench_one(struct rxe_mr *mr, const struct rxe_bench_cmd *cmd,
			 void *buf)
{
	u64 orig;

	switch (cmd->op) {
	case RXE_BENCH_READ:
		return rxe_mr_copy(mr, cmd->iova, buf, cmd->length,
				   RXE_FROM_MR_OBJ);
	case RXE_BENCH_WRITE:
		return rxe_mr_copy(mr, cmd->iova, buf, cmd->length,
				   RXE_TO_MR_OBJ);
	case RXE_BENCH_ATOMIC:
		/* a RESPST_* code on failure */
		return rxe_mr_do_atomic_op(mr, cmd->iova, IB_OPCODE_RC_FETCH_ADD,
					   0, 1, &orig) ? -EFAULT : 0;
	}
	return -EINVAL;
}

/* @iters operations on @mr; the time they took in @ns */
static int rxe_bench_time(struct rxe_mr *mr, const struct rxe_bench_cmd *cmd,
			  void *buf, u64 *ns)
{
	u64 start = ktime_get_ns();
	u32 i;
	int err;

	for (i = 0; i < cmd->iters; i++) {
		err = rxe_bench_one(mr, cmd, buf);
		if (err)
			return err;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	*ns = ktime_get_ns() - start;
	return 0;
}

static int rxe_bench_rounds(struct rxe_mr *mr[2],
			    const struct rxe_bench_cmd *cmd, void *buf)
{
	u64 ns[2];
	u32 round;
	int i, err;

	for (i = 0; i < 2; i++) {
		err = rxe_bench_one(mr[i], cmd, buf);
		if (err)
			return err;
	}
	rxe_bench_out_len = 0;
	for (round = 0; round < cmd->rounds; round++) {
		/* alternate the order, so drift hits both MRs alike */
		for (i = 0; i < 2; i++) {
			int which = (round & 1) ? 1 - i : i;

			err = rxe_bench_time(mr[which], cmd, buf, &ns[which]);
			if (err)
				return err;
		}
		rxe_bench_out_len +=
			scnprintf(rxe_bench_out + rxe_bench_out_len,
				  RXE_BENCH_OUT_SIZE - rxe_bench_out_len,
				  "%u %llu %llu\n", round, ns[0], ns[1]);
	}
	return 0;
}

static int rxe_bench_run(const struct rxe_bench_cmd *cmd)
{
	struct rxe_mr *mr[2] = {};
	struct ib_device *ibdev;
	struct rxe_dev *rxe;
	void *buf;
	int i, err;

	ibdev = ib_device_get_by_name(cmd->dev, RDMA_DRIVER_RXE);
	if (!ibdev)
		return -ENODEV;
	rxe = container_of(ibdev, struct rxe_dev, ib_dev);

	buf = kvzalloc(cmd->length, GFP_KERNEL);
	if (!buf) {
		err = -ENOMEM;
		goto out_dev;
	}
	for (i = 0; i < 2; i++) {
		mr[i] = rxe_bench_get_mr(rxe, cmd->lkey[i],
					 rxe_bench_access(cmd->op), cmd->iova,
					 cmd->length);
		if (IS_ERR(mr[i])) {
			err = PTR_ERR(mr[i]);
			mr[i] = NULL;
			goto out_mr;
		}
	}
	err = rxe_bench_rounds(mr, cmd, buf);
out_mr:
	for (i = 0; i < 2; i++)
		if (mr[i])
			rxe_put(mr[i]);
	kvfree(buf);
out_dev:
	ib_device_put(ibdev);
	return err;
}

static ssize_t rxe_bench_write(struct file *file, const char __user *ubuf,
			       size_t count, loff_t *ppos)
{
	struct rxe_bench_cmd cmd = {};
	char buf[160];
	int err;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	err = rxe_bench_parse(buf, &cmd);
	if (err)
		return err;

	mutex_lock(&rxe_bench_lock);
	err = rxe_bench_run(&cmd);
	if (err)
		rxe_bench_out_len = 0;
	mutex_unlock(&rxe_bench_lock);
	return err ? err : count;
}

static ssize_t rxe_bench_read(struct file *file, char __user *ubuf,
			      size_t count, loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&rxe_bench_lock);
	ret = simple_read_from_buffer(ubuf, count, ppos, rxe_bench_out,
				      rxe_bench_out_len);
	mutex_unlock(&rxe_bench_lock);
	return ret;
}

static const struct file_operations rxe_bench_fops = {
	.owner = THIS_MODULE,
	.write = rxe_bench_write,
	.read = rxe_bench_read,
	.llseek = default_llseek,
};

/**
 * rxe_copy_bench_init - create <debugfs>/rxe/copy_bench
 *
 * Return: 0, or -ENOMEM.  A debugfs failure is not an error.
 */
int rxe_copy_bench_init(void)
{
	rxe_bench_out = kzalloc(RXE_BENCH_OUT_SIZE, GFP_KERNEL);
	if (!rxe_bench_out)
		return -ENOMEM;
	rxe_bench_dir = debugfs_create_dir("rxe", NULL);
	debugfs_create_file("copy_bench", 0600, rxe_bench_dir, NULL,
			    &rxe_bench_fops);
	return 0;
}

/**
 * rxe_copy_bench_exit - remove what rxe_copy_bench_init() created
 */
void rxe_copy_bench_exit(void)
{
	debugfs_remove_recursive(rxe_bench_dir);
	kfree(rxe_bench_out);
}
