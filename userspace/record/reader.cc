#include "userspace/record/reader.h"

#include "absl/strings/str_format.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/record/format.h"

namespace interlock::record {

Recording ReadRecording(absl::string_view file_bytes) {
  Recording out;
  size_t offset = 0;
  while (offset < file_bytes.size()) {
    const size_t frame = out.records.size();
    const FrameView f = DecodeFrame(file_bytes.substr(offset));
    if (f.result == FrameView::Result::kBadLength) {
      out.stop = absl::DataLossError(
          absl::StrFormat("record: frame %d at offset %d: length %d outside 1..%d", frame, offset,
                          f.length, kMaxRecordBytes));
      return out;
    }
    if (f.result == FrameView::Result::kTruncated) {
      out.stop = absl::DataLossError(
          absl::StrFormat("record: frame %d at offset %d: truncated (%d bytes left in file)", frame,
                          offset, file_bytes.size() - offset));
      return out;
    }
    v1::Record record;
    if (!record.ParseFromArray(f.record.data(), static_cast<int>(f.record.size()))) {
      out.stop = absl::DataLossError(absl::StrFormat(
          "record: frame %d at offset %d: %d bytes do not parse", frame, offset, f.length));
      return out;
    }
    out.records.push_back(std::move(record));
    offset += f.frame_bytes;
  }
  return out;
}

absl::StatusOr<Recording> ReadRecordingFile(const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return Annotate(bytes.status(), "record");
  return ReadRecording(*bytes);
}

}  // namespace interlock::record
