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
