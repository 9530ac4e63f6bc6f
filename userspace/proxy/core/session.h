// ProxySession: what the engine sees of one relayed session, whatever its protocol (the
// TCP relay, the PostgreSQL proxy, ...). The engine owns sessions, ticks their timeouts,
// flushes their recordings once per loop iteration and audits their end.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "interlock/v1/identity.pb.h"

namespace interlock::record {
class Recorder;
}  // namespace interlock::record

namespace interlock::proxy {

struct RelayStats {
  uint64_t bytes_to_upstream = 0;
  uint64_t bytes_to_agent = 0;
};

class ProxySession {
 public:
  virtual ~ProxySession() = default;
  // Ends the session now with `outcome` (e.g. "drain", "idle_timeout"): both sides reset.
  virtual void Abort(const std::string& outcome, const std::string& detail = "") = 0;
  // Writes buffered recording bytes; an error means the recording is broken and the
  // caller aborts the session.
  virtual absl::Status FlushRecording() = 0;
  virtual const RelayStats& stats() const = 0;
  virtual bool done() const = 0;
  virtual const std::string& outcome() const = 0;
  virtual const std::string& detail() const = 0;
  // Monotonic time of the last byte moved either way (a session held for approval counts
  // as active).
  virtual absl::Duration last_activity() const = 0;
  // The just-in-time grant the session ran under has expired or was revoked. Default:
  // end now. `after_statement`: let a running statement finish first, where the
  // protocol can tell.
  // Identity facts learned during the session (a verified token's issuer, subject and
  // groups) to carry in the session-end event; null when the session learned none.
  virtual const v1::WorkloadIdentity* learned_identity() const { return nullptr; }
  // The session's recorder (closed by the time the session is done), for the session-end
  // audit event's RecordingSummary; null when the session is not recorded.
  virtual const record::Recorder* recorder() const { return nullptr; }
  // The just-in-time grant the session runs under ("" when none), so the engine can end
  // the sessions of a grant that expired or was revoked.
  virtual const std::string& grant_id() const {
    static const std::string kNone;
    return kNone;
  }
  virtual void EndForGrant(const std::string& detail, bool after_statement) {
    (void)after_statement;
    Abort("grant_ended", detail);
  }
};

}  // namespace interlock::proxy
