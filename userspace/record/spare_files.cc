#include "userspace/record/spare_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/quiet_thread.h"

namespace interlock::record {

std::unique_ptr<SpareFiles> SpareFiles::Start(std::string dir, size_t depth) {
  std::unique_ptr<SpareFiles> spares(new SpareFiles(std::move(dir), depth));
  SpareFiles* self = spares.get();
  // Signals stay with interlockd's loop thread (its signalfd).
  spares->thread_ = StartQuietThread<std::jthread>([self](std::stop_token stop) { self->Run(std::move(stop)); });
  return spares;
}

SpareFiles::SpareFiles(std::string dir, size_t depth) : dir_(std::move(dir)), depth_(depth) {}

SpareFiles::~SpareFiles() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

UniqueFd SpareFiles::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (ready_.empty()) {
    ++missed_;
    return UniqueFd();
  }
  UniqueFd fd = std::move(ready_.front());
  ready_.pop_front();
  ++taken_;
  wanted_.notify_one();
  return fd;
}

absl::Status SpareFiles::Link(int fd, const std::string& path) {
  // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd is the documented way without it.
  if (::linkat(fd, "", AT_FDCWD, path.c_str(), AT_EMPTY_PATH) == 0) return absl::OkStatus();
  int err = errno;
  if (err == ENOENT || err == EPERM) {
    const std::string self = absl::StrCat("/proc/self/fd/", fd);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) return absl::OkStatus();
    err = errno;
  }
  return ErrnoStatus(err, absl::StrCat("record: link ", path));
}

SpareFiles::Stats SpareFiles::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{taken_, missed_, ready_.size(), last_error_};
}

void SpareFiles::Run(std::stop_token stop) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop.stop_requested()) {
    if (ready_.size() >= depth_) {
      wanted_.wait(lock, stop, [&] { return ready_.size() < depth_; });
      continue;
    }
    lock.unlock();
    UniqueFd fd(::open(dir_.c_str(), O_TMPFILE | O_WRONLY | O_APPEND | O_CLOEXEC, 0600));
    const int err = errno;
    lock.lock();
    if (fd) {
      ready_.push_back(std::move(fd));
      last_error_.clear();
      continue;
    }
    // EOPNOTSUPP/EISDIR (no O_TMPFILE here), ENOSPC, EMFILE...: sessions create their own
    // files meanwhile, and their errors are the ones that count.
    last_error_ = absl::StrCat("O_TMPFILE in ", dir_, ": ", std::strerror(err));
    wanted_.wait_for(lock, stop, absl::ToChronoSeconds(kRetryPause), [] { return false; });
  }
}

}  // namespace interlock::record
