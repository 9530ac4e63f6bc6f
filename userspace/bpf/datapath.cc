// Datapath implementation: the libbpf skeleton wrapper, pinning and re-adoption, typed
// map access and the event ring buffer. See datapath.h for the contract.
//
// Pin layout under options.pin_path:
//   maps/<map name>    every map (LIBBPF_PIN_BY_NAME with pin_root_path = maps/), so a
//                      reload reuses the maps and their contents
//   links/<prog name>  one cgroup link per cgroup program; a reload updates the link in
//                      place (BPF_LINK_UPDATE), so enforcement never has a gap
// The sk_msg program is attached to the pinned sock_pairs map itself (sockmap
// attachments live with the map); re-attaching replaces it.
#include "userspace/bpf/datapath.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "interlock.skel.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"

namespace interlock::bpf {
namespace {

IL_SIZE_ASSERTS

constexpr char kBpfFsMount[] = "/sys/fs/bpf";
constexpr mode_t kPinDirMode = 0700;

// libbpf failures: PERMISSION_DENIED when the kernel refused us for lack of privilege,
// otherwise INTERNAL; the message carries libbpf's errno text.
absl::Status LibbpfStatus(int err, absl::string_view context) {
  if (err < 0) err = -err;
  if (err == 0) err = EINVAL;
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof buf);
  std::string message = absl::StrCat("bpf: ", context, ": ", text);
  if (err == EPERM || err == EACCES) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  static const char* debug = getenv("INTERLOCK_BPF_DEBUG");
  if (debug == nullptr || *debug == '\0') return 0;
  // INTERLOCK_BPF_DEBUG=2 also shows libbpf's debug chatter (verifier logs at load).
  if (level == LIBBPF_DEBUG && strcmp(debug, "2") != 0) return 0;
  return vfprintf(stderr, format, args);
}

void InstallLibbpfPrint() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(LibbpfPrint); });
}

std::string Dirname(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

absl::StatusOr<bool> IsOnBpfFs(const std::string& path) {
  struct statfs st {};
  if (statfs(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus(errno, absl::StrCat("bpf: statfs ", path));
  }
  return static_cast<unsigned long>(st.f_type) == static_cast<unsigned long>(BPF_FS_MAGIC);
}

// Makes sure `pin_path`'s parent is on a bpffs, mounting one at /sys/fs/bpf if needed.
absl::Status EnsureBpfFs(const std::string& pin_path) {
  const std::string parent = Dirname(pin_path);
  INTERLOCK_ASSIGN_OR_RETURN(bool on_bpffs, IsOnBpfFs(parent));
  if (on_bpffs) return absl::OkStatus();
  INTERLOCK_ASSIGN_OR_RETURN(bool mounted, IsOnBpfFs(kBpfFsMount));
  if (!mounted) {
    if (mkdir(kBpfFsMount, 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("bpf: mkdir ", kBpfFsMount));
    }
    if (mount("bpf", kBpfFsMount, "bpf", 0, "mode=0700") != 0) {
      return ErrnoStatus(errno, absl::StrCat("bpf: mount bpffs at ", kBpfFsMount));
    }
  }
  INTERLOCK_ASSIGN_OR_RETURN(on_bpffs, IsOnBpfFs(parent));
  if (!on_bpffs) {
    return absl::FailedPreconditionError(
        absl::StrCat("bpf: pin path parent ", parent, " is not on a bpffs"));
  }
  return absl::OkStatus();
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), kPinDirMode) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, absl::StrCat("bpf: mkdir ", path));
  }
  return absl::OkStatus();
}

// True when `dir` holds at least one entry besides . and ..
bool DirHasEntries(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      found = true;
      break;
    }
  }
  closedir(d);
  return found;
}

// Detaches the pinned link at `path` now. Dropping the last reference would detach it
// too, but only later: the final put of a pinned object runs after an RCU grace period
// and a workqueue hop, and an uninstall should stop enforcing when it returns.
void DetachPinnedLink(const std::string& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (fd) bpf_link_detach(fd.get());  // not a link, or already detached: nothing to do
}

// Unlinks every entry of `dir` (detaching links first when `links`) and the directory
// itself; OK when it does not exist.
absl::Status RemovePinDir(const std::string& dir, bool links) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("bpf: opendir ", dir));
  }
  absl::Status status;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    std::string path = absl::StrCat(dir, "/", e->d_name);
    if (links) DetachPinnedLink(path);
    if (unlink(path.c_str()) != 0 && errno != ENOENT && status.ok()) {
      status = ErrnoStatus(errno, absl::StrCat("bpf: unlink ", path));
    }
  }
  closedir(d);
  INTERLOCK_RETURN_IF_ERROR(status);
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("bpf: rmdir ", dir));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> CgroupIdOfFd(int fd, const std::string& dir) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, absl::StrCat("bpf: stat ", dir));
  // On cgroup2 the directory's inode number is the cgroup id.
  return static_cast<uint64_t>(st.st_ino);
}

struct SkelDeleter {
  void operator()(interlock_bpf* skel) const { interlock_bpf__destroy(skel); }
};
struct LinkDeleter {
  // Closes our fd only: a pinned link stays attached.
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
using SkelPtr = std::unique_ptr<interlock_bpf, SkelDeleter>;
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

// Canonical trie key: bits beyond the prefix are cleared so that keys compare exactly.
il_resource_key ResourceKey(const ResourceEntry& e) {
  il_resource_key key{};
  key.prefixlen = 32 + e.prefix_bits;
  key.port = htons(e.port);
  uint8_t addr[16];
  memcpy(addr, e.addr.data(), 16);
  for (uint32_t bit = e.prefix_bits; bit < 128; ++bit) {
    addr[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  memcpy(key.addr, addr, 16);
  return key;
}

}  // namespace

struct Datapath::Impl {
  std::string pin_path;
  std::string cgroup_dir;
  SkelPtr skel;
  std::vector<LinkPtr> links;
  RingBufferPtr events;
  bool readopted = false;
  bool unix_hooks = false;
  bool bounded_splice = false;  // il_sk_msg (else il_sk_msg_unbounded) is loaded
  // Set only for the duration of DrainEvents().
  const std::function<void(const il_event&)>* drain_fn = nullptr;

  static int OnEvent(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    if (self->drain_fn == nullptr || size < sizeof(il_event)) return 0;
    il_event event;
    memcpy(&event, data, sizeof event);
    (*self->drain_fn)(event);
    return 0;
  }

  absl::Status AttachCgroupProgram(bpf_program* prog, int cgroup_fd, uint64_t cgroup_id);
  absl::Status AttachTracingProgram(bpf_program* prog);
  absl::Status ReplaceLpmTable(bpf_map* map, const std::vector<ResourceEntry>& entries,
                               absl::string_view what);
};

// Attaches `prog` at the cgroup through a pinned link: updates an existing pin in place
// (re-adoption), or attaches and pins a new link. A pin that points at another cgroup
// (cgroup_dir changed) is replaced after the new link is attached.
absl::Status Datapath::Impl::AttachCgroupProgram(bpf_program* prog, int cgroup_fd,
                                                 uint64_t cgroup_id) {
  const std::string section = bpf_program__section_name(prog);
  const std::string link_path = absl::StrCat(pin_path, "/links/", bpf_program__name(prog));

  LinkPtr old(bpf_link__open(link_path.c_str()));
  if (old != nullptr) {
    bpf_link_info info{};
    uint32_t len = sizeof info;
    int err = bpf_obj_get_info_by_fd(bpf_link__fd(old.get()), &info, &len);
    if (err == 0 && info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id) {
      err = bpf_link__update_program(old.get(), prog);
      if (err != 0) {
        return LibbpfStatus(err, absl::StrCat("update pinned link ", link_path, " to ",
                                              section));
      }
      links.push_back(std::move(old));
      return absl::OkStatus();
    }
  } else if (errno != ENOENT) {
    return LibbpfStatus(errno, absl::StrCat("open pinned link ", link_path));
  }

  LinkPtr link(bpf_program__attach_cgroup(prog, cgroup_fd));
  if (link == nullptr) {
    return LibbpfStatus(errno, absl::StrCat("attach ", section, " to ", cgroup_dir));
  }
  if (old != nullptr) {
    // Stale pin for another cgroup: the new link is live, now drop the old one
    // (detached explicitly: the release of a pinned link is deferred).
    bpf_link__detach(old.get());
    if (unlink(link_path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("bpf: unlink stale link ", link_path));
    }
    old.reset();
  }
  int err = bpf_link__pin(link.get(), link_path.c_str());
  if (err != 0) return LibbpfStatus(err, absl::StrCat("pin link ", link_path));
  links.push_back(std::move(link));
  return absl::OkStatus();
}

// Attaches a tracing program (tp_btf) and pins its link. Tracing links cannot be updated
// in place: the new link is attached first, then the pin moves to it, so the hook never
// has a gap (for a moment both run; what they do is idempotent). The old link goes away
// with its last reference (its pin here, its process if it still lives).
absl::Status Datapath::Impl::AttachTracingProgram(bpf_program* prog) {
  const std::string link_path = absl::StrCat(pin_path, "/links/", bpf_program__name(prog));
  LinkPtr link(bpf_program__attach_trace(prog));
  if (link == nullptr) {
    return LibbpfStatus(errno, absl::StrCat("attach ", bpf_program__section_name(prog)));
  }
  if (unlink(link_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("bpf: unlink old link ", link_path));
  }
  int err = bpf_link__pin(link.get(), link_path.c_str());
  if (err != 0) return LibbpfStatus(err, absl::StrCat("pin link ", link_path));
  links.push_back(std::move(link));
  return absl::OkStatus();
}

// Makes the hash `map` (keyed by il_unix_path) hold exactly `wanted`.
template <typename V>
absl::Status ReplacePathTable(bpf_map* map,
                              const std::vector<std::pair<il_unix_path, V>>& wanted) {
  for (const auto& [key, value] : wanted) {
    int err = bpf_map__update_elem(map, &key, sizeof key, &value, sizeof value, BPF_ANY);
    if (err != 0) return LibbpfStatus(err, absl::StrCat("update ", bpf_map__name(map)));
  }
  std::vector<il_unix_path> stale;
  il_unix_path key{}, next{};
  const void* prev = nullptr;
  while (bpf_map__get_next_key(map, prev, &next, sizeof next) == 0) {
    bool keep = std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) {
      return memcmp(&w.first, &next, sizeof next) == 0;
    });
    if (!keep) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (const il_unix_path& k : stale) {
    int err = bpf_map__delete_elem(map, &k, sizeof k, 0);
    if (err != 0 && err != -ENOENT) {
      return LibbpfStatus(err, absl::StrCat("delete from ", bpf_map__name(map)));
    }
  }
  return absl::OkStatus();
}

// Whether the kernel's BTF has the kfunc `name`.
static bool KernelHasKfunc(const char* name) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) return false;
  bool found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) >= 0;
  btf__free(vmlinux);
  return found;
}

// Whether the kernel has the cgroup unix-domain sock_addr hooks (connect_unix,
// getpeername_unix, sendmsg_unix: Linux 6.7), known by the kfunc that came with them.
static bool KernelHasUnixHooks() { return KernelHasKfunc("bpf_sock_addr_set_sun_path"); }

// Before load: a pinned map whose definition no longer matches the program's (an
// upgrade changed it) cannot be reused, and libbpf would refuse to load. Maps whose
// contents interlockd rebuilds at start are unpinned so they are created afresh; for
// enrolled_cgroups, whose contents are the enforcement itself, that is an error.
// Pins of maps the programs no longer have are removed.
absl::Status ReconcilePinnedMaps(bpf_object* obj, const std::string& maps_dir) {
  std::vector<std::string> known;
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const std::string name = bpf_map__name(map);
    if (bpf_map__pin_path(map) == nullptr) continue;  // not pinned (scratch, .rodata)
    known.push_back(name);
    const std::string path = absl::StrCat(maps_dir, "/", name);
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd) continue;
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    if (info.type == bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
        info.value_size == bpf_map__value_size(map) &&
        info.max_entries == bpf_map__max_entries(map) &&
        info.map_flags == bpf_map__map_flags(map)) {
      continue;
    }
    if (name == "enrolled_cgroups") {
      return absl::FailedPreconditionError(absl::StrCat(
          "bpf: pinned map ", path, " has another definition than this build's; run "
          "`interlock teardown` (it removes the enrollments) and start again"));
    }
    if (unlink(path.c_str()) != 0) return ErrnoStatus(errno, absl::StrCat("bpf: unlink ", path));
  }
  DIR* d = opendir(maps_dir.c_str());
  if (d == nullptr) return absl::OkStatus();
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      unlink(absl::StrCat(maps_dir, "/", name).c_str());
    }
  }
  closedir(d);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Datapath>> Datapath::Open(const DatapathOptions& options) {
  if (options.pin_path.empty() || options.pin_path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("bpf: pin path must be absolute, got '", options.pin_path, "'"));
  }
  InstallLibbpfPrint();
  // Unneeded with memcg accounting (5.11+), harmless before.
  struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &unlimited);

  UniqueFd cgroup_fd(open(options.cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup_fd) {
    return ErrnoStatus(errno, absl::StrCat("bpf: open cgroup ", options.cgroup_dir));
  }
  INTERLOCK_ASSIGN_OR_RETURN(uint64_t cgroup_id,
                             CgroupIdOfFd(cgroup_fd.get(), options.cgroup_dir));

  INTERLOCK_RETURN_IF_ERROR(EnsureBpfFs(options.pin_path));
  const std::string maps_dir = options.pin_path + "/maps";
  const std::string links_dir = options.pin_path + "/links";
  INTERLOCK_RETURN_IF_ERROR(MakeDir(options.pin_path));
  INTERLOCK_RETURN_IF_ERROR(MakeDir(maps_dir));
  INTERLOCK_RETURN_IF_ERROR(MakeDir(links_dir));

  auto impl = std::make_unique<Impl>();
  impl->pin_path = options.pin_path;
  impl->cgroup_dir = options.cgroup_dir;
  impl->readopted = DirHasEntries(maps_dir) || DirHasEntries(links_dir);

  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = maps_dir.c_str());
  impl->skel.reset(interlock_bpf__open_opts(&open_opts));
  if (impl->skel == nullptr) return LibbpfStatus(errno, "open skeleton");
  // The unix-domain hooks exist from Linux 6.7, with the kfunc they rewrite paths with;
  // on an older kernel their programs are not loaded at all.
  impl->unix_hooks = KernelHasUnixHooks();
  // libbpf 1.1 (Debian 12) does not know these section names: the type and attach type
  // are set here (the attach type numbers are the kernel's ABI, include/uapi/linux/bpf.h).
  constexpr int kCgroupUnixConnect = 49, kCgroupUnixSendmsg = 50, kCgroupUnixGetpeername = 52;
  for (auto [prog, attach] : {std::pair{impl->skel->progs.il_connect_unix, kCgroupUnixConnect},
                              std::pair{impl->skel->progs.il_sendmsg_unix, kCgroupUnixSendmsg},
                              std::pair{impl->skel->progs.il_getpeername_unix,
                                        kCgroupUnixGetpeername}}) {
    bpf_program__set_autoload(prog, impl->unix_hooks);
    bpf_program__set_type(prog, BPF_PROG_TYPE_CGROUP_SOCK_ADDR);
    bpf_program__set_expected_attach_type(prog, static_cast<bpf_attach_type>(attach));
  }
  // The sk_msg program that bounds interlockd's spliced direction reads the kernel's
  // sk_msg through bpf_cast_to_kern_ctx (Linux 6.3); before that, the one without the bound.
  impl->bounded_splice = KernelHasKfunc("bpf_cast_to_kern_ctx");
  bpf_program__set_autoload(impl->skel->progs.il_sk_msg, impl->bounded_splice);
  bpf_program__set_autoload(impl->skel->progs.il_sk_msg_unbounded, !impl->bounded_splice);
  INTERLOCK_RETURN_IF_ERROR(ReconcilePinnedMaps(impl->skel->obj, maps_dir));
  // Pinned maps with a compatible definition are reused here, contents and all.
  int err = interlock_bpf__load(impl->skel.get());
  if (err != 0) return LibbpfStatus(err, "load programs (INTERLOCK_BPF_DEBUG=2 for the log)");

  auto dp = std::unique_ptr<Datapath>(new Datapath(std::move(impl)));
  INTERLOCK_RETURN_IF_ERROR(dp->WriteSettings(options.settings));

  Impl& im = *dp->impl_;
  interlock_bpf* skel = im.skel.get();
  for (bpf_program* prog : {skel->progs.il_connect4, skel->progs.il_connect6,
                            skel->progs.il_getpeername4, skel->progs.il_getpeername6,
                            skel->progs.il_sendmsg4, skel->progs.il_sendmsg6,
                            skel->progs.il_bind4, skel->progs.il_bind6, skel->progs.il_sockops}) {
    INTERLOCK_RETURN_IF_ERROR(im.AttachCgroupProgram(prog, cgroup_fd.get(), cgroup_id));
  }
  if (im.unix_hooks) {
    for (bpf_program* prog : {skel->progs.il_connect_unix, skel->progs.il_sendmsg_unix,
                              skel->progs.il_getpeername_unix}) {
      INTERLOCK_RETURN_IF_ERROR(im.AttachCgroupProgram(prog, cgroup_fd.get(), cgroup_id));
    }
  }
  for (bpf_program* prog : {skel->progs.il_cgroup_mkdir, skel->progs.il_cgroup_rmdir}) {
    INTERLOCK_RETURN_IF_ERROR(im.AttachTracingProgram(prog));
  }
  bpf_program* sk_msg = im.bounded_splice ? skel->progs.il_sk_msg : skel->progs.il_sk_msg_unbounded;
  err = bpf_prog_attach(bpf_program__fd(sk_msg), bpf_map__fd(skel->maps.sock_pairs), BPF_SK_MSG_VERDICT, 0);
  if (err != 0) return LibbpfStatus(err, "attach sk_msg to sock_pairs");

  im.events.reset(
      ring_buffer__new(bpf_map__fd(skel->maps.events), &Impl::OnEvent, &im, nullptr));
  if (im.events == nullptr) return LibbpfStatus(errno, "ring buffer on events");
  return dp;
}

Datapath::Datapath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Datapath::~Datapath() {
  if (impl_ == nullptr) return;
  // Ring buffer and links before the object that owns their maps and programs.
  impl_->events.reset();
  impl_->links.clear();
  impl_->skel.reset();
}

bool Datapath::readopted() const { return impl_->readopted; }

absl::Status Datapath::WriteSettings(const il_settings& settings) {
  const uint32_t zero = 0;
  int err = bpf_map__update_elem(impl_->skel->maps.settings, &zero, sizeof zero, &settings,
                                 sizeof settings, BPF_ANY);
  if (err != 0) return LibbpfStatus(err, "write settings");
  return absl::OkStatus();
}

absl::Status Datapath::Impl::ReplaceLpmTable(bpf_map* map,
                                             const std::vector<ResourceEntry>& entries,
                                             absl::string_view what) {
  std::vector<il_resource_key> wanted;
  wanted.reserve(entries.size());
  for (const ResourceEntry& e : entries) {
    if (e.prefix_bits > 128) {
      return absl::InvalidArgumentError(
          absl::StrCat("bpf: ", what, " prefix /", e.prefix_bits, " > 128"));
    }
    il_resource_key key = ResourceKey(e);
    int err = bpf_map__update_elem(map, &key, sizeof key, &e.value, sizeof e.value, BPF_ANY);
    if (err != 0) {
      return LibbpfStatus(err, absl::StrCat("add ", what, " ", e.value.resource_id));
    }
    wanted.push_back(key);
  }

  // Collect first, delete after: deleting while walking would skip keys.
  std::vector<il_resource_key> stale;
  il_resource_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map__get_next_key(map, prev, &next, sizeof next) == 0) {
    bool keep = false;
    for (const il_resource_key& w : wanted) {
      if (memcmp(&w, &next, sizeof w) == 0) {
        keep = true;
        break;
      }
    }
    if (!keep) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (const il_resource_key& k : stale) {
    int err = bpf_map__delete_elem(map, &k, sizeof k, 0);
    if (err != 0 && err != -ENOENT) return LibbpfStatus(err, absl::StrCat("delete stale ", what));
  }
  return absl::OkStatus();
}

absl::Status Datapath::SetResources(const std::vector<ResourceEntry>& entries) {
  return impl_->ReplaceLpmTable(impl_->skel->maps.protected_resources, entries, "resource");
}

absl::Status Datapath::SetAllowedDestinations(const std::vector<ResourceEntry>& entries) {
  return impl_->ReplaceLpmTable(impl_->skel->maps.allowed_destinations, entries,
                                "allowed destination");
}

namespace {

// Makes `map` hold exactly `wanted`: updates every wanted entry first, then deletes the
// keys not wanted, so an entry that stays is never absent, not even for a moment.
template <typename Key, typename Value>
absl::Status ReplaceMapContents(bpf_map* map, const std::vector<std::pair<Key, Value>>& wanted,
                                absl::string_view what) {
  for (const auto& [key, value] : wanted) {
    int err = bpf_map__update_elem(map, &key, sizeof key, &value, sizeof value, BPF_ANY);
    if (err != 0) return LibbpfStatus(err, absl::StrCat("update ", what));
  }
  std::vector<Key> stale;
  Key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map__get_next_key(map, prev, &next, sizeof next) == 0) {
    bool keep = std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) {
      return memcmp(&w.first, &next, sizeof next) == 0;
    });
    if (!keep) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (const Key& k : stale) {
    int err = bpf_map__delete_elem(map, &k, sizeof k, 0);
    if (err != 0 && err != -ENOENT) return LibbpfStatus(err, absl::StrCat("delete stale ", what));
  }
  return absl::OkStatus();
}

// A cgroup path or name as a NUL-padded map key; INVALID_ARGUMENT when it does not fit.
absl::StatusOr<il_cgroup_path> CgroupKey(absl::string_view text, absl::string_view what) {
  if (text.empty() || text.size() >= IL_CGROUP_PATH_MAX || text.find('\0') != text.npos) {
    return absl::InvalidArgumentError(absl::StrCat("bpf: enrolled cgroup ", what, " \"", text,
                                                   "\" must be 1 to ", IL_CGROUP_PATH_MAX - 1,
                                                   " bytes"));
  }
  il_cgroup_path key{};
  memcpy(key.path, text.data(), text.size());
  return key;
}

}  // namespace

absl::Status Datapath::SetEnrolledPaths(const std::vector<PathEnrollment>& paths) {
  std::vector<std::pair<il_cgroup_path, il_enrollment>> wanted;
  for (const PathEnrollment& p : paths) {
    if (p.path.empty() || p.path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("bpf: enrolled cgroup path \"", p.path, "\" must be absolute"));
    }
    INTERLOCK_ASSIGN_OR_RETURN(il_cgroup_path key, CgroupKey(p.path, "path"));
    wanted.emplace_back(key, p.enrollment);
  }
  return ReplaceMapContents(impl_->skel->maps.enrolled_paths, wanted, "enrolled paths");
}

absl::Status Datapath::SetEnrolledNames(const std::vector<NameEnrollment>& names) {
  std::vector<std::pair<il_cgroup_path, il_enrollment>> wanted;
  for (const NameEnrollment& n : names) {
    if (n.name.find('/') != std::string::npos || n.name == "." || n.name == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("bpf: enrolled cgroup name \"", n.name, "\" must be one path component"));
    }
    INTERLOCK_ASSIGN_OR_RETURN(il_cgroup_path key, CgroupKey(n.name, "name"));
    wanted.emplace_back(key, n.enrollment);
  }
  return ReplaceMapContents(impl_->skel->maps.enrolled_names, wanted, "enrolled names");
}

absl::Status Datapath::SetEnrolledNamePatterns(const std::vector<NamePatternEnrollment>& patterns) {
  if (patterns.size() > IL_MAX_NAME_PATTERNS) {
    return absl::InvalidArgumentError(
        absl::StrCat("bpf: at most ", IL_MAX_NAME_PATTERNS, " cgroup name patterns"));
  }
  bpf_map* map = impl_->skel->maps.enrolled_name_patterns;
  for (uint32_t slot = 0; slot < IL_MAX_NAME_PATTERNS; ++slot) {
    il_name_pattern value{};
    if (slot < patterns.size()) {
      const NamePatternEnrollment& p = patterns[slot];
      for (const std::string* part : {&p.prefix, &p.suffix}) {
        if (part->size() >= IL_NAME_PATTERN_PART || part->find('/') != std::string::npos ||
            part->find('\0') != std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat(
              "bpf: cgroup name pattern part \"", *part, "\" must be under ",
              IL_NAME_PATTERN_PART, " bytes, without '/'"));
        }
      }
      memcpy(value.prefix, p.prefix.data(), p.prefix.size());
      memcpy(value.suffix, p.suffix.data(), p.suffix.size());
      value.prefix_len = static_cast<uint32_t>(p.prefix.size());
      value.suffix_len = static_cast<uint32_t>(p.suffix.size());
      value.enrollment = p.enrollment;
      value.used = 1;
    }
    int err = bpf_map__update_elem(map, &slot, sizeof slot, &value, sizeof value, BPF_ANY);
    if (err != 0) return LibbpfStatus(err, "update cgroup name patterns");
  }
  return absl::OkStatus();
}

absl::Status Datapath::SetEnrolledIds(const std::vector<IdEnrollment>& ids) {
  std::vector<std::pair<uint64_t, il_enrollment>> wanted;
  for (const IdEnrollment& e : ids) {
    const uint64_t kind = e.kind == IdEnrollment::kUid ? IL_ENROLLED_UID : IL_ENROLLED_GID;
    wanted.emplace_back(IL_ENROLLED_ID_KEY(kind, e.id), e.enrollment);
  }
  return ReplaceMapContents(impl_->skel->maps.enrolled_ids, wanted, "enrolled users and groups");
}

absl::Status Datapath::SetExemptCgroups(const std::vector<uint64_t>& cgroup_ids) {
  if (cgroup_ids.size() > IL_MAX_EXEMPT) {
    return absl::InvalidArgumentError(
        absl::StrCat("bpf: at most ", IL_MAX_EXEMPT, " exempt cgroups"));
  }
  std::vector<std::pair<uint64_t, uint32_t>> wanted;
  for (uint64_t id : cgroup_ids) wanted.emplace_back(id, 1u);
  return ReplaceMapContents(impl_->skel->maps.exempt_cgroups, wanted, "exempt cgroups");
}

bool Datapath::unix_hooks() const { return impl_->unix_hooks; }
bool Datapath::splice_bounded() const { return impl_->bounded_splice; }

absl::Status Datapath::SetUnixResources(const std::vector<UnixResourceEntry>& entries) {
  // Both tables are keyed by a NUL-padded path: protected path -> resource and listener;
  // listener path -> protected path (for getpeername).
  std::vector<std::pair<il_unix_path, il_unix_resource>> resources;
  std::vector<std::pair<il_unix_path, il_unix_conn>> listeners;
  for (const UnixResourceEntry& e : entries) {
    for (const std::string* p : {&e.path, &e.engine_path}) {
      if (p->empty() || (*p)[0] == '\0' || p->size() > IL_UNIX_PATH_MAX ||
          p->find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "bpf: unix path \"", *p, "\" must be 1..", IL_UNIX_PATH_MAX, " bytes without NUL"));
      }
    }
    il_unix_path path{}, engine{};
    memcpy(path.path, e.path.data(), e.path.size());
    memcpy(engine.path, e.engine_path.data(), e.engine_path.size());
    il_unix_resource r{};
    r.resource_id = e.resource_id;
    r.engine_len = static_cast<uint32_t>(e.engine_path.size());
    memcpy(r.engine_path, e.engine_path.data(), e.engine_path.size());
    il_unix_conn shown{};
    shown.resource_id = e.resource_id;
    shown.len = static_cast<uint32_t>(e.path.size());
    memcpy(shown.path, e.path.data(), e.path.size());
    resources.emplace_back(path, r);
    listeners.emplace_back(engine, shown);
  }
  INTERLOCK_RETURN_IF_ERROR(ReplacePathTable(impl_->skel->maps.unix_resources, resources));
  return ReplacePathTable(impl_->skel->maps.unix_listener_paths, listeners);
}

absl::Status Datapath::MarkEngineListener(int listen_fd) {
  const il_listener_mark mark{IL_LISTENER_MAGIC, 0};
  int err = bpf_map__update_elem(impl_->skel->maps.engine_listeners, &listen_fd, sizeof listen_fd,
                                 &mark, sizeof mark, BPF_ANY);
  if (err != 0) return LibbpfStatus(err, absl::StrCat("mark engine listener fd ", listen_fd));
  return absl::OkStatus();
}

absl::Status Datapath::Enroll(uint64_t cgroup_id, const il_enrollment& enrollment) {
  int err = bpf_map__update_elem(impl_->skel->maps.enrolled_cgroups, &cgroup_id,
                                 sizeof cgroup_id, &enrollment, sizeof enrollment, BPF_ANY);
  if (err != 0) return LibbpfStatus(err, absl::StrCat("enroll cgroup ", cgroup_id));
  return absl::OkStatus();
}

absl::Status Datapath::Unenroll(uint64_t cgroup_id) {
  int err = bpf_map__delete_elem(impl_->skel->maps.enrolled_cgroups, &cgroup_id,
                                 sizeof cgroup_id, 0);
  if (err == -ENOENT) {
    return absl::NotFoundError(absl::StrCat("bpf: cgroup ", cgroup_id, " is not enrolled"));
  }
  if (err != 0) return LibbpfStatus(err, absl::StrCat("unenroll cgroup ", cgroup_id));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<uint64_t, il_enrollment>>> Datapath::ListEnrollments() {
  bpf_map* map = impl_->skel->maps.enrolled_cgroups;
  std::vector<std::pair<uint64_t, il_enrollment>> out;
  uint64_t key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map__get_next_key(map, prev, &next, sizeof next) == 0) {
    il_enrollment value{};
    int err = bpf_map__lookup_elem(map, &next, sizeof next, &value, sizeof value, 0);
    if (err == 0) {
      out.emplace_back(next, value);
    } else if (err != -ENOENT) {  // ENOENT: removed while we walked
      return LibbpfStatus(err, "list enrollments");
    }
    key = next;
    prev = &key;
  }
  return out;
}

absl::StatusOr<il_conn_info> Datapath::LookupConn(int accepted_fd) {
  il_conn_info info{};
  int err = bpf_map__lookup_elem(impl_->skel->maps.conn_by_engine_sk, &accepted_fd,
                                 sizeof accepted_fd, &info, sizeof info, 0);
  if (err == -ENOENT) {
    return absl::NotFoundError("bpf: the connection did not come through the redirect");
  }
  if (err != 0) return LibbpfStatus(err, "lookup connection");
  return info;
}

int Datapath::events_fd() const { return ring_buffer__epoll_fd(impl_->events.get()); }

absl::Status Datapath::DrainEvents(const std::function<void(const il_event&)>& fn) {
  impl_->drain_fn = &fn;
  int n = ring_buffer__consume(impl_->events.get());
  impl_->drain_fn = nullptr;
  if (n < 0) return LibbpfStatus(n, "drain events");
  return absl::OkStatus();
}

absl::StatusOr<DatapathStats> Datapath::ReadStats() {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return LibbpfStatus(ncpu, "count possible cpus");
  bpf_map* map = impl_->skel->maps.stats;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
  uint64_t totals[IL_STAT_MAX] = {};
  for (uint32_t i = 0; i < IL_STAT_MAX; ++i) {
    int err = bpf_map__lookup_elem(map, &i, sizeof i, per_cpu.data(),
                                   per_cpu.size() * sizeof(uint64_t), 0);
    if (err != 0) return LibbpfStatus(err, absl::StrCat("read stat ", i));
    for (uint64_t v : per_cpu) totals[i] += v;
  }
  DatapathStats stats;
  stats.redirected = totals[IL_STAT_REDIRECTED];
  stats.denied = totals[IL_STAT_DENIED];
  stats.spliced_msgs = totals[IL_STAT_SPLICED_MSGS];
  stats.events_dropped = totals[IL_STAT_EVENTS_DROPPED];
  stats.enrolled_by_path = totals[IL_STAT_ENROLLED_BY_PATH];
  stats.enrolled_by_name = totals[IL_STAT_ENROLLED_BY_NAME];
  stats.splice_fallbacks = totals[IL_STAT_SPLICE_FALLBACKS];
  return stats;
}

absl::Status Datapath::Teardown(const std::string& pin_path) {
  if (pin_path.empty() || pin_path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("bpf: pin path must be absolute, got '", pin_path, "'"));
  }
  // Links first: detaching them stops enforcement on the cgroup.
  INTERLOCK_RETURN_IF_ERROR(RemovePinDir(pin_path + "/links", /*links=*/true));
  INTERLOCK_RETURN_IF_ERROR(RemovePinDir(pin_path + "/maps", /*links=*/false));
  if (rmdir(pin_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("bpf: rmdir ", pin_path));
  }
  return absl::OkStatus();
}

}  // namespace interlock::bpf
