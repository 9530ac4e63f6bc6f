// HttpSession: its life cycle, the I/O pump between the two sides, interlockd's own answers,
// and the evidence (one audit event per exchange, the recording). The request side is in
// http_session_request.cc, the upstream and the response in http_session_response.cc, the
// agent's identity in http_session_identity.cc.
#include "userspace/proxy/http/http_session.h"

#include <sys/epoll.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/codec/http/head.h"
#include "userspace/proxy/http/problem.h"
#include "userspace/proxy/http/response_masking.h"

namespace interlock::proxy::http {

namespace chttp = codec::http;

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
  FollowRecorder(recorder_.get());
  subject_.workload = ctx_.identity.workload();
  subject_.cgroup_path = ctx_.identity.cgroup_path();
  subject_.uid = ctx_.identity.uid();
  if (recorder_) {
    RequestRecording::Options o;
    o.bodies_in_clear = http_.record_request_bodies;
    o.keep_originals = recorder_->keeps_originals();
    o.credential_fields = AgentCredentialFields(http_.credential);
    o.elided_params = http_.elide_query_params;
    request_recording_.emplace(std::move(o));
    RecordEvent(request_recording_->Describe());
  }
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

void HttpSession::Abort(const std::string& outcome, const std::string& detail) {
  if (outcome == "recording_failed") recording_failed_ = true;
  // A request still held or being read whole has not been sent upstream: the agent waiting
  // on it is told so (503, problem+json, the connection closed), not reset, and its
  // approval is withdrawn. Anything else (a response begun, no request) is reset as before.
  const bool unsent = ex_.has_value() && (phase_ == Phase::kHeld || phase_ == Phase::kReadBody);
  const bool stopping = outcome == "shutdown" || outcome == "drain_timeout";
  if (!unsent || (!stopping && !recording_failed_)) {
    Finish(outcome, detail, true);
    return;
  }
  if (!ex_->approval_id.empty() && env_.approvals != nullptr) {
    env_.approvals->Abandon(ex_->approval_id, stopping ? "interlockd stopped before a decision"
                                                        : "the session's recording failed before a decision");
  }
  ex_->decision.set_source(stopping ? "withdrawn_by_shutdown" : "withdrawn_recording_failed");
  Answer(503, "Service Unavailable",
         stopping ? "interlockd is stopping; the request was not sent upstream"
                  : "the session's recording cannot be written; the request was not sent upstream",
         outcome, "withdrawn", /*close=*/true);
  // Written now: interlockd may be stopping, so no later loop turn is counted on.
  net::IoResult w = agent_.Flush();
  Finish(outcome, detail, /*reset=*/!w.status.ok() || !agent_.out().empty());
}

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
    // What the agent sent that no request consumed: a body cut short, bytes never parsed.
    EndRecordedBody(/*complete=*/false);
    absl::string_view rest = agent_.in().view();
    rest.remove_prefix(std::min(recorded_head_in_buffer_, rest.size()));
    if (!rest.empty()) RecordUnparsed(rest);
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
                pending_to_agent_record_.capacity() + pending_sealed_to_agent_.capacity() + pending_sealed_from_agent_.capacity() + masked_.capacity() +
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

void HttpSession::EndExchange(const std::string& outcome) {
  if (!ex_.has_value()) return;
  Exchange& ex = *ex_;
  ex.audit.set_duration_us(absl::ToInt64Microseconds(env_.clock->Monotonic() - ex.started));
  if (ex.body_masker != nullptr || !ex.head_counts.empty()) {  // what was masked, also of a body cut short
    mask::MaskCounts counts = ex.head_counts;
    uint64_t values = ex.head_counts.total();
    if (ex.body_masker != nullptr) {
      counts.Merge(ex.body_masker->counts());
      values += ex.body_masker->values_masked();
    }
    v1::MaskingInfo* m = ex.audit.mutable_masking();
    m->set_values_masked(values);
    for (const auto& [name, n] : counts.detectors) (*m->mutable_detector_counts())[name] = n;
    for (const auto& [name, n] : counts.columns) (*m->mutable_column_counts())[name] = n;
  }
  if (ex.body_masker != nullptr && ex.audit.body_masking() != "failed") {
    // A body told apart by its bytes (text/plain, unlabelled, octet-stream) is named by what
    // it was masked as.
    ex.audit.set_body_masking(
        MaskedBodyLabel(ex.body_masker->kind(), ex.body_masker->masked_as(), ex.body_masker->coding()));
  }
  // One event per exchange, reused: what the session's events share is set once (the
  // identity again only while a token speaks for the agent: it may change per request).
  if (!exchange_event_) {
    exchange_event_.emplace();
    v1::AuditEvent& t = *exchange_event_;
    t.set_kind(v1::AUDIT_KIND_HTTP_REQUEST);
    t.set_session_id(ctx_.session_id);
    *t.mutable_identity() = ctx_.identity;
    t.set_resource(ctx_.resource->name);
    *t.mutable_original_destination() = ctx_.original_destination;
    t.mutable_upstream()->set_address(ctx_.upstream.ip());
    t.mutable_upstream()->set_port(ctx_.upstream.port());
    t.set_protocol("http");
  } else if (token_ != nullptr || !exchange_event_->identity().token_subject().empty() ||
             !exchange_event_->identity().token_issuer().empty()) {
    *exchange_event_->mutable_identity() = ctx_.identity;
  }
  v1::AuditEvent& ev = *exchange_event_;
  ev.clear_id();
  ev.clear_time();
  ev.set_outcome(outcome);
  ev.set_reason(ex.decision.source());
  ev.set_duration_ms(ex.audit.duration_us() / 1000);
  ev.mutable_http()->Swap(&ex.audit);
  ev.mutable_decision()->Swap(&ex.decision);
  (void)env_.audit->Emit(&ev);
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
  MarkForFlush();
}

void HttpSession::RecordRequestHead(const codec::http::Request& req) {
  if (!request_recording_) return;
  if (!pending_to_agent_record_.empty()) FlushPendingRecords();
  request_recording_->Head(req, &pending_from_agent_record_);
  recorded_head_in_buffer_ = req.head_bytes;
  MarkForFlush();
}

void HttpSession::ConsumeHead(size_t head_bytes) {
  agent_.in().Consume(head_bytes);
  recorded_head_in_buffer_ = 0;
}

void HttpSession::RecordRequestBody(absl::string_view raw, absl::string_view data) {
  if (!request_recording_) return;
  if (!pending_to_agent_record_.empty()) FlushPendingRecords();
  request_recording_->Body(raw, data, &pending_from_agent_record_, &pending_sealed_from_agent_);
  MarkForFlush();
}

void HttpSession::EndRecordedBody(bool complete) {
  if (!request_recording_) return;
  if (auto ev = request_recording_->EndBody(complete)) RecordEvent(*ev);
}

void HttpSession::RecordUnparsed(absl::string_view bytes) {
  if (!request_recording_) return;
  std::string sealed;
  RecordEvent(request_recording_->Unparsed(bytes, &sealed));
  pending_sealed_from_agent_.append(sealed);  // after the event that describes it
  FlushPendingRecords();
}

void HttpSession::RecordEvent(const RequestRecording::Event& event) {
  if (!recorder_) return;
  FlushPendingRecords();  // the bytes before it go first
  absl::Status st = recorder_->AppendEvent(event.kind, event.detail);
  if (!st.ok() && phase_ != Phase::kDone) Finish("recording_failed", std::string(st.message()), true);
}

void HttpSession::FlushPendingRecords() {
  if (!recorder_ || recording_failed_) {
    pending_from_agent_record_.clear();
    pending_to_agent_record_.clear();
    pending_sealed_to_agent_.clear();
    pending_sealed_from_agent_.clear();
    return;
  }
  struct Pending {
    v1::Direction dir;
    std::string* data;
    std::string* sealed;  // the originals of what `data` holds masked, sealed after it
  };
  for (auto [dir, buf, sealed] : {Pending{v1::DIRECTION_TO_UPSTREAM, &pending_from_agent_record_, &pending_sealed_from_agent_},
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