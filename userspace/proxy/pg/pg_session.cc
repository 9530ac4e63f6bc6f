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

std::string FatalErrorBytes(absl::string_view sqlstate, absl::string_view message) {
  cpg::ErrorResponse e;
  e.fields = {{cpg::field::kSeverity, "FATAL"},
              {cpg::field::kSeverityNonLocalized, "FATAL"},
              {cpg::field::kSqlState, std::string(sqlstate)},
              {cpg::field::kMessage, std::string(message)}};
  return cpg::Encode(e);
}

// ---------------------------------------------------------------------------------------
// Cancel forwarding

namespace {

class CancelSender final : public net::IoHandler {
 public:
  CancelSender(net::EventLoop& loop, UniqueFd fd, std::string packet)
      : loop_(loop), fd_(std::move(fd)), packet_(std::move(packet)) {}
  void Arm() {
    (void)loop_.Add(fd_.get(), EPOLLOUT, this);
    timer_ = loop_.RunAfter(absl::Seconds(5), [this] { Done(); });
  }
  void OnIo(uint32_t events) override {
    if (done_) return;
    if (events & EPOLLOUT) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) (void)net::SendSome(fd_.get(), packet_.data(), packet_.size(), "cancel");
    }
    Done();
  }

 private:
  void Done() {
    if (done_) return;
    done_ = true;
    loop_.Remove(fd_.get());
    loop_.Cancel(timer_);
    CancelSender* self = this;
    loop_.Defer([self] { delete self; });
  }
  net::EventLoop& loop_;
  UniqueFd fd_;
  std::string packet_;
  net::EventLoop::TimerId timer_ = 0;
  bool done_ = false;
};

}  // namespace

void SendCancelAsync(net::EventLoop& loop, const net::SockAddr& upstream, uint32_t pid, uint32_t key) {
  auto fd = net::ConnectTcpNonBlocking(upstream);
  if (!fd.ok()) return;
  auto* sender = new CancelSender(loop, std::move(*fd),
                                  cpg::EncodeCancelRequest(static_cast<int32_t>(pid),
                                                           static_cast<int32_t>(key)));
  sender->Arm();
}

// ---------------------------------------------------------------------------------------
// Life cycle

absl::StatusOr<std::unique_ptr<PgSession>> PgSession::Start(PgSessionEnv env, UniqueFd agent,
                                                            PgSessionContext ctx,
                                                            std::unique_ptr<record::Recorder> recorder,
                                                            DoneFn done) {
  if (ctx.postgres == nullptr) return absl::InvalidArgumentError("pg: no postgres settings");
  std::unique_ptr<PgSession> s(new PgSession(env, std::move(agent), std::move(ctx),
                                             std::move(recorder), std::move(done)));
  s->UpdateInterest();
  return s;
}

PgSession::PgSession(PgSessionEnv env, UniqueFd agent, PgSessionContext ctx,
                     std::unique_ptr<record::Recorder> recorder, DoneFn done)
    : env_(env),
      ctx_(std::move(ctx)),
      recorder_(std::move(recorder)),
      done_(std::move(done)),
      last_activity_(env.clock->Monotonic()) {
  // An accepted socket may hold the startup packet already.
  agent_.Attach(std::move(agent), /*readable=*/true);
  if (env_.memory != nullptr) memory_ = env_.memory->NewLease();
  FollowRecorder(recorder_.get());
}

PgSession::~PgSession() {
  if (connect_timer_ != 0) env_.loop->Cancel(connect_timer_);
  if (resume_timer_ != 0) env_.loop->Cancel(resume_timer_);
  if (cancel_registered_) env_.cancels->Unregister(our_pid_, our_key_);
}

absl::Status PgSession::FlushRecording() {
  if (!recorder_ || phase_ == Phase::kDone) return absl::OkStatus();
  return recorder_->Flush();
}

namespace {

// What the agent is told when interlockd ends its session, in PostgreSQL's own words where
// the server has them (SQLSTATE, "terminating connection ..."); nullopt: no message.
struct Ending {
  absl::string_view sqlstate;
  std::string message;
};
std::optional<Ending> EndingFor(absl::string_view outcome, absl::string_view detail) {
  if (outcome == "recording_failed") {
    // ENOSPC is the server's disk_full; any other write error its io_error.
    const bool full = absl::StrContains(detail, "No space left on device");
    return Ending{full ? "53100" : "58030",
                  absl::StrCat("interlock: terminating connection because its recording cannot be written",
                               full ? " (disk full)" : "", "; nothing more is relayed")};
  }
  if (outcome == "idle_timeout") {
    return Ending{"57P05", "interlock: terminating connection due to idle timeout (timeouts.idle_ms)"};
  }
  if (outcome == "drain_timeout" || outcome == "shutdown") {
    return Ending{"57P01", "interlock: terminating connection because interlockd is stopping"};
  }
  return std::nullopt;
}

}  // namespace

bool PgSession::AgentBetweenMessages() const {
  switch (phase_) {
    case Phase::kAgentPassword:
    case Phase::kUpstreamConnecting:
    case Phase::kUpstreamSslReply:
    case Phase::kUpstreamTls:
    case Phase::kUpstreamAuth:
    case Phase::kUpstreamReady:
    case Phase::kRelay:
      // A DataRow or COPY chunk streamed in part: only a reset ends it honestly.
      return backend_stream_left_ == 0;
    default:
      return false;
  }
}

void PgSession::Abort(const std::string& outcome, const std::string& detail) {
  if (outcome == "recording_failed") recording_failed_ = true;
  std::optional<Ending> ending = EndingFor(outcome, detail);
  if (!ending.has_value() || !AgentBetweenMessages()) {
    Finish(outcome, detail, true);
    return;
  }
  // The agent is told why, as PostgreSQL tells a client whose connection it ends: a FATAL
  // ErrorResponse after what is already queued for it (whole messages), written now —
  // interlockd may be stopping, so no later loop turn is counted on. If the agent's socket
  // cannot take it all, the session is reset as before.
  const std::string fatal = FatalErrorBytes(ending->sqlstate, ending->message);
  if (recording_failed_) {
    agent_.out().Append(fatal);
  } else {
    SendToAgent(fatal);
  }
  net::IoResult w = agent_.Flush();
  Finish(outcome, detail, /*reset=*/!w.status.ok() || !agent_.out().empty());
}

void PgSession::Finish(const std::string& outcome, const std::string& detail, bool reset) {
  if (phase_ == Phase::kDone) return;
  phase_ = Phase::kDone;
  outcome_ = outcome;
  detail_ = detail;
  for (net::EventLoop::TimerId* t : {&connect_timer_, &resume_timer_, &token_timer_}) {
    if (*t != 0) {
      env_.loop->Cancel(*t);
      *t = 0;
    }
  }
  upstream_.Close(reset);
  agent_.Close(reset);
  *alive_ = false;
  if (held_.has_value()) {
    if (env_.approvals != nullptr && !held_->approval_id.empty()) env_.approvals->Abandon(held_->approval_id, "the held connection ended before a decision");
    held_.reset();
  }
  if (tracker_ != nullptr) AuditStatements(tracker_->Finish("incomplete"));
  if (cancel_registered_) {
    env_.cancels->Unregister(our_pid_, our_key_);
    cancel_registered_ = false;
  }
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

void PgSession::FailToAgent(absl::string_view sqlstate, absl::string_view message,
                            const std::string& outcome, const std::string& detail) {
  if (phase_ == Phase::kDone || phase_ == Phase::kClosing) return;
  SendToAgent(FatalErrorBytes(sqlstate, message));
  phase_ = Phase::kClosing;
  outcome_ = outcome;
  detail_ = detail;
  // Nothing more goes upstream; the agent gets the error, then the connection closes.
  upstream_.Close(/*reset=*/false);
  upstream_.out().Clear();
}

// ---------------------------------------------------------------------------------------
// Audit and recording

void PgSession::Audit(v1::AuditKind kind, const std::string& outcome, const std::string& reason,
                      const std::string& detail) {
  v1::AuditEvent ev;
  ev.set_kind(kind);
  ev.set_session_id(ctx_.session_id);
  *ev.mutable_identity() = ctx_.identity;
  ev.set_resource(ctx_.resource_name);
  *ev.mutable_original_destination() = ctx_.original_destination;
  ev.mutable_upstream()->set_address(ctx_.upstream.ip());
  ev.mutable_upstream()->set_port(ctx_.upstream.port());
  ev.set_protocol("postgres");
  ev.set_outcome(outcome);
  ev.set_reason(reason);
  ev.set_detail(detail);
  (void)env_.audit->Emit(std::move(ev));
}

void PgSession::AuditStatements(std::vector<v1::StatementInfo> statements) {
  for (v1::StatementInfo& s : statements) {
    if (env_.masks != nullptr) {
      for (const std::string& tag : s.command_tags()) {
        // Renamed or recreated tables and columns: the cached catalog may be stale.
        if (absl::StartsWith(tag, "ALTER") || absl::StartsWith(tag, "DROP") || absl::StartsWith(tag, "CREATE")) {
          env_.masks->Invalidate(ctx_.catalog_key);
          break;
        }
      }
    }
    // One event per statement, reused: what the session's events share is set once.
    if (!statement_event_) {
      statement_event_.emplace();
      v1::AuditEvent& t = *statement_event_;
      t.set_kind(v1::AUDIT_KIND_STATEMENT);
      t.set_session_id(ctx_.session_id);
      *t.mutable_identity() = ctx_.identity;
      t.set_resource(ctx_.resource_name);
      *t.mutable_original_destination() = ctx_.original_destination;
      t.set_protocol("postgres");
    }
    v1::AuditEvent& ev = *statement_event_;
    ev.clear_id();
    ev.clear_time();
    ev.set_outcome(s.status());
    ev.set_duration_ms(s.duration_us() / 1000);
    ev.mutable_statement()->Swap(&s);
    (void)env_.audit->Emit(&ev);
  }
}

void PgSession::SendToAgent(absl::string_view bytes) {
  agent_.out().Append(bytes);
  pending_to_agent_record_.append(bytes.data(), bytes.size());
}

void PgSession::RecordFromAgent(absl::string_view bytes) {
  // Another direction's bytes waiting to be recorded go first, so the recording keeps the
  // order in which interlockd saw the two directions.
  if (!pending_to_agent_record_.empty()) FlushPendingRecords();
  pending_from_agent_record_.append(bytes.data(), bytes.size());
}

void PgSession::RecordFrontendMessage(const cpg::FrontendMessage& m, absl::string_view raw) {
  std::optional<std::string> shown;
  if (withhold_literals_) shown = WithholdLiterals(m, tracker_->standard_conforming_strings(), &normalize_memo_);
  if (!shown.has_value()) {
    RecordFromAgent(raw);
    return;
  }
  RecordFromAgent(*shown);
  if (recorder_ && recorder_->keeps_originals()) pending_sealed_from_agent_.append(raw.data(), raw.size());
}

void PgSession::FlushPendingRecords() {
  // One record per direction per batch instead of one per message: the hash chain and
  // framing cost is paid per batch (a -S transaction is ~6 messages).
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
    std::string* sealed;  // the originals of what `data` holds rewritten, sealed after it
  };
  for (auto [dir, buf, sealed] :
       {Pending{v1::DIRECTION_TO_UPSTREAM, &pending_from_agent_record_, &pending_sealed_from_agent_},
        Pending{v1::DIRECTION_TO_AGENT, &pending_to_agent_record_, &pending_sealed_to_agent_}}) {
    if (buf->empty() && sealed->empty()) continue;
    absl::Status st = recorder_->AppendData(dir, *buf);
    buf->clear();
    if (st.ok() && !sealed->empty()) {
      st = recorder_->AppendSealed(dir, *sealed);
      sealed->clear();
    }
    if (!st.ok()) {
      Abort("recording_failed", std::string(st.message()));
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------
// I/O

void PgSession::OnIo(Side side, uint32_t events) {
  if (phase_ == Phase::kDone) return;
  (side == kAgent ? agent_ : upstream_).NoteEvents(events);
  if (side == kAgent && phase_ == Phase::kAgentTls) {
    StepAgentTls();
  } else if (side == kUpstream && phase_ == Phase::kUpstreamConnecting) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) OnUpstreamConnected();
  } else if (side == kUpstream && phase_ == Phase::kUpstreamTls) {
    auto step = upstream_.tls()->HandshakeStep();
    if (!step.ok()) {
      Audit(v1::AUDIT_KIND_AUTH, "error", "upstream_tls", std::string(step.status().message()));
      FailToAgent("08006", absl::StrCat("interlock: TLS to resource ", ctx_.resource_name, " failed"),
                  "upstream_tls_failed", std::string(step.status().message()));
    } else if (*step == net::TlsHandshake::kDone) {
      StartUpstreamLogin();
    }
  }
  Pump();
}

void PgSession::StepAgentTls() {
  auto step = agent_.tls()->HandshakeStep();
  if (!step.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "agent_tls", std::string(step.status().message()));
    Finish("agent_tls_failed", std::string(step.status().message()), true);
    return;
  }
  if (*step == net::TlsHandshake::kDone) {
    if (recorder_) {
      FlushPendingRecords();
      (void)recorder_->AppendEvent("agent_tls", agent_.tls()->Version());
    }
    phase_ = Phase::kAgentStartup;
  }
}

bool PgSession::AgentReadAllowed() const {
  if (agent_.eof() || !agent_.attached()) return false;
  if (phase_ == Phase::kClosing || phase_ == Phase::kDone) return false;
  if (phase_ != Phase::kAgentStartup && phase_ != Phase::kAgentPassword && phase_ != Phase::kRelay) {
    return false;  // nothing to do with agent bytes until the upstream is ready
  }
  return upstream_.out().size() < kHighWaterBytes && agent_.in().size() < kMaxFrontendMessageBytes + 5;
}

bool PgSession::UpstreamReadAllowed() const {
  if (upstream_.eof() || !upstream_.attached()) return false;
  if (phase_ != Phase::kUpstreamSslReply && phase_ != Phase::kUpstreamAuth &&
      phase_ != Phase::kUpstreamReady && phase_ != Phase::kRelay) {
    return false;
  }
  if (phase_ == Phase::kUpstreamSslReply && !upstream_.in().empty()) return false;  // one byte only
  if (catalog_wait_) return false;  // nothing moves until the result's columns are known
  return agent_.out().size() < kHighWaterBytes && upstream_.in().size() < kMaxBackendMessageBytes + 5;
}

bool PgSession::ReadAgent() {
  net::IoResult r = agent_.Read(StreamSide::kReadChunk);
  if (!r.status.ok()) {
    Finish("agent_reset", std::string(r.status.message()), true);
    return false;
  }
  if (r.eof) return true;
  if (r.bytes == 0) return false;  // would block: wait for epoll
  last_activity_ = env_.clock->Monotonic();
  return true;
}

bool PgSession::ReadUpstream() {
  // During the SSLRequest reply only one byte may be consumed: what follows is TLS.
  net::IoResult r = upstream_.Read(phase_ == Phase::kUpstreamSslReply ? 1 : StreamSide::kReadChunk);
  if (!r.status.ok()) {
    if (phase_ == Phase::kRelay) {
      Finish("upstream_reset", std::string(r.status.message()), true);
    } else {
      FailToAgent("08006", absl::StrCat("interlock: connection to resource ", ctx_.resource_name, " failed"),
                  "upstream_reset", std::string(r.status.message()));
    }
    return false;
  }
  if (r.eof) return true;
  if (r.bytes == 0) return false;  // would block: wait for epoll
  last_activity_ = env_.clock->Monotonic();
  return true;
}

bool PgSession::FlushAgent() {
  if (phase_ == Phase::kAgentTls) return false;
  net::IoResult w = agent_.Flush();
  if (!w.status.ok()) {
    Finish("agent_reset", std::string(w.status.message()), true);
    return false;
  }
  stats_.bytes_to_agent += w.bytes;
  return w.bytes > 0;
}

bool PgSession::FlushUpstream() {
  if (!upstream_.attached() || phase_ == Phase::kUpstreamConnecting || phase_ == Phase::kUpstreamTls) return false;
  net::IoResult w = upstream_.Flush();
  if (!w.status.ok()) {
    Finish("upstream_reset", std::string(w.status.message()), true);
    return false;
  }
  if (phase_ == Phase::kRelay) stats_.bytes_to_upstream += w.bytes;
  return w.bytes > 0;
}

void PgSession::Pump() {
  for (int i = 0; i < 64 && phase_ != Phase::kDone; ++i) {
    bool progress = false;
    progress |= FlushAgent();
    if (phase_ == Phase::kDone) return;
    progress |= FlushUpstream();
    if (phase_ == Phase::kDone) return;
    if (AgentReadAllowed() && agent_.readable()) progress |= ReadAgent();
    if (phase_ == Phase::kDone) return;
    ChargeMemory();  // over budget: the session is closing with 53200, reads stop
    ProcessAgent();
    if (phase_ == Phase::kDone) return;
    if (UpstreamReadAllowed() && upstream_.readable()) progress |= ReadUpstream();
    if (phase_ == Phase::kDone) return;
    ChargeMemory();  // over budget: the session is closing with 53200, reads stop
    ProcessUpstream();
    if (phase_ == Phase::kDone) return;
    if (phase_ == Phase::kClosing && agent_.out().empty()) {
      Finish(outcome_, detail_, false);
      return;
    }
    if (!progress) break;
    if (i == 63 && resume_timer_ == 0) {
      // Still busy: yield to other sessions and continue on the next loop turn (a TLS
      // record may sit decrypted in OpenSSL where epoll cannot see it).
      resume_timer_ = env_.loop->RunAfter(absl::ZeroDuration(), [this] {
        resume_timer_ = 0;
        Pump();
      });
    }
  }
  if (phase_ == Phase::kDone) return;
  // Ends: the agent left (forward the end upstream once flushed), or the upstream did.
  // An agent that left in the middle of a message leaves bytes that can never complete:
  // end the session rather than hold them (and its share of memory) until idle timeout.
  if (agent_.eof() && !agent_.in().empty() && phase_ != Phase::kClosing && AgentInputIsPartial()) {
    Finish("agent_closed_mid_message",
           absl::StrCat(agent_.in().size(), " bytes of an incomplete message"), false);
    return;
  }
  if (agent_.eof() && agent_.in().empty() && phase_ != Phase::kClosing) {
    if (upstream_.out().empty()) {
      Finish(phase_ == Phase::kRelay ? "closed" : "agent_closed", "", false);
      return;
    }
  }
  if (upstream_.eof() && upstream_.in().empty() && agent_.out().empty()) {
    Finish(phase_ == Phase::kRelay ? "upstream_closed" : "upstream_closed_early", "", false);
    return;
  }
  FlushPendingRecords();
  if (phase_ == Phase::kDone) return;
  UpdateInterest();
}

bool PgSession::AgentInputIsPartial() const {
  if (phase_ == Phase::kAgentStartup) {
    auto frame = cpg::PeekStartupFrame(agent_.in().view());
    return frame.ok() && !frame->has_value();
  }
  if (phase_ == Phase::kAgentPassword || phase_ == Phase::kRelay) {
    auto frame = cpg::PeekFrame(agent_.in().view(), kMaxFrontendMessageBytes);
    return frame.ok() && !frame->has_value();
  }
  return false;  // waiting for the upstream: the bytes are whole messages, not yet read
}

void PgSession::ChargeMemory() {
  if (phase_ == Phase::kClosing) {  // the error is on its way; nothing more is read
    (void)memory_.Set(agent_.out().capacity());
    return;
  }
  const size_t held = agent_.in().capacity() + upstream_.in().capacity() + agent_.out().capacity() +
                      upstream_.out().capacity() + pending_from_agent_record_.capacity() +
                      pending_to_agent_record_.capacity() + pending_sealed_to_agent_.capacity();
  if (memory_.Set(held)) return;
  // Give back what this session holds before it says why, so the error itself fits.
  const std::string detail = absl::StrCat("session buffers ", held, " bytes; all sessions ",
                                          env_.memory->used(), " of ", env_.memory->limit());
  agent_.in().Clear();
  upstream_.in().Clear();
  upstream_.out().Clear();
  (void)memory_.Set(0);
  FailToAgent("53200",
              "interlock: out of memory: interlockd's sessions hold all of its memory budget; "
              "try again later",
              "memory_budget", detail);
}

void PgSession::UpdateInterest() {
  if (phase_ == Phase::kDone) return;
  // While a handshake runs, a side waits for what the handshake (or the connect) needs.
  if (phase_ == Phase::kAgentTls) {
    agent_.Watch(agent_.tls()->want() == net::TlsWant::kWrite ? EPOLLOUT : EPOLLIN);
  } else {
    agent_.Watch(agent_.Interest(AgentReadAllowed()));
  }
  if (phase_ == Phase::kUpstreamConnecting) {
    upstream_.Watch(EPOLLOUT);
  } else if (phase_ == Phase::kUpstreamTls) {
    upstream_.Watch(upstream_.tls()->want() == net::TlsWant::kWrite ? EPOLLOUT : EPOLLIN);
  } else {
    upstream_.Watch(upstream_.Interest(UpstreamReadAllowed()));
  }
}

// ---------------------------------------------------------------------------------------
// Agent side: startup

void PgSession::ProcessAgent() {
  while (phase_ == Phase::kAgentStartup || phase_ == Phase::kAgentPassword) {
    if (phase_ == Phase::kAgentStartup) {
      if (agent_.in().empty()) return;
      auto frame = cpg::PeekStartupFrame(agent_.in().view());
      if (!frame.ok()) {
        Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_startup", std::string(frame.status().message()));
        FailToAgent("08P01", absl::StrCat("interlock: invalid startup packet: ", frame.status().message()),
                    "protocol_error", std::string(frame.status().message()));
        return;
      }
      if (!frame->has_value()) return;
      std::string body((*frame)->body);
      size_t total = (*frame)->total_bytes;
      RecordFromAgent(agent_.in().view().substr(0, total));
      agent_.in().Consume(total);
      HandleStartupPacket(body);
    } else {
      auto frame = cpg::PeekFrame(agent_.in().view(), 4096);
      if (!frame.ok()) {
        FailToAgent("08P01", "interlock: invalid password message", "protocol_error",
                    std::string(frame.status().message()));
        return;
      }
      if (!frame->has_value()) return;
      char type = (*frame)->type;
      std::string body((*frame)->body);
      agent_.in().Consume((*frame)->total_bytes);
      if (recorder_) {
        FlushPendingRecords();
        (void)recorder_->AppendEvent("agent_password", "password message (redacted)");
      }
      if (type != cpg::frontend::kPasswordMessage) {
        FailToAgent("08P01", "interlock: expected a password message", "protocol_error",
                    absl::StrCat("got ", cpg::MessageName(type, true)));
        return;
      }
      HandlePassword(body);
    }
  }
  if (phase_ == Phase::kRelay) {
    while (phase_ == Phase::kRelay && RelayFrontend()) {
    }
  }
}

void PgSession::ProcessUpstream() {
  if (phase_ == Phase::kUpstreamSslReply) {
    if (upstream_.in().empty()) return;
    char answer = upstream_.in().view()[0];
    upstream_.in().Consume(1);
    const std::string& mode = ctx_.postgres->sslmode;
    if (answer == 'S') {
      auto tls = net::TlsConnection::Create(*ctx_.tls, upstream_.fd());
      if (!tls.ok()) {
        FailToAgent("08006", "interlock: TLS setup failed", "upstream_tls_failed",
                    std::string(tls.status().message()));
        return;
      }
      upstream_.SetTls(std::move(*tls));
      phase_ = Phase::kUpstreamTls;
      auto step = upstream_.tls()->HandshakeStep();
      if (!step.ok()) {
        Audit(v1::AUDIT_KIND_AUTH, "error", "upstream_tls", std::string(step.status().message()));
        FailToAgent("08006", absl::StrCat("interlock: TLS to resource ", ctx_.resource_name, " failed"),
                    "upstream_tls_failed", std::string(step.status().message()));
      } else if (*step == net::TlsHandshake::kDone) {
        StartUpstreamLogin();
      }
      return;
    }
    if (answer == 'N' && mode == "prefer") {
      StartUpstreamLogin();
      return;
    }
    FailToAgent("08006",
                absl::StrCat("interlock: resource ", ctx_.resource_name, " does not offer TLS (sslmode ", mode, ")"),
                "upstream_tls_refused", absl::StrCat("SSLRequest answered '", std::string(1, answer), "'"));
    return;
  }
  while (phase_ == Phase::kUpstreamAuth || phase_ == Phase::kUpstreamReady) {
    auto frame = cpg::PeekFrame(upstream_.in().view(), 1 << 20);
    if (!frame.ok()) {
      FailToAgent("08P01", "interlock: protocol error from the resource", "upstream_protocol_error",
                  std::string(frame.status().message()));
      return;
    }
    if (!frame->has_value()) return;
    char type = (*frame)->type;
    std::string body((*frame)->body);
    std::string raw(upstream_.in().view().substr(0, (*frame)->total_bytes));
    upstream_.in().Consume((*frame)->total_bytes);
    if (phase_ == Phase::kUpstreamAuth) {
      HandleUpstreamLogin(type, body);
      continue;
    }
    // Authenticated: ParameterStatus, BackendKeyData, notices until ReadyForQuery.
    switch (type) {
      case cpg::backend::kParameterStatus:
      case cpg::backend::kNoticeResponse:
        held_parameter_status_ += raw;
        break;
      case cpg::backend::kBackendKeyData: {
        auto k = cpg::ParseBackendKeyData(body);
        if (!k.ok()) {
          FailToAgent("08P01", "interlock: protocol error from the resource", "upstream_protocol_error",
                      std::string(k.status().message()));
          return;
        }
        upstream_pid_ = k->process_id;
        upstream_key_ = k->secret_key;
        break;
      }
      case cpg::backend::kErrorResponse: {
        auto e = cpg::ParseErrorResponse(body);
        std::string msg = e.ok() ? std::string(e->message()) : "error";
        Audit(v1::AUDIT_KIND_AUTH, "error", "upstream_startup_failed", msg);
        // After authentication the server's error is about the session (e.g. database
        // does not exist): pass it on as it is.
        SendToAgent(raw);
        phase_ = Phase::kClosing;
        outcome_ = "upstream_refused";
        detail_ = msg;
        return;
      }
      case cpg::backend::kReadyForQuery:
        BecomeReady();
        SendToAgent(raw);
        break;
      default:
        FailToAgent("08P01", "interlock: protocol error from the resource", "upstream_protocol_error",
                    absl::StrCat("unexpected ", cpg::MessageName(type, false), " during start-up"));
        return;
    }
  }
  if (phase_ == Phase::kRelay) {
    while (phase_ == Phase::kRelay && RelayBackend()) {
    }
  }
}

}  // namespace interlock::proxy::pg
