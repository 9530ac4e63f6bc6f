#include "userspace/daemon/netns_listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"

namespace interlock::daemon {

class NetnsListeners::Listener final : public net::IoHandler {
 public:
  Listener(UniqueFd fd, std::function<void(int)>* on_accept)
      : fd_(std::move(fd)), on_accept_(on_accept) {}
  void OnIo(uint32_t) override { (*on_accept_)(fd_.get()); }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::function<void(int)>* on_accept_;
};

namespace {

// The identity of the namespace file at `path`, or why there is none.
absl::StatusOr<std::pair<uint64_t, uint64_t>> NsIdentity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
  return std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
}

}  // namespace

absl::StatusOr<std::unique_ptr<NetnsListeners>> NetnsListeners::Create(
    net::EventLoop* loop, bpf::Datapath* datapath, Handover* handover, NetnsListenersOptions options,
    std::function<void(int)> on_accept, Report report) {
  // The loop thread's own namespace: the one interlockd's main listeners are in.
  auto own = NsIdentity("/proc/thread-self/ns/net");
  if (!own.ok()) return absl::InternalError(absl::StrCat("netns: ", own.status().message()));
  return std::unique_ptr<NetnsListeners>(
      new NetnsListeners(loop, datapath, handover, std::move(options), std::move(on_accept),
                         std::move(report), NsKey{own->first, own->second}));
}

NetnsListeners::NetnsListeners(net::EventLoop* loop, bpf::Datapath* datapath, Handover* handover,
                               NetnsListenersOptions options, std::function<void(int)> on_accept,
                               Report report, NsKey own)
    : loop_(loop),
      datapath_(datapath),
      handover_(handover),
      options_(std::move(options)),
      on_accept_(std::move(on_accept)),
      report_(std::move(report)),
      own_(own) {}

NetnsListeners::~NetnsListeners() {
  for (auto& [key, open] : open_) {
    for (auto& l : open.listeners) {
      if (l != nullptr) loop_->Remove(l->fd());
    }
  }
}

std::string NetnsListeners::Name(const NsKey& key) { return absl::StrCat("net:[", key.ino, "]"); }

void NetnsListeners::Sync(const std::vector<pid_t>& enrolled_pids) {
  absl::flat_hash_map<NsKey, Wanted> wanted;
  for (const std::string& path : options_.configured) {
    auto id = NsIdentity(path);
    if (!id.ok()) continue;  // not there (yet): a namespace that is gone has no listener
    NsKey key{id->first, id->second};
    if (key == own_) continue;
    wanted.emplace(key, Wanted{path, path});
  }
  if (options_.discover) {
    for (pid_t pid : enrolled_pids) {
      const std::string path = absl::StrCat("/proc/", pid, "/ns/net");
      auto id = NsIdentity(path);
      if (!id.ok()) continue;  // exited
      NsKey key{id->first, id->second};
      if (key == own_) continue;
      wanted.emplace(key, Wanted{path, absl::StrCat("pid ", pid)});
    }
  }

  std::vector<NsKey> gone;
  for (const auto& [key, open] : open_) {
    if (!wanted.contains(key)) gone.push_back(key);
  }
  for (const NsKey& key : gone) {
    Open& open = open_[key];
    const std::string source = open.source;
    Close(open);
    open_.erase(key);
    report_("netns_closed", absl::StrCat("engine listeners in network namespace ", Name(key),
                                         " (", source, ") closed: no longer configured or used "
                                         "by an enrolled process"));
  }
  std::vector<NsKey> stale_failures;
  for (const auto& [key, error] : failed_) {
    if (!wanted.contains(key)) stale_failures.push_back(key);
  }
  for (const NsKey& key : stale_failures) failed_.erase(key);

  for (const auto& [key, want] : wanted) {
    auto it = open_.find(key);
    const bool is_new = it == open_.end();
    if (!is_new && it->second.missing() == 0) continue;
    if (is_new && open_.size() >= options_.max_namespaces) {
      const std::string error =
          absl::StrCat("already serving ", open_.size(), " network namespaces (the limit)");
      if (auto f = failed_.find(key); f == failed_.end() || f->second != error) {
        failed_[key] = error;
        report_("netns_listen_failed", absl::StrCat("network namespace ", Name(key), " (",
                                                    want.source, "): ", error,
                                                    "; enrolled connects there stay refused"));
      }
      continue;
    }
    Open fresh;
    fresh.source = want.source;
    fresh.listeners.resize(options_.addrs.size());
    Open& open = is_new ? fresh : it->second;
    std::string errors;
    absl::Status st = OpenIn(key, want, open, errors);
    if (!st.ok() && errors.empty()) errors = std::string(st.message());
    if (!st.ok() && is_new) Close(open);
    if (!errors.empty()) {
      // Once per namespace and error: retried at every Sync, reported when it changes.
      auto f = failed_.find(key);
      if (f == failed_.end() || f->second != errors) {
        failed_[key] = errors;
        INTERLOCK_LOG(kWarning, "netns %s (%s): %s", Name(key), want.source, errors);
        report_("netns_listen_failed",
                absl::StrCat("network namespace ", Name(key), " (", want.source, "): ", errors,
                             "; enrolled connects there to that address stay refused"));
      }
    } else {
      failed_.erase(key);
    }
    if (!is_new || open.missing() == open.listeners.size()) continue;
    std::vector<std::string> where;
    for (const auto& l : open.listeners) {
      if (l == nullptr) continue;
      if (auto a = net::LocalAddr(l->fd()); a.ok()) where.push_back(a->ToString());
    }
    report_("netns_listening", absl::StrCat("engine listening on ", absl::StrJoin(where, ", "),
                                            " in network namespace ", Name(key), " (",
                                            want.source, ")"));
    open_.emplace(key, std::move(fresh));
  }
}

absl::Status NetnsListeners::OpenIn(const NsKey& key, const Wanted& want, Open& out,
                                    std::string& errors) {
  UniqueFd ns(::open(want.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return ErrnoStatus(errno, absl::StrCat("open ", want.path));
  struct stat st {};
  if (::fstat(ns.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("fstat ", want.path));
  // The process may have exited (and its pid been reused) between stat and open.
  if (NsKey{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)} != key) {
    return absl::AbortedError(absl::StrCat(want.path, " changed namespace while opening it"));
  }
  // Each address on its own: a namespace without IPv6 (a container's, often) still gets
  // its IPv4 listener, and one whose address someone else took keeps the others;
  // connects to an address without a listener of interlockd's fail closed there.
  std::vector<std::string> failures;
  for (size_t i = 0; i < options_.addrs.size(); ++i) {
    if (out.listeners[i] != nullptr) continue;
    auto fd = handover_->ListenTcpInNetns(ns.get(), key.dev, key.ino, options_.addrs[i], options_.backlog);
    if (!fd.ok()) {
      failures.emplace_back(fd.status().message());
      continue;
    }
    // Marked before it is in the loop: the hook redirects only to a marked listener, so
    // until here connects in that namespace fail closed. (An inherited one is marked
    // already; marking it again is harmless.)
    auto listener = std::make_unique<Listener>(std::move(*fd), &on_accept_);
    absl::Status st = datapath_->MarkEngineListener(listener->fd());
    if (st.ok()) st = loop_->Add(listener->fd(), EPOLLIN, listener.get());
    if (!st.ok()) {
      handover_->Forget(listener->fd());
      return st;
    }
    out.listeners[i] = std::move(listener);
  }
  errors = absl::StrJoin(failures, "; ");
  if (out.missing() == out.listeners.size()) return absl::UnavailableError(errors);
  return absl::OkStatus();
}

void NetnsListeners::Close(Open& open) {
  for (auto& l : open.listeners) {
    if (l == nullptr) continue;
    loop_->Remove(l->fd());
    handover_->Forget(l->fd());  // not passed to a later upgrade
    // The handler may be in the batch being dispatched: destroy it afterwards.
    Listener* raw = l.release();
    loop_->Defer([raw] { delete raw; });
  }
  open.listeners.clear();
}

void NetnsListeners::CloseAll() {
  for (auto& [key, open] : open_) Close(open);
  open_.clear();
  failed_.clear();
}

std::vector<std::string> NetnsListeners::Describe() const {
  std::vector<std::string> out;
  for (const auto& [key, open] : open_) out.push_back(absl::StrCat(Name(key), " (", open.source, ")"));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace interlock::daemon
