// HttpSession: one agent connection to a protected HTTP or HTTPS resource. interlockd is
// the server to the agent and a client to the upstream, one exchange at a time:
//
//   agent                               interlockd                            upstream
//   [TLS: ClientHello(SNI) ──────────► leaf for SNI (or the dialled IP), minted by the
//                                      interception CA]
//   request head ────────────────────► parsed strictly (codec/http: smuggling refused),
//                                      target normalised, SNI == Host checked, judged
//                                      (policy HttpMatch) ─┬─ DENY: 403 problem+json
//                                                          ├─ REVIEW: body read, held,
//                                                          │  released byte-exact on approval
//                                                          └─ ALLOW: forwarded
//                                      head re-serialised: hop-by-hop fields and the agent's
//                                      credentials removed, the resource's credential
//                                      injected, the body re-framed ─────────────────────►
//                                      [connect, TLS verify-full on first use; kept alive]
//   ◄──────────────────────────────── response head and body (chunked re-encoded,
//                                      read-until-close turned into chunked)
//   one AUDIT_KIND_HTTP_REQUEST event per exchange, then the next request (keep-alive;
//   pipelined requests wait in the buffer until the exchange before them ends).
//
// Response masking: a MASK rule's profile (with the workload's mask profiles, the session
// floor) or the floor alone for any request that is forwarded. The request is made
// maskable (response_masking.h: no Range, only codings interlockd decodes), the response
// body is streamed through mask::BodyMasker (JSON by member name and detectors, text by
// detectors, gzip/deflate decoded and re-encoded) and re-framed chunked (HTTP/1.0 agents:
// until close). A body that fails to mask midway ends the connection without its last
// chunk: the agent never receives an unmasked rest. A profile that is not available
// refuses the request (403, mask_unavailable) — fail closed.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "interlock/v1/events.pb.h"
#include "interlock/v1/identity.pb.h"
#include "userspace/codec/http/chunked.h"
#include "userspace/codec/http/framing.h"
#include "userspace/codec/http/head.h"
#include "userspace/common/memory_budget.h"
#include "userspace/config/config.h"
#include "userspace/mask/body_masker.h"
#include "userspace/mask/masker.h"
#include "userspace/net/socket.h"
#include "userspace/net/tls.h"
#include "userspace/policy/evaluator.h"
#include "userspace/proxy/core/protocol.h"
#include "userspace/proxy/core/session.h"
#include "userspace/proxy/core/stream_side.h"
#include "userspace/proxy/http/agent_identity.h"
#include "userspace/proxy/http/credential.h"
#include "userspace/proxy/http/request_recording.h"
#include "userspace/record/recorder.h"

namespace interlock::proxy::http {

// Stop reading a side while this much is queued towards the other.
inline constexpr size_t kHighWaterBytes = 1 << 20;
// A masked body is fed to its masker at most this much at a time (bounds the scratch).
inline constexpr size_t kMaskPieceBytes = 64 << 10;
// An upstream connection read from less than this long ago is reused without asking the
// socket whether it closed meanwhile (servers close idle connections after seconds).
inline constexpr absl::Duration kUpstreamFreshFor = absl::Milliseconds(250);

struct HttpSessionContext {
  std::string session_id;
  v1::WorkloadIdentity identity;
  v1::Endpoint original_destination;
  const config::ResourceConfig* resource = nullptr;  // outlives the session; has http
  net::SockAddr upstream;
  // HTTPS: the server context that mints the agent-facing leaf, and the name to mint for
  // when the agent sends no SNI (the address it dialled). Null: HTTP in clear.
  net::TlsServerContext* agent_tls = nullptr;
  std::string fallback_name;
  // HTTPS: the verify-full client context for an upstream server name (cached by the
  // protocol). Errors end the exchange with 502.
  std::function<absl::StatusOr<net::TlsClientContext*>(const std::string& server_name)> upstream_tls;
  // The resource's credential, re-read when its file changes (owned by the protocol).
  // Null: read from the reference for each request.
  CredentialSource* credential = nullptr;
  // Agent identity (agent_identity.h): the resource's token verifier (null: no
  // token_issuers), the token bound to the agent's enrollment, and interlockd's assertion
  // key (null: identity_headers is off). Owned by the engine and the protocol.
  const auth::TokenVerifier* token_verifier = nullptr;
  std::function<absl::StatusOr<std::optional<std::string>>()> bound_token;
  const auth::jwt::AssertionKey* assertion_key = nullptr;
};

class HttpSession final : public ProxySession {
 public:
  using DoneFn = std::function<void(HttpSession*)>;

  static absl::StatusOr<std::unique_ptr<HttpSession>> Start(const ProtocolEnv& env, UniqueFd agent,
                                                            HttpSessionContext ctx,
                                                            std::unique_ptr<record::Recorder> recorder, DoneFn done);
  ~HttpSession() override;

  void Abort(const std::string& outcome, const std::string& detail = "") override;
  absl::Status FlushRecording() override;
  const record::Recorder* recorder() const override { return recorder_.get(); }
  const RelayStats& stats() const override { return stats_; }
  bool done() const override { return phase_ == Phase::kDone; }
  const std::string& outcome() const override { return outcome_; }
  const std::string& detail() const override { return detail_; }
  absl::Duration last_activity() const override;

 private:
  enum class Phase {
    kAgentTls,     // TLS handshake with the agent
    kRequestHead,  // waiting for the next request head
    kReadBody,     // reading a request body whole (held for approval)
    kHeld,         // waiting for an approver
    kExchange,     // forwarding the request and relaying the response
    kClosing,      // flushing interlockd's last answer, then closing
    kDone,
  };
  enum Side { kAgent = 0, kUpstream = 1 };
  using Watcher = SideWatcher<HttpSession, Side>;
  friend Watcher;

  // The exchange in progress: what the audit event will say, and how each body is framed.
  struct Exchange {
    v1::HttpExchange audit;
    v1::PolicyDecision decision;
    policy::HttpRequestFacts facts;
    std::string method;
    codec::http::Version version = codec::http::Version::kHttp11;
    codec::http::BodyFraming request_body;
    bool expect_continue = false;
    bool agent_wants_close = false;
    absl::Duration started;
    std::string forward_head;  // the request head as forwarded (credential included)
    bool injects_credential = false;
    std::string held_body;     // the whole body (REVIEW, or judged), re-framed with Content-Length
    bool judge_after_body = false;  // a rule judges body fields: decide once it is read
    bool body_judged = false;
    std::string approval_id;
    // Request body still to forward (kLength), or the chunked decoder.
    uint64_t request_left = 0;
    std::optional<codec::http::ChunkedDecoder> request_chunks;
    bool request_done = false;
    // Response.
    bool response_head_seen = false;
    codec::http::BodyFraming response_body;
    // How the body reaches the agent: kChunked (re-encoded: chunked upstream, read-until-
    // close, or masked), else as the upstream framed it (kLength, kUntilClose).
    codec::http::BodyKind response_to_agent = codec::http::BodyKind::kNone;
    uint64_t response_left = 0;
    std::optional<codec::http::ChunkedDecoder> response_chunks;
    bool response_done = false;
    bool close_after = false;
    // Masking: the profile the answer passes (null: none applies), and the body's masker
    // once the response head said what the body is.
    std::shared_ptr<const mask::Masker> masker;
    std::unique_ptr<mask::BodyMasker> body_masker;
    // The response head, then any masked output, wait here until the body masker has told
    // the body apart (BodyMasker::decided: its first bytes, a sniffed kind): a refusal
    // (text field rules cannot reach, UTF-16) then reaches the agent as a whole 502, never
    // as an upstream head cut short.
    std::optional<std::string> held_head;
    std::string held_output;
    // What masking replaced in the response heads (interim ones included).
    mask::MaskCounts head_counts;
  };

  HttpSession(const ProtocolEnv& env, UniqueFd agent, HttpSessionContext ctx,
              std::unique_ptr<record::Recorder> recorder, DoneFn done);

  void OnIo(Side side, uint32_t events);
  void Pump();
  bool ReadSide(Side side);
  bool FlushSide(Side side);
  void UpdateInterest();
  bool AgentReadAllowed() const;
  bool UpstreamReadAllowed() const;
  void ChargeMemory();
  void StepAgentTls();

  // One step of the exchange state machine; true when it moved something.
  bool Advance();
  bool OnRequestHead();
  // Moves request body data (chunk framing removed) from the agent's buffer to `sink` while
  // `more()` says so, setting request_done at its end. kFailed: the body is malformed (the
  // agent was answered, the session closes).
  enum class BodyPull { kNothing, kProgress, kFailed };
  BodyPull PullRequestBody(const std::function<void(absl::string_view)>& sink, const std::function<bool()>& more);
  bool ReadHeldBody();
  bool ForwardRequestBody();
  bool RelayResponse();
  bool RelayResponseBody();
  // Decides `ex_` and acts: answers, holds, or starts forwarding.
  void Decide();
  // Re-writes the head to forward (its fields through `edit`); false if it cannot be.
  bool EditForwardHead(
      const std::function<std::vector<codec::http::HeaderField>(const std::vector<codec::http::HeaderField>&)>& edit);
  // The response head: what masking makes of it (plan, masker, agent framing); false when
  // the response was refused instead (the agent answered 502).
  bool PlanMasking(const std::vector<codec::http::HeaderField>& fields, std::vector<codec::http::HeaderField>* out);
  // A response head under ex_->masker: field values (but the framing) and the reason phrase
  // through the profile's detectors (MaskResponseHeadFields), masked values kept in
  // *storage; counted in ex_->head_counts and named in the audit's response_fields_masked.
  // True when anything in the head was masked.
  bool MaskResponseHead(std::vector<codec::http::HeaderField>* fields, absl::string_view* reason,
                        std::deque<std::string>* storage);
  // Body bytes (framing removed) of the response towards the agent: masked when a masker
  // applies, framed for the agent; `last` ends the body. False: masking failed and the
  // session was ended, or the body was refused (502) before any of it was sent.
  bool EmitResponseBody(absl::string_view data, bool last);
  // A head masking changed: with an auditor key, its first `head_bytes` as the upstream sent
  // them (still in upstream_.in()) are sealed to it, as a masked body's originals are.
  void SealOriginalHead(size_t head_bytes);
  // The response cannot be masked and may not pass: audited, the upstream connection (its
  // body unread) ended, the agent answered 502 mask_unavailable.
  void RefuseUnmaskable(const std::string& reason);
  void StartForwarding();
  // Agent identity (http_session_identity.cc). Which token speaks for the agent on this
  // request, into subject_ and the audit identity; false when the request was refused
  // (401) instead.
  bool IdentifyAgent(const codec::http::Request& req);
  // The forwarded fields without any Interlock-* the agent sent (names to `removed`) and,
  // with identity_headers, with interlockd's identity headers (values in `storage`); false
  // when the request was refused (502) instead.
  // A request released after a hold: its Interlock-Assertion signed again (a fresh iat,
  // exp and jti; the hold may have outlasted kAssertionLifetime). False when the request
  // was refused (502) instead.
  bool RenewAssertion();
  bool SetIdentityHeaders(const codec::http::Request& req, std::vector<codec::http::HeaderField>* fields,
                          std::vector<OwnedField>* storage, std::vector<std::string>* removed);
  // The upstream connection of an earlier exchange is open and idle (no end, no bytes).
  bool UpstreamReusable();
  void ConnectUpstream();
  void OnUpstreamConnected();
  void StepUpstreamTls();
  void StartHold(const policy::Decision& d);
  // The body read whole: the forwarded head announces its Content-Length.
  void ReframeHeldBody();
  // The body read whole for the policy's body conditions: its fields, then Decide again.
  void JudgeBody();
  void OnHoldResolved(const v1::ApprovalRequest& request);
  // interlockd answers the exchange itself (a problem+json response) and audits it.
  void Answer(int status, const std::string& title, const std::string& detail, const std::string& reason,
              const std::string& outcome, bool close);
  // 413 (and close): the body that must be read whole — to judge its fields, or to hold
  // it for approval — exceeds max_judged_body_bytes.
  void RefuseLargeBody(bool for_hold);
  void UpstreamFailed(const std::string& reason, const std::string& detail);
  void EndExchange(const std::string& outcome);

  void SendToAgent(absl::string_view bytes);
  void SendToUpstream(absl::string_view bytes) { upstream_.out().Append(bytes); }
  // The agent's side of the recording, written as requests are parsed (request_recording.h:
  // credentials and, by default, bodies withheld), not as bytes are read.
  void RecordRequestHead(const codec::http::Request& req);
  // Consumes a parsed head from the agent's buffer (it is recorded already).
  void ConsumeHead(size_t head_bytes);
  void RecordRequestBody(absl::string_view raw, absl::string_view data);
  void EndRecordedBody(bool complete);
  void RecordUnparsed(absl::string_view bytes);
  void RecordEvent(const RequestRecording::Event& event);
  void FlushPendingRecords();
  void Audit(v1::AuditKind kind, const std::string& outcome, const std::string& reason, const std::string& detail);
  void Finish(const std::string& outcome, const std::string& detail, bool reset);

  ProtocolEnv env_;
  HttpSessionContext ctx_;
  const config::HttpConfig& http_;
  std::unique_ptr<record::Recorder> recorder_;
  DoneFn done_;
  Watcher agent_watcher_{this, kAgent};
  Watcher upstream_watcher_{this, kUpstream};
  StreamSide agent_{env_.loop, &agent_watcher_, "agent"};
  StreamSide upstream_{env_.loop, &upstream_watcher_, "upstream"};
  Phase phase_ = Phase::kRequestHead;
  policy::SubjectFacts subject_;
  AgentTokens tokens_;
  const auth::TokenClaims* token_ = nullptr;  // the request's verified token (owned by tokens_)
  std::string sni_;  // the agent's SNI ("" in clear or when none was sent)
  std::optional<Exchange> ex_;
  std::optional<v1::AuditEvent> exchange_event_;  // reused by EndExchange
  // REVIEW: the decision while the body is read, before the hold starts.
  std::optional<policy::Decision> held_decision_;
  // The recording failed: nothing more is handed to the recorder (what is sent after is
  // interlockd's own answer, which the recording cannot take).
  bool recording_failed_ = false;
  bool upstream_connecting_ = false;
  bool upstream_tls_pending_ = false;
  std::string upstream_server_name_;  // the name the live upstream connection verified
  MemoryBudget::Lease memory_;
  std::string pending_from_agent_record_;
  std::string pending_to_agent_record_;
  std::string pending_sealed_to_agent_;  // upstream body bytes masking replaced (auditor key set)
  std::string pending_sealed_from_agent_;  // request body bytes withheld (auditor key set)
  std::optional<RequestRecording> request_recording_;  // with a recorder
  size_t recorded_head_in_buffer_ = 0;  // a head recorded and not consumed yet: its length
  std::string masked_;       // scratch: one piece of a masked body
  std::string agent_frame_;  // scratch: one piece framed for the agent
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  net::EventLoop::TimerId connect_timer_ = 0;
  net::EventLoop::TimerId resume_timer_ = 0;
  RelayStats stats_;
  absl::Duration last_activity_;
  absl::Duration upstream_last_read_ = -absl::InfiniteDuration();
  std::string outcome_ = "closed";
  std::string detail_;
};

}  // namespace interlock::proxy::http
