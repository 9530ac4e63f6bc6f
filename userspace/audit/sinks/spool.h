// A bounded spool on disk for one audit sink: events the destination has not acknowledged
// yet, kept across outages and restarts.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto spool, Spool::Open({.dir = state + "/audit/spool/siem",
//                                                       .max_bytes = 256 << 20}));
//   spool->Append({record});                       // ResourceExhausted: full, not written
//   auto seg = spool->ReadOldest();                // the oldest segment's records
//   ... deliver seg->records ...
//   spool->Remove(seg->seq);                       // only after every record was delivered
//
// Layout: the directory (0700) holds segment files "<20-digit sequence>.spool" (0600),
// appended with O_APPEND, one write(2) per Append. A record is
//   u32 little-endian payload length | u32 little-endian CRC-32 of the payload | payload
// and the payload is the caller's (a serialized v1::AuditEvent). A segment is read whole
// (at most segment_bytes plus one record) and deleted only after the caller delivered all
// of it, so a crash in between resends it: delivery is at least once.
//
// Bound: the sum of the segment file sizes never passes max_bytes; an Append that would
// is refused whole (RESOURCE_EXHAUSTED) and the caller counts it as dropped — the spool
// keeps the oldest events and drops the newest.
//
// Corruption (a torn write after a crash, a flipped bit, a foreign file): reading stops
// at the first record whose length is above kMaxRecordBytes, whose CRC does not match or
// that is cut short; the records before it are returned, the bytes from it on are reported
// in Segment::corrupt_bytes (the caller counts and logs them), and the segment is removed
// as usual. Files that are not named like segments are ignored.
//
// Thread-safe: one mutex; every call is short (one write, or one segment read).
// Durability: appends reach the page cache (like the local audit file); a crash of
// interlockd loses nothing, a power loss may lose the last seconds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/common/unique_fd.h"

namespace interlock::audit::sinks {

// Largest record payload a spool accepts or reads, bytes.
inline constexpr uint32_t kMaxRecordBytes = 16 << 20;
inline constexpr size_t kRecordHeaderBytes = 8;

struct SpoolOptions {
  std::string dir;
  uint64_t max_bytes = uint64_t{256} << 20;
  // A segment is closed to new appends once it reaches this size.
  uint64_t segment_bytes = 1 << 20;
};

class Spool {
 public:
  struct Segment {
    uint64_t seq = 0;
    std::vector<std::string> records;
    uint64_t corrupt_bytes = 0;  // unreadable tail, see above
  };

  // Creates the directory (0700) when missing and takes stock of the segments an earlier
  // run left (their records are counted by reading them once).
  static absl::StatusOr<std::unique_ptr<Spool>> Open(SpoolOptions options);

  // Appends the records in order, in one write. RESOURCE_EXHAUSTED when they would take
  // the spool past max_bytes (nothing is written); INVALID_ARGUMENT for a record above
  // kMaxRecordBytes; an I/O error otherwise (nothing or a torn record is on disk; a torn
  // record is skipped as corrupt when read).
  absl::Status Append(const std::vector<std::string>& records);

  // The oldest segment's records; nullopt when the spool is empty. The segment being
  // appended to is closed first when it is the only one, so the next Append starts a new
  // one. Reading the same segment again (after a failed delivery) returns the same records.
  absl::StatusOr<std::optional<Segment>> ReadOldest();
  // Deletes segment `seq` (its records were delivered, or are given up).
  absl::Status Remove(uint64_t seq);

  uint64_t bytes() const;
  uint64_t events() const;
  const std::string& dir() const { return options_.dir; }

 private:
  struct SegmentInfo {
    uint64_t bytes = 0;
    uint64_t events = 0;
  };
  explicit Spool(SpoolOptions options) : options_(std::move(options)) {}
  std::string PathOf(uint64_t seq) const;
  absl::StatusOr<Segment> ReadSegment(uint64_t seq) const;

  const SpoolOptions options_;
  mutable std::mutex mu_;
  std::map<uint64_t, SegmentInfo> segments_;  // by sequence, oldest first
  uint64_t total_bytes_ = 0;
  uint64_t total_events_ = 0;
  UniqueFd active_fd_;       // open for append: segment active_seq_
  uint64_t active_seq_ = 0;  // 0: none open
  uint64_t next_seq_ = 1;
};

// Encodes one record (header + payload), and decodes the records at the front of `data`:
// stops at the first bad one; `*bad_bytes` gets the length of the rest. Exposed for tests.
std::string EncodeSpoolRecord(absl::string_view payload);
std::vector<std::string> DecodeSpoolRecords(absl::string_view data, uint64_t* bad_bytes);

}  // namespace interlock::audit::sinks
