// Audit events: who, what, when, where, outcome. AuditLog stamps each event (id, time,
// host) and hands it to a sink; the JSON-lines sink appends one protobuf-JSON object per
// line to a file opened O_APPEND, one write(2) per event, so concurrent readers (tail -f,
// a shipper) never see half an event and a crash loses nothing already returned OK.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto sink, JsonLinesSink::Create("/var/lib/interlock/audit/audit.jsonl"));
//   AuditLog audit(std::move(sink), clock);
//   v1::AuditEvent ev;
//   ev.set_kind(v1::AUDIT_KIND_SESSION_START);
//   audit.Emit(std::move(ev));
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "interlock/v1/events.pb.h"
#include "userspace/audit/json_writer.h"
#include "userspace/common/clock.h"
#include "userspace/common/unique_fd.h"

namespace interlock::audit {

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual absl::Status Write(const v1::AuditEvent& event) = 0;
  // Makes everything written so far durable in the sink's medium.
  virtual absl::Status Flush() { return absl::OkStatus(); }
};

class JsonLinesSink final : public AuditSink {
 public:
  // Creates the file (0600) and its directory (0700) when missing.
  static absl::StatusOr<std::unique_ptr<JsonLinesSink>> Create(const std::string& path);
  // Buffers the line; the buffer goes to the file (whole lines, one write(2)) on Flush(),
  // when it passes kFlushBytes, and on destruction. interlockd flushes once per event-loop
  // iteration, like the session recordings.
  absl::Status Write(const v1::AuditEvent& event) override;
  absl::Status Flush() override;
  ~JsonLinesSink() override;

  static constexpr size_t kFlushBytes = 64 * 1024;

 private:
  JsonLinesSink(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
  std::string buffer_;
};

// RFC 3339 UTC with nanoseconds: "2026-11-26T01:36:20.123456789Z".
std::string FormatRfc3339(absl::Time t);

class AuditLog {
 public:
  AuditLog(std::unique_ptr<AuditSink> sink, const Clock& clock);
  // Fills id, time and host when empty, then writes. A sink error is returned and also
  // counted; callers on the data path log it and carry on (the session is recorded).
  absl::Status Emit(v1::AuditEvent event);
  // The same for an event the caller keeps and reuses (a session's statement events share
  // identity, resource and destination; nothing is copied): stamps id, time and host into
  // *event when empty, then writes it. Clear id and time before emitting it again.
  absl::Status Emit(v1::AuditEvent* event);
  // Flushes the sink (see JsonLinesSink::Write). A failure is returned and counted.
  absl::Status Flush();
  uint64_t errors() const { return errors_; }
  // A further destination (audit/sinks/remote_sink.h): every emitted event goes to it too,
  // after the main sink. Its errors are counted, never returned by Emit.
  void AddSink(std::unique_ptr<AuditSink> sink) { extra_sinks_.push_back(std::move(sink)); }

 private:
  std::unique_ptr<AuditSink> sink_;
  std::vector<std::unique_ptr<AuditSink>> extra_sinks_;
  const Clock& clock_;
  std::string host_;
  std::string id_prefix_;  // 64 random bits, hex
  uint64_t id_counter_ = 0;
  uint64_t errors_ = 0;
};

// 128 random bits as 32 hex characters (getrandom(2)); also used for session ids.
std::string RandomId();

}  // namespace interlock::audit
