/* The one set of Interlock maps. Every map is pinned by name under the pin root that
 * userspace passes at open time (LIBBPF_PIN_BY_NAME), so a restarted interlockd reuses
 * them with their contents. Key and value structs live in
 * bpf/include/interlock/datapath.h, shared with userspace.
 */
#ifndef INTERLOCK_BPF_LIB_MAPS_H_
#define INTERLOCK_BPF_LIB_MAPS_H_

#include "bpf/lib/common.h"

/* Enrolled cgroups: cgroup id -> workload binding and enrollment flags. A task is
 * governed by its own cgroup's entry or else its nearest enrolled ancestor's. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IL_MAX_ENROLLED);
	__type(key, __u64);
	__type(value, struct il_enrollment);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} enrolled_cgroups SEC(".maps");

/* Protected resources: (port, address prefix) -> resource id. Port 0 = any port. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, IL_MAX_RESOURCES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct il_resource_key);
	__type(value, struct il_resource);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} protected_resources SEC(".maps");

/* Engine listener addresses and runtime flags, written by userspace on every open. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct il_settings);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} settings SEC(".maps");

/* Original destination by agent socket cookie: written at connect, read by
 * getpeername and by sockops at establishment, deleted at close. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IL_MAX_CONNS);
	__type(key, __u64);
	__type(value, struct il_conn_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} orig_dst_by_cookie SEC(".maps");

/* Original destination by the agent socket's own 4-tuple: what the engine looks up for
 * its accepted socket (with the tuple swapped), and what sk_msg keys its relay decision
 * on. Deleted when the agent socket closes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IL_MAX_CONNS);
	__type(key, struct il_tuple);
	__type(value, struct il_conn_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} orig_dst_by_tuple SEC(".maps");

/* Agent and engine sockets of redirected connections, each under its own 4-tuple; the
 * sk_msg program is attached here and splices one into the other's ingress. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, IL_MAX_CONNS * 2);
	__type(key, struct il_tuple);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sock_pairs SEC(".maps");

/* Redirect and deny events (struct il_event) for the audit log. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, IL_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

/* Per-CPU counters indexed by enum il_stat. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

static __always_inline void il_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &stat);

	if (v)
		*v += 1;
}

static __always_inline struct il_settings *il_settings_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&settings, &zero);
}

#endif /* INTERLOCK_BPF_LIB_MAPS_H_ */
