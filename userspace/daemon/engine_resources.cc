// The engine's resources: the generation in force (plug-ins and token verifiers built from
// the configuration's resources), the kernel's resource maps and the unix listeners that
// match it, and what a reload replaces (resources, issuers, allowed destinations, sinks).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "userspace/auth/jwt/oidc_verifier.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/engine_internal.h"
#include "userspace/proxy/core/tcp_protocol.h"
#include "userspace/proxy/ssh/ssh_protocol.h"

namespace interlock::daemon {

using namespace engine_internal;  // NOLINT: the engine's private helpers

const config::ResourceConfig* Engine::Resources::ById(uint32_t id) const {
  for (const config::ResourceConfig& r : list) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

const config::ResourceConfig* Engine::Resources::ByName(const std::string& name) const {
  for (const config::ResourceConfig& r : list) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

void Engine::AssignResourceIds(std::vector<config::ResourceConfig>& list) {
  if (resources_ == nullptr) {
    // At start the configuration's own numbering (1..n) stands.
    for (const config::ResourceConfig& r : list) next_resource_id_ = std::max(next_resource_id_, r.id + 1);
    return;
  }
  for (config::ResourceConfig& r : list) {
    const config::ResourceConfig* same = resources_->ByName(r.name);
    r.id = same != nullptr ? same->id : next_resource_id_++;
  }
}

absl::StatusOr<std::shared_ptr<Engine::Resources>> Engine::BuildResources(
    std::vector<config::ResourceConfig> list, const std::vector<config::OidcIssuerConfig>& oidc_issuers,
    const config::TimeoutConfig& timeouts) {
  auto out = std::make_shared<Resources>();
  out->list = std::move(list);
  proxy::ProtocolEnv env;
  env.loop = loop_.get();
  env.audit = audit_.get();
  env.clock = &clock_;
  env.policy = policy_ != nullptr ? policy_->current_ptr() : nullptr;
  env.approvals = approvals_.get();
  env.grants = approvals_.get();
  env.memory = memory_budget_.get();
  env.masks = masks_.get();
  env.connect_timeout = timeouts.connect;
  env.state_dir = config_.state_dir;
  out->protocols.Add(config::Protocol::kTcp, std::make_unique<proxy::TcpProtocol>(env));
  INTERLOCK_ASSIGN_OR_RETURN(
      auto pg, proxy::pg::PgProtocol::Create(env, out->list, masks_.get(),
                                             resources_ != nullptr ? resources_->pg->cancel_registry() : nullptr));
  out->pg = pg.get();
  out->protocols.Add(config::Protocol::kPostgres, std::move(pg));
  INTERLOCK_ASSIGN_OR_RETURN(auto http, proxy::http::HttpProtocol::Create(env, out->list));
  out->protocols.Add({config::Protocol::kHttp, config::Protocol::kHttps}, std::move(http));
  INTERLOCK_ASSIGN_OR_RETURN(auto ssh, proxy::ssh::SshProtocol::Create(env, out->list));
  out->protocols.Add(config::Protocol::kSsh, std::move(ssh));

  // Agent tokens: PostgreSQL resources (token_issuers, token_sha256), HTTP and SSH ones
  // (token_issuers); a session gets its resource's verifier in SessionStart.token_verifier.
  for (const config::ResourceConfig& r : out->list) {
    static const std::vector<std::string> kNone;
    const std::vector<std::string>& token_issuers = r.token_issuers();
    if (token_issuers.empty() && !r.postgres.has_value()) continue;
    const std::vector<std::string>& token_sha256 = r.postgres.has_value() ? r.postgres->token_sha256 : kNone;
    std::unique_ptr<auth::TokenVerifier> jwt, fixed;
    if (!token_issuers.empty()) {
      std::vector<auth::jwt::IssuerConfig> issuers;
      for (const std::string& name : token_issuers) {
        for (const config::OidcIssuerConfig& o : oidc_issuers) {
          if (o.name != name) continue;
          auth::jwt::IssuerConfig c;
          c.issuer = o.issuer;
          c.audiences = o.audiences;
          c.algorithms = o.algorithms;
          c.jwks_file = o.jwks_file;
          c.jwks_uri = o.jwks_uri;
          c.discovery = o.discovery;
          c.ca_file = o.ca_file;
          c.clock_skew = o.clock_skew;
          c.groups_claim = o.groups_claim;
          c.min_refresh_interval = o.min_refresh_interval;
          c.max_token_lifetime = o.max_token_lifetime;
          c.require_low_s = o.require_low_s;
          issuers.push_back(std::move(c));
        }
      }
      // Keys are fetched and kept fresh by the verifier's own thread, off the event loop.
      auto v = auth::jwt::JwtVerifier::Create(std::move(issuers), clock_, nullptr, /*background_refresh=*/true);
      if (!v.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("resource ", r.name, ": token issuers: ", v.status().message()));
      }
      jwt = std::move(*v);
    }
    if (!token_sha256.empty()) fixed = std::make_unique<auth::StaticTokenVerifier>(token_sha256);
    if (jwt == nullptr && fixed == nullptr) continue;
    out->token_verifiers[r.id] = std::make_unique<BindingVerifier>(
        std::make_unique<AnyTokenVerifier>(std::move(jwt), std::move(fixed)), &token_bindings_);
  }
  return out;
}

absl::Status Engine::ApplyResources(const Resources& r) {
  // Unix listeners first: one per resource with a unix_path, in a directory nobody but
  // root can write (so nobody else can put a socket where redirected connects arrive).
  std::vector<std::string> opened;
  auto undo = [&] {
    for (const std::string& name : opened) CloseUnixListener(name);
  };
  std::vector<bpf::UnixResourceEntry> unix_entries;
  for (const config::ResourceConfig& res : r.list) {
    if (res.unix_path.empty()) continue;
    if (!datapath_->unix_hooks()) {
      undo();
      return absl::FailedPreconditionError(absl::StrCat(
          "resource ", res.name, ": unix_path ", res.unix_path, " needs the kernel's "
          "cgroup/connect_unix and getpeername_unix hooks (Linux >= 6.7, with the kfunc "
          "bpf_sock_addr_set_sun_path); this kernel has not got them, so connects to that "
          "path could not be redirected. Remove unix_path, or upgrade the kernel"));
    }
    const std::string path = config_.listener.UnixListenerPath(res.name);
    unix_entries.push_back(bpf::UnixResourceEntry{res.unix_path, path, res.id});
    if (unix_listeners_.contains(res.name)) continue;
    absl::Status st = UnixListenerDir();
    // Through the handover: an upgrade's new process takes the old one's socket over.
    absl::StatusOr<UniqueFd> fd = st.ok() ? handover_->ListenUnix(path, 0666) : st;
    if (!fd.ok()) {
      undo();
      return Annotate(fd.status(), absl::StrCat("resource ", res.name, ": unix listener"));
    }
    UnixListener& l = unix_listeners_[res.name];
    l.fd = *std::move(fd);
    const int raw = l.fd.get();
    l.watcher = std::make_unique<FdWatcher>([this, raw, name = res.name] { OnAcceptUnix(raw, name); });
    opened.push_back(res.name);
    if (absl::Status added = loop_->Add(raw, EPOLLIN, l.watcher.get()); !added.ok()) {
      undo();
      return added;
    }
  }

  std::vector<bpf::ResourceEntry> entries;
  for (const config::ResourceConfig& res : r.list) {
    bpf::ResourceEntry e;
    e.addr = res.prefix.address.bytes;
    e.prefix_bits = res.prefix.prefix_bits;
    e.port = res.port;
    e.value.resource_id = res.id;
    entries.push_back(e);
  }
  // Each map is updated in place (entries that stay are never absent, not for a moment).
  absl::Status st = datapath_->SetResources(entries);
  if (st.ok()) st = datapath_->SetUnixResources(unix_entries);
  if (!st.ok()) {
    undo();
    return st;
  }
  // Listeners of resources that are gone (or lost their unix_path) close now: the kernel
  // no longer sends connects there.
  std::vector<std::string> unused;
  for (const auto& [name, l] : unix_listeners_) {
    const config::ResourceConfig* res = r.ByName(name);
    if (res == nullptr || res->unix_path.empty()) unused.push_back(name);
  }
  for (const std::string& name : unused) CloseUnixListener(name);
  return absl::OkStatus();
}

void Engine::CloseUnixListener(const std::string& name) {
  auto it = unix_listeners_.find(name);
  if (it == unix_listeners_.end()) return;
  loop_->Remove(it->second.fd.get());
  handover_->Forget(it->second.fd.get());
  ::unlink(config_.listener.UnixListenerPath(name).c_str());
  unix_listeners_.erase(it);
}

absl::Status Engine::ApplyAllowedDestinations() {
  std::vector<config::AllowedDestinationConfig> allow;
  if (config_.default_deny_allow.has_value()) {
    allow = *config_.default_deny_allow;
  } else {
    // The documented default: the resolvers of /etc/resolv.conf, port 53. A missing file
    // means no resolver, and so no exception.
    auto text = ReadFile("/etc/resolv.conf");
    if (text.ok()) allow = config::DefaultDenyAllowFromResolvConf(*text);
  }
  std::vector<bpf::ResourceEntry> allowed;
  for (const config::AllowedDestinationConfig& a : allow) {
    bpf::ResourceEntry e;
    e.addr = a.prefix.address.bytes;
    e.prefix_bits = a.prefix.prefix_bits;
    e.port = a.port;
    allowed.push_back(e);
  }
  return datapath_->SetAllowedDestinations(allowed);
}

void Engine::CatalogQuery(const std::string& catalog, const std::string& sql,
                          std::vector<std::optional<std::string>> params,
                          std::function<void(absl::StatusOr<proxy::pg::QueryRows>)> done) {
  if (resources_ == nullptr) {
    done(absl::UnavailableError("the PostgreSQL protocol is not started"));
    return;
  }
  proxy::pg::PgProtocol* pg = resources_->pg;
  if (!pg->HasCatalog(catalog)) {
    // A session started before a reload: its generation's plug-in has the connection.
    for (const std::weak_ptr<Resources>& weak : earlier_resources_) {
      if (std::shared_ptr<Resources> r = weak.lock(); r != nullptr && r->pg->HasCatalog(catalog)) {
        r->pg->CatalogQuery(catalog, sql, std::move(params), std::move(done));
        return;
      }
    }
  }
  pg->CatalogQuery(catalog, sql, std::move(params), std::move(done));
}

absl::Status Engine::ReloadSinks(const config::ServiceConfig& fresh, std::vector<std::string>* changed) {
  // A sink is the same when its configuration is byte for byte the same.
  auto by_name = [](const v1::Config& c) {
    absl::flat_hash_map<std::string, std::string> m;
    for (const v1::AuditSinkConfig& s : c.audit().sinks()) m[s.name()] = s.SerializeAsString();
    return m;
  };
  const auto before = by_name(config_.proto);
  const auto after = by_name(fresh.proto);
  std::vector<std::unique_ptr<audit::sinks::RemoteSink>> made;
  for (const config::AuditSinkSettings& settings : fresh.audit_sinks) {
    auto it = before.find(settings.name);
    if (it != before.end() && after.at(settings.name) == it->second) continue;
    changed->push_back(settings.name);
  }
  for (const auto& [name, bytes] : before) {
    if (!after.contains(name)) changed->push_back(name);
  }
  if (changed->empty()) return absl::OkStatus();
  // Stop the sinks that go or change first: each spills what it still queues to its spool,
  // which the new sink of that name then takes over (a spool has one owner at a time). Their
  // settings passed the configuration's checks; what can still fail here (the spool
  // directory) leaves that sink out, and the reload says so.
  absl::flat_hash_set<std::string> names(changed->begin(), changed->end());
  std::vector<audit::sinks::RemoteSink*> kept;
  for (audit::sinks::RemoteSink* sink : audit_sinks_) {
    if (!names.contains(sink->name())) {
      kept.push_back(sink);
      continue;
    }
    (void)sink->Flush();
    audit_->RemoveSink(sink);  // destroys it: its worker stops, the queue goes to the spool
  }
  audit_sinks_ = std::move(kept);
  absl::Status first;
  for (const config::AuditSinkSettings& settings : fresh.audit_sinks) {
    if (!names.contains(settings.name)) continue;
    auto remote = audit::sinks::CreateRemoteSink(settings, config_.state_dir);
    if (!remote.ok()) {
      if (first.ok()) first = remote.status();
      continue;
    }
    INTERLOCK_LOG(kInfo, "audit sink %s: %s", (*remote)->name(), (*remote)->destination());
    audit_sinks_.push_back(remote->get());
    audit_->AddSink(*std::move(remote));
  }
  return first;
}

}  // namespace interlock::daemon
