// Recorder: writes one session's recording file (schemas/interlock/v1/record.proto): record 0
// is the SessionOpen, then Data and Event records as the session runs, then SessionClose and
// the Ed25519 Seal over the chain head.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::unique_ptr<Recorder> rec,
//                              Recorder::Create(path, open, key, clock));
//   INTERLOCK_RETURN_IF_ERROR(rec->AppendData(v1::DIRECTION_TO_UPSTREAM, bytes));
//   // With RecorderOptions.auditor_public_key set, the bytes masking replaced:
//   INTERLOCK_RETURN_IF_ERROR(rec->AppendData(v1::DIRECTION_TO_AGENT, masked));
//   INTERLOCK_RETURN_IF_ERROR(rec->AppendSealed(v1::DIRECTION_TO_AGENT, original));
//   ...                                   // once per event-loop iteration:
//   INTERLOCK_RETURN_IF_ERROR(rec->Flush());
//   ...
//   v1::SessionClose close;
//   close.set_outcome("closed");
//   INTERLOCK_RETURN_IF_ERROR(rec->Close(close));
//
// Records are buffered in memory and written when the buffer passes kFlushThresholdBytes, on
// Flush() and on Close(). Flush() gives the buffer's memory back, so that an idle session
// holds none. With RecorderOptions.files the file's descriptor lives in that shared
// FileCache and is open only while the session is among the recently written ones; the
// chain state stays here, and an evicted file is opened again (append-only) on the next
// write. A failed reopen fails the recorder like a write error. The first write error makes the recorder fail for good: every later
// call returns that status, and the caller decides whether to end the session. Destroying a
// Recorder without Close() flushes what it holds but writes no seal, so the file verifies as
// incomplete — exactly what a crash leaves behind.
//
// Not thread-safe: one recorder belongs to one session on one event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/record.pb.h"
#include "userspace/common/clock.h"
#include "userspace/common/unique_fd.h"
#include "userspace/record/file_cache.h"
#include "userspace/record/sealed_box.h"
#include "userspace/record/signing_key.h"
#include "userspace/record/spare_files.h"

namespace interlock::record {

struct RecorderOptions {
  // Raw 32-byte X25519 public key of the auditor (LoadAuditorPublicKey): keep the original
  // bytes that masking replaced, sealed to it (AppendSealed; record.proto SealedData). Empty:
  // originals are not kept and AppendSealed fails.
  std::string auditor_public_key;
  // Where the file's descriptor is kept (borrowed; outlives the recorder). Null: the
  // recorder keeps its own descriptor open until Close().
  FileCache* files = nullptr;
  // Files made ahead of time (borrowed): Create links one at the path when one is ready,
  // and creates the file itself when none is. Null: always creates it.
  SpareFiles* spares = nullptr;
};

class Recorder {
 public:
  // The buffer is written out once it holds more than this.
  static constexpr size_t kFlushThresholdBytes = 64 * 1024;
  // Event kind/detail and close outcome/detail are cut to this many bytes so that every
  // record stays far below kMaxRecordBytes.
  static constexpr size_t kMaxTextBytes = 64 * 1024;

  // Creates `path` (O_CREAT|O_EXCL|O_APPEND, mode 0600; or links a spare file there, see
  // RecorderOptions.spares) and writes record 0: `open` with
  // key_fingerprint set to `key`'s. `open.session_id` must be non-empty. `key` and `clock`
  // are borrowed and must outlive the recorder. With options.auditor_public_key, the open
  // also gets sealed_originals_key (a fresh ephemeral key per session) and
  // auditor_key_fingerprint; without, both are cleared. Errors: ALREADY_EXISTS when the file
  // exists, INVALID_ARGUMENT for an empty session id, an oversized open or a bad auditor key,
  // errno codes for I/O.
  static absl::StatusOr<std::unique_ptr<Recorder>> Create(const std::string& path,
                                                          v1::SessionOpen open,
                                                          const RecordingKey& key,
                                                          const Clock& clock,
                                                          const RecorderOptions& options = {});
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Records bytes relayed in `direction`, split into records of at most kMaxPayloadBytes.
  // Empty `bytes` records nothing. INVALID_ARGUMENT for DIRECTION_UNSPECIFIED.
  absl::Status AppendData(v1::Direction direction, absl::string_view bytes);
  // Records the original bytes that masking replaced in `direction` (whole protocol messages
  // as the resource sent them), encrypted to the auditor key, in SealedData records of at most
  // kMaxPayloadBytes of plaintext each. Call it next to the AppendData of the masked bytes.
  // Empty `bytes` records nothing. FAILED_PRECONDITION when the recorder was created without
  // an auditor key; INVALID_ARGUMENT for DIRECTION_UNSPECIFIED.
  absl::Status AppendSealed(v1::Direction direction, absl::string_view bytes);
  // Records something besides bytes ("agent_half_close", "upstream_error", ...).
  absl::Status AppendEvent(absl::string_view kind, absl::string_view detail);
  // Records one SSH channel event (record.proto SshEvent). SshData payloads longer than
  // kMaxPayloadBytes are split over several records; stdin counts toward
  // bytes_to_upstream, stdout/stderr/interlock toward bytes_to_agent.
  absl::Status AppendSsh(const v1::SshEvent& event);
  // Writes the buffered records to the file.
  absl::Status Flush();
  // Called whenever a record lands in an empty buffer: the owner arranges a Flush() soon
  // (the engine writes only the sessions that asked, not every session, each batch).
  void set_on_buffered(std::function<void()> on_buffered) { on_buffered_ = std::move(on_buffered); }
  // Writes `close` (bytes_to_upstream/bytes_to_agent are set from this recorder's counters,
  // which are authoritative for the file), then the Seal, flushes and closes the file. Later
  // calls return FAILED_PRECONDITION. On error the file is closed anyway, unsealed.
  absl::Status Close(v1::SessionClose close);

  // OK, or the sticky error that stopped this recorder.
  const absl::Status& status() const { return status_; }
  bool closed() const { return closed_; }
  const std::string& path() const { return path_; }
  const std::string& session_id() const { return session_id_; }
  // Payload bytes recorded per direction, and records written or buffered (seal included).
  uint64_t bytes_to_upstream() const { return bytes_to_upstream_; }
  uint64_t bytes_to_agent() const { return bytes_to_agent_; }
  // Plaintext bytes sealed by AppendSealed, both directions.
  uint64_t sealed_bytes() const { return sealed_bytes_; }
  // True when created with an auditor key (AppendSealed works).
  bool keeps_originals() const { return sealer_ != nullptr; }
  uint64_t records() const { return next_seq_; }
  // SHA-256 (raw 32 bytes) of the last record written or buffered (the seal once closed):
  // the chain head that the session-end audit event carries (RecordingSummary).
  const std::string& head_hash() const { return prev_hash_; }
  // Bytes waiting in the user-space buffer.
  size_t buffered_bytes() const { return buffer_.size(); }

 private:
  Recorder(std::string path, std::string session_id, const RecordingKey& key, const Clock& clock);
  // Fills seq/prev_hash/time, frames and buffers `record`; advances the chain.
  absl::Status Append(v1::Record& record);
  // After a record was encoded at the end of buffer_ from record_start (the buffer was empty
  // before its frame: was_empty): chain and count it.
  absl::Status Appended(size_t record_start, bool was_empty);
  absl::Status CheckWritable() const;
  absl::Status WriteBuffer();

  const std::string path_;
  std::unique_ptr<FileCache> own_files_;  // without RecorderOptions.files: a cache of one
  FileCache::Slot file_;                  // after own_files_: leaves it before it goes
  const std::string session_id_;
  const RecordingKey& key_;
  const Clock& clock_;
  std::string buffer_;
  uint64_t next_seq_ = 0;
  std::string prev_hash_;
  uint64_t bytes_to_upstream_ = 0;
  uint64_t bytes_to_agent_ = 0;
  uint64_t sealed_bytes_ = 0;
  std::unique_ptr<SealingStream> sealer_;  // null: originals are not kept
  std::function<void()> on_buffered_;
  absl::Status status_;
  bool closed_ = false;
};

}  // namespace interlock::record
