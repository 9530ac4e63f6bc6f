/* The one header shared by the BPF programs (bpf/<name>.bpf.c) and userspace
 * (userspace/bpf/). Every struct that crosses the boundary is defined here, once,
 * with fixed-width types and explicit padding; both sides assert the sizes.
 *
 * Address convention: every IP address is 128 bits in network byte order; an IPv4
 * address is stored IPv4-mapped (::ffff:a.b.c.d). That makes an AF_INET socket and an
 * AF_INET6 socket connected to ::ffff:a.b.c.d look the same to every map, which closes
 * the v4-mapped bypass by construction.
 * Port convention: host byte order in every struct here, except il_resource_key.port
 * (network order, because the LPM trie compares key bytes).
 */
#ifndef INTERLOCK_DATAPATH_H_
#define INTERLOCK_DATAPATH_H_

#ifdef __BPF__
/* vmlinux.h provides the __u* types for BPF objects. */
#else
#include <linux/types.h>
#endif

#define IL_COMM_LEN 16
#define IL_MAX_ENROLLED 4096
#define IL_MAX_RESOURCES 1024
#define IL_MAX_CONNS 65536
#define IL_EVENTS_BYTES (256 * 1024)
/* How many cgroup levels the connect hook walks looking for an enrolled ancestor. */
#define IL_MAX_CGROUP_DEPTH 16
/* Longest cgroup path (from the cgroup2 hierarchy's root, "/a/b") that can be enrolled
 * by path; the kernel's tracepoint buffer is 1024, ours is smaller on purpose. */
#define IL_CGROUP_PATH_MAX 256
#define IL_MAX_ENROLLED_PATHS 1024
#define IL_MAX_ALLOWED 256
/* Users and groups enrolled wherever their processes run (enrolled_ids). */
#define IL_MAX_ENROLLED_IDS 256
/* Cgroups enrolled by their own name (a systemd unit or slice), wherever they are. */
#define IL_MAX_ENROLLED_NAMES 256
/* Cgroup name patterns (prefix*suffix: "docker-*.scope"), each part shorter than this. */
#define IL_MAX_NAME_PATTERNS 16
#define IL_NAME_PATTERN_PART 64
/* interlockd's own cgroups, never governed (exempt_cgroups). */
#define IL_MAX_EXEMPT 16

/* enrolled_ids key: the kind in the upper 32 bits, the uid or gid in the lower. */
#define IL_ENROLLED_UID 1ull
#define IL_ENROLLED_GID 2ull
#define IL_ENROLLED_ID_KEY(kind, id) (((kind) << 32) | (__u32)(id))

/* enrolled_cgroups value flags. */
#define IL_ENROLL_DEFAULT_DENY 0x1u

/* il_settings.flags */
#define IL_SETTINGS_SOCKMAP 0x1u          /* splice agent<->engine via sk_msg */
#define IL_SETTINGS_ENGINE_ACCEPTING 0x2u /* cleared on graceful shutdown */

/* il_conn_info.engine_state bits. */
#define IL_ENGINE_CLAIMED 0x1u      /* one engine socket took this record; no other can */
#define IL_ENGINE_SPLICE_READY 0x2u /* the engine's socket joined sock_pairs */
/* The engine's direction fell back to TCP, for good: the agent left too many spliced bytes
 * unread (IL_SPLICE_MAX_QUEUED_AT_AGENT in bpf/lib/relay.h). */
#define IL_ENGINE_TO_AGENT_TCP 0x4u

/* il_conn_info.relay_path, decided once per connection by the agent-side sk_msg so
 * that one direction never mixes spliced and TCP bytes (which could reorder them). */
#define IL_PATH_UNDECIDED 0
#define IL_PATH_SPLICE 1
#define IL_PATH_TCP 2

/* Event kinds (il_event.kind). */
enum il_event_kind {
  IL_EVENT_REDIRECTED = 1,
  IL_EVENT_DENIED = 2,
};

/* Reason codes (il_event.reason), shared with userspace's audit "reason" strings. */
enum il_reason {
  IL_REASON_NONE = 0,
  IL_REASON_DEFAULT_DENY = 1,     /* unlisted destination, enrollment is default-deny */
  IL_REASON_ENGINE_DOWN = 2,      /* interlockd is draining or stopped */
  IL_REASON_NOT_STREAM = 3,       /* UDP/raw to a protected resource: not proxied */
  IL_REASON_MAP_FULL = 4,         /* could not remember the original destination */
  IL_REASON_ENGINE_PORT = 5,      /* an enrolled task tried to bind the engine's port */
  IL_REASON_ENGINE_UNVERIFIED = 6, /* a listener on the engine's address is not interlockd's */
};

/* Key of enrolled_cgroups is the __u64 cgroup id. */
struct il_enrollment {
  __u32 workload_id; /* index userspace maps to an enrollment name */
  __u32 flags;       /* IL_ENROLL_* */
};

/* protected_resources: LPM trie key. prefixlen counts the 32 bits of port+pad, then
 * the address prefix (IPv4 /p is 96 + p over the mapped form). port 0 = any port. */
struct il_resource_key {
  __u32 prefixlen;
  __u16 port; /* network byte order */
  __u16 pad;
  __u32 addr[4];
};

struct il_resource {
  __u32 resource_id;
  __u32 flags;
};

/* Single-entry settings array. A map rather than const volatile globals so that a
 * restarted interlockd can re-adopt the pinned programs and still change them. */
struct il_settings {
  __u32 engine_ip4[4]; /* mapped IPv4 listener address */
  __u32 engine_ip6[4]; /* IPv6 listener address; all zero when disabled */
  __u16 engine_port;   /* host order */
  __u16 pad;
  __u32 flags;         /* IL_SETTINGS_* */
};

/* What the connect hook saw. Value of conn_by_agent_sk (the agent socket's storage),
 * conn_by_tuple (the rendezvous between the two ends) and conn_by_engine_sk (the
 * engine's accepted socket's storage, what interlockd reads). */
struct il_conn_info {
  __u32 orig_addr[4];  /* original destination, mapped form */
  __u16 orig_port;     /* host order */
  __u16 orig_family;   /* AF_INET or AF_INET6: the family of the agent's socket */
  __u32 resource_id;
  __u32 workload_id;
  __u32 engine_state;  /* IL_ENGINE_* (conn_by_tuple only) */
  __u64 cgroup_id;
  __u64 pid_tgid;      /* tgid << 32 | pid */
  __u64 uid_gid;       /* gid << 32 | uid */
  __u32 login_uid;     /* audit loginuid, 0xffffffff when unset */
  __u32 relay_path;    /* IL_PATH_* */
  __u64 connect_ns;    /* bpf_ktime_get_ns() at connect */
  __u64 cookie;        /* agent socket cookie */
  char comm[IL_COMM_LEN];
};

/* A TCP connection as one socket sees it. Key of conn_by_tuple and sock_pairs. The
 * network namespace is part of the key: two namespaces can hold the same loopback
 * 4-tuple at the same time (a container's 127.0.0.1 is not the host's), and a socket in
 * one must never claim, or be spliced into, a connection of another. */
struct il_tuple {
  __u32 local_ip[4];
  __u32 remote_ip[4];
  __u32 local_port;  /* host order */
  __u32 remote_port; /* host order */
  __u64 netns_cookie; /* bpf_get_netns_cookie() of the socket; SO_NETNS_COOKIE */
};

/* Ring-buffer record. */
struct il_event {
  __u32 kind;   /* il_event_kind */
  __u32 reason; /* il_reason */
  __u64 time_ns;
  __u64 cgroup_id;
  __u64 pid_tgid;
  __u64 uid_gid;
  __u32 resource_id;
  __u32 workload_id;
  __u32 dst_addr[4];
  __u16 dst_port;
  __u16 family;
  __u32 sock_type;
  char comm[IL_COMM_LEN];
};

/* enrolled_paths key: a cgroup path from the cgroup2 root ("/interlock/agents/x"),
 * NUL-padded to the full size so that equal paths are equal keys. */
/* enrolled_name_patterns value: a cgroup whose own name is prefix, anything, suffix
 * (a container runtime's scopes, "docker-<id>.scope") is enrolled at creation. */
struct il_name_pattern {
  char prefix[IL_NAME_PATTERN_PART];
  char suffix[IL_NAME_PATTERN_PART];
  __u32 prefix_len;
  __u32 suffix_len;
  struct il_enrollment enrollment;
  __u32 used; /* 0: an empty slot */
  __u32 pad;
};

struct il_cgroup_path {
  char path[IL_CGROUP_PATH_MAX];
};

/* engine_listeners value: set by interlockd on each of its listening sockets. */
struct il_listener_mark {
  __u32 magic; /* IL_LISTENER_MAGIC */
  __u32 pad;
};
#define IL_LISTENER_MAGIC 0x494c4b44u /* "ILKD" */

/* sun_path's size (struct sockaddr_un). */
#define IL_UNIX_PATH_MAX 108
#define IL_MAX_UNIX_RESOURCES 256

/* unix_resources key: a unix socket path as an agent spells it in connect() (what the
 * kernel will look up: up to the first NUL), NUL-padded to the full size so that equal
 * paths are equal keys. Abstract addresses (leading NUL) are never keys. */
struct il_unix_path {
  char path[IL_UNIX_PATH_MAX];
};

/* unix_resources value: the resource, and interlockd's listener for it (the path a
 * redirected connect() is rewritten to; engine_len bytes, no NUL). */
struct il_unix_resource {
  __u32 resource_id;
  __u32 engine_len;
  char engine_path[IL_UNIX_PATH_MAX];
};

/* unix_listener_paths value (key: interlockd's listener path as an il_unix_path): the
 * resource path that listener stands for, shown by getpeername() to agents connected to
 * it. */
struct il_unix_conn {
  __u32 resource_id;
  __u32 len; /* bytes of path, no NUL */
  char path[IL_UNIX_PATH_MAX];
};

/* Per-CPU counters, index by il_stat. */
enum il_stat {
  IL_STAT_REDIRECTED = 0,
  IL_STAT_DENIED = 1,
  IL_STAT_SPLICED_MSGS = 2,
  IL_STAT_EVENTS_DROPPED = 3,
  IL_STAT_ENROLLED_BY_PATH = 4, /* cgroups enrolled at mkdir by their path */
  IL_STAT_ENROLLED_BY_NAME = 5, /* cgroups enrolled at mkdir by their name (a unit) */
  IL_STAT_SPLICE_FALLBACKS = 6, /* engine directions moved to TCP (a full agent) */
  IL_STAT_MAX = 7,
};

/* C11 and C++ spell the static assertion differently; IL_SIZE_ASSERTS works in both. */
#ifdef __cplusplus
#define IL_STATIC_ASSERT static_assert
#else
#define IL_STATIC_ASSERT _Static_assert
#endif

#define IL_SIZE_ASSERTS                                              \
  IL_STATIC_ASSERT(sizeof(struct il_enrollment) == 8, "il_enrollment"); \
  IL_STATIC_ASSERT(sizeof(struct il_resource_key) == 24, "il_resource_key"); \
  IL_STATIC_ASSERT(sizeof(struct il_resource) == 8, "il_resource");   \
  IL_STATIC_ASSERT(sizeof(struct il_settings) == 40, "il_settings");  \
  IL_STATIC_ASSERT(sizeof(struct il_conn_info) == 96, "il_conn_info"); \
  IL_STATIC_ASSERT(sizeof(struct il_tuple) == 48, "il_tuple");        \
  IL_STATIC_ASSERT(sizeof(struct il_event) == 88, "il_event");       \
  IL_STATIC_ASSERT(sizeof(struct il_cgroup_path) == IL_CGROUP_PATH_MAX, "il_cgroup_path"); \
  IL_STATIC_ASSERT(sizeof(struct il_name_pattern) == 152, "il_name_pattern"); \
  IL_STATIC_ASSERT(sizeof(struct il_listener_mark) == 8, "il_listener_mark"); \
  IL_STATIC_ASSERT(sizeof(struct il_unix_path) == IL_UNIX_PATH_MAX, "il_unix_path"); \
  IL_STATIC_ASSERT(sizeof(struct il_unix_resource) == 116, "il_unix_resource"); \
  IL_STATIC_ASSERT(sizeof(struct il_unix_conn) == 116, "il_unix_conn");

#endif /* INTERLOCK_DATAPATH_H_ */
