// SPDX-License-Identifier: GPL-2.0
/* Interlock's BPF entry points. Thin on purpose: each hook normalizes its context and
 * calls a helper in bpf/lib/, where the decisions live. Maps: bpf/lib/maps.h.
 *
 *   cgroup/connect4|6      redirect enrolled connects to protected resources to the
 *                          engine listener, or deny (connect fails with EPERM)
 *   cgroup/getpeername4|6  show the agent its original destination
 *   cgroup/sendmsg4|6      the same rules for unconnected datagrams (no redirect)
 *   cgroup/bind4|6         keep enrolled tasks off the engine listener's port
 *   cgroup/connect_unix    the same for protected unix socket paths (Linux >= 6.7; not
 *                          loaded on older kernels), with getpeername_unix and
 *                          sendmsg_unix
 *   tp_btf/cgroup_mkdir    enroll a cgroup created at an enrolled path, before it is
 *                          visible; cgroup_rmdir forgets its id
 *   sockops                pair the agent and engine sockets at establishment
 *   sk_msg                 splice bytes agent <-> engine (attached to sock_pairs);
 *                          il_sk_msg_unbounded on kernels before 6.3
 */
#include "bpf/lib/bind.h"
#include "bpf/lib/cgroup.h"
#include "bpf/lib/common.h"
#include "bpf/lib/connect.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/relay.h"
#include "bpf/lib/unix.h"

IL_SIZE_ASSERTS

char LICENSE[] SEC("license") = "GPL";

SEC("cgroup/connect4")
int il_connect4(struct bpf_sock_addr *ctx)
{
	struct il_dst dst = {};

	il_dst_from_ctx(ctx, false, &dst);
	return il_connect(ctx, &dst, false);
}

SEC("cgroup/connect6")
int il_connect6(struct bpf_sock_addr *ctx)
{
	struct il_dst dst = {};

	il_dst_from_ctx(ctx, true, &dst);
	return il_connect(ctx, &dst, true);
}

SEC("cgroup/sendmsg4")
int il_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct il_dst dst = {};

	il_dst_from_ctx(ctx, false, &dst);
	return il_sendmsg(ctx, &dst, false);
}

SEC("cgroup/sendmsg6")
int il_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct il_dst dst = {};

	il_dst_from_ctx(ctx, true, &dst);
	return il_sendmsg(ctx, &dst, true);
}

SEC("cgroup/bind4")
int il_bind4(struct bpf_sock_addr *ctx)
{
	struct il_dst dst = {};

	il_dst_from_ctx(ctx, false, &dst);
	return il_bind(&dst);
}

SEC("cgroup/bind6")
int il_bind6(struct bpf_sock_addr *ctx)
{
	struct il_dst dst = {};

	il_dst_from_ctx(ctx, true, &dst);
	return il_bind(&dst);
}

SEC("cgroup/getpeername4")
int il_getpeername4(struct bpf_sock_addr *ctx)
{
	struct il_conn_info *info = bpf_sk_storage_get(&conn_by_agent_sk, ctx->sk, 0, 0);

	if (info) {
		ctx->user_ip4 = info->orig_addr[3];
		ctx->user_port = bpf_htons(info->orig_port);
	}
	return 1;
}

SEC("cgroup/getpeername6")
int il_getpeername6(struct bpf_sock_addr *ctx)
{
	struct il_conn_info *info = bpf_sk_storage_get(&conn_by_agent_sk, ctx->sk, 0, 0);

	if (info) {
		/* The full stored address: ::ffff:a.b.c.d when the agent used one. */
		ctx->user_ip6[0] = info->orig_addr[0];
		ctx->user_ip6[1] = info->orig_addr[1];
		ctx->user_ip6[2] = info->orig_addr[2];
		ctx->user_ip6[3] = info->orig_addr[3];
		ctx->user_port = bpf_htons(info->orig_port);
	}
	return 1;
}

SEC("cgroup/connect_unix")
int il_connect_unix(struct bpf_sock_addr *ctx)
{
	return il_unix_connect(ctx);
}

SEC("cgroup/sendmsg_unix")
int il_sendmsg_unix(struct bpf_sock_addr *ctx)
{
	return il_unix_sendmsg(ctx);
}

SEC("cgroup/getpeername_unix")
int il_getpeername_unix(struct bpf_sock_addr *ctx)
{
	return il_unix_getpeername(ctx);
}

/* tp_btf arguments: ctx[0] = struct cgroup *, ctx[1] = const char *path. */
SEC("tp_btf/cgroup_mkdir")
int il_cgroup_mkdir(__u64 *ctx)
{
	il_cgroup_created((struct cgroup *)ctx[0], (const char *)ctx[1]);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int il_cgroup_rmdir(__u64 *ctx)
{
	il_cgroup_removed((struct cgroup *)ctx[0]);
	return 0;
}

SEC("sockops")
int il_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		il_agent_established(skops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		il_engine_established(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE)
			il_conn_closed(skops);
		break;
	default:
		break;
	}
	return 1;
}

SEC("sk_msg")
int il_sk_msg(struct sk_msg_md *msg)
{
	return il_relay_msg(msg, true);
}

/* The same without the bound on interlockd's spliced direction, for kernels before 6.3
 * (no bpf_cast_to_kern_ctx); the loader loads exactly one of the two. */
SEC("sk_msg")
int il_sk_msg_unbounded(struct sk_msg_md *msg)
{
	return il_relay_msg(msg, false);
}
