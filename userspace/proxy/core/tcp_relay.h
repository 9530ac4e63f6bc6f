// TcpRelay: one relayed session of the protocol-agnostic TCP path. Owns the agent's
// accepted socket and the upstream socket, moves bytes both ways through bounded
// buffers, and hands every byte to the session recorder before it is forwarded.
//
// Flow control: each direction has one RelayBuffer; its source is read only while the
// buffer has space, so a slow receiver stalls its sender (TCP backpressure end to end)
// and memory per session is bounded: at most 2 x buffer_bytes, and none while both
// directions are drained (an idle session holds its two sockets and this object).
// Half-close: a FIN from one side is forwarded (shutdown(SHUT_WR)) once that direction's
// buffer has drained; the other direction keeps flowing until it ends too.
// Failure: a reset or write error on either side, a recorder error, or a timeout aborts
// both sides (RST), because a session we cannot record must not go on.
//
//   auto relay = TcpRelay::Start(loop, std::move(agent_fd), upstream_addr, options,
//                                std::move(recorder), [&](TcpRelay* r) { ...; delete later });
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "interlock/v1/record.pb.h"
#include "userspace/common/memory_budget.h"
#include "userspace/common/unique_fd.h"
#include "userspace/net/event_loop.h"
#include "userspace/net/relay_buffer.h"
#include "userspace/net/socket.h"
#include "userspace/proxy/core/session.h"
#include "userspace/proxy/core/stream_side.h"
#include "userspace/record/recorder.h"

namespace interlock::proxy {

struct RelayOptions {
  size_t buffer_bytes = 256 * 1024;
  absl::Duration connect_timeout = absl::Seconds(5);
  // Charged with the buffers the session holds now (buffer_bytes each while it holds
  // bytes); a read that would take it past the limit ends the session (memory_budget).
  // Null: not accounted.
  MemoryBudget* memory = nullptr;
};

class TcpRelay final : public ProxySession {
 public:
  // Called exactly once when the session has ended and both sockets are closed. The
  // owner may destroy the relay only via EventLoop::Defer from inside this callback.
  using DoneFn = std::function<void(TcpRelay*)>;

  // Starts connecting to `upstream` and registers both sockets with `loop`. Fails when
  // the upstream socket cannot be created; the agent socket is then closed.
  static absl::StatusOr<std::unique_ptr<TcpRelay>> Start(
      net::EventLoop& loop, UniqueFd agent, const net::SockAddr& upstream,
      const RelayOptions& options, std::unique_ptr<record::Recorder> recorder, DoneFn done);

  ~TcpRelay() override;

  // Ends the session now with `outcome` (e.g. "drain", "idle_timeout"): RST both sides.
  void Abort(const std::string& outcome, const std::string& detail = "") override;

  // Writes buffered recording bytes to disk (the engine calls it once per loop
  // iteration). An error means the recording is broken: the caller aborts the session.
  absl::Status FlushRecording() override;
  const record::Recorder* recorder() const override { return recorder_.get(); }

  const RelayStats& stats() const override { return stats_; }
  bool done() const override { return state_ == State::kDone; }
  const std::string& outcome() const override { return outcome_; }
  const std::string& detail() const override { return detail_; }
  absl::Duration last_activity() const override { return last_activity_; }

 private:
  enum class State { kConnecting, kRelaying, kDone };
  enum Side { kAgent = 0, kUpstream = 1 };

  // One direction: bytes read from `src` side, written to the other.
  struct Pipe {
    explicit Pipe(size_t cap, Side src_side, v1::Direction dir)
        : buf(cap), src(src_side), direction(dir) {}
    net::RelayBuffer buf;
    Side src;
    v1::Direction direction;
    bool src_eof = false;
    bool dst_shut = false;
  };

  using Watcher = SideWatcher<TcpRelay, Side>;
  friend Watcher;

  TcpRelay(net::EventLoop& loop, UniqueFd agent, UniqueFd upstream, net::SockAddr upstream_addr,
           const RelayOptions& options, std::unique_ptr<record::Recorder> recorder, DoneFn done);

  void OnIo(Side side, uint32_t events);
  void FinishConnect();
  // Returns false when the session ended.
  bool Pump(Pipe& pipe, bool readable);
  bool Flush(Pipe& pipe);
  void PropagateEof(Pipe& pipe);
  void UpdateInterest();
  // Before `pipe` takes a buffer to read into: charges it to options.memory. False (and
  // the session ended as memory_budget) when the budget cannot hold it.
  bool ChargeBuffer(Pipe& pipe);
  // Sets the lease to what the buffers hold now (after they gave storage back).
  void UpdateCharge();
  void Finish(const std::string& outcome, const std::string& detail, bool reset);
  StreamSide& side(Side s) { return s == kAgent ? agent_ : upstream_; }
  int fd(Side s) const { return s == kAgent ? agent_.fd() : upstream_.fd(); }

  net::EventLoop& loop_;
  MemoryBudget::Lease memory_;  // first: released after the buffers below
  Watcher agent_watcher_{this, kAgent};
  Watcher upstream_watcher_{this, kUpstream};
  // The sockets and their epoll registration (the bytes move through the pipes' fixed
  // ring buffers, not the sides' queues).
  StreamSide agent_{&loop_, &agent_watcher_, "agent"};
  StreamSide upstream_{&loop_, &upstream_watcher_, "upstream"};
  net::SockAddr upstream_addr_;
  RelayOptions options_;
  std::unique_ptr<record::Recorder> recorder_;
  DoneFn done_;
  Pipe up_;    // agent -> upstream
  Pipe down_;  // upstream -> agent
  State state_ = State::kConnecting;
  net::EventLoop::TimerId connect_timer_ = 0;
  RelayStats stats_;
  absl::Duration last_activity_;
  std::string outcome_;
  std::string detail_;
};

}  // namespace interlock::proxy
