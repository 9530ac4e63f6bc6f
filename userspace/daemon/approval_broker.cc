#include "userspace/daemon/approval_broker.h"

#include <openssl/rand.h>

#include <array>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "userspace/approval/postgres_store.h"
#include "userspace/approval/slack_message.h"
#include "userspace/approval/sqlite_store.h"
#include "userspace/auth/secret.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"

namespace interlock::daemon {

absl::Status CheckApprover(const v1::Approver& approver, const v1::WorkloadIdentity& requester,
                           bool allow_same_uid) {
  const std::string& rc = requester.cgroup_path();
  if (!rc.empty() && (approver.cgroup_path() == rc || absl::StartsWith(approver.cgroup_path(), rc + "/"))) {
    return absl::PermissionDeniedError(
        absl::StrCat("approver runs inside the requesting workload's cgroup ", rc, ": an agent cannot approve itself"));
  }
  if (approver.cgroup_id() != 0 && approver.cgroup_id() == requester.cgroup_id()) {
    return absl::PermissionDeniedError("approver runs in the requesting workload's cgroup: an agent cannot approve itself");
  }
  if (!allow_same_uid && approver.uid() == requester.uid()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "approver uid ", approver.uid(), " is the requester's uid: another user must decide (approvals.allow_same_uid)"));
  }
  return absl::OkStatus();
}

absl::Status CheckGranter(const v1::Approver& by, absl::string_view workload, const GrantSubject& subject,
                          bool allow_same_uid) {
  for (const std::string& cg : subject.cgroup_paths) {
    if (!cg.empty() && (by.cgroup_path() == cg || absl::StartsWith(by.cgroup_path(), cg + "/"))) {
      return absl::PermissionDeniedError(absl::StrCat("operator runs inside workload ", workload, "'s cgroup ", cg,
                                                      ": a workload cannot grant itself access"));
    }
  }
  if (!allow_same_uid && subject.uids.count(by.uid()) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "operator uid ", by.uid(), " is a uid workload ", workload,
        " runs as: another user must grant it access (approvals.allow_same_uid)"));
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<std::unique_ptr<approval::ApprovalStore>> OpenStore(const ApprovalBrokerOptions& o,
                                                                    net::EventLoop* loop) {
  if (o.approvals.store_url.empty()) {
    INTERLOCK_ASSIGN_OR_RETURN(auto s, approval::SqliteApprovalStore::Open(o.db_path));
    return std::unique_ptr<approval::ApprovalStore>(std::move(s));
  }
  approval::PostgresStoreOptions p;
  p.url = o.approvals.store_url;
  if (!o.approvals.store_password_ref.empty()) {
    INTERLOCK_ASSIGN_OR_RETURN(auth::Secret pw, auth::ResolveCredentialRef(o.approvals.store_password_ref));
    p.password = std::string(absl::StripTrailingAsciiWhitespace(pw.reveal()));
  }
  p.timeout = absl::Milliseconds(o.approvals.store_timeout_ms);
  INTERLOCK_ASSIGN_OR_RETURN(auto s, approval::PostgresApprovalStore::Open(std::move(p), loop));
  return std::unique_ptr<approval::ApprovalStore>(std::move(s));
}

const char* OutcomeOf(v1::ApprovalState state) {
  return state == v1::APPROVAL_STATE_APPROVED    ? "approved"
         : state == v1::APPROVAL_STATE_DENIED    ? "denied"
         : state == v1::APPROVAL_STATE_TIMED_OUT ? "timed_out"
                                                 : "expired";
}

}  // namespace

absl::StatusOr<std::unique_ptr<ApprovalBroker>> ApprovalBroker::Create(ApprovalBrokerOptions options,
                                                                       net::EventLoop* loop,
                                                                       audit::AuditLog* audit,
                                                                       const Clock* clock) {
  INTERLOCK_ASSIGN_OR_RETURN(auto store, OpenStore(options, loop));
  return Create(std::move(options), std::move(store), loop, audit, clock);
}

absl::StatusOr<std::unique_ptr<ApprovalBroker>> ApprovalBroker::Create(ApprovalBrokerOptions options,
                                                                       std::unique_ptr<approval::ApprovalStore> store,
                                                                       net::EventLoop* loop,
                                                                       audit::AuditLog* audit,
                                                                       const Clock* clock) {
  std::unique_ptr<ApprovalBroker> b(new ApprovalBroker(std::move(options), loop, audit, clock, std::move(store)));
  // Held connections did not survive the restart: their requests expire, never approve.
  // A shared store that cannot be reached now is caught up with when it answers.
  absl::Status expired = b->ExpireStale(/*startup=*/true);
  if (!expired.ok()) {
    if (!b->store_->shared()) return expired;
    INTERLOCK_LOG(kWarning, "approvals: cannot expire this host's old requests yet: %s", expired.message());
  }
  if (b->store_->shared()) {
    b->store_->OnChange([raw = b.get()](const approval::StoreChange& c) { raw->OnStoreChange(c); });
  }
  const config::ApprovalsConfig& ac = b->options_.approvals;
  if (!ac.webhook_url.empty()) {
    approval::WebhookOptions w;
    w.url = ac.webhook_url;
    w.ca_file = ac.webhook_ca_file;
    if (!ac.webhook_header_ref.empty()) {
      INTERLOCK_ASSIGN_OR_RETURN(auth::Secret header, auth::ResolveCredentialRef(ac.webhook_header_ref));
      w.extra_header = std::string(absl::StripAsciiWhitespace(header.reveal()));
    }
    if (!ac.webhook_signing_key_ref.empty()) {
      INTERLOCK_ASSIGN_OR_RETURN(auth::Secret key, auth::ResolveCredentialRef(ac.webhook_signing_key_ref));
      w.signing_key = std::string(absl::StripAsciiWhitespace(key.reveal()));
    }
    w.on_result = [](const approval::WebhookResult& r) {
      // Worker thread: only the (thread-safe) log.
      if (r.ok) {
        INTERLOCK_LOG(kInfo, "approvals: webhook delivered %s (%d attempt(s))", r.idempotency_key, r.attempts);
      } else {
        INTERLOCK_LOG(kWarning, "approvals: webhook for %s failed after %d attempt(s): %s", r.idempotency_key,
                      r.attempts, r.error);
      }
    };
    INTERLOCK_ASSIGN_OR_RETURN(b->webhook_, approval::WebhookNotifier::Create(std::move(w)));
  }
  auto grants = b->store_->ListGrants(/*active_only=*/true, b->NowUs());
  if (!grants.ok() && !b->store_->shared()) return grants.status();
  if (grants.ok()) {
    for (const v1::Grant& g : *grants) b->ArmGrantTimer(g);
  }
  return b;
}

bool ApprovalBroker::Ours(const v1::ApprovalRequest& r) const {
  return !store_->shared() || r.host().empty() || r.host() == options_.host;
}

std::string ApprovalBroker::DescribeStore() const {
  if (const auto* pg = dynamic_cast<const approval::PostgresApprovalStore*>(store_.get())) {
    return absl::StrCat("postgres, ", pg->Describe());
  }
  return absl::StrCat("sqlite, ", options_.db_path);
}

absl::Status ApprovalBroker::ExpireStale(bool startup) {
  // Requests this host holds in the store but not here: their connections are gone.
  INTERLOCK_ASSIGN_OR_RETURN(auto pending, store_->ListRequests(/*pending_only=*/true, 100000));
  int expired = 0;
  for (const v1::ApprovalRequest& r : pending) {
    if (!Ours(r) || pending_.contains(r.id())) continue;
    auto done = store_->Resolve(r.id(), v1::APPROVAL_STATE_EXPIRED, v1::Approver(),
                                startup ? "interlockd restarted" : "no held connection", NowUs(), 0);
    if (done.ok()) {
      ++expired;
      AuditApproval(*done, "expired");
    } else if (!absl::IsFailedPrecondition(done.status())) {
      return done.status();
    }
  }
  if (expired > 0) INTERLOCK_LOG(kInfo, "approvals: %d pending request(s) from before the restart expired", expired);
  stale_expired_ = true;
  return absl::OkStatus();
}

void ApprovalBroker::OnStoreChange(const approval::StoreChange& c) {
  using Kind = approval::StoreChange::Kind;
  switch (c.kind) {
    case Kind::kRequest: {
      if (!pending_.contains(c.id)) return;
      auto r = store_->GetRequest(c.id);
      if (r.ok() && r->state() != v1::APPROVAL_STATE_PENDING) Release(*r);
      return;
    }
    case Kind::kGrant: {
      auto g = store_->GetGrant(c.id);
      if (g.ok()) SyncGrant(*g);
      return;
    }
    case Kind::kReconnected: {
      // Whatever was announced while the connection was down was not heard: re-read.
      // This host's requests with no live hold here (from before a restart, or ended
      // while the store could not record it) expire.
      absl::Status st = ExpireStale(/*startup=*/!stale_expired_);
      if (!st.ok()) INTERLOCK_LOG(kWarning, "approvals: cannot expire old requests: %s", st.message());
      std::vector<std::string> held;
      for (const auto& [id, p] : pending_) held.push_back(id);
      for (const std::string& id : held) {
        auto r = store_->GetRequest(id);
        if (r.ok() && r->state() != v1::APPROVAL_STATE_PENDING) Release(*r);
      }
      auto active = store_->ListGrants(/*active_only=*/true, NowUs());
      if (active.ok()) {
        absl::flat_hash_set<std::string> live;
        for (const v1::Grant& g : *active) {
          live.insert(g.id());
          SyncGrant(g);
        }
        std::vector<std::string> gone;
        for (const auto& [id, t] : grant_timers_) {
          if (!live.contains(id)) gone.push_back(id);
        }
        for (const std::string& id : gone) {
          auto g = store_->GetGrant(id);
          if (g.ok()) SyncGrant(*g);
        }
      }
      return;
    }
  }
}

void ApprovalBroker::SyncGrant(const v1::Grant& g) {
  auto timer = grant_timers_.find(g.id());
  if (g.revoked_us() != 0) {
    // Revoked on another host (which audited it): end what relies on it here.
    if (timer == grant_timers_.end()) return;
    loop_->Cancel(timer->second);
    grant_timers_.erase(timer);
    if (grant_ended_) grant_ended_(g, absl::StrCat("grant ", g.id(), " was revoked"));
    return;
  }
  if (timer == grant_timers_.end() && g.expires_us() > NowUs()) ArmGrantTimer(g);
}

void ApprovalBroker::Release(const v1::ApprovalRequest& r) {
  auto it = pending_.find(r.id());
  if (it == pending_.end()) return;
  if (it->second.timer != 0) loop_->Cancel(it->second.timer);
  ResolvedFn fn = std::move(it->second.on_resolved);
  pending_.erase(it);
  AuditApproval(r, OutcomeOf(r.state()));
  if (fn) loop_->RunAfter(absl::ZeroDuration(), [fn, r] { fn(r); });
}

ApprovalBroker::ApprovalBroker(ApprovalBrokerOptions options, net::EventLoop* loop, audit::AuditLog* audit,
                               const Clock* clock, std::unique_ptr<approval::ApprovalStore> store)
    : options_(std::move(options)), loop_(loop), audit_(audit), clock_(clock), store_(std::move(store)) {}

ApprovalBroker::~ApprovalBroker() {
  for (auto& [id, p] : pending_) {
    if (p.timer != 0) loop_->Cancel(p.timer);
  }
  for (auto& [id, t] : grant_timers_) loop_->Cancel(t);
  if (webhook_ != nullptr) webhook_->Shutdown(absl::Seconds(2));
}

int64_t ApprovalBroker::NowUs() const { return absl::ToUnixMicros(clock_->Now()); }

std::string ApprovalBroker::NewId(absl::string_view prefix) const {
  std::array<unsigned char, 8> r{};
  if (RAND_bytes(r.data(), r.size()) != 1) {
    // Without randomness, fall back to time; ids only need to be unique.
    int64_t t = NowUs();
    std::memcpy(r.data(), &t, sizeof t);
  }
  return absl::StrCat(prefix, absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(r.data()), r.size())));
}

namespace {

// `r` as events and notifications show it: audit_statement in place of the statement.
v1::ApprovalRequest ForAudit(const v1::ApprovalRequest& r) {
  v1::ApprovalRequest out = r;
  if (!out.audit_statement().empty()) out.set_statement(out.audit_statement());
  out.clear_audit_statement();
  out.clear_parameters();
  return out;
}

}  // namespace

void ApprovalBroker::AuditApproval(const v1::ApprovalRequest& r, const std::string& outcome,
                                   const std::string& detail) {
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_APPROVAL);
  ev.set_session_id(r.session_id());
  *ev.mutable_identity() = r.requester();
  ev.set_resource(r.resource());
  ev.set_protocol(r.protocol().empty() ? "postgres" : r.protocol());
  ev.set_outcome(outcome);
  ev.set_reason(r.rule_id());
  ev.set_detail(!detail.empty() ? detail : r.decision_reason().empty() ? r.reason() : r.decision_reason());
  *ev.mutable_approval() = ForAudit(r);
  (void)audit_->Emit(std::move(ev));
}

void ApprovalBroker::AuditGrant(const v1::Grant& g, const std::string& outcome, const std::string& detail) {
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_GRANT);
  ev.mutable_identity()->set_workload(g.workload());
  ev.set_resource(g.resource());
  ev.set_outcome(outcome);
  ev.set_reason(g.id());
  ev.set_detail(detail);
  *ev.mutable_grant() = g;
  (void)audit_->Emit(std::move(ev));
}

void ApprovalBroker::Notify(const v1::ApprovalRequest& r) {
  if (webhook_ == nullptr) return;
  v1::ApprovalNotification n;
  n.set_event("approval.requested");
  *n.mutable_request() = ForAudit(r);
  n.set_host(options_.host);
  n.set_approve_command(absl::StrCat("interlock approve ", r.id(), " --reason '...'"));
  n.set_deny_command(absl::StrCat("interlock deny ", r.id(), " --reason '...'"));
  std::string body;
  if (options_.approvals.webhook_format == config::WebhookFormat::kSlack) {
    body = approval::SlackApprovalMessage(n);
  } else {
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(n, &body, o).ok()) return;
  }
  absl::Status st = webhook_->Enqueue(std::move(body), r.id());
  if (!st.ok()) INTERLOCK_LOG(kWarning, "approvals: webhook for %s not queued: %s", r.id(), st.message());
}

absl::StatusOr<v1::ApprovalRequest> ApprovalBroker::Submit(v1::ApprovalRequest request, absl::Duration timeout,
                                                           ResolvedFn on_resolved) {
  int64_t now = NowUs();
  request.set_id(NewId("apr-"));
  request.set_host(options_.host);
  request.set_created_us(now);
  request.set_deadline_us(now + absl::ToInt64Microseconds(timeout));
  // An approval window for the same statement shape lets it through at once (recorded).
  INTERLOCK_ASSIGN_OR_RETURN(bool window, store_->WindowAllows(request.requester().workload(), request.resource(),
                                                               request.fingerprint(), now));
  if (window) {
    request.set_state(v1::APPROVAL_STATE_APPROVED);
    request.set_decided_us(now);
    request.set_decision_reason("approval window for this statement fingerprint");
    INTERLOCK_RETURN_IF_ERROR(store_->InsertRequest(request));
    AuditApproval(request, "approved_by_window");
    return request;
  }
  request.set_state(v1::APPROVAL_STATE_PENDING);
  INTERLOCK_RETURN_IF_ERROR(store_->InsertRequest(request));
  Pending p;
  p.on_resolved = std::move(on_resolved);
  p.request = request;
  std::string id = request.id();
  p.timer = loop_->RunAfter(timeout, [this, id] {
    auto it = pending_.find(id);
    if (it != pending_.end()) it->second.timer = 0;
    Finish(id, v1::APPROVAL_STATE_TIMED_OUT, v1::Approver(), "no decision before the deadline", 0);
  });
  pending_[id] = std::move(p);
  AuditApproval(request, "requested");
  Notify(request);
  return request;
}

void ApprovalBroker::Finish(const std::string& id, v1::ApprovalState state, const v1::Approver& who,
                            const std::string& reason, int64_t window_until_us) {
  auto r = store_->Resolve(id, state, who, reason, NowUs(), window_until_us);
  if (absl::IsFailedPrecondition(r.status()) && pending_.contains(id)) {
    // Decided first elsewhere (an approver on another host sharing the store): that
    // decision stands, and is what the held session hears.
    auto now = store_->GetRequest(id);
    if (now.ok() && now->state() != v1::APPROVAL_STATE_PENDING) {
      Release(*now);
      return;
    }
  }
  auto it = pending_.find(id);
  ResolvedFn fn;
  v1::ApprovalRequest held;
  if (it != pending_.end()) {
    if (it->second.timer != 0) loop_->Cancel(it->second.timer);
    fn = std::move(it->second.on_resolved);
    held = std::move(it->second.request);
    pending_.erase(it);
  }
  if (!r.ok()) {
    INTERLOCK_LOG(kError, "approvals: cannot record decision for %s: %s", id, r.status().message());
    if (!held.id().empty()) {
      // Audited all the same, as what the session gets: an approval that could not be
      // recorded is a denial. The stored request stays pending until the store answers,
      // when it is expired (ExpireStale), never approved.
      v1::ApprovalState told = state == v1::APPROVAL_STATE_APPROVED ? v1::APPROVAL_STATE_DENIED : state;
      held.set_state(told);
      *held.mutable_approver() = who;
      held.set_decided_us(NowUs());
      held.set_decision_reason(absl::StrCat(reason, " (not recorded: ", r.status().message(), ")"));
      AuditApproval(held, OutcomeOf(told));
    }
    // Fail closed: the session hears a denial even when the store failed.
    if (fn) {
      v1::ApprovalRequest denied;
      denied.set_id(id);
      denied.set_state(v1::APPROVAL_STATE_DENIED);
      denied.set_decision_reason("the decision could not be recorded");
      loop_->RunAfter(absl::ZeroDuration(), [fn, denied] { fn(denied); });
    }
    return;
  }
  AuditApproval(*r, OutcomeOf(state));
  // Tell the session on a fresh loop turn: the caller may be inside its own handler.
  if (fn) {
    v1::ApprovalRequest done = *r;
    loop_->RunAfter(absl::ZeroDuration(), [fn, done] { fn(done); });
  }
}

void ApprovalBroker::Abandon(const std::string& id, const std::string& why) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  it->second.on_resolved = nullptr;
  Finish(id, v1::APPROVAL_STATE_EXPIRED, v1::Approver(), why, 0);
}

absl::StatusOr<v1::ApprovalRequest> ApprovalBroker::Decide(const std::string& id, bool approve,
                                                           const v1::Approver& caller, const std::string& reason,
                                                           absl::Duration window) {
  v1::Approver approver = caller;
  approver.set_host(options_.host);
  INTERLOCK_ASSIGN_OR_RETURN(v1::ApprovalRequest r, store_->GetRequest(id));
  if (r.state() != v1::APPROVAL_STATE_PENDING) {
    return absl::FailedPreconditionError(absl::StrCat(
        id, " is already ", absl::AsciiStrToLower(absl::StripPrefix(v1::ApprovalState_Name(r.state()), "APPROVAL_STATE_"))));
  }
  absl::Status who = CheckApprover(approver, r.requester(), options_.approvals.allow_same_uid);
  if (!who.ok()) {
    v1::ApprovalRequest refused = r;
    *refused.mutable_approver() = approver;
    refused.set_decision_reason(std::string(who.message()));
    AuditApproval(refused, "approver_refused");
    return who;
  }
  if (!approve && reason.empty()) return absl::InvalidArgumentError("a denial needs --reason");
  if (window < absl::ZeroDuration() || window > absl::Seconds(options_.approvals.max_window_s)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--for is limited to ", options_.approvals.max_window_s, " seconds (approvals.max_window_s)"));
  }
  if (!approve && window > absl::ZeroDuration()) return absl::InvalidArgumentError("--for only applies to approve");
  const v1::ApprovalState state = approve ? v1::APPROVAL_STATE_APPROVED : v1::APPROVAL_STATE_DENIED;
  if (!Ours(r)) {
    // Another instance holds the connection: decide in the shared store; it hears of the
    // decision (NOTIFY) and releases or refuses the operation itself.
    if (NowUs() >= r.deadline_us()) {
      return absl::FailedPreconditionError(
          absl::StrCat(id, " is past its deadline: ", r.host(), " times it out, it cannot be decided any more"));
    }
    int64_t until = window > absl::ZeroDuration() ? NowUs() + absl::ToInt64Microseconds(window) : 0;
    INTERLOCK_ASSIGN_OR_RETURN(v1::ApprovalRequest done,
                               store_->Resolve(id, state, approver, reason, NowUs(), until));
    AuditApproval(done, OutcomeOf(state),
                  absl::StrCat("decided on ", options_.host, " for the operation held by ", r.host(), ": ", reason));
    return done;
  }
  if (!pending_.contains(id)) {
    // Stored as pending but no live hold (cannot happen after start-up expiry): expire it.
    Finish(id, v1::APPROVAL_STATE_EXPIRED, approver, "no held connection", 0);
    return absl::FailedPreconditionError(absl::StrCat(id, " has no held connection any more"));
  }
  int64_t until = window > absl::ZeroDuration() ? NowUs() + absl::ToInt64Microseconds(window) : 0;
  Finish(id, state, approver, reason, until);
  return store_->GetRequest(id);
}

absl::StatusOr<std::vector<v1::ApprovalRequest>> ApprovalBroker::List(bool all, int limit) {
  return store_->ListRequests(!all, limit > 0 ? limit : 100);
}

std::optional<v1::Grant> ApprovalBroker::ActiveGrant(absl::string_view workload, absl::string_view resource) {
  auto g = store_->ActiveGrant(workload, resource, NowUs());
  if (!g.ok()) {
    INTERLOCK_LOG(kError, "approvals: grant lookup failed: %s", g.status().message());
    return std::nullopt;  // fail closed
  }
  return *g;
}

void ApprovalBroker::ArmGrantTimer(const v1::Grant& g) {
  absl::Duration left = absl::Microseconds(g.expires_us() - NowUs());
  if (left < absl::ZeroDuration()) left = absl::ZeroDuration();
  std::string id = g.id();
  grant_timers_[id] = loop_->RunAfter(left, [this, id] {
    grant_timers_.erase(id);
    auto g = store_->GetGrant(id);
    if (!g.ok() || g->revoked_us() != 0) return;
    // Every host sharing the store ends its sessions; the host the grant was made on audits it.
    if (!store_->shared() || g->granted_by().host().empty() || g->granted_by().host() == options_.host) {
      AuditGrant(*g, "expired", absl::StrCat("grant ", id, " for ", g->workload(), " on ", g->resource(), " expired"));
    }
    if (grant_ended_) grant_ended_(*g, absl::StrCat("grant ", id, " expired"));
  });
}

absl::StatusOr<v1::Grant> ApprovalBroker::CreateGrant(const std::string& workload, const std::string& resource,
                                                      absl::Duration duration, const std::string& reason,
                                                      const v1::Approver& caller, const GrantSubject& subject) {
  v1::Approver by = caller;
  by.set_host(options_.host);
  if (workload.empty() || resource.empty()) return absl::InvalidArgumentError("--workload and --resource are required");
  if (reason.empty()) return absl::InvalidArgumentError("a grant needs --reason");
  if (duration <= absl::ZeroDuration() || duration > options_.max_grant) {
    return absl::InvalidArgumentError(
        absl::StrCat("--for must be between 1s and ", absl::FormatDuration(options_.max_grant)));
  }
  v1::Grant g;
  g.set_workload(workload);
  g.set_resource(resource);
  g.set_created_us(NowUs());
  g.set_expires_us(g.created_us() + absl::ToInt64Microseconds(duration));
  g.set_reason(reason);
  *g.mutable_granted_by() = by;
  if (absl::Status who = CheckGranter(by, workload, subject, options_.approvals.allow_same_uid); !who.ok()) {
    // Audited with the operator's identity, never stored: there is no grant.
    AuditGrant(g, "granter_refused", std::string(who.message()));
    return who;
  }
  g.set_id(NewId("grt-"));
  INTERLOCK_RETURN_IF_ERROR(store_->InsertGrant(g));
  AuditGrant(g, "granted", reason);
  ArmGrantTimer(g);
  return g;
}

absl::StatusOr<std::vector<v1::Grant>> ApprovalBroker::ListGrants(bool all) {
  return store_->ListGrants(!all, NowUs());
}

absl::StatusOr<v1::Grant> ApprovalBroker::RevokeGrant(const std::string& id, const v1::Approver& caller) {
  v1::Approver by = caller;
  by.set_host(options_.host);
  INTERLOCK_ASSIGN_OR_RETURN(v1::Grant g, store_->Revoke(id, by, NowUs()));
  if (auto it = grant_timers_.find(id); it != grant_timers_.end()) {
    loop_->Cancel(it->second);
    grant_timers_.erase(it);
  }
  AuditGrant(g, "revoked", absl::StrCat("revoked by uid ", by.uid()));
  if (grant_ended_) grant_ended_(g, absl::StrCat("grant ", id, " was revoked"));
  return g;
}

}  // namespace interlock::daemon
