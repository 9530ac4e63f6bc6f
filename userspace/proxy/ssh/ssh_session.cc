#include "userspace/proxy/ssh/ssh_session.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/sha256.h"
#include "userspace/common/utf8.h"
#include "userspace/policy/evaluator.h"
#include "userspace/policy/operation.h"
#include "userspace/proxy/core/mask_floor.h"
#include "userspace/proxy/core/token_identity.h"
#include "userspace/proxy/ssh/ssh_worker.h"

namespace interlock::proxy::ssh {

void SshShared::Wake() const {
  const uint64_t one = 1;
  (void)!::write(wake.get(), &one, sizeof one);
}

absl::StatusOr<std::unique_ptr<SshSession>> SshSession::Start(const ProtocolEnv& env, UniqueFd agent,
                                                               SshSessionContext ctx,
                                                               std::unique_ptr<record::Recorder> recorder,
                                                               DoneFn done) {
  std::unique_ptr<SshSession> s(new SshSession(env, std::move(ctx), std::move(done)));
  s->shared_ = std::make_shared<SshShared>();
  s->shared_->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->shared_->wake.valid()) return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  s->recorder_ = std::move(recorder);
  // The worker thread queues records at any time: the session stays on the engine's flush
  // list for good (FlushRecording marks it again), so every batch moves what was queued.
  s->MarkForFlush();
  s->shared_->agent_fd = agent.get();
  s->shared_->last_activity_ns = absl::ToInt64Nanoseconds(env.clock->Monotonic());
  s->worker_ = std::make_unique<SshWorker>(s->ctx_, s->shared_, s.get(), std::move(agent), env.clock);
  SshWorker* worker = s->worker_.get();
  s->thread_ = std::thread([worker] { worker->Run(); });
  return s;
}

SshSession::SshSession(const ProtocolEnv& env, SshSessionContext ctx, DoneFn done)
    : env_(env), ctx_(std::move(ctx)), done_fn_(std::move(done)), identity_(ctx_.identity) {
  subject_.workload = identity_.workload();
  subject_.cgroup_path = identity_.cgroup_path();
  subject_.uid = identity_.uid();
}

TokenCheck SshSession::CheckAgentToken(std::optional<std::string> password) {
  auto answer = std::make_shared<std::promise<TokenCheck>>();
  std::future<TokenCheck> future = answer->get_future();
  OnLoop([answer, password = std::move(password)](SshSession& s) { answer->set_value(s.VerifyToken(password)); });
  // Never wait past an abort: the loop may be the one tearing this session down.
  while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (shared_->abort) return TokenCheck{TokenCheck::Result::kAborted, ""};
  }
  return future.get();
}

TokenCheck SshSession::VerifyToken(const std::optional<std::string>& password) {
  if (ctx_.token_verifier == nullptr) return {};
  std::optional<std::string> token;
  std::string source = "password";
  if (password.has_value() && !password->empty()) {
    token = *password;
  } else if (ctx_.bound_token) {
    auto bound = ctx_.bound_token();
    if (bound.ok() && bound->has_value()) {
      token = **bound;
      source = "bound_token";
    }
  }
  if (!token.has_value()) return {};
  auth::TokenContext tctx{identity_.workload(), identity_.cgroup_id(), identity_.cgroup_path()};
  auto claims = ctx_.token_verifier->Verify(*token, tctx);
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_AUTH);
  ev.mutable_ssh()->set_request("userauth");
  if (!claims.ok()) {
    ev.set_outcome("denied");
    ev.set_reason("agent_token_invalid");
    ev.set_detail(absl::StrCat(source, ": ", claims.status().message()));
    Emit(std::move(ev));
    return TokenCheck{TokenCheck::Result::kInvalid,
                      absl::StrCat("the token is not valid (", claims.status().message(), ")")};
  }
  ApplyToken(&*claims, &subject_, &identity_);
  ev.set_outcome("allowed");
  ev.set_reason("agent_token");
  ev.set_detail(absl::StrCat(source, ": token of ", claims->issuer, " for ", claims->subject));
  Emit(std::move(ev));
  return TokenCheck{TokenCheck::Result::kValid, ""};
}

SshSession::~SshSession() {
  *alive_ = false;
  if (thread_.joinable()) {
    Abort("drain", "interlockd is stopping");
    thread_.join();
  }
  for (const auto& [channel, id] : pending_approvals_) env_.approvals->Abandon(id, "connection ended");
}

void SshSession::Abort(const std::string& outcome, const std::string& detail) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  if (shared_->abort) return;
  shared_->abort = true;
  shared_->abort_outcome = outcome;
  shared_->abort_detail = detail;
  // The worker may be inside a blocking libssh call: end it. In the relay loop it blocks
  // only on the upstream (a request being started), and tells the agent why itself.
  if (shared_->agent_fd >= 0 && !shared_->relaying) ::shutdown(shared_->agent_fd, SHUT_RDWR);
  if (shared_->upstream_fd >= 0) ::shutdown(shared_->upstream_fd, SHUT_RDWR);
  shared_->Wake();
  shared_->written.notify_all();
}

absl::Status SshSession::FlushRecording() {
  std::vector<v1::SshEvent> records;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    records.swap(shared_->records);
    shared_->queued_bytes = 0;
    shared_->flush_posted = false;
  }
  shared_->written.notify_all();
  if (recorder_ == nullptr || recorder_->closed()) return absl::OkStatus();
  MarkForFlush();  // the next batch again (Start)
  for (const v1::SshEvent& e : records) {
    absl::Status st = recorder_->AppendSsh(e);
    if (!st.ok()) return st;
  }
  return recorder_->Flush();
}

bool SshSession::QueueRecord(v1::SshEvent event) {
  std::unique_lock<std::mutex> lock(shared_->mu);
  shared_->queued_bytes += event.has_data() ? event.data().payload().size() : 64;
  shared_->records.push_back(std::move(event));
  if (shared_->queued_bytes <= kMaxQueuedRecordBytes) return true;
  if (!shared_->flush_posted) {
    shared_->flush_posted = true;
    OnLoop([](SshSession& s) {
      // A failed write ends the session as the engine's own flush would.
      if (absl::Status st = s.FlushRecording(); !st.ok()) s.Abort("recording_failed", std::string(st.message()));
    });
  }
  shared_->written.wait(lock, [&] { return shared_->queued_bytes <= kMaxQueuedRecordBytes || shared_->abort; });
  return !shared_->abort;
}

const RelayStats& SshSession::stats() const {
  stats_.bytes_to_upstream = shared_->bytes_to_upstream.load();
  stats_.bytes_to_agent = shared_->bytes_to_agent.load();
  return stats_;
}

absl::Duration SshSession::last_activity() const {
  return absl::Nanoseconds(shared_->last_activity_ns.load());
}

void SshSession::OnLoop(std::function<void(SshSession&)> fn) {
  std::weak_ptr<bool> alive = alive_;
  env_.loop->Post([this, alive, fn = std::move(fn)] {
    if (auto a = alive.lock(); a != nullptr && *a) fn(*this);
  });
}

void SshSession::PostJudge(RequestToJudge request) {
  OnLoop([request = std::move(request)](SshSession& s) { s.Judge(request); });
}

void SshSession::PostAudit(v1::AuditEvent event) {
  OnLoop([event = std::move(event)](SshSession& s) mutable { s.Emit(std::move(event)); });
}

void SshSession::PostFinished(std::string outcome, std::string detail) {
  OnLoop([outcome = std::move(outcome), detail = std::move(detail)](SshSession& s) { s.Finished(outcome, detail); });
}

void SshSession::Emit(v1::AuditEvent event) {
  event.set_session_id(ctx_.session_id);
  *event.mutable_identity() = identity_;
  event.set_resource(ctx_.resource->name);
  *event.mutable_original_destination() = ctx_.original_destination;
  event.set_protocol("ssh");
  (void)env_.audit->Emit(std::move(event));
}

void SshSession::Deliver(Verdict verdict) {
  pending_approvals_.erase(verdict.channel);
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->verdicts.push_back(std::move(verdict));
  }
  shared_->Wake();
}

namespace {

policy::SshRequestFacts FactsFor(const RequestToJudge& r) {
  if (r.type == "exec") return policy::SshExecFacts(r.command, r.pty);
  if (r.type == "shell") return policy::SshShellFacts(r.pty);
  return policy::SshSubsystemFacts(r.command, r.pty);
}

std::string Described(const RequestToJudge& r) {
  if (r.type == "exec") return r.command;
  if (r.type == "shell") return r.pty ? "interactive shell (pty)" : "shell";
  return absl::StrCat("subsystem ", r.command);
}

}  // namespace

void SshSession::Judge(const RequestToJudge& request) {
  Verdict v;
  v.channel = request.channel;
  const std::shared_ptr<const policy::PolicyEvaluator>* p = env_.policy;
  if (p == nullptr || *p == nullptr) {
    // No policy in force: every request is recorded and audited, none is judged.
    v.run = true;
    v.decision = "allow";
    v.policy.set_action("ALLOW");
    v.policy.set_source("no_policy");
    Deliver(std::move(v));
    return;
  }
  // require_grant: every request needs the workload's just-in-time grant (the session then
  // runs under it and ends when it does).
  if ((*p)->ForResource(ctx_.resource->name).require_grant()) {
    std::optional<v1::Grant> grant;
    if (env_.grants != nullptr) grant = env_.grants->ActiveGrant(ctx_.identity.workload(), ctx_.resource->name);
    if (!grant.has_value()) {
      v.decision = "deny";
      v.policy.set_action("DENY");
      v.policy.set_source("no_grant");
      const std::string who = ctx_.identity.workload().empty() ? "<workload>" : ctx_.identity.workload();
      v.message = absl::StrCat("interlock: resource \"", ctx_.resource->name,
                               "\" requires a just-in-time grant; an operator can run: interlock grant --workload ", who,
                               " --resource ", ctx_.resource->name, " --for 15m --reason '...'");
      Deliver(std::move(v));
      return;
    }
    grant_id_ = grant->id();
  }
  const policy::SshRequestFacts facts = FactsFor(request);
  policy::Decision d = (*p)->Evaluate(subject_, ctx_.resource->name, policy::Operation{&facts});
  if (d.action != v1::ACTION_DENY) {
    // Whatever runs passes the masks that apply to it — masked when the resource masks SSH
    // output, else refused (fail closed: output is never shown unmasked instead).
    bool required = false;
    std::string names;
    v.masker = MaskerForDecision(env_.policy, env_.masks, subject_, ctx_.resource->name, d, &required, &names);
    const char* refusal = nullptr;
    if (required && !ctx_.resource->ssh->mask_output) {
      refusal = "mask_required";
      v.message = absl::StrCat("interlock: denied: this command's output must be masked (profile \"", names,
                               "\"), and this resource does not mask SSH output (ssh.mask_output)");
    } else if (required && request.type == "subsystem") {
      refusal = "mask_required";
      v.message = absl::StrCat("interlock: denied: output must be masked (profile \"", names, "\"), and ",
                               request.command, " is a binary protocol that cannot be masked");
    } else if (required && v.masker == nullptr) {
      refusal = "mask_unavailable";
      v.message = absl::StrCat("interlock: denied: this command's output must be masked (profile \"", names,
                               "\"), and the profile is not available");
    }
    if (refusal != nullptr) {
      v.masker = nullptr;
      v.decision = "deny";
      v.policy.set_action("DENY");
      v.policy.set_rule_id(d.rule_id);
      v.policy.set_reason(d.reason);
      v.policy.set_source(refusal);
      v.policy.set_mask_profile(names);
      Deliver(std::move(v));
      return;
    }
    if (v.masker != nullptr) d.mask_profile = v.masker->name();
  }
  v.policy.set_action(std::string(policy::ActionName(d.action)));
  v.policy.set_rule_id(d.rule_id);
  v.policy.set_reason(d.reason);
  v.policy.set_source(d.source);
  v.policy.set_mask_profile(d.mask_profile);
  switch (d.action) {
    case v1::ACTION_ALLOW:
    case v1::ACTION_MASK:
      v.run = true;
      v.decision = d.action == v1::ACTION_MASK ? "mask" : "allow";
      break;
    case v1::ACTION_REVIEW:
      Hold(request, v.policy, d.review_timeout, std::move(v.masker));
      return;
    default:
      v.masker = nullptr;
      v.decision = "deny";
      v.message = absl::StrCat("interlock: denied by policy",
                               d.rule_id.empty() ? " (resource default)" : absl::StrCat(" rule ", d.rule_id),
                               d.reason.empty() ? "" : absl::StrCat(": ", d.reason),
                               // A shell line is judged as a whole: say so, or the reason
                               // ("deleting files ...") reads wrong for `ls; id`.
                               facts.kind == policy::SshRequestFacts::Kind::kExec && facts.needs_shell
                                   ? absl::StrCat(" (judged as a shell command: ", facts.shell_reason, ")")
                                   : "");
      break;
  }
  Deliver(std::move(v));
}

void SshSession::Hold(const RequestToJudge& request, const v1::PolicyDecision& decision, absl::Duration timeout,
                      std::shared_ptr<const mask::Masker> masker) {
  Verdict v;
  v.channel = request.channel;
  v.policy = decision;
  v.decision = "denied";
  if (env_.approvals == nullptr) {
    v.message = "interlock: denied: this command needs approval, and no approval service is configured";
    Deliver(std::move(v));
    return;
  }
  v1::ApprovalRequest r;
  r.set_session_id(ctx_.session_id);
  *r.mutable_requester() = identity_;
  r.set_token_subject(subject_.sub);
  r.set_resource(ctx_.resource->name);
  r.set_protocol("ssh");
  r.set_db_user(request.upstream_user);
  // What the approver reads is exactly what will run upstream (bytes that are not UTF-8
  // shown as U+FFFD; the SHA-256 covers the bytes themselves).
  std::string shown = Described(request);
  MakeValidUtf8(shown);
  r.set_statement(shown);
  r.set_audit_statement(shown.substr(0, 4096));
  r.set_statement_sha256(Sha256Hex(absl::StrCat(request.type, "\n", request.command)));
  r.set_fingerprint(absl::StrCat("ssh:", request.type, " ", request.command));
  r.set_rule_id(decision.rule_id());
  r.set_reason(decision.reason());
  r.set_classification(absl::StrCat("ssh ", request.type));
  std::weak_ptr<bool> alive = alive_;
  const uint32_t channel = request.channel;
  auto submitted = env_.approvals->Submit(
      std::move(r), timeout, [this, alive, channel, decision, masker](const v1::ApprovalRequest& done) {
        if (auto a = alive.lock(); a == nullptr || !*a) return;
        Verdict out;
        out.channel = channel;
        out.policy = decision;
        out.policy.set_approval_id(done.id());
        if (done.state() == v1::APPROVAL_STATE_APPROVED) {
          out.run = true;
          out.masker = masker;
          out.decision = "approved";
          out.policy.set_source("approved");
        } else if (done.state() == v1::APPROVAL_STATE_TIMED_OUT) {
          out.decision = "timed_out";
          out.policy.set_source("review_timeout");
          out.message = "interlock: denied: no approver decided in time";
        } else {
          out.decision = "denied";
          out.policy.set_source("review_denied");
          out.message = absl::StrCat("interlock: denied by an approver",
                                     done.decision_reason().empty() ? "" : absl::StrCat(": ", done.decision_reason()));
        }
        Deliver(std::move(out));
      });
  if (!submitted.ok()) {
    v.message = "interlock: denied: this command needs approval, and the approval request could not be stored";
    Deliver(std::move(v));
    return;
  }
  v.policy.set_approval_id(submitted->id());
  if (submitted->state() == v1::APPROVAL_STATE_APPROVED) {
    v.run = true;
    v.masker = std::move(masker);
    v.decision = "approved";
    v.policy.set_source("approval_window");
    Deliver(std::move(v));
    return;
  }
  pending_approvals_[channel] = submitted->id();
  // The agent learns it waits (its stderr), the auditor that it is held.
  Verdict held;
  held.channel = channel;
  held.decision = "review";
  held.policy = v.policy;
  held.message = absl::StrCat("interlock: held for approval (", submitted->id(), "); waiting up to ",
                              absl::ToInt64Seconds(timeout), " s");
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->verdicts.push_back(std::move(held));
  }
  shared_->Wake();
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_POLICY_DECISION);
  ev.set_outcome("held");
  *ev.mutable_decision() = v.policy;
  v1::SshExchange* x = ev.mutable_ssh();
  x->set_request(request.type);
  std::string command = request.command.substr(0, 4096);
  MakeValidUtf8(command);
  x->set_command(command);
  x->set_command_sha256(Sha256Hex(request.command));
  x->set_channel(channel);
  x->set_agent_user(request.agent_user);
  x->set_upstream_user(request.upstream_user);
  Emit(std::move(ev));
}

void SshSession::Finished(const std::string& outcome, const std::string& detail) {
  if (done_) return;
  if (thread_.joinable()) thread_.join();  // the worker's last act was to post this
  for (const auto& [channel, id] : pending_approvals_) env_.approvals->Abandon(id, "connection ended");
  pending_approvals_.clear();
  // What the worker queued last, then the close and the seal.
  absl::Status flushed = FlushRecording();
  if (recorder_ != nullptr && !recorder_->closed()) {
    v1::SessionClose close;
    close.set_outcome(flushed.ok() ? outcome : "recording_failed");
    close.set_detail(flushed.ok() ? detail : std::string(flushed.message()));
    (void)recorder_->Close(close);
  }
  outcome_ = outcome;
  detail_ = detail;
  done_ = true;
  if (done_fn_) done_fn_(this);
}

}  // namespace interlock::proxy::ssh
