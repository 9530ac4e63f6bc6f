// Reads the records of a recording file for replay, without judging it: no hash, seq or
// signature checks (that is verifier.h's job). Reading stops at the first frame that is
// truncated, has a bad length or does not parse, and says why.
//
//   Recording rec = ReadRecording(file_bytes);
//   if (!rec.stop.ok()) std::cerr << "partial: " << rec.stop.message() << "\n";
//   std::cout << FormatTimeline(rec.records, {});
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/record.pb.h"

namespace interlock::record {

struct Recording {
  // Every record before the first bad frame, in file order.
  std::vector<v1::Record> records;
  // OK when the bytes ended exactly after the last frame. Otherwise DATA_LOSS naming the frame
  // and offset where reading stopped ("record: frame 12 at offset 4096: truncated ...").
  absl::Status stop;
};

Recording ReadRecording(absl::string_view file_bytes);

// Reads `path` and parses it. The status is for I/O errors only.
absl::StatusOr<Recording> ReadRecordingFile(const std::string& path);

}  // namespace interlock::record
