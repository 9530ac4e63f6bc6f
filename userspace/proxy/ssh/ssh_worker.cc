// SshWorker: accepting the agent, logging in upstream, the relay loop and the end.
// (Channels: ssh_channels.cc.)
#include "userspace/proxy/ssh/ssh_worker.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/net/socket.h"

namespace interlock::proxy::ssh {

namespace {

// The peer closed, or the session failed (libssh's `alive` flag lags a peer's EOF).
bool Closed(ssh_session s) {
  return ssh_is_connected(s) == 0 || (ssh_get_status(s) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

void SetBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

const config::SshLoginConfig& LoginFor(const config::SshConfig& ssh, const std::string& workload) {
  auto it = ssh.by_workload.find(workload);
  return it != ssh.by_workload.end() ? it->second : ssh.login;
}

}  // namespace

SshWorker::SshWorker(const SshSessionContext& ctx, std::shared_ptr<SshShared> shared, SshSession* session,
                     UniqueFd agent, const Clock* clock)
    : ctx_(ctx),
      config_(*ctx.resource->ssh),
      shared_(std::move(shared)),
      session_(session),
      agent_fd_(std::move(agent)),
      clock_(clock) {}

SshWorker::~SshWorker() = default;

void SshWorker::Touch() { shared_->last_activity_ns = absl::ToInt64Nanoseconds(clock_->Monotonic()); }

bool SshWorker::Aborted(std::string* outcome, std::string* detail) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  if (!shared_->abort) return false;
  *outcome = shared_->abort_outcome;
  *detail = shared_->abort_detail;
  return true;
}

bool SshWorker::AbortRequested() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->abort;
}

void SshWorker::Run() {
  InitLibssh();
  if (Accept()) RelayLoop();
  // Channels still open: audit them as cut short.
  for (auto& c : channels_) {
    if (!c->audited && !c->type.empty()) {
      if (c->outcome.empty()) c->outcome = "interrupted";
      AuditChannel(*c);
    }
  }
  Finish(end_outcome_, end_detail_);
}

bool SshWorker::Accept() {
  SetBlocking(agent_fd_.get());
  bind_.reset(ssh_bind_new());
  agent_.reset(ssh_new());
  KeyPtr key = ctx_.host_key->Copy();
  bool process_config = false;
  if (bind_ == nullptr || agent_ == nullptr || key == nullptr ||
      ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_PROCESS_CONFIG, &process_config) != SSH_OK ||
      ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_IMPORT_KEY, key.get()) != SSH_OK) {
    end_outcome_ = "error";
    end_detail_ = "could not set up the agent-side SSH server";
    return false;
  }
  (void)key.release();  // the bind owns it now
  const int accepted = ssh_bind_accept_fd(bind_.get(), agent_.get(), agent_fd_.get());
  (void)agent_fd_.Release();  // libssh's socket has it (also on failure): closed with the session
  if (accepted != SSH_OK) {
    end_outcome_ = "agent_protocol_error";
    end_detail_ = LastError(agent_.get());
    return false;
  }
  const long timeout_s = absl::ToInt64Seconds(config_.upstream_login_timeout) + 5;
  (void)ssh_options_set(agent_.get(), SSH_OPTIONS_TIMEOUT, &timeout_s);

  ssh_callbacks_init(&server_cb_);
  server_cb_.userdata = this;
  server_cb_.auth_none_function = &SshWorker::AuthNone;
  server_cb_.auth_password_function = &SshWorker::AuthPassword;
  server_cb_.auth_pubkey_function = &SshWorker::AuthPubkey;
  server_cb_.channel_open_request_session_function = &SshWorker::ChannelOpen;
  ssh_set_server_callbacks(agent_.get(), &server_cb_);
  ssh_set_message_callback(agent_.get(), &SshWorker::MessageCallback, this);
  ssh_set_auth_methods(agent_.get(), SSH_AUTH_METHOD_NONE | SSH_AUTH_METHOD_PUBLICKEY | SSH_AUTH_METHOD_PASSWORD);

  if (ssh_handle_key_exchange(agent_.get()) != SSH_OK) {
    end_outcome_ = "agent_protocol_error";
    end_detail_ = absl::StrCat("key exchange: ", LastError(agent_.get()));
    return false;
  }
  Touch();
  agent_event_.reset(ssh_event_new());
  if (agent_event_ == nullptr || ssh_event_add_session(agent_event_.get(), agent_.get()) != SSH_OK) {
    end_outcome_ = "error";
    end_detail_ = "could not poll the agent's session";
    return false;
  }
  const absl::Duration deadline = clock_->Monotonic() + config_.upstream_login_timeout + absl::Seconds(20);
  while (!authenticated_) {
    if (Aborted(&end_outcome_, &end_detail_)) return false;
    if (clock_->Monotonic() > deadline) {
      end_outcome_ = login_tried_ && !login_status_.ok() ? "upstream_login_failed" : "login_timeout";
      end_detail_ = login_tried_ && !login_status_.ok() ? std::string(login_status_.message())
                                                        : "the agent did not log in in time";
      return false;
    }
    if (ssh_event_dopoll(agent_event_.get(), 200) == SSH_ERROR || ssh_is_connected(agent_.get()) == 0) {
      end_outcome_ = login_tried_ && !login_status_.ok() ? "upstream_login_failed" : "agent_closed";
      end_detail_ = login_tried_ && !login_status_.ok() ? std::string(login_status_.message())
                                                        : "the agent left before logging in";
      return false;
    }
  }
  return true;
}

int SshWorker::AuthNone(ssh_session, const char* user, void* self) {
  return static_cast<SshWorker*>(self)->Authenticate(user, nullptr);
}
int SshWorker::AuthPassword(ssh_session, const char* user, const char* password, void* self) {
  // The password is the agent's token when the resource takes tokens; otherwise it is not
  // a credential here (the workload is): never read, never kept.
  return static_cast<SshWorker*>(self)->Authenticate(user, password);
}
int SshWorker::AuthPubkey(ssh_session, const char* user, ssh_key_struct*, char state, void* self) {
  // Any key: a probe is answered "ok" and a signed request succeeds (libssh has verified
  // the signature). The key proves nothing interlockd relies on.
  if (state != SSH_PUBLICKEY_STATE_NONE && state != SSH_PUBLICKEY_STATE_VALID) return SSH_AUTH_DENIED;
  return static_cast<SshWorker*>(self)->Authenticate(user, nullptr);
}

void SshWorker::Banner(const std::string& text) {
  // Shown by ssh before "Permission denied": the agent learns why, in its own client.
  ssh_string s = ssh_string_from_char(text.c_str());
  if (s == nullptr) return;
  (void)ssh_send_issue_banner(agent_.get(), s);
  ssh_string_free(s);
}

bool SshWorker::TokenAllows(const char* password) {
  if (token_ok_ || ctx_.token_verifier == nullptr) return true;
  if (++token_attempts_ > 3) return false;
  const TokenCheck t =
      session_->CheckAgentToken(password != nullptr ? std::optional<std::string>(password) : std::nullopt);
  token_ok_ = t.result == TokenCheck::Result::kValid;
  if (token_ok_ || !config_.require_agent_token) return t.result != TokenCheck::Result::kAborted;
  Banner(absl::StrCat("interlock: ", ctx_.resource->name, " needs an agent token: ",
                      t.result == TokenCheck::Result::kInvalid ? t.message
                                                               : "give it as the SSH password (or bind it at enrollment)",
                      "\r\n"));
  ssh_set_auth_methods(agent_.get(), SSH_AUTH_METHOD_PASSWORD);
  return false;
}

int SshWorker::Authenticate(const char* user, const char* password) {
  const std::string name = user != nullptr ? user : "";
  if (!agent_user_.empty() && name != agent_user_) return SSH_AUTH_DENIED;  // one user per session
  agent_user_ = name;
  // The token first: an agent that must show one never makes interlockd log in upstream.
  if (!TokenAllows(password)) return SSH_AUTH_DENIED;
  if (!login_tried_) {
    login_tried_ = true;
    login_status_ = LoginUpstream(name);
    v1::AuditEvent ev;
    ev.set_kind(v1::AUDIT_KIND_AUTH);
    ev.set_outcome(login_status_.ok() ? "allowed" : "denied");
    if (!login_status_.ok()) {
      ev.set_reason(absl::IsPermissionDenied(login_status_) &&
                            absl::StrContains(login_status_.message(), "host key")
                        ? "upstream_host_key_mismatch"
                        : "upstream_login_failed");
      ev.set_detail(std::string(login_status_.message()));
    } else {
      ev.set_reason("upstream_login");
    }
    v1::SshExchange* x = ev.mutable_ssh();
    x->set_request("userauth");
    x->set_agent_user(agent_user_);
    x->set_upstream_user(upstream_user_);
    session_->PostAudit(std::move(ev));
    if (!login_status_.ok()) {
      Banner(absl::StrCat("interlock: cannot open ", ctx_.resource->name, ": ", login_status_.message(), "\r\n"));
      ssh_set_auth_methods(agent_.get(), SSH_AUTH_METHOD_PUBLICKEY);
    }
  }
  if (!login_status_.ok()) return SSH_AUTH_DENIED;
  authenticated_ = true;
  return SSH_AUTH_SUCCESS;
}

absl::Status SshWorker::ConnectUpstream() {
  INTERLOCK_ASSIGN_OR_RETURN(UniqueFd fd, net::ConnectTcpNonBlocking(ctx_.upstream));
  pollfd p{fd.get(), POLLOUT, 0};
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(config_.upstream_login_timeout));
  const int n = ::poll(&p, 1, ms);
  if (n == 0) return absl::DeadlineExceededError(absl::StrCat("connect ", ctx_.upstream.ToString(), ": timed out"));
  INTERLOCK_RETURN_IF_ERROR(net::ConnectResult(fd.get(), ctx_.upstream));
  SetBlocking(fd.get());
  up_.reset(ssh_new());
  if (up_ == nullptr) return absl::InternalError("ssh_new failed");
  const int raw = fd.get();
  const std::string host = ctx_.upstream.ip();
  const unsigned int port = ctx_.upstream.port();
  const long timeout_s = absl::ToInt64Seconds(config_.upstream_login_timeout);
  bool process_config = false;
  const int verbosity = SSH_LOG_NOLOG;
  if (ssh_options_set(up_.get(), SSH_OPTIONS_PROCESS_CONFIG, &process_config) != SSH_OK ||
      ssh_options_set(up_.get(), SSH_OPTIONS_HOST, host.c_str()) != SSH_OK ||
      ssh_options_set(up_.get(), SSH_OPTIONS_PORT, &port) != SSH_OK ||
      ssh_options_set(up_.get(), SSH_OPTIONS_USER, upstream_user_.c_str()) != SSH_OK ||
      ssh_options_set(up_.get(), SSH_OPTIONS_TIMEOUT, &timeout_s) != SSH_OK ||
      ssh_options_set(up_.get(), SSH_OPTIONS_LOG_VERBOSITY, &verbosity) != SSH_OK ||
      ssh_options_set(up_.get(), SSH_OPTIONS_FD, &raw) != SSH_OK) {
    return absl::InternalError(absl::StrCat("upstream options: ", LastError(up_.get())));
  }
  (void)fd.Release();  // libssh closes it with the session
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->upstream_fd = raw;
  }
  if (ssh_connect(up_.get()) != SSH_OK) {
    return absl::UnavailableError(absl::StrCat("upstream ", ctx_.upstream.ToString(), ": ", LastError(up_.get())));
  }
  return absl::OkStatus();
}

absl::Status SshWorker::LoginUpstream(const std::string& agent_user) {
  const config::SshLoginConfig& login = LoginFor(config_, ctx_.identity.workload());
  upstream_user_ = login.user.empty() ? agent_user : login.user;
  if (upstream_user_.empty()) return absl::InvalidArgumentError("no user to log in upstream as");
  INTERLOCK_RETURN_IF_ERROR(ConnectUpstream());
  INTERLOCK_RETURN_IF_ERROR(CheckUpstreamHostKey(up_.get(), config_));
  auto key = LoadLoginKey(login);
  if (!key.ok()) {
    // The file's name is the operator's business; the agent hears only that it failed.
    return absl::FailedPreconditionError(
        absl::StrCat("the resource's login key cannot be used (", key.status().message(), ")"));
  }
  const int rc = ssh_userauth_publickey(up_.get(), nullptr, key->get());
  if (rc != SSH_AUTH_SUCCESS) {
    return absl::PermissionDeniedError(absl::StrCat("the upstream refused the resource's key for user ",
                                                    upstream_user_));
  }
  return absl::OkStatus();
}

bool SshWorker::PollOnce(int timeout_ms) {
  pollfd fds[3];
  int n = 0;
  auto add = [&](ssh_session s) {
    if (s == nullptr) return;
    const int fd = ssh_get_fd(s);
    if (fd < 0) return;
    short events = POLLIN;
    if (ssh_get_poll_flags(s) & SSH_WRITE_PENDING) events |= POLLOUT;
    fds[n++] = pollfd{fd, events, 0};
  };
  add(agent_.get());
  add(up_.get());
  fds[n++] = pollfd{shared_->wake.get(), POLLIN, 0};
  const int r = ::poll(fds, n, timeout_ms);
  if (r > 0 && (fds[n - 1].revents & POLLIN)) {
    uint64_t count;
    (void)!::read(shared_->wake.get(), &count, sizeof count);
  }
  return r >= 0 || errno == EINTR;
}

void SshWorker::RelayLoop() {
  // From here on neither session blocks: the loop below owns the waiting.
  ssh_set_blocking(agent_.get(), 0);
  ssh_set_blocking(up_.get(), 0);
  EventPtr up_event(ssh_event_new());
  if (up_event == nullptr || ssh_event_add_session(up_event.get(), up_.get()) != SSH_OK) {
    end_outcome_ = "error";
    end_detail_ = "could not poll the upstream session";
    return;
  }
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->relaying = true;  // from here Abort leaves the agent's socket to EndAborted
  }
  absl::Cleanup not_relaying = [this] {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->relaying = false;
  };
  // Abort shuts the upstream's socket down at once: an upstream error seen after it is the
  // abort's, and the agent is told so.
  auto aborted = [this] {
    if (!Aborted(&end_outcome_, &end_detail_)) return false;
    EndAborted();
    return true;
  };
  bool busy = false;
  while (true) {
    if (aborted()) return;
    // A masked line that has not ended is released after kPartialLineFlush of quiet.
    const int wait_ms = busy ? 0 : HoldsPartialLines() ? static_cast<int>(absl::ToInt64Milliseconds(kPartialLineFlush)) : 1000;
    if (!PollOnce(wait_ms)) {
      end_outcome_ = "error";
      end_detail_ = absl::StrCat("poll: ", std::strerror(errno));
      return;
    }
    if (aborted()) return;
    if (ssh_event_dopoll(agent_event_.get(), 0) == SSH_ERROR || Closed(agent_.get())) {
      end_outcome_ = "closed";
      return;
    }
    if (ssh_event_dopoll(up_event.get(), 0) == SSH_ERROR || Closed(up_.get())) {
      if (aborted()) return;
      end_outcome_ = "upstream_closed";
      end_detail_ = LastError(up_.get());
      return;
    }
    busy = TakeVerdicts();
    for (auto& c : channels_) {
      // A request waiting for an approver keeps the session active (never idle-timed out).
      if (c->state == Channel::State::kJudging || c->state == Channel::State::kHeld) Touch();
      busy |= Pump(*c);
    }
    Reap();
  }
}

void SshWorker::Finish(const std::string& outcome, const std::string& detail) {
  // Free libssh's objects (closing both sockets) with the fds withdrawn from Abort.
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->agent_fd = -1;
    shared_->upstream_fd = -1;
  }
  channels_.clear();  // libssh frees channels with their session
  agent_event_.reset();
  up_.reset();
  agent_.reset();
  bind_.reset();
  if (agent_fd_.valid()) agent_fd_.Reset();
  session_->PostFinished(outcome, detail);
}

}  // namespace interlock::proxy::ssh
