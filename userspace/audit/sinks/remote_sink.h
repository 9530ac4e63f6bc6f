// RemoteSink: delivery of audit events to one remote destination (a SIEM) off the data path.
//
//   auto spool = Spool::Open({.dir = state_dir + "/audit/spool/siem"});
//   auto sink = RemoteSink::Create(options, *std::move(spool),
//   std::make_unique<SyslogDeliverer>(...)); audit_log.AddSink(*std::move(sink));     //
//   AuditLog::Emit -> RemoteSink::Write
//
// Design: a bounded in-memory queue feeding one worker thread per sink, which does blocking
// I/O (connect, TLS handshake, write, wait for the HTTP answer) with timeouts. Chosen over a
// nonblocking state machine on the event loop because the loop is single-threaded and
// carries every session: a worker thread keeps DNS lookups, TLS handshakes, slow SIEMs and
// spool reads off it entirely, and a blocking client is a fraction of the code (and of the
// bugs) of a nonblocking HTTP + TLS + syslog client. The loop's only work per event is a
// filter check, one protobuf serialization and a mutex-protected push (Write).
//
// Flow and guarantees:
// - Write (event loop): events whose kind is not wanted are skipped; the rest are queued
//   (about 1 µs: a serialization and an uncontended mutex; the worker is woken by Flush,
//   once per write batch, not per event).
//   When the queue holds queue_max_events, the event goes straight to the spool instead
//   (one write(2), like the local audit file); when the spool is full too, it is dropped
//   and counted. Write never waits for the destination and never fails the caller.
// - The worker sends the spool first (oldest events), then the queue, in batches of at
//   most batch_max_events; a batch waits up to batch_max_delay to fill.
// - A failed delivery (UNAVAILABLE, timeout, 429/5xx...) moves the batch to the spool and
//   backs off (Backoff: exponential, jittered, capped); while backing off, newly queued
//   events go to the spool too. A spool segment is deleted only after all of it was
//   delivered: delivery is at least once, and an event resent after a crash or a lost
//   answer carries the same `id`.
// - A batch the destination rejects for good (Deliverer returns INVALID_ARGUMENT: HEC
//   400-class but 429) is counted as failed and not retried.
// - Stopping (destructor) moves the queue to the spool, so a restart sends it. It waits
//   for a delivery in progress, at most the deliverer's timeout.
// - TakeProblems() hands the engine what was dropped or rejected since the last call, for
//   a DAEMON audit event in the local file (the worker must not call into AuditLog).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "interlock/v1/events.pb.h"
#include "userspace/audit/audit_log.h"
#include "userspace/audit/sinks/backoff.h"
#include "userspace/audit/sinks/spool.h"

namespace interlock::audit::sinks {

// The destination-specific half of a sink; called only from the sink's worker thread.
class Deliverer {
 public:
  virtual ~Deliverer() = default;
  // Sends `events` in order and returns when the destination has them:
  //   OK                the destination acknowledged them (syslog: written to the
  //                     connection or sent as datagrams — syslog has no acknowledgement);
  //   INVALID_ARGUMENT  the destination refused this batch for good: it is not retried;
  //   anything else     try again later (the deliverer drops its connection).
  virtual absl::Status Deliver(const std::vector<v1::AuditEvent>& events) = 0;
  // "syslog-tls 127.0.0.1:6514", for status.
  virtual std::string destination() const = 0;
};

struct RemoteSinkOptions {
  std::string name;
  std::vector<int> kinds;  // v1::AuditKind values; empty: all
  uint32_t queue_max_events = 10000;
  uint32_t batch_max_events = 100;
  absl::Duration batch_max_delay = absl::ZeroDuration();
  absl::Duration retry_initial = absl::Milliseconds(500);
  absl::Duration retry_max = absl::Seconds(60);
  uint64_t seed = 0;  // backoff jitter
};

struct RemoteSinkStats {
  uint64_t queued_events = 0;
  uint64_t spooled_events = 0;
  uint64_t spooled_bytes = 0;
  uint64_t sent_events = 0;
  uint64_t failed_events = 0;
  uint64_t dropped_events = 0;
  uint64_t corrupt_spool_bytes = 0;
  uint64_t retries = 0;
  std::string last_error;
  bool backing_off = false;
};

class RemoteSink final : public AuditSink {
 public:
  static absl::StatusOr<std::unique_ptr<RemoteSink>> Create(RemoteSinkOptions options,
                                                            std::unique_ptr<Spool> spool,
                                                            std::unique_ptr<Deliverer> deliverer);
  ~RemoteSink() override;

  // Always OK: trouble is counted (stats) and reported (TakeProblems), never returned.
  absl::Status Write(const v1::AuditEvent& event) override;
  // Wakes the worker for what was queued since (Write does only for a full batch): the
  // engine flushes once per write batch, so a queued event waits at most write_batch_ms,
  // or kIdleWake without any Flush. Always OK.
  absl::Status Flush() override;

  static constexpr std::chrono::milliseconds kIdleWake{100};

  const std::string& name() const { return options_.name; }
  const std::string& destination() const { return destination_; }
  RemoteSinkStats stats() const;

  struct Problems {
    uint64_t dropped = 0;        // events lost (spool full or unwritable)
    uint64_t failed = 0;         // events the destination refused for good
    uint64_t corrupt_bytes = 0;  // unreadable spool bytes skipped
    std::string last_error;
    bool any() const { return dropped + failed + corrupt_bytes > 0; }
  };
  // What happened since the last call (counters reset).
  Problems TakeProblems();

 private:
  using SteadyClock = std::chrono::steady_clock;
  RemoteSink(RemoteSinkOptions options, std::unique_ptr<Spool> spool,
             std::unique_ptr<Deliverer> deliverer);
  bool Wanted(v1::AuditKind kind) const;
  void Run();
  // While backing off, the queue is moved to the spool when it reaches this size.
  size_t SpillThreshold() const { return std::max<size_t>(1, options_.queue_max_events / 2); }
  // Worker helpers; called without mu_ held. DrainSpoolOnce: false when the spool had
  // nothing to read after all.
  bool DrainSpoolOnce();
  void SendLive(std::vector<std::string> records);
  void SpillToSpool(std::vector<std::string> records);
  // The result of one delivery attempt of `n` events, under mu_.
  void Account(const absl::Status& st, size_t n);
  std::vector<v1::AuditEvent> Parse(const std::vector<std::string>& records, size_t from,
                                    size_t count);

  const RemoteSinkOptions options_;
  const std::unique_ptr<Spool> spool_;
  const std::unique_ptr<Deliverer> deliverer_;
  const std::string destination_;
  Backoff backoff_;  // worker only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // serialized v1::AuditEvent
  SteadyClock::time_point oldest_queued_;
  SteadyClock::time_point retry_at_;
  bool stop_ = false;
  RemoteSinkStats stats_;  // queued/spooled filled in by stats()
  Problems unreported_;

  // The spool segment being sent (worker only).
  std::optional<Spool::Segment> pending_;
  size_t pending_index_ = 0;

  std::thread worker_;
};

}  // namespace interlock::audit::sinks
