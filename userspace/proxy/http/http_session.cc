#include "userspace/proxy/http/http_session.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/codec/http/head.h"
#include "userspace/codec/http/serialize.h"
#include "userspace/codec/http/target.h"
#include "userspace/codec/json/extract.h"
#include "userspace/common/sha256.h"
#include "userspace/proxy/http/credential.h"
#include "userspace/proxy/http/problem.h"
#include "userspace/proxy/http/request_facts.h"
#include "userspace/proxy/http/response_masking.h"

namespace interlock::proxy::http {

namespace chttp = codec::http;

namespace {

absl::string_view VersionText(chttp::Version v) { return v == chttp::Version::kHttp10 ? "HTTP/1.0" : "HTTP/1.1"; }

// The request fields minus those named (lowercase) in `names`.
std::vector<chttp::HeaderField> WithoutNames(const std::vector<chttp::HeaderField>& fields,
                                             const std::vector<std::string>& names, std::vector<std::string>* removed) {
  std::vector<chttp::HeaderField> out;
  out.reserve(fields.size());
  for (const chttp::HeaderField& f : fields) {
    bool drop = false;
    for (const std::string& n : names) drop |= absl::EqualsIgnoreCase(f.name, n);
    if (drop) {
      if (removed != nullptr) removed->push_back(absl::AsciiStrToLower(f.name));
    } else {
      out.push_back(f);
    }
  }
  return out;
}

std::string ContentType(const std::vector<chttp::HeaderField>& fields) {
  auto v = chttp::FindField(fields, "content-type");
  return v.has_value() ? std::string(v->substr(0, 128)) : "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpSession>> HttpSession::Start(const ProtocolEnv& env, UniqueFd agent,
                                                                 HttpSessionContext ctx,
                                                                 std::unique_ptr<record::Recorder> recorder,
                                                                 DoneFn done) {
  if (ctx.resource == nullptr || !ctx.resource->http.has_value()) {
    return absl::InvalidArgumentError("http: no http settings");
  }
  std::unique_ptr<HttpSession> s(
      new HttpSession(env, std::move(agent), std::move(ctx), std::move(recorder), std::move(done)));
  if (s->ctx_.agent_tls != nullptr) {
    auto tls = net::TlsConnection::CreateServer(*s->ctx_.agent_tls, s->agent_.fd(), s->ctx_.fallback_name);
    if (!tls.ok()) return tls.status();
    s->agent_.SetTls(*std::move(tls));
    s->phase_ = Phase::kAgentTls;
  }
  s->UpdateInterest();
  return s;
}

HttpSession::HttpSession(const ProtocolEnv& env, UniqueFd agent, HttpSessionContext ctx,
                         std::unique_ptr<record::Recorder> recorder, DoneFn done)
    : env_(env),
      ctx_(std::move(ctx)),
      http_(*ctx_.resource->http),
      recorder_(std::move(recorder)),
      done_(std::move(done)),
      tokens_(http_, ctx_.token_verifier, ctx_.bound_token, env.clock),
      last_activity_(env.clock->Monotonic()) {
  agent_.Attach(std::move(agent), /*readable=*/true);
  if (env_.memory != nullptr) memory_ = env_.memory->NewLease();
  subject_.workload = ctx_.identity.workload();
  subject_.cgroup_path = ctx_.identity.cgroup_path();
  subject_.uid = ctx_.identity.uid();
}

HttpSession::~HttpSession() {
  if (connect_timer_ != 0) env_.loop->Cancel(connect_timer_);
  if (resume_timer_ != 0) env_.loop->Cancel(resume_timer_);
  *alive_ = false;
}

absl::Duration HttpSession::last_activity() const {
  return phase_ == Phase::kHeld ? env_.clock->Monotonic() : last_activity_;
}

absl::Status HttpSession::FlushRecording() {
  if (!recorder_ || phase_ == Phase::kDone) return absl::OkStatus();
  FlushPendingRecords();
  return recorder_->Flush();
}

void HttpSession::Abort(const std::string& outcome, const std::string& detail) { Finish(outcome, detail, true); }

void HttpSession::Finish(const std::string& outcome, const std::string& detail, bool reset) {
  if (phase_ == Phase::kDone) return;
  if (ex_.has_value()) {
    if (!ex_->approval_id.empty() && phase_ == Phase::kHeld && env_.approvals != nullptr) {
      env_.approvals->Abandon(ex_->approval_id, "the held connection ended before a decision");
      ex_->decision.set_source("withdrawn_by_disconnect");
    }
    EndExchange(phase_ == Phase::kHeld ? "withdrawn" : "incomplete");
  }
  phase_ = Phase::kDone;
  outcome_ = outcome;
  detail_ = detail;
  for (net::EventLoop::TimerId* t : {&connect_timer_, &resume_timer_}) {
    if (*t != 0) {
      env_.loop->Cancel(*t);
      *t = 0;
    }
  }
  upstream_.Close(reset);
  agent_.Close(reset);
  *alive_ = false;
  if (recorder_) {
    FlushPendingRecords();
    v1::SessionClose close;
    close.set_outcome(outcome);
    close.set_detail(detail);
    absl::Status st = recorder_->Close(close);
    if (!st.ok() && detail_.empty()) detail_ = absl::StrCat("recording: ", st.message());
  }
  if (done_) done_(this);
}

// ---------------------------------------------------------------------------------------
// I/O

void HttpSession::OnIo(Side side, uint32_t events) {
  if (phase_ == Phase::kDone) return;
  (side == kAgent ? agent_ : upstream_).NoteEvents(events);
  if (side == kAgent && phase_ == Phase::kAgentTls) {
    StepAgentTls();
  } else if (side == kUpstream && upstream_connecting_) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) OnUpstreamConnected();
  } else if (side == kUpstream && upstream_tls_pending_) {
    StepUpstreamTls();
  }
  Pump();
}

void HttpSession::StepAgentTls() {
  auto step = agent_.tls()->HandshakeStep();
  if (!step.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "agent_tls", std::string(step.status().message()));
    Finish("agent_tls_failed", std::string(step.status().message()), true);
    return;
  }
  if (*step != net::TlsHandshake::kDone) return;
  sni_ = agent_.tls()->RequestedServerName();
  if (recorder_) {
    (void)recorder_->AppendEvent("agent_tls", absl::StrCat(agent_.tls()->Version(), " sni=", sni_.empty() ? "-" : sni_));
  }
  phase_ = Phase::kRequestHead;
}

bool HttpSession::AgentReadAllowed() const {
  if (agent_.eof() || !agent_.attached()) return false;
  // Held: still read, so that an agent that gives up is seen at once (its request is
  // withdrawn); what it pipelines meanwhile waits in the buffer, bounded below.
  if (phase_ != Phase::kRequestHead && phase_ != Phase::kReadBody && phase_ != Phase::kExchange &&
      phase_ != Phase::kHeld) {
    return false;
  }
  if (phase_ == Phase::kExchange && ex_.has_value() && ex_->request_done) return false;  // pipelined: wait
  return upstream_.out().size() < kHighWaterBytes && agent_.in().size() < chttp::kMaxHeadBytes + kHighWaterBytes;
}

bool HttpSession::UpstreamReadAllowed() const {
  if (upstream_.eof() || !upstream_.attached() || upstream_connecting_ || upstream_tls_pending_) return false;
  if (phase_ != Phase::kExchange) return false;
  return agent_.out().size() < kHighWaterBytes && upstream_.in().size() < chttp::kMaxHeadBytes + kHighWaterBytes;
}

bool HttpSession::ReadSide(Side side) {
  StreamSide& s = side == kAgent ? agent_ : upstream_;
  net::IoResult r = s.Read(StreamSide::kReadChunk);
  if (!r.status.ok()) {
    if (side == kAgent) {
      Finish("agent_reset", std::string(r.status.message()), true);
    } else {
      UpstreamFailed("upstream_reset", std::string(r.status.message()));
    }
    return false;
  }
  if (r.eof) return true;
  if (r.bytes == 0) return false;
  if (side == kAgent) RecordFromAgent(s.in().view().substr(s.in().size() - r.bytes));
  last_activity_ = env_.clock->Monotonic();
  if (side == kUpstream) upstream_last_read_ = last_activity_;
  return true;
}

bool HttpSession::FlushSide(Side side) {
  StreamSide& s = side == kAgent ? agent_ : upstream_;
  if (!s.attached() || (side == kAgent && phase_ == Phase::kAgentTls)) return false;
  if (side == kUpstream && (upstream_connecting_ || upstream_tls_pending_)) return false;
  net::IoResult w = s.Flush();
  if (!w.status.ok()) {
    if (side == kAgent) {
      Finish("agent_reset", std::string(w.status.message()), true);
    } else {
      UpstreamFailed("upstream_reset", std::string(w.status.message()));
    }
    return false;
  }
  (side == kAgent ? stats_.bytes_to_agent : stats_.bytes_to_upstream) += w.bytes;
  return w.bytes > 0;
}

void HttpSession::Pump() {
  for (int i = 0; i < 64 && phase_ != Phase::kDone; ++i) {
    bool progress = false;
    progress |= FlushSide(kAgent);
    if (phase_ == Phase::kDone) return;
    progress |= FlushSide(kUpstream);
    if (phase_ == Phase::kDone) return;
    if (AgentReadAllowed() && agent_.readable()) progress |= ReadSide(kAgent);
    if (phase_ == Phase::kDone) return;
    if (UpstreamReadAllowed() && upstream_.readable()) progress |= ReadSide(kUpstream);
    if (phase_ == Phase::kDone) return;
    ChargeMemory();
    if (phase_ == Phase::kDone) return;
    progress |= Advance();
    if (phase_ == Phase::kDone) return;
    if (phase_ == Phase::kClosing && agent_.out().empty()) {
      Finish(outcome_, detail_, false);
      return;
    }
    if (!progress) break;
    if (i == 63 && resume_timer_ == 0) {
      resume_timer_ = env_.loop->RunAfter(absl::ZeroDuration(), [this] {
        resume_timer_ = 0;
        Pump();
      });
    }
  }
  if (phase_ == Phase::kDone) return;
  // The agent left between requests (or mid-head: an incomplete request is never judged).
  if (agent_.eof() && phase_ == Phase::kRequestHead && agent_.out().empty()) {
    Finish(agent_.in().empty() ? "closed" : "agent_closed_mid_request",
           agent_.in().empty() ? "" : absl::StrCat(agent_.in().size(), " bytes of an incomplete request"), false);
    return;
  }
  if (agent_.eof() && (phase_ == Phase::kReadBody || phase_ == Phase::kHeld)) {
    Finish("agent_closed_mid_request", "the agent closed while its request was read or held", false);
    return;
  }
  if (agent_.eof() && phase_ == Phase::kExchange && ex_.has_value() && !ex_->request_done &&
      agent_.in().empty()) {
    Finish("agent_closed_mid_request", "the agent closed before its request body ended", true);
    return;
  }
  FlushPendingRecords();
  UpdateInterest();
}

void HttpSession::UpdateInterest() {
  if (phase_ == Phase::kDone) return;
  // Both sides stay registered for every event, edge-triggered: Pump reads whatever is
  // readable once the exchange allows it and flushes whatever is queued, so the interest
  // never changes with the phase (no epoll_ctl per exchange). A connect in progress is
  // announced by EPOLLOUT, a TLS handshake step by either.
  agent_.WatchEdges();
  if (upstream_.attached()) upstream_.WatchEdges();
}

void HttpSession::ChargeMemory() {
  if (phase_ == Phase::kClosing) return;
  size_t held = agent_.in().capacity() + upstream_.in().capacity() + agent_.out().capacity() +
                upstream_.out().capacity() + pending_from_agent_record_.capacity() +
                pending_to_agent_record_.capacity() + pending_sealed_to_agent_.capacity() + masked_.capacity() +
                agent_frame_.capacity();
  if (ex_.has_value()) {
    held += ex_->held_body.capacity();
    if (ex_->body_masker != nullptr) held += ex_->body_masker->buffer_capacity();
  }
  if (memory_.Set(held)) return;
  const std::string detail = absl::StrCat("session buffers ", held, " bytes; all sessions ", env_.memory->used(),
                                          " of ", env_.memory->limit());
  agent_.in().Clear();
  upstream_.in().Clear();
  upstream_.out().Clear();
  (void)memory_.Set(0);
  Answer(503, "Out of memory", "interlockd's sessions hold all of its memory budget; try again later",
         "memory_budget", "error", /*close=*/true);
}

// ---------------------------------------------------------------------------------------
// The exchange

bool HttpSession::Advance() {
  switch (phase_) {
    case Phase::kRequestHead: return OnRequestHead();
    case Phase::kReadBody: return ReadHeldBody();
    case Phase::kExchange: {
      bool progress = false;
      if (!upstream_connecting_ && !upstream_tls_pending_ && upstream_.attached()) {
        progress |= ForwardRequestBody();
        if (phase_ != Phase::kExchange) return true;
        progress |= RelayResponse();
      }
      return progress;
    }
    default: return false;
  }
}

bool HttpSession::OnRequestHead() {
  if (agent_.in().empty()) return false;
  auto head = chttp::PeekRequest(agent_.in().view());
  if (!head.ok()) {
    const bool too_big = absl::IsResourceExhausted(head.status());
    const bool unsupported = absl::IsUnimplemented(head.status());
    ex_.emplace();
    ex_->started = env_.clock->Monotonic();
    const int status = too_big ? 431 : unsupported ? 501 : 400;
    const std::string reason = too_big ? "head_too_large" : unsupported ? "unsupported" : "bad_request";
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", reason, std::string(head.status().message()));
    Answer(status, too_big ? "Request head too large" : unsupported ? "Not supported" : "Malformed request",
           std::string(head.status().message()), reason, "refused", /*close=*/true);
    return true;
  }
  if (!head->has_value()) return false;
  const chttp::Request& req = **head;
  ex_.emplace();
  Exchange& ex = *ex_;
  ex.started = env_.clock->Monotonic();
  ex.method = std::string(req.method);
  ex.version = req.version;
  ex.request_body = req.framing.body;
  ex.expect_continue = req.framing.expect_continue;
  ex.agent_wants_close = !req.framing.persistent;
  ex.audit.set_method(ex.method);
  ex.audit.set_scheme(ctx_.agent_tls != nullptr ? "https" : "http");
  ex.audit.set_request_content_type(ContentType(req.fields));
  RequestRefusal refusal;
  std::optional<JudgedRequest> judged = JudgeRequest(req, sni_, http_.elide_query_params, &refusal);
  if (!judged.has_value()) {
    ex.audit.set_target(chttp::ElideQueryParams(req.target));
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", refusal.reason, refusal.detail);
    Answer(refusal.status, "Request refused", refusal.detail, refusal.reason, "refused", /*close=*/true);
    return true;
  }
  ex.facts = std::move(judged->facts);
  ex.audit.set_target(judged->audit_target);
  ex.audit.set_host(ex.facts.host);
  ex.audit.set_path(ex.facts.path);
  if (!IdentifyAgent(req)) return true;

  // The head as it will be forwarded: hop-by-hop fields, Expect (interlockd answers 100
  // itself) and every credential the agent sent removed, the resource's injected, the body
  // re-framed by interlockd.
  std::vector<std::string> drop = AgentCredentialFields(http_.credential);
  drop.push_back("expect");
  std::vector<std::string> removed;
  std::vector<chttp::HeaderField> fields = WithoutNames(chttp::RemoveHopByHop(req.fields), drop, &removed);
  std::vector<OwnedField> identity_fields;  // what `fields` views for the identity headers
  if (!SetIdentityHeaders(req, &fields, &identity_fields, &removed)) return true;
  for (const std::string& r : removed) {
    if (r != "expect") ex.audit.add_agent_credentials_removed(r);
  }
  auto injected = ctx_.credential != nullptr ? ctx_.credential->Field() : CredentialField(http_.credential);
  if (!injected.ok()) {
    agent_.in().Consume(req.head_bytes);
    Audit(v1::AUDIT_KIND_AUTH, "error", "credential_unavailable", std::string(injected.status().message()));
    Answer(502, "Upstream credential unavailable", "interlockd could not read the resource's credential",
           "credential_unavailable", "error", /*close=*/req.framing.body.kind != chttp::BodyKind::kNone);
    return true;
  }
  if (injected->has_value()) {
    fields.push_back({(*injected)->name, (*injected)->value.reveal()});
    ex.injects_credential = true;
  }
  std::string length_storage;
  chttp::BodyFraming forwarded = req.framing.body;
  if (forwarded.kind == chttp::BodyKind::kChunked) forwarded = {chttp::BodyKind::kChunked, 0};
  fields = chttp::WithBodyFraming(fields, forwarded, &length_storage);
  // Forwarded as HTTP/1.1 always: interlockd keeps the upstream connection alive itself.
  auto forward = chttp::SerializeRequestHead(req.method, req.target, chttp::Version::kHttp11, fields);
  if (injected->has_value()) {
    // The secret's only copy outside its Secret is in `forward`, wiped with the exchange.
    injected->reset();
  }
  if (!forward.ok()) {
    agent_.in().Consume(req.head_bytes);
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_request", std::string(forward.status().message()));
    Answer(400, "Malformed request", std::string(forward.status().message()), "bad_request", "refused", true);
    return true;
  }
  ex.forward_head = *std::move(forward);
  agent_.in().Consume(req.head_bytes);
  if (ex.request_body.kind == chttp::BodyKind::kLength) ex.request_left = ex.request_body.length;
  if (ex.request_body.kind == chttp::BodyKind::kChunked) ex.request_chunks.emplace();
  ex.request_done = ex.request_body.kind == chttp::BodyKind::kNone;
  Decide();
  return true;
}

std::shared_ptr<const mask::Masker> HttpSession::MaskerFor(const policy::Decision& d, bool* required,
                                                           std::string* names) const {
  std::vector<std::string> list;
  if (d.action == v1::ACTION_MASK) list.push_back(d.mask_profile);
  const std::shared_ptr<const policy::PolicyEvaluator>* p = env_.policy;
  if (p != nullptr && *p != nullptr) {
    // Its rule's profile first (its styles win), then the rest of the floor.
    for (std::string& n : (*p)->MaskProfilesFor(subject_, ctx_.resource->name)) {
      if (list.empty() || n != list.front()) list.push_back(std::move(n));
    }
  }
  *required = !list.empty();
  *names = absl::StrJoin(list, "+");
  if (list.empty() || env_.masks == nullptr) return nullptr;
  return list.size() == 1 ? env_.masks->Profile(list.front()) : env_.masks->Floor(list);
}

bool HttpSession::EditForwardHead(
    const std::function<std::vector<chttp::HeaderField>(const std::vector<chttp::HeaderField>&)>& edit) {
  Exchange& ex = *ex_;
  auto head = chttp::PeekRequest(ex.forward_head);
  if (!head.ok() || !head->has_value()) return false;
  auto edited = chttp::SerializeRequestHead((*head)->method, (*head)->target, (*head)->version, edit((*head)->fields));
  if (!edited.ok()) return false;
  std::fill(ex.forward_head.begin(), ex.forward_head.end(), '\0');  // it may hold the credential
  ex.forward_head = *std::move(edited);
  return true;
}

void HttpSession::Decide() {
  Exchange& ex = *ex_;
  policy::Decision d;
  const std::shared_ptr<const policy::PolicyEvaluator>* p = env_.policy;
  if (p != nullptr && *p != nullptr) {
    // A rule judges body fields: the body is read whole first (bounded), then judged.
    if (ex.request_body.kind != chttp::BodyKind::kNone && !ex.body_judged &&
        !(*p)->JsonPointersFor(subject_, ctx_.resource->name).empty()) {
      if (ex.request_body.kind == chttp::BodyKind::kLength && ex.request_body.length > http_.max_judged_body_bytes) {
        RefuseLargeBody(/*for_hold=*/false);
        return;
      }
      if (ex.expect_continue && !ex.request_done) SendToAgent("HTTP/1.1 100 Continue\r\n\r\n");
      ex.expect_continue = false;
      ex.judge_after_body = true;
      phase_ = Phase::kReadBody;
      ex.held_body.clear();
      if (ex.request_done) JudgeBody();
      return;
    }
    d = (*p)->Evaluate(subject_, ctx_.resource->name, policy::Operation{&ex.facts});
  } else {
    d.action = v1::ACTION_ALLOW;
    d.source = "no_policy";
    d.reason = "no policy configured";
  }
  if (d.action != v1::ACTION_DENY) {
    // Whatever forwards passes the masks that apply: fail closed when one cannot be had.
    bool required = false;
    std::string names;
    ex.masker = MaskerFor(d, &required, &names);
    if (required && ex.masker == nullptr) {
      d.action = v1::ACTION_DENY;
      d.source = "mask_unavailable";
      d.mask_profile = names;
      d.reason = absl::StrCat("responses to this request must be masked (profile \"", names,
                              "\") and the profile is not available");
    } else if (ex.masker != nullptr) {
      d.mask_profile = ex.masker->name();
      std::string storage;
      if (!EditForwardHead([&](const std::vector<chttp::HeaderField>& fields) {
            return MaskableRequestFields(fields, &storage);
          })) {
        Answer(400, "Malformed request", "the request could not be made maskable", "bad_request", "refused", true);
        return;
      }
    }
  }
  ex.decision.set_action(std::string(policy::ActionName(d.action)));
  ex.decision.set_rule_id(d.rule_id);
  ex.decision.set_reason(d.reason);
  ex.decision.set_source(d.source);
  ex.decision.set_mask_profile(d.mask_profile);
  switch (d.action) {
    case v1::ACTION_ALLOW:
    case v1::ACTION_MASK:
      StartForwarding();
      return;
    case v1::ACTION_REVIEW:
      if (ex.body_judged) {  // read whole already
        StartHold(d);
        return;
      }
      if (ex.request_body.kind == chttp::BodyKind::kLength && ex.request_body.length > http_.max_judged_body_bytes) {
        RefuseLargeBody(/*for_hold=*/true);
        return;
      }
      if (ex.expect_continue && !ex.request_done) SendToAgent("HTTP/1.1 100 Continue\r\n\r\n");
      phase_ = Phase::kReadBody;
      ex.held_body.clear();
      if (ex.request_done) StartHold(d);
      else held_decision_ = d;
      return;
    default: {
      const bool body_unread = !ex.request_done;
      Answer(403, "Denied by policy", d.reason.empty() ? "denied by policy" : d.reason,
             d.source == "mask_unavailable" ? "mask_unavailable" : "policy", "denied", body_unread);
      return;
    }
  }
}

HttpSession::BodyPull HttpSession::PullRequestBody(const std::function<void(absl::string_view)>& sink,
                                                   const std::function<bool()>& more) {
  Exchange& ex = *ex_;
  BodyPull pulled = BodyPull::kNothing;
  while (!agent_.in().empty() && !ex.request_done && more()) {
    absl::string_view in = agent_.in().view();
    if (ex.request_body.kind == chttp::BodyKind::kLength) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(ex.request_left, in.size()));
      sink(in.substr(0, n));
      agent_.in().Consume(n);
      ex.request_left -= n;
      ex.request_done = ex.request_left == 0;
    } else {
      auto piece = ex.request_chunks->Decode(in);
      if (!piece.ok()) {
        // Once forwarding started the upstream has part of the body: the connection cannot
        // be reused either way, and the agent is told.
        Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_chunked_body", std::string(piece.status().message()));
        Answer(400, "Malformed request body", std::string(piece.status().message()), "bad_chunked_body", "refused",
               true);
        return BodyPull::kFailed;
      }
      if (piece->consumed == 0) break;
      if (!piece->data.empty()) sink(piece->data);  // a view into the buffer: before Consume
      agent_.in().Consume(piece->consumed);
      ex.request_done = ex.request_chunks->done();
    }
    pulled = BodyPull::kProgress;
  }
  return pulled;
}

bool HttpSession::ReadHeldBody() {
  Exchange& ex = *ex_;
  if (ex.request_done) return false;
  const uint64_t limit = http_.max_judged_body_bytes;
  BodyPull pulled = PullRequestBody([&](absl::string_view data) { ex.held_body.append(data.data(), data.size()); },
                                    [&] { return ex.held_body.size() <= limit; });
  if (pulled == BodyPull::kFailed) return true;
  if (ex.held_body.size() > limit) {
    RefuseLargeBody(/*for_hold=*/!ex.judge_after_body);
    return true;
  }
  if (ex.request_done && ex.judge_after_body) {
    JudgeBody();
  } else if (ex.request_done) {
    StartHold(*held_decision_);
  }
  return pulled == BodyPull::kProgress;
}

void HttpSession::ReframeHeldBody() {
  Exchange& ex = *ex_;
  // A body read whole is forwarded with a Content-Length (re-framed once, here): what was
  // judged, and what an approver saw, is byte for byte what runs.
  if (ex.request_body.kind == chttp::BodyKind::kChunked) {
    std::string storage;
    (void)EditForwardHead([&](const std::vector<chttp::HeaderField>& fields) {
      return chttp::WithBodyFraming(fields, {chttp::BodyKind::kLength, ex.held_body.size()}, &storage);
    });
  }
  ex.request_body = {chttp::BodyKind::kLength, ex.held_body.size()};
  ex.request_chunks.reset();
  ex.audit.set_request_body_bytes(ex.held_body.size());
}

void HttpSession::JudgeBody() {
  Exchange& ex = *ex_;
  ex.judge_after_body = false;
  ex.body_judged = true;
  ReframeHeldBody();
  const std::shared_ptr<const policy::PolicyEvaluator>* p = env_.policy;
  std::vector<std::string> pointers;
  if (p != nullptr && *p != nullptr) pointers = (*p)->JsonPointersFor(subject_, ctx_.resource->name);
  auto fields = codec::json::ExtractJsonFields(ex.held_body, pointers);
  if (fields.ok()) {
    ex.facts.body = policy::HttpRequestFacts::Body::kJudged;
    ex.facts.json_fields = *std::move(fields);
  } else {
    // Not one strict JSON document (or duplicate keys): body conditions fail closed.
    ex.facts.body = policy::HttpRequestFacts::Body::kUnjudgable;
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "noted", "body_unjudgable", std::string(fields.status().message()));
  }
  Decide();
}

void HttpSession::StartHold(const policy::Decision& d) {
  Exchange& ex = *ex_;
  held_decision_.reset();
  ReframeHeldBody();
  if (env_.approvals == nullptr) {
    Answer(403, "Approval unavailable", "the request needs approval, and no approval service is configured",
           "review_unavailable", "denied", false);
    return;
  }
  v1::ApprovalRequest r;
  r.set_session_id(ctx_.session_id);
  *r.mutable_requester() = ctx_.identity;
  r.set_resource(ctx_.resource->name);
  r.set_protocol("http");
  // What the approver reads: the request line with secrets elided, the headers the agent
  // sent (credentials are never among them: removed above) and the body, capped.
  std::string shown = absl::StrCat(ex.method, " ", ex.audit.target(), " ", VersionText(ex.version), "\nHost: ",
                                   ex.facts.host, "\n");
  for (const auto& [name, value] : ex.facts.headers) {
    if (name == "host" || name == "authorization" || name == "proxy-authorization" || name == "cookie") continue;
    absl::StrAppend(&shown, name, ": ", value.substr(0, 256), "\n");
  }
  if (!ex.held_body.empty()) {
    absl::StrAppend(&shown, "\n", ex.held_body.substr(0, 4096), ex.held_body.size() > 4096 ? "\n[...]" : "");
  }
  r.set_statement(shown);
  r.set_audit_statement(absl::StrCat(ex.method, " ", ex.facts.host, ex.audit.target()));
  r.set_statement_sha256(Sha256Hex(absl::StrCat(ex.forward_head, ex.held_body)));
  r.set_fingerprint(absl::StrCat("http:", ex.method, " ", ex.facts.host, ex.facts.path));
  r.set_rule_id(d.rule_id);
  r.set_reason(d.reason);
  r.set_classification(absl::StrCat(ex.method, " ", ex.facts.host, ex.facts.path));
  std::weak_ptr<bool> alive = alive_;
  auto submitted = env_.approvals->Submit(std::move(r), d.review_timeout, [this, alive](const v1::ApprovalRequest& done) {
    if (alive.expired() || !*alive.lock()) return;
    OnHoldResolved(done);
  });
  if (!submitted.ok()) {
    Answer(403, "Approval unavailable", "the request needs approval, and the approval request could not be stored",
           "review_unavailable", "denied", false);
    return;
  }
  ex.approval_id = submitted->id();
  ex.decision.set_approval_id(submitted->id());
  if (submitted->state() == v1::APPROVAL_STATE_APPROVED) {
    ex.decision.set_source("approval_window");
    StartForwarding();
    return;
  }
  phase_ = Phase::kHeld;
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_POLICY_DECISION);
  ev.set_outcome("held");
  *ev.mutable_decision() = ex.decision;
  *ev.mutable_http() = ex.audit;
  ev.set_session_id(ctx_.session_id);
  *ev.mutable_identity() = ctx_.identity;
  ev.set_resource(ctx_.resource->name);
  ev.set_protocol("http");
  (void)env_.audit->Emit(std::move(ev));
}

void HttpSession::OnHoldResolved(const v1::ApprovalRequest& request) {
  if (phase_ != Phase::kHeld || !ex_.has_value() || ex_->approval_id != request.id()) return;
  if (request.state() == v1::APPROVAL_STATE_APPROVED) {
    ex_->decision.set_source("approved");
    if (RenewAssertion()) StartForwarding();
  } else {
    const bool timeout = request.state() == v1::APPROVAL_STATE_TIMED_OUT;
    ex_->decision.set_source(timeout ? "review_timeout" : "review_denied");
    Answer(403, timeout ? "Approval timed out" : "Denied by approver",
           timeout ? "no approver decided in time"
                   : (request.decision_reason().empty() ? "an approver denied the request" : request.decision_reason()),
           timeout ? "review_timeout" : "review_denied", "denied", false);
  }
  Pump();
}

void HttpSession::StartForwarding() {
  Exchange& ex = *ex_;
  phase_ = Phase::kExchange;
  if (ex.expect_continue && !ex.request_done) SendToAgent("HTTP/1.1 100 Continue\r\n\r\n");
  if (!UpstreamReusable()) ConnectUpstream();
  if (phase_ != Phase::kExchange) return;
  SendToUpstream(ex.forward_head);
  ex.audit.set_forwarded(true);
  if (ex.injects_credential) ex.audit.set_credential_injected(CredentialKindName(http_.credential));
  std::fill(ex.forward_head.begin(), ex.forward_head.end(), '\0');  // it held the credential
  ex.forward_head.clear();
  if (!ex.held_body.empty()) {
    SendToUpstream(ex.held_body);
    ex.held_body.clear();
    ex.request_done = true;
  }
}

bool HttpSession::UpstreamReusable() {
  // Anything announced between exchanges — a close (nginx after keepalive_timeout), a TLS
  // close_notify, bytes no request asked for — means the connection is not reused: the
  // close is seen here, not as a 502 after the request was sent.
  if (!upstream_.attached() || upstream_.eof() || !upstream_.in().empty() || upstream_.readable()) return false;
  // An upstream that answered moments ago has not closed for idleness; one idle longer
  // may have closed in the moment before this request (its end not yet announced): ask
  // the socket.
  if (env_.clock->Monotonic() - upstream_last_read_ < kUpstreamFreshFor) return true;
  char byte;
  const ssize_t n = ::recv(upstream_.fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void HttpSession::ConnectUpstream() {
  auto fd = net::ConnectTcpNonBlocking(ctx_.upstream);
  if (!fd.ok()) {
    UpstreamFailed("upstream_unreachable", std::string(fd.status().message()));
    return;
  }
  upstream_.Reattach(std::move(*fd));
  upstream_connecting_ = true;
  connect_timer_ = env_.loop->RunAfter(env_.connect_timeout, [this] {
    connect_timer_ = 0;
    if (upstream_connecting_) {
      UpstreamFailed("upstream_timeout", "connect timed out");
      Pump();
    }
  });
}

void HttpSession::OnUpstreamConnected() {
  absl::Status st = net::ConnectResult(upstream_.fd(), ctx_.upstream);
  upstream_connecting_ = false;
  if (connect_timer_ != 0) {
    env_.loop->Cancel(connect_timer_);
    connect_timer_ = 0;
  }
  if (!st.ok()) {
    UpstreamFailed("upstream_unreachable", std::string(st.message()));
    return;
  }
  if (ctx_.agent_tls == nullptr) return;
  // HTTPS: verify-full against the name the agent asked for (or the configured one).
  upstream_server_name_ = !http_.upstream_server_name.empty() ? http_.upstream_server_name
                          : !sni_.empty()                     ? HostWithoutPort(sni_)
                                                              : ex_->facts.host;
  auto ctx = ctx_.upstream_tls(upstream_server_name_);
  if (!ctx.ok()) {
    UpstreamFailed("upstream_tls_config", std::string(ctx.status().message()));
    return;
  }
  auto tls = net::TlsConnection::Create(**ctx, upstream_.fd());
  if (!tls.ok()) {
    UpstreamFailed("upstream_tls", std::string(tls.status().message()));
    return;
  }
  upstream_.SetTls(*std::move(tls));
  upstream_tls_pending_ = true;
  StepUpstreamTls();
}

void HttpSession::StepUpstreamTls() {
  auto step = upstream_.tls()->HandshakeStep();
  if (!step.ok()) {
    upstream_tls_pending_ = false;
    UpstreamFailed("upstream_tls", std::string(step.status().message()));
    return;
  }
  if (*step == net::TlsHandshake::kDone) upstream_tls_pending_ = false;
}

bool HttpSession::ForwardRequestBody() {
  Exchange& ex = *ex_;
  if (ex.request_done || upstream_.out().size() >= kHighWaterBytes) return false;
  const bool chunked = ex.request_body.kind == chttp::BodyKind::kChunked;
  std::string framed;
  BodyPull pulled = PullRequestBody(
      [&](absl::string_view data) {
        ex.audit.set_request_body_bytes(ex.audit.request_body_bytes() + data.size());
        if (!chunked) {
          SendToUpstream(data);
          return;
        }
        framed.clear();
        chttp::AppendChunk(data, &framed);
        SendToUpstream(framed);
      },
      [&] { return upstream_.out().size() < kHighWaterBytes; });
  if (pulled == BodyPull::kFailed) return true;
  if (chunked && ex.request_done) {
    framed.clear();
    (void)chttp::AppendLastChunk({}, &framed);  // trailers are not forwarded
    SendToUpstream(framed);
  }
  return pulled == BodyPull::kProgress;
}

bool HttpSession::RelayResponse() {
  Exchange& ex = *ex_;
  if (!ex.response_head_seen) {
    if (upstream_.in().empty()) {
      if (upstream_.eof()) UpstreamFailed("upstream_closed", "the upstream closed without answering");
      return false;
    }
    auto head = chttp::PeekResponse(upstream_.in().view(), ex.method);
    if (!head.ok()) {
      UpstreamFailed("bad_response", std::string(head.status().message()));
      return true;
    }
    if (!head->has_value()) {
      if (upstream_.eof()) UpstreamFailed("upstream_closed", "the upstream closed mid-response");
      return false;
    }
    const chttp::Response& resp = **head;
    if (resp.framing.body.kind == chttp::BodyKind::kTunnel) {
      UpstreamFailed("bad_response", absl::StrCat("status ", resp.status, ": a tunnel was not asked for"));
      return true;
    }
    std::vector<chttp::HeaderField> fields = chttp::RemoveHopByHop(resp.fields);
    if (resp.framing.interim) {
      // 100 Continue was answered by interlockd itself; other 1xx (103) pass.
      if (resp.status != 100) {
        auto interim = chttp::SerializeResponseHead(chttp::Version::kHttp11, resp.status, resp.reason, fields);
        if (interim.ok() && ex.version == chttp::Version::kHttp11) SendToAgent(*interim);
      }
      upstream_.in().Consume(resp.head_bytes);
      return true;
    }
    ex.audit.set_response_content_type(ContentType(resp.fields));
    ex.response_body = resp.framing.body;
    if (ex.masker != nullptr && !PlanMasking(resp.fields, &fields)) return true;
    ex.response_head_seen = true;
    ex.audit.set_status(resp.status);
    ex.audit.set_answered_by("upstream");
    // The upstream closing after this response (not persistent) makes the next exchange
    // reconnect; the agent's connection stays unless it asked otherwise.
    ex.close_after = ex.agent_wants_close || !resp.framing.persistent;
    chttp::BodyFraming to_agent = resp.framing.body;
    if (ex.body_masker != nullptr) to_agent = {chttp::BodyKind::kUntilClose, 0};  // re-written: length unknown
    if (to_agent.kind == chttp::BodyKind::kChunked ||
        (to_agent.kind == chttp::BodyKind::kUntilClose && ex.version == chttp::Version::kHttp11)) {
      to_agent = {chttp::BodyKind::kChunked, 0};
      ex.close_after = ex.agent_wants_close || (!resp.framing.persistent && ex.body_masker == nullptr);
    } else if (to_agent.kind == chttp::BodyKind::kUntilClose) {
      ex.close_after = true;  // HTTP/1.0: the end of the body is the end of the connection
    }
    ex.response_to_agent = to_agent.kind;
    std::string storage;
    if (to_agent.kind != chttp::BodyKind::kNone) fields = chttp::WithBodyFraming(fields, to_agent, &storage);
    if (ex.close_after) fields.push_back({"Connection", "close"});
    auto out = chttp::SerializeResponseHead(ex.version, resp.status, resp.reason, fields);
    if (!out.ok()) {
      UpstreamFailed("bad_response", std::string(out.status().message()));
      return true;
    }
    upstream_.in().Consume(resp.head_bytes);
    SendToAgent(*out);
    if (ex.response_body.kind == chttp::BodyKind::kLength) ex.response_left = ex.response_body.length;
    if (ex.response_body.kind == chttp::BodyKind::kChunked) ex.response_chunks.emplace();
    ex.response_done = ex.response_body.kind == chttp::BodyKind::kNone ||
                       (ex.response_body.kind == chttp::BodyKind::kLength && ex.response_left == 0);
  }
  bool progress = RelayResponseBody();
  if (phase_ == Phase::kExchange && ex_->response_done) {
    if (!ex_->request_done) ex_->close_after = true;  // answered early: the rest of the body is unread
    const bool close = ex_->close_after;
    EndExchange("completed");
    if (close) {
      phase_ = Phase::kClosing;
      upstream_.Close(false);
    } else {
      phase_ = Phase::kRequestHead;
    }
    return true;
  }
  return progress;
}

bool HttpSession::PlanMasking(const std::vector<chttp::HeaderField>& fields, std::vector<chttp::HeaderField>* out) {
  Exchange& ex = *ex_;
  const bool has_body = ex.response_body.kind != chttp::BodyKind::kNone &&
                        !(ex.response_body.kind == chttp::BodyKind::kLength && ex.response_body.length == 0);
  ResponseMaskPlan plan = PlanResponseMasking(fields, has_body, http_.refuse_unmaskable_bodies);
  ex.audit.set_body_masking(plan.label);
  ex.audit.mutable_masking()->set_profile(ex.masker->name());
  if (plan.mode == ResponseMaskPlan::Mode::kMask) {
    auto bm = mask::BodyMasker::Create(*ex.masker, plan.kind, plan.coding);
    if (bm.ok()) {
      ex.body_masker = *std::move(bm);
      *out = MaskedResponseFields(*out);
      return true;
    }
    plan.reason = std::string(bm.status().message());
    ex.audit.set_body_masking("failed");
  } else if (plan.mode != ResponseMaskPlan::Mode::kRefuse) {
    return true;  // no body, or a binary one passed (audited as unmasked)
  }
  // Never relayed unmasked: the agent gets 502; the upstream connection (body unread) ends.
  Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "mask_unavailable", plan.reason);
  upstream_.Close(true);
  upstream_.in().Clear();
  Answer(502, "Response cannot be masked", absl::StrCat(plan.reason, "; it is not relayed unmasked"),
         "mask_unavailable", "refused", /*close=*/!ex.request_done);
  return false;
}

bool HttpSession::RelayResponseBody() {
  Exchange& ex = *ex_;
  bool progress = false;
  while (!ex.response_done && agent_.out().size() < kHighWaterBytes) {
    absl::string_view in = upstream_.in().view();
    absl::string_view data;  // body bytes, framing removed: a view into upstream_.in()
    size_t consumed = 0;
    bool last = false;
    if (ex.response_body.kind == chttp::BodyKind::kLength) {
      if (in.empty()) {
        if (upstream_.eof()) {
          Finish("upstream_closed_mid_response", "the upstream closed before the announced body ended", true);
          return false;
        }
        break;
      }
      consumed = static_cast<size_t>(std::min<uint64_t>(ex.response_left, in.size()));
      if (ex.body_masker != nullptr) consumed = std::min(consumed, kMaskPieceBytes);
      data = in.substr(0, consumed);
      ex.response_left -= consumed;
      last = ex.response_left == 0;
    } else if (ex.response_body.kind == chttp::BodyKind::kChunked) {
      auto piece = ex.response_chunks->Decode(in);
      if (!piece.ok()) {
        Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "error", "bad_response", std::string(piece.status().message()));
        Finish("bad_response", std::string(piece.status().message()), true);
        return false;
      }
      if (piece->consumed == 0) {
        if (upstream_.eof()) {
          Finish("upstream_closed_mid_response", "the upstream closed inside a chunked body", true);
          return false;
        }
        break;
      }
      data = piece->data;
      consumed = piece->consumed;
      last = ex.response_chunks->done();
    } else {  // until close
      if (in.empty() && !upstream_.eof()) break;
      data = ex.body_masker != nullptr ? in.substr(0, kMaskPieceBytes) : in;
      consumed = data.size();
      last = in.empty();
    }
    if (!EmitResponseBody(data, last)) return false;
    upstream_.in().Consume(consumed);
    if (last) {
      ex.response_done = true;
      if (ex.response_body.kind == chttp::BodyKind::kUntilClose) upstream_.Close(false);
    }
    progress = true;
  }
  return progress;
}

bool HttpSession::EmitResponseBody(absl::string_view data, bool last) {
  Exchange& ex = *ex_;
  absl::string_view out = data;
  if (ex.body_masker != nullptr) {
    ex.audit.set_upstream_response_body_bytes(ex.audit.upstream_response_body_bytes() + data.size());
    masked_.clear();
    absl::Status st = data.empty() ? absl::OkStatus() : ex.body_masker->Feed(data, &masked_);
    if (st.ok() && last) st = ex.body_masker->Finish(&masked_);
    if (!st.ok()) {
      // What was sent was masked; the rest cannot be. The connection ends without the
      // body's end, so the agent's client reports an incomplete response.
      ex.audit.set_body_masking("failed");
      Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "error", "mask_failed", std::string(st.message()));
      Finish("mask_failed", std::string(st.message()), true);
      return false;
    }
    out = masked_;
  }
  ex.audit.set_response_body_bytes(ex.audit.response_body_bytes() + out.size());
  if (ex.response_to_agent == chttp::BodyKind::kChunked) {
    agent_frame_.clear();
    if (!out.empty()) chttp::AppendChunk(out, &agent_frame_);
    if (last) (void)chttp::AppendLastChunk({}, &agent_frame_);
    if (!agent_frame_.empty()) SendToAgent(agent_frame_);
  } else if (!out.empty()) {
    SendToAgent(out);
  }
  // The recording keeps what the agent got (masked); with an auditor key, the upstream's
  // bytes masking replaced are sealed to it, after them (interlock replay --unseal).
  if (ex.body_masker != nullptr && recorder_ && recorder_->keeps_originals()) {
    pending_sealed_to_agent_.append(data.data(), data.size());
  }
  return true;
}

void HttpSession::Answer(int status, const std::string& title, const std::string& detail, const std::string& reason,
                         const std::string& outcome, bool close) {
  const bool head = ex_.has_value() && ex_->method == "HEAD";
  close |= ex_.has_value() && ex_->agent_wants_close;
  SendToAgent(ProblemResponse({.status = status,
                               .title = title,
                               .detail = detail,
                               .rule = ex_.has_value() ? ex_->decision.rule_id() : "",
                               .reason = reason,
                               .close = close,
                               .head = head,
                               .bearer_challenge = status == 401}));
  if (ex_.has_value()) {
    ex_->audit.set_status(status);
    ex_->audit.set_answered_by("interlockd");
    if (ex_->decision.action().empty()) ex_->decision.set_action("DENY");
    if (ex_->decision.source().empty()) ex_->decision.set_source(reason);
    EndExchange(outcome);
  }
  if (close) {
    phase_ = Phase::kClosing;
    outcome_ = reason;
    detail_ = detail;
    upstream_.Close(false);
    upstream_.out().Clear();
  } else {
    phase_ = Phase::kRequestHead;
  }
}

void HttpSession::RefuseLargeBody(bool for_hold) {
  Answer(413, for_hold ? "Request too large to hold" : "Request too large to judge",
         absl::StrCat(for_hold ? "the request needs approval and its body exceeds "
                               : "a policy rule judges this request's body, which exceeds ",
                      http_.max_judged_body_bytes, " bytes (max_judged_body_bytes)"),
         "body_too_large", "denied", /*close=*/true);
}

void HttpSession::UpstreamFailed(const std::string& reason, const std::string& detail) {
  upstream_connecting_ = false;
  upstream_tls_pending_ = false;
  if (ex_.has_value() && phase_ == Phase::kExchange && !ex_->response_head_seen) {
    Audit(v1::AUDIT_KIND_SESSION_REJECTED, "error", reason, detail);
    Answer(502, "Bad gateway", absl::StrCat("interlockd could not get an answer from resource ", ctx_.resource->name),
           reason, "error", /*close=*/!ex_->request_done);
    upstream_.Close(true);
    return;
  }
  if (ex_.has_value() && ex_->response_head_seen) {
    Finish(reason, detail, true);
    return;
  }
  // Between exchanges: the next request reconnects.
  upstream_.Close(false);
}

void HttpSession::EndExchange(const std::string& outcome) {
  if (!ex_.has_value()) return;
  Exchange& ex = *ex_;
  ex.audit.set_duration_us(absl::ToInt64Microseconds(env_.clock->Monotonic() - ex.started));
  if (ex.body_masker != nullptr) {  // what was masked, also of a body cut short
    v1::MaskingInfo* m = ex.audit.mutable_masking();
    m->set_values_masked(ex.body_masker->values_masked());
    for (const auto& [name, n] : ex.body_masker->counts().detectors) (*m->mutable_detector_counts())[name] = n;
    for (const auto& [name, n] : ex.body_masker->counts().columns) (*m->mutable_column_counts())[name] = n;
  }
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_HTTP_REQUEST);
  ev.set_session_id(ctx_.session_id);
  *ev.mutable_identity() = ctx_.identity;
  ev.set_resource(ctx_.resource->name);
  *ev.mutable_original_destination() = ctx_.original_destination;
  ev.mutable_upstream()->set_address(ctx_.upstream.ip());
  ev.mutable_upstream()->set_port(ctx_.upstream.port());
  ev.set_protocol("http");
  ev.set_outcome(outcome);
  ev.set_reason(ex.decision.source());
  ev.set_duration_ms(ex.audit.duration_us() / 1000);
  *ev.mutable_http() = std::move(ex.audit);
  *ev.mutable_decision() = std::move(ex.decision);
  (void)env_.audit->Emit(std::move(ev));
  if (recorder_) {
    FlushPendingRecords();
    (void)recorder_->AppendEvent("http_exchange", absl::StrCat(outcome, " ", ex.method, " ", ex.facts.host, ex.facts.path));
  }
  std::fill(ex.forward_head.begin(), ex.forward_head.end(), '\0');
  ex_.reset();
  for (std::string* scratch : {&masked_, &agent_frame_}) {
    if (scratch->capacity() > kMaskPieceBytes * 2) std::string().swap(*scratch);
  }
}

// ---------------------------------------------------------------------------------------
// Audit and recording

void HttpSession::SendToAgent(absl::string_view bytes) {
  agent_.out().Append(bytes);
  if (!pending_from_agent_record_.empty()) FlushPendingRecords();
  pending_to_agent_record_.append(bytes.data(), bytes.size());
}

void HttpSession::RecordFromAgent(absl::string_view bytes) {
  if (!pending_to_agent_record_.empty()) FlushPendingRecords();
  pending_from_agent_record_.append(bytes.data(), bytes.size());
}

void HttpSession::FlushPendingRecords() {
  if (!recorder_) {
    pending_from_agent_record_.clear();
    pending_to_agent_record_.clear();
    pending_sealed_to_agent_.clear();
    return;
  }
  struct Pending {
    v1::Direction dir;
    std::string* data;
    std::string* sealed;  // the originals of what `data` holds masked, sealed after it
  };
  std::string no_sealed;
  for (auto [dir, buf, sealed] : {Pending{v1::DIRECTION_TO_UPSTREAM, &pending_from_agent_record_, &no_sealed},
                                  Pending{v1::DIRECTION_TO_AGENT, &pending_to_agent_record_, &pending_sealed_to_agent_}}) {
    if (buf->empty() && sealed->empty()) continue;
    absl::Status st = buf->empty() ? absl::OkStatus() : recorder_->AppendData(dir, *buf);
    if (st.ok() && !sealed->empty()) st = recorder_->AppendSealed(dir, *sealed);
    buf->clear();
    sealed->clear();
    if (!st.ok()) {
      Finish("recording_failed", std::string(st.message()), true);
      return;
    }
  }
}

void HttpSession::Audit(v1::AuditKind kind, const std::string& outcome, const std::string& reason,
                        const std::string& detail) {
  v1::AuditEvent ev;
  ev.set_kind(kind);
  ev.set_session_id(ctx_.session_id);
  *ev.mutable_identity() = ctx_.identity;
  ev.set_resource(ctx_.resource->name);
  *ev.mutable_original_destination() = ctx_.original_destination;
  ev.mutable_upstream()->set_address(ctx_.upstream.ip());
  ev.mutable_upstream()->set_port(ctx_.upstream.port());
  ev.set_protocol("http");
  ev.set_outcome(outcome);
  ev.set_reason(reason);
  ev.set_detail(detail);
  (void)env_.audit->Emit(std::move(ev));
}

}  // namespace interlock::proxy::http
