// The replay entry point for every protocol: a recording's records in, its timeline out,
// decoded by the protocol its SessionOpen names when a decoder for it is registered here
// (PostgreSQL: pg_replay.h, HTTP: http_replay.h, SSH: ssh_replay.h), as raw record lines
// otherwise (record/replay.h FormatTimeline).
// The CLI calls only this; a protocol plug-in adds its decoder to the table in timeline.cc.
//
//   std::fputs(replay::FormatSessionTimeline(rec.records, {.originals = &opened}).c_str(), stdout);
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "interlock/v1/record.pb.h"
#include "userspace/record/replay.h"

namespace interlock::replay {

// The protocol records[0] names ("" without a SessionOpen).
absl::string_view RecordingProtocol(const std::vector<v1::Record>& records);

// Whether a decoder is registered for `protocol`.
bool HasDecoder(absl::string_view protocol);

// The decoded timeline of `records` when their protocol has a decoder and `raw_view` is
// false; FormatTimeline's raw record lines otherwise. Never fails.
std::string FormatSessionTimeline(const std::vector<v1::Record>& records, const record::TimelineOptions& options,
                                  bool raw_view = false);

}  // namespace interlock::replay
