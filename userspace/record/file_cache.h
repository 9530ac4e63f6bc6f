// FileCache: a bounded set of open recording descriptors shared by the recorders of one
// event loop, so that a session holds a descriptor for its recording only while it writes.
// interlockd runs with one open-files limit for everything; a relayed session needs its two
// sockets, and a third descriptor per idle session would cap the sessions at a third of the
// limit instead of a half.
//
// Each recording file is a Slot. Get() returns its descriptor, opening the file again
// (O_WRONLY|O_APPEND|O_NOFOLLOW) when it was closed, and makes it the most recently used;
// once more than max_open slots hold a descriptor, the least recently used one is closed.
// A reopened path must still be the file the recorder created (same device and inode): a
// file swapped under the path fails the recording instead of continuing its chain elsewhere.
// What the recorder keeps in memory (sequence, chain head, buffer) does not depend on the
// descriptor, so a reopen changes nothing in the file: bytes are only ever appended.
//
//   FileCache files(512);
//   INTERLOCK_ASSIGN_OR_RETURN(FileCache::Slot slot, files.Adopt(path, std::move(fd)));
//   INTERLOCK_ASSIGN_OR_RETURN(int fd, slot.Get());   // opens it again after an eviction
//   ::write(fd, ...);
//   INTERLOCK_RETURN_IF_ERROR(slot.Close());          // the last use: close(2)'s result
//
// Not thread-safe: a cache and all its slots live on one event-loop thread. The cache must
// outlive its slots.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "userspace/common/unique_fd.h"

namespace interlock::record {

class FileCache {
  struct Entry;

 public:
  // A few hundred busy sessions keep their descriptors; the rest reopen on their next write.
  static constexpr size_t kDefaultMaxOpen = 512;

  // `max_open` >= 1: how many slots may hold a descriptor at once.
  explicit FileCache(size_t max_open);
  ~FileCache();
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // One file in the cache. Movable; destroying it closes its descriptor (if open) and
  // leaves the cache.
  class Slot {
   public:
    Slot() = default;
    ~Slot();
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

    // The open descriptor (owned by the slot; valid until the next call on this cache).
    // Errors: the errno status of a failed reopen ("reopen PATH: Too many open files"),
    // DATA_LOSS when PATH is no longer the file it was, the error close(2) gave when the
    // descriptor was evicted, FAILED_PRECONDITION after Close(). Callers treat any error as
    // the end of the recording.
    absl::StatusOr<int> Get();
    // Closes the descriptor for good and returns close(2)'s result (OK when not open).
    absl::Status Close();
    // Whether the slot holds a descriptor now (tests, metrics).
    bool is_open() const;
    const std::string& path() const;

   private:
    friend class FileCache;
    Slot(FileCache* cache, std::unique_ptr<Entry> entry);
    void Leave();

    FileCache* cache_ = nullptr;
    std::unique_ptr<Entry> entry_;
  };

  // Takes `fd`, an open descriptor of `path` (just created), as a new most recently used
  // slot; may evict the least recently used one. Errors: fstat's errno status.
  absl::StatusOr<Slot> Adopt(std::string path, UniqueFd fd);

  size_t open_count() const { return lru_.size(); }
  size_t max_open() const { return max_open_; }
  // Descriptors closed to make room, and files opened again, since creation.
  uint64_t evictions() const { return evictions_; }
  uint64_t reopens() const { return reopens_; }

 private:
  struct Entry {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
    UniqueFd fd;
    std::list<Entry*>::iterator lru_pos;  // valid while fd is open
    absl::Status error;                   // sticky: an eviction's close failed
    bool closed = false;                  // Close() was called
  };

  // Puts an entry whose fd was just opened at the front, evicting from the back.
  void Insert(Entry* e);
  void Touch(Entry* e);
  void Drop(Entry* e);  // closes e's fd (if open) and takes it off the list

  const size_t max_open_;
  std::list<Entry*> lru_;  // front: most recently used; every entry here has an open fd
  uint64_t evictions_ = 0;
  uint64_t reopens_ = 0;
};

}  // namespace interlock::record
