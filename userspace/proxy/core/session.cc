#include "userspace/proxy/core/session.h"

#include <algorithm>
#include <utility>

#include "userspace/record/recorder.h"

namespace interlock::proxy {

std::vector<ProxySession*> FlushList::Take() {
  std::vector<ProxySession*> taken = std::exchange(sessions_, {});
  for (ProxySession* s : taken) s->flush_marked_ = false;
  return taken;
}

ProxySession::~ProxySession() {
  if (flush_marked_ && flush_list_ != nullptr) std::erase(flush_list_->sessions_, this);
}

void ProxySession::JoinFlushList(FlushList* list) {
  flush_list_ = list;
  if (flush_marked_ && list != nullptr) list->sessions_.push_back(this);
}

void ProxySession::MarkForFlush() {
  if (flush_marked_) return;
  flush_marked_ = true;
  if (flush_list_ != nullptr) flush_list_->sessions_.push_back(this);
}

void ProxySession::FollowRecorder(record::Recorder* recorder) {
  if (recorder == nullptr) return;
  recorder->set_on_buffered([this] { MarkForFlush(); });
  if (recorder->buffered_bytes() > 0) MarkForFlush();
}

}  // namespace interlock::proxy
