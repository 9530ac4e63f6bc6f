#include "userspace/proxy/pg/pg_protocol.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/proxy/pg/pg_session.h"

namespace interlock::proxy::pg {

absl::StatusOr<std::unique_ptr<PgProtocol>> PgProtocol::Create(const ProtocolEnv& env,
                                                               const std::vector<config::ResourceConfig>& resources,
                                                               MaskSupport* masks,
                                                               std::shared_ptr<CancelRegistry> cancels) {
  if (cancels == nullptr) cancels = std::make_shared<CancelRegistry>(SecureRandom32);
  std::unique_ptr<PgProtocol> p(new PgProtocol(env, masks, std::move(cancels)));
  for (const config::ResourceConfig& r : resources) {
    if (!r.postgres.has_value() || r.postgres->agent_tls_cert_file.empty()) continue;
    auto ctx = net::TlsServerContext::Create(r.postgres->agent_tls_cert_file, r.postgres->agent_tls_key_file);
    if (!ctx.ok()) return Annotate(ctx.status(), absl::StrCat("resource ", r.name, ": agent TLS"));
    p->agent_tls_[r.id] = std::move(*ctx);
  }
  return p;
}

std::string PgProtocol::RefusalBytes(Refusal why) const {
  switch (why) {
    case Refusal::kTooManySessions:
      return FatalErrorBytes("53300", "interlock: too many sessions; try again later");
    case Refusal::kOutOfMemory:
      return FatalErrorBytes("53200",
                             "interlock: out of memory: interlockd's sessions hold all of its memory "
                             "budget; try again later");
    case Refusal::kDiskFull:
      return FatalErrorBytes("53100",
                             "interlock: disk full: interlockd has no room to record this session, "
                             "and sessions are never relayed unrecorded; try again later");
    case Refusal::kRecordingFailed:
      return FatalErrorBytes("58030",
                             "interlock: the session recording could not be created, and sessions "
                             "are never relayed unrecorded");
  }
  return "";
}

Started PgProtocol::Start(SessionStart start) {
  const config::ResourceConfig& resource = *start.resource;
  const net::SockAddr upstream = start.upstream;
  PgSessionContext pctx;
  pctx.session_id = start.session_id;
  pctx.identity = start.identity;
  pctx.original_destination = start.original_destination;
  pctx.resource_name = resource.name;
  pctx.postgres = &*resource.postgres;
  pctx.upstream = upstream;
  pctx.connect_timeout = env_.connect_timeout;
  const std::string& mode = resource.postgres->sslmode;
  if (mode != "disable" && mode != "allow") {
    std::string server_name =
        !resource.postgres->sslservername.empty() ? resource.postgres->sslservername : upstream.ip();
    auto tls = UpstreamTls(resource, server_name);
    if (!tls.ok()) return Started{nullptr, "upstream_tls_config", std::string(tls.status().message())};
    pctx.tls = *tls;
  }
  if (auto it = agent_tls_.find(resource.id); it != agent_tls_.end()) pctx.agent_tls = it->second.get();
  pctx.token_verifier = start.token_verifier;
  pctx.bound_token = std::move(start.bound_token);
  const config::ResourceConfig* rp = &resource;
  const config::PostgresLoginConfig* login = &resource.postgres->LoginFor(start.identity.workload());
  pctx.estimate = [this, rp, upstream, login](EstimateRequest req,
                                             std::function<void(absl::StatusOr<int64_t>)> done) {
    auto est = EstimatorFor(*rp, upstream, *login);
    if (!est.ok()) {
      env_.loop->Post([done, st = est.status()] { done(st); });
      return;
    }
    (*est)->Estimate(std::move(req), std::move(done));
  };
  pctx.catalog_key = absl::StrCat(resource.name, "@", upstream.ToString());
  catalog_targets_[pctx.catalog_key] = CatalogTarget{&resource, upstream};
  PgSessionEnv env{env_.loop, env_.audit, cancels_.get(), env_.clock};
  env.policy = env_.policy;
  env.approvals = env_.approvals;
  env.grants = env_.grants;
  env.masks = masks_;
  env.memory = env_.memory;
  auto session = PgSession::Start(env, std::move(start.agent), std::move(pctx), std::move(start.recorder),
                                  [done = std::move(start.done)](PgSession* s) { done(s); });
  if (!session.ok()) return Started{nullptr, "internal", std::string(session.status().message())};
  return Started{std::move(*session), "", ""};
}

void PgProtocol::CatalogQuery(const std::string& catalog, const std::string& sql,
                              std::vector<std::optional<std::string>> params,
                              std::function<void(absl::StatusOr<QueryRows>)> done) {
  auto t = catalog_targets_.find(catalog);
  if (t == catalog_targets_.end()) {
    done(absl::NotFoundError(absl::StrCat("no upstream for catalog ", catalog)));
    return;
  }
  auto est = EstimatorFor(*t->second.resource, t->second.upstream, t->second.resource->postgres->login);
  if (!est.ok()) {
    done(est.status());
    return;
  }
  EstimateRequest r;
  r.sql = sql;
  r.params = std::move(params);
  (*est)->Query(std::move(r), std::move(done));
}

absl::StatusOr<net::TlsClientContext*> PgProtocol::UpstreamTls(const config::ResourceConfig& resource,
                                                               const std::string& server_name) {
  std::string key = absl::StrCat(resource.id, "/", server_name);
  auto it = tls_contexts_.find(key);
  if (it != tls_contexts_.end()) return it->second.get();
  net::TlsClientOptions opts;
  INTERLOCK_ASSIGN_OR_RETURN(opts.mode, net::ParseSslMode(resource.postgres->sslmode));
  opts.ca_file = resource.postgres->sslrootcert;
  opts.server_name = server_name;
  INTERLOCK_ASSIGN_OR_RETURN(auto ctx, net::TlsClientContext::Create(opts));
  net::TlsClientContext* raw = ctx.get();
  tls_contexts_.emplace(key, std::move(ctx));
  return raw;
}

absl::StatusOr<RowEstimator*> PgProtocol::EstimatorFor(const config::ResourceConfig& resource,
                                                       const net::SockAddr& upstream,
                                                       const config::PostgresLoginConfig& login) {
  std::string key = absl::StrCat(resource.id, "/", upstream.ToString(), "/", login.user, "/", login.database);
  if (auto it = estimators_.find(key); it != estimators_.end()) return it->second.get();
  RowEstimatorOptions o;
  o.upstream = upstream;
  o.user = login.user;
  o.database = login.database;
  o.password_ref = login.password_ref;
  o.sslmode = resource.postgres->sslmode;
  o.allow_unverified_upstream = resource.postgres->allow_unverified_upstream;
  o.connect_timeout = env_.connect_timeout;
  if (o.sslmode != "disable" && o.sslmode != "allow") {
    std::string server_name =
        !resource.postgres->sslservername.empty() ? resource.postgres->sslservername : upstream.ip();
    INTERLOCK_ASSIGN_OR_RETURN(o.tls, UpstreamTls(resource, server_name));
  }
  INTERLOCK_ASSIGN_OR_RETURN(auto est, RowEstimator::Create(std::move(o), env_.loop));
  RowEstimator* raw = est.get();
  estimators_[key] = std::move(est);
  return raw;
}

}  // namespace interlock::proxy::pg
