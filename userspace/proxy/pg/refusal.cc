#include "userspace/proxy/pg/refusal.h"

#include <errno.h>
#include <sys/socket.h>

#include <variant>

#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::proxy::pg {

namespace cpg = ::interlock::codec::pg;

RefusalAction NextRefusalAction(absl::string_view buf, int negotiations, const std::string& error_bytes) {
  auto frame = cpg::PeekStartupFrame(buf);
  if (!frame.ok()) return RefusalAction{buf.size(), error_bytes, true};  // not PostgreSQL framing
  if (!frame->has_value()) return RefusalAction{};                      // more to come
  const size_t used = (*frame)->total_bytes;
  auto packet = cpg::ParseStartupPacket((*frame)->body);
  if (!packet.ok()) return RefusalAction{used, error_bytes, true};
  if (std::holds_alternative<cpg::CancelRequest>(*packet)) return RefusalAction{used, "", true};  // no reply, ever
  const bool encryption =
      std::holds_alternative<cpg::SslRequest>(*packet) || std::holds_alternative<cpg::GssEncRequest>(*packet);
  if (encryption && negotiations < kMaxRefusalNegotiations) return RefusalAction{used, "N", false};
  return RefusalAction{used, error_bytes, true};  // the StartupMessage: now the client shows the error
}

class RefusedAgents::Waiting final : public net::IoHandler {
 public:
  Waiting(RefusedAgents* owner, UniqueFd fd, std::string error) : owner_(owner), fd_(std::move(fd)), error_(std::move(error)) {}
  int fd() const { return fd_.get(); }
  net::EventLoop::TimerId timer = 0;

  void Send(const std::string& bytes) {
    if (!bytes.empty()) (void)!::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  void SendError() { Send(error_); }
  void TimedOut() {
    timer = 0;
    SendError();
    owner_->Finish(fd_.get());
  }
  void OnIo(uint32_t) override {
    char chunk[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return owner_->Finish(fd_.get());
      if (n < 0) break;
      buf_.append(chunk, static_cast<size_t>(n));
      if (buf_.size() > cpg::kMaxStartupPacketBytes + 16) break;  // NextRefusalAction refuses it
    }
    for (;;) {
      RefusalAction a = NextRefusalAction(buf_, negotiations_, error_);
      Send(a.reply);
      buf_.erase(0, a.consume);
      if (a.done) return owner_->Finish(fd_.get());
      if (a.consume == 0) return;
      ++negotiations_;
    }
  }

 private:
  RefusedAgents* owner_;
  UniqueFd fd_;
  std::string error_;
  std::string buf_;
  int negotiations_ = 0;
};

RefusedAgents::RefusedAgents(net::EventLoop* loop) : loop_(loop) {}

RefusedAgents::~RefusedAgents() {
  for (auto& [fd, w] : waiting_) {
    if (w->timer != 0) loop_->Cancel(w->timer);
    loop_->Remove(fd);
  }
}

void RefusedAgents::Refuse(UniqueFd agent, std::string error_bytes) {
  if (waiting_.size() >= kMaxWaiting) {
    (void)!::send(agent.get(), error_bytes.data(), error_bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return;  // closed here
  }
  const int fd = agent.get();
  auto w = std::make_unique<Waiting>(this, std::move(agent), std::move(error_bytes));
  if (!loop_->Add(fd, EPOLLIN, w.get()).ok()) {
    w->SendError();
    return;
  }
  Waiting* raw = w.get();
  raw->timer = loop_->RunAfter(kRefusalTimeout, [raw] { raw->TimedOut(); });
  waiting_[fd] = std::move(w);
  raw->OnIo(EPOLLIN);  // the startup packet may be there already
}

void RefusedAgents::Finish(int fd) {
  auto it = waiting_.find(fd);
  if (it == waiting_.end()) return;
  if (it->second->timer != 0) loop_->Cancel(it->second->timer);
  loop_->Remove(fd);
  // Called from the handler itself: destroy it after this dispatch.
  Waiting* raw = it->second.release();
  waiting_.erase(it);
  loop_->Defer([raw] { delete raw; });
}

}  // namespace interlock::proxy::pg
