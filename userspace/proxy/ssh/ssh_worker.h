// SshWorker: the thread that runs one SSH session's two libssh sessions (agent-facing
// server, upstream client) and relays its channels (ssh_session.h has the picture).
//
// Phases: the agent's key exchange and login (bounded by the resource's login timeout,
// the upstream login done inside the agent's first userauth request, so that a refused
// upstream is told to the agent before it is "in"); then the relay loop, which polls both
// sockets and the wake eventfd and, per channel, moves data only as far as the receiving
// side's window allows (libssh keeps what is not read yet and stops growing the sender's
// window: back-pressure end to end). Every libssh object is created, used and freed here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "interlock/v1/events.pb.h"
#include "interlock/v1/record.pb.h"
#include "userspace/common/clock.h"
#include "userspace/codec/sftp/sftp_tracker.h"
#include "userspace/common/unique_fd.h"
#include "userspace/mask/body_masker.h"
#include "userspace/proxy/ssh/libssh.h"
#include "userspace/proxy/ssh/ssh_session.h"

namespace interlock::proxy::ssh {

// Channels one agent session may have open at once (OpenSSH's MaxSessions default).
inline constexpr size_t kMaxChannels = 10;
// Bytes moved per read, per channel and stream, per loop turn.
inline constexpr size_t kRelayChunkBytes = 32 * 1024;
// SFTP file operations listed in one channel's audit event (SshExchange.files).
inline constexpr int kMaxSftpOpsPerEvent = 1000;
// Masked output: a line that has not ended (a prompt, a progress bar) is masked as it is
// and released once its stream has been quiet this long.
inline constexpr absl::Duration kPartialLineFlush = absl::Milliseconds(20);

class SshWorker {
 public:
  // `session` receives the worker's posts; it outlives the thread (it joins it).
  SshWorker(const SshSessionContext& ctx, std::shared_ptr<SshShared> shared, SshSession* session, UniqueFd agent,
            const Clock* clock);
  ~SshWorker();
  void Run();

  // One agent channel and its upstream twin.
  struct Channel {
    enum class State { kOpen, kJudging, kHeld, kRunning, kEnded };
    SshWorker* worker = nullptr;
    uint32_t id = 0;
    ssh_channel agent = nullptr;
    ssh_channel up = nullptr;
    ssh_channel_callbacks_struct agent_cb{};
    ssh_channel_callbacks_struct up_cb{};
    State state = State::kOpen;
    std::string type;     // exec / shell / subsystem once requested
    std::string command;  // exec line or subsystem name
    std::string pty_term;
    int cols = 80, rows = 24;
    bool pty = false;
    std::vector<std::pair<std::string, std::string>> env;
    absl::Duration started;
    v1::SshExchange audit;
    v1::PolicyDecision decision;
    std::string outcome;  // audit outcome once known
    bool forwarded = false;
    bool agent_eof = false;     // the agent sent EOF ...
    bool agent_eof_relayed = false;  // ... and it was passed upstream after its data
    bool up_eof_relayed = false;
    bool exit_sent = false;
    std::optional<int> exit_status;
    std::string exit_signal;
    bool exit_core = false;
    bool audited = false;
    // Read from one side, not yet taken by the other (at most kRelayChunkBytes each).
    std::string to_upstream;
    std::string to_agent_out;
    std::string to_agent_err;
    // subsystem sftp: its file operations, read from the stream as it passes.
    std::unique_ptr<codec::sftp::SftpTracker> sftp;
    // Output masking (Verdict::masker): one line masker per stream, and when the upstream
    // last sent output (kPartialLineFlush).
    std::shared_ptr<const mask::Masker> masker;
    std::unique_ptr<mask::BodyMasker> mask_out;
    std::unique_ptr<mask::BodyMasker> mask_err;
    absl::Duration output_at;
  };

 private:
  // Phase 1: agent key exchange and login (false: the session is over, Finish called).
  bool Accept();
  // The upstream login, once, on the agent's first userauth request: OK or why not.
  absl::Status LoginUpstream(const std::string& agent_user);
  absl::Status ConnectUpstream();
  // Phase 2.
  void RelayLoop();
  bool PollOnce(int timeout_ms);
  // Each returns whether it did anything (then the loop turns again without waiting: libssh
  // may hold more, read during a blocking call, that no poll would announce).
  bool TakeVerdicts();
  bool Pump(Channel& c);
  // Moves one stream from `src` to `dst` within `dst`'s window; what `dst` does not take
  // stays in `pending`, sent first next time (recorded once, when read). Returns the bytes
  // read from `src`.
  size_t Relay(ssh_channel src, int src_stderr, ssh_channel dst, bool dst_stderr, std::string& pending,
               v1::SshStream stream, Channel& c);
  void Reap();
  // Masked output: masks `raw` into `pending` (false: the line bound was passed, and the
  // channel is stopped); releases a held partial line once the stream went quiet, or at
  // once when `force` (the upstream's EOF). Whether any channel holds a partial line.
  bool MaskOutput(Channel& c, mask::BodyMasker& bm, absl::string_view raw, std::string& pending);
  void FlushHeldLines(Channel& c, bool force);
  bool HoldsPartialLines() const;
  // Channel requests (callbacks from libssh, on this thread).
  ssh_channel OnChannelOpen();
  int OnPty(Channel& c, const char* term, int cols, int rows);
  int OnWindowChange(Channel& c, int cols, int rows);
  int OnEnv(Channel& c, const char* name, const char* value);
  int OnRequest(Channel& c, const std::string& type, const std::string& command);
  int OnMessage(ssh_message message);
  void Refuse(const std::string& type, const std::string& what, uint32_t channel);
  // Runs the channel's request upstream after an allow or approval.
  void StartUpstream(Channel& c);
  // Ends a channel that never ran (denied, refused, failed): stderr, exit status, close.
  void Deny(Channel& c, const std::string& message, int status);
  // interlockd ended the session (end_outcome_: shutdown, drain_timeout, idle_timeout,
  // recording_failed, grant_ended...): a request held or being judged is withdrawn — the
  // agent told on stderr that it was not run, exit status 126 — a running one is told why
  // the session closes, the disconnect carries the reason, and what is queued is flushed
  // (at most kAbortFlushMs).
  void EndAborted();
  bool AbortRequested();
  void AuditChannel(Channel& c);
  // The sftp tracker's completed operations into the channel's audit record.
  void TakeSftpOps(Channel& c, bool finish);
  void Record(uint32_t channel, v1::SshEvent event);
  void RecordData(uint32_t channel, v1::SshStream stream, const char* data, size_t n);
  void Touch();
  void Finish(const std::string& outcome, const std::string& detail);
  Channel* ByAgent(ssh_channel channel);
  bool Aborted(std::string* outcome, std::string* detail);

  static int AuthNone(ssh_session, const char* user, void* self);
  static int AuthPassword(ssh_session, const char* user, const char* password, void* self);
  static int AuthPubkey(ssh_session, const char* user, ssh_key_struct* key, char state, void* self);
  static ssh_channel ChannelOpen(ssh_session, void* self);
  static int MessageCallback(ssh_session, ssh_message message, void* self);
  // `password`: what the agent gave in a password userauth (null for none / publickey).
  int Authenticate(const char* user, const char* password);
  // The agent's token, when the resource takes tokens: OK to go on, else why not (the
  // banner already sent).
  bool TokenAllows(const char* password);
  void Banner(const std::string& text);

  const SshSessionContext& ctx_;
  const config::SshConfig& config_;
  std::shared_ptr<SshShared> shared_;
  SshSession* session_;
  UniqueFd agent_fd_;  // until libssh takes it
  const Clock* clock_;
  BindPtr bind_;
  SessionPtr agent_;
  SessionPtr up_;
  EventPtr agent_event_;
  ssh_server_callbacks_struct server_cb_{};
  std::vector<std::unique_ptr<Channel>> channels_;
  std::string read_buf_;  // masked streams: what was read, before masking
  uint32_t next_channel_ = 0;
  // Login state.
  bool authenticated_ = false;
  bool login_tried_ = false;
  bool token_ok_ = false;
  int token_attempts_ = 0;
  absl::Status login_status_;
  std::string agent_user_;
  std::string upstream_user_;
  std::string end_outcome_ = "closed";
  std::string end_detail_;
};

}  // namespace interlock::proxy::ssh
