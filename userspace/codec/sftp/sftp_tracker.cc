// SftpTracker. Packet layouts: draft-ietf-secsh-filexfer-02 (SFTP version 3) section 3
// (framing), 4 (INIT/VERSION), 6 (requests), 7 (responses), 8 (EXTENDED); OpenSSH's
// extensions: PROTOCOL sections 4.x of openssh-portable; copy-data:
// draft-ietf-secsh-filexfer-extensions-00 section 7.
#include "userspace/codec/sftp/sftp_tracker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::sftp {
namespace {

// SSH_FXF_* open flags (draft-02 section 6.3), in the order FileOp::flags lists them.
constexpr struct {
  uint32_t bit;
  const char* word;
} kPflags[] = {{0x01, "read"},   {0x02, "write"},    {0x04, "append"},
               {0x08, "create"}, {0x10, "truncate"}, {0x20, "exclusive"}};

// SSH_FX_* status codes (draft-02 section 7).
constexpr const char* kStatusNames[] = {
    "ok",          "eof",           "no_such_file",    "permission_denied", "failure",
    "bad_message", "no_connection", "connection_lost", "op_unsupported"};

// How many bytes of a packet (type byte included) the tracker holds: a WRITE's header up
// to its data length field (the handle at its longest), a DATA's up to its length, only
// the id of listings and attributes; everything else whole.
size_t KeepLimit(bool client, uint8_t type, uint32_t length) {
  size_t limit = length;
  if (client) {
    if (type == kFxpInit) limit = 1 + 4;
    if (type == kFxpWrite) limit = 1 + 4 + 4 + kMaxHandleLength + 8 + 4;
  } else {
    if (type == kFxpVersion || type == kFxpName || type == kFxpAttrs || type == kFxpExtendedReply) {
      limit = 1 + 4;
    }
    if (type == kFxpData) limit = 1 + 4 + 4;
  }
  return std::min<size_t>(limit, length);
}

uint32_t Be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

std::string StatusText(uint32_t code, absl::string_view message) {
  if (code == 0) return "ok";
  std::string out =
      code < std::size(kStatusNames) ? kStatusNames[code] : absl::StrCat("status_", code);
  if (!message.empty()) {
    absl::StrAppend(&out, ": ", message.substr(0, kMaxStatusMessage));
  }
  return out;
}

absl::Status Malformed(absl::string_view what) { return absl::InvalidArgumentError(what); }

}  // namespace

// The fields of one packet after its type byte. `held` is what the framer kept of it;
// `declared` is how many bytes the packet has after the type byte, by its length field.
// A string whose length passes the packet's end is malformed.
class SftpTracker::Reader {
 public:
  Reader(absl::string_view held, size_t declared) : held_(held), declared_(declared) {}

  size_t declared_left() const { return declared_ - pos_; }

  absl::Status U32(uint32_t* out) {
    INTERLOCK_RETURN_IF_ERROR(Need(4, "uint32"));
    *out = Be32(held_.data() + pos_);
    pos_ += 4;
    return absl::OkStatus();
  }
  absl::Status U64(uint64_t* out) {
    uint32_t hi = 0, lo = 0;
    INTERLOCK_RETURN_IF_ERROR(U32(&hi));
    INTERLOCK_RETURN_IF_ERROR(U32(&lo));
    *out = (uint64_t{hi} << 32) | lo;
    return absl::OkStatus();
  }
  // A string of at most `max` bytes; `what` names it in errors.
  absl::Status String(std::string* out, size_t max, absl::string_view what) {
    uint32_t n = 0;
    INTERLOCK_RETURN_IF_ERROR(U32(&n));
    if (n > declared_left()) {
      return Malformed(absl::StrCat(what, ": string length ", n, " past packet end (",
                                    declared_left(), " bytes left)"));
    }
    if (n > max) {
      return absl::ResourceExhaustedError(absl::StrCat(what, ": length ", n, " > max ", max));
    }
    INTERLOCK_RETURN_IF_ERROR(Need(n, what));
    out->assign(held_.data() + pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }
  absl::Status Path(std::string* out) { return String(out, kMaxPathLength, "path"); }
  absl::Status HandleString(std::string* out) { return String(out, kMaxHandleLength, "handle"); }

 private:
  absl::Status Need(size_t n, absl::string_view what) {
    if (n > declared_left()) {
      return Malformed(absl::StrCat(what, " past packet end"));
    }
    // Only reachable if KeepLimit held too little: a broken invariant, reported anyway.
    if (n > held_.size() - pos_) return absl::InternalError(absl::StrCat(what, " not held"));
    return absl::OkStatus();
  }

  absl::string_view held_;
  size_t declared_;
  size_t pos_ = 0;
};

enum class SftpTracker::Kind : uint8_t {
  kOpen,      // OPEN: HANDLE or STATUS
  kOpendir,   // OPENDIR: HANDLE or STATUS
  kClose,     // CLOSE: STATUS; reports the handle
  kRead,      // READ: DATA or STATUS; counts bytes_read
  kReaddir,   // READDIR: NAME or STATUS
  kWrite,     // WRITE: STATUS (bytes_written counted at the request)
  kMetadata,  // stat & co: ATTRS, NAME, EXTENDED_REPLY or STATUS; counted only
  kChange,    // changes the file system: STATUS or EXTENDED_REPLY; reported
};

// Where a request's leading fields are (Layout::first, Layout::second).
enum class SftpTracker::Field : uint8_t { kNone, kPath, kHandle };

// A request whose leading fields are a path or handle and maybe a second path.
struct SftpTracker::Layout {
  uint8_t type;
  Kind kind;
  const char* op;  // kChange: FileOp::op
  Field first = Field::kNone;
  Field second = Field::kNone;
};

void SftpTracker::FromClient(absl::string_view bytes) { Feed(true, bytes); }
void SftpTracker::FromServer(absl::string_view bytes) { Feed(false, bytes); }

std::vector<FileOp> SftpTracker::TakeOps() { return std::exchange(done_, {}); }

void SftpTracker::Feed(bool client, absl::string_view bytes) {
  while (status_.ok() && !finished_ && !bytes.empty()) {
    absl::Status st = Frame(client, &bytes);
    if (!st.ok()) {
      status_ = Annotate(st, client ? "sftp: client" : "sftp: server");
      pending_.clear();
      handles_.clear();
      client_ = Framer{};
      server_ = Framer{};
    }
  }
}

// Consumes bytes of one packet (or its length field) and dispatches it when complete.
absl::Status SftpTracker::Frame(bool client, absl::string_view* bytes) {
  Framer& f = client ? client_ : server_;
  if (f.length_have < 4) {
    const size_t n = std::min(4 - f.length_have, bytes->size());
    std::copy_n(bytes->data(), n, f.length_bytes + f.length_have);
    f.length_have += n;
    bytes->remove_prefix(n);
    if (f.length_have < 4) return absl::OkStatus();
    f.length = Be32(f.length_bytes);
    if (f.length == 0) return Malformed("packet length 0");
    if (f.length > kMaxPacketLength) {
      return absl::ResourceExhaustedError(
          absl::StrCat("packet length ", f.length, " > max ", kMaxPacketLength));
    }
    f.remaining = f.length;
    f.held.clear();
    return absl::OkStatus();
  }
  if (bytes->empty()) return absl::OkStatus();
  if (f.remaining == f.length) {
    f.keep = KeepLimit(client, static_cast<uint8_t>((*bytes)[0]), f.length);
    f.held.reserve(f.keep);
  }
  const size_t n = std::min<size_t>(f.remaining, bytes->size());
  const size_t take = std::min(n, f.keep - f.held.size());
  f.held.append(bytes->data(), take);
  f.remaining -= n;
  bytes->remove_prefix(n);
  if (f.remaining > 0) return absl::OkStatus();
  f.length_have = 0;
  const std::string held = std::move(f.held);
  f.held.clear();
  return client ? OnClientPacket(f.length, held) : OnServerPacket(f.length, held);
}

absl::Status SftpTracker::AddPending(uint32_t id, Pending p) {
  if (pending_.size() >= kMaxOutstandingRequests) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", kMaxOutstandingRequests, " outstanding requests"));
  }
  if (!pending_.emplace(id, std::move(p)).second) {
    return Malformed(absl::StrCat("request id ", id, " reused while outstanding"));
  }
  return absl::OkStatus();
}

std::string SftpTracker::PathOfHandle(const std::string& handle) const {
  auto it = handles_.find(handle);
  return it == handles_.end() ? std::string() : it->second.path;
}

absl::Status SftpTracker::OnClientPacket(uint32_t length, absl::string_view held) {
  const uint8_t type = static_cast<uint8_t>(held[0]);
  Reader r(held.substr(1), length - 1);
  if (!client_init_seen_) {
    if (type != kFxpInit) return Malformed(absl::StrCat("first packet type ", type, ", not init"));
    uint32_t version = 0;
    INTERLOCK_RETURN_IF_ERROR(r.U32(&version));  // the server answers with its own
    client_init_seen_ = true;
    return absl::OkStatus();
  }
  if (type == kFxpInit) return Malformed("second init");
  uint32_t id = 0;
  INTERLOCK_RETURN_IF_ERROR(r.U32(&id));
  // The requests of draft-02 section 6 by their leading fields; what follows those (ATTRS,
  // READ's offset and length) is not needed. OPEN and WRITE are read below.
  static constexpr Layout kRequests[] = {
      {kFxpOpendir, Kind::kOpendir, "", Field::kPath},
      {kFxpClose, Kind::kClose, "", Field::kHandle},
      {kFxpRead, Kind::kRead, "", Field::kHandle},
      {kFxpReaddir, Kind::kReaddir, "", Field::kHandle},
      {kFxpLstat, Kind::kMetadata, "", Field::kPath},
      {kFxpStat, Kind::kMetadata, "", Field::kPath},
      {kFxpRealpath, Kind::kMetadata, "", Field::kPath},
      {kFxpReadlink, Kind::kMetadata, "", Field::kPath},
      {kFxpFstat, Kind::kMetadata, "", Field::kHandle},
      {kFxpSetstat, Kind::kChange, "setstat", Field::kPath},
      {kFxpFsetstat, Kind::kChange, "setstat", Field::kHandle},
      {kFxpRemove, Kind::kChange, "remove", Field::kPath},
      {kFxpMkdir, Kind::kChange, "mkdir", Field::kPath},
      {kFxpRmdir, Kind::kChange, "rmdir", Field::kPath},
      {kFxpRename, Kind::kChange, "rename", Field::kPath, Field::kPath},
      {kFxpSymlink, Kind::kChange, "symlink", Field::kPath, Field::kPath},
  };
  if (type == kFxpExtended) return OnExtendedRequest(id, r);
  Pending p{.kind = Kind::kChange, .type = type};
  if (type == kFxpOpen) {
    p.kind = Kind::kOpen;
    INTERLOCK_RETURN_IF_ERROR(r.Path(&p.path));
    INTERLOCK_RETURN_IF_ERROR(r.U32(&p.pflags));  // the ATTRS that follow are not needed
  } else if (type == kFxpWrite) {
    p.kind = Kind::kWrite;
    uint64_t offset = 0;
    uint32_t data = 0;
    INTERLOCK_RETURN_IF_ERROR(r.HandleString(&p.handle));
    INTERLOCK_RETURN_IF_ERROR(r.U64(&offset));
    INTERLOCK_RETURN_IF_ERROR(r.U32(&data));
    if (data > r.declared_left()) {
      return Malformed(absl::StrCat("write: data length ", data, " past packet end"));
    }
    // Counted as sent, whatever the server answers: the bytes left the agent.
    auto it = handles_.find(p.handle);
    if (it != handles_.end()) it->second.bytes_written += data;
  } else {
    const Layout* layout = nullptr;
    for (const Layout& l : kRequests) {
      if (l.type == type) layout = &l;
    }
    if (layout == nullptr) return Malformed(absl::StrCat("unexpected packet type ", type));
    INTERLOCK_RETURN_IF_ERROR(ReadLayout(*layout, r, &p));
  }
  return AddPending(id, std::move(p));
}

// Fills a request's kind, op and leading fields by its layout; a handle where a path is
// reported stands for the path it was opened with.
absl::Status SftpTracker::ReadLayout(const Layout& layout, Reader& r, Pending* p) {
  p->kind = layout.kind;
  p->op = layout.op;
  if (layout.first == Field::kPath) INTERLOCK_RETURN_IF_ERROR(r.Path(&p->path));
  if (layout.first == Field::kHandle) {
    INTERLOCK_RETURN_IF_ERROR(r.HandleString(&p->handle));
    if (layout.kind == Kind::kChange) p->path = PathOfHandle(p->handle);
  }
  if (layout.second == Field::kPath) INTERLOCK_RETURN_IF_ERROR(r.Path(&p->target));
  if (layout.kind == Kind::kMetadata) ++metadata_requests_;
  return absl::OkStatus();
}

// SSH_FXP_EXTENDED (draft-02 section 8): the request name, then its own fields.
absl::Status SftpTracker::OnExtendedRequest(uint32_t id, Reader& r) {
  std::string name;
  INTERLOCK_RETURN_IF_ERROR(r.String(&name, kMaxPathLength, "extended request name"));
  // OpenSSH's extensions (PROTOCOL section 4) by their fields; limits, home-directory and
  // users-groups-by-id name no file.
  static constexpr struct {
    const char* name;
    Layout layout;
  } kExtensions[] = {
      {"posix-rename@openssh.com",
       {kFxpExtended, Kind::kChange, "rename", Field::kPath, Field::kPath}},
      {"hardlink@openssh.com", {kFxpExtended, Kind::kChange, "link", Field::kPath, Field::kPath}},
      {"lsetstat@openssh.com", {kFxpExtended, Kind::kChange, "setstat", Field::kPath}},
      {"statvfs@openssh.com", {kFxpExtended, Kind::kMetadata, "", Field::kPath}},
      {"expand-path@openssh.com", {kFxpExtended, Kind::kMetadata, "", Field::kPath}},
      {"fstatvfs@openssh.com", {kFxpExtended, Kind::kMetadata, "", Field::kHandle}},
      {"fsync@openssh.com", {kFxpExtended, Kind::kMetadata, "", Field::kHandle}},
      {"limits@openssh.com", {kFxpExtended, Kind::kMetadata, ""}},
      {"home-directory", {kFxpExtended, Kind::kMetadata, ""}},
      {"users-groups-by-id@openssh.com", {kFxpExtended, Kind::kMetadata, ""}},
  };
  Pending p{.kind = Kind::kChange, .type = kFxpExtended};
  if (name == "copy-data") {
    // read-from-handle, read-from-offset, read-data-length, write-to-handle, write-to-offset
    std::string from, to;
    uint64_t offset = 0;
    p.op = "copy-data";
    INTERLOCK_RETURN_IF_ERROR(r.HandleString(&from));
    INTERLOCK_RETURN_IF_ERROR(r.U64(&offset));
    INTERLOCK_RETURN_IF_ERROR(r.U64(&p.length));
    INTERLOCK_RETURN_IF_ERROR(r.HandleString(&to));
    p.path = PathOfHandle(from);
    p.target = PathOfHandle(to);
    return AddPending(id, std::move(p));
  }
  for (const auto& e : kExtensions) {
    if (name == e.name) {
      INTERLOCK_RETURN_IF_ERROR(ReadLayout(e.layout, r, &p));
      return AddPending(id, std::move(p));
    }
  }
  p.op = absl::StrCat("extended:", name);
  return AddPending(id, std::move(p));
}

absl::Status SftpTracker::OnServerPacket(uint32_t length, absl::string_view held) {
  const uint8_t type = static_cast<uint8_t>(held[0]);
  Reader r(held.substr(1), length - 1);
  if (!server_version_seen_) {
    if (type != kFxpVersion) {
      return Malformed(absl::StrCat("first packet type ", type, ", not version"));
    }
    uint32_t version = 0;
    INTERLOCK_RETURN_IF_ERROR(r.U32(&version));
    if (version != 3) {
      return absl::FailedPreconditionError(absl::StrCat("version ", version, ", not 3"));
    }
    server_version_seen_ = true;  // the extension pairs that follow are not needed
    return absl::OkStatus();
  }
  uint32_t id = 0;
  INTERLOCK_RETURN_IF_ERROR(r.U32(&id));
  return OnResponse(type, id, r);
}

absl::Status SftpTracker::OnResponse(uint8_t type, uint32_t id, Reader& r) {
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    return Malformed(absl::StrCat("response type ", type, " to unknown request id ", id));
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  const auto unexpected = [&] {
    return Malformed(
        absl::StrCat("response type ", type, " to request type ", p.type, " (id ", id, ")"));
  };
  std::string status;
  if (type == kFxpStatus) {
    uint32_t code = 0;
    std::string message;
    INTERLOCK_RETURN_IF_ERROR(r.U32(&code));
    // draft-02 adds message and language tag; servers older than it send only the code.
    if (r.declared_left() > 0) {
      INTERLOCK_RETURN_IF_ERROR(r.String(&message, kMaxPacketLength, "status message"));
    }
    status = StatusText(code, message);
  }
  switch (p.kind) {
    case Kind::kOpen:
    case Kind::kOpendir:
      if (type == kFxpHandle) {
        std::string handle;
        INTERLOCK_RETURN_IF_ERROR(r.HandleString(&handle));
        auto old = handles_.find(handle);
        if (old != handles_.end()) {  // the server reused a handle the client never closed
          ReportHandle(handle, std::move(old->second), "not_closed");
        } else if (handles_.size() >= kMaxOpenHandles) {
          return absl::ResourceExhaustedError(
              absl::StrCat("more than ", kMaxOpenHandles, " open handles"));
        }
        handles_[handle] = Handle{.order = handle_order_++,
                                  .dir = p.kind == Kind::kOpendir,
                                  .path = std::move(p.path),
                                  .pflags = p.pflags};
        return absl::OkStatus();
      }
      if (type != kFxpStatus) return unexpected();
      done_.push_back(OpFromPending(p, std::move(status)));
      return absl::OkStatus();
    case Kind::kClose: {
      if (type != kFxpStatus) return unexpected();
      auto h = handles_.find(p.handle);
      if (h != handles_.end()) ReportHandle(p.handle, std::move(h->second), std::move(status));
      return absl::OkStatus();
    }
    case Kind::kRead:
      if (type == kFxpData) {
        uint32_t n = 0;
        INTERLOCK_RETURN_IF_ERROR(r.U32(&n));
        if (n > r.declared_left()) {
          return Malformed(absl::StrCat("data: length ", n, " past packet end"));
        }
        auto h = handles_.find(p.handle);
        if (h != handles_.end()) h->second.bytes_read += n;
        return absl::OkStatus();
      }
      return type == kFxpStatus ? absl::OkStatus() : unexpected();
    case Kind::kReaddir:
      return type == kFxpName || type == kFxpStatus ? absl::OkStatus() : unexpected();
    case Kind::kWrite:
      return type == kFxpStatus ? absl::OkStatus() : unexpected();
    case Kind::kMetadata:
      return type == kFxpStatus || type == kFxpAttrs || type == kFxpName ||
                     type == kFxpExtendedReply
                 ? absl::OkStatus()
                 : unexpected();
    case Kind::kChange:
      if (type == kFxpExtendedReply) {
        status = "ok";
      } else if (type != kFxpStatus) {
        return unexpected();
      }
      done_.push_back(OpFromPending(p, std::move(status)));
      return absl::OkStatus();
  }
  return unexpected();
}

void SftpTracker::ReportHandle(const std::string& handle, Handle h, std::string status) {
  FileOp op;
  op.op = h.dir ? "opendir" : "open";
  op.path = std::move(h.path);
  if (!h.dir) {
    for (const auto& f : kPflags) {
      if (h.pflags & f.bit) op.flags.push_back(f.word);
    }
  }
  op.bytes_read = h.bytes_read;
  op.bytes_written = h.bytes_written;
  op.status = std::move(status);
  done_.push_back(std::move(op));
  handles_.erase(handle);
}

FileOp SftpTracker::OpFromPending(const Pending& p, std::string status) const {
  FileOp op;
  op.op = p.kind == Kind::kOpen ? "open" : p.kind == Kind::kOpendir ? "opendir" : p.op;
  op.path = p.path;
  op.target = p.target;
  if (p.kind == Kind::kOpen) {
    for (const auto& f : kPflags) {
      if (p.pflags & f.bit) op.flags.push_back(f.word);
    }
  }
  if (p.op == "copy-data") op.bytes_written = p.length;
  op.status = std::move(status);
  return op;
}

std::vector<FileOp> SftpTracker::Finish() {
  if (status_.ok() && !finished_) {
    std::vector<std::pair<uint64_t, std::string>> open;
    for (const auto& [handle, h] : handles_) open.emplace_back(h.order, handle);
    std::sort(open.begin(), open.end());
    for (const auto& [order, handle] : open) {
      ReportHandle(handle, std::move(handles_[handle]), "not_closed");
    }
    std::vector<uint32_t> ids;
    for (const auto& [id, p] : pending_) {
      if (p.kind == Kind::kOpen || p.kind == Kind::kOpendir || p.kind == Kind::kChange) {
        ids.push_back(id);
      }
    }
    std::sort(ids.begin(), ids.end());
    for (uint32_t id : ids) done_.push_back(OpFromPending(pending_[id], "no_response"));
    pending_.clear();
  }
  finished_ = true;
  return TakeOps();
}

}  // namespace interlock::codec::sftp
