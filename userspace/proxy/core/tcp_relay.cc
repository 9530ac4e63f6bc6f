#include "userspace/proxy/core/tcp_relay.h"

#include <sys/socket.h>

#include "absl/strings/str_cat.h"

namespace interlock::proxy {

absl::StatusOr<std::unique_ptr<TcpRelay>> TcpRelay::Start(
    net::EventLoop& loop, UniqueFd agent, const net::SockAddr& upstream,
    const RelayOptions& options, std::unique_ptr<record::Recorder> recorder, DoneFn done) {
  // Nothing is charged yet: the buffers take memory when bytes arrive (ChargeBuffer).
  MemoryBudget::Lease memory;
  if (options.memory != nullptr) memory = options.memory->NewLease();
  auto upstream_fd = net::ConnectTcpNonBlocking(upstream);
  if (!upstream_fd.ok()) return upstream_fd.status();
  std::unique_ptr<TcpRelay> relay(new TcpRelay(loop, std::move(agent), std::move(*upstream_fd),
                                               upstream, options, std::move(recorder),
                                               std::move(done)));
  relay->memory_ = std::move(memory);
  relay->connect_timer_ = loop.RunAfter(options.connect_timeout, [r = relay.get()] {
    r->connect_timer_ = 0;
    if (r->state_ == State::kConnecting) {
      r->Finish("upstream_timeout", absl::StrCat("connect ", r->upstream_addr_.ToString(),
                                                  ": timed out"), true);
    }
  });
  relay->UpdateInterest();
  return relay;
}

TcpRelay::TcpRelay(net::EventLoop& loop, UniqueFd agent, UniqueFd upstream,
                   net::SockAddr upstream_addr, const RelayOptions& options,
                   std::unique_ptr<record::Recorder> recorder, DoneFn done)
    : loop_(loop),
      upstream_addr_(upstream_addr),
      options_(options),
      recorder_(std::move(recorder)),
      done_(std::move(done)),
      up_(options.buffer_bytes, kAgent, v1::DIRECTION_TO_UPSTREAM),
      down_(options.buffer_bytes, kUpstream, v1::DIRECTION_TO_AGENT),
      last_activity_(loop.clock().Monotonic()) {
  agent_.Attach(std::move(agent), /*readable=*/false);
  upstream_.Attach(std::move(upstream), /*readable=*/false);
  FollowRecorder(recorder_.get());
}

TcpRelay::~TcpRelay() {
  if (connect_timer_ != 0) loop_.Cancel(connect_timer_);
}

void TcpRelay::OnIo(Side side, uint32_t events) {
  if (state_ == State::kDone) return;
  if (side == kUpstream && state_ == State::kConnecting) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) FinishConnect();
    if (state_ != State::kRelaying) return;
    // Connected: flush what the agent sent while we were connecting.
    if (!Flush(up_)) return;
    UpdateCharge();
    PropagateEof(up_);
    UpdateInterest();
    return;
  }
  const bool readable = events & (EPOLLIN | EPOLLHUP | EPOLLERR);
  Pipe& reading = side == kAgent ? up_ : down_;
  Pipe& writing = side == kAgent ? down_ : up_;
  if (readable && !reading.src_eof && !Pump(reading, true)) return;
  if ((events & EPOLLOUT) && !Flush(writing)) return;
  UpdateCharge();
  PropagateEof(up_);
  PropagateEof(down_);
  if (state_ == State::kDone) return;
  if (up_.dst_shut && down_.dst_shut) {
    Finish("closed", "", false);
    return;
  }
  UpdateInterest();
}

void TcpRelay::FinishConnect() {
  absl::Status st = net::ConnectResult(upstream_.fd(), upstream_addr_);
  if (!st.ok()) {
    Finish("upstream_unreachable", std::string(st.message()), true);
    return;
  }
  if (connect_timer_ != 0) {
    loop_.Cancel(connect_timer_);
    connect_timer_ = 0;
  }
  state_ = State::kRelaying;
  if (recorder_) {
    absl::Status rs = recorder_->AppendEvent("upstream_connected", upstream_addr_.ToString());
    if (!rs.ok()) Finish("recording_failed", std::string(rs.message()), true);
  }
}

bool TcpRelay::Pump(Pipe& pipe, bool readable) {
  // Bounded work per wake-up so one busy session cannot starve the others.
  for (int i = 0; i < 8 && readable && !pipe.src_eof && !pipe.buf.full(); ++i) {
    if (!ChargeBuffer(pipe)) return false;
    net::IoResult r = pipe.buf.ReadFrom(fd(pipe.src));
    if (!r.status.ok()) {
      Finish(pipe.src == kAgent ? "agent_reset" : "upstream_reset",
             std::string(r.status.message()), true);
      return false;
    }
    if (r.eof) {
      pipe.src_eof = true;
      if (recorder_) {
        absl::Status rs = recorder_->AppendEvent(
            "half_close", pipe.src == kAgent ? "agent" : "upstream");
        if (!rs.ok()) {
          Finish("recording_failed", std::string(rs.message()), true);
          return false;
        }
      }
      break;
    }
    if (r.would_block) break;
    last_activity_ = loop_.clock().Monotonic();
    if (recorder_) {
      absl::Status rs = recorder_->AppendData(pipe.direction, pipe.buf.LastRead());
      if (!rs.ok()) {
        Finish("recording_failed", std::string(rs.message()), true);
        return false;
      }
    }
    if (!Flush(pipe)) return false;
  }
  return true;
}

bool TcpRelay::Flush(Pipe& pipe) {
  if (pipe.buf.empty() || state_ != State::kRelaying) return true;
  Side dst = pipe.src == kAgent ? kUpstream : kAgent;
  net::IoResult w = pipe.buf.WriteTo(fd(dst));
  if (!w.status.ok()) {
    Finish(dst == kAgent ? "agent_reset" : "upstream_reset", std::string(w.status.message()),
           true);
    return false;
  }
  if (pipe.direction == v1::DIRECTION_TO_UPSTREAM) {
    stats_.bytes_to_upstream += w.bytes;
  } else {
    stats_.bytes_to_agent += w.bytes;
  }
  return true;
}

bool TcpRelay::ChargeBuffer(Pipe& pipe) {
  if (pipe.buf.held() != 0) return true;
  const size_t held = up_.buf.held() + down_.buf.held() + pipe.buf.capacity();
  if (memory_.Set(held)) return true;
  Finish("memory_budget",
         absl::StrCat("session buffers ", held, " bytes; all sessions ",
                      options_.memory->used(), " of ", options_.memory->limit()),
         true);
  return false;
}

void TcpRelay::UpdateCharge() { (void)memory_.Set(up_.buf.held() + down_.buf.held()); }

void TcpRelay::PropagateEof(Pipe& pipe) {
  if (state_ != State::kRelaying) return;
  if (pipe.src_eof && pipe.buf.empty() && !pipe.dst_shut) {
    Side dst = pipe.src == kAgent ? kUpstream : kAgent;
    ::shutdown(fd(dst), SHUT_WR);
    pipe.dst_shut = true;
  }
}

void TcpRelay::UpdateInterest() {
  if (state_ == State::kDone) return;
  for (Side s : {kAgent, kUpstream}) {
    Pipe& reading = s == kAgent ? up_ : down_;   // pipe this side feeds
    Pipe& writing = s == kAgent ? down_ : up_;   // pipe this side drains
    uint32_t want = 0;
    if (s == kUpstream && state_ == State::kConnecting) {
      want = EPOLLOUT;
    } else {
      if (!reading.src_eof && !reading.buf.full()) want |= EPOLLIN;
      if (!writing.buf.empty() && state_ == State::kRelaying) want |= EPOLLOUT;
    }
    // A side with nothing to wait for is taken out of the loop (Watch(0)): epoll reports
    // EPOLLHUP / EPOLLERR even for an empty interest set, and a half-closed peer would make
    // the loop spin. An error on it surfaces on the next write (or the idle timeout).
    side(s).Watch(want);
  }
}

void TcpRelay::Finish(const std::string& outcome, const std::string& detail, bool reset) {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  outcome_ = outcome;
  detail_ = detail;
  if (connect_timer_ != 0) {
    loop_.Cancel(connect_timer_);
    connect_timer_ = 0;
  }
  // With `reset` the close sends RST, so the peer sees an abort, not a clean end.
  agent_.Close(reset);
  upstream_.Close(reset);
  if (recorder_) {
    v1::SessionClose close;
    close.set_bytes_to_upstream(stats_.bytes_to_upstream);
    close.set_bytes_to_agent(stats_.bytes_to_agent);
    close.set_outcome(outcome);
    close.set_detail(detail);
    absl::Status st = recorder_->Close(close);
    if (!st.ok() && detail_.empty()) detail_ = absl::StrCat("recording: ", st.message());
  }
  if (done_) done_(this);
}

absl::Status TcpRelay::FlushRecording() {
  if (!recorder_ || state_ == State::kDone) return absl::OkStatus();
  return recorder_->Flush();
}

void TcpRelay::Abort(const std::string& outcome, const std::string& detail) {
  Finish(outcome, detail, true);
}

}  // namespace interlock::proxy
