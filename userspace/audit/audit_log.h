// Audit events: who, what, when, where, outcome. AuditLog stamps each event (id, time,
// host) and hands it to a sink; the JSON-lines sink appends one protobuf-JSON object per
// line to a file opened O_APPEND, whole lines in one write(2) per flush, so concurrent
// readers (tail -f, a shipper) never see half an event.
//
// The file is a hash chain (userspace/audit/chain.h): the sink gives every line its seq and
// the SHA-256 of the line before (computed over the bytes as buffered, which are the bytes
// written), continues the chain across rotations and restarts, and writes checkpoints
// signed with the recording key at rotation, on Checkpoint() and every
// checkpoint_interval (Tick()).
//
//   JsonLinesSinkOptions o;
//   o.path = "/var/lib/interlock/audit/audit.jsonl";
//   o.key = &recording_key;
//   INTERLOCK_ASSIGN_OR_RETURN(auto sink, JsonLinesSink::Create(o, clock));
//   AuditLog audit(std::move(sink), clock);
//   v1::AuditEvent ev;
//   ev.set_kind(v1::AUDIT_KIND_SESSION_START);
//   audit.Emit(std::move(ev));
#pragma once

#include <algorithm>

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "interlock/v1/events.pb.h"
#include "userspace/audit/json_writer.h"
#include "userspace/common/clock.h"
#include "userspace/common/unique_fd.h"
#include "userspace/record/signing_key.h"

namespace interlock::audit {

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual absl::Status Write(const v1::AuditEvent& event) = 0;
  // Makes everything written so far durable in the sink's medium.
  virtual absl::Status Flush() { return absl::OkStatus(); }
};

struct JsonLinesSinkOptions {
  // The live file. Rotated files are <path>.<YYYYmmddTHHMMSSZ>.<seq of their last line>.
  std::string path;
  // Rotate once the file (written and buffered) reaches this many bytes; 0: never by size.
  uint64_t rotate_bytes = uint64_t{64} << 20;
  // Rotate once the file's first line is this old (Tick()); zero: never by age.
  absl::Duration rotate_age = absl::ZeroDuration();
  // After a rotation, delete the oldest rotated files beyond this many (0: no limit) and
  // those rotated longer ago than retain_age (zero: no limit).
  uint32_t retain_files = 0;
  absl::Duration retain_age = absl::ZeroDuration();
  // Files 0640 owned by this group (directory 0750) instead of 0600 (0700).
  std::optional<gid_t> group;
  // Tick() writes a checkpoint when this long has passed since the last one and lines were
  // written since; zero: only at rotation and Checkpoint().
  absl::Duration checkpoint_interval = absl::Seconds(60);
  // Signs checkpoints; borrowed, must outlive the sink. Null: no checkpoints are written.
  const record::RecordingKey* key = nullptr;
};

class JsonLinesSink final : public AuditSink {
 public:
  // Opens (creating when missing) the live file and its directory, and continues the chain
  // from its last line, or from the newest rotated file's when it is empty or missing, or
  // starts it (seq 1, genesis). A live file whose last line is cut short (a crash inside a
  // write) or is not chained (written before chaining) is first set aside as a rotated file
  // so that the chain never runs through a broken line. `clock` is borrowed.
  static absl::StatusOr<std::unique_ptr<JsonLinesSink>> Create(JsonLinesSinkOptions options,
                                                               const Clock& clock);
  // Create with defaults for `path`, no key (no checkpoints), the real clock.
  static absl::StatusOr<std::unique_ptr<JsonLinesSink>> Create(const std::string& path);
  // Chains and buffers the line (no system call); the buffer goes to the file (whole lines,
  // one write(2)) on Flush(), when it passes kFlushBytes, and on destruction. interlockd
  // flushes once per event-loop iteration, like the session recordings. Rotates after the
  // line when the file reached rotate_bytes.
  absl::Status Write(const v1::AuditEvent& event) override;
  absl::Status Flush() override;
  // Writes a signed checkpoint (AUDIT_KIND_AUDIT_CHECKPOINT, `reason`) to the buffer, unless
  // there is no key, no line yet, or the last line already is one. Call Flush() after.
  absl::Status Checkpoint(absl::string_view reason);
  // Age rotation and interval checkpoints; interlockd calls it every second.
  absl::Status Tick();
  // Checkpoint, flush, rename to the rotated name, open a new live file, fdatasync the rotated
  // one on a thread (off the event loop), apply
  // retention. Errors name the step; after a failed rename the sink keeps writing the old
  // file (the chain is intact either way).
  absl::Status Rotate(absl::string_view reason = "rotate");
  ~JsonLinesSink() override;

  // The seq of the last line chained (0: none yet) and its SHA-256 (hex; genesis when none).
  uint64_t last_seq() const { return next_.seq - 1; }
  const std::string& head_sha256() const { return next_.prev_sha256; }

  static constexpr size_t kFlushBytes = 64 * 1024;

 private:
  JsonLinesSink(JsonLinesSinkOptions options, const Clock& clock);
  absl::Status Open();
  absl::Status Recover();
  void Chain(const v1::AuditEvent& event);
  void ApplyRetention();

  JsonLinesSinkOptions options_;
  const Clock& clock_;
  std::string dir_;   // of path, "" for the working directory
  std::string name_;  // file name of path
  std::string host_;
  UniqueFd fd_;
  std::thread sync_thread_;  // fdatasync of the last rotated file (Rotate)
  std::string buffer_;
  ChainLink next_;              // seq and prev_sha256 of the next line
  uint64_t file_bytes_ = 0;     // written to the live file
  uint64_t rotate_at_bytes_ = 0;  // rotate_bytes, later after a failed rotation
  absl::Time first_line_at_;    // of the live file, for rotate_age
  absl::Duration last_checkpoint_mono_;
  bool head_is_checkpoint_ = false;
  bool rotating_ = false;
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
  // Events emitted since creation by (kind, outcome), for metrics.
  using CountKey = std::pair<int, std::string>;
  const absl::flat_hash_map<CountKey, uint64_t>& counts() const { return counts_; }
  // A further destination (audit/sinks/remote_sink.h): every emitted event goes to it too,
  // after the main sink. Its errors are counted, never returned by Emit.
  void AddSink(std::unique_ptr<AuditSink> sink) { extra_sinks_.push_back(std::move(sink)); }
  // Removes and destroys a sink AddSink added (a configuration reload); false if unknown.
  bool RemoveSink(const AuditSink* sink) {
    auto it = std::find_if(extra_sinks_.begin(), extra_sinks_.end(),
                           [sink](const std::unique_ptr<AuditSink>& s) { return s.get() == sink; });
    if (it == extra_sinks_.end()) return false;
    extra_sinks_.erase(it);
    return true;
  }
  // From now on, stamped events go to `to` instead of every sink, and Flush() does nothing
  // (interlockd after a handover: the new process writes the chain; see
  // userspace/daemon/handover.h). `to`'s error is Emit's.
  void Divert(std::function<absl::Status(const v1::AuditEvent&)> to) { divert_ = std::move(to); }
  // Replaces the main sink (the old one is flushed by its destructor first), e.g. to
  // re-read the chain's head after another process appended to the file.
  void ReplaceSink(std::unique_ptr<AuditSink> sink) {
    sink_.reset();
    sink_ = std::move(sink);
  }

 private:
  std::unique_ptr<AuditSink> sink_;
  std::vector<std::unique_ptr<AuditSink>> extra_sinks_;
  std::function<absl::Status(const v1::AuditEvent&)> divert_;
  const Clock& clock_;
  std::string host_;
  std::string id_prefix_;  // 64 random bits, hex
  uint64_t id_counter_ = 0;
  uint64_t errors_ = 0;
  absl::flat_hash_map<CountKey, uint64_t> counts_;
};

// 128 random bits as 32 hex characters (getrandom(2)); also used for session ids.
std::string RandomId();

}  // namespace interlock::audit
