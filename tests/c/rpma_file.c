// SPDX-License-Identifier: GPL-2.0
/*
 * A zero-copy storage target and its client on librpma (rdma_cm):
 *
 *   rpma_file target ADDR PORT FILE SIZE [pmem]
 *                                          serve FILE (mapped MAP_SHARED) to
 *                                          one client, fsync it, exit; "pmem":
 *                                          FILE is on DAX, a persistence domain
 *                                          (direct write to pmem)
 *   rpma_file client ADDR PORT SIZE SEED   write the pattern SEED into the
 *                                          target's file, rpma_flush() it
 *                                          (persistent if the target says pmem,
 *                                          else visibility), read it back, check
 *   rpma_file check FILE SIZE SEED         does FILE hold the pattern?
 *
 * The target registers the mapping with rpma_mr_reg(): librpma tries a
 * pinned registration first and retries with IBV_ACCESS_ON_DEMAND when that
 * fails with EOPNOTSUPP (fsdax), so on DAX this is an ODP MR.  The target
 * sends its MR descriptor and its peer configuration (direct write to pmem)
 * as connection private data.  Exit status 0 on success.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <librpma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned char pat(unsigned int seed, size_t off)
{
	return (unsigned char)(((off + 1) * 2654435761u ^ seed * 40503u) >> 11) | 1;
}

#define TRY(call) do {							\
	int _r = (call);						\
	if (_r) {							\
		fprintf(stderr, "rpma_file: %s: %s\n", #call, rpma_err_2str(_r)); \
		exit(1);						\
	}								\
} while (0)

static void wait_event(struct rpma_conn *conn, enum rpma_conn_event want)
{
	enum rpma_conn_event ev;

	TRY(rpma_conn_next_event(conn, &ev));
	if (ev != want) {
		fprintf(stderr, "rpma_file: connection event %s, expected %s\n",
			rpma_utils_conn_event_2str(ev), rpma_utils_conn_event_2str(want));
		exit(1);
	}
}

static void complete(struct rpma_conn *conn, const char *what)
{
	struct rpma_cq *cq;
	struct ibv_wc wc;
	int n = 0;

	TRY(rpma_conn_get_cq(conn, &cq));
	TRY(rpma_cq_wait(cq));
	TRY(rpma_cq_get_wc(cq, 1, &wc, &n));
	if (n != 1 || wc.status != IBV_WC_SUCCESS) {
		fprintf(stderr, "rpma_file: %s: %d completions, status %s\n", what, n,
			n ? ibv_wc_status_str(wc.status) : "-");
		exit(1);
	}
}

static int target(const char *addr, const char *port, const char *path, size_t size,
		  bool pmem)
{
	struct ibv_context *ctx;
	struct rpma_peer *peer;
	struct rpma_peer_cfg *pcfg;
	struct rpma_mr_local *mr;
	struct rpma_ep *ep;
	struct rpma_conn_req *req;
	struct rpma_conn *conn;
	size_t mr_size, cfg_size;
	unsigned char desc[255];
	struct rpma_conn_private_data pdata = { desc, 0 };
	int fd = open(path, O_RDWR);
	void *p;

	if (fd < 0 || (p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		perror("rpma_file: target file");
		return 1;
	}
	TRY(rpma_utils_get_ibv_context(addr, RPMA_UTIL_IBV_CONTEXT_LOCAL, &ctx));
	TRY(rpma_peer_new(ctx, &peer));
	/*
	 * Only persistent memory (DAX) is a persistence domain for librpma;
	 * a page cache file is made durable by the target's fsync().
	 */
	TRY(rpma_mr_reg(peer, p, size, RPMA_MR_USAGE_READ_SRC | RPMA_MR_USAGE_WRITE_DST |
			(pmem ? RPMA_MR_USAGE_FLUSH_TYPE_PERSISTENT : 0) |
			RPMA_MR_USAGE_FLUSH_TYPE_VISIBILITY, &mr));
	TRY(rpma_peer_cfg_new(&pcfg));
	TRY(rpma_peer_cfg_set_direct_write_to_pmem(pcfg, pmem));
	TRY(rpma_mr_get_descriptor_size(mr, &mr_size));
	TRY(rpma_peer_cfg_get_descriptor_size(pcfg, &cfg_size));
	/* rdma_cm pads private data: say how long the descriptors are. */
	if (2 + mr_size + cfg_size > sizeof(desc))
		return 1;
	desc[0] = mr_size;
	desc[1] = cfg_size;
	TRY(rpma_mr_get_descriptor(mr, desc + 2));
	TRY(rpma_peer_cfg_get_descriptor(pcfg, desc + 2 + mr_size));
	pdata.len = 2 + mr_size + cfg_size;
	printf("target: MR descriptor %zu bytes, peer cfg descriptor %zu bytes\n", mr_size, cfg_size);
	TRY(rpma_ep_listen(peer, addr, port, &ep));
	printf("target: listening\n");
	fflush(stdout);
	TRY(rpma_ep_next_conn_req(ep, NULL, &req));
	TRY(rpma_conn_req_connect(&req, &pdata, &conn));
	wait_event(conn, RPMA_CONN_ESTABLISHED);
	wait_event(conn, RPMA_CONN_CLOSED);
	TRY(rpma_conn_disconnect(conn));
	TRY(rpma_conn_delete(&conn));
	TRY(rpma_ep_shutdown(&ep));
	TRY(rpma_mr_dereg(&mr));
	TRY(rpma_peer_cfg_delete(&pcfg));
	TRY(rpma_peer_delete(&peer));
	if (fsync(fd)) {
		perror("rpma_file: fsync");
		return 1;
	}
	munmap(p, size);
	close(fd);
	printf("target: served one client\n");
	return 0;
}

static int client(const char *addr, const char *port, size_t size, unsigned int seed)
{
	struct ibv_context *ctx;
	struct rpma_peer *peer;
	struct rpma_peer_cfg *pcfg;
	struct rpma_mr_local *src_mr, *dst_mr;
	struct rpma_mr_remote *rmr;
	struct rpma_conn_req *req;
	struct rpma_conn *conn;
	struct rpma_conn_private_data pdata;
	bool direct = false;
	size_t mr_size;
	unsigned char *src, *dst;

	src = aligned_alloc(4096, size);
	dst = aligned_alloc(4096, size);
	if (!src || !dst)
		return 1;
	for (size_t i = 0; i < size; i++)
		src[i] = pat(seed, i);
	memset(dst, 0, size);
	TRY(rpma_utils_get_ibv_context(addr, RPMA_UTIL_IBV_CONTEXT_REMOTE, &ctx));
	TRY(rpma_peer_new(ctx, &peer));
	TRY(rpma_mr_reg(peer, src, size, RPMA_MR_USAGE_WRITE_SRC, &src_mr));
	TRY(rpma_mr_reg(peer, dst, size, RPMA_MR_USAGE_READ_DST, &dst_mr));
	TRY(rpma_conn_req_new(peer, addr, port, NULL, &req));
	TRY(rpma_conn_req_connect(&req, NULL, &conn));
	wait_event(conn, RPMA_CONN_ESTABLISHED);
	TRY(rpma_conn_get_private_data(conn, &pdata));
	if (!pdata.ptr || !pdata.len) {
		fprintf(stderr, "rpma_file: no private data from the target\n");
		return 1;
	}
	/* [MR descriptor size, peer cfg descriptor size, MR descriptor, cfg] */
	{
		const unsigned char *d = pdata.ptr;

		if (pdata.len < 2 || pdata.len < 2 + d[0] + d[1]) {
			fprintf(stderr, "rpma_file: short private data\n");
			return 1;
		}
		TRY(rpma_mr_remote_from_descriptor(d + 2, d[0], &rmr));
		TRY(rpma_peer_cfg_from_descriptor(d + 2 + d[0], d[1], &pcfg));
		TRY(rpma_peer_cfg_get_direct_write_to_pmem(pcfg, &direct));
		TRY(rpma_conn_apply_remote_peer_cfg(conn, pcfg));
		printf("client: the target's peer cfg says direct write to pmem: %d\n", direct);
	}
	TRY(rpma_mr_remote_get_size(rmr, &mr_size));
	if (mr_size < size) {
		fprintf(stderr, "rpma_file: the target's MR has %zu bytes\n", mr_size);
		return 1;
	}
	TRY(rpma_write(conn, rmr, 0, src_mr, 0, size, RPMA_F_COMPLETION_ON_ERROR, NULL));
	TRY(rpma_flush(conn, rmr, 0, size, direct ? RPMA_FLUSH_TYPE_PERSISTENT :
		       RPMA_FLUSH_TYPE_VISIBILITY, RPMA_F_COMPLETION_ALWAYS, NULL));
	complete(conn, "rpma_write + rpma_flush");
	TRY(rpma_read(conn, dst_mr, 0, rmr, 0, size, RPMA_F_COMPLETION_ALWAYS, NULL));
	complete(conn, "rpma_read");
	for (size_t i = 0; i < size; i++)
		if (dst[i] != pat(seed, i)) {
			fprintf(stderr, "rpma_file: byte %zu read back is %#x, expected %#x\n",
				i, dst[i], pat(seed, i));
			return 1;
		}
	TRY(rpma_conn_disconnect(conn));
	wait_event(conn, RPMA_CONN_CLOSED);
	TRY(rpma_conn_delete(&conn));
	TRY(rpma_mr_remote_delete(&rmr));
	TRY(rpma_peer_cfg_delete(&pcfg));
	TRY(rpma_mr_dereg(&src_mr));
	TRY(rpma_mr_dereg(&dst_mr));
	TRY(rpma_peer_delete(&peer));
	printf("client: wrote, flushed and read back %zu bytes, every byte checked\n", size);
	return 0;
}

static int check(const char *path, size_t size, unsigned int seed)
{
	unsigned char *b = malloc(size);
	int fd = open(path, O_RDONLY);

	if (!b || fd < 0 || pread(fd, b, size, 0) != (ssize_t)size) {
		perror("rpma_file: check");
		return 1;
	}
	for (size_t i = 0; i < size; i++)
		if (b[i] != pat(seed, i)) {
			fprintf(stderr, "rpma_file: %s byte %zu is %#x, expected %#x\n", path, i,
				b[i], pat(seed, i));
			return 1;
		}
	printf("check: %s holds the %zu bytes\n", path, size);
	return 0;
}

int main(int argc, char **argv)
{
	rpma_log_set_threshold(RPMA_LOG_THRESHOLD, RPMA_LOG_LEVEL_INFO);
	rpma_log_set_threshold(RPMA_LOG_THRESHOLD_AUX, RPMA_LOG_LEVEL_INFO);
	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "target"))
		return target(argv[2], argv[3], argv[4], strtoul(argv[5], NULL, 0),
			      argc == 7 && !strcmp(argv[6], "pmem"));
	if (argc == 6 && !strcmp(argv[1], "client"))
		return client(argv[2], argv[3], strtoul(argv[4], NULL, 0), atoi(argv[5]));
	if (argc == 5 && !strcmp(argv[1], "check"))
		return check(argv[2], strtoul(argv[3], NULL, 0), atoi(argv[4]));
	fprintf(stderr, "usage: rpma_file target ADDR PORT FILE SIZE | client ADDR PORT SIZE SEED | check FILE SIZE SEED\n");
	return 2;
}
