#include "userspace/proxy/http/http_protocol.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/proxy/http/http_session.h"
#include "userspace/proxy/http/problem.h"

namespace interlock::proxy::http {

absl::StatusOr<std::unique_ptr<HttpProtocol>> HttpProtocol::Create(
    const ProtocolEnv& env, const std::vector<config::ResourceConfig>& resources) {
  std::unique_ptr<HttpProtocol> p(new HttpProtocol(env));
  bool https = false;
  bool identity_headers = false;
  for (const config::ResourceConfig& r : resources) {
    https |= r.protocol == config::Protocol::kHttps;
    identity_headers |= r.http.has_value() && r.http->identity_headers;
  }
  if (identity_headers) {
    // Never created here: a key that appears by itself would change, unannounced, what
    // every upstream must trust.
    auto key = auth::jwt::AssertionKey::Load(env.state_dir);
    if (absl::IsNotFound(key.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("a resource sets http.identity_headers and there is no assertion key in ", env.state_dir,
                       ": run `interlock assertion-key init`"));
    }
    if (!key.ok()) return key.status();
    p->assertion_key_ = *std::move(key);
  }
  if (!https) return p;
  auto ca = net::LocalCa::Load(env.state_dir, *env.clock);
  if (absl::IsNotFound(ca.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("an HTTPS resource is configured and there is no interception CA in ", env.state_dir,
                     ": run `interlock ca init`"));
  }
  if (!ca.ok()) return ca.status();
  p->ca_ = *std::move(ca);
  p->leaves_ = std::make_unique<net::LeafCache>(*p->ca_);
  INTERLOCK_ASSIGN_OR_RETURN(p->agent_tls_, net::TlsServerContext::CreateWithCertificateSource(*p->leaves_, {"http/1.1"}));
  return p;
}

std::string HttpProtocol::RefusalBytes(Refusal why) const {
  const char* detail = "interlockd is out of memory";
  const char* reason = "memory_budget";
  switch (why) {
    case Refusal::kTooManySessions:
      detail = "interlockd serves its maximum number of sessions";
      reason = "session_limit";
      break;
    case Refusal::kOutOfMemory:
      break;
    case Refusal::kDiskFull:
      detail = "interlockd has no disk space to record this session, and sessions are never relayed unrecorded";
      reason = "disk_full";
      break;
    case Refusal::kRecordingFailed:
      detail = "interlockd could not create this session's recording, and sessions are never relayed unrecorded";
      reason = "recording_failed";
      break;
  }
  return ProblemResponse({.status = 503, .title = "Service unavailable", .detail = detail, .reason = reason, .close = true});
}

absl::StatusOr<net::TlsClientContext*> HttpProtocol::UpstreamTls(const config::HttpConfig& http,
                                                                  const std::string& server_name) {
  const std::string ca_file = http.upstream_ca_file.empty() ? net::kSystemTrustBundle : http.upstream_ca_file;
  const std::string key = absl::StrCat(ca_file, "\n", server_name);
  if (auto it = upstream_tls_.find(key); it != upstream_tls_.end()) return it->second.get();
  net::TlsClientOptions o;
  o.mode = net::SslMode::kVerifyFull;
  o.ca_file = ca_file;
  o.server_name = server_name;
  o.alpn = {"http/1.1"};
  INTERLOCK_ASSIGN_OR_RETURN(auto ctx, net::TlsClientContext::Create(o));
  net::TlsClientContext* raw = ctx.get();
  upstream_tls_[key] = std::move(ctx);
  return raw;
}

Started HttpProtocol::Start(SessionStart start) {
  const config::ResourceConfig& resource = *start.resource;
  HttpSessionContext ctx;
  ctx.session_id = start.session_id;
  ctx.identity = start.identity;
  ctx.original_destination = start.original_destination;
  ctx.resource = &resource;
  ctx.upstream = start.upstream;
  std::unique_ptr<CredentialSource>& credential = credentials_[resource.name];
  if (credential == nullptr) credential = std::make_unique<CredentialSource>(resource.http->credential, env_.clock);
  ctx.credential = credential.get();
  ctx.token_verifier = start.token_verifier;
  ctx.bound_token = std::move(start.bound_token);
  ctx.assertion_key = assertion_key_.get();
  if (resource.protocol == config::Protocol::kHttps) {
    if (agent_tls_ == nullptr) return Started{nullptr, "agent_tls_config", "no interception CA loaded"};
    ctx.agent_tls = agent_tls_.get();
    ctx.fallback_name = start.original_destination.address();
    ctx.upstream_tls = [this, &resource](const std::string& server_name) {
      return UpstreamTls(*resource.http, server_name);
    };
  }
  auto s = HttpSession::Start(env_, std::move(start.agent), std::move(ctx), std::move(start.recorder),
                              [done = std::move(start.done)](HttpSession* session) { done(session); });
  if (!s.ok()) return Started{nullptr, "internal", std::string(s.status().message())};
  return Started{*std::move(s), "", ""};
}

}  // namespace interlock::proxy::http
