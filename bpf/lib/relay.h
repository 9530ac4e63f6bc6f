/* Connection pairing (sockops) and the agent <-> engine splice (sk_msg).
 *
 * At establishment the agent socket's 4-tuple (and network namespace) is bound to what
 * the connect hook saw (conn_by_tuple); the engine's accepted socket claims that record,
 * once, by the swapped tuple in its own namespace, into its own storage. interlockd
 * listens in every namespace it serves, so both ends of a pair share one namespace.
 * With IL_SETTINGS_SOCKMAP both sockets also go into sock_pairs, keyed by their own tuple,
 * and sk_msg moves each sendmsg() straight into the peer's ingress queue — interlockd's
 * until the agent leaves IL_SPLICE_MAX_QUEUED_AT_AGENT unread; they then go over TCP.
 *
 * Byte order: in bpf_sock_ops and sk_msg_md, local_port is host order and remote_port
 * is the network-order port shifted into the upper 16 bits (the kernel loads skc_dport
 * and shifts it left by 16 on little endian), so bpf_ntohl() yields the host port.
 */
#ifndef INTERLOCK_BPF_LIB_RELAY_H_
#define INTERLOCK_BPF_LIB_RELAY_H_

#include "bpf/lib/common.h"
#include "bpf/lib/maps.h"

/* The socket's own tuple, mapped form, with its network namespace's cookie (both
 * sock_ops and sk_msg have bpf_get_netns_cookie since Linux 5.15). A macro because
 * bpf_sock_ops and sk_msg_md name the fields alike; each field is read with its own
 * 32-bit context load. */
#define IL_TUPLE_FROM_CTX(ctx, t)                                              \
	do {                                                                   \
		if ((ctx)->family == AF_INET) {                                \
			il_addr_set_v4_mapped((t)->local_ip, (ctx)->local_ip4);   \
			il_addr_set_v4_mapped((t)->remote_ip, (ctx)->remote_ip4); \
		} else {                                                       \
			(t)->local_ip[0] = (ctx)->local_ip6[0];                \
			(t)->local_ip[1] = (ctx)->local_ip6[1];                \
			(t)->local_ip[2] = (ctx)->local_ip6[2];                \
			(t)->local_ip[3] = (ctx)->local_ip6[3];                \
			(t)->remote_ip[0] = (ctx)->remote_ip6[0];              \
			(t)->remote_ip[1] = (ctx)->remote_ip6[1];              \
			(t)->remote_ip[2] = (ctx)->remote_ip6[2];              \
			(t)->remote_ip[3] = (ctx)->remote_ip6[3];              \
		}                                                              \
		(t)->local_port = (ctx)->local_port;                           \
		(t)->remote_port = bpf_ntohl((ctx)->remote_port);              \
		(t)->netns_cookie = bpf_get_netns_cookie(ctx);                 \
	} while (0)

static __always_inline void il_enable_state_cb(struct bpf_sock_ops *skops)
{
	bpf_sock_ops_cb_flags_set(skops,
				  skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* Agent side established: publish the connect-time record under the socket's tuple
 * (the rendezvous with the engine's socket), and join sock_pairs when splicing is on.
 * Returns 0, or -ENOENT when the socket was not redirected, or the map update's -errno. */
static __always_inline int il_agent_established(struct bpf_sock_ops *skops)
{
	const struct il_settings *s = il_settings_get();
	struct bpf_sock *sk = skops->sk;
	struct il_conn_info *info;
	struct il_tuple t = {};
	int err;

	if (!sk)
		return -ENOENT;
	info = bpf_sk_storage_get(&conn_by_agent_sk, sk, 0, 0);
	if (!info)
		return -ENOENT;
	IL_TUPLE_FROM_CTX(skops, &t);
	info->engine_state = 0;
	if (s && (s->flags & IL_SETTINGS_SOCKMAP)) {
		/* Not in sock_pairs means no splice for this connection, ever: decide
		 * TCP now so the engine side does not join either. */
		if (bpf_sock_hash_update(skops, &sock_pairs, &t, BPF_NOEXIST))
			info->relay_path = IL_PATH_TCP;
	} else {
		info->relay_path = IL_PATH_TCP;
	}
	err = bpf_map_update_elem(&conn_by_tuple, &t, info, BPF_ANY);
	il_enable_state_cb(skops);
	return err;
}

/* Engine side established (a socket accepted on the engine listener): claim the agent's
 * record, once, into this socket's own storage (what interlockd reads), join sock_pairs
 * and mark the record splice-ready so the agent's first send picks the splice.
 * Returns 0, -ENOENT when this is not a redirected connection, -EEXIST when another
 * engine socket already claimed the record, or -ENOMEM. */
static __always_inline int il_engine_established(struct bpf_sock_ops *skops)
{
	const struct il_settings *s = il_settings_get();
	struct bpf_sock *sk = skops->sk;
	struct il_conn_info *info, *claimed;
	struct il_tuple self = {}, agent = {};

	if (!s || !sk || skops->local_port != s->engine_port)
		return -ENOENT;
	IL_TUPLE_FROM_CTX(skops, &self);
	if (!il_addr_equal(self.local_ip, s->engine_ip4) &&
	    !il_addr_equal(self.local_ip, s->engine_ip6))
		return -ENOENT;
	il_tuple_swap(&agent, &self);
	info = bpf_map_lookup_elem(&conn_by_tuple, &agent);
	if (!info)
		return -ENOENT;
	/* Plain read-modify-write: one tuple is established by one engine socket at a
	 * time (the kernel's own tuple uniqueness), so there is no race to lose. */
	if (info->engine_state & IL_ENGINE_CLAIMED)
		return -EEXIST;
	info->engine_state |= IL_ENGINE_CLAIMED;
	claimed = bpf_sk_storage_get(&conn_by_engine_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!claimed)
		return -ENOMEM;
	*claimed = *info;
	if ((s->flags & IL_SETTINGS_SOCKMAP) && info->relay_path == IL_PATH_UNDECIDED &&
	    bpf_sock_hash_update(skops, &sock_pairs, &self, BPF_NOEXIST) == 0)
		info->engine_state |= IL_ENGINE_SPLICE_READY;
	il_enable_state_cb(skops);
	return 0;
}

/* A socket reached TCP_CLOSE. The agent's socket takes its rendezvous record with it
 * (only when the record is its own: same cookie), so a later socket that reuses the
 * tuple (another user, after the agent reset before interlockd accepted) finds nothing
 * to claim. The socket storages go away with their sockets, sock_pairs entries too.
 * Returns 0 or -ENOENT. */
static __always_inline int il_conn_closed(struct bpf_sock_ops *skops)
{
	struct il_conn_info *info;
	struct il_tuple t = {};

	IL_TUPLE_FROM_CTX(skops, &t);
	info = bpf_map_lookup_elem(&conn_by_tuple, &t);
	if (!info || info->cookie != bpf_get_socket_cookie(skops))
		return -ENOENT;
	bpf_map_delete_elem(&conn_by_tuple, &t);
	return 0;
}

/* At most this many bytes may wait unread in the agent socket's psock ingress queue
 * (spliced, charged to its sk_rmem_alloc) before interlockd's direction falls back to TCP.
 * The splice has no flow control: bpf_tcp_ingress() queues whatever the sender sends,
 * whatever the receiver's sk_rcvbuf, and interlockd's writes never block, so an agent
 * that does not read (a pipeline client still writing, a slow consumer of a bulk
 * download) would have interlockd queue into it without bound — 29 MB in a 256 MiB
 * transfer here — where TCP's window would have stopped interlockd, which then stops
 * reading upstream (its high-water mark). 1 MiB: that high-water mark; far above what
 * request/response traffic leaves unread, so such sessions keep splicing.
 *
 * The agent's own direction is not bounded this way, on purpose: moving it to TCP makes
 * the agent's writer block on its send buffer, and the write-space wakeup that ends the
 * block also wakes a reader blocked on the same socket in tcp_bpf_recvmsg(), which then
 * returns EAGAIN (README, "Relay modes"): with a 1 MiB or 16 MiB bound there, 256 MiB
 * transfers by a threaded blocking agent (interlock-probe) hung. */
#define IL_SPLICE_MAX_QUEUED_AT_AGENT (1u << 20)

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;
#ifndef bpf_ksym_exists /* libbpf < 1.2 */
#define bpf_ksym_exists(sym) (!!(sym))
#endif

/* Bytes waiting unread at the socket this message was just redirected to (its
 * sk_rmem_alloc: the psock ingress queue plus any TCP receive queue), read through the
 * kernel's struct sk_msg (bpf_cast_to_kern_ctx, Linux >= 6.3); 0 when unknown. sk_msg
 * cannot take a reference on another socket (no bpf_sk_release), and need not:
 * bpf_msg_redirect_hash() has just found it in sock_pairs under the sender's lock. */
static __always_inline __u32 il_redirect_queued_bytes(struct sk_msg_md *msg)
{
	struct sk_msg *kmsg;
	struct sock *peer;

	if (!bpf_ksym_exists(bpf_cast_to_kern_ctx))
		return 0;
	kmsg = bpf_cast_to_kern_ctx(msg);
	peer = kmsg->sk_redir;
	if (!peer)
		return 0;
	return (__u32)peer->sk_backlog.rmem_alloc.counter;
}

/* Moves the message into the ingress queue of the socket stored under `peer`. */
static __always_inline int il_splice(struct sk_msg_md *msg, struct il_tuple *peer)
{
	long verdict = bpf_msg_redirect_hash(msg, &sock_pairs, peer, BPF_F_INGRESS);

	if (verdict == SK_PASS)
		il_count(IL_STAT_SPLICED_MSGS);
	return (int)verdict;
}

/* sk_msg verdict for a socket in sock_pairs.
 *
 * The agent's direction picks its path once, at its first send: SPLICE when the engine
 * socket is already in sock_pairs, else TCP for the life of the connection. Mixing the
 * two within one direction could reorder bytes: tcp_bpf_recvmsg() drains the psock
 * ingress queue (spliced bytes) before the TCP receive queue, so a spliced message
 * could overtake bytes sent earlier over TCP. The engine socket is only ever in
 * sock_pairs after the agent socket, so the engine's direction starts spliced; it moves
 * to TCP, for good, once the agent holds more than IL_SPLICE_MAX_QUEUED_AT_AGENT unread.
 * SPLICE then TCP keeps the order (the older, spliced bytes are read first); never back.
 * `bound_engine` false (a constant): no bound, and no reference to the kfunc it needs, for
 * kernels without bpf_cast_to_kern_ctx (before 6.3), whose verifier refuses even a dead
 * call to a missing kfunc. */
static __always_inline int il_relay_msg(struct sk_msg_md *msg, const bool bound_engine)
{
	struct il_tuple self = {}, peer = {};
	struct il_conn_info *info;
	__u32 path;
	int verdict;

	IL_TUPLE_FROM_CTX(msg, &self);
	il_tuple_swap(&peer, &self);

	info = bpf_map_lookup_elem(&conn_by_tuple, &self);
	if (info) { /* sender is the agent */
		path = info->relay_path;
		if (path == IL_PATH_UNDECIDED) {
			path = (info->engine_state & IL_ENGINE_SPLICE_READY) ? IL_PATH_SPLICE
									   : IL_PATH_TCP;
			info->relay_path = path;
		}
		if (path != IL_PATH_SPLICE)
			return SK_PASS;
		return il_splice(msg, &peer);
	}
	info = bpf_map_lookup_elem(&conn_by_tuple, &peer);
	if (!info) /* not the engine side of a redirected connection */
		return SK_PASS;
	if (info->engine_state & IL_ENGINE_TO_AGENT_TCP)
		return SK_PASS;
	verdict = il_splice(msg, &peer);
	/* This message still goes (an overshoot of at most one message). A plain
	 * read-modify-write: the engine's sends hold its socket lock, and nothing else writes
	 * engine_state once the engine is established. */
	if (bound_engine && verdict == SK_PASS && il_redirect_queued_bytes(msg) > IL_SPLICE_MAX_QUEUED_AT_AGENT) {
		info->engine_state |= IL_ENGINE_TO_AGENT_TCP;
		il_count(IL_STAT_SPLICE_FALLBACKS);
	}
	return verdict;
}

#endif /* INTERLOCK_BPF_LIB_RELAY_H_ */
