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

namespace {


std::string FatalError(absl::string_view sqlstate, absl::string_view message) {
  return FatalErrorBytes(sqlstate, message);
}

// Startup parameters that must not reach the upstream as the agent sent them.
bool Forwardable(absl::string_view name) {
  return name != "user" && name != "database" && name != "replication" &&
         !absl::StartsWith(name, "_pq_.");
}

}  // namespace

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

void PgSession::Abort(const std::string& outcome, const std::string& detail) {
  Finish(outcome, detail, true);
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
  SendToAgent(FatalError(sqlstate, message));
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
  if (withhold_literals_) shown = WithholdLiterals(m, tracker_->standard_conforming_strings());
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
  if (!recorder_) {
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
      Finish("recording_failed", std::string(st.message()), true);
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

// ---------------------------------------------------------------------------------------
// Relay: one message at a time, streaming the big ones

bool PgSession::RelayFrontend() {
  if (frontend_stream_left_ > 0) {
    if (agent_.in().empty()) return false;
    size_t n = static_cast<size_t>(std::min<uint64_t>(frontend_stream_left_, agent_.in().size()));
    absl::string_view chunk = agent_.in().view().substr(0, n);
    if (!frontend_stream_withheld_) {
      RecordFromAgent(chunk);
    } else if (recorder_ && recorder_->keeps_originals()) {
      pending_sealed_from_agent_.append(chunk.data(), chunk.size());
    }
    SendToUpstream(chunk);
    agent_.in().Consume(n);
    frontend_stream_left_ -= n;
    return true;
  }
  if (held_.has_value()) return false;  // nothing passes a statement held for approval
  if (upstream_.out().size() >= kHighWaterBytes) return false;
  auto header = cpg::PeekHeader(agent_.in().view(), cpg::kMaxMessageBytes);
  if (!header.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_frontend_message", std::string(header.status().message()));
    FailToAgent("08P01", absl::StrCat("interlock: protocol violation: ", header.status().message()),
                "protocol_error", std::string(header.status().message()));
    return false;
  }
  if (!header->has_value()) return false;
  const cpg::FrameHeader h = **header;
  if (h.type == cpg::frontend::kCopyData) {
    // COPY FROM STDIN data: not inspected, streamed whatever its size. Withheld, the
    // recording shows an empty CopyData in its place.
    frontend_stream_left_ = h.total_bytes;
    frontend_stream_withheld_ = withhold_literals_;
    if (withhold_literals_) RecordFromAgent(cpg::Encode(cpg::CopyData{}));
    return true;
  }
  if (h.length > kMaxFrontendMessageBytes) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "message_too_large",
          absl::StrCat(cpg::MessageName(h.type, true), " of ", h.length, " bytes"));
    FailToAgent("54000",
                absl::StrCat("interlock: ", cpg::MessageName(h.type, true), " of ", h.length,
                             " bytes exceeds the limit of ", kMaxFrontendMessageBytes),
                "protocol_error", "message too large");
    return false;
  }
  if (agent_.in().size() < h.total_bytes) return false;
  absl::string_view raw = agent_.in().view().substr(0, h.total_bytes);
  // Decoded once: the guard, the tracker, the recording and the result masker all read
  // this same message.
  auto decoded = cpg::DecodeFrontend(h.type, raw.substr(cpg::kMessageHeaderBytes));
  if (!decoded.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_frontend_message", std::string(decoded.status().message()));
    FailToAgent("08P01", absl::StrCat("interlock: protocol violation: ", decoded.status().message()),
                "protocol_error", std::string(decoded.status().message()));
    return false;
  }
  const cpg::FrontendMessage& message = *decoded;
  if (h.type == cpg::frontend::kQuery || h.type == cpg::frontend::kParse || h.type == cpg::frontend::kExecute ||
      h.type == cpg::frontend::kFunctionCall) {
    if (!RecheckToken()) return false;
  }
  const bool statement_message = h.type == cpg::frontend::kQuery || h.type == cpg::frontend::kExecute ||
                                 h.type == cpg::frontend::kFunctionCall;
  // Masking that began mid-session (a reloaded policy brought mask profiles): the masker
  // must see every request whose answer it reads, so it starts when nothing is in flight;
  // until then statements to be masked are refused below (fail closed).
  if (guard_ != nullptr && result_masker_ == nullptr && PolicyHasMaskProfiles() && tracker_->pending() == 0) {
    CreateResultMasker();
  }
  std::optional<GuardVerdict> verdict;
  if (guard_ != nullptr) {
    if (estimating_) return false;
    std::optional<RowEstimates> estimates = std::move(estimates_ready_);
    estimates_ready_.reset();
    auto v = guard_->OnFrontend(message, estimates.has_value() ? &*estimates : nullptr);
    if (!v.ok()) {
      bool limit = absl::IsResourceExhausted(v.status());
      Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", limit ? "too_much_state" : "bad_frontend_message",
            std::string(v.status().message()));
      FailToAgent(limit ? "54000" : "08P01", absl::StrCat("interlock: ", v.status().message()),
                  limit ? "resource_limit" : "protocol_error", std::string(v.status().message()));
      return false;
    }
    // Wait for the server to answer earlier batches; Pump retries after backend progress.
    if (v->kind == GuardVerdict::kWait) return false;
    if (v->kind == GuardVerdict::kEstimate) {
      StartEstimates(std::move(v->estimates));
      return false;
    }
    verdict = *std::move(v);
  }
  absl::Status st = tracker_->OnFrontend(message);
  if (absl::IsResourceExhausted(st)) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "too_many_objects", std::string(st.message()));
    FailToAgent("54000", absl::StrCat("interlock: ", st.message()), "resource_limit", std::string(st.message()));
    return false;
  }
  if (!st.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "bad_frontend_message", std::string(st.message()));
    FailToAgent("08P01", absl::StrCat("interlock: protocol violation: ", st.message()), "protocol_error",
                std::string(st.message()));
    return false;
  }
  RecordFrontendMessage(message, raw);
  Floor floor;
  if (guard_ != nullptr) {
    if (statement_message) {
      floor = SessionFloor();
      if (result_masker_ != nullptr) result_masker_->SetFloor(floor.masker);
      else floor.masker = nullptr;
    }
  }
  ResultMasker::MaskerPtr masker;
  std::string profile;  // empty: the session floor
  if (verdict.has_value() && verdict->decision.has_value() && verdict->decision->action == v1::ACTION_MASK) {
    profile = verdict->decision->mask_profile;
    if (result_masker_ != nullptr && env_.masks != nullptr) {
      // Its rule's profile first (its styles win), then the rest of the floor: a statement
      // that also reads another profile's table is masked by both.
      std::vector<std::string> names = {profile};
      for (const std::string& n : floor.list) {
        if (n != profile) names.push_back(n);
      }
      masker = names.size() == 1 ? env_.masks->Profile(profile) : env_.masks->Floor(names);
      if (masker != nullptr) profile = masker->name();
    }
  } else if (statement_message && floor.applies) {
    // Whatever the statement's kind or decision, its result passes the session floor.
    masker = floor.masker;
  }
  if ((!profile.empty() || (statement_message && floor.applies)) && masker == nullptr) {
    // Fail closed: a result we were told to mask and cannot is not sent.
    std::string name = profile.empty() ? floor.names : profile;
    if (!verdict.has_value() || !verdict->decision.has_value()) {
      // Nothing judged it (an Execute of a SQL cursor): no replacement to send instead.
      Audit(v1::AUDIT_KIND_MASKING, "error", "mask_unavailable", absl::StrCat("mask profile ", name));
      FailToAgent("0A000", absl::StrCat("interlock: mask profile \"", name, "\" is not available; the session is closed"),
                  "mask_failed", absl::StrCat("mask profile ", name, " unavailable"));
      return false;
    }
    verdict->kind = GuardVerdict::kReplace;
    verdict->replacement = guard_->DenyHeld(
        h.type, absl::StrCat("interlock: mask profile \"", name, "\" is not available; the statement was not run"),
        "");
    verdict->audit.set_source("mask_unavailable");
  }
  if (verdict.has_value() && verdict->decision.has_value()) {
    bool statement = h.type == cpg::frontend::kQuery || h.type == cpg::frontend::kExecute ||
                     h.type == cpg::frontend::kFunctionCall;
    if (statement) {
      v1::PolicyDecision light = verdict->audit;
      light.clear_classification();
      tracker_->AttachDecision(std::move(light));
    }
    if (verdict->kind == GuardVerdict::kReplace) {
      AuditDecision(verdict->audit, "denied");
      SendFrontend(verdict->replacement);
      agent_.in().Consume(h.total_bytes);
      return true;
    }
    if (verdict->kind == GuardVerdict::kHold) {
      std::string copy(raw);
      agent_.in().Consume(h.total_bytes);
      StartHold(h.type, std::move(copy), *std::move(verdict));
      return !held_.has_value();
    }
  }
  SendFrontend(raw, masker, profile, verdict.has_value() ? std::move(verdict->shapes) : ResultShapes{}, &message);
  agent_.in().Consume(h.total_bytes);
  return true;
}

PgSession::Floor PgSession::SessionFloor() {
  Floor f;
  if (env_.policy == nullptr || *env_.policy == nullptr) return f;
  std::vector<std::string> names = (*env_.policy)->MaskProfilesFor(subject_, ctx_.resource_name);
  if (names.empty()) return f;
  f.applies = true;
  f.names = absl::StrJoin(names, "+");
  f.list = names;
  if (env_.masks != nullptr) f.masker = env_.masks->Floor(names);
  return f;
}

bool PgSession::PolicyHasMaskProfiles() const {
  return env_.masks != nullptr && env_.policy != nullptr && *env_.policy != nullptr &&
         !(*env_.policy)->policy().mask_profiles().empty();
}

void PgSession::CreateResultMasker() {
  MaskSupport* masks = env_.masks;
  std::string key = ctx_.catalog_key;
  result_masker_ = std::make_unique<ResultMasker>([masks, key](uint32_t oid, int16_t attnum) -> std::optional<ColumnSource> {
    if (masks == nullptr) return ColumnSource{};
    return masks->Lookup(key, oid, attnum);
  });
}

void PgSession::SendFrontend(absl::string_view bytes, ResultMasker::MaskerPtr masker, const std::string& profile,
                             ResultShapes shapes, const cpg::FrontendMessage* decoded) {
  if (result_masker_ != nullptr && bytes.size() >= cpg::kMessageHeaderBytes) {
    std::string prefix =
        decoded != nullptr
            ? result_masker_->OnFrontend(*decoded, std::move(masker), profile, std::move(shapes))
            : result_masker_->OnFrontend(bytes[0], bytes.substr(cpg::kMessageHeaderBytes), std::move(masker),
                                         profile, std::move(shapes));
    if (!prefix.empty()) SendToUpstream(prefix);
  }
  SendToUpstream(bytes);
}

void PgSession::StartEstimates(std::vector<EstimateNeed> needs) {
  int size = 0;
  size_t requests = 0;
  for (const auto& n : needs) {
    size = std::max(size, n.statement_index + 1);
    requests += 1 + n.tables.size();
  }
  auto results = std::make_shared<RowEstimates>(static_cast<size_t>(size));
  auto left = std::make_shared<size_t>(requests);
  estimating_ = true;
  std::shared_ptr<bool> alive = alive_;
  // `table`: "" for the statement's own estimate, else the whole table's (full_table).
  auto finish_one = [this, alive, results, left](int index, std::string table, absl::StatusOr<int64_t> rows) {
    if (!*alive) return;
    if (!rows.ok()) {
      // No estimate: the rule that asked for it applies (fail closed).
      Audit(v1::AUDIT_KIND_POLICY_DECISION, "estimate_failed", table.empty() ? "estimated_rows" : "full_table",
            std::string(rows.status().message()));
    }
    int64_t value = rows.ok() ? *rows : policy::kEstimateFailed;
    if (table.empty()) (*results)[index].rows = value;
    else (*results)[index].table_rows[table] = value;
    if (--*left > 0) return;
    estimates_ready_ = std::move(*results);
    estimating_ = false;
    Pump();
  };
  auto ask = [this, &finish_one](int index, std::string table, EstimateRequest r) {
    if (!ctx_.estimate || r.sql.empty()) {
      // Called later, like a real answer, so the guard is asked again from Pump.
      env_.loop->RunAfter(absl::ZeroDuration(), [finish_one, index, table] {
        finish_one(index, table, absl::UnavailableError("no planner estimate available for this statement"));
      });
      return;
    }
    ctx_.estimate(std::move(r), [finish_one, index, table](absl::StatusOr<int64_t> rows) {
      finish_one(index, table, std::move(rows));
    });
  };
  for (EstimateNeed& n : needs) {
    EstimateRequest r;
    r.sql = std::move(n.sql);
    r.param_type_oids = std::move(n.param_type_oids);
    r.param_formats = std::move(n.param_formats);
    r.params = std::move(n.params);
    ask(n.statement_index, "", std::move(r));
    // The whole table: `EXPLAIN SELECT * FROM t` is the planner's reltuples, scaled to the
    // table's current size.
    for (TableEstimateNeed& t : n.tables) {
      ask(n.statement_index, std::move(t.name), EstimateRequest{.sql = std::move(t.sql)});
    }
  }
}

void PgSession::AuditMasking(std::vector<MaskReport> reports) {
  for (MaskReport& r : reports) {
    v1::AuditEvent ev;
    ev.set_kind(v1::AUDIT_KIND_MASKING);
    ev.set_session_id(ctx_.session_id);
    *ev.mutable_identity() = ctx_.identity;
    ev.set_resource(ctx_.resource_name);
    ev.set_protocol("postgres");
    ev.set_outcome("masked");
    ev.set_reason(r.profile);
    v1::MaskingInfo* m = ev.mutable_masking();
    m->set_profile(r.profile);
    m->set_protocol(r.protocol);
    m->set_rows(r.rows);
    m->set_values_masked(r.values_masked);
    for (auto& c : r.masked_columns) m->add_columns(std::move(c));
    for (const auto& [k, v] : r.counts.detectors) (*m->mutable_detector_counts())[k] = v;
    for (const auto& [k, v] : r.counts.columns) (*m->mutable_column_counts())[k] = v;
    (void)env_.audit->Emit(std::move(ev));
  }
}

bool PgSession::RelayBackend() {
  if (catalog_wait_) return false;
  if (backend_stream_left_ > 0) {
    if (upstream_.in().empty()) return false;
    size_t n = static_cast<size_t>(std::min<uint64_t>(backend_stream_left_, upstream_.in().size()));
    SendToAgent(upstream_.in().view().substr(0, n));
    upstream_.in().Consume(n);
    backend_stream_left_ -= n;
    if (backend_stream_left_ == 0 && !pending_notice_.empty()) {
      SendToAgent(pending_notice_);
      pending_notice_.clear();
    }
    if (backend_stream_left_ == 0 && pending_fatal_.has_value()) {
      PendingFatal f = *std::move(pending_fatal_);
      pending_fatal_.reset();
      FailToAgent(f.sqlstate, f.message, f.outcome, f.message);
      return false;
    }
    return phase_ == Phase::kRelay;
  }
  if (agent_.out().size() >= kHighWaterBytes) return false;
  auto header = cpg::PeekHeader(upstream_.in().view(), cpg::kMaxMessageBytes);
  if (!header.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "error", "bad_backend_message", std::string(header.status().message()));
    FailToAgent("08P01", "interlock: protocol error from the resource", "upstream_protocol_error",
                std::string(header.status().message()));
    return false;
  }
  if (!header->has_value()) return false;
  const cpg::FrameHeader h = **header;
  bool masking = result_masker_ != nullptr && result_masker_->active();
  if ((h.type == cpg::backend::kDataRow || h.type == cpg::backend::kCopyData) && !masking) {
    // Rows and COPY data are counted, not buffered: memory stays bounded whatever the
    // result size (a masked row is buffered whole, one at a time).
    (void)tracker_->OnBackend(h.type, absl::string_view());
    backend_stream_left_ = h.total_bytes;
    return true;
  }
  if (h.length > kMaxBackendMessageBytes) {
    FailToAgent("08P01", "interlock: oversized message from the resource", "upstream_protocol_error",
                absl::StrCat(cpg::MessageName(h.type, false), " of ", h.length, " bytes"));
    return false;
  }
  if (upstream_.in().size() < h.total_bytes) return false;
  absl::string_view raw = upstream_.in().view().substr(0, h.total_bytes);
  std::optional<std::string> replaced;
  absl::string_view replaced_view;  // a masked row, in the masker's buffer
  if (result_masker_ != nullptr) {
    ResultMasker::Out m = result_masker_->OnBackend(h.type, raw);
    switch (m.verdict) {
      case ResultMasker::Verdict::kPass:
        break;
      case ResultMasker::Verdict::kReplace:
        replaced_view = m.view;
        // The original, for auditors only (sealed to their key), after the masked form.
        if (recorder_ && recorder_->keeps_originals()) pending_sealed_to_agent_.append(raw.data(), raw.size());
        break;
      case ResultMasker::Verdict::kDrop:
        // The answer to interlockd's own Describe: neither the agent nor the tracker saw
        // the question.
        upstream_.in().Consume(h.total_bytes);
        AuditMasking(result_masker_->TakeReports());
        return phase_ == Phase::kRelay;
      case ResultMasker::Verdict::kNeedCatalog: {
        // Read the tables' columns on interlockd's own connection, then retry this message.
        catalog_wait_ = true;
        std::shared_ptr<bool> alive = alive_;
        env_.masks->Resolve(ctx_.catalog_key, std::move(m.oids), [this, alive](absl::Status st) {
          if (!*alive) return;
          catalog_wait_ = false;
          if (!st.ok()) {
            Audit(v1::AUDIT_KIND_MASKING, "error", "catalog_unavailable", std::string(st.message()));
            FailToAgent("XX000", "interlock: cannot read the catalog to mask this result; the session is closed",
                        "mask_failed", std::string(st.message()));
          }
          Pump();
        });
        return false;
      }
      case ResultMasker::Verdict::kFatal:
        Audit(v1::AUDIT_KIND_MASKING, "error", "cannot_mask", m.error);
        FailToAgent("0A000", absl::StrCat("interlock: ", m.error, "; the session is closed"), "mask_failed", m.error);
        return false;
    }
  }
  if (guard_ != nullptr) {
    // A denied statement's error, caused by its replacement, becomes interlockd's own.
    std::optional<std::string> mine = guard_->OnBackend(h.type, raw.substr(cpg::kMessageHeaderBytes));
    if (mine.has_value()) replaced = std::move(mine);
  }
  absl::string_view out = replaced.has_value() ? absl::string_view(*replaced) : !replaced_view.empty() ? replaced_view : raw;
  absl::Status tracked = tracker_->OnBackend(h.type, out.substr(cpg::kMessageHeaderBytes));
  if (result_masker_ != nullptr) AuditMasking(result_masker_->TakeReports());
  if (!tracked.ok()) {
    Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "error", "bad_backend_message", std::string(tracked.message()));
  }
  SendToAgent(out);
  upstream_.in().Consume(h.total_bytes);
  AuditStatements(tracker_->TakeCompleted());
  if (close_when_idle_ && h.type == cpg::backend::kReadyForQuery && tracker_->pending() == 0) {
    CloseForGrant();
    return false;
  }
  return phase_ == Phase::kRelay;
}

// ---------------------------------------------------------------------------------------
// Policy: grants, decisions, holds

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

void PgSession::CloseAtBoundary(const std::string& sqlstate, const std::string& message, const std::string& outcome) {
  if (backend_stream_left_ > 0) {
    pending_fatal_ = PendingFatal{sqlstate, message, outcome};
    return;
  }
  FailToAgent(sqlstate, message, outcome, message);
}

bool PgSession::CheckGrant() {
  if (env_.policy == nullptr || *env_.policy == nullptr) return true;
  const v1::ResourcePolicy& rp = (*env_.policy)->ForResource(ctx_.resource_name);
  if (!rp.require_grant()) return true;
  std::optional<v1::Grant> grant;
  if (env_.grants != nullptr) grant = env_.grants->ActiveGrant(ctx_.identity.workload(), ctx_.resource_name);
  if (!grant.has_value()) {
    Audit(v1::AUDIT_KIND_GRANT, "denied", "no_grant",
          absl::StrCat("resource ", ctx_.resource_name, " requires a just-in-time grant for workload ",
                       ctx_.identity.workload()));
    std::string who = ctx_.identity.workload().empty() ? "<workload>" : ctx_.identity.workload();
    FailToAgent("42501",
                absl::StrCat("interlock: resource \"", ctx_.resource_name,
                             "\" requires a just-in-time grant; an operator can run: interlock grant --workload ",
                             who, " --resource ", ctx_.resource_name, " --for 15m --reason '...'"),
                "no_grant", "no active grant");
    return false;
  }
  grant_id_ = grant->id();
  Audit(v1::AUDIT_KIND_GRANT, "allowed", "grant",
        absl::StrCat("session under grant ", grant->id(), " (", grant->reason(), ")"));
  return true;
}

void PgSession::StartGuard() {
  if (env_.policy == nullptr || *env_.policy == nullptr) return;
  GuardOptions g;
  g.resource = ctx_.resource_name;
  g.who = subject_;
  std::array<unsigned char, 8> nonce;
  if (RAND_bytes(nonce.data(), nonce.size()) != 1) {
    // No randomness: fall back to the session id's hash (still never sent to the agent).
    g.nonce = Sha256Hex(ctx_.session_id).substr(0, 16);
  } else {
    g.nonce = absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(nonce.data()), nonce.size()));
  }
  guard_ = std::make_unique<StatementGuard>(std::move(g), env_.policy);
  if (PolicyHasMaskProfiles()) {
    CreateResultMasker();
    result_masker_->SetFloor(SessionFloor().masker);
  }
  // The session's settings as the server announced them at start-up.
  absl::string_view rest = held_parameter_status_;
  while (!rest.empty()) {
    auto frame = cpg::PeekFrame(rest, 1 << 20);
    if (!frame.ok() || !frame->has_value()) break;
    (void)guard_->OnBackend((*frame)->type, (*frame)->body);
    rest.remove_prefix((*frame)->total_bytes);
  }
}

void PgSession::AuditDecision(const v1::PolicyDecision& decision, const std::string& outcome) {
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_POLICY_DECISION);
  ev.set_session_id(ctx_.session_id);
  *ev.mutable_identity() = ctx_.identity;
  ev.set_resource(ctx_.resource_name);
  *ev.mutable_original_destination() = ctx_.original_destination;
  ev.set_protocol("postgres");
  ev.set_outcome(outcome);
  ev.set_reason(decision.rule_id().empty() ? decision.source() : decision.rule_id());
  ev.set_detail(decision.reason());
  *ev.mutable_decision() = decision;
  (void)env_.audit->Emit(std::move(ev));
}

void PgSession::StartHold(char type, std::string raw, GuardVerdict verdict) {
  held_ = Held{type, std::move(raw), "", verdict.audit, std::move(verdict.shapes)};
  const policy::Decision& d = *verdict.decision;
  if (env_.approvals == nullptr) {
    AuditDecision(verdict.audit, "denied");
    std::string repl = guard_->DenyHeld(type, "interlock: statement needs approval, and no approval service is configured",
                                        absl::StrCat("Policy rule \"", d.rule_id, "\"."));
    held_.reset();
    SendFrontend(repl);
    return;
  }
  v1::ApprovalRequest r;
  r.set_session_id(ctx_.session_id);
  *r.mutable_requester() = ctx_.identity;
  r.set_token_subject(subject_.sub);
  r.set_resource(ctx_.resource_name);
  r.set_database(upstream_database_);
  r.set_db_user(upstream_user_);
  r.set_protocol("postgres");
  r.set_statement(verdict.review.statement);
  r.set_audit_statement(ctx_.postgres->audit_literals ? verdict.review.statement
                                                      : sql::NormalizeLiterals(verdict.review.statement));
  r.set_statement_sha256(verdict.review.statement_sha256);
  r.set_parameters_sha256(verdict.review.parameters_sha256);
  {
    // What the approver sees of the bound values: masked like results (the floor's
    // detectors), capped; never in events.
    Floor floor = SessionFloor();
    for (size_t i = 0; i < verdict.review.params.size(); ++i) {
      const auto& p = verdict.review.params[i];
      int16_t format = verdict.review.param_formats.empty()     ? 0
                       : verdict.review.param_formats.size() == 1 ? verdict.review.param_formats[0]
                                                                  : verdict.review.param_formats[i];
      std::string shown = !p.has_value() ? "NULL"
                          : format == 1  ? absl::StrCat("\\x", absl::BytesToHexString(*p))
                                         : *p;
      if (p.has_value() && floor.masker != nullptr) {
        std::string masked;
        if (floor.masker->MaskText(shown, &masked, nullptr)) shown = std::move(masked);
        if (format == 1 && floor.masker->has_column_rules()) shown = "[binary value withheld]";
      }
      if (shown.size() > 256) shown = absl::StrCat(shown.substr(0, 256), "...");
      r.add_parameters(std::move(shown));
    }
  }
  r.set_fingerprint(verdict.review.fingerprint);
  r.set_rule_id(d.rule_id);
  r.set_reason(d.reason);
  r.set_classification(absl::StrJoin(verdict.audit.statements(), "; "));
  auto submitted = env_.approvals->Submit(std::move(r), d.review_timeout,
                                          [this](const v1::ApprovalRequest& done) { OnHoldResolved(done); });
  if (!submitted.ok()) {
    AuditDecision(verdict.audit, "denied");
    std::string repl = guard_->DenyHeld(
        type, "interlock: statement needs approval, and the approval request could not be stored",
        std::string(submitted.status().message()));
    held_.reset();
    SendFrontend(repl);
    return;
  }
  held_->approval_id = submitted->id();
  held_->audit.set_approval_id(submitted->id());
  if (submitted->state() == v1::APPROVAL_STATE_APPROVED) {
    ReleaseHeld("approval_window", *submitted);
    return;
  }
  AuditDecision(held_->audit, "held");
  // Tell whoever waits (a human at psql, an LLM reading notices) why, at once.
  cpg::NoticeResponse notice;
  notice.fields = {{cpg::field::kSeverity, "NOTICE"},
                   {cpg::field::kSeverityNonLocalized, "NOTICE"},
                   {cpg::field::kSqlState, "00000"},
                   {cpg::field::kMessage,
                    absl::StrCat("interlock: statement held for approval ", submitted->id(), " (rule ",
                                 d.rule_id.empty() ? "resource default" : d.rule_id, "); waiting up to ",
                                 absl::ToInt64Seconds(d.review_timeout), " s")},
                   {cpg::field::kHint, "An approver decides with `interlock approve` or `interlock deny`; "
                                       "cancel the statement to withdraw it."}};
  SendNoticeToAgent(cpg::Encode(notice));
}

void PgSession::SendNoticeToAgent(const std::string& bytes) {
  // Never inside a message being streamed through: after it.
  if (backend_stream_left_ > 0) {
    pending_notice_ += bytes;
  } else {
    SendToAgent(bytes);
  }
}

Withdrawal PgSession::WithdrawHold() {
  if (phase_ != Phase::kRelay || !held_.has_value() || held_->approval_id.empty()) return Withdrawal::kNothingHeld;
  // Before the refusal below goes upstream: did anything sent earlier still await the server?
  const Withdrawal w = guard_->EarlierWorkInFlight() ? Withdrawal::kBusy : Withdrawal::kIdle;
  Held h = std::move(*held_);
  held_.reset();
  if (env_.approvals != nullptr) {
    env_.approvals->Abandon(h.approval_id, "withdrawn: the agent cancelled the statement before a decision");
  }
  h.audit.set_source("withdrawn_by_cancel");
  AuditDecision(h.audit, "denied");
  SendFrontend(guard_->DenyHeld(h.type, "canceling statement due to user request",
                                absl::StrCat("interlock: the statement held for approval ", h.approval_id,
                                             " was withdrawn before a decision; it was not run."),
                                "57014"));
  Pump();
  return w;
}

void PgSession::ReleaseHeld(const std::string& source, const v1::ApprovalRequest& request) {
  Held h = std::move(*held_);
  held_.reset();
  h.audit.set_source(source);
  h.audit.set_approval_id(request.id());
  // Approval lets the statement run, not its values out: the result passes the floor.
  Floor floor = SessionFloor();
  if (floor.applies && (floor.masker == nullptr || result_masker_ == nullptr)) {
    h.audit.set_source("mask_unavailable");
    AuditDecision(h.audit, "denied");
    SendFrontend(guard_->DenyHeld(
        h.type, absl::StrCat("interlock: mask profile \"", floor.names, "\" is not available; the statement was not run"),
        ""));
    return;
  }
  AuditDecision(h.audit, "released");
  if (result_masker_ != nullptr) result_masker_->SetFloor(floor.masker);
  SendFrontend(h.raw, floor.masker, "", std::move(h.shapes));
}

void PgSession::OnHoldResolved(const v1::ApprovalRequest& request) {
  if (phase_ == Phase::kDone || !held_.has_value() || held_->approval_id != request.id()) return;
  if (request.state() == v1::APPROVAL_STATE_APPROVED) {
    ReleaseHeld("approved", request);
  } else {
    Held h = std::move(*held_);
    held_.reset();
    bool timeout = request.state() == v1::APPROVAL_STATE_TIMED_OUT;
    h.audit.set_source(timeout ? "review_timeout" : "review_denied");
    AuditDecision(h.audit, "denied");
    std::string message =
        timeout ? absl::StrCat("interlock: approval ", request.id(), " timed out; the statement was not run")
                : absl::StrCat("interlock: approval ", request.id(), " denied: ",
                               request.decision_reason().empty() ? "no reason given" : request.decision_reason());
    std::string detail = absl::StrCat("Policy rule \"", request.rule_id(), "\"",
                                      request.approver().user().empty() ? "" : absl::StrCat("; decided by ", request.approver().user()),
                                      ".");
    SendFrontend(guard_->DenyHeld(h.type, message, detail));
  }
  Pump();
}

const std::string& PgSession::held_approval() const {
  static const std::string kNone;
  return held_.has_value() ? held_->approval_id : kNone;
}

void PgSession::EndForGrant(const std::string& detail, bool after_statement) {
  if (phase_ == Phase::kDone || phase_ == Phase::kClosing) return;
  grant_end_detail_ = detail;
  if (after_statement && phase_ == Phase::kRelay && tracker_ != nullptr && tracker_->pending() > 0 &&
      !held_.has_value()) {
    close_when_idle_ = true;  // at the next ReadyForQuery with nothing in flight
    return;
  }
  CloseForGrant();
  Pump();
}

void PgSession::CloseForGrant() {
  Audit(v1::AUDIT_KIND_GRANT, "closed", "grant_ended", grant_end_detail_);
  CloseAtBoundary("57P01", absl::StrCat("interlock: terminating connection: ", grant_end_detail_), "grant_ended");
}

}  // namespace interlock::proxy::pg
