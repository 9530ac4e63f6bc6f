// Replay: turns a recording's records (reader.h) into a readable timeline, or back into the
// raw byte streams of each direction.
//
//   Recording rec = ReadRecording(bytes);
//   std::cout << FormatTimeline(rec.records, {.hexdump = true});
//   INTERLOCK_RETURN_IF_ERROR(WriteRawDirections(rec.records, "/tmp/session-42"));
//
// A timeline looks like:
//   session      3f9c...
//   workload     billing-agent
//   process      pid 4242  uid 1000 (alice)  exe /usr/bin/python3  comm python3
//   ...
//   started      2026-01-01T00:00:00Z
//
//        +0.000ms  agent -> upstream      37 bytes  "GET / HTTP/1.1\r\nHost: x\r\n..."
//       +12.345ms  upstream -> agent     120 bytes  "HTTP/1.1 200 OK\r\n..."
//       +13.000ms  event  agent_half_close  shutdown(SHUT_WR)
//       +13.500ms  upstream -> agent  [sealed original: 96 bytes]
//       +14.000ms  close  closed  37 bytes to upstream, 120 bytes to agent, duration 14.000ms
//       +14.000ms  seal   key 9a3c... signature 64 bytes (run verify to check it)
// Times are relative to the first record. Formatting never fails: whatever is missing or odd
// in the records is shown as such.
//
// Sealed originals (record.proto SealedData) are shown by size only, unless the auditor's key
// opened them (`interlock replay --unseal KEYFILE`):
//   INTERLOCK_ASSIGN_OR_RETURN(AuditorPrivateKey key, LoadAuditorPrivateKey(keyfile));
//   INTERLOCK_ASSIGN_OR_RETURN(UnsealedOriginals originals, UnsealOriginals(rec.records, key));
//   std::cout << FormatTimeline(rec.records, {.originals = &originals});
// and then each is shown like a data record, marked "original":
//       +13.500ms  upstream -> agent        96 bytes  original  "D\x00\x00\x00..."
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "interlock/v1/record.pb.h"
#include "userspace/record/sealed_box.h"

namespace interlock::record {

// The plaintexts of a recording's SealedData records, by record seq.
using UnsealedOriginals = std::map<uint64_t, std::string>;

// Opens every SealedData record of `records` with the auditor's key. Errors:
// FAILED_PRECONDITION when the session kept no originals (no open, or no sealed originals key);
// INVALID_ARGUMENT when the open names another auditor key than `key` ("sealed to auditor key
// X, this key is Y"); DATA_LOSS naming the first record that does not authenticate (altered,
// or sealed to another key). Pure: no I/O.
absl::StatusOr<UnsealedOriginals> UnsealOriginals(const std::vector<v1::Record>& records,
                                                  const AuditorPrivateKey& key);

struct TimelineOptions {
  // Cap, in output characters, of the quoted preview of each data record.
  size_t preview_chars = 64;
  // Also print every payload as hexdump lines ("  0000  47 45 54 ...  |GET ...|").
  bool hexdump = false;
  // With hexdump: at most this many bytes per record (0 = all).
  size_t hexdump_max_bytes = 0;
  // Opened sealed originals (UnsealOriginals), borrowed; null: shown by size only.
  const UnsealedOriginals* originals = nullptr;
};

std::string FormatTimeline(const std::vector<v1::Record>& records, const TimelineOptions& options);

// The building blocks of FormatTimeline, for protocol-aware timelines (userspace/replay/):
// FormatTimeline(records) == FormatTimelineHeader(records) + FormatTimelineRecord(r) for every
// record after the open + FormatTimelineTrailer(records).

// "(no records)\n" for none; otherwise the header lines of records[0]'s SessionOpen (or
// "(first record is not a session open)") and a blank line.
std::string FormatTimelineHeader(const std::vector<v1::Record>& records);
// The line (and with options.hexdump the hexdump lines) of one record (for a SealedData record
// with its plaintext in options.originals, the plaintext's); `start_nanos` is the
// time of the first record, from which "+12.345ms" is counted.
std::string FormatTimelineRecord(const v1::Record& record, int64_t start_nanos,
                                 const TimelineOptions& options);
// "(no seal: recording incomplete)\n" unless the last record is a seal; "" for no records.
std::string FormatTimelineTrailer(const std::vector<v1::Record>& records);
// "+12.345ms": the time column of a timeline line.
std::string FormatRelativeTime(int64_t nanos_since_start);
// Hexdump lines of `bytes` (at most `max_bytes`, 0 = all), indented as in a timeline.
std::string Hexdump(absl::string_view bytes, size_t max_bytes);

// The printable preview of `bytes`: C-style escapes (\r \n \t \\ \" \xNN) for anything that
// is not printable ASCII, cut to at most `max_chars` characters (never inside an escape) with
// "..." appended when cut. No surrounding quotes.
std::string EscapedPreview(absl::string_view bytes, size_t max_chars);

// Writes <dir>/to_upstream.bin and <dir>/to_agent.bin (mode 0600; recorded bytes are as
// sensitive as the session), each the concatenation of that direction's payloads in order.
// Creates `dir` (0700) if needed.
absl::Status WriteRawDirections(const std::vector<v1::Record>& records, const std::string& dir);

}  // namespace interlock::record
