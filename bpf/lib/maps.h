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

/* What the connect hook saw, in the agent socket's own storage: it lives and dies with
 * that socket, so no other socket can ever be taken for it. Read by getpeername and by
 * sockops at establishment. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct il_conn_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_by_agent_sk SEC(".maps");

/* The rendezvous between the two ends of a redirected connection: written when the
 * agent's socket is established, under the agent socket's own 4-tuple; claimed (once)
 * by the engine socket whose peer that tuple is; deleted when the agent socket closes.
 * sk_msg keys its relay decision on it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IL_MAX_CONNS);
	__type(key, struct il_tuple);
	__type(value, struct il_conn_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_by_tuple SEC(".maps");

/* What interlockd reads for an accepted socket (by its fd): the claimed record, in the
 * engine socket's own storage, so a record can be read only through the very socket
 * that claimed it, and goes away with it (also when interlockd crashes). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct il_conn_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_by_engine_sk SEC(".maps");

/* interlockd's listening sockets, marked by interlockd itself (by fd) when it listens.
 * The connect hook redirects only to a listener that carries the mark: a socket that
 * another process bound to the engine's port (while interlockd is down) has none. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct il_listener_mark);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} engine_listeners SEC(".maps");

/* Cgroups to enroll by path when they are created (cgroup_mkdir): path from the
 * cgroup2 root -> the enrollment to give the new cgroup's id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IL_MAX_ENROLLED_PATHS);
	__type(key, struct il_cgroup_path);
	__type(value, struct il_enrollment);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} enrolled_paths SEC(".maps");

/* Cgroups to enroll by their own name when they are created, wherever they are: a
 * systemd unit's or slice's cgroup ("billing-agent.service") -> its enrollment. The
 * key is the name, NUL-padded, in the same buffer type as a path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IL_MAX_ENROLLED_NAMES);
	__type(key, struct il_cgroup_path);
	__type(value, struct il_enrollment);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} enrolled_names SEC(".maps");

/* Cgroup name patterns (prefix*suffix), tried in slot order when the name is not in
 * enrolled_names: a container's scope ("docker-<id>.scope"), enrolled at creation. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IL_MAX_NAME_PATTERNS);
	__type(key, __u32);
	__type(value, struct il_name_pattern);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} enrolled_name_patterns SEC(".maps");

/* Users and groups enrolled wherever their processes run: IL_ENROLLED_ID_KEY(kind, id)
 * -> enrollment. Consulted only when no cgroup enrollment governs the task. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IL_MAX_ENROLLED_IDS);
	__type(key, __u64);
	__type(value, struct il_enrollment);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} enrolled_ids SEC(".maps");

/* interlockd's own cgroup ids: a task there is never governed, whatever its uid, so the
 * engine's upstream connections are never turned back at itself. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IL_MAX_EXEMPT);
	__type(key, __u64);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exempt_cgroups SEC(".maps");

/* Destinations a default-deny enrollment may still reach directly (the DNS resolvers
 * by default): the same key as protected_resources. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, IL_MAX_ALLOWED);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct il_resource_key);
	__type(value, struct il_resource);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} allowed_destinations SEC(".maps");

/* Protected unix socket paths (as spelled in connect()) -> resource and interlockd's
 * listener for it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IL_MAX_UNIX_RESOURCES);
	__type(key, struct il_unix_path);
	__type(value, struct il_unix_resource);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} unix_resources SEC(".maps");

/* interlockd's unix listener paths -> the resource path each stands for (what
 * getpeername_unix shows an agent connected to it). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IL_MAX_UNIX_RESOURCES);
	__type(key, struct il_unix_path);
	__type(value, struct il_unix_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} unix_listener_paths SEC(".maps");

/* Scratch for a unix path key (with the rest, too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct il_unix_path);
} unix_path_scratch SEC(".maps");

/* Scratch for a cgroup path (too big for the 512-byte BPF stack with the rest). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct il_cgroup_path);
} path_scratch SEC(".maps");

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
