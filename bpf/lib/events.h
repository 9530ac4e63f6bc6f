/* Audit events for the connect hooks: one il_event per redirect or deny, written to the
 * `events` ring buffer. A full ring buffer never changes a verdict; it is counted in
 * IL_STAT_EVENTS_DROPPED so userspace can report the gap.
 */
#ifndef INTERLOCK_BPF_LIB_EVENTS_H_
#define INTERLOCK_BPF_LIB_EVENTS_H_

#include "bpf/lib/common.h"
#include "bpf/lib/maps.h"

/* A connect destination, normalized: 128-bit mapped address, host-order port. */
struct il_dst {
	__u32 addr[4];
	__u16 port;
	__u16 family; /* family of the agent's socket (ctx->user_family) */
	__u32 type;   /* ctx->type: SOCK_STREAM, SOCK_DGRAM, ... */
};

/* The address of a connect or bind hook's context, normalized. An IPv6 context's
 * ::ffff:a.b.c.d stays in mapped form: the same resource keys match it. */
static __always_inline void il_dst_from_ctx(const struct bpf_sock_addr *ctx, const bool is_v6,
					    struct il_dst *dst)
{
	if (is_v6) {
		dst->addr[0] = ctx->user_ip6[0];
		dst->addr[1] = ctx->user_ip6[1];
		dst->addr[2] = ctx->user_ip6[2];
		dst->addr[3] = ctx->user_ip6[3];
		dst->family = AF_INET6;
	} else {
		il_addr_set_v4_mapped(dst->addr, ctx->user_ip4);
		dst->family = AF_INET;
	}
	dst->port = bpf_ntohs((__u16)ctx->user_port);
	dst->type = ctx->type;
}

/* Who is connecting: the enrollment that governs the current task. */
struct il_subject {
	__u64 cgroup_id; /* the task's own cgroup */
	struct il_enrollment enrollment;
};

static __always_inline void il_emit_event(__u32 kind, __u32 reason, const struct il_dst *dst,
					  const struct il_subject *subject, __u32 resource_id)
{
	struct il_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		il_count(IL_STAT_EVENTS_DROPPED);
		return;
	}
	e->kind = kind;
	e->reason = reason;
	e->time_ns = bpf_ktime_get_ns();
	e->cgroup_id = subject->cgroup_id;
	e->pid_tgid = bpf_get_current_pid_tgid();
	e->uid_gid = bpf_get_current_uid_gid();
	e->resource_id = resource_id;
	e->workload_id = subject->enrollment.workload_id;
	il_addr_copy(e->dst_addr, dst->addr);
	e->dst_port = dst->port;
	e->family = dst->family;
	e->sock_type = dst->type;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

#endif /* INTERLOCK_BPF_LIB_EVENTS_H_ */
