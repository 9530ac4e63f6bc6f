#include "userspace/audit/sinks/remote_sink.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/log.h"
#include "userspace/common/quiet_thread.h"

namespace interlock::audit::sinks {

absl::StatusOr<std::unique_ptr<RemoteSink>> RemoteSink::Create(
    RemoteSinkOptions options, std::unique_ptr<Spool> spool, std::unique_ptr<Deliverer> deliverer) {
  if (spool == nullptr || deliverer == nullptr)
    return absl::InvalidArgumentError("sink: spool and deliverer required");
  if (options.queue_max_events == 0) options.queue_max_events = 1;
  if (options.batch_max_events == 0) options.batch_max_events = 1;
  std::unique_ptr<RemoteSink> sink(
      new RemoteSink(std::move(options), std::move(spool), std::move(deliverer)));
  // The worker must never take a process signal (quiet_thread.h).
  sink->worker_ = StartQuietThread([s = sink.get()] { s->Run(); });
  return sink;
}

RemoteSink::RemoteSink(RemoteSinkOptions options, std::unique_ptr<Spool> spool,
                       std::unique_ptr<Deliverer> deliverer)
    : options_(std::move(options)),
      spool_(std::move(spool)),
      deliverer_(std::move(deliverer)),
      destination_(deliverer_->destination()),
      backoff_(options_.retry_initial, options_.retry_max, options_.seed) {}

RemoteSink::~RemoteSink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool RemoteSink::Wanted(v1::AuditKind kind) const {
  return options_.kinds.empty() || std::find(options_.kinds.begin(), options_.kinds.end(),
                                             static_cast<int>(kind)) != options_.kinds.end();
}

absl::Status RemoteSink::Write(const v1::AuditEvent& event) {
  if (!Wanted(event.kind())) return absl::OkStatus();
  std::string record;
  event.SerializeToString(&record);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() < options_.queue_max_events) {
      if (queue_.empty()) oldest_queued_ = SteadyClock::now();
      queue_.push_back(std::move(record));
      // A wake-up is a futex syscall: the caller wakes the worker only for a full batch or a
      // half-full queue, and otherwise once per Flush (the engine's write batch).
      if (queue_.size() == options_.batch_max_events || queue_.size() == SpillThreshold())
        cv_.notify_one();
      return absl::OkStatus();
    }
  }
  // The queue is full: the worker is behind or stuck on the destination.
  std::vector<std::string> one;
  one.push_back(std::move(record));
  SpillToSpool(std::move(one));
  return absl::OkStatus();
}

absl::Status RemoteSink::Flush() {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake = !queue_.empty();
  }
  if (wake) cv_.notify_one();
  return absl::OkStatus();
}

RemoteSinkStats RemoteSink::stats() const {
  RemoteSinkStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = stats_;
    s.queued_events = queue_.size();
    s.backing_off = SteadyClock::now() < retry_at_;
  }
  s.spooled_events = spool_->events();
  s.spooled_bytes = spool_->bytes();
  return s;
}

RemoteSink::Problems RemoteSink::TakeProblems() {
  std::lock_guard<std::mutex> lock(mu_);
  Problems p = std::move(unreported_);
  unreported_ = Problems{};
  return p;
}

void RemoteSink::SpillToSpool(std::vector<std::string> records) {
  if (records.empty()) return;
  const size_t n = records.size();
  absl::Status st = spool_->Append(records);
  if (st.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  stats_.dropped_events += n;
  unreported_.dropped += n;
  stats_.last_error = std::string(st.message());
  unreported_.last_error = stats_.last_error;
}

std::vector<v1::AuditEvent> RemoteSink::Parse(const std::vector<std::string>& records, size_t from,
                                              size_t count) {
  std::vector<v1::AuditEvent> events;
  events.reserve(count);
  size_t bad = 0;
  for (size_t i = from; i < from + count && i < records.size(); ++i) {
    v1::AuditEvent e;
    if (e.ParseFromString(records[i])) {
      events.push_back(std::move(e));
    } else {
      ++bad;  // CRC-valid but not an event: a foreign file; skipped and counted
    }
  }
  if (bad > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.dropped_events += bad;
    unreported_.dropped += bad;
    unreported_.last_error = "spool: a record is not an audit event";
  }
  return events;
}

void RemoteSink::Account(const absl::Status& st, size_t n) {
  if (st.ok()) {
    stats_.sent_events += n;
    stats_.last_error.clear();
    backoff_.Reset();
    return;
  }
  stats_.last_error = std::string(st.message());
  if (absl::IsInvalidArgument(st)) {
    stats_.failed_events += n;
    unreported_.failed += n;
    unreported_.last_error = stats_.last_error;
    INTERLOCK_LOG(kError, "audit sink %s: %zu events rejected for good: %s", options_.name.c_str(),
                  n, std::string(st.message()).c_str());
    return;
  }
  ++stats_.retries;
  const absl::Duration wait = backoff_.Next();
  retry_at_ = SteadyClock::now() + absl::ToChronoMicroseconds(wait);
  if (backoff_.failures() == 1 || backoff_.failures() % 10 == 0) {
    INTERLOCK_LOG(kWarning, "audit sink %s: %s (retry in %s, failure %d in a row)",
                  options_.name.c_str(), std::string(st.message()).c_str(),
                  absl::FormatDuration(wait).c_str(), backoff_.failures());
  }
}

bool RemoteSink::DrainSpoolOnce() {
  if (!pending_.has_value()) {
    absl::StatusOr<std::optional<Spool::Segment>> seg = spool_->ReadOldest();
    if (!seg.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      Account(absl::UnavailableError(absl::StrCat("spool: ", seg.status().message())), 0);
      return true;  // backing off
    }
    if (!seg->has_value()) return false;
    pending_ = std::move(**seg);
    pending_index_ = 0;
    if (pending_->corrupt_bytes > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.corrupt_spool_bytes += pending_->corrupt_bytes;
      unreported_.corrupt_bytes += pending_->corrupt_bytes;
      unreported_.last_error = absl::StrCat("spool segment ", pending_->seq, ": ",
                                            pending_->corrupt_bytes, " unreadable bytes skipped");
      INTERLOCK_LOG(kError, "audit sink %s: %s", options_.name.c_str(),
                    unreported_.last_error.c_str());
    }
  }
  const size_t n =
      std::min<size_t>(options_.batch_max_events, pending_->records.size() - pending_index_);
  std::vector<v1::AuditEvent> events = Parse(pending_->records, pending_index_, n);
  absl::Status st = events.empty() ? absl::OkStatus() : deliverer_->Deliver(events);
  {
    std::lock_guard<std::mutex> lock(mu_);
    Account(st, events.size());
  }
  if (!st.ok() && !absl::IsInvalidArgument(st)) return true;  // the same records again later
  pending_index_ += n;
  if (pending_index_ >= pending_->records.size()) {
    if (absl::Status rm = spool_->Remove(pending_->seq); !rm.ok()) {
      INTERLOCK_LOG(kError, "audit sink %s: %s", options_.name.c_str(),
                    std::string(rm.message()).c_str());
    }
    pending_.reset();
  }
  return true;
}

void RemoteSink::SendLive(std::vector<std::string> records) {
  std::vector<v1::AuditEvent> events = Parse(records, 0, records.size());
  absl::Status st = events.empty() ? absl::OkStatus() : deliverer_->Deliver(events);
  {
    std::lock_guard<std::mutex> lock(mu_);
    Account(st, events.size());
  }
  if (!st.ok() && !absl::IsInvalidArgument(st)) SpillToSpool(std::move(records));
}

void RemoteSink::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const auto now = SteadyClock::now();
    if (now < retry_at_) {
      // Backing off: the destination is down. Queued events go to disk now, so that memory
      // stays free for the burst and the order of the backlog is kept.
      if (!queue_.empty()) {
        std::vector<std::string> batch(std::make_move_iterator(queue_.begin()),
                                       std::make_move_iterator(queue_.end()));
        queue_.clear();
        lock.unlock();
        SpillToSpool(std::move(batch));
        lock.lock();
        continue;
      }
      // Woken early only when the queue is half full: spilled in bulk, not per event.
      cv_.wait_until(lock, retry_at_,
                     [this] { return stop_ || queue_.size() >= SpillThreshold(); });
      continue;
    }
    if (pending_.has_value() || spool_->events() > 0 || spool_->bytes() > 0) {
      lock.unlock();
      const bool progressed = DrainSpoolOnce();
      lock.lock();
      if (progressed) continue;
      // Nothing readable in the spool after all: go on with the queue.
    }
    if (queue_.empty()) {
      // Flush wakes it; the timeout bounds the wait of a caller that never flushes.
      cv_.wait_for(lock, kIdleWake, [this] { return stop_ || !queue_.empty(); });
      continue;
    }
    const auto due = oldest_queued_ + absl::ToChronoMicroseconds(options_.batch_max_delay);
    if (queue_.size() < options_.batch_max_events && now < due) {
      cv_.wait_until(lock, due,
                     [this] { return stop_ || queue_.size() >= options_.batch_max_events; });
      continue;
    }
    const size_t n = std::min<size_t>(queue_.size(), options_.batch_max_events);
    std::vector<std::string> batch(
        std::make_move_iterator(queue_.begin()),
        std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    if (!queue_.empty()) oldest_queued_ = SteadyClock::now();
    lock.unlock();
    SendLive(std::move(batch));
    lock.lock();
  }
  // Stopping: whatever is still queued is kept on disk for the next start.
  std::vector<std::string> rest(std::make_move_iterator(queue_.begin()),
                                std::make_move_iterator(queue_.end()));
  queue_.clear();
  lock.unlock();
  SpillToSpool(std::move(rest));
}

}  // namespace interlock::audit::sinks
