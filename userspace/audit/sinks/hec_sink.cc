#include "userspace/audit/sinks/hec_sink.h"

#include <openssl/crypto.h>

#include "absl/strings/str_cat.h"
#include "userspace/codec/http/chunked.h"
#include "userspace/codec/http/head.h"
#include "userspace/common/printable.h"

namespace interlock::audit::sinks {
namespace {

std::string HostHeader(const config::HecSinkSettings& s) {
  const bool v6 = s.host.find(':') != std::string::npos;
  const bool default_port = s.port == (s.tls ? 443 : 80);
  return absl::StrCat(v6 ? "[" : "", s.host, v6 ? "]" : "",
                      default_port ? "" : absl::StrCat(":", s.port));
}

}  // namespace

HecDeliverer::HecDeliverer(config::HecSinkSettings settings, auth::Secret token, config::AuditSinkFormat format)
    : settings_(std::move(settings)),
      token_(std::move(token)),
      meta_{settings_.index, settings_.source, settings_.sourcetype, format},
      host_header_(HostHeader(settings_)) {}

absl::Status HecDeliverer::Deliver(const std::vector<v1::AuditEvent>& events) {
  absl::Status rejected;
  for (const std::string& body : BuildHecBodies(events, meta_, settings_.batch_max_bytes)) {
    absl::Status st = Post(body);
    if (absl::IsInvalidArgument(st)) {
      rejected = st;  // this body is given up; the others still go
      continue;
    }
    if (!st.ok()) return st;  // retried whole: bodies already sent arrive twice (same ids)
  }
  return rejected;
}

absl::Status HecDeliverer::Post(absl::string_view body) {
  std::string request = BuildHecRequest(host_header_, settings_.path, token_.reveal(), body);
  // The request holds the token: wiped however this returns.
  struct Wipe {
    std::string* s;
    ~Wipe() { OPENSSL_cleanse(s->data(), s->size()); }
  } wipe{&request};
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = stream_ != nullptr;
    if (stream_ != nullptr && stream_->PeerClosed()) stream_.reset();
    if (stream_ == nullptr) {
      net::BlockingClientOptions o;
      o.host = settings_.host;
      o.port = settings_.port;
      o.tls = settings_.tls;
      o.ca_file = settings_.ca_file;
      o.timeout = settings_.timeout;
      absl::StatusOr<std::unique_ptr<net::BlockingStream>> s = net::BlockingStream::Connect(o);
      if (!s.ok()) return absl::UnavailableError(absl::StrCat("hec: ", s.status().message()));
      stream_ = *std::move(s);
    }
    bool answered = false;
    absl::Status st = Exchange(request, &answered);
    if (st.ok() || absl::IsInvalidArgument(st)) return st;
    stream_.reset();
    if (!reused || answered) return st;
  }
  return absl::UnavailableError("hec: connection lost twice");
}

absl::Status HecDeliverer::Exchange(absl::string_view request, bool* answered) {
  if (absl::Status st = stream_->WriteAll(request); !st.ok()) {
    return absl::UnavailableError(absl::StrCat("hec: ", st.message()));
  }
  std::string buf;
  char chunk[8192];
  auto read_more = [&]() -> absl::Status {
    if (buf.size() >= kMaxHecResponseBytes) {
      return absl::UnavailableError(
          absl::StrCat("hec: answer larger than ", kMaxHecResponseBytes, " bytes"));
    }
    absl::StatusOr<size_t> n = stream_->Read(chunk, sizeof chunk);
    if (!n.ok()) return absl::UnavailableError(absl::StrCat("hec: ", n.status().message()));
    if (*n == 0)
      return absl::UnavailableError("hec: connection closed before the answer was complete");
    *answered = true;
    buf.append(chunk, *n);
    return absl::OkStatus();
  };
  // Skip interim 1xx answers; the final one decides.
  std::optional<codec::http::Response> resp;
  while (true) {
    absl::StatusOr<std::optional<codec::http::Response>> r = codec::http::PeekResponse(buf, "POST");
    if (!r.ok())
      return absl::UnavailableError(absl::StrCat("hec: bad answer: ", r.status().message()));
    if (!r->has_value()) {
      if (absl::Status st = read_more(); !st.ok()) return st;
      continue;
    }
    if ((*r)->framing.interim) {
      buf.erase(0, (*r)->head_bytes);
      continue;
    }
    resp = std::move(*r);
    break;
  }
  const int status = resp->status;
  const bool persistent = resp->framing.persistent;
  const codec::http::BodyFraming framing = resp->framing.body;
  buf.erase(0, resp->head_bytes);  // resp's views are dead from here
  std::string body;
  switch (framing.kind) {
    case codec::http::BodyKind::kNone:
      break;
    case codec::http::BodyKind::kLength:
      if (framing.length > kMaxHecResponseBytes) {
        stream_.reset();
        return absl::UnavailableError(
            absl::StrCat("hec: HTTP ", status, " with a body of ", framing.length, " bytes"));
      }
      while (buf.size() < framing.length) {
        if (absl::Status st = read_more(); !st.ok()) return st;
      }
      body = buf.substr(0, framing.length);
      break;
    case codec::http::BodyKind::kChunked: {
      codec::http::ChunkedDecoder dec;
      size_t off = 0;
      while (!dec.done()) {
        absl::StatusOr<codec::http::ChunkedDecoder::Piece> p =
            dec.Decode(absl::string_view(buf).substr(off));
        if (!p.ok())
          return absl::UnavailableError(
              absl::StrCat("hec: bad chunked answer: ", p.status().message()));
        if (p->consumed == 0) {
          if (absl::Status st = read_more(); !st.ok()) return st;
          continue;
        }
        if (body.size() < 4096) body.append(p->data.data(), p->data.size());
        off += p->consumed;
      }
      break;
    }
    case codec::http::BodyKind::kUntilClose:
      while (true) {
        absl::StatusOr<size_t> n = stream_->Read(chunk, sizeof chunk);
        if (!n.ok() || *n == 0) break;
        if (buf.size() < kMaxHecResponseBytes) buf.append(chunk, *n);
      }
      body = buf;
      break;
    case codec::http::BodyKind::kTunnel:
      stream_.reset();
      return absl::InvalidArgumentError(
          absl::StrCat("hec: HTTP ", status, ": the collector switched protocols"));
  }
  if (!persistent || framing.kind == codec::http::BodyKind::kUntilClose) stream_.reset();
  switch (ClassifyHecStatus(status)) {
    case HecVerdict::kAcknowledged:
      return absl::OkStatus();
    case HecVerdict::kRetry:
      return absl::UnavailableError(absl::StrCat(
          "hec: HTTP ", status, ": ", common::Visible(absl::string_view(body).substr(0, 200))));
    case HecVerdict::kRejected:
      return absl::InvalidArgumentError(absl::StrCat(
          "hec: HTTP ", status,
          " (rejected, not retried): ", common::Visible(absl::string_view(body).substr(0, 200))));
  }
  return absl::InternalError("hec: unreachable");
}

}  // namespace interlock::audit::sinks
