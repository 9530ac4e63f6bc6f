#include "userspace/replay/asciicast.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/common/json_text.h"
#include "userspace/replay/ssh_replay.h"
#include "userspace/replay/timeline.h"

namespace interlock::replay {

namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
constexpr uint32_t kDefaultCols = 80;
constexpr uint32_t kDefaultRows = 24;

// An incremental UTF-8 decoder with errors replaced, like Python's
// codecs.getincrementaldecoder("utf-8")("replace"), which asciinema uses for a terminal's
// output: a character cut at the end of one chunk is completed by the next; each maximal
// subpart of an ill-formed sequence (Unicode 15 section 3.9, "U+FFFD Substitution of Maximal
// Subparts") becomes one U+FFFD.
class Utf8Decoder {
 public:
  // The valid UTF-8 of what was carried followed by `bytes`; an incomplete (so far valid)
  // character at the end is carried to the next call.
  std::string Decode(absl::string_view bytes) {
    std::string in = std::move(carry_);
    carry_.clear();
    in.append(bytes.data(), bytes.size());
    std::string out;
    out.reserve(in.size());
    size_t i = 0;
    while (i < in.size()) {
      const auto c = static_cast<unsigned char>(in[i]);
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
        ++i;
        continue;
      }
      // Continuation bytes needed, and the range of the first one (Unicode table 3-7).
      size_t need = 0;
      unsigned char lo = 0x80, hi = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
      } else if (c == 0xE0) {
        need = 2, lo = 0xA0;
      } else if (c == 0xED) {
        need = 2, hi = 0x9F;  // not the surrogates
      } else if (c >= 0xE1 && c <= 0xEF) {
        need = 2;
      } else if (c == 0xF0) {
        need = 3, lo = 0x90;
      } else if (c >= 0xF1 && c <= 0xF3) {
        need = 3;
      } else if (c == 0xF4) {
        need = 3, hi = 0x8F;  // not above U+10FFFF
      } else {
        out.append(kReplacement);  // a continuation byte, C0, C1, F5..FF
        ++i;
        continue;
      }
      size_t k = 1;  // bytes of the sequence that are valid so far
      while (k <= need && i + k < in.size()) {
        const auto b = static_cast<unsigned char>(in[i + k]);
        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) break;
        ++k;
      }
      if (k == need + 1) {
        out.append(in, i, k);
      } else if (i + k == in.size()) {
        carry_ = in.substr(i);  // cut by the end of the chunk
        break;
      } else {
        out.append(kReplacement);
      }
      i += k;
    }
    return out;
  }

  // What is left at the end: U+FFFD for an incomplete character, "" otherwise.
  std::string Finish() {
    if (carry_.empty()) return "";
    carry_.clear();
    return std::string(kReplacement);
  }

 private:
  std::string carry_;
};

// What a terminal shows for output of a command without a pty: its LF as CR LF (the local
// tty's onlcr), so that players do not draw a staircase.
std::string LfToCrLf(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out.push_back('\r');
    out.push_back(s[i]);
  }
  return out;
}

bool IsTerminal(const SshChannelRecords& ch) {
  return std::any_of(ch.records.begin(), ch.records.end(), [](const v1::Record* r) {
    return r->ssh().has_request() && (r->ssh().request().type() == "shell" || r->ssh().request().type() == "pty-req");
  });
}

absl::StatusOr<const SshChannelRecords*> PickChannel(const std::vector<SshChannelRecords>& channels,
                                                     const AsciicastOptions& options) {
  for (const SshChannelRecords& ch : channels) {
    if (options.channel.has_value() ? ch.channel == *options.channel : IsTerminal(ch)) return &ch;
  }
  std::vector<uint32_t> numbers;
  for (const SshChannelRecords& ch : channels) {
    if (std::find(numbers.begin(), numbers.end(), ch.channel) == numbers.end()) numbers.push_back(ch.channel);
  }
  const std::string have =
      numbers.empty() ? "the session has no channels" : absl::StrCat("channels: ", absl::StrJoin(numbers, ", "));
  if (options.channel.has_value()) {
    return absl::NotFoundError(absl::StrCat("asciicast: no channel ", *options.channel, " (", have, ")"));
  }
  return absl::NotFoundError(absl::StrCat("asciicast: no channel with a shell or pty (", have, ")"));
}

void AppendEvent(std::string& out, double seconds, absl::string_view code, absl::string_view data) {
  absl::StrAppendFormat(&out, "[%.6f, \"%s\", ", seconds, code);
  AppendJsonQuoted(data, &out);
  out.append("]\n");
}

}  // namespace

absl::StatusOr<std::string> ExportAsciicast(const std::vector<v1::Record>& records, const AsciicastOptions& options) {
  if (records.empty() || !records.front().has_open()) {
    return absl::FailedPreconditionError("asciicast: the recording has no session open record");
  }
  const v1::SessionOpen& open = records.front().open();
  if (open.protocol() != "ssh") {
    return absl::FailedPreconditionError(
        absl::StrCat("asciicast: session ", open.session_id(), " is a \"", open.protocol(), "\" session, not ssh"));
  }
  const std::vector<SshChannelRecords> channels = SplitSshChannels(records);
  auto picked = PickChannel(channels, options);
  if (!picked.ok()) return picked.status();
  const SshChannelRecords& ch = **picked;

  const v1::SshRequest* pty = nullptr;
  for (const v1::Record* r : ch.records) {
    if (r->ssh().has_request() && r->ssh().request().type() == "pty-req") {
      pty = &r->ssh().request();
      break;
    }
  }
  const int64_t start = records.front().time_unix_nanos();
  std::string out = absl::StrFormat(R"({"version": 2, "width": %d, "height": %d, "timestamp": %d)",
                                    pty != nullptr && pty->cols() > 0 ? pty->cols() : kDefaultCols,
                                    pty != nullptr && pty->rows() > 0 ? pty->rows() : kDefaultRows,
                                    absl::ToUnixSeconds(absl::FromUnixNanos(start)));
  if (pty != nullptr && !pty->term().empty()) {
    out.append(R"(, "env": {"TERM": )");
    AppendJsonQuoted(pty->term(), &out);
    out.append("}");
  }
  out.append(R"(, "title": )");
  AppendJsonQuoted(absl::StrCat(open.resource(), " ", open.session_id(), " channel ", ch.channel), &out);
  out.append("}\n");

  // One decoder per stream: a character is carried to the next event of its own stream.
  Utf8Decoder decoders[v1::SshStream_ARRAYSIZE];
  double last = 0;
  for (const v1::Record* r : ch.records) {
    const v1::SshEvent& e = r->ssh();
    last = std::max(last, static_cast<double>(r->time_unix_nanos() - start) / 1e9);
    if (e.has_request() && e.request().type() == "window-change") {
      AppendEvent(out, last, "r", absl::StrCat(e.request().cols(), "x", e.request().rows()));
      continue;
    }
    if (!e.has_data()) continue;
    const v1::SshStream stream = e.data().stream();
    if (stream != v1::SSH_STREAM_STDOUT && stream != v1::SSH_STREAM_STDERR && stream != v1::SSH_STREAM_INTERLOCK &&
        !(stream == v1::SSH_STREAM_STDIN && options.input)) {
      continue;
    }
    std::string text = decoders[stream].Decode(e.data().payload());
    if (text.empty()) continue;
    if (stream != v1::SSH_STREAM_STDIN && pty == nullptr) text = LfToCrLf(text);
    AppendEvent(out, last, stream == v1::SSH_STREAM_STDIN ? "i" : "o", text);
  }
  for (int s = 0; s < v1::SshStream_ARRAYSIZE; ++s) {
    const std::string rest = decoders[s].Finish();
    if (!rest.empty()) AppendEvent(out, last, s == v1::SSH_STREAM_STDIN ? "i" : "o", rest);
  }
  return out;
}

}  // namespace interlock::replay
