// ProxySession: what the engine sees of one relayed session, whatever its protocol (the
// TCP relay, the PostgreSQL proxy, ...). The engine owns sessions, ticks their timeouts,
// writes their recordings once per write batch and audits their end.
//
// FlushList: the sessions with recording bytes waiting in memory. A session puts itself on
// the list (MarkForFlush, once until it is taken) when it buffers something, and the engine
// takes the list once per batch: a batch costs the sessions that recorded something, not
// every session (with 9,000 idle sessions, visiting each every 5 ms was a quarter of
// interlockd's CPU). A session leaves the list when it is destroyed, so the list never
// holds a dangling pointer.
//
//   proxy::FlushList flushes;
//   session->JoinFlushList(&flushes);      // once, after Start; earlier marks carry over
//   for (ProxySession* s : flushes.Take()) // each batch: marks are cleared
//     if (!s->FlushRecording().ok()) s->Abort("recording_failed", ...);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

class ProxySession;

class FlushList {
 public:
  FlushList() = default;
  FlushList(const FlushList&) = delete;
  FlushList& operator=(const FlushList&) = delete;

  // The marked sessions, in the order they were marked; they are unmarked and may mark
  // themselves again (also from inside FlushRecording).
  std::vector<ProxySession*> Take();
  size_t size() const { return sessions_.size(); }

 private:
  friend class ProxySession;
  std::vector<ProxySession*> sessions_;
};

class ProxySession {
 public:
  virtual ~ProxySession();
  // The engine's list of sessions to write (borrowed; outlives the session). A session
  // that marked itself before it joined is put on the list now.
  void JoinFlushList(FlushList* list);
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

 protected:
  // The session holds recording bytes (in its recorder or its own) that FlushRecording
  // writes: it goes on the flush list if it is not there yet. Recorders call it through
  // FollowRecorder's hook; a session that buffers records itself calls it when it does.
  void MarkForFlush();
  // Marks the session whenever `recorder` (the session's own, or null) buffers a record.
  void FollowRecorder(record::Recorder* recorder);

 private:
  friend class FlushList;
  FlushList* flush_list_ = nullptr;
  bool flush_marked_ = false;
};

}  // namespace interlock::proxy
