// HttpSession, towards the upstream and back: the upstream connection (reused when idle and
// fresh, else connected, TLS verified), the request forwarded, and the response relayed —
// re-framed for the agent, and streamed through the body masker when a mask applies.
// (The request side: http_session_request.cc; life cycle, I/O and evidence: http_session.cc.)
#include <errno.h>
#include <sys/socket.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/codec/http/head.h"
#include "userspace/codec/http/serialize.h"
#include "userspace/proxy/http/credential.h"
#include "userspace/proxy/http/http_session.h"
#include "userspace/proxy/http/request_facts.h"
#include "userspace/proxy/http/response_masking.h"

namespace interlock::proxy::http {

namespace chttp = codec::http;

void HttpSession::StartForwarding() {
  Exchange& ex = *ex_;
  phase_ = Phase::kExchange;
  if (ex.expect_continue && !ex.request_done) SendToAgent("HTTP/1.1 100 Continue\r\n\r\n");
  if (!UpstreamReusable()) ConnectUpstream();
  if (phase_ != Phase::kExchange) return;
  SendToUpstream(ex.forward_head);
  ex.audit.set_forwarded(true);
  if (ex.injects_credential) ex.audit.set_credential_injected(CredentialKindName(http_.credential));
  std::fill(ex.forward_head.begin(), ex.forward_head.end(), '\0');  // it held the credential
  ex.forward_head.clear();
  if (!ex.held_body.empty()) {
    SendToUpstream(ex.held_body);
    ex.held_body.clear();
    ex.request_done = true;
  }
}

bool HttpSession::UpstreamReusable() {
  // Anything announced between exchanges — a close (nginx after keepalive_timeout), a TLS
  // close_notify, bytes no request asked for — means the connection is not reused: the
  // close is seen here, not as a 502 after the request was sent.
  if (!upstream_.attached() || upstream_.eof() || !upstream_.in().empty() || upstream_.readable()) return false;
  // An upstream that answered moments ago has not closed for idleness; one idle longer
  // may have closed in the moment before this request (its end not yet announced): ask
  // the socket.
  if (env_.clock->Monotonic() - upstream_last_read_ < kUpstreamFreshFor) return true;
  char byte;
  const ssize_t n = ::recv(upstream_.fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void HttpSession::ConnectUpstream() {
  auto fd = net::ConnectTcpNonBlocking(ctx_.upstream);
  if (!fd.ok()) {
    UpstreamFailed("upstream_unreachable", std::string(fd.status().message()));
    return;
  }
  upstream_.Reattach(std::move(*fd));
  upstream_connecting_ = true;
  connect_timer_ = env_.loop->RunAfter(env_.connect_timeout, [this] {
    connect_timer_ = 0;
    if (upstream_connecting_) {
      UpstreamFailed("upstream_timeout", "connect timed out");
      Pump();
    }
  });
}

void HttpSession::OnUpstreamConnected() {
  absl::Status st = net::ConnectResult(upstream_.fd(), ctx_.upstream);
  upstream_connecting_ = false;
  if (connect_timer_ != 0) {
    env_.loop->Cancel(connect_timer_);
    connect_timer_ = 0;
  }
  if (!st.ok()) {
    UpstreamFailed("upstream_unreachable", std::string(st.message()));
    return;
  }
  if (ctx_.agent_tls == nullptr) return;
  // HTTPS: verify-full against the name the agent asked for (or the configured one).
  upstream_server_name_ = !http_.upstream_server_name.empty() ? http_.upstream_server_name
                          : !sni_.empty()                     ? HostWithoutPort(sni_)
                                                              : ex_->facts.host;
  auto ctx = ctx_.upstream_tls(upstream_server_name_);
  if (!ctx.ok()) {
    UpstreamFailed("upstream_tls_config", std::string(ctx.status().message()));
    return;
  }
  auto tls = net::TlsConnection::Create(**ctx, upstream_.fd());
  if (!tls.ok()) {
    UpstreamFailed("upstream_tls", std::string(tls.status().message()));
    return;
  }
  upstream_.SetTls(*std::move(tls));
  upstream_tls_pending_ = true;
  StepUpstreamTls();
}

void HttpSession::StepUpstreamTls() {
  auto step = upstream_.tls()->HandshakeStep();
  if (!step.ok()) {
    upstream_tls_pending_ = false;
    UpstreamFailed("upstream_tls", std::string(step.status().message()));
    return;
  }
  if (*step == net::TlsHandshake::kDone) upstream_tls_pending_ = false;
}

bool HttpSession::ForwardRequestBody() {
  Exchange& ex = *ex_;
  if (ex.request_done || upstream_.out().size() >= kHighWaterBytes) return false;
  const bool chunked = ex.request_body.kind == chttp::BodyKind::kChunked;
  std::string framed;
  BodyPull pulled = PullRequestBody(
      [&](absl::string_view data) {
        ex.audit.set_request_body_bytes(ex.audit.request_body_bytes() + data.size());
        if (!chunked) {
          SendToUpstream(data);
          return;
        }
        framed.clear();
        chttp::AppendChunk(data, &framed);
        SendToUpstream(framed);
      },
      [&] { return upstream_.out().size() < kHighWaterBytes; });
  if (pulled == BodyPull::kFailed) return true;
  if (chunked && ex.request_done) {
    framed.clear();
    (void)chttp::AppendLastChunk({}, &framed);  // trailers are not forwarded
    SendToUpstream(framed);
  }
  return pulled == BodyPull::kProgress;
}

bool HttpSession::RelayResponse() {
  Exchange& ex = *ex_;
  if (!ex.response_head_seen) {
    if (upstream_.in().empty()) {
      if (upstream_.eof()) UpstreamFailed("upstream_closed", "the upstream closed without answering");
      return false;
    }
    auto head = chttp::PeekResponse(upstream_.in().view(), ex.method);
    if (!head.ok()) {
      UpstreamFailed("bad_response", std::string(head.status().message()));
      return true;
    }
    if (!head->has_value()) {
      if (upstream_.eof()) UpstreamFailed("upstream_closed", "the upstream closed mid-response");
      return false;
    }
    const chttp::Response& resp = **head;
    if (resp.framing.body.kind == chttp::BodyKind::kTunnel) {
      UpstreamFailed("bad_response", absl::StrCat("status ", resp.status, ": a tunnel was not asked for"));
      return true;
    }
    std::vector<chttp::HeaderField> fields = chttp::RemoveHopByHop(resp.fields);
    absl::string_view reason = resp.reason;
    // What fields and reason view once masked; built only when a masker applies (a deque
    // allocates as it is constructed, and most responses are not masked).
    std::optional<std::deque<std::string>> masked_values;
    if (resp.framing.interim) {
      // 100 Continue was answered by interlockd itself; other 1xx (103) pass, masked too.
      if (resp.status != 100) {
        if (ex.masker != nullptr && MaskResponseHead(&fields, &reason, &masked_values.emplace())) {
          SealOriginalHead(resp.head_bytes);
        }
        auto interim = chttp::SerializeResponseHead(chttp::Version::kHttp11, resp.status, reason, fields);
        if (interim.ok() && ex.version == chttp::Version::kHttp11) SendToAgent(*interim);
      }
      upstream_.in().Consume(resp.head_bytes);
      return true;
    }
    ex.audit.set_response_content_type(std::string(chttp::FindField(resp.fields, "content-type").value_or("").substr(0, 128)));
    ex.response_body = resp.framing.body;
    if (ex.masker != nullptr) {
      if (!PlanMasking(resp.fields, &fields)) return true;
      if (MaskResponseHead(&fields, &reason, &masked_values.emplace())) SealOriginalHead(resp.head_bytes);
    }
    ex.response_head_seen = true;
    ex.audit.set_status(resp.status);
    ex.audit.set_answered_by("upstream");
    // The upstream closing after this response (not persistent) makes the next exchange
    // reconnect; the agent's connection stays unless it asked otherwise.
    ex.close_after = ex.agent_wants_close || !resp.framing.persistent;
    chttp::BodyFraming to_agent = resp.framing.body;
    if (ex.body_masker != nullptr) to_agent = {chttp::BodyKind::kUntilClose, 0};  // re-written: length unknown
    if (to_agent.kind == chttp::BodyKind::kChunked ||
        (to_agent.kind == chttp::BodyKind::kUntilClose && ex.version == chttp::Version::kHttp11)) {
      to_agent = {chttp::BodyKind::kChunked, 0};
      ex.close_after = ex.agent_wants_close || (!resp.framing.persistent && ex.body_masker == nullptr);
    } else if (to_agent.kind == chttp::BodyKind::kUntilClose) {
      ex.close_after = true;  // HTTP/1.0: the end of the body is the end of the connection
    }
    ex.response_to_agent = to_agent.kind;
    std::string storage;
    if (to_agent.kind != chttp::BodyKind::kNone) fields = chttp::WithBodyFraming(fields, to_agent, &storage);
    if (ex.close_after) fields.push_back({"Connection", "close"});
    auto out = chttp::SerializeResponseHead(ex.version, resp.status, reason, fields);
    if (!out.ok()) {
      UpstreamFailed("bad_response", std::string(out.status().message()));
      return true;
    }
    upstream_.in().Consume(resp.head_bytes);
    if (ex.body_masker != nullptr && !ex.body_masker->decided()) {
      ex.held_head = *std::move(out);
    } else {
      SendToAgent(*out);
    }
    if (ex.response_body.kind == chttp::BodyKind::kLength) ex.response_left = ex.response_body.length;
    if (ex.response_body.kind == chttp::BodyKind::kChunked) ex.response_chunks.emplace();
    ex.response_done = ex.response_body.kind == chttp::BodyKind::kNone ||
                       (ex.response_body.kind == chttp::BodyKind::kLength && ex.response_left == 0);
  }
  bool progress = RelayResponseBody();
  if (phase_ == Phase::kExchange && ex_->response_done) {
    if (!ex_->request_done) ex_->close_after = true;  // answered early: the rest of the body is unread
    const bool close = ex_->close_after;
    EndExchange("completed");
    if (close) {
      phase_ = Phase::kClosing;
      upstream_.Close(false);
    } else {
      phase_ = Phase::kRequestHead;
    }
    return true;
  }
  return progress;
}

bool HttpSession::PlanMasking(const std::vector<chttp::HeaderField>& fields, std::vector<chttp::HeaderField>* out) {
  Exchange& ex = *ex_;
  const bool has_body = ex.response_body.kind != chttp::BodyKind::kNone &&
                        !(ex.response_body.kind == chttp::BodyKind::kLength && ex.response_body.length == 0);
  // Field rules reach into JSON only: text they cannot reach is refused unless passed.
  const bool refuse_text = ex.masker->has_column_rules() && !http_.pass_text_past_field_rules;
  ResponseMaskPlan plan = PlanResponseMasking(fields, has_body, http_.refuse_unmaskable_bodies, refuse_text);
  ex.audit.set_body_masking(plan.label);
  ex.audit.mutable_masking()->set_profile(ex.masker->name());
  if (plan.mode == ResponseMaskPlan::Mode::kMask) {
    auto bm = mask::BodyMasker::Create(*ex.masker, plan.kind, plan.coding,
                                       {.refuse_text = refuse_text, .refuse_wide_text = true});
    if (bm.ok()) {
      ex.body_masker = *std::move(bm);
      *out = MaskedResponseFields(*out);
      return true;
    }
    plan.reason = std::string(bm.status().message());
    ex.audit.set_body_masking("failed");
  } else if (plan.mode != ResponseMaskPlan::Mode::kRefuse) {
    return true;  // no body, or a binary one passed (audited as unmasked)
  }
  RefuseUnmaskable(plan.reason);
  return false;
}

void HttpSession::RefuseUnmaskable(const std::string& reason) {
  // Never relayed unmasked: the agent gets 502; the upstream connection (body unread) ends.
  ex_->audit.set_body_masking("failed");
  Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "denied", "mask_unavailable", reason);
  upstream_.Close(true);
  upstream_.in().Clear();
  Answer(502, "Response cannot be masked", absl::StrCat(reason, "; it is not relayed unmasked"),
         "mask_unavailable", "refused", /*close=*/!ex_->request_done);
}

void HttpSession::SealOriginalHead(size_t head_bytes) {
  if (!recorder_ || !recorder_->keeps_originals()) return;
  const absl::string_view head = upstream_.in().view().substr(0, head_bytes);
  pending_sealed_to_agent_.append(head.data(), head.size());
  MarkForFlush();
}

bool HttpSession::MaskResponseHead(std::vector<chttp::HeaderField>* fields, absl::string_view* reason,
                                   std::deque<std::string>* storage) {
  Exchange& ex = *ex_;
  std::vector<std::string> masked;
  *fields = MaskResponseHeadFields(*fields, *ex.masker, storage, &masked, &ex.head_counts);
  std::string masked_reason;
  if (MaskResponseHeadValue(*reason, *ex.masker, &masked_reason, &ex.head_counts)) {
    *reason = storage->emplace_back(std::move(masked_reason));
    masked.emplace_back(kReasonPhrase);
  }
  const bool any = !masked.empty();
  for (std::string& name : masked) ex.audit.add_response_fields_masked(std::move(name));
  return any;
}

bool HttpSession::RelayResponseBody() {
  Exchange& ex = *ex_;
  bool progress = false;
  while (!ex.response_done && agent_.out().size() < kHighWaterBytes) {
    absl::string_view in = upstream_.in().view();
    absl::string_view data;  // body bytes, framing removed: a view into upstream_.in()
    size_t consumed = 0;
    bool last = false;
    if (ex.response_body.kind == chttp::BodyKind::kLength) {
      if (in.empty()) {
        if (upstream_.eof()) {
          Finish("upstream_closed_mid_response", "the upstream closed before the announced body ended", true);
          return false;
        }
        break;
      }
      consumed = static_cast<size_t>(std::min<uint64_t>(ex.response_left, in.size()));
      if (ex.body_masker != nullptr) consumed = std::min(consumed, kMaskPieceBytes);
      data = in.substr(0, consumed);
      ex.response_left -= consumed;
      last = ex.response_left == 0;
    } else if (ex.response_body.kind == chttp::BodyKind::kChunked) {
      auto piece = ex.response_chunks->Decode(in);
      if (!piece.ok()) {
        Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "error", "bad_response", std::string(piece.status().message()));
        Finish("bad_response", std::string(piece.status().message()), true);
        return false;
      }
      if (piece->consumed == 0) {
        if (upstream_.eof()) {
          Finish("upstream_closed_mid_response", "the upstream closed inside a chunked body", true);
          return false;
        }
        break;
      }
      data = piece->data;
      consumed = piece->consumed;
      last = ex.response_chunks->done();
    } else {  // until close
      if (in.empty() && !upstream_.eof()) break;
      data = ex.body_masker != nullptr ? in.substr(0, kMaskPieceBytes) : in;
      consumed = data.size();
      last = in.empty();
    }
    if (!EmitResponseBody(data, last)) return true;  // ended or refused: the phase moved on
    upstream_.in().Consume(consumed);
    if (last) {
      ex.response_done = true;
      if (ex.response_body.kind == chttp::BodyKind::kUntilClose) upstream_.Close(false);
    }
    progress = true;
  }
  return progress;
}

bool HttpSession::EmitResponseBody(absl::string_view data, bool last) {
  Exchange& ex = *ex_;
  absl::string_view out = data;
  if (ex.body_masker != nullptr) {
    ex.audit.set_upstream_response_body_bytes(ex.audit.upstream_response_body_bytes() + data.size());
    masked_.clear();
    absl::Status st = data.empty() ? absl::OkStatus() : ex.body_masker->Feed(data, &masked_);
    if (st.ok() && last) st = ex.body_masker->Finish(&masked_);
    if (!st.ok() && ex.held_head.has_value()) {
      // Nothing of this response was sent: the agent gets a whole 502 instead of a head
      // and a cut.
      const std::string& type = ex.audit.response_content_type();
      const std::string body =
          absl::StrCat("the body (", type.empty() ? "no Content-Type" : absl::StrCat("Content-Type \"", type, "\""), ")");
      if (ex.body_masker->refused_text()) {
        RefuseUnmaskable(absl::StrCat(body,
                                      " is text, not one JSON document, and the mask profile's field rules name JSON "
                                      "members and cannot reach into it (HttpResource.pass_text_past_field_rules)"));
      } else if (ex.body_masker->refused_encoding()) {
        RefuseUnmaskable(absl::StrCat(
            body, " is UTF-16 or UTF-32 text, which the detectors cannot read (they read ASCII-compatible text)"));
      } else {
        RefuseUnmaskable(absl::StrCat(body, " could not be masked: ", st.message()));
      }
      return false;
    }
    if (!st.ok()) {
      // What was sent was masked; the rest cannot be. The connection ends without the
      // body's end, so the agent's client reports an incomplete response.
      ex.audit.set_body_masking("failed");
      Audit(v1::AUDIT_KIND_PROTOCOL_ERROR, "error", "mask_failed", std::string(st.message()));
      Finish("mask_failed", std::string(st.message()), true);
      return false;
    }
    out = masked_;
    if (ex.held_head.has_value()) {
      if (!ex.body_masker->decided()) {  // still being told apart: nothing goes out yet
        ex.held_output.append(out.data(), out.size());
        out = {};
      } else {
        SendToAgent(*ex.held_head);
        ex.held_head.reset();
        if (!ex.held_output.empty()) {
          ex.held_output.append(out.data(), out.size());
          masked_.swap(ex.held_output);
          std::string().swap(ex.held_output);
          out = masked_;
        }
      }
    }
  }
  ex.audit.set_response_body_bytes(ex.audit.response_body_bytes() + out.size());
  if (ex.response_to_agent == chttp::BodyKind::kChunked) {
    agent_frame_.clear();
    if (!out.empty()) chttp::AppendChunk(out, &agent_frame_);
    if (last) (void)chttp::AppendLastChunk({}, &agent_frame_);
    if (!agent_frame_.empty()) SendToAgent(agent_frame_);
  } else if (!out.empty()) {
    SendToAgent(out);
  }
  // The recording keeps what the agent got (masked); with an auditor key, the upstream's
  // bytes masking replaced are sealed to it, after them (interlock replay --unseal).
  if (ex.body_masker != nullptr && recorder_ && recorder_->keeps_originals()) {
    pending_sealed_to_agent_.append(data.data(), data.size());
    MarkForFlush();
  }
  return true;
}

void HttpSession::UpstreamFailed(const std::string& reason, const std::string& detail) {
  upstream_connecting_ = false;
  upstream_tls_pending_ = false;
  if (ex_.has_value() && phase_ == Phase::kExchange && !ex_->response_head_seen) {
    Audit(v1::AUDIT_KIND_SESSION_REJECTED, "error", reason, detail);
    Answer(502, "Bad gateway", absl::StrCat("interlockd could not get an answer from resource ", ctx_.resource->name),
           reason, "error", /*close=*/!ex_->request_done);
    upstream_.Close(true);
    return;
  }
  if (ex_.has_value() && ex_->response_head_seen) {
    Finish(reason, detail, true);
    return;
  }
  // Between exchanges: the next request reconnects.
  upstream_.Close(false);
}

}  // namespace interlock::proxy::http
