// RAII owners for libssh's handles, and the library's one-time initialisation. Every
// libssh object of a session belongs to that session's worker thread (ssh_session.h):
// libssh is thread-safe across sessions, not within one.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace interlock::proxy::ssh {

struct SessionFree {
  void operator()(ssh_session s) const {
    ssh_disconnect(s);
    ssh_free(s);
  }
};
struct BindFree {
  void operator()(ssh_bind b) const { ssh_bind_free(b); }
};
struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
struct EventFree {
  void operator()(ssh_event e) const { ssh_event_free(e); }
};

using SessionPtr = std::unique_ptr<ssh_session_struct, SessionFree>;
using BindPtr = std::unique_ptr<ssh_bind_struct, BindFree>;
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyFree>;
using EventPtr = std::unique_ptr<ssh_event_struct, EventFree>;

// ssh_init() once per process (thread-safe; idempotent).
void InitLibssh();

// libssh's last error on `session` (or "unknown error"), for audit details and messages.
std::string LastError(ssh_session session);

}  // namespace interlock::proxy::ssh
