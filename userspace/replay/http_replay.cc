#include "userspace/replay/http_replay.h"

#include <deque>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/codec/http/chunked.h"
#include "userspace/codec/http/head.h"
#include "userspace/common/printable.h"

namespace interlock::replay {

namespace {

namespace chttp = codec::http;
constexpr int kIndent = 26;

bool Secret(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "authorization") || absl::EqualsIgnoreCase(name, "proxy-authorization") ||
         absl::EqualsIgnoreCase(name, "cookie") || absl::EqualsIgnoreCase(name, "set-cookie");
}

class HttpTimeline {
 public:
  HttpTimeline(const std::vector<v1::Record>& records, const HttpTimelineOptions& options)
      : options_(options), start_(records.empty() ? 0 : records.front().time_unix_nanos()) {}

  void Add(const v1::Record& r) {
    if (r.has_data() && (r.data().direction() == v1::DIRECTION_TO_UPSTREAM ||
                         r.data().direction() == v1::DIRECTION_TO_AGENT)) {
      Stream& s = streams_[r.data().direction() == v1::DIRECTION_TO_UPSTREAM ? kAgent : kServer];
      if (!s.lost) {
        s.buf.append(r.data().payload());
        Decode(r.data().direction() == v1::DIRECTION_TO_UPSTREAM ? kAgent : kServer, r.time_unix_nanos());
        return;
      }
    }
    out_.append(record::FormatTimelineRecord(r, start_, options_.raw));
  }

  std::string Take() { return std::move(out_); }

 private:
  enum Side { kAgent = 0, kServer = 1 };
  struct Stream {
    std::string buf;
    bool lost = false;
    // The message whose body is being read.
    bool in_body = false;
    chttp::BodyFraming body;
    uint64_t left = 0;
    std::optional<chttp::ChunkedDecoder> chunks;
    std::string preview;
    uint64_t body_bytes = 0;
  };

  void Line(int64_t time, Side side, absl::string_view text) {
    absl::StrAppendFormat(&out_, "%14s  %-6s  %s\n", record::FormatRelativeTime(time - start_),
                          side == kAgent ? "agent" : "server", text);
  }
  void More(absl::string_view text) { absl::StrAppendFormat(&out_, "%*s%s\n", kIndent, "", text); }
  static std::string Text(absl::string_view s) { return common::Printable(s, 0).text; }

  void Fields(const std::vector<chttp::HeaderField>& fields) {
    for (const chttp::HeaderField& f : fields) {
      More(absl::StrCat(Text(absl::AsciiStrToLower(f.name)), ": ", Secret(f.name) ? "(not shown)" : Text(f.value)));
    }
  }

  void Lose(Side side, int64_t time, absl::string_view why) {
    Stream& s = streams_[side];
    Line(time, side, absl::StrCat("not HTTP from here on (", why, "): \"",
                                  record::EscapedPreview(s.buf, options_.raw.preview_chars), "\""));
    s.lost = true;
    s.buf.clear();
  }

  void EndBody(Side side) {
    Stream& s = streams_[side];
    if (s.body_bytes > 0) {
      More(absl::StrCat("body (", s.body_bytes, " bytes): ",
                        record::EscapedPreview(s.preview, options_.body_preview_chars)));
    }
    s.in_body = false;
    s.chunks.reset();
    s.preview.clear();
    s.body_bytes = 0;
  }

  void TakeBody(Stream& s, absl::string_view data) {
    s.body_bytes += data.size();
    if (s.preview.size() < options_.body_preview_chars * 4) {
      absl::string_view part = data.substr(0, options_.body_preview_chars * 4 - s.preview.size());
      s.preview.append(part.data(), part.size());
    }
  }

  // Consumes body bytes; true when the body ended.
  bool ReadBody(Side side, size_t* pos, int64_t time) {
    Stream& s = streams_[side];
    absl::string_view rest = absl::string_view(s.buf).substr(*pos);
    switch (s.body.kind) {
      case chttp::BodyKind::kLength: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(s.left, rest.size()));
        TakeBody(s, rest.substr(0, n));
        *pos += n;
        s.left -= n;
        return s.left == 0;
      }
      case chttp::BodyKind::kChunked:
        while (!s.chunks->done()) {
          auto piece = s.chunks->Decode(absl::string_view(s.buf).substr(*pos));
          if (!piece.ok()) {
            s.buf.erase(0, *pos);
            *pos = 0;
            Lose(side, time, piece.status().message());
            return false;
          }
          if (piece->consumed == 0) return false;
          TakeBody(s, piece->data);
          *pos += piece->consumed;
        }
        return true;
      default:  // until close: everything left
        TakeBody(s, rest);
        *pos += rest.size();
        return false;
    }
  }

  void Decode(Side side, int64_t time) {
    Stream& s = streams_[side];
    size_t pos = 0;
    while (!s.lost && pos < s.buf.size()) {
      if (s.in_body) {
        if (!ReadBody(side, &pos, time)) break;
        EndBody(side);
        continue;
      }
      absl::string_view rest = absl::string_view(s.buf).substr(pos);
      chttp::BodyFraming body;
      if (side == kAgent) {
        auto req = chttp::PeekRequest(rest);
        if (!req.ok()) {
          s.buf.erase(0, pos);
          Lose(side, time, req.status().message());
          return;
        }
        if (!req->has_value()) break;
        Line(time, side, absl::StrCat(Text((*req)->method), " ", Text((*req)->target), " ",
                                      (*req)->version == chttp::Version::kHttp10 ? "HTTP/1.0" : "HTTP/1.1"));
        Fields((*req)->fields);
        methods_.push_back(std::string((*req)->method));
        body = (*req)->framing.body;
        pos += (*req)->head_bytes;
      } else {
        const std::string method = methods_.empty() ? "GET" : methods_.front();
        auto resp = chttp::PeekResponse(rest, method);
        if (!resp.ok()) {
          s.buf.erase(0, pos);
          Lose(side, time, resp.status().message());
          return;
        }
        if (!resp->has_value()) break;
        auto type = chttp::FindField((*resp)->fields, "content-type");
        Line(time, side, absl::StrCat((*resp)->status, " ", Text((*resp)->reason),
                                      type.has_value() ? absl::StrCat("  ", Text(*type)) : ""));
        Fields((*resp)->fields);
        if (!(*resp)->framing.interim && !methods_.empty()) methods_.pop_front();
        body = (*resp)->framing.body;
        pos += (*resp)->head_bytes;
      }
      if (body.kind == chttp::BodyKind::kNone || body.kind == chttp::BodyKind::kTunnel ||
          (body.kind == chttp::BodyKind::kLength && body.length == 0)) {
        continue;
      }
      s.in_body = true;
      s.body = body;
      s.left = body.length;
      if (body.kind == chttp::BodyKind::kChunked) s.chunks.emplace();
    }
    if (!s.lost) s.buf.erase(0, pos);
    if (s.in_body && s.body.kind == chttp::BodyKind::kUntilClose) return;
  }

  const HttpTimelineOptions& options_;
  int64_t start_;
  Stream streams_[2];
  std::deque<std::string> methods_;  // requests not answered yet, for response framing
  std::string out_;
};

}  // namespace

std::string FormatHttpTimeline(const std::vector<v1::Record>& records, const HttpTimelineOptions& options) {
  std::string out = record::FormatTimelineHeader(records);
  if (records.empty()) return out;
  HttpTimeline t(records, options);
  for (size_t i = 1; i < records.size(); ++i) t.Add(records[i]);
  out += t.Take();
  out += record::FormatTimelineTrailer(records);
  return out;
}

}  // namespace interlock::replay
