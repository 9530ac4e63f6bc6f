#include "userspace/record/recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "userspace/common/utf8.h"
#include "google/protobuf/message.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/sha256.h"
#include "userspace/common/status_macros.h"
#include "userspace/record/format.h"

namespace interlock::record {
namespace {

std::string Cut(absl::string_view s) { return std::string(s.substr(0, Recorder::kMaxTextBytes)); }

// Applies MakeValidUtf8 to every set string field of `msg`, recursively.
void SanitizeStrings(google::protobuf::Message& msg) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* refl = msg.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl->ListFields(msg, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int k = 0; k < refl->FieldSize(msg, f); ++k) {
          std::string v = refl->GetRepeatedString(msg, f, k);
          MakeValidUtf8(v);
          refl->SetRepeatedString(&msg, f, k, std::move(v));
        }
      } else {
        std::string v = refl->GetString(msg, f);
        MakeValidUtf8(v);
        refl->SetString(&msg, f, std::move(v));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int k = 0; k < refl->FieldSize(msg, f); ++k) {
          SanitizeStrings(*refl->MutableRepeatedMessage(&msg, f, k));
        }
      } else {
        SanitizeStrings(*refl->MutableMessage(&msg, f));
      }
    }
  }
}

}  // namespace

Recorder::Recorder(std::string path, std::string session_id, const RecordingKey& key,
                   const Clock& clock)
    : path_(std::move(path)),
      session_id_(std::move(session_id)),
      key_(key),
      clock_(clock),
      prev_hash_(ZeroHash()) {}

absl::StatusOr<std::unique_ptr<Recorder>> Recorder::Create(const std::string& path,
                                                           v1::SessionOpen open,
                                                           const RecordingKey& key,
                                                           const Clock& clock,
                                                           const RecorderOptions& options) {
  if (open.session_id().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("record: ", path, ": empty session id"));
  }
  open.set_key_fingerprint(key.Fingerprint());
  std::unique_ptr<SealingStream> sealer;
  open.clear_sealed_originals_key();
  open.clear_auditor_key_fingerprint();
  if (!options.auditor_public_key.empty()) {
    auto s = SealingStream::Create(options.auditor_public_key);
    if (!s.ok()) return Annotate(s.status(), absl::StrCat("record: ", path));
    sealer = *std::move(s);
    open.set_sealed_originals_key(sealer->ephemeral_public_key());
    open.set_auditor_key_fingerprint(sealer->auditor_fingerprint());
  }
  UniqueFd fd;
  if (options.spares != nullptr) {
    if (UniqueFd spare = options.spares->Take()) {
      absl::Status linked = SpareFiles::Link(spare.get(), path);
      if (absl::IsAlreadyExists(linked)) return linked;
      // Another failure (a spare from another file system, ...): create the file as below,
      // whose error, if there is one, is the one to report.
      if (linked.ok()) fd = std::move(spare);
    }
  }
  if (!fd) fd = UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("record: create ", path));
  std::string session_id = open.session_id();
  std::unique_ptr<Recorder> rec(new Recorder(path, std::move(session_id), key, clock));
  FileCache* files = options.files;
  if (files == nullptr) {
    rec->own_files_ = std::make_unique<FileCache>(1);
    files = rec->own_files_.get();
  }
  auto slot = files->Adopt(path, std::move(fd));
  if (!slot.ok()) {
    rec->closed_ = true;
    ::unlink(path.c_str());
    return Annotate(slot.status(), "record");
  }
  rec->file_ = *std::move(slot);
  rec->sealer_ = std::move(sealer);
  v1::Record record;
  *record.mutable_open() = std::move(open);
  absl::Status st = rec->Append(record);
  // Record 0 goes to disk now: a session that cannot be recorded should fail at start.
  if (st.ok()) st = rec->Flush();
  if (!st.ok()) {
    rec->closed_ = true;  // nothing more to write; the destructor must not retry
    (void)rec->file_.Close();
    ::unlink(path.c_str());
    return st;
  }
  return rec;
}

Recorder::~Recorder() {
  if (!closed_ && status_.ok()) (void)Flush();
}

absl::Status Recorder::CheckWritable() const {
  if (!status_.ok()) return status_;
  if (closed_) {
    return absl::FailedPreconditionError(absl::StrCat("record: ", path_, ": already closed"));
  }
  return absl::OkStatus();
}

absl::Status Recorder::Append(v1::Record& record) {
  record.set_seq(next_seq_);
  record.set_prev_hash(prev_hash_);
  record.set_time_unix_nanos(absl::ToUnixNanos(clock_.Now()));
  // data and sealed records carry only bytes and numbers (SSH data: bytes and a stream)
  if (!record.has_data() && !record.has_sealed() && !(record.has_ssh() && record.ssh().has_data())) {
    SanitizeStrings(record);
  }
  std::string bytes;
  if (!record.SerializeToString(&bytes)) {
    return absl::InternalError(
        absl::StrFormat("record: %s: record %d: serialize failed", path_, next_seq_));
  }
  if (bytes.size() > kMaxRecordBytes) {
    // Not sticky: nothing was written and the chain is unchanged.
    return absl::InvalidArgumentError(absl::StrFormat("record: %s: record %d: %d bytes > max %d",
                                                      path_, next_seq_, bytes.size(),
                                                      kMaxRecordBytes));
  }
  const bool was_empty = buffer_.empty();
  buffer_.append(EncodeFrame(bytes));
  prev_hash_ = HashRecord(bytes);
  ++next_seq_;
  if (was_empty && on_buffered_) on_buffered_();
  if (buffer_.size() > kFlushThresholdBytes) return WriteBuffer();
  return absl::OkStatus();
}

absl::Status Recorder::Appended(size_t record_start, bool was_empty) {
  // The record's bytes run from record_start to the end of the buffer.
  Sha256Digest md = Sha256(absl::string_view(buffer_).substr(record_start));
  prev_hash_.assign(reinterpret_cast<const char*>(md.data()), md.size());
  ++next_seq_;
  if (was_empty && on_buffered_) on_buffered_();
  if (buffer_.size() > kFlushThresholdBytes) return WriteBuffer();
  return absl::OkStatus();
}

absl::Status Recorder::WriteBuffer() {
  absl::StatusOr<int> fd = file_.Get();
  if (!fd.ok()) {
    status_ = Annotate(fd.status(), "record");
    return status_;
  }
  size_t off = 0;
  while (off < buffer_.size()) {
    ssize_t n = ::write(*fd, buffer_.data() + off, buffer_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      status_ = ErrnoStatus(errno, absl::StrCat("record: write ", path_));
      buffer_.erase(0, off);
      return status_;
    }
    off += static_cast<size_t>(n);
  }
  buffer_.clear();
  return absl::OkStatus();
}

absl::Status Recorder::AppendData(v1::Direction direction, absl::string_view bytes) {
  INTERLOCK_RETURN_IF_ERROR(CheckWritable());
  if (direction != v1::DIRECTION_TO_UPSTREAM && direction != v1::DIRECTION_TO_AGENT) {
    return absl::InvalidArgumentError(
        absl::StrFormat("record: %s: data: bad direction %d", path_, direction));
  }
  while (!bytes.empty()) {
    absl::string_view chunk = bytes.substr(0, kMaxPayloadBytes);
    bytes.remove_prefix(chunk.size());
    // Encoded straight into the buffer (format.h AppendDataFrame): the same bytes as
    // Append(v1::Record) would write, without a message and three copies of the payload.
    const bool was_empty = buffer_.empty();
    size_t start = AppendDataFrame(&buffer_, next_seq_, prev_hash_, absl::ToUnixNanos(clock_.Now()),
                                   static_cast<uint32_t>(direction), chunk);
    INTERLOCK_RETURN_IF_ERROR(Appended(start, was_empty));
    (direction == v1::DIRECTION_TO_UPSTREAM ? bytes_to_upstream_ : bytes_to_agent_) += chunk.size();
  }
  return absl::OkStatus();
}

absl::Status Recorder::AppendSealed(v1::Direction direction, absl::string_view bytes) {
  INTERLOCK_RETURN_IF_ERROR(CheckWritable());
  if (sealer_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("record: ", path_, ": sealed: originals are not kept (no auditor key)"));
  }
  if (direction != v1::DIRECTION_TO_UPSTREAM && direction != v1::DIRECTION_TO_AGENT) {
    return absl::InvalidArgumentError(
        absl::StrFormat("record: %s: sealed: bad direction %d", path_, direction));
  }
  while (!bytes.empty()) {
    absl::string_view chunk = bytes.substr(0, kMaxPayloadBytes);
    bytes.remove_prefix(chunk.size());
    // The AAD binds the box to this session and to the seq Append is about to give it.
    auto box = sealer_->Seal(chunk, SealedDataAad(session_id_, next_seq_));
    if (!box.ok()) return Annotate(box.status(), absl::StrCat("record: ", path_));
    v1::Record record;
    v1::SealedData* sealed = record.mutable_sealed();
    sealed->set_direction(direction);
    sealed->set_counter(box->counter);
    sealed->set_ciphertext(std::move(box->ciphertext));
    INTERLOCK_RETURN_IF_ERROR(Append(record));
    sealed_bytes_ += chunk.size();
  }
  return absl::OkStatus();
}

absl::Status Recorder::AppendEvent(absl::string_view kind, absl::string_view detail) {
  INTERLOCK_RETURN_IF_ERROR(CheckWritable());
  std::string k = Cut(kind);
  std::string d = Cut(detail);
  MakeValidUtf8(k);
  MakeValidUtf8(d);
  const bool was_empty = buffer_.empty();
  size_t start = AppendEventFrame(&buffer_, next_seq_, prev_hash_, absl::ToUnixNanos(clock_.Now()), k, d);
  return Appended(start, was_empty);
}

absl::Status Recorder::AppendSsh(const v1::SshEvent& event) {
  INTERLOCK_RETURN_IF_ERROR(CheckWritable());
  if (!event.has_data()) {
    v1::Record record;
    *record.mutable_ssh() = event;
    return Append(record);
  }
  absl::string_view bytes = event.data().payload();
  const bool to_upstream = event.data().stream() == v1::SSH_STREAM_STDIN;
  while (!bytes.empty()) {
    absl::string_view chunk = bytes.substr(0, kMaxPayloadBytes);
    bytes.remove_prefix(chunk.size());
    v1::Record record;
    v1::SshEvent* e = record.mutable_ssh();
    e->set_channel(event.channel());
    e->mutable_data()->set_stream(event.data().stream());
    e->mutable_data()->set_payload(std::string(chunk));
    INTERLOCK_RETURN_IF_ERROR(Append(record));
    (to_upstream ? bytes_to_upstream_ : bytes_to_agent_) += chunk.size();
  }
  return absl::OkStatus();
}

absl::Status Recorder::Flush() {
  INTERLOCK_RETURN_IF_ERROR(CheckWritable());
  if (buffer_.empty()) return absl::OkStatus();
  INTERLOCK_RETURN_IF_ERROR(WriteBuffer());
  // Flush runs once per event-loop batch: a session that wrote now gets a new buffer when it
  // writes again, and one that went idle keeps none (a busy one refills it past the
  // threshold without a Flush in between, and keeps its capacity then).
  std::string().swap(buffer_);
  return absl::OkStatus();
}

absl::Status Recorder::Close(v1::SessionClose close) {
  INTERLOCK_RETURN_IF_ERROR(CheckWritable());
  closed_ = true;
  close.set_bytes_to_upstream(bytes_to_upstream_);
  close.set_bytes_to_agent(bytes_to_agent_);
  close.set_outcome(Cut(close.outcome()));
  close.set_detail(Cut(close.detail()));

  absl::Status st = [&]() -> absl::Status {
    v1::Record close_record;
    *close_record.mutable_close() = std::move(close);
    INTERLOCK_RETURN_IF_ERROR(Append(close_record));
    // The seal record's own bytes are covered by nothing after it, so it carries the close
    // record's time (the verifier insists) instead of a second, unauthenticated clock read.
    const int64_t close_time = close_record.time_unix_nanos();

    const uint64_t seal_seq = next_seq_;
    INTERLOCK_ASSIGN_OR_RETURN(std::string signature,
                               key_.Sign(SealMessage(session_id_, seal_seq, prev_hash_)));
    v1::Record seal_record;
    seal_record.set_seq(seal_seq);
    seal_record.set_prev_hash(prev_hash_);
    seal_record.set_time_unix_nanos(close_time);
    seal_record.mutable_seal()->set_signature(std::move(signature));
    seal_record.mutable_seal()->set_key_fingerprint(key_.Fingerprint());
    std::string bytes;
    if (!seal_record.SerializeToString(&bytes)) {
      return absl::InternalError(absl::StrCat("record: ", path_, ": seal: serialize failed"));
    }
    buffer_.append(EncodeFrame(bytes));
    prev_hash_ = HashRecord(bytes);
    ++next_seq_;
    if (!buffer_.empty()) INTERLOCK_RETURN_IF_ERROR(WriteBuffer());
    // A sealed recording is evidence: make it durable before reporting the session over.
    // (fsync covers the file's data whichever descriptor wrote it, the evicted ones too.)
    absl::StatusOr<int> fd = file_.Get();
    if (!fd.ok()) return Annotate(fd.status(), "record");
    if (::fsync(*fd) != 0) {
      return ErrnoStatus(errno, absl::StrCat("record: fsync ", path_));
    }
    return Annotate(file_.Close(), "record");
  }();
  (void)file_.Close();
  std::string().swap(buffer_);
  if (!st.ok() && status_.ok()) status_ = st;
  return st;
}

}  // namespace interlock::record
