// Stream drivers and property checks over interlock_codec_http, shared by the unit tests and
// the libFuzzer target (tests/fuzz/http/http_codec_fuzz.cc), so both hold the codec to the same
// contract. No gtest here: a violated property prints what broke and aborts.
//
//   std::vector<std::string> t = ReadRequests(stream, {3, 1, 100});  // reads of these sizes
//   std::vector<std::string> u = ReadRequests(stream, {stream.size()});
//   // t == u: a transcript does not depend on how the stream was split.
//
// A transcript lists what a proxy would see: each head (start line, fields, framing), the
// body bytes (adjacent pieces merged), trailers, the end of each body, the first error
// ("error: http: request: bare LF in line") and, at the end, how many bytes were left pending.
// Every head parsed is also checked to serialise (serialize.h) into bytes that parse back to
// the same head; every request-target to normalise idempotently.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "userspace/codec/http/chunked.h"
#include "userspace/codec/http/head.h"
#include "userspace/codec/http/serialize.h"
#include "userspace/codec/http/target.h"

namespace interlock::codec::http::testing {

[[noreturn]] inline void PropertyFailed(absl::string_view what, absl::string_view bytes) {
  std::fprintf(stderr, "http codec property failed: %.*s (%zu input bytes)\n",
               static_cast<int>(what.size()), what.data(), bytes.size());
  std::abort();
}

inline std::string Describe(const BodyFraming& b) {
  switch (b.kind) {
    case BodyKind::kNone:
      return "none";
    case BodyKind::kLength:
      return absl::StrCat("length ", b.length);
    case BodyKind::kChunked:
      return "chunked";
    case BodyKind::kUntilClose:
      return "until-close";
    case BodyKind::kTunnel:
      return "tunnel";
  }
  return "?";
}

inline void AppendFields(const std::vector<HeaderField>& fields, std::string& out) {
  for (const HeaderField& f : fields) absl::StrAppend(&out, "\n  ", f.name, ": ", f.value);
}

inline std::string Describe(const Request& r) {
  std::string out =
      absl::StrCat("request ", r.method, " ", r.target, " ", VersionName(r.version),
                   " head_bytes=", r.head_bytes, " body=", Describe(r.framing.body),
                   " host=", r.framing.host, " continue=", r.framing.expect_continue,
                   " persistent=", r.framing.persistent, " upgrade=", r.framing.upgrade);
  AppendFields(r.fields, out);
  return out;
}

inline std::string Describe(const Response& r) {
  std::string out =
      absl::StrCat("response ", VersionName(r.version), " ", r.status, " ", r.reason,
                   " head_bytes=", r.head_bytes, " body=", Describe(r.framing.body),
                   " interim=", r.framing.interim, " persistent=", r.framing.persistent);
  AppendFields(r.fields, out);
  return out;
}

inline void CheckError(const absl::Status& status, absl::string_view prefix,
                       absl::string_view bytes) {
  const absl::StatusCode code = status.code();
  if (code != absl::StatusCode::kInvalidArgument && code != absl::StatusCode::kResourceExhausted &&
      code != absl::StatusCode::kUnimplemented) {
    PropertyFailed(absl::StrCat("unexpected code: ", status.ToString()), bytes);
  }
  if (!absl::StartsWith(status.message(), prefix)) {
    PropertyFailed(absl::StrCat("error lacks context: ", status.ToString()), bytes);
  }
}

// serialise(parse(head)) parses back to the same head; the target normalises idempotently.
inline void CheckRequestProperties(const Request& r, absl::string_view bytes) {
  absl::StatusOr<std::string> head = SerializeRequestHead(r.method, r.target, r.version, r.fields);
  if (!head.ok()) PropertyFailed(absl::StrCat("serialise: ", head.status().ToString()), bytes);
  absl::StatusOr<std::optional<Request>> again = PeekRequest(*head);
  if (!again.ok() || !again->has_value()) PropertyFailed("serialised head does not parse", bytes);
  // The serialised head may be shorter or longer (OWS is normalised to one SP).
  if ((*again)->head_bytes != head->size()) PropertyFailed("head_bytes of serialised head", bytes);
  (*again)->head_bytes = r.head_bytes;
  if (Describe(**again) != Describe(r)) PropertyFailed("serialised head parses differently", bytes);
  absl::StatusOr<Target> target = ParseTarget(r.target, r.method);
  if (!target.ok()) return CheckError(target.status(), "http: target: ", bytes);
  if (target->form == TargetForm::kOrigin || target->form == TargetForm::kAbsolute) {
    absl::StatusOr<std::string> path = NormalizePath(target->path);
    if (path.ok()) {
      absl::StatusOr<std::string> twice = NormalizePath(*path);
      if (!twice.ok() || *twice != *path) PropertyFailed("NormalizePath is not idempotent", bytes);
    } else {
      CheckError(path.status(), "http: target: ", bytes);
    }
    if (target->query.has_value()) {
      absl::StatusOr<std::vector<QueryParam>> q = ParseQuery(*target->query);
      if (!q.ok()) CheckError(q.status(), "http: target: ", bytes);
    }
  }
  const std::string elided = ElideQueryParams(r.target);
  if (r.target.find('?') == absl::string_view::npos && elided != r.target) {
    PropertyFailed("ElideQueryParams changed a target without query", bytes);
  }
}

inline void CheckResponseProperties(const Response& r, absl::string_view method,
                                    absl::string_view bytes) {
  absl::StatusOr<std::string> head = SerializeResponseHead(r.version, r.status, r.reason, r.fields);
  if (!head.ok()) PropertyFailed(absl::StrCat("serialise: ", head.status().ToString()), bytes);
  absl::StatusOr<std::optional<Response>> again = PeekResponse(*head, method);
  if (!again.ok() || !again->has_value()) PropertyFailed("serialised head does not parse", bytes);
  // The serialised head may be shorter or longer (OWS is normalised to one SP).
  if ((*again)->head_bytes != head->size()) PropertyFailed("head_bytes of serialised head", bytes);
  (*again)->head_bytes = r.head_bytes;
  if (Describe(**again) != Describe(r)) PropertyFailed("serialised head parses differently", bytes);
}

// Reads one message stream (requests, or responses to `method`) in reads of the given sizes
// (the last read is extended to the end of the stream), the way a proxy's read loop would.
class StreamReader {
 public:
  StreamReader(bool requests, absl::string_view method) : requests_(requests), method_(method) {}

  std::vector<std::string> Read(absl::string_view stream, const std::vector<size_t>& reads) {
    size_t offset = 0;
    for (size_t i = 0; i < reads.size() && offset < stream.size() && !stopped_; ++i) {
      const size_t n = i + 1 == reads.size() ? stream.size() - offset : reads[i];
      absl::StrAppend(&buffered_, stream.substr(offset, n));
      offset += std::min(n, stream.size() - offset);
      Drain(stream);
    }
    if (!stopped_ && offset < stream.size()) {
      absl::StrAppend(&buffered_, stream.substr(offset));
      Drain(stream);
    }
    if (!stopped_) events_.push_back(absl::StrCat("pending ", buffered_.size()));
    return events_;
  }

 private:
  enum class State { kHead, kLength, kChunked, kUntilClose };

  void Data(absl::string_view data) {
    if (data.empty()) return;
    if (last_was_data_) {
      absl::StrAppend(&events_.back(), data);
    } else {
      events_.push_back(absl::StrCat("data ", data));
    }
    last_was_data_ = true;
  }

  void Event(std::string e) {
    events_.push_back(std::move(e));
    last_was_data_ = false;
  }

  void Fail(const absl::Status& status, absl::string_view prefix, absl::string_view stream) {
    CheckError(status, prefix, stream);
    Event(absl::StrCat("error ", status.ToString()));
    stopped_ = true;
  }

  void StartBody(const BodyFraming& body) {
    switch (body.kind) {
      case BodyKind::kNone:
        Event("end");
        break;
      case BodyKind::kLength:
        remaining_ = body.length;
        state_ = State::kLength;
        if (remaining_ == 0) {
          Event("end");
          state_ = State::kHead;
        }
        break;
      case BodyKind::kChunked:
        decoder_.emplace();
        state_ = State::kChunked;
        break;
      case BodyKind::kUntilClose:
        state_ = State::kUntilClose;
        break;
      case BodyKind::kTunnel:
        Event("tunnel");
        stopped_ = true;
        break;
    }
  }

  // Consumes what it can of buffered_; returns when more bytes are needed or it stopped.
  void Drain(absl::string_view stream) {
    size_t used = 0;
    while (!stopped_) {
      const absl::string_view in = absl::string_view(buffered_).substr(used);
      if (state_ == State::kHead) {
        const size_t n = requests_ ? ReadRequestHead(in, stream) : ReadResponseHead(in, stream);
        if (n == 0) break;
        used += n;
      } else if (state_ == State::kLength || state_ == State::kUntilClose) {
        if (in.empty()) break;
        const size_t n = state_ == State::kUntilClose
                             ? in.size()
                             : static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
        Data(in.substr(0, n));
        used += n;
        if (state_ == State::kLength && (remaining_ -= n) == 0) {
          Event("end");
          state_ = State::kHead;
        }
      } else {
        absl::StatusOr<ChunkedDecoder::Piece> p = decoder_->Decode(in);
        if (!p.ok()) {
          Fail(p.status(), "http: chunked: ", stream);
          break;
        }
        if (p->consumed > in.size()) PropertyFailed("chunked consumed more than given", stream);
        Data(p->data);
        if (p->trailer) Event(absl::StrCat("trailer ", p->trailer->name, ": ", p->trailer->value));
        used += p->consumed;
        if (decoder_->done()) {
          Event(absl::StrCat("end chunked ", decoder_->body_bytes()));
          state_ = State::kHead;
        } else if (p->consumed == 0) {
          break;
        }
      }
    }
    buffered_.erase(0, used);
  }

  size_t ReadRequestHead(absl::string_view in, absl::string_view stream) {
    absl::StatusOr<std::optional<Request>> r = PeekRequest(in);
    if (!r.ok()) {
      Fail(r.status(), "http: request: ", stream);
      return 0;
    }
    if (!r->has_value()) return 0;
    if ((*r)->head_bytes > in.size()) PropertyFailed("head_bytes > input", stream);
    CheckRequestProperties(**r, stream);
    Event(Describe(**r));
    StartBody((*r)->framing.body);
    return (*r)->head_bytes;
  }

  size_t ReadResponseHead(absl::string_view in, absl::string_view stream) {
    absl::StatusOr<std::optional<Response>> r = PeekResponse(in, method_);
    if (!r.ok()) {
      Fail(r.status(), "http: response: ", stream);
      return 0;
    }
    if (!r->has_value()) return 0;
    if ((*r)->head_bytes > in.size()) PropertyFailed("head_bytes > input", stream);
    CheckResponseProperties(**r, method_, stream);
    Event(Describe(**r));
    StartBody((*r)->framing.body);
    return (*r)->head_bytes;
  }

  const bool requests_;
  const std::string method_;
  std::string buffered_;
  std::vector<std::string> events_;
  bool last_was_data_ = false;
  bool stopped_ = false;
  State state_ = State::kHead;
  uint64_t remaining_ = 0;
  std::optional<ChunkedDecoder> decoder_;
};

inline std::vector<std::string> ReadRequests(absl::string_view stream,
                                             const std::vector<size_t>& reads) {
  return StreamReader(true, "").Read(stream, reads);
}

inline std::vector<std::string> ReadResponses(absl::string_view stream, absl::string_view method,
                                              const std::vector<size_t>& reads) {
  return StreamReader(false, method).Read(stream, reads);
}

// Read sizes: every byte on its own.
inline std::vector<size_t> ByteReads(size_t size) { return std::vector<size_t>(size, 1); }

// Read sizes drawn from `seed`: mostly small, sometimes large.
inline std::vector<size_t> RandomReads(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<size_t> out;
  size_t total = 0;
  while (total < size) {
    const size_t n = (rng() % 4 == 0) ? 1 + rng() % 512 : 1 + rng() % 8;
    out.push_back(n);
    total += n;
  }
  return out;
}

// One-shot, byte-at-a-time and random-split transcripts of `stream` must be equal. Returns the
// one-shot transcript.
// Byte-at-a-time is skipped for streams longer than `byte_reads_max` (it is quadratic).
inline std::vector<std::string> CheckSplitsAgree(absl::string_view stream, bool requests,
                                                 absl::string_view method, uint32_t seed,
                                                 size_t byte_reads_max = 4096) {
  const std::vector<std::string> whole =
      StreamReader(requests, method).Read(stream, {stream.size()});
  if (StreamReader(requests, method).Read(stream, RandomReads(stream.size(), seed)) != whole) {
    PropertyFailed("random split transcript differs from one-shot", stream);
  }
  if (stream.size() <= byte_reads_max &&
      StreamReader(requests, method).Read(stream, ByteReads(stream.size())) != whole) {
    PropertyFailed("byte-at-a-time transcript differs from one-shot", stream);
  }
  return whole;
}

// A chunked body decoded in one piece and in random reads gives the same data, trailers and
// verdict; a body that decodes re-encodes (AppendChunk / AppendLastChunk) into bytes that
// decode to the same data and trailers.
inline void CheckChunked(absl::string_view in, uint32_t seed) {
  struct Result {
    std::string data;
    std::vector<HeaderField> trailers;
    std::vector<std::string> trailer_text;
    std::string status;
    size_t consumed = 0;
    bool done = false;
  };
  auto decode = [&](const std::vector<size_t>& reads) {
    Result r;
    ChunkedDecoder decoder;
    std::string buffered;
    size_t offset = 0;
    for (size_t n : reads) {
      absl::StrAppend(&buffered, in.substr(offset, n));
      offset = std::min(in.size(), offset + n);
      absl::string_view view = buffered;
      while (!decoder.done()) {
        absl::StatusOr<ChunkedDecoder::Piece> p = decoder.Decode(view);
        if (!p.ok()) {
          CheckError(p.status(), "http: chunked: ", in);
          r.status = p.status().ToString();
          return r;
        }
        if (p->consumed == 0) break;
        if (p->consumed > view.size()) PropertyFailed("chunked consumed more than given", in);
        absl::StrAppend(&r.data, p->data);
        if (p->trailer) {
          r.trailer_text.push_back(absl::StrCat(p->trailer->name, ": ", p->trailer->value));
        }
        view.remove_prefix(p->consumed);
        r.consumed += p->consumed;
      }
      buffered = std::string(view);
      if (decoder.done()) break;
    }
    r.done = decoder.done();
    if (decoder.body_bytes() != r.data.size()) PropertyFailed("body_bytes mismatch", in);
    return r;
  };
  const Result whole = decode({in.size()});
  const Result split = decode(RandomReads(in.size(), seed));
  if (whole.data != split.data || whole.trailer_text != split.trailer_text ||
      whole.status != split.status || whole.done != split.done ||
      whole.consumed != split.consumed) {
    PropertyFailed("chunked split result differs from one-shot", in);
  }
  if (!whole.done) return;
  // Re-chunk in pieces of a size drawn from the data, with the same trailers.
  std::string wire;
  const size_t piece = 1 + (whole.data.size() % 7) * 13;
  for (size_t i = 0; i < whole.data.size(); i += piece) {
    AppendChunk(absl::string_view(whole.data).substr(i, piece), &wire);
  }
  std::vector<HeaderField> trailers;
  for (const std::string& t : whole.trailer_text) {
    const size_t colon = t.find(':');
    trailers.push_back(
        {absl::string_view(t).substr(0, colon), absl::string_view(t).substr(colon + 2)});
  }
  if (!AppendLastChunk(trailers, &wire).ok()) PropertyFailed("decoded trailers do not encode", in);
  ChunkedDecoder again;
  std::string data;
  std::vector<std::string> trailer_text;
  absl::string_view view = wire;
  while (!again.done()) {
    absl::StatusOr<ChunkedDecoder::Piece> p = again.Decode(view);
    if (!p.ok() || p->consumed == 0) PropertyFailed("re-encoded body does not decode", in);
    absl::StrAppend(&data, p->data);
    if (p->trailer) trailer_text.push_back(absl::StrCat(p->trailer->name, ": ", p->trailer->value));
    view.remove_prefix(p->consumed);
  }
  if (!view.empty() || data != whole.data || trailer_text != whole.trailer_text) {
    PropertyFailed("re-encoded body decodes differently", in);
  }
}

// Path normalisation is idempotent and never yields what it refuses; query helpers do not
// crash on any bytes.
inline void CheckTargetFunctions(absl::string_view in) {
  absl::StatusOr<std::string> path = NormalizePath(in);
  if (path.ok()) {
    absl::StatusOr<std::string> twice = NormalizePath(*path);
    if (!twice.ok() || *twice != *path) PropertyFailed("NormalizePath is not idempotent", in);
    if (path->find("/../") != std::string::npos || path->find("//") != std::string::npos ||
        absl::EndsWith(*path, "/..") || absl::EndsWith(*path, "/.")) {
      PropertyFailed("normalised path keeps dot-segments or empty segments", in);
    }
  } else {
    CheckError(path.status(), "http: target: ", in);
  }
  absl::StatusOr<std::vector<QueryParam>> q = ParseQuery(in);
  if (!q.ok()) CheckError(q.status(), "http: target: ", in);
  (void)ElideQueryParams(in);
  for (absl::string_view method : {"GET", "CONNECT", "OPTIONS"}) {
    absl::StatusOr<Target> t = ParseTarget(in, method);
    if (!t.ok()) CheckError(t.status(), "http: target: ", in);
  }
}

}  // namespace interlock::codec::http::testing
