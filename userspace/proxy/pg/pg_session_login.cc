// PgSession, part: the login — the agent's startup packet, TLS and token (or password
// message), interlockd's own upstream connection and login with the injected credential,
// the handover to the relay phase, token expiry, and CancelRequests.
#include "userspace/proxy/pg/pg_session.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/auth/scram.h"
#include "userspace/auth/secret.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/common/errno_status.h"
#include "userspace/proxy/pg/literal_withholding.h"
#include "userspace/proxy/pg/startup_params.h"
#include "userspace/sql/normalize.h"

namespace interlock::proxy::pg {

namespace cpg = ::interlock::codec::pg;

namespace {

// Startup parameters that must not reach the upstream as the agent sent them.
bool Forwardable(absl::string_view name) {
  return name != "user" && name != "database" && name != "replication" &&
         !absl::StartsWith(name, "_pq_.");
}

}  // namespace

void PgSession::HandleStartupPacket(absl::string_view body) {
  auto packet = cpg::ParseStartupPacket(body);
  if (!packet.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_startup", std::string(packet.status().message()));
    FailToAgent("08P01", absl::StrCat("interlock: invalid startup packet: ", packet.status().message()),
                "protocol_error", std::string(packet.status().message()));
    return;
  }
  if (std::holds_alternative<cpg::SslRequest>(*packet) && ctx_.agent_tls != nullptr &&
      agent_.tls() == nullptr) {
    // Bytes pipelined after SSLRequest would be taken as if they came through TLS
    // (CVE-2021-23214): refuse them.
    if (!agent_.in().empty()) {
      Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "data_before_tls", "bytes after SSLRequest");
      Finish("protocol_error", "data after SSLRequest", true);
      return;
    }
    if (net::SendSome(agent_.fd(), "S", 1, "answer SSLRequest").bytes != 1) {
      Finish("agent_reset", "cannot answer SSLRequest", true);
      return;
    }
    auto tls = net::TlsConnection::CreateServer(*ctx_.agent_tls, agent_.fd());
    if (!tls.ok()) {
      Finish("internal", std::string(tls.status().message()), true);
      return;
    }
    agent_.SetTls(std::move(*tls));
    phase_ = Phase::kAgentTls;
    StepAgentTls();
    return;
  }
  if (std::holds_alternative<cpg::SslRequest>(*packet) ||
      std::holds_alternative<cpg::GssEncRequest>(*packet)) {
    // No GSS encryption, and TLS only when configured: the hop is loopback on this host.
    SendToAgent("N");
    return;
  }
  if (const auto* cancel = std::get_if<cpg::CancelRequest>(&*packet)) {
    HandleCancel(cancel->process_id, cancel->secret_key);
    return;
  }
  const auto& startup = std::get<cpg::StartupMessage>(*packet);
  if (startup.major_version != cpg::kProtocolMajor) {
    FailToAgent("0A000",
                absl::StrCat("interlock: unsupported frontend protocol ", startup.major_version, ".",
                             startup.minor_version, ": only 3.0 is supported"),
                "protocol_error", "unsupported protocol version");
    return;
  }
  agent_minor_version_ = startup.minor_version;
  subject_.workload = ctx_.identity.workload();
  subject_.cgroup_path = ctx_.identity.cgroup_path();
  subject_.uid = ctx_.identity.uid();
  for (const auto& [name, value] : startup.params) {
    if (name == "replication" && value != "false" && value != "0" && value != "off" && value != "no") {
      Audit(v1::AUDIT_KIND_AUTH, "denied", "replication", "replication connections are not allowed");
      FailToAgent("42501", "interlock: replication connections are not allowed", "denied",
                  "replication requested");
      return;
    }
    if (absl::StartsWith(name, "_pq_.")) unsupported_options_.push_back(name);
    if (Forwardable(name)) agent_params_.emplace_back(name, value);
  }
  // Startup parameters are settings applied before the first statement, with no statement
  // for the guard to judge: only an allow-list passes (startup_params.h).
  if (absl::Status ok = CheckStartupParameters(agent_params_, ctx_.postgres->extra_startup_parameters); !ok.ok()) {
    std::string msg(ok.message());
    Audit(v1::AUDIT_KIND_AUTH, "denied", "startup_parameter", msg);
    FailToAgent("42501", absl::StrCat("interlock: ", msg), "denied", msg);
    return;
  }
  negotiate_version_ = agent_minor_version_ > 0 || !unsupported_options_.empty();
  const config::PostgresLoginConfig& login = ctx_.postgres->LoginFor(ctx_.identity.workload());
  upstream_user_ = login.user;
  upstream_database_ = login.database;
  // A token bound at the workload's enrollment speaks for it: the agent never holds it,
  // and is not asked for one.
  if (ctx_.bound_token && ctx_.token_verifier != nullptr) {
    auto bound = ctx_.bound_token();
    if (!bound.ok()) {
      Audit(v1::AUDIT_KIND_AUTH, "denied", "bound_token_unreadable", std::string(bound.status().message()));
      FailToAgent("28000", "interlock: the token bound to this workload cannot be read", "denied",
                  std::string(bound.status().message()));
      return;
    }
    if (bound->has_value()) {
      if (!AcceptToken(**bound, "bound_token")) return;
      if (!CheckGrant()) return;
      ConnectUpstream();
      return;
    }
  }
  if (ctx_.postgres->agent_auth == config::AgentAuth::kToken) {
    cpg::Authentication a;
    a.code = cpg::AuthCode::kCleartextPassword;
    SendToAgent(cpg::Encode(a));
    phase_ = Phase::kAgentPassword;
    return;
  }
  Audit(v1::AUDIT_KIND_AUTH, "allowed", "workload",
        absl::StrCat("agent authenticated by its kernel-attested workload; upstream role ",
                     upstream_user_, " database ", upstream_database_));
  if (!CheckGrant()) return;
  ConnectUpstream();
}

void PgSession::HandlePassword(absl::string_view body) {
  auto pw = cpg::ParsePasswordMessage(body);
  if (!pw.ok()) {
    FailToAgent("08P01", "interlock: invalid password message", "protocol_error",
                std::string(pw.status().message()));
    return;
  }
  if (!AcceptToken(pw->password, "password")) return;
  if (!CheckGrant()) return;
  ConnectUpstream();
}

void PgSession::HandleCancel(int32_t pid, int32_t key) {
  const CancelTarget* t = env_.cancels->Find(static_cast<uint32_t>(pid), static_cast<uint32_t>(key));
  if (t == nullptr) {
    Audit(v1::AUDIT_KIND_CANCEL, "denied", "unknown_key", absl::StrCat("cancel for pid ", pid));
  } else if (t->cgroup_id != ctx_.identity.cgroup_id() &&
             (t->workload.empty() || t->workload != ctx_.identity.workload())) {
    Audit(v1::AUDIT_KIND_CANCEL, "denied", "other_workload",
          absl::StrCat("cancel for session ", t->session_id, " of workload ", t->workload));
  } else {
    // A statement held for approval never reached the server: the cancel withdraws it
    // (the agent gets 57014, as for any cancel). What runs upstream is cancelled too; with
    // nothing running there the cancel stays here, or the server would cancel whatever
    // the agent sends next.
    std::string session = t->session_id;
    const Withdrawal w = t->withdraw_hold ? t->withdraw_hold() : Withdrawal::kNothingHeld;
    if (w != Withdrawal::kIdle) SendCancelAsync(*env_.loop, t->upstream, t->upstream_pid, t->upstream_key);
    Audit(v1::AUDIT_KIND_CANCEL, "allowed", w == Withdrawal::kNothingHeld ? "forwarded" : "hold_withdrawn",
          absl::StrCat(w == Withdrawal::kNothingHeld ? "cancel forwarded"
                       : w == Withdrawal::kBusy      ? "held statement withdrawn and cancel forwarded"
                                                     : "held statement withdrawn (nothing running upstream)",
                       " for session ", session));
  }
  // As PostgreSQL does: no answer, the connection just closes.
  Finish("cancel_request", "", false);
}

// ---------------------------------------------------------------------------------------
// Upstream side: connect, TLS, login

void PgSession::ConnectUpstream() {
  auto fd = net::ConnectTcpNonBlocking(ctx_.upstream);
  if (!fd.ok()) {
    FailToAgent("08006", absl::StrCat("interlock: cannot reach resource ", ctx_.resource_name),
                "upstream_unreachable", std::string(fd.status().message()));
    return;
  }
  upstream_.Attach(std::move(*fd), /*readable=*/false);
  phase_ = Phase::kUpstreamConnecting;
  connect_timer_ = env_.loop->RunAfter(ctx_.connect_timeout, [this] {
    connect_timer_ = 0;
    if (phase_ == Phase::kUpstreamConnecting) {
      FailToAgent("08006", absl::StrCat("interlock: cannot reach resource ", ctx_.resource_name),
                  "upstream_timeout", "connect timed out");
      Pump();
    }
  });
}

void PgSession::OnUpstreamConnected() {
  absl::Status st = net::ConnectResult(upstream_.fd(), ctx_.upstream);
  if (connect_timer_ != 0) {
    env_.loop->Cancel(connect_timer_);
    connect_timer_ = 0;
  }
  if (!st.ok()) {
    FailToAgent("08006", absl::StrCat("interlock: cannot reach resource ", ctx_.resource_name),
                "upstream_unreachable", std::string(st.message()));
    return;
  }
  const std::string& mode = ctx_.postgres->sslmode;
  if (mode == "disable" || mode == "allow" || ctx_.tls == nullptr) {
    StartUpstreamLogin();
    return;
  }
  SendToUpstream(cpg::EncodeSslRequest());
  phase_ = Phase::kUpstreamSslReply;
}

void PgSession::StartUpstreamLogin() {
  std::optional<auth::Secret> password;
  const config::PostgresLoginConfig& login = ctx_.postgres->LoginFor(ctx_.identity.workload());
  if (!login.password_ref.empty()) {
    // Read per session, so a rotated secret takes effect without a restart.
    auto secret = auth::ResolveCredentialRef(login.password_ref);
    if (!secret.ok()) {
      Audit(v1::AUDIT_KIND_AUTH, "error", "credential_unavailable", std::string(secret.status().message()));
      FailToAgent("08006",
                  absl::StrCat("interlock: the upstream credential for resource ", ctx_.resource_name,
                               " is unavailable"),
                  "credential_unavailable", std::string(secret.status().message()));
      return;
    }
    password.emplace(std::move(*secret));
  }
  std::string cb_hash;
  if (upstream_.tls() != nullptr) {
    auto hash = auth::TlsServerEndPointHash(upstream_.tls()->PeerCertificateDer(), upstream_.tls()->PeerSignatureNid());
    if (hash.ok()) cb_hash = *hash;
  }
  auto nonce = auth::RandomNonce();
  if (!nonce.ok()) {
    FailToAgent("58000", "interlock: internal error", "internal", std::string(nonce.status().message()));
    return;
  }
  UpstreamLoginOptions opts;
  opts.user = upstream_user_;
  opts.database = upstream_database_;
  opts.params = agent_params_;
  // Verified only when TLS is up and the context checked the chain (verify-ca) or chain
  // and name (verify-full); prefer/require encrypt but would talk to anyone.
  opts.upstream_verified = upstream_.tls() != nullptr && ctx_.postgres->VerifiesUpstream();
  opts.allow_unverified = ctx_.postgres->allow_unverified_upstream;
  login_ = std::make_unique<UpstreamLogin>(std::move(opts), std::move(password), cb_hash, *nonce);
  SendToUpstream(login_->StartupMessage());
  phase_ = Phase::kUpstreamAuth;
}

void PgSession::HandleUpstreamLogin(char type, absl::string_view body) {
  auto step = login_->OnMessage(type, body);
  if (!step.ok() && absl::StartsWith(step.status().message(), "upstream_unverified:")) {
    // Nothing was sent: the agent hears why, the audit names the refusal.
    Audit(v1::AUDIT_KIND_AUTH, "denied", "upstream_unverified", std::string(step.status().message()));
    FailToAgent("28000",
                absl::StrCat("interlock: resource ", ctx_.resource_name,
                             " asks for a password but its server's identity is not verified "
                             "(sslmode verify-ca or verify-full needed); the credential was not sent"),
                "upstream_unverified", std::string(step.status().message()));
    return;
  }
  if (!step.ok()) {
    Audit(v1::AUDIT_KIND_AUTH, "denied", "upstream_login_failed", std::string(step.status().message()));
    // The agent learns that interlockd could not log in, not the upstream's details.
    FailToAgent("28000",
                absl::StrCat("interlock: could not log in to resource ", ctx_.resource_name,
                             " with its configured credential"),
                "upstream_auth_failed", std::string(step.status().message()));
    return;
  }
  if (!step->send.empty()) SendToUpstream(step->send);
  if (step->authenticated) {
    Audit(v1::AUDIT_KIND_AUTH, "allowed", "upstream_login",
          absl::StrCat("logged in upstream as ", upstream_user_, " to ", upstream_database_, " with ",
                       login_->method(), upstream_.tls() != nullptr ? absl::StrCat(" over ", upstream_.tls()->Version()) : ""));
    phase_ = Phase::kUpstreamReady;
  }
}

void PgSession::BecomeReady() {
  // The backend's real pid with our own secret key, standing for the upstream backend's.
  CancelTarget target;
  target.session_id = ctx_.session_id;
  target.cgroup_id = ctx_.identity.cgroup_id();
  target.workload = ctx_.identity.workload();
  target.upstream = ctx_.upstream;
  target.upstream_pid = static_cast<uint32_t>(upstream_pid_);
  target.upstream_key = static_cast<uint32_t>(upstream_key_);
  std::shared_ptr<bool> alive = alive_;
  target.withdraw_hold = [this, alive] { return *alive ? WithdrawHold() : Withdrawal::kNothingHeld; };
  auto [pid, key] = env_.cancels->Register(std::move(target));
  our_pid_ = pid;
  our_key_ = key;
  cancel_registered_ = true;

  std::string hello;
  if (negotiate_version_) {
    cpg::NegotiateProtocolVersion n;
    n.newest_minor = 0;
    n.unrecognized_options = unsupported_options_;
    hello += cpg::Encode(n);
  }
  cpg::Authentication ok;
  ok.code = cpg::AuthCode::kOk;
  hello += cpg::Encode(ok);
  StartGuard();
  hello += held_parameter_status_;
  held_parameter_status_.clear();
  cpg::BackendKeyData k;
  k.process_id = static_cast<int32_t>(pid);
  k.secret_key = static_cast<int32_t>(key);
  hello += cpg::Encode(k);
  SendToAgent(hello);

  StatementTrackerOptions topts;
  topts.database = upstream_database_;
  topts.user = upstream_user_;
  topts.audit_parameters = ctx_.postgres->audit_parameters;
  topts.audit_literals = ctx_.postgres->audit_literals;
  topts.max_statement_bytes = ctx_.postgres->max_statement_bytes;
  topts.normalize_memo = &normalize_memo_;
  tracker_ = std::make_unique<StatementTracker>(std::move(topts), *env_.clock);
  withhold_literals_ = !ctx_.postgres->audit_literals;
  if (recorder_ && withhold_literals_) {
    // Tells replay that empty values it shows were withheld, not sent empty.
    (void)recorder_->AppendEvent(
        "literals_withheld",
        recorder_->keeps_originals()
            ? "statement literals recorded as $n, bound values and COPY data empty; originals sealed to the auditor key"
            : "statement literals recorded as $n, bound values and COPY data empty; originals not kept (no auditor key)");
  }
  phase_ = Phase::kRelay;
}


bool PgSession::AcceptToken(absl::string_view token, const std::string& source) {
  if (ctx_.token_verifier == nullptr) {
    FailToAgent("28000", "interlock: token authentication is not configured", "denied", "no verifier");
    return false;
  }
  auth::TokenContext tctx{ctx_.identity.workload(), ctx_.identity.cgroup_id(), ctx_.identity.cgroup_path()};
  auto claims = ctx_.token_verifier->Verify(token, tctx);
  if (!claims.ok()) {
    absl::string_view msg = claims.status().message();
    std::string reason(msg.substr(0, msg.find(':')));
    Audit(v1::AUDIT_KIND_AUTH, "denied", reason.empty() ? "bad_token" : reason,
          absl::StrCat(source, ": ", msg));
    FailToAgent("28P01", "interlock: token authentication failed", "denied", std::string(msg));
    return false;
  }
  subject_.has_token = true;
  subject_.sub = claims->subject;
  subject_.groups = claims->groups;
  subject_.claims.clear();
  for (const auto& [k, v] : claims->string_claims) subject_.claims[k] = v;
  if (!claims->azp.empty()) subject_.claims["azp"] = claims->azp;
  ctx_.identity.set_token_issuer(claims->issuer);
  ctx_.identity.set_token_subject(claims->subject);
  ctx_.identity.clear_token_groups();
  for (const auto& g : claims->groups) ctx_.identity.add_token_groups(g);
  statement_event_.reset();  // built again with the new token identity
  bool first = token_expires_ == absl::InfiniteFuture() && token_timer_ == 0;
  token_expires_ = claims->expires_at;
  if (first) {
    Audit(v1::AUDIT_KIND_AUTH, "allowed", source == "bound_token" ? "bound_token" : "token",
          absl::StrCat("token of ", claims->issuer.empty() ? "" : absl::StrCat(claims->issuer, " "), "subject ",
                       claims->subject, " (sha256 ", claims->token_sha256.substr(0, 12), "...)",
                       source == "bound_token" ? " bound at enrollment" : "", "; upstream role ", upstream_user_,
                       " database ", upstream_database_));
  }
  if (guard_ != nullptr) guard_->SetSubject(subject_);
  // Expiry: close at exp, or (recheck) judge at the next statement.
  if (token_timer_ != 0) {
    env_.loop->Cancel(token_timer_);
    token_timer_ = 0;
  }
  if (!ctx_.postgres->token_expiry_recheck && token_expires_ != absl::InfiniteFuture()) {
    absl::Duration left = token_expires_ - env_.clock->Now();
    if (left < absl::ZeroDuration()) left = absl::ZeroDuration();
    token_timer_ = env_.loop->RunAfter(left, [this] {
      token_timer_ = 0;
      OnTokenExpired();
    });
  }
  return true;
}

void PgSession::OnTokenExpired() {
  if (phase_ == Phase::kDone || phase_ == Phase::kClosing) return;
  Audit(v1::AUDIT_KIND_AUTH, "closed", "token_expired",
        absl::StrCat("token of subject ", subject_.sub, " expired at ", absl::FormatTime(token_expires_)));
  CloseAtBoundary("57P01", "interlock: terminating connection: the session's token expired", "token_expired");
  Pump();
}

bool PgSession::RecheckToken() {
  if (!ctx_.postgres->token_expiry_recheck || !subject_.has_token) return true;
  if (env_.clock->Now() < token_expires_) return true;
  // A rotated bound token file brings a fresh token; a password-field token cannot renew.
  if (ctx_.bound_token) {
    auto bound = ctx_.bound_token();
    if (bound.ok() && bound->has_value()) {
      auth::TokenContext tctx{ctx_.identity.workload(), ctx_.identity.cgroup_id(), ctx_.identity.cgroup_path()};
      auto claims = ctx_.token_verifier->Verify(**bound, tctx);
      if (claims.ok() && claims->expires_at > env_.clock->Now()) {
        Audit(v1::AUDIT_KIND_AUTH, "allowed", "token_renewed",
              absl::StrCat("rotated token of subject ", claims->subject, " (sha256 ",
                           claims->token_sha256.substr(0, 12), "...)"));
        return AcceptToken(**bound, "bound_token");
      }
    }
  }
  Audit(v1::AUDIT_KIND_AUTH, "closed", "token_expired",
        absl::StrCat("token of subject ", subject_.sub, " expired at ", absl::FormatTime(token_expires_),
                     "; no valid replacement"));
  CloseAtBoundary("57P01", "interlock: terminating connection: the session's token expired", "token_expired");
  return false;
}

}  // namespace interlock::proxy::pg
