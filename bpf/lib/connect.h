/* Decision logic of the cgroup/connect4 and cgroup/connect6 hooks.
 *
 * il_connect() is the one place that maps outcomes to verdicts: the helpers below
 * return 0 or -errno (lookups) or an il_reason (the redirect), and il_connect() turns
 * a reason into "deny with EPERM + counter + event". Enrolled connects to protected
 * resources are rewritten to the engine listener; everything that cannot be redirected
 * safely is denied (fail closed).
 */
#ifndef INTERLOCK_BPF_LIB_CONNECT_H_
#define INTERLOCK_BPF_LIB_CONNECT_H_

#include "bpf/lib/common.h"
#include "bpf/lib/events.h"
#include "bpf/lib/maps.h"

#ifndef IL_SOCK_STREAM
#define IL_SOCK_STREAM 1 /* SOCK_STREAM */
#endif
#define IL_LOOPBACK_V4 0x7f000001u /* 127.0.0.1, host order */

/* The enrollment of the task's user or group, for a task no cgroup enrollment governs.
 * The ids are the task's real uid and primary gid as the host sees them (mapped out of
 * any user namespace): a set-uid program run by an enrolled user stays enrolled.
 * Returns 0 and fills `subject`, or -ENOENT. */
static __always_inline int il_find_id_enrollment(struct il_subject *subject)
{
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct il_enrollment *e;
	__u64 key;

	key = IL_ENROLLED_ID_KEY(IL_ENROLLED_UID, (__u32)uid_gid);
	e = bpf_map_lookup_elem(&enrolled_ids, &key);
	if (!e) {
		key = IL_ENROLLED_ID_KEY(IL_ENROLLED_GID, (__u32)(uid_gid >> 32));
		e = bpf_map_lookup_elem(&enrolled_ids, &key);
	}
	if (!e)
		return -ENOENT;
	subject->enrollment = *e;
	return 0;
}

/* The depth of the current task's cgroup2 cgroup (0: the root). When it cannot be read,
 * IL_MAX_CGROUP_DEPTH: every ancestor level is then looked at, as if it were deep. */
static __always_inline int il_current_cgroup_level(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct cgroup *cgrp = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	int level = 0;

	if (!cgrp || bpf_core_read(&level, sizeof(level), &cgrp->level) != 0 || level < 0 ||
	    level > IL_MAX_CGROUP_DEPTH)
		return IL_MAX_CGROUP_DEPTH;
	return level;
}

/* Finds the enrollment governing the current task: its own cgroup's, else the nearest
 * enrolled ancestor's, so that moving into a sub-cgroup does not bypass enforcement;
 * else its user's or group's. interlockd's own cgroup is never governed.
 * Returns 0 and fills `subject`, or -ENOENT when the task is not enrolled. */
static __always_inline int il_find_enrollment(struct il_subject *subject)
{
	struct il_enrollment *e;
	__u64 id;
	int level, own;

	subject->cgroup_id = bpf_get_current_cgroup_id();
	if (bpf_map_lookup_elem(&exempt_cgroups, &subject->cgroup_id))
		return -ENOENT;
	e = bpf_map_lookup_elem(&enrolled_cgroups, &subject->cgroup_id);
	if (e) {
		subject->enrollment = *e;
		return 0;
	}
	/* Walking from the deepest level down makes the nearest enrolled ancestor win. The
	 * task's own level (just looked up) and deeper ones (the helper returns 0 there) are
	 * skipped: every task on the host runs this, most of them in shallow cgroups that
	 * nothing enrolls (hook_cost.sh measures it). */
	own = il_current_cgroup_level();
#pragma unroll
	for (level = IL_MAX_CGROUP_DEPTH - 1; level >= 0; level--) {
		if (level >= own)
			continue;
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			continue;
		e = bpf_map_lookup_elem(&enrolled_cgroups, &id);
		if (e) {
			subject->enrollment = *e;
			return 0;
		}
	}
	return il_find_id_enrollment(subject);
}

/* Looks `dst` up in `trie` (protected_resources or allowed_destinations), exact port
 * first, then "any port". Returns 0 and fills `out`, or -ENOENT when it is not there. */
static __always_inline int il_lookup_dst(void *trie, const struct il_dst *dst,
					 struct il_resource *out)
{
	struct il_resource_key key = {};
	struct il_resource *r;

	key.prefixlen = 32 + 128;
	key.port = bpf_htons(dst->port);
	il_addr_copy(key.addr, dst->addr);
	r = bpf_map_lookup_elem(trie, &key);
	if (!r) {
		key.port = 0;
		r = bpf_map_lookup_elem(trie, &key);
	}
	if (!r)
		return -ENOENT;
	*out = *r;
	return 0;
}

/* Audit loginuid of the current task, read with CO-RE (absent without CONFIG_AUDIT). */
static __always_inline __u32 il_current_login_uid(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	if (!bpf_core_field_exists(task->loginuid))
		return 0xffffffffu;
	return BPF_CORE_READ(task, loginuid.val);
}

/* Remembers what the agent asked for in its socket's own storage.
 * Returns 0, or -ENOMEM when the storage could not be allocated. */
static __always_inline int il_record_conn(struct bpf_sock_addr *ctx, const struct il_dst *dst,
					  const struct il_subject *subject,
					  const struct il_resource *res)
{
	struct il_conn_info *info;

	info = bpf_sk_storage_get(&conn_by_agent_sk, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!info)
		return -ENOMEM;
	il_addr_copy(info->orig_addr, dst->addr);
	info->orig_port = dst->port;
	info->orig_family = dst->family;
	info->resource_id = res->resource_id;
	info->workload_id = subject->enrollment.workload_id;
	info->engine_state = 0;
	info->cgroup_id = subject->cgroup_id;
	info->pid_tgid = bpf_get_current_pid_tgid();
	info->uid_gid = bpf_get_current_uid_gid();
	info->login_uid = il_current_login_uid();
	info->relay_path = IL_PATH_UNDECIDED;
	info->connect_ns = bpf_ktime_get_ns();
	info->cookie = bpf_get_socket_cookie(ctx);
	bpf_get_current_comm(info->comm, sizeof(info->comm));
	return 0;
}

/* A connect() or sendmsg() to 0.0.0.0 or :: is turned by the kernel, after the hook
 * ran, into the socket's own bound address or loopback; judge the address it will
 * really reach. IPv4 (ip_route_output_key_hash_rcu): daddr = saddr, else 127.0.0.1.
 * IPv6 (tcp_v6_connect, __ip6_datagram_connect): :: becomes ::1, or ::ffff:127.0.0.1
 * when the socket is bound to a v4-mapped address; ::ffff:0.0.0.0 takes the IPv4 path
 * with the socket's IPv4 source. */
static __always_inline void il_dst_resolve_unspecified(const struct bpf_sock_addr *ctx,
							struct il_dst *dst, const bool is_v6)
{
	struct bpf_sock *sk = ctx->sk;
	__u32 src[4] = {};
	__u32 v4_src = 0;

	if (!sk)
		return;
	if (is_v6) {
		src[0] = sk->src_ip6[0];
		src[1] = sk->src_ip6[1];
		src[2] = sk->src_ip6[2];
		src[3] = sk->src_ip6[3];
		if (il_addr_is_v4_mapped(src))
			v4_src = src[3];
	} else {
		v4_src = sk->src_ip4;
	}
	if (il_addr_is_v4_mapped(dst->addr)) { /* an AF_INET socket, or ::ffff:a.b.c.d */
		if (dst->addr[3] != 0)
			return;
		il_addr_set_v4_mapped(dst->addr, v4_src ? v4_src : bpf_htonl(IL_LOOPBACK_V4));
		return;
	}
	if (!il_addr_is_zero(dst->addr))
		return;
	if (il_addr_is_v4_mapped(src)) {
		il_addr_set_v4_mapped(dst->addr, bpf_htonl(IL_LOOPBACK_V4));
	} else {
		dst->addr[0] = 0;
		dst->addr[1] = 0;
		dst->addr[2] = 0;
		dst->addr[3] = bpf_htonl(1); /* ::1 */
	}
}

/* Is the socket listening on `engine`:`port` in the connecting socket's network namespace
 * interlockd's own (marked in engine_listeners)? Returns 0 when it is, -ENOENT when
 * nothing listens there, -EACCES when someone else does. */
static __always_inline int il_engine_listener_ours(struct bpf_sock_addr *ctx,
						   const __u32 engine[4], __u16 port)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	void *mark;

	if (il_addr_is_v4_mapped(engine)) {
		t.ipv4.daddr = engine[3];
		t.ipv4.dport = bpf_htons(port);
		sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	} else {
		t.ipv6.daddr[0] = engine[0];
		t.ipv6.daddr[1] = engine[1];
		t.ipv6.daddr[2] = engine[2];
		t.ipv6.daddr[3] = engine[3];
		t.ipv6.dport = bpf_htons(port);
		sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return -ENOENT;
	mark = bpf_sk_storage_get(&engine_listeners, sk, 0, 0);
	bpf_sk_release(sk);
	return mark ? 0 : -EACCES;
}

/* Rewrites the connect destination to the engine listener. `is_v6` is a compile-time
 * constant: the verifier rejects any user_ip6 access in a connect4 program, even on a
 * path that is never taken at run time.
 * Returns IL_REASON_NONE, or why the connection must be refused. */
static __always_inline __u32 il_redirect(struct bpf_sock_addr *ctx, const struct il_dst *dst,
					 const struct il_subject *subject,
					 const struct il_resource *res, const bool is_v6)
{
	const struct il_settings *s = il_settings_get();
	const __u32 *engine;

	if (!s || !(s->flags & IL_SETTINGS_ENGINE_ACCEPTING) || s->engine_port == 0)
		return IL_REASON_ENGINE_DOWN;
	/* A v4-mapped destination on an AF_INET6 socket is IPv4 on the wire: send it to
	 * ::ffff:<engine v4>. */
	engine = il_addr_is_v4_mapped(dst->addr) ? s->engine_ip4 : s->engine_ip6;
	if (il_addr_is_zero(engine))
		return IL_REASON_ENGINE_DOWN;
	switch (il_engine_listener_ours(ctx, engine, s->engine_port)) {
	case 0:
		break;
	case -EACCES:
		return IL_REASON_ENGINE_UNVERIFIED;
	default:
		return IL_REASON_ENGINE_DOWN;
	}
	if (il_record_conn(ctx, dst, subject, res))
		return IL_REASON_MAP_FULL;

	if (is_v6) {
		ctx->user_ip6[0] = engine[0];
		ctx->user_ip6[1] = engine[1];
		ctx->user_ip6[2] = engine[2];
		ctx->user_ip6[3] = engine[3];
	} else {
		ctx->user_ip4 = engine[3];
	}
	ctx->user_port = bpf_htons(s->engine_port);
	return IL_REASON_NONE;
}

/* The verdict for an enrolled task's destination that is not a protected resource. */
static __always_inline __u32 il_unprotected_reason(const struct il_dst *dst,
						    const struct il_subject *subject)
{
	struct il_resource allowed;

	if (!(subject->enrollment.flags & IL_ENROLL_DEFAULT_DENY))
		return IL_REASON_NONE;
	if (il_lookup_dst(&allowed_destinations, dst, &allowed) == 0)
		return IL_REASON_NONE;
	return IL_REASON_DEFAULT_DENY;
}

static __always_inline int il_deny(__u32 reason, const struct il_dst *dst,
				   const struct il_subject *subject, __u32 resource_id)
{
	il_count(IL_STAT_DENIED);
	il_emit_event(IL_EVENT_DENIED, reason, dst, subject, resource_id);
	return IL_VERDICT_DENY;
}

/* The connect hook: allow untouched, redirect to the engine, or deny with EPERM. */
static __always_inline int il_connect(struct bpf_sock_addr *ctx, struct il_dst *dst,
				      const bool is_v6)
{
	struct il_subject subject = {};
	struct il_resource res = {};
	__u32 reason;

	if (il_find_enrollment(&subject))
		return IL_VERDICT_ALLOW;
	/* A socket connected again (UDP, or TCP after a failed connect) must not keep what
	 * an earlier redirect recorded for it. */
	bpf_sk_storage_delete(&conn_by_agent_sk, ctx->sk);
	il_dst_resolve_unspecified(ctx, dst, is_v6);

	if (il_lookup_dst(&protected_resources, dst, &res))
		reason = il_unprotected_reason(dst, &subject);
	else if (dst->type != IL_SOCK_STREAM)
		reason = IL_REASON_NOT_STREAM;
	else
		reason = il_redirect(ctx, dst, &subject, &res, is_v6);

	if (reason == IL_REASON_NONE && res.resource_id == 0)
		return IL_VERDICT_ALLOW; /* not protected, and allowed */
	if (reason != IL_REASON_NONE)
		return il_deny(reason, dst, &subject, res.resource_id);
	il_count(IL_STAT_REDIRECTED);
	il_emit_event(IL_EVENT_REDIRECTED, IL_REASON_NONE, dst, &subject, res.resource_id);
	return IL_VERDICT_ALLOW;
}

/* The sendmsg hook (datagrams with an explicit destination, i.e. unconnected UDP):
 * a protected resource is never reached by datagram, and a default-deny enrollment
 * reaches only its allowed destinations; the same rules connect() applies. */
static __always_inline int il_sendmsg(struct bpf_sock_addr *ctx, struct il_dst *dst,
				      const bool is_v6)
{
	struct il_subject subject = {};
	struct il_resource res = {};
	__u32 reason;

	if (il_find_enrollment(&subject))
		return IL_VERDICT_ALLOW;
	il_dst_resolve_unspecified(ctx, dst, is_v6);
	if (il_lookup_dst(&protected_resources, dst, &res) == 0)
		reason = IL_REASON_NOT_STREAM;
	else
		reason = il_unprotected_reason(dst, &subject);
	if (reason != IL_REASON_NONE)
		return il_deny(reason, dst, &subject, res.resource_id);
	return IL_VERDICT_ALLOW;
}

#endif /* INTERLOCK_BPF_LIB_CONNECT_H_ */
