// SshSession: one agent connection to a protected SSH resource. interlockd is the SSH
// server to the agent (libssh, interlockd's host key) and an SSH client to the upstream
// (the resource's pinned host key, the resource's login key):
//
//   agent ssh                          interlockd                              upstream sshd
//   key exchange ───────────────────► host key <state_dir>/ssh-host-key
//   userauth (none / any key) ──────► the kernel-attested workload is the
//                                     identity ─── connect, key exchange, host key pinned,
//                                                  login with the resource's key ──────►
//   channel open "session" ─────────► upstream channel opened ─────────────────────────►
//   pty-req, env ───────────────────► kept (env by the resource's list)
//   exec CMD / shell / subsystem ───► judged (policy SshMatch) ─┬─ DENY: stderr + exit 126
//                                                               ├─ REVIEW: held; released
//                                                               │  on approval
//                                                               └─ ALLOW: pty, env, request
//                                                                  sent upstream ─────────►
//   stdin ──────────────────────────► recorded, relayed within the upstream's window ───►
//   ◄─────────────────────────────── stdout / stderr recorded, relayed ◄──────────────────
//   ◄─────────────────────────────── exit-status / exit-signal, EOF, close
//   port forwarding, agent forwarding, X11: refused and audited.
//
// Threads: libssh's API blocks, so each session runs its two libssh sessions on a worker
// thread of its own (ssh_worker.h). Everything the engine shares — policy, approvals,
// audit — stays on the event loop: the worker posts what it needs (judge a request, emit
// an event, the session ended) and the loop answers through SshShared (a queue and an
// eventfd the worker polls). The recorder stays on the loop too (its files live in a cache
// every session shares): the worker queues its records in SshShared::records, the loop
// appends and writes them once per iteration (FlushRecording), and a worker that gets
// kMaxQueuedRecordBytes ahead waits for that — recording is never skipped, and relaying
// never outruns it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "interlock/v1/events.pb.h"
#include "interlock/v1/identity.pb.h"
#include "interlock/v1/record.pb.h"
#include "userspace/common/unique_fd.h"
#include "userspace/config/config.h"
#include "userspace/mask/masker.h"
#include "userspace/auth/token_verifier.h"
#include "userspace/net/socket.h"
#include "userspace/policy/evaluator.h"
#include "userspace/proxy/core/protocol.h"
#include "userspace/proxy/core/session.h"
#include "userspace/proxy/ssh/host_keys.h"
#include "userspace/record/recorder.h"

namespace interlock::proxy::ssh {

struct SshSessionContext {
  std::string session_id;
  v1::WorkloadIdentity identity;
  v1::Endpoint original_destination;
  const config::ResourceConfig* resource = nullptr;  // outlives the session; has ssh
  net::SockAddr upstream;
  const HostKey* host_key = nullptr;  // owned by the protocol, outlives the session
  // Agent tokens (SshResource.token_issuers): the resource's verifier (null: none) and the
  // token bound to the agent's enrollment. Used on the loop only.
  const auth::TokenVerifier* token_verifier = nullptr;
  std::function<absl::StatusOr<std::optional<std::string>>()> bound_token;
};

// What the agent's token came to (SshSession::CheckAgentToken).
struct TokenCheck {
  enum class Result { kNone, kValid, kInvalid, kAborted };
  Result result = Result::kNone;
  std::string message;  // for the agent (kInvalid), never the token
};

// A channel request the worker asks the loop to judge.
struct RequestToJudge {
  uint32_t channel = 0;
  std::string type;     // "exec", "shell", "subsystem"
  std::string command;  // exec: the line; subsystem: the name
  bool pty = false;
  std::string agent_user;
  std::string upstream_user;
};

// The loop's answer.
struct Verdict {
  uint32_t channel = 0;
  bool run = false;
  // "allow", "deny", "approved", "denied", "timed_out", "refused"; and for the agent's
  // stderr when !run.
  std::string decision;
  std::string message;
  v1::PolicyDecision policy;
  // When the output must be masked (SshResource.mask_output): the profile stdout and stderr
  // pass, line by line. Null: relayed as they are.
  std::shared_ptr<const mask::Masker> masker;
};

// Recorded bytes the worker may queue before it waits for the loop to write them.
inline constexpr size_t kMaxQueuedRecordBytes = 1 << 20;

// State the worker and the loop share. Everything but the atomics is guarded by `mu`.
struct SshShared {
  std::mutex mu;
  // Records for the loop to append, in order, and their payload bytes; `written` is
  // signalled each time the loop took them (and on abort).
  std::vector<v1::SshEvent> records;
  size_t queued_bytes = 0;
  std::condition_variable written;
  // The loop asked to flush (a post is on its way): the worker posts at most one.
  bool flush_posted = false;
  std::deque<Verdict> verdicts;
  // The sockets libssh reads, while it has them (-1 after): Abort shuts them down so that a
  // worker blocked in libssh returns at once.
  int agent_fd = -1;
  int upstream_fd = -1;
  // The worker is in its relay loop, where it never blocks on the agent: Abort leaves the
  // agent's socket to it, to tell the agent why before it closes (SshWorker::EndAborted).
  bool relaying = false;
  bool abort = false;
  std::string abort_outcome;
  std::string abort_detail;
  // Wakes the worker's poll (verdicts, abort). Written under no lock (eventfd is atomic).
  UniqueFd wake;
  std::atomic<int64_t> last_activity_ns{0};
  std::atomic<uint64_t> bytes_to_upstream{0};
  std::atomic<uint64_t> bytes_to_agent{0};

  void Wake() const;
};

class SshWorker;

class SshSession final : public ProxySession {
 public:
  using DoneFn = std::function<void(SshSession*)>;

  static absl::StatusOr<std::unique_ptr<SshSession>> Start(const ProtocolEnv& env, UniqueFd agent,
                                                           SshSessionContext ctx,
                                                           std::unique_ptr<record::Recorder> recorder, DoneFn done);
  ~SshSession() override;

  void Abort(const std::string& outcome, const std::string& detail = "") override;
  absl::Status FlushRecording() override;
  const record::Recorder* recorder() const override { return recorder_.get(); }
  const RelayStats& stats() const override;
  bool done() const override { return done_; }
  const std::string& outcome() const override { return outcome_; }
  const std::string& detail() const override { return detail_; }
  absl::Duration last_activity() const override;
  const std::string& grant_id() const override { return grant_id_; }

  // --- Called by the worker, from its thread: each posts to the loop. ---
  void PostJudge(RequestToJudge request);
  void PostAudit(v1::AuditEvent event);
  void PostFinished(std::string outcome, std::string detail);
  // Verifies the agent's token — `password` when the agent gave one, else the token bound
  // to its enrollment — on the loop, and waits for the answer. A valid token's identity is
  // the session's from then on (policy subjects, events, approvals). kNone: no verifier
  // or no token.
  TokenCheck CheckAgentToken(std::optional<std::string> password);
  // Queues a record for the loop; waits while the queue is over kMaxQueuedRecordBytes
  // (false: the session is being aborted, stop relaying).
  bool QueueRecord(v1::SshEvent event);

 private:
  SshSession(const ProtocolEnv& env, SshSessionContext ctx, DoneFn done);
  // Loop thread.
  void Judge(const RequestToJudge& request);
  void Hold(const RequestToJudge& request, const v1::PolicyDecision& decision, absl::Duration timeout,
            std::shared_ptr<const mask::Masker> masker);

  void Deliver(Verdict verdict);
  void Emit(v1::AuditEvent event);
  void Finished(const std::string& outcome, const std::string& detail);
  TokenCheck VerifyToken(const std::optional<std::string>& password);
  // Runs `fn` on the loop while this session exists.
  void OnLoop(std::function<void(SshSession&)> fn);

  const ProtocolEnv env_;
  const SshSessionContext ctx_;
  DoneFn done_fn_;
  std::shared_ptr<SshShared> shared_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unique_ptr<SshWorker> worker_;
  std::thread thread_;
  // Loop thread only.
  // Who the policy judges and the events name: the workload, and a verified token's
  // identity once there is one.
  policy::SubjectFacts subject_;
  v1::WorkloadIdentity identity_;
  bool done_ = false;
  std::string outcome_;
  std::string detail_;
  mutable RelayStats stats_;
  std::unique_ptr<record::Recorder> recorder_;
  absl::flat_hash_map<uint32_t, std::string> pending_approvals_;  // channel -> approval id
  std::string grant_id_;  // the just-in-time grant the session's requests ran under
};

}  // namespace interlock::proxy::ssh
