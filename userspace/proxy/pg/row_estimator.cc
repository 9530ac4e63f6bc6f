#include "userspace/proxy/pg/row_estimator.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "userspace/auth/scram.h"
#include "userspace/auth/secret.h"
#include "userspace/codec/json/tokenizer.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/proxy/pg/upstream_login.h"

namespace interlock::proxy::pg {

namespace cpg = ::interlock::codec::pg;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr char kApplicationName[] = "interlockd-estimator";
constexpr char kExplainPrefix[] = "EXPLAIN (FORMAT JSON) ";
constexpr absl::Duration kClientDeadlineGrace = absl::Seconds(1);
// Repeated Int16-counted elements of Parse and Bind (encode.h precondition).
constexpr size_t kMaxParams = 65535;
// Keeps [ { "Plan": { ..., "Plans": [ { <first child> } ] } } ]: ModifyTable's input is the
// first child (depth 5); everything deeper becomes null before the tokenizer sees it (its
// depth limit stays far away, and no deeper byte is looked at twice).
constexpr int kKeepJsonDepth = 5;

bool IsTlsOnly(absl::string_view mode) {
  return mode == "require" || mode == "verify-ca" || mode == "verify-full";
}

short PollEventsFor(net::TlsWant want, short plain) {
  switch (want) {
    case net::TlsWant::kRead:
      return POLLIN;
    case net::TlsWant::kWrite:
      return POLLOUT;
    case net::TlsWant::kNone:
      break;
  }
  return plain;
}

// Server errors that say nothing about the statement: the server cannot plan right now
// (PostgreSQL docs, Appendix A): transaction rollback (40: deadlock), insufficient resources
// (53), operator intervention (57: 57014 statement_timeout), system errors (58), internal
// errors (XX), and lock_timeout (55P03).
bool IsServerSideFailure(absl::string_view sqlstate) {
  for (absl::string_view cls : {"40", "53", "57", "58", "XX"}) {
    if (absl::StartsWith(sqlstate, cls)) return true;
  }
  return sqlstate == "55P03";
}

// A copy of `r` that shares no heap state with it. absl::Status copies share a refcounted
// message; handing the loop thread its own keeps the two threads' objects independent
// (and ThreadSanitizer, which cannot see the refcount inside libabsl, quiet).
absl::StatusOr<int64_t> Unshared(const absl::StatusOr<int64_t>& r) {
  if (r.ok()) return *r;
  return absl::Status(r.status().code(), std::string(r.status().message()));
}

absl::string_view Severity(const cpg::ResponseFields& e) {
  std::optional<absl::string_view> v = e.Find(cpg::field::kSeverityNonLocalized);
  return v.has_value() ? *v : e.severity();
}

}  // namespace

std::string PruneJsonDepth(absl::string_view json, int keep_depth) {
  std::string out;
  out.reserve(std::min<size_t>(json.size(), 64 * 1024));
  int depth = 0;
  int skip_depth = 0;  // > 0: inside a pruned container opened at this depth
  bool in_string = false;
  bool escaped = false;
  for (char c : json) {
    if (in_string) {
      if (skip_depth == 0) out.push_back(c);
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        ++depth;
        if (skip_depth == 0 && depth > keep_depth) {
          skip_depth = depth;
          out.append("null");
          continue;
        }
        break;
      case ']':
      case '}':
        if (skip_depth != 0 && depth == skip_depth) {
          --depth;
          skip_depth = 0;
          continue;
        }
        --depth;
        break;
      default:
        break;
    }
    if (skip_depth == 0) out.push_back(c);
  }
  return out;
}

absl::StatusOr<int64_t> PlanRowsFromExplainJson(absl::string_view json) {
  if (json.size() > kMaxExplainBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("explain output of ", json.size(), " bytes > max ", kMaxExplainBytes));
  }
  // One pass of the strict tokenizer over the pruned text, keeping only the three members
  // that matter (a plan's JSON is mostly what it says about other nodes: no tree is built).
  std::string pruned = PruneJsonDepth(json, kKeepJsonDepth);
  struct Member {
    bool seen = false;
    codec::json::JsonTokenType type = codec::json::JsonTokenType::kNull;
    std::string raw;
  };
  Member top, top_type, child_rows;
  bool plan_seen = false;
  codec::json::JsonTokenizer tokenizer({.refuse_duplicate_keys = true});
  auto sink = [&](const codec::json::JsonToken& t) -> absl::Status {
    if (!codec::json::IsScalarValue(t.type)) {
      if (t.type == codec::json::JsonTokenType::kBeginObject && t.pointer == "/0/Plan") plan_seen = true;
      return absl::OkStatus();
    }
    Member* m = t.pointer == "/0/Plan/Plan Rows"           ? &top
                : t.pointer == "/0/Plan/Node Type"         ? &top_type
                : t.pointer == "/0/Plan/Plans/0/Plan Rows" ? &child_rows
                                                            : nullptr;
    if (m != nullptr) *m = Member{true, t.type, std::string(t.raw)};
    return absl::OkStatus();
  };
  absl::Status st = tokenizer.Feed(pruned, sink);
  if (st.ok()) st = tokenizer.Finish(sink);
  if (!st.ok()) return absl::InternalError(absl::StrCat("explain output is not json: ", st.message()));
  if (!plan_seen) return absl::InternalError("explain output: no [0].Plan");
  // ModifyTable (INSERT, UPDATE, DELETE, MERGE) reports 0 rows unless there is RETURNING;
  // the rows it would change are the rows of its input, the first child plan.
  const Member* rows = &top;
  std::string node_type;
  if (top_type.seen && top_type.type == codec::json::JsonTokenType::kString &&
      codec::json::DecodeJsonString(top_type.raw, &node_type).ok() && node_type == "ModifyTable") {
    if (!child_rows.seen) return absl::InternalError("explain output: ModifyTable without an input plan");
    rows = &child_rows;
  }
  double n = 0;
  if (!rows->seen || rows->type != codec::json::JsonTokenType::kNumber || !absl::SimpleAtod(rows->raw, &n)) {
    return absl::InternalError("explain output: no numeric \"Plan Rows\"");
  }
  if (!(n >= 0)) return absl::InternalError(absl::StrCat("explain output: \"Plan Rows\" ", n));
  // 2^63 is exactly representable; anything at or above it does not fit.
  if (n >= 9223372036854775808.0) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(std::llround(n));
}

// ---------------------------------------------------------------------------------------
// Connection: the worker thread's connection, with deadlines. The socket is non-blocking
// and every wait is a poll(2) on it and on the stop eventfd, so the destructor can
// interrupt any wait, and connect/query deadlines are exact. Errors:
//   CANCELLED          the estimator is being destroyed
//   DEADLINE_EXCEEDED  the deadline passed
//   anything else      the connection is unusable (socket error, eof, protocol error)

class RowEstimator::Connection {
 public:
  Connection(const RowEstimatorOptions& options, const Clock& clock, int stop_fd)
      : options_(options), clock_(clock), stop_fd_(stop_fd) {}

  ~Connection() {
    // Best effort, without waiting: a polite Terminate when idle, then close_notify.
    if (fd_ && idle_) {
      std::string terminate = cpg::EncodeTerminate();
      if (tls_ != nullptr) {
        (void)tls_->Write(terminate.data(), terminate.size());
        (void)tls_->Shutdown();
      } else {
        (void)net::SendSome(fd_.get(), terminate.data(), terminate.size(), "terminate");
      }
    }
    tls_.reset();  // before the fd it uses
  }

  // TCP connect, SSLRequest and TLS per sslmode (as PgSession::OnUpstreamConnected and
  // ProcessUpstream do), login, and the start-up messages up to ReadyForQuery.
  absl::Status Open(absl::Duration deadline);

  struct Message {
    char type = 0;
    std::string body;
    bool oversized = false;  // the body was longer than kMaxExplainBytes and was discarded
  };
  absl::Status Send(absl::string_view data, absl::Duration deadline);
  absl::StatusOr<Message> Read(absl::Duration deadline);

  // The last message read was ReadyForQuery: nothing of ours is in flight.
  bool idle() const { return idle_; }
  void set_busy() { idle_ = false; }

 private:
  absl::Status Wait(short events, absl::Duration deadline);
  absl::Status ReadMore(size_t max, absl::Duration deadline);
  absl::Status Login(absl::Duration deadline);

  const RowEstimatorOptions& options_;
  const Clock& clock_;
  const int stop_fd_;
  UniqueFd fd_;
  std::unique_ptr<net::TlsConnection> tls_;
  std::string in_;
  bool idle_ = false;
};

absl::Status RowEstimator::Connection::Wait(short events, absl::Duration deadline) {
  pollfd fds[2] = {{fd_.get(), events, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    absl::Duration left = deadline - clock_.Monotonic();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("timed out");
    // Round up so the wait never ends before the deadline.
    int64_t ms = absl::ToInt64Milliseconds(left + absl::Microseconds(999));
    int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(ms, 60'000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll");
    }
    if (fds[1].revents != 0) return absl::CancelledError("the estimator is stopping");
    // POLLERR/POLLHUP too: the next read or write reports what happened.
    if (fds[0].revents != 0) return absl::OkStatus();
  }
}

absl::Status RowEstimator::Connection::ReadMore(size_t max, absl::Duration deadline) {
  char buf[kReadChunk];
  max = std::min(max, sizeof buf);
  for (;;) {
    net::IoResult r =
        tls_ != nullptr ? tls_->Read(buf, max) : net::ReadSome(fd_.get(), buf, max, "read");
    if (!r.status.ok()) return r.status;
    if (r.eof) return absl::UnavailableError("the server closed the connection");
    if (r.bytes > 0) {
      in_.append(buf, r.bytes);
      return absl::OkStatus();
    }
    INTERLOCK_RETURN_IF_ERROR(
        Wait(tls_ != nullptr ? PollEventsFor(tls_->want(), POLLIN) : POLLIN, deadline));
  }
}

absl::Status RowEstimator::Connection::Send(absl::string_view data, absl::Duration deadline) {
  while (!data.empty()) {
    // TLS: a Write that would block may have encrypted a record from the start of `data`
    // already; the retry passes the same bytes again, as TlsConnection::Write requires.
    net::IoResult w = tls_ != nullptr ? tls_->Write(data.data(), data.size())
                                      : net::SendSome(fd_.get(), data.data(), data.size(), "write");
    if (!w.status.ok()) return w.status;
    if (w.bytes > 0) {
      data.remove_prefix(w.bytes);
      continue;
    }
    INTERLOCK_RETURN_IF_ERROR(
        Wait(tls_ != nullptr ? PollEventsFor(tls_->want(), POLLOUT) : POLLOUT, deadline));
  }
  return absl::OkStatus();
}

absl::StatusOr<RowEstimator::Connection::Message> RowEstimator::Connection::Read(
    absl::Duration deadline) {
  for (;;) {
    INTERLOCK_ASSIGN_OR_RETURN(std::optional<cpg::FrameHeader> header,
                               cpg::PeekHeader(in_, cpg::kMaxMessageBytes));
    if (header.has_value()) {
      Message m;
      m.type = header->type;
      if (header->body_bytes() > kMaxExplainBytes) {
        // Read past it without keeping it: the connection stays in sync.
        m.oversized = true;
        size_t left = header->total_bytes;
        for (;;) {
          size_t take = std::min(left, in_.size());
          in_.erase(0, take);
          left -= take;
          if (left == 0) break;
          INTERLOCK_RETURN_IF_ERROR(ReadMore(left, deadline));
        }
        idle_ = false;
        return m;
      }
      if (in_.size() >= header->total_bytes) {
        m.body = in_.substr(cpg::kMessageHeaderBytes, header->body_bytes());
        in_.erase(0, header->total_bytes);
        idle_ = m.type == cpg::backend::kReadyForQuery;
        return m;
      }
    }
    INTERLOCK_RETURN_IF_ERROR(ReadMore(kReadChunk, deadline));
  }
}

absl::Status RowEstimator::Connection::Open(absl::Duration deadline) {
  const net::SockAddr& addr = options_.upstream;
  INTERLOCK_ASSIGN_OR_RETURN(fd_, net::ConnectTcpNonBlocking(addr));
  INTERLOCK_RETURN_IF_ERROR(Wait(POLLOUT, deadline));
  INTERLOCK_RETURN_IF_ERROR(net::ConnectResult(fd_.get(), addr));

  const std::string& mode = options_.sslmode;
  if (mode != "disable" && mode != "allow" && options_.tls != nullptr) {
    INTERLOCK_RETURN_IF_ERROR(Send(cpg::EncodeSslRequest(), deadline));
    // Exactly one byte: whatever follows an 'S' is the server's TLS.
    INTERLOCK_RETURN_IF_ERROR(ReadMore(1, deadline));
    char answer = in_[0];
    in_.clear();
    if (answer == 'S') {
      INTERLOCK_ASSIGN_OR_RETURN(tls_, net::TlsConnection::Create(*options_.tls, fd_.get()));
      for (;;) {
        INTERLOCK_ASSIGN_OR_RETURN(net::TlsHandshake step, tls_->HandshakeStep());
        if (step == net::TlsHandshake::kDone) break;
        INTERLOCK_RETURN_IF_ERROR(
            Wait(step == net::TlsHandshake::kWantWrite ? POLLOUT : POLLIN, deadline));
      }
    } else if (answer != 'N' || mode != "prefer") {
      return absl::FailedPreconditionError(absl::StrCat("the server does not offer TLS (sslmode ",
                                                        mode, "; SSLRequest answered '",
                                                        absl::string_view(&answer, 1), "')"));
    }
  }
  return Login(deadline);
}

absl::Status RowEstimator::Connection::Login(absl::Duration deadline) {
  std::optional<auth::Secret> password;
  if (!options_.password_ref.empty()) {
    // Read per connection, so a rotated secret takes effect without a restart.
    auto secret = auth::ResolveCredentialRef(options_.password_ref);
    if (!secret.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the credential is unavailable: ", secret.status().message()));
    }
    password.emplace(*std::move(secret));
  }
  std::string cb_hash;
  if (tls_ != nullptr) {
    auto hash = auth::TlsServerEndPointHash(tls_->PeerCertificateDer(), tls_->PeerSignatureNid());
    if (hash.ok()) cb_hash = *std::move(hash);
  }
  INTERLOCK_ASSIGN_OR_RETURN(std::string nonce, auth::RandomNonce());
  UpstreamLoginOptions opts;
  opts.user = options_.user;
  opts.database = options_.database;
  // Startup parameters are settings of the session (PostgreSQL docs 55.7 StartupMessage):
  // read-only transactions and a server-side bound on every EXPLAIN.
  opts.params = {
      {"application_name", kApplicationName},
      {"client_encoding", "UTF8"},  // EXPLAIN JSON in UTF-8, as the tokenizer requires
      {"default_transaction_read_only", "on"},
      {"statement_timeout",
       absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.query_timeout)))},
  };
  opts.upstream_verified =
      tls_ != nullptr && (options_.sslmode == "verify-ca" || options_.sslmode == "verify-full");
  opts.allow_unverified = options_.allow_unverified_upstream;
  UpstreamLogin login(std::move(opts), std::move(password), cb_hash, nonce);
  INTERLOCK_RETURN_IF_ERROR(Send(login.StartupMessage(), deadline));
  for (bool authenticated = false; !authenticated;) {
    INTERLOCK_ASSIGN_OR_RETURN(Message m, Read(deadline));
    if (m.oversized) return absl::InvalidArgumentError("oversized message during login");
    auto step = login.OnMessage(m.type, m.body);
    if (!step.ok()) {
      // PERMISSION_DENIED "upstream refused the login (28P01): ...": the server's words,
      // which never include the password.
      return absl::PermissionDeniedError(absl::StrCat(
          "log in as ", options_.user, " to ", options_.database, ": ", step.status().message()));
    }
    if (!step->send.empty()) INTERLOCK_RETURN_IF_ERROR(Send(step->send, deadline));
    authenticated = step->authenticated;
  }
  // ParameterStatus, BackendKeyData and notices until ReadyForQuery.
  for (;;) {
    INTERLOCK_ASSIGN_OR_RETURN(Message m, Read(deadline));
    switch (m.type) {
      case cpg::backend::kParameterStatus:
      case cpg::backend::kBackendKeyData:
      case cpg::backend::kNoticeResponse:
      case cpg::backend::kNegotiateProtocolVersion:
        break;
      case cpg::backend::kErrorResponse: {
        // After authentication: the database does not exist, too many connections, ...
        auto e = cpg::ParseErrorResponse(m.body);
        return absl::FailedPreconditionError(
            e.ok() ? absl::StrCat("start-up refused (", e->sqlstate(), "): ", e->message())
                   : std::string("start-up refused"));
      }
      case cpg::backend::kReadyForQuery:
        return absl::OkStatus();
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected ", cpg::MessageName(m.type, false), " during start-up"));
    }
  }
}

// ---------------------------------------------------------------------------------------
// RowEstimator

absl::StatusOr<std::unique_ptr<RowEstimator>> RowEstimator::Create(RowEstimatorOptions options,
                                                                   net::EventLoop* loop) {
  if (loop == nullptr) return absl::InvalidArgumentError("row estimator: no event loop");
  INTERLOCK_RETURN_IF_ERROR(Annotate(net::ParseSslMode(options.sslmode).status(), "row estimator"));
  if (IsTlsOnly(options.sslmode) && options.tls == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("row estimator: sslmode ", options.sslmode, " needs a TLS client context"));
  }
  if (options.user.empty()) return absl::InvalidArgumentError("row estimator: no user");
  if (options.database.empty()) options.database = options.user;
  if (absl::StrContains(options.user, '\0') || absl::StrContains(options.database, '\0')) {
    return absl::InvalidArgumentError("row estimator: NUL in user or database");
  }
  if (!options.password_ref.empty()) {
    INTERLOCK_RETURN_IF_ERROR(
        Annotate(auth::ParseCredentialRef(options.password_ref).status(), "row estimator"));
  }
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.query_timeout < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("row estimator: timeouts must be positive");
  }
  UniqueFd stop_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!stop_fd) return ErrnoStatus(errno, "row estimator: eventfd");
  std::unique_ptr<RowEstimator> est(new RowEstimator(std::move(options), loop, std::move(stop_fd)));
  est->worker_ = std::thread([raw = est.get()] { raw->WorkerMain(); });
  return est;
}

RowEstimator::RowEstimator(RowEstimatorOptions options, net::EventLoop* loop, UniqueFd stop_fd)
    : options_(std::move(options)),
      loop_(loop),
      alive_(std::make_shared<std::atomic<bool>>(true)),
      stop_fd_(std::move(stop_fd)) {}

RowEstimator::~RowEstimator() {
  alive_->store(false);  // results already posted to the loop are dropped when they run
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);  // interrupts the worker's poll(2)
  if (worker_.joinable()) worker_.join();
  // queue_ (with every dropped request) goes with the object, here; no callback runs.
}

void RowEstimator::Estimate(EstimateRequest req, DoneFn done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() < options_.max_queue) {
      queue_.push_back(Pending{std::move(req), std::move(done), nullptr});
      cv_.notify_one();
      return;
    }
  }
  Pending p{std::move(req), std::move(done), nullptr};
  Deliver(p, absl::ResourceExhaustedError(absl::StrCat("row estimator ", options_.upstream.ToString(), ": ",
                                                       options_.max_queue, " requests already waiting")));
}

void RowEstimator::Query(EstimateRequest req, RowsFn done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() < options_.max_queue) {
      queue_.push_back(Pending{std::move(req), nullptr, std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  Pending p{std::move(req), nullptr, std::move(done)};
  Deliver(p, absl::ResourceExhaustedError(absl::StrCat("row estimator ", options_.upstream.ToString(), ": ",
                                                       options_.max_queue, " requests already waiting")));
}

void RowEstimator::Deliver(Pending& p, const absl::StatusOr<QueryRows>& rows) {
  if (p.rows_done) {
    // An independent copy per delivery (see Unshared).
    absl::StatusOr<QueryRows> copy = rows.ok() ? absl::StatusOr<QueryRows>(*rows)
                                               : absl::StatusOr<QueryRows>(absl::Status(rows.status().code(),
                                                                                         rows.status().message()));
    loop_->Post([alive = alive_, done = std::move(p.rows_done), r = std::move(copy)]() mutable {
      if (alive->load()) done(std::move(r));
    });
    return;
  }
  absl::StatusOr<int64_t> result;
  if (!rows.ok()) {
    result = absl::Status(rows.status().code(), rows.status().message());
  } else if (rows->empty() || rows->front().size() != 1 || !rows->front()[0].has_value()) {
    result = absl::InternalError(absl::StrCat("row estimator ", options_.upstream.ToString(), ": explain returned no row"));
  } else {
    result = PlanRowsFromExplainJson(*rows->front()[0]);
    if (!result.ok()) result = Annotate(result.status(), absl::StrCat("row estimator ", options_.upstream.ToString()));
  }
  loop_->Post([alive = alive_, done = std::move(p.done), result = Unshared(result)]() mutable {
    if (alive->load()) done(std::move(result));
  });
}

void RowEstimator::WorkerMain() {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      // Everything waiting, up to kMaxBatch requests and kMaxBatchBytes of SQL.
      size_t bytes = 0;
      while (!queue_.empty() && batch.size() < kMaxBatch &&
             (batch.empty() || bytes + queue_.front().req.sql.size() <= kMaxBatchBytes)) {
        bytes += queue_.front().req.sql.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    absl::Status connect_error;
    std::vector<absl::StatusOr<QueryRows>> results = RunBatch(batch, &connect_error);
    std::deque<Pending> also_failed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        // Dropped: nobody may be called back any more. Back into the queue, so `done` and
        // what it holds are destroyed by the destructor, on the loop thread.
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(std::move(*it));
        break;
      }
      if (!connect_error.ok()) also_failed.swap(queue_);
    }
    for (size_t i = 0; i < batch.size(); ++i) Deliver(batch[i], results[i]);
    // The connection could not be opened: everything waiting fails with the same error.
    for (Pending& q : also_failed) Deliver(q, connect_error);
  }
  conn_.reset();
}

absl::StatusOr<std::unique_ptr<RowEstimator::Connection>> RowEstimator::Connect() {
  auto conn = std::make_unique<Connection>(options_, loop_->clock(), stop_fd_.get());
  absl::Status st = conn->Open(loop_->clock().Monotonic() + options_.connect_timeout);
  if (st.ok()) return conn;
  if (st.code() == absl::StatusCode::kCancelled) return st;
  std::string why(st.message());
  if (st.code() == absl::StatusCode::kDeadlineExceeded) {
    why = absl::StrCat("no connection and login within ",
                       absl::FormatDuration(options_.connect_timeout));
  }
  return absl::UnavailableError(
      absl::StrCat("row estimator ", options_.upstream.ToString(), ": ", why));
}

absl::StatusOr<std::string> RowEstimator::Wire(const EstimateRequest& req, bool explain) const {
  const std::string where = absl::StrCat("row estimator ", options_.upstream.ToString());
  // encode.h's preconditions are caller bugs there; here they are the request's problem.
  if (absl::StrContains(req.sql, '\0')) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": NUL byte in the statement"));
  }
  if (req.sql.size() > cpg::kMaxMessageBytes / 2 || req.params.size() > kMaxParams ||
      req.param_type_oids.size() > kMaxParams || req.param_formats.size() > kMaxParams) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": statement or parameters too large"));
  }
  if (req.param_formats.size() > 1 && req.param_formats.size() != req.params.size()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", req.param_formats.size(),
                                                   " parameter formats for ", req.params.size(),
                                                   " parameters"));
  }
  size_t param_bytes = 0;
  for (const auto& v : req.params) param_bytes += v.has_value() ? v->size() + 4 : 4;
  if (param_bytes > cpg::kMaxMessageBytes / 2) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": parameters too large"));
  }

  cpg::Parse parse;
  parse.query = explain ? absl::StrCat(kExplainPrefix, req.sql) : req.sql;
  parse.param_type_oids = req.param_type_oids;
  cpg::Bind bind;
  bind.param_formats = req.param_formats;
  bind.params.reserve(req.params.size());
  for (const auto& v : req.params) {
    bind.params.push_back(v.has_value() ? std::optional<absl::string_view>(*v) : std::nullopt);
  }
  bind.result_formats = {0};  // text: the JSON document
  cpg::Execute execute;
  // Each request ends with its own Sync: an error skips only to it, so one rejected
  // statement never takes the others of a batch with it.
  return absl::StrCat(cpg::Encode(parse), cpg::Encode(bind), cpg::Encode(execute), cpg::Encode(cpg::Sync{}));
}

absl::Status RowEstimator::ReadAnswer(absl::Duration deadline, Answer* a) {
  for (;;) {
    INTERLOCK_ASSIGN_OR_RETURN(Connection::Message m, conn_->Read(deadline));
    if (m.oversized) {
      a->oversized = true;
      continue;
    }
    switch (m.type) {
      case cpg::backend::kParseComplete:
      case cpg::backend::kBindComplete:
      case cpg::backend::kCommandComplete:
      case cpg::backend::kNoData:
      case cpg::backend::kEmptyQueryResponse:
      case cpg::backend::kNoticeResponse:
      case cpg::backend::kParameterStatus:
      case cpg::backend::kNotificationResponse:
        break;
      case cpg::backend::kDataRow: {
        INTERLOCK_ASSIGN_OR_RETURN(cpg::DataRow row, cpg::ParseDataRow(m.body));
        a->row_bytes += m.body.size();
        if (a->row_bytes > kMaxExplainBytes) {
          a->oversized = true;
          break;
        }
        std::vector<std::optional<std::string>> out;
        out.reserve(row.columns.size());
        for (const auto& c : row.columns) {
          out.push_back(c.has_value() ? std::optional<std::string>(std::string(*c)) : std::nullopt);
        }
        a->rows.push_back(std::move(out));
        break;
      }
      case cpg::backend::kErrorResponse: {
        INTERLOCK_ASSIGN_OR_RETURN(cpg::ErrorResponse e, cpg::ParseErrorResponse(m.body));
        absl::string_view severity = Severity(e);
        if (severity == "FATAL" || severity == "PANIC") {
          // The server ends the session (restart, pg_terminate_backend, idle timeout).
          return absl::UnavailableError(
              absl::StrCat("the server ended the session (", e.sqlstate(), "): ", e.message()));
        }
        if (!a->error.has_value()) a->error = std::move(e);
        break;
      }
      case cpg::backend::kReadyForQuery:
        return absl::OkStatus();
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected ", cpg::MessageName(m.type, false), " after EXPLAIN"));
    }
  }
}

absl::StatusOr<QueryRows> RowEstimator::Outcome(Answer& a) const {
  const std::string where = absl::StrCat("row estimator ", options_.upstream.ToString());
  if (a.error.has_value()) {
    std::string what = absl::StrCat(a.error->sqlstate(), ": ", a.error->message());
    if (IsServerSideFailure(a.error->sqlstate())) {
      return absl::UnavailableError(absl::StrCat(where, ": the planner failed: ", what));
    }
    return absl::InvalidArgumentError(absl::StrCat(where, ": explain rejected: ", what));
  }
  if (a.oversized) {
    return absl::ResourceExhaustedError(absl::StrCat(where, ": explain output larger than ", kMaxExplainBytes, " bytes"));
  }
  return std::move(a.rows);
}

std::vector<absl::StatusOr<QueryRows>> RowEstimator::RunBatch(const std::vector<Pending>& batch,
                                                              absl::Status* connect_error) {
  const std::string where = absl::StrCat("row estimator ", options_.upstream.ToString());
  std::vector<absl::StatusOr<QueryRows>> results(batch.size(), absl::InternalError("row estimator: not run"));
  std::vector<std::string> wires(batch.size());
  std::vector<size_t> todo;  // requests still to send, in order
  for (size_t i = 0; i < batch.size(); ++i) {
    absl::StatusOr<std::string> w = Wire(batch[i].req, /*explain=*/!batch[i].rows_done);
    if (!w.ok()) {
      results[i] = w.status();
      continue;
    }
    wires[i] = *std::move(w);
    todo.push_back(i);
  }
  for (int attempt = 0; !todo.empty(); ++attempt) {
    bool fresh = false;
    if (conn_ == nullptr) {
      auto conn = Connect();
      if (!conn.ok()) {
        *connect_error = conn.status();
        for (size_t i : todo) results[i] = conn.status();
        return results;
      }
      conn_ = *std::move(conn);
      fresh = true;
    }
    // The whole batch in one write, then the answers in order: one round trip and one
    // wake-up of this thread for all the requests that were waiting.
    std::string wire;
    for (size_t i : todo) wire += wires[i];
    // The server's statement_timeout (= query_timeout) normally ends a slow EXPLAIN first,
    // with an error that keeps the connection; ours only catches a server or network that
    // stopped answering: each answer gets query_timeout (+ grace) from the previous one.
    const absl::Duration per_answer = options_.query_timeout + kClientDeadlineGrace;
    conn_->set_busy();
    absl::Status transport = conn_->Send(wire, loop_->clock().Monotonic() + per_answer);
    size_t answered = 0;
    while (transport.ok() && answered < todo.size()) {
      Answer a;
      transport = ReadAnswer(loop_->clock().Monotonic() + per_answer, &a);
      if (!transport.ok()) break;
      results[todo[answered++]] = Outcome(a);
    }
    if (transport.ok()) return results;
    todo.erase(todo.begin(), todo.begin() + static_cast<std::ptrdiff_t>(answered));
    conn_.reset();
    absl::Status failed = transport;
    if (transport.code() == absl::StatusCode::kDeadlineExceeded) {
      failed = absl::UnavailableError(
          absl::StrCat(where, ": no answer from the planner within ", absl::FormatDuration(per_answer)));
    } else if (transport.code() != absl::StatusCode::kCancelled) {
      failed = absl::UnavailableError(absl::StrCat(where, ": ", transport.message()));
    }
    // A connection that served earlier requests may have died while idle (server restart,
    // idle_session_timeout): EXPLAIN changes nothing, so one retry on a fresh one is safe.
    // Not after a timeout or cancellation (the destructor), and only once.
    if (!fresh && attempt == 0 && transport.code() != absl::StatusCode::kCancelled &&
        transport.code() != absl::StatusCode::kDeadlineExceeded) {
      continue;
    }
    for (size_t i : todo) results[i] = failed;
    return results;
  }
  return results;
}

}  // namespace interlock::proxy::pg
