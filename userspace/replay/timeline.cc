#include "userspace/replay/timeline.h"

#include "userspace/replay/http_replay.h"
#include "userspace/replay/pg_replay.h"
#include "userspace/replay/ssh_replay.h"

namespace interlock::replay {

namespace {

using DecodeFn = std::string (*)(const std::vector<v1::Record>&, const record::TimelineOptions&);

struct Decoder {
  absl::string_view protocol;  // SessionOpen.protocol
  DecodeFn decode;
};

std::string DecodePg(const std::vector<v1::Record>& records, const record::TimelineOptions& options) {
  return FormatPgTimeline(records, {.raw = options});
}

std::string DecodeHttp(const std::vector<v1::Record>& records, const record::TimelineOptions& options) {
  return FormatHttpTimeline(records, {.raw = options});
}

std::string DecodeSsh(const std::vector<v1::Record>& records, const record::TimelineOptions& options) {
  return FormatSshTimeline(records, {.raw = options});
}

// One row per protocol with a decoded timeline.
constexpr Decoder kDecoders[] = {
    {"postgres", &DecodePg},
    {"http", &DecodeHttp},
    {"ssh", &DecodeSsh},
};

const Decoder* DecoderFor(absl::string_view protocol) {
  for (const Decoder& d : kDecoders) {
    if (d.protocol == protocol) return &d;
  }
  return nullptr;
}

}  // namespace

absl::string_view RecordingProtocol(const std::vector<v1::Record>& records) {
  if (records.empty() || !records.front().has_open()) return "";
  return records.front().open().protocol();
}

bool HasDecoder(absl::string_view protocol) { return DecoderFor(protocol) != nullptr; }

std::string FormatSessionTimeline(const std::vector<v1::Record>& records, const record::TimelineOptions& options,
                                  bool raw_view) {
  const Decoder* d = raw_view ? nullptr : DecoderFor(RecordingProtocol(records));
  return d != nullptr ? d->decode(records, options) : record::FormatTimeline(records, options);
}

}  // namespace interlock::replay
