// The audit chain: what makes the JSON-lines audit file tamper-evident, and its verifier.
// Every line carries `seq` and `prev_sha256` (events.proto AuditEvent), the hex SHA-256 of
// the previous line's exact bytes, '\n' included, across rotated files; checkpoint lines
// (AUDIT_KIND_AUDIT_CHECKPOINT) sign the chain head with the recording key.
//
//   std::vector<AuditFileBytes> files = ...;           // in order, SortAuditFiles
//   ChainReport r = VerifyAuditChain(files, public_key);
//   if (r.verdict != ChainReport::kValid) std::cerr << r.where << ": " << r.detail << "\n";
//
// What it proves and what it cannot: an edited, inserted, removed or reordered line, and a
// rotated file removed from the middle, break the chain at the first line after the change
// (reported there, or at the altered line itself when the seq run shows which one it is).
// Re-chaining everything after an edit breaks the next checkpoint's signature (the key is
// needed to forge one). Lines after the last checkpoint of the last file can be cut off
// without a trace here (so can whole files before the first one given): only a copy
// elsewhere (a remote sink) anchors the tail. A last line without its '\n' is reported
// as kIncomplete (a write cut short by a crash; interlockd never writes part of a line
// otherwise), never as valid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "interlock/v1/events.pb.h"
#include "userspace/record/signing_key.h"
#include "userspace/record/verifier.h"

namespace interlock::audit {

// 64 '0's: the prev_sha256 of seq 1, the first line ever written.
const std::string& GenesisHash();

// The exact bytes a checkpoint signature covers (events.proto AuditCheckpoint.signature).
std::string CheckpointMessage(uint64_t seq, absl::string_view prev_sha256, absl::string_view time,
                              absl::string_view reason);

// Rotated file names: "<live name>.<YYYYmmddTHHMMSSZ>.<seq of the file's last line>".
std::string RotatedName(absl::string_view live_name, absl::Time rotated_at, uint64_t last_seq);
struct RotatedSuffix {
  absl::Time rotated_at;
  uint64_t last_seq = 0;
};
// `file_name` without directory. nullopt when it is not `live_name` + a rotation suffix.
std::optional<RotatedSuffix> ParseRotatedName(absl::string_view live_name,
                                              absl::string_view file_name);
// Orders paths for verification: rotated files (by the seq in their name, whatever their
// directory or live name) first, then the others (live files) in the order given.
std::vector<std::string> SortAuditFiles(std::vector<std::string> paths);

struct AuditFileBytes {
  std::string name;  // for messages ("audit.jsonl.20261206T120000Z.42")
  std::string bytes;
};

struct ChainReport {
  enum Verdict { kValid, kIncomplete, kTampered };
  Verdict verdict = kValid;
  // The first broken line, "name:line" (1-based), empty when valid; and why.
  std::string where;
  std::string detail;
  uint64_t lines = 0;        // lines whose chain fields held
  uint64_t first_seq = 0;    // seq of the first line (1: the chain starts at genesis)
  uint64_t last_seq = 0;
  uint64_t checkpoints = 0;  // signatures verified
  uint64_t last_checkpoint_seq = 0;
  // Observations that are not tamper ("starts at seq 40: earlier files not given").
  std::vector<std::string> notes;
  // AUDIT_KIND_SESSION_END events that carry a recording summary, for CrossCheckRecording;
  // without those whose recording a later DAEMON "recording_deleted" event (retention)
  // says was deleted, which are counted in recordings_deleted.
  struct SessionRecording {
    std::string session_id;
    v1::RecordingSummary summary;
    std::string where;
  };
  std::vector<SessionRecording> recordings;
  uint64_t recordings_deleted = 0;
};

const char* ChainVerdictName(ChainReport::Verdict v);

// Pure: verifies `files` as one chain, in the order given, checkpoint signatures against
// `key`. Stops at the first problem.
ChainReport VerifyAuditChain(const std::vector<AuditFileBytes>& files,
                             const record::RecordingPublicKey& key);

// Compares a recording's verification with what its session-end audit event said. nullopt
// when they agree; otherwise why the recording is tampered: the session ended with a sealed
// recording of N records and head H, so a file that is not valid (cut short: it would
// otherwise pass for a crash), or holds another count or head, was changed after the fact.
// `report` null: the recording file is missing (tampered, sealed or not). An unsealed
// summary (the recorder failed during the session) is only checked for presence.
std::optional<std::string> CrossCheckRecording(const v1::RecordingSummary& summary,
                                               const record::VerifyReport* report);

}  // namespace interlock::audit
