// PgSession: one agent connection to a protected PostgreSQL resource. interlockd speaks
// protocol 3.0 as the server to the agent and as a client to the real database
// (PostgreSQL docs chapter 55):
//
//   agent                        interlockd                         database
//   SSLRequest ───────────────► 'N' (TLS towards the agent is not offered)
//   StartupMessage ───────────► [token mode: AuthenticationCleartextPassword ◄─► token]
//                               connect, [SSLRequest → TLS per sslmode],
//                               StartupMessage(user/database from config) ─────────►
//                               SCRAM / md5 / password with the configured secret ◄──►
//                               ◄───────────── AuthenticationOk, ParameterStatus*,
//                                              BackendKeyData, ReadyForQuery
//   ◄─ AuthenticationOk, ParameterStatus*, BackendKeyData (interlockd's own), ReadyForQuery
//   then every message both ways, each frontend statement and its completion observed by
//   the StatementTracker and audited; DataRow/CopyData stream through without buffering.
//
// The agent never sees the upstream credentials or SCRAM material; only what it sent and
// received is recorded (a token in the password field is recorded as redacted). A
// CancelRequest (a separate connection, through the same redirect) is mapped to the
// upstream backend's key and forwarded, only for the workload that owns the session.
// Malformed input from either side ends the session with a protocol-native ErrorResponse
// and an audit event.
//
// One class, four files by what each part does: pg_session.cc (life cycle, I/O, audit and
// recording), pg_session_login.cc (agent startup, TLS, token; upstream connect and login),
// pg_session_statements.cc (the relay phase: decode once, guard, tracker, masker,
// estimates), pg_session_holds.cc (approval holds and grants).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "interlock/v1/events.pb.h"
#include "interlock/v1/identity.pb.h"
#include "userspace/audit/audit_log.h"
#include "userspace/auth/token_verifier.h"
#include "userspace/common/clock.h"
#include "userspace/common/memory_budget.h"
#include "userspace/common/unique_fd.h"
#include "userspace/config/config.h"
#include "userspace/net/event_loop.h"
#include "userspace/net/relay_buffer.h"
#include "userspace/net/socket.h"
#include "userspace/net/tls.h"
#include "userspace/policy/evaluator.h"
#include "userspace/proxy/core/approval_gate.h"
#include "userspace/proxy/pg/cancel_registry.h"
#include "userspace/proxy/pg/guard.h"
#include "userspace/proxy/pg/mask_support.h"
#include "userspace/proxy/pg/result_masker.h"
#include "userspace/proxy/pg/row_estimator.h"
#include "userspace/proxy/pg/statement_tracker.h"
#include "userspace/proxy/pg/upstream_login.h"
#include "userspace/proxy/core/session.h"
#include "userspace/proxy/core/stream_side.h"
#include "userspace/record/recorder.h"

namespace interlock::proxy::pg {

// Largest frontend message buffered whole (CopyData streams through regardless).
inline constexpr uint32_t kMaxFrontendMessageBytes = 16 << 20;
// Largest backend message buffered whole (DataRow and CopyData stream through).
inline constexpr uint32_t kMaxBackendMessageBytes = 64 << 20;
// Stop reading a side while this much is queued towards the other.
inline constexpr size_t kHighWaterBytes = 1 << 20;

struct PgSessionContext {
  std::string session_id;
  v1::WorkloadIdentity identity;
  v1::Endpoint original_destination;
  std::string resource_name;
  const config::PostgresConfig* postgres = nullptr;  // outlives the session
  net::SockAddr upstream;
  // For sslmode != disable: the context to use (owned by the engine, per resource).
  net::TlsClientContext* tls = nullptr;
  // When set, TLS is terminated towards the agent (SSLRequest answered 'S').
  net::TlsServerContext* agent_tls = nullptr;
  // For agent_auth TOKEN: verifies the token in the password field (owned by the engine).
  const auth::TokenVerifier* token_verifier = nullptr;
  // The token bound to the workload's enrollment, read now (re-read on each call, so a
  // rotated file is seen): nullopt when none is bound. Unset: no bindings.
  std::function<absl::StatusOr<std::optional<std::string>>()> bound_token;
  // Planner row estimates on interlockd's own connection (policy estimated_rows_gt and
  // full_table: the statement's, and whole tables'); the
  // callback runs later on the loop. Unset: estimates are unavailable (rules apply).
  std::function<void(EstimateRequest, std::function<void(absl::StatusOr<int64_t>)>)> estimate;
  // Names this session's upstream for the masking catalog cache ("resource@ip:port").
  std::string catalog_key;
  absl::Duration connect_timeout = absl::Seconds(5);
};

// A FATAL ErrorResponse with `sqlstate` and `message`: what a refused connection is told
// before it is closed (PostgreSQL itself answers "too many clients" this way, before or
// after the startup packet; libpq reports it either way).
std::string FatalErrorBytes(absl::string_view sqlstate, absl::string_view message);

struct PgSessionEnv {
  net::EventLoop* loop = nullptr;
  audit::AuditLog* audit = nullptr;
  CancelRegistry* cancels = nullptr;
  const Clock* clock = nullptr;
  // The engine's current policy (null or pointing at null: statements are audited, not
  // judged). Read at each decision; replaced on reload.
  const std::shared_ptr<const policy::PolicyEvaluator>* policy = nullptr;
  // Approval holds and just-in-time grants (owned by the engine). Without a gate, a
  // statement sent to review is denied (fail closed).
  ApprovalGate* approvals = nullptr;
  GrantLookup* grants = nullptr;
  // Mask profiles and the catalog, for statements the policy decides to MASK. Without it
  // such statements are refused (fail closed).
  MaskSupport* masks = nullptr;
  // All sessions' buffers together (owned by the engine). Null: unbounded (tests).
  MemoryBudget* memory = nullptr;
};

class PgSession final : public ProxySession {
 public:
  using DoneFn = std::function<void(PgSession*)>;

  static absl::StatusOr<std::unique_ptr<PgSession>> Start(PgSessionEnv env, UniqueFd agent,
                                                          PgSessionContext ctx,
                                                          std::unique_ptr<record::Recorder> recorder,
                                                          DoneFn done);
  ~PgSession() override;

  void Abort(const std::string& outcome, const std::string& detail = "") override;
  absl::Status FlushRecording() override;
  const record::Recorder* recorder() const override { return recorder_.get(); }
  const RelayStats& stats() const override { return stats_; }
  bool done() const override { return phase_ == Phase::kDone; }
  const std::string& outcome() const override { return outcome_; }
  const std::string& detail() const override { return detail_; }
  absl::Duration last_activity() const override {
    return held_.has_value() ? env_.clock->Monotonic() : last_activity_;
  }
  void EndForGrant(const std::string& detail, bool after_statement) override;
  const v1::WorkloadIdentity* learned_identity() const override {
    return subject_.has_token ? &ctx_.identity : nullptr;
  }
  // The grant this session runs under ("" when the resource needs none).
  const std::string& grant_id() const override { return grant_id_; }
  // The pending approval request holding this session, if any.
  const std::string& held_approval() const;
 private:
  enum class Phase {
    kAgentStartup,        // waiting for SSLRequest/StartupMessage/CancelRequest
    kAgentTls,            // TLS handshake with the agent
    kAgentPassword,       // token mode: waiting for the PasswordMessage
    kUpstreamConnecting,  // TCP connect in progress
    kUpstreamSslReply,    // SSLRequest sent, waiting for 'S'/'N'
    kUpstreamTls,         // TLS handshake
    kUpstreamAuth,        // StartupMessage sent, authenticating
    kUpstreamReady,       // authenticated, collecting ParameterStatus/BackendKeyData
    kRelay,               // both ways
    kClosing,             // flushing a final error to the agent
    kDone,
  };
  enum Side { kAgent = 0, kUpstream = 1 };
  using Watcher = SideWatcher<PgSession, Side>;
  friend Watcher;

  PgSession(PgSessionEnv env, UniqueFd agent, PgSessionContext ctx,
            std::unique_ptr<record::Recorder> recorder, DoneFn done);

  void OnIo(Side side, uint32_t events);
  void StepAgentTls();
  void Pump();
  bool ReadAgent();
  bool ReadUpstream();
  bool FlushAgent();
  bool FlushUpstream();
  void ProcessAgent();
  void ProcessUpstream();
  void HandleStartupPacket(absl::string_view body);
  void HandleCancel(int32_t pid, int32_t key);
  void HandlePassword(absl::string_view body);
  void ConnectUpstream();
  void OnUpstreamConnected();
  void StartUpstreamLogin();
  void HandleUpstreamLogin(char type, absl::string_view body);
  void BecomeReady();
  bool RelayFrontend();
  bool RelayBackend();
  void UpdateInterest();
  // Sets memory_ to what the buffers hold now. When that would exceed the global budget,
  // the buffers are dropped and the session fails with 53200 (outcome memory_budget).
  void ChargeMemory();
  // True when the agent's unread bytes are only the start of a message (so, after its
  // EOF, can never become one).
  bool AgentInputIsPartial() const;
  void SendToAgent(absl::string_view bytes);
  void SendToUpstream(absl::string_view bytes) { upstream_.out().Append(bytes); }
  void RecordFromAgent(absl::string_view bytes);
  // A whole frontend message of the relay phase: recorded as it is, or with its literal
  // values withheld (literal_withholding.h) and the original sealed when originals are kept.
  void RecordFrontendMessage(const codec::pg::FrontendMessage& m, absl::string_view raw);
  void FlushPendingRecords();
  void FailToAgent(absl::string_view sqlstate, absl::string_view message, const std::string& outcome,
                   const std::string& detail);
  void Finish(const std::string& outcome, const std::string& detail, bool reset);
  void AuditStatements(std::vector<v1::StatementInfo> statements);
  void Audit(v1::AuditKind kind, const std::string& outcome, const std::string& reason,
             const std::string& detail);
  bool AgentReadAllowed() const;
  bool UpstreamReadAllowed() const;
  // Policy: decisions, holds and grants.
  bool CheckGrant();
  void StartGuard();
  void StartHold(char type, std::string raw, GuardVerdict verdict);
  void OnHoldResolved(const v1::ApprovalRequest& request);
  void ReleaseHeld(const std::string& source, const v1::ApprovalRequest& request);
  // The agent cancelled its held statement: the request expires (audited), the agent gets
  // 57014. False when nothing is held.
  Withdrawal WithdrawHold();
  // A NoticeResponse of interlockd's own, at the next backend message boundary.
  void SendNoticeToAgent(const std::string& bytes);
  void AuditDecision(const v1::PolicyDecision& decision, const std::string& outcome);
  void CloseForGrant();
  // Token: verify and adopt (claims into the policy subject and the identity). False when
  // refused (the agent got the error).
  bool AcceptToken(absl::string_view token, const std::string& source);
  // TOKEN_EXPIRY_RECHECK before a statement: false when the session was closed.
  bool RecheckToken();
  void OnTokenExpired();
  // Ends the session with a FATAL error at the next backend message boundary (never
  // inside a streamed DataRow/CopyData).
  void CloseAtBoundary(const std::string& sqlstate, const std::string& message, const std::string& outcome);
  // Sends a frontend message upstream, telling the result masker first (it may prepend a
  // Describe of its own).
  // `masker`: the statement's profile (its rule's, named by `profile`) or the session
  // floor (`profile` empty).
  // `shapes`: what the results' columns are derived from (GuardVerdict::shapes).
  // `decoded`: `bytes` decoded, when it is the agent's message as the relay decoded it
  // (otherwise the masker decodes the bytes: a message of interlockd's own).
  void SendFrontend(absl::string_view bytes, ResultMasker::MaskerPtr masker = nullptr,
                    const std::string& profile = "", ResultShapes shapes = {},
                    const codec::pg::FrontendMessage* decoded = nullptr);
  // The session floor: every mask profile of the current policy that applies to this
  // workload on this resource, merged (policy::PolicyEvaluator::MaskProfilesFor).
  struct Floor {
    bool applies = false;
    std::vector<std::string> list;    // the profiles, in rule order
    std::string names;                // "pii+cards", for messages
    ResultMasker::MaskerPtr masker;  // null when it applies but is not available: fail closed
  };
  Floor SessionFloor();
  bool PolicyHasMaskProfiles() const;
  void CreateResultMasker();
  void AuditMasking(std::vector<MaskReport> reports);
  // A rule needs planner estimates: ask for them, then judge the same message again.
  void StartEstimates(std::vector<EstimateNeed> needs);

  PgSessionEnv env_;
  PgSessionContext ctx_;
  std::unique_ptr<record::Recorder> recorder_;
  DoneFn done_;
  Watcher agent_watcher_{this, kAgent};
  Watcher upstream_watcher_{this, kUpstream};
  // The two sides: socket, TLS, what was read (in) and what is queued (out) for each.
  StreamSide agent_{env_.loop, &agent_watcher_, "agent"};
  StreamSide upstream_{env_.loop, &upstream_watcher_, "upstream"};
  Phase phase_ = Phase::kAgentStartup;

  // This session's share of env_.memory: what its buffers hold (ChargeMemory).
  MemoryBudget::Lease memory_;
  // Bytes seen but not yet written to the recording, per direction (one record per batch).
  std::string pending_from_agent_record_;
  std::string pending_to_agent_record_;
  // Original messages that masking replaced, sealed after the masked batch (when kept).
  std::string pending_sealed_to_agent_;
  // Original frontend messages whose literals the recording withholds, sealed after the
  // batch they belong to (when kept).
  std::string pending_sealed_from_agent_;
  // Statement literals, bound values and COPY data are withheld from the recording
  // (the resource's audit_literals is false); set when the relay starts.
  bool withhold_literals_ = false;
  // The streamed frontend message is COPY data whose bytes are withheld.
  bool frontend_stream_withheld_ = false;
  // Bytes of a streamed (not buffered) message still to pass through, per direction.
  uint64_t frontend_stream_left_ = 0;
  uint64_t backend_stream_left_ = 0;
  // Whether a FATAL ErrorResponse sent now reaches the agent as a message of its own:
  // after its StartupMessage, with no partial message queued toward it.
  bool AgentBetweenMessages() const;
  // The recording failed: nothing more is handed to the recorder (what is sent after is
  // interlockd's own FATAL, which the recording cannot take).
  bool recording_failed_ = false;

  std::unique_ptr<UpstreamLogin> login_;
  // The last statement's normalized text, shared by tracker_ and the recording (declared
  // first: the tracker holds a pointer to it).
  sql::NormalizeMemo normalize_memo_;
  std::unique_ptr<StatementTracker> tracker_;
  std::vector<std::pair<std::string, std::string>> agent_params_;
  std::string upstream_user_, upstream_database_;
  std::string held_parameter_status_;  // ParameterStatus/Notice bytes until ReadyForQuery
  bool negotiate_version_ = false;
  std::vector<std::string> unsupported_options_;
  uint16_t agent_minor_version_ = 0;
  uint32_t our_pid_ = 0;
  uint32_t our_key_ = 0;
  bool cancel_registered_ = false;
  int32_t upstream_pid_ = 0, upstream_key_ = 0;

  // Policy.
  policy::SubjectFacts subject_;
  std::unique_ptr<StatementGuard> guard_;
  struct Held {
    char type = 0;
    std::string raw;  // the agent's exact message, forwarded on approval
    std::string approval_id;
    v1::PolicyDecision audit;
    ResultShapes shapes;  // for the result masker, when released
  };
  std::optional<Held> held_;
  // A NoticeResponse of ours waiting for the end of a backend message being streamed.
  std::string pending_notice_;
  // AuditStatements' reusable event (session fields set once; reset when identity changes).
  std::optional<v1::AuditEvent> statement_event_;
  std::string grant_id_;
  std::string grant_end_detail_;
  bool close_when_idle_ = false;
  absl::Time token_expires_ = absl::InfiniteFuture();
  net::EventLoop::TimerId token_timer_ = 0;
  struct PendingFatal {
    std::string sqlstate, message, outcome;
  };
  std::optional<PendingFatal> pending_fatal_;
  // Masking: present when the policy has mask profiles (created when the session starts, or
  // at the first idle moment after a reload brings some).
  std::unique_ptr<ResultMasker> result_masker_;
  bool catalog_wait_ = false;
  bool estimating_ = false;
  std::optional<RowEstimates> estimates_ready_;
  // Cleared when the session ends: asynchronous callbacks check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  net::EventLoop::TimerId connect_timer_ = 0;
  net::EventLoop::TimerId resume_timer_ = 0;
  RelayStats stats_;
  absl::Duration last_activity_;
  std::string outcome_ = "closed";
  std::string detail_;
};

// Sends a CancelRequest for (pid, key) to `upstream` on a new connection, without
// blocking the loop; gives up after 5 s. Fire and forget.
void SendCancelAsync(net::EventLoop& loop, const net::SockAddr& upstream, uint32_t pid, uint32_t key);

}  // namespace interlock::proxy::pg
