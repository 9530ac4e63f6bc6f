// SpareFiles: recording files made ahead of time, so that starting a session does not wait
// for the file system to find a free inode. A thread of its own keeps up to `depth` unnamed
// files (open(2) O_TMPFILE: mode 0600, O_WRONLY|O_APPEND|O_CLOEXEC) ready in the recordings
// directory; a new session takes one and gives it its name with linkat(2). On this VM's ext4
// after many deletions, open(O_CREAT|O_EXCL) costs 140-470 us at the p50 (the allocator
// skipping recently freed inodes) and linking a made file ~18 us.
//
//   auto spares = SpareFiles::Start(dir, SpareFiles::kDefaultDepth);
//   UniqueFd fd = spares->Take();                 // invalid: none ready, create one yourself
//   if (fd) INTERLOCK_RETURN_IF_ERROR(SpareFiles::Link(fd.get(), dir + "/x.rec"));
//
// An unnamed file that is never linked vanishes when its descriptor closes: a crash leaves
// nothing behind. A file system without O_TMPFILE (or a failing one) leaves the pool empty,
// and callers create their files as before; the pool tries again after a pause. Take() never
// touches the file system and never blocks on it (a mutex held only to move a descriptor).
//
// Thread-safe. The destructor stops the thread and closes the unused files.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace interlock::record {

class SpareFiles {
 public:
  // Enough for a burst of new sessions while the thread makes more; each spare holds a
  // descriptor (the engine counts them in its budget).
  static constexpr size_t kDefaultDepth = 16;
  // How long the thread waits after a failed O_TMPFILE open before trying again.
  static constexpr absl::Duration kRetryPause = absl::Seconds(5);

  // Starts the thread that fills the pool in `dir`.
  static std::unique_ptr<SpareFiles> Start(std::string dir, size_t depth);
  ~SpareFiles();
  SpareFiles(const SpareFiles&) = delete;
  SpareFiles& operator=(const SpareFiles&) = delete;

  // A ready unnamed file, or an invalid descriptor when none is.
  UniqueFd Take();

  // Names `fd` (an unnamed file from Take, on the file system of `path`) `path`, which must
  // not exist: ALREADY_EXISTS when it does (as O_EXCL), else the errno status of linkat.
  static absl::Status Link(int fd, const std::string& path);

  struct Stats {
    uint64_t taken = 0;   // files handed out
    uint64_t missed = 0;  // Take() found the pool empty
    size_t ready = 0;
    std::string last_error;  // why the last O_TMPFILE open failed ("" when it did not)
  };
  Stats stats() const;

 private:
  SpareFiles(std::string dir, size_t depth);
  void Run(std::stop_token stop);

  const std::string dir_;
  const size_t depth_;
  mutable std::mutex mu_;
  std::condition_variable_any wanted_;  // Take() made room
  std::deque<UniqueFd> ready_;
  uint64_t taken_ = 0;
  uint64_t missed_ = 0;
  std::string last_error_;
  std::jthread thread_;  // last: stops (and joins) before the members it uses go
};

}  // namespace interlock::record
