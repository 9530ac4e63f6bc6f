// Verifies a session recording against the recording public key: every frame, the seq run,
// the SHA-256 hash chain and the Ed25519 seal (schemas/interlock/v1/record.proto).
//
//   INTERLOCK_ASSIGN_OR_RETURN(RecordingPublicKey pub, RecordingKey::LoadPublic(pub_path));
//   INTERLOCK_ASSIGN_OR_RETURN(VerifyReport report, VerifyFile(recording_path, pub));
//   if (report.verdict != VerifyReport::kValid) std::cerr << report.detail << "\n";
//
// Verdicts:
//   kValid       every frame parses, seq runs 0..n, every prev_hash matches, record 0 is the
//                open, a close is immediately followed by the seal, the seal is the last
//                record, it is signed by `key`, and its key_fingerprint (and the open's) is
//                `key`'s fingerprint.
//   kIncomplete  the chain holds as far as the file goes and then the file just ends: no
//                seal, or a trailing partial frame that is consistent with a torn write.
//                Never a reason to trust the file; it says how far it is intact.
//   kTampered    anything else: bad length, garbage frame, seq or hash mismatch, records in an
//                impossible order, bytes after the seal, bad signature, wrong key.
// SealedData records (sealed originals) are chained and sealed like any other record; the
// verifier cannot read them (that takes the auditor's key) and checks only that the open
// announced a sealed originals key.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/record/signing_key.h"

namespace interlock::record {

struct VerifyReport {
  enum Verdict { kValid, kIncomplete, kTampered };
  Verdict verdict = kIncomplete;
  // Records whose frame parsed and whose seq and prev_hash matched the chain (the seal counts
  // only once its signature verified). A change inside record i is only visible from record
  // i+1, so for kTampered the last counted record may be the altered one.
  uint64_t records_ok = 0;
  // seq of the last counted record; meaningful only when records_ok > 0.
  uint64_t last_good_seq = 0;
  // SHA-256 (raw 32 bytes) of the last counted record: the chain head as far as it holds
  // (Recorder::head_hash() of the writer; audit RecordingSummary.head_sha256 in hex).
  std::string head_hash;
  // From the open record, when it parsed.
  std::string session_id;
  // Human-readable reason, e.g. "record 5: prev_hash does not match record 4".
  std::string detail;
};

const char* VerdictName(VerifyReport::Verdict verdict);

// Pure: looks only at `file_bytes` and `key`.
VerifyReport VerifyRecording(absl::string_view file_bytes, const RecordingPublicKey& key);

// Reads `path` and verifies it. The status is for I/O errors only; the verdict is in the
// report.
absl::StatusOr<VerifyReport> VerifyFile(const std::string& path, const RecordingPublicKey& key);

}  // namespace interlock::record
