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

/* Finds the enrollment governing the current task: its own cgroup's, else the nearest
 * enrolled ancestor's, so that moving into a sub-cgroup does not bypass enforcement.
 * Returns 0 and fills `subject`, or -ENOENT when the task is not enrolled. */
static __always_inline int il_find_enrollment(struct il_subject *subject)
{
	struct il_enrollment *e;
	__u64 id;
	int level;

	subject->cgroup_id = bpf_get_current_cgroup_id();
	e = bpf_map_lookup_elem(&enrolled_cgroups, &subject->cgroup_id);
	if (e) {
		subject->enrollment = *e;
		return 0;
	}
	/* Levels deeper than the task's own return 0; walking from the deepest level
	 * down makes the nearest enrolled ancestor win. */
#pragma unroll
	for (level = IL_MAX_CGROUP_DEPTH - 1; level >= 0; level--) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			continue;
		e = bpf_map_lookup_elem(&enrolled_cgroups, &id);
		if (e) {
			subject->enrollment = *e;
			return 0;
		}
	}
	return -ENOENT;
}

/* Looks `dst` up in protected_resources, exact port first, then "any port".
 * Returns 0 and fills `out`, or -ENOENT when the destination is not protected. */
static __always_inline int il_lookup_resource(const struct il_dst *dst, struct il_resource *out)
{
	struct il_resource_key key = {};
	struct il_resource *r;

	key.prefixlen = 32 + 128;
	key.port = bpf_htons(dst->port);
	il_addr_copy(key.addr, dst->addr);
	r = bpf_map_lookup_elem(&protected_resources, &key);
	if (!r) {
		key.port = 0;
		r = bpf_map_lookup_elem(&protected_resources, &key);
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

/* Remembers what the agent asked for, keyed by its socket cookie.
 * Returns 0 or the map update's -errno. */
static __always_inline int il_record_conn(struct bpf_sock_addr *ctx, const struct il_dst *dst,
					  const struct il_subject *subject,
					  const struct il_resource *res)
{
	struct il_conn_info info = {};

	il_addr_copy(info.orig_addr, dst->addr);
	info.orig_port = dst->port;
	info.orig_family = dst->family;
	info.resource_id = res->resource_id;
	info.workload_id = subject->enrollment.workload_id;
	info.cgroup_id = subject->cgroup_id;
	info.pid_tgid = bpf_get_current_pid_tgid();
	info.uid_gid = bpf_get_current_uid_gid();
	info.login_uid = il_current_login_uid();
	info.relay_path = IL_PATH_UNDECIDED;
	info.connect_ns = bpf_ktime_get_ns();
	info.cookie = bpf_get_socket_cookie(ctx);
	bpf_get_current_comm(info.comm, sizeof(info.comm));
	return bpf_map_update_elem(&orig_dst_by_cookie, &info.cookie, &info, BPF_ANY);
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

/* The connect hook: allow untouched, redirect to the engine, or deny with EPERM. */
static __always_inline int il_connect(struct bpf_sock_addr *ctx, const struct il_dst *dst,
				      const bool is_v6)
{
	struct il_subject subject = {};
	struct il_resource res = {};
	__u32 reason;

	if (il_find_enrollment(&subject))
		return IL_VERDICT_ALLOW;

	if (il_lookup_resource(dst, &res)) {
		if (!(subject.enrollment.flags & IL_ENROLL_DEFAULT_DENY))
			return IL_VERDICT_ALLOW;
		reason = IL_REASON_DEFAULT_DENY;
	} else if (dst->type != IL_SOCK_STREAM) {
		reason = IL_REASON_NOT_STREAM;
	} else {
		reason = il_redirect(ctx, dst, &subject, &res, is_v6);
	}

	if (reason != IL_REASON_NONE) {
		il_count(IL_STAT_DENIED);
		il_emit_event(IL_EVENT_DENIED, reason, dst, &subject, res.resource_id);
		return IL_VERDICT_DENY;
	}
	il_count(IL_STAT_REDIRECTED);
	il_emit_event(IL_EVENT_REDIRECTED, IL_REASON_NONE, dst, &subject, res.resource_id);
	return IL_VERDICT_ALLOW;
}

#endif /* INTERLOCK_BPF_LIB_CONNECT_H_ */
