#include "userspace/record/file_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"

namespace interlock::record {

FileCache::FileCache(size_t max_open) : max_open_(max_open < 1 ? 1 : max_open) {}

FileCache::~FileCache() {
  // Slots must not outlive the cache; any still listed here lose their descriptor now.
  for (Entry* e : lru_) e->fd.Reset();
  lru_.clear();
}

absl::StatusOr<FileCache::Slot> FileCache::Adopt(std::string path, UniqueFd fd) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
  auto e = std::make_unique<Entry>();
  e->path = std::move(path);
  e->dev = st.st_dev;
  e->ino = st.st_ino;
  e->fd = std::move(fd);
  Insert(e.get());
  return Slot(this, std::move(e));
}

void FileCache::Insert(Entry* e) {
  lru_.push_front(e);
  e->lru_pos = lru_.begin();
  while (lru_.size() > max_open_) {
    Entry* victim = lru_.back();
    // A regular file's close(2) rarely fails, but when it does the bytes written through
    // this descriptor may be lost: the victim's recording fails on its next use.
    if (::close(victim->fd.Release()) != 0 && victim->error.ok()) {
      victim->error = ErrnoStatus(errno, absl::StrCat("close ", victim->path));
    }
    lru_.pop_back();
    ++evictions_;
  }
}

void FileCache::Touch(Entry* e) {
  if (e->lru_pos != lru_.begin()) lru_.splice(lru_.begin(), lru_, e->lru_pos);
}

void FileCache::Drop(Entry* e) {
  if (!e->fd) return;
  lru_.erase(e->lru_pos);
  e->fd.Reset();
}

FileCache::Slot::Slot(FileCache* cache, std::unique_ptr<Entry> entry)
    : cache_(cache), entry_(std::move(entry)) {}

FileCache::Slot::~Slot() { Leave(); }

FileCache::Slot::Slot(Slot&& other) noexcept
    : cache_(std::exchange(other.cache_, nullptr)), entry_(std::move(other.entry_)) {}

FileCache::Slot& FileCache::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Leave();
    cache_ = std::exchange(other.cache_, nullptr);
    entry_ = std::move(other.entry_);
  }
  return *this;
}

void FileCache::Slot::Leave() {
  if (cache_ != nullptr && entry_ != nullptr) cache_->Drop(entry_.get());
  entry_.reset();
  cache_ = nullptr;
}

bool FileCache::Slot::is_open() const { return entry_ != nullptr && entry_->fd.valid(); }

const std::string& FileCache::Slot::path() const {
  static const std::string* const kNone = new std::string();
  return entry_ != nullptr ? entry_->path : *kNone;
}

absl::StatusOr<int> FileCache::Slot::Get() {
  if (entry_ == nullptr || entry_->closed) {
    return absl::FailedPreconditionError(absl::StrCat("file ", path(), ": closed"));
  }
  Entry* e = entry_.get();
  if (!e->error.ok()) return e->error;
  if (e->fd) {
    cache_->Touch(e);
    return e->fd.get();
  }
  // Evicted: open the same file again. O_APPEND as at creation, so every write lands at
  // the end whatever the offset; O_NOFOLLOW and the inode check refuse a path that now
  // leads somewhere else.
  UniqueFd fd(::open(e->path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("reopen ", e->path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", e->path));
  if (st.st_dev != e->dev || st.st_ino != e->ino) {
    e->error = absl::DataLossError(
        absl::StrCat("reopen ", e->path, ": not the file this recording created (replaced)"));
    return e->error;
  }
  e->fd = std::move(fd);
  ++cache_->reopens_;
  cache_->Insert(e);
  return e->fd.get();
}

absl::Status FileCache::Slot::Close() {
  if (entry_ == nullptr || entry_->closed) return absl::OkStatus();
  Entry* e = entry_.get();
  e->closed = true;
  if (!e->fd) return absl::OkStatus();
  cache_->lru_.erase(e->lru_pos);
  if (::close(e->fd.Release()) != 0) return ErrnoStatus(errno, absl::StrCat("close ", e->path));
  return absl::OkStatus();
}

}  // namespace interlock::record
