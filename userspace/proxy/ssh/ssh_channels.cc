// SshWorker: the agent's channels — requests judged and relayed, data pumped within the
// windows, exit status and EOF passed on, every step recorded and each request audited.
#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/codec/shell/command_line.h"
#include "userspace/common/sha256.h"
#include "userspace/common/utf8.h"
#include "userspace/proxy/ssh/ssh_worker.h"

namespace interlock::proxy::ssh {

namespace {

// Exit status of a command interlockd did not let run (as a shell's "cannot execute").
constexpr int kDeniedExitStatus = 126;

// How long EndAborted waits for the agent to take what it was told.
constexpr int kAbortFlushMs = 1000;

bool GlobMatch(absl::string_view pattern, absl::string_view value) {
  // '*' only, as the resource's forward_env documents.
  if (pattern.empty()) return value.empty();
  if (pattern[0] == '*') {
    for (size_t i = 0; i <= value.size(); ++i) {
      if (GlobMatch(pattern.substr(1), value.substr(i))) return true;
    }
    return false;
  }
  return !value.empty() && pattern[0] == value[0] && GlobMatch(pattern.substr(1), value.substr(1));
}

SshWorker::Channel* Of(void* userdata) { return static_cast<SshWorker::Channel*>(userdata); }

}  // namespace

SshWorker::Channel* SshWorker::ByAgent(ssh_channel channel) {
  for (auto& c : channels_) {
    if (c->agent == channel) return c.get();
  }
  return nullptr;
}

void SshWorker::Record(uint32_t channel, v1::SshEvent event) {
  event.set_channel(channel);
  (void)session_->QueueRecord(std::move(event));  // false: aborting; the loop notices
}

void SshWorker::RecordData(uint32_t channel, v1::SshStream stream, const char* data, size_t n) {
  v1::SshEvent e;
  e.mutable_data()->set_stream(stream);
  e.mutable_data()->set_payload(std::string(data, n));
  Record(channel, std::move(e));
}

ssh_channel SshWorker::ChannelOpen(ssh_session, void* self) { return static_cast<SshWorker*>(self)->OnChannelOpen(); }

ssh_channel SshWorker::OnChannelOpen() {
  size_t open = 0;
  for (const auto& c : channels_) open += c->state != Channel::State::kEnded;
  if (open >= kMaxChannels) {
    Refuse("session", absl::StrCat("more than ", kMaxChannels, " channels"), 0);
    return nullptr;
  }
  auto c = std::make_unique<Channel>();
  c->worker = this;
  c->id = next_channel_++;
  c->agent = ssh_channel_new(agent_.get());
  c->up = ssh_channel_new(up_.get());
  if (c->agent == nullptr || c->up == nullptr) return nullptr;
  ssh_set_blocking(up_.get(), 1);
  const int rc = ssh_channel_open_session(c->up);
  ssh_set_blocking(up_.get(), 0);
  if (rc != SSH_OK) {
    Refuse("session", absl::StrCat("upstream channel: ", LastError(up_.get())), c->id);
    ssh_channel_free(c->up);
    ssh_channel_free(c->agent);
    return nullptr;
  }
  ssh_callbacks_init(&c->agent_cb);
  c->agent_cb.userdata = c.get();
  c->agent_cb.channel_pty_request_function = [](ssh_session, ssh_channel, const char* term, int w, int h, int, int,
                                                void* u) { return Of(u)->worker->OnPty(*Of(u), term, w, h); };
  c->agent_cb.channel_pty_window_change_function = [](ssh_session, ssh_channel, int w, int h, int, int, void* u) {
    return Of(u)->worker->OnWindowChange(*Of(u), w, h);
  };
  c->agent_cb.channel_env_request_function = [](ssh_session, ssh_channel, const char* name, const char* value,
                                                void* u) { return Of(u)->worker->OnEnv(*Of(u), name, value); };
  c->agent_cb.channel_exec_request_function = [](ssh_session, ssh_channel, const char* command, void* u) {
    return Of(u)->worker->OnRequest(*Of(u), "exec", command != nullptr ? command : "");
  };
  c->agent_cb.channel_shell_request_function = [](ssh_session, ssh_channel, void* u) {
    return Of(u)->worker->OnRequest(*Of(u), "shell", "");
  };
  c->agent_cb.channel_subsystem_request_function = [](ssh_session, ssh_channel, const char* name, void* u) {
    return Of(u)->worker->OnRequest(*Of(u), "subsystem", name != nullptr ? name : "");
  };
  // libssh answers agent forwarding itself (it never reaches the message callback): no
  // agent channel is ever opened back to the agent; the request is recorded and audited.
  c->agent_cb.channel_auth_agent_req_function = [](ssh_session, ssh_channel, void* u) {
    Of(u)->worker->Refuse("auth-agent-req@openssh.com", "", Of(u)->id);
  };
  ssh_set_channel_callbacks(c->agent, &c->agent_cb);
  ssh_callbacks_init(&c->up_cb);
  c->up_cb.userdata = c.get();
  c->up_cb.channel_exit_status_function = [](ssh_session, ssh_channel, int status, void* u) {
    Of(u)->exit_status = status;
  };
  c->up_cb.channel_exit_signal_function = [](ssh_session, ssh_channel, const char* signal, int core, const char*,
                                             const char*, void* u) {
    Of(u)->exit_signal = signal != nullptr ? signal : "";
    Of(u)->exit_core = core != 0;
  };
  ssh_set_channel_callbacks(c->up, &c->up_cb);
  v1::SshEvent e;
  e.mutable_open()->set_type("session");
  Record(c->id, std::move(e));
  c->started = clock_->Monotonic();
  Touch();
  ssh_channel agent = c->agent;
  channels_.push_back(std::move(c));
  return agent;
}

int SshWorker::OnPty(Channel& c, const char* term, int cols, int rows) {
  c.pty = true;
  c.pty_term = term != nullptr ? term : "";
  c.cols = cols;
  c.rows = rows;
  v1::SshEvent e;
  v1::SshRequest* r = e.mutable_request();
  r->set_type("pty-req");
  r->set_term(c.pty_term);
  r->set_cols(static_cast<uint32_t>(std::max(cols, 0)));
  r->set_rows(static_cast<uint32_t>(std::max(rows, 0)));
  r->set_decision(c.state == Channel::State::kOpen ? "kept" : "refused");
  Record(c.id, std::move(e));
  return c.state == Channel::State::kOpen ? 0 : -1;
}

int SshWorker::OnWindowChange(Channel& c, int cols, int rows) {
  c.cols = cols;
  c.rows = rows;
  v1::SshEvent e;
  v1::SshRequest* r = e.mutable_request();
  r->set_type("window-change");
  r->set_cols(static_cast<uint32_t>(std::max(cols, 0)));
  r->set_rows(static_cast<uint32_t>(std::max(rows, 0)));
  r->set_decision("forwarded");
  Record(c.id, std::move(e));
  if (c.state == Channel::State::kRunning && c.up != nullptr) {
    (void)ssh_channel_change_pty_size(c.up, cols, rows);
  }
  return 0;
}

int SshWorker::OnEnv(Channel& c, const char* name, const char* value) {
  const std::string n = name != nullptr ? name : "";
  const bool pass = c.state == Channel::State::kOpen &&
                    std::any_of(config_.forward_env.begin(), config_.forward_env.end(),
                                [&](const std::string& g) { return GlobMatch(g, n); });
  v1::SshEvent e;
  e.mutable_request()->set_type("env");
  e.mutable_request()->set_command(n);  // the name only: values may be secrets
  e.mutable_request()->set_decision(pass ? "kept" : "ignored");
  Record(c.id, std::move(e));
  if (!pass) return -1;
  c.env.emplace_back(n, value != nullptr ? value : "");
  return 0;
}

int SshWorker::OnRequest(Channel& c, const std::string& type, const std::string& command) {
  if (c.state != Channel::State::kOpen) return -1;  // one request per channel (RFC 4254 6.5)
  c.type = type;
  c.command = command;
  c.audit.set_request(type);
  std::string shown = command.substr(0, 4096);
  MakeValidUtf8(shown);
  c.audit.set_command(shown);
  c.audit.set_command_sha256(Sha256Hex(command));
  c.audit.set_channel(c.id);
  c.audit.set_agent_user(agent_user_);
  c.audit.set_upstream_user(upstream_user_);
  c.audit.set_exit_status(-1);
  if (c.pty) c.audit.set_pty_term(c.pty_term);
  if (type == "exec") {
    const codec::shell::CommandLine line = codec::shell::AnalyzeCommandLine(command);
    if (line.shell) {
      c.audit.set_shell(line.why);
    } else {
      for (const std::string& a : line.argv) c.audit.add_argv(a);
    }
  }
  c.state = Channel::State::kJudging;
  // Accepted at the SSH level at once (the reply cannot wait for an approver): what the
  // agent sees of a denial is stderr and exit status 126, as from a shell.
  if (type == "subsystem" && (command != "sftp" || !config_.allow_sftp)) {
    Verdict v;
    v.channel = c.id;
    v.decision = "refused";
    v.message = command == "sftp" ? "interlock: denied: sftp is not allowed on this resource (ssh.allow_sftp)"
                                  : absl::StrCat("interlock: denied: subsystem ", command, " is not supported");
    v.policy.set_action("DENY");
    v.policy.set_source(command == "sftp" ? "sftp_not_allowed" : "subsystem_not_supported");
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->verdicts.push_back(std::move(v));
    shared_->Wake();
    return 0;
  }
  RequestToJudge r;
  r.channel = c.id;
  r.type = type;
  r.command = command;
  r.pty = c.pty;
  r.agent_user = agent_user_;
  r.upstream_user = upstream_user_;
  session_->PostJudge(std::move(r));
  return 0;
}

bool SshWorker::TakeVerdicts() {
  std::deque<Verdict> verdicts;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    verdicts.swap(shared_->verdicts);
  }
  const bool any = !verdicts.empty();
  for (Verdict& v : verdicts) {
    auto it = std::find_if(channels_.begin(), channels_.end(), [&](const auto& c) { return c->id == v.channel; });
    if (it == channels_.end()) continue;
    Channel& c = **it;
    if (c.state != Channel::State::kJudging && c.state != Channel::State::kHeld) continue;
    v1::SshEvent e;
    v1::SshRequest* r = e.mutable_request();
    r->set_type(c.type);
    r->set_command(c.command);
    r->set_decision(v.decision);
    r->set_rule_id(v.policy.rule_id());
    r->set_reason(v.policy.reason());
    Record(c.id, std::move(e));
    c.decision = v.policy;
    if (v.decision == "review") {
      c.state = Channel::State::kHeld;
      const std::string line = absl::StrCat(v.message, "\r\n");
      (void)ssh_channel_write_stderr(c.agent, line.data(), static_cast<uint32_t>(line.size()));
      RecordData(c.id, v1::SSH_STREAM_INTERLOCK, line.data(), line.size());
      continue;
    }
    if (v.run) {
      if (v.masker != nullptr) {
        auto out = mask::BodyMasker::Create(*v.masker, mask::BodyKind::kText, mask::ContentCoding::kIdentity);
        auto err = mask::BodyMasker::Create(*v.masker, mask::BodyKind::kText, mask::ContentCoding::kIdentity);
        if (!out.ok() || !err.ok()) {  // cannot happen for text; fail closed all the same
          c.outcome = "error";
          Deny(c, "interlock: denied: the output masker could not be set up", kDeniedExitStatus);
          continue;
        }
        c.masker = std::move(v.masker);
        c.mask_out = *std::move(out);
        c.mask_err = *std::move(err);
        c.audit.set_output_masking("masked");
        c.audit.mutable_masking()->set_profile(c.masker->name());
      }
      StartUpstream(c);
    } else {
      c.outcome = v.decision == "refused" ? "refused" : "denied";
      Deny(c, v.message, kDeniedExitStatus);
    }
  }
  return any;
}

void SshWorker::StartUpstream(Channel& c) {
  ssh_set_blocking(up_.get(), 1);
  int rc = SSH_OK;
  if (c.pty) rc = ssh_channel_request_pty_size(c.up, c.pty_term.empty() ? "xterm" : c.pty_term.c_str(), c.cols, c.rows);
  for (const auto& [name, value] : c.env) {
    (void)ssh_channel_request_env(c.up, name.c_str(), value.c_str());  // the upstream's AcceptEnv decides
  }
  if (rc == SSH_OK) {
    if (c.type == "exec") {
      rc = ssh_channel_request_exec(c.up, c.command.c_str());
    } else if (c.type == "shell") {
      rc = ssh_channel_request_shell(c.up);
    } else {
      rc = ssh_channel_request_subsystem(c.up, c.command.c_str());
    }
  }
  ssh_set_blocking(up_.get(), 0);
  if (rc != SSH_OK && AbortRequested()) return;  // the abort's shutdown: EndAborted tells the agent
  if (rc != SSH_OK) {
    c.outcome = "error";
    Deny(c, absl::StrCat("interlock: the upstream refused the ", c.type, " request: ", LastError(up_.get())),
         kDeniedExitStatus);
    return;
  }
  if (c.type == "subsystem" && c.command == "sftp") c.sftp = std::make_unique<codec::sftp::SftpTracker>();
  c.forwarded = true;
  c.audit.set_forwarded(true);
  c.outcome = c.masker != nullptr ? "masked" : "allowed";
  c.output_at = clock_->Monotonic();
  c.state = Channel::State::kRunning;
  Touch();
}

void SshWorker::Deny(Channel& c, const std::string& message, int status) {
  const std::string line = absl::StrCat(message, "\r\n");
  (void)ssh_channel_write_stderr(c.agent, line.data(), static_cast<uint32_t>(line.size()));
  RecordData(c.id, v1::SSH_STREAM_INTERLOCK, line.data(), line.size());
  (void)ssh_channel_request_send_exit_status(c.agent, status);
  v1::SshEvent e;
  e.mutable_exit()->set_status(status);
  e.mutable_exit()->set_by_interlock(true);
  Record(c.id, std::move(e));
  c.exit_status = status;
  c.exit_sent = true;
  (void)ssh_channel_send_eof(c.agent);
  (void)ssh_channel_close(c.agent);
  if (c.up != nullptr) (void)ssh_channel_close(c.up);
  c.audit.set_exit_status(status);
  c.state = Channel::State::kEnded;
  AuditChannel(c);
}

void SshWorker::EndAborted() {
  const bool stopping = end_outcome_ == "shutdown" || end_outcome_ == "drain" || end_outcome_ == "drain_timeout";
  const std::string why = stopping                             ? "interlockd is stopping"
                          : end_outcome_ == "idle_timeout"     ? "the session was idle too long (timeouts.idle_ms)"
                          : end_outcome_ == "recording_failed" ? "its recording cannot be written"
                          : end_outcome_ == "grant_ended"      ? "the workload's grant ended"
                                                               : absl::StrCat("interlockd ended it (", end_outcome_, ")");
  for (auto& c : channels_) {
    if (c->state == Channel::State::kJudging || c->state == Channel::State::kHeld) {
      c->outcome = "withdrawn";
      Deny(*c, absl::StrCat("interlock: ", why, "; the command was not run"), kDeniedExitStatus);
    } else if (c->state == Channel::State::kRunning) {
      const std::string line = absl::StrCat("\r\ninterlock: ", why, "; the session is closed\r\n");
      (void)ssh_channel_write_stderr(c->agent, line.data(), static_cast<uint32_t>(line.size()));
      RecordData(c->id, v1::SSH_STREAM_INTERLOCK, line.data(), line.size());
    }
  }
  // The disconnect (sent as the session is freed) says it too: ssh prints it.
  (void)ssh_session_set_disconnect_message(agent_.get(), why.c_str());
  (void)ssh_blocking_flush(agent_.get(), kAbortFlushMs);
}

bool SshWorker::Pump(Channel& c) {
  if (c.state != Channel::State::kRunning) {
    // A channel the agent closed before it ran (or while held): close its twin.
    if (c.state != Channel::State::kEnded && ssh_channel_is_closed(c.agent)) {
      if (c.up != nullptr) (void)ssh_channel_close(c.up);
      if (!c.type.empty() && c.outcome.empty()) c.outcome = "withdrawn";
      c.state = Channel::State::kEnded;
      if (!c.type.empty()) AuditChannel(c);
      return true;
    }
    return false;
  }
  const uint64_t moved_before = c.audit.bytes_in() + c.audit.bytes_out();
  const int ends_before = c.agent_eof_relayed + c.up_eof_relayed + c.exit_sent;
  // Agent -> upstream: stdin; then its EOF, once everything before it is through.
  const size_t in = Relay(c.agent, 0, c.up, false, c.to_upstream, v1::SSH_STREAM_STDIN, c);
  shared_->bytes_to_upstream += in;
  c.audit.set_bytes_in(c.audit.bytes_in() + in);
  if (!c.agent_eof_relayed && c.to_upstream.empty() && ssh_channel_poll(c.agent, 0) == SSH_EOF) {
    (void)ssh_channel_send_eof(c.up);
    c.agent_eof_relayed = true;
    v1::SshEvent e;
    e.mutable_end()->set_kind("eof_from_agent");
    Record(c.id, std::move(e));
  }
  // Upstream -> agent: stdout and stderr.
  const size_t out = Relay(c.up, 0, c.agent, false, c.to_agent_out, v1::SSH_STREAM_STDOUT, c) +
                     Relay(c.up, 1, c.agent, true, c.to_agent_err, v1::SSH_STREAM_STDERR, c);
  shared_->bytes_to_agent += out;
  c.audit.set_bytes_out(c.audit.bytes_out() + out);
  if (in + out > 0) Touch();
  if (c.state == Channel::State::kEnded) return true;  // masking stopped it
  if (c.sftp != nullptr) TakeSftpOps(c, /*finish=*/false);
  const bool up_ending = ssh_channel_is_eof(c.up) || ssh_channel_is_closed(c.up);
  if (c.masker != nullptr) FlushHeldLines(c, up_ending);
  // The upstream's EOF, after all its data.
  const bool drained = ssh_channel_poll(c.up, 0) <= 0 && ssh_channel_poll(c.up, 1) <= 0 &&
                       c.to_agent_out.empty() && c.to_agent_err.empty() &&
                       (c.masker == nullptr || c.mask_out->held_line_bytes() + c.mask_err->held_line_bytes() == 0);
  if (!c.up_eof_relayed && drained && up_ending) {
    (void)ssh_channel_send_eof(c.agent);
    c.up_eof_relayed = true;
    v1::SshEvent e;
    e.mutable_end()->set_kind("eof_from_upstream");
    Record(c.id, std::move(e));
  }
  if (c.up_eof_relayed && !c.exit_sent && (c.exit_status.has_value() || !c.exit_signal.empty())) {
    v1::SshEvent e;
    if (!c.exit_signal.empty()) {
      (void)ssh_channel_request_send_exit_signal(c.agent, c.exit_signal.c_str(), c.exit_core, "", "");
      e.mutable_exit()->set_status(-1);
      e.mutable_exit()->set_signal(c.exit_signal);
      e.mutable_exit()->set_core_dumped(c.exit_core);
      c.audit.set_exit_signal(c.exit_signal);
    } else {
      (void)ssh_channel_request_send_exit_status(c.agent, *c.exit_status);
      e.mutable_exit()->set_status(*c.exit_status);
      c.audit.set_exit_status(*c.exit_status);
    }
    Record(c.id, std::move(e));
    c.exit_sent = true;
  }
  // Either side closed: close the other once what it sent has been passed on.
  const bool up_done = ssh_channel_is_closed(c.up) && c.up_eof_relayed;
  if (up_done || ssh_channel_is_closed(c.agent)) {
    if (!ssh_channel_is_closed(c.agent)) (void)ssh_channel_close(c.agent);
    if (!ssh_channel_is_closed(c.up)) (void)ssh_channel_close(c.up);
    v1::SshEvent e;
    e.mutable_end()->set_kind("close");
    Record(c.id, std::move(e));
    c.state = Channel::State::kEnded;
    AuditChannel(c);
    return true;
  }
  return c.audit.bytes_in() + c.audit.bytes_out() != moved_before ||
         c.agent_eof_relayed + c.up_eof_relayed + c.exit_sent != ends_before;
}

size_t SshWorker::Relay(ssh_channel src, int src_stderr, ssh_channel dst, bool dst_stderr, std::string& pending,
                        v1::SshStream stream, Channel& c) {
  mask::BodyMasker* bm = stream == v1::SSH_STREAM_STDOUT   ? c.mask_out.get()
                         : stream == v1::SSH_STREAM_STDERR ? c.mask_err.get()
                                                           : nullptr;
  size_t moved = 0;
  for (int turn = 0; turn < 8; ++turn) {
    if (!pending.empty()) {
      // What `dst` did not take last time (its window, or a key exchange in progress:
      // libssh then takes nothing) goes first, and nothing more is read until it is gone.
      const uint32_t window = ssh_channel_window_size(dst);
      if (window == 0) return moved;
      const uint32_t n = static_cast<uint32_t>(std::min<size_t>(pending.size(), window));
      const int w = dst_stderr ? ssh_channel_write_stderr(dst, pending.data(), n) : ssh_channel_write(dst, pending.data(), n);
      if (w <= 0) return moved;  // SSH_ERROR: the session is broken, and the loop sees it closed
      pending.erase(0, static_cast<size_t>(w));
      if (!pending.empty()) return moved;
    }
    const int avail = ssh_channel_poll(src, src_stderr);
    if (avail <= 0 || ssh_channel_window_size(dst) == 0) return moved;
    // A masked stream is read aside and masked into `pending`.
    std::string& into = bm == nullptr ? pending : read_buf_;
    into.resize(std::min<size_t>(static_cast<size_t>(avail), kRelayChunkBytes));
    const int n = ssh_channel_read_nonblocking(src, into.data(), static_cast<uint32_t>(into.size()), src_stderr);
    if (n <= 0) {
      into.clear();
      return moved;
    }
    into.resize(static_cast<size_t>(n));
    moved += static_cast<size_t>(n);
    if (bm != nullptr) {
      if (!MaskOutput(c, *bm, into, pending)) return moved;
      if (pending.empty()) continue;  // the line has not ended yet
    }
    // Recorded as the agent receives it: masked output stays masked in the recording.
    RecordData(c.id, stream, pending.data(), pending.size());
    if (c.sftp != nullptr && stream == v1::SSH_STREAM_STDIN) c.sftp->FromClient(pending);
    if (c.sftp != nullptr && stream == v1::SSH_STREAM_STDOUT) c.sftp->FromServer(pending);
  }
  return moved;
}

bool SshWorker::MaskOutput(Channel& c, mask::BodyMasker& bm, absl::string_view raw, std::string& pending) {
  c.output_at = clock_->Monotonic();
  const absl::Status st = bm.Feed(raw, &pending);
  if (st.ok()) return true;
  // Over the line bound: what cannot be masked is never shown; the channel stops (what was
  // already masked and taken stays with the agent).
  pending.clear();
  std::string why(st.message());
  if (absl::StartsWith(why, "body: ")) why.erase(0, 6);
  c.audit.set_output_masking(absl::StrCat("failed: ", why));
  c.outcome = "mask_failed";
  Deny(c, absl::StrCat("interlock: output stopped: ", why), kDeniedExitStatus);
  return false;
}

void SshWorker::FlushHeldLines(Channel& c, bool force) {
  const bool quiet = clock_->Monotonic() - c.output_at >= kPartialLineFlush;
  struct Stream {
    mask::BodyMasker* bm;
    std::string* pending;
    v1::SshStream stream;
    int src_stderr;
  };
  for (const Stream& s : {Stream{c.mask_out.get(), &c.to_agent_out, v1::SSH_STREAM_STDOUT, 0},
                          Stream{c.mask_err.get(), &c.to_agent_err, v1::SSH_STREAM_STDERR, 1}}) {
    if (s.bm->held_line_bytes() == 0 || !s.pending->empty()) continue;
    if (!quiet && !(force && ssh_channel_poll(c.up, s.src_stderr) <= 0)) continue;
    if (!s.bm->FlushLine(s.pending).ok()) continue;  // cannot fail for text; then kept
    RecordData(c.id, s.stream, s.pending->data(), s.pending->size());
  }
}

bool SshWorker::HoldsPartialLines() const {
  for (const auto& c : channels_) {
    if (c->masker != nullptr && c->state == Channel::State::kRunning &&
        c->mask_out->held_line_bytes() + c->mask_err->held_line_bytes() > 0) {
      return true;
    }
  }
  return false;
}

void SshWorker::Reap() {
  // Ended channels are freed here, outside libssh's callbacks (which may still name them
  // while they run); libssh finishes a close the peer has not answered yet by itself.
  for (auto it = channels_.begin(); it != channels_.end();) {
    Channel& c = **it;
    if (c.state != Channel::State::kEnded) {
      ++it;
      continue;
    }
    ssh_remove_channel_callbacks(c.agent, &c.agent_cb);
    ssh_remove_channel_callbacks(c.up, &c.up_cb);
    ssh_channel_free(c.agent);
    ssh_channel_free(c.up);
    it = channels_.erase(it);
  }
}

void SshWorker::TakeSftpOps(Channel& c, bool finish) {
  for (codec::sftp::FileOp& op : finish ? c.sftp->Finish() : c.sftp->TakeOps()) {
    if (c.audit.files_size() >= kMaxSftpOpsPerEvent) {
      c.audit.set_files_omitted(c.audit.files_omitted() + 1);
      continue;
    }
    v1::SftpFileOp* f = c.audit.add_files();
    MakeValidUtf8(op.path);
    MakeValidUtf8(op.target);
    MakeValidUtf8(op.status);
    f->set_op(std::move(op.op));
    f->set_path(std::move(op.path));
    f->set_target(std::move(op.target));
    for (std::string& flag : op.flags) f->add_flags(std::move(flag));
    f->set_bytes_read(op.bytes_read);
    f->set_bytes_written(op.bytes_written);
    f->set_status(std::move(op.status));
  }
  c.audit.set_sftp_metadata_requests(c.sftp->metadata_requests());
  if (!c.sftp->status().ok()) {
    std::string why(c.sftp->status().message());
    MakeValidUtf8(why);
    c.audit.set_sftp_untracked(why);
  }
}

void SshWorker::AuditChannel(Channel& c) {
  if (c.audited) return;
  c.audited = true;
  if (c.sftp != nullptr) TakeSftpOps(c, /*finish=*/true);
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_SSH_REQUEST);
  ev.set_outcome(c.outcome.empty() ? "interrupted" : c.outcome);
  c.audit.set_duration_us(absl::ToInt64Microseconds(clock_->Monotonic() - c.started));
  if (c.masker != nullptr) {
    v1::MaskingInfo* m = c.audit.mutable_masking();
    for (const mask::BodyMasker* bm : {c.mask_out.get(), c.mask_err.get()}) {
      m->set_values_masked(m->values_masked() + bm->values_masked());
      for (const auto& [name, n] : bm->counts().detectors) (*m->mutable_detector_counts())[name] += n;
    }
  }
  *ev.mutable_ssh() = c.audit;
  *ev.mutable_decision() = c.decision;
  ev.set_bytes_to_upstream(c.audit.bytes_in());
  ev.set_bytes_to_agent(c.audit.bytes_out());
  session_->PostAudit(std::move(ev));
}

void SshWorker::Refuse(const std::string& type, const std::string& what, uint32_t channel) {
  v1::SshEvent e;
  e.mutable_request()->set_type(type);
  e.mutable_request()->set_command(what);
  e.mutable_request()->set_decision("refused");
  Record(channel, std::move(e));
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_SSH_REQUEST);
  ev.set_outcome("refused");
  ev.set_reason(absl::StrCat("ssh_", type, "_refused"));
  v1::SshExchange* x = ev.mutable_ssh();
  x->set_request(type);
  x->set_command(what);
  x->set_agent_user(agent_user_);
  x->set_upstream_user(upstream_user_);
  x->set_exit_status(-1);
  ev.mutable_decision()->set_action("DENY");
  ev.mutable_decision()->set_source("not_supported");
  session_->PostAudit(std::move(ev));
}

int SshWorker::MessageCallback(ssh_session, ssh_message message, void* self) {
  return static_cast<SshWorker*>(self)->OnMessage(message);
}

int SshWorker::OnMessage(ssh_message message) {
  // Whatever reaches here had no handler: it is refused (libssh's default reply), and the
  // kinds an agent could use to reach past the resource are audited.
  const int type = ssh_message_type(message);
  const int subtype = ssh_message_subtype(message);
  if (type == SSH_REQUEST_CHANNEL_OPEN) {
    switch (subtype) {
      case SSH_CHANNEL_DIRECT_TCPIP: {
        const char* host = ssh_message_channel_request_open_destination(message);
        Refuse("direct-tcpip",
               absl::StrCat(host != nullptr ? host : "", ":", ssh_message_channel_request_open_destination_port(message)),
               0);
        break;
      }
      case SSH_CHANNEL_FORWARDED_TCPIP:
        Refuse("forwarded-tcpip", "", 0);
        break;
      case SSH_CHANNEL_X11:
        Refuse("x11", "", 0);
        break;
      case SSH_CHANNEL_AUTH_AGENT:
        Refuse("auth-agent@openssh.com", "", 0);
        break;
      default:
        Refuse("channel-open", "unknown channel type", 0);
        break;
    }
  } else if (type == SSH_REQUEST_GLOBAL) {
    if (subtype == SSH_GLOBAL_REQUEST_TCPIP_FORWARD) {
      const char* addr = ssh_message_global_request_address(message);
      Refuse("tcpip-forward",
             absl::StrCat(addr != nullptr ? addr : "", ":", ssh_message_global_request_port(message)), 0);
    }
    // keepalive@openssh.com, no-more-sessions@openssh.com, hostkeys-00@openssh.com: no.
  } else if (type == SSH_REQUEST_CHANNEL) {
    Channel* c = ByAgent(ssh_message_channel_request_channel(message));
    const uint32_t id = c != nullptr ? c->id : 0;
    switch (subtype) {
      case SSH_CHANNEL_REQUEST_X11:
        Refuse("x11-req", "", id);
        break;
      case SSH_CHANNEL_REQUEST_UNKNOWN:
        // auth-agent-req@openssh.com, signal, break, ...: libssh does not name them.
        Refuse("channel-request", "not supported (agent forwarding, signal, break, ...)", id);
        break;
      default:
        Refuse("channel-request", absl::StrCat("request type ", subtype, " in this state"), id);
        break;
    }
  }
  return 1;
}

}  // namespace interlock::proxy::ssh
