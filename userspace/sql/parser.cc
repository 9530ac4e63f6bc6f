#include "userspace/sql/parser.h"

#include <pthread.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "pg_query.h"

// PostgreSQL's standard_conforming_strings GUC as libpg_query 15 compiles it: a thread-local
// bool in src_backend_parser_scan.o, read by scanner_init() for every scan, parse and
// fingerprint. Not in pg_query.h; if a future libpg_query drops it, linking fails loudly.
extern "C" __thread bool standard_conforming_strings;

namespace interlock::sql {

ScopedStandardConformingStrings::ScopedStandardConformingStrings(bool on)
    : saved_(standard_conforming_strings) {
  standard_conforming_strings = on;
}

ScopedStandardConformingStrings::~ScopedStandardConformingStrings() {
  standard_conforming_strings = saved_;
}

namespace {

// Sole owner of one libpg_query result struct; frees it with the matching pg_query_free_*.
template <typename Result, void (*Free)(Result)>
class Owned {
 public:
  explicit Owned(Result result) : result_(result) {}
  ~Owned() { Free(result_); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;

  const Result& operator*() const { return result_; }
  const Result* operator->() const { return &result_; }

 private:
  Result result_;
};

SyntaxError ToSyntaxError(const PgQueryError& error) {
  return SyntaxError{.message = error.message != nullptr ? error.message : "unknown parse error",
                     .position = error.cursorpos};
}

absl::Status CheckSize(size_t len, absl::string_view what) {
  if (len > static_cast<size_t>(INT_MAX)) {
    return absl::InternalError(absl::StrCat("sql: ", what, ": libpg_query output of ", len,
                                            " bytes is too large to decode"));
  }
  return absl::OkStatus();
}

// ScanResult { int32 version = 1; repeated ScanToken tokens = 2; }
// ScanToken  { int32 start = 1; int32 end = 2; Token token = 4; KeywordKind keyword_kind = 5; }
// Decoded as a stream: the message is a flat list, and materialising one C++ object per token
// would cost tens of megabytes for a megabyte of SQL. Unknown fields are skipped, as protobuf
// would.
bool SkipField(google::protobuf::io::CodedInputStream& in, uint32_t tag) {
  switch (tag & 7) {
    case 0: {  // varint
      uint64_t ignored;
      return in.ReadVarint64(&ignored);
    }
    case 1:  // fixed64
      return in.Skip(8);
    case 2: {  // length-delimited
      uint32_t len;
      return in.ReadVarint32(&len) && in.Skip(static_cast<int>(len));
    }
    case 5:  // fixed32
      return in.Skip(4);
    default:  // groups: never produced by libpg_query
      return false;
  }
}

bool DecodeScanToken(google::protobuf::io::CodedInputStream& in, TokenSpan* token) {
  *token = TokenSpan{};
  while (uint32_t tag = in.ReadTag()) {
    uint32_t value;
    if (tag == ((4u << 3) | 0) || tag == ((1u << 3) | 0) || tag == ((2u << 3) | 0)) {
      if (!in.ReadVarint32(&value)) return false;
      if (tag >> 3 == 4) token->token = static_cast<pg_query::Token>(value);
      if (tag >> 3 == 1) token->start = static_cast<int32_t>(value);
      if (tag >> 3 == 2) token->end = static_cast<int32_t>(value);
    } else if (!SkipField(in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

// Calls emit(TokenSpan) per token, in order.
template <typename Emit>
bool DecodeScanTokens(const PgQueryProtobuf& pbuf, Emit&& emit) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(pbuf.data),
                                            static_cast<int>(pbuf.len));
  while (uint32_t tag = in.ReadTag()) {
    if (tag == ((2u << 3) | 2)) {
      uint32_t len;
      if (!in.ReadVarint32(&len)) return false;
      auto limit = in.PushLimit(static_cast<int>(len));
      TokenSpan token;
      if (!DecodeScanToken(in, &token)) return false;
      in.PopLimit(limit);
      emit(token);
    } else if (!SkipField(in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

}  // namespace

namespace {

void* RunFunctionRef(void* arg) {
  (*static_cast<absl::FunctionRef<void()>*>(arg))();
  return nullptr;
}

}  // namespace

absl::Status RunOnParserStack(absl::FunctionRef<void()> fn) {
  pthread_attr_t attr;
  if (int err = pthread_attr_init(&attr); err != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("sql: parser thread: attr: ", strerror(err)));
  }
  pthread_t thread;
  int err = pthread_attr_setstacksize(&attr, kParserStackBytes);
  if (err == 0) err = pthread_create(&thread, &attr, RunFunctionRef, &fn);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "sql: parser thread: create with ", kParserStackBytes, "-byte stack: ", strerror(err)));
  }
  // Joining a joinable thread we created cannot fail.
  pthread_join(thread, nullptr);
  return absl::OkStatus();
}

namespace {

google::protobuf::ArenaOptions TreeArenaOptions() {
  google::protobuf::ArenaOptions o;
  o.start_block_size = 8 * 1024;
  o.max_block_size = 256 * 1024;
  return o;
}

}  // namespace

ParseTree::ParseTree()
    : arena_(std::make_unique<google::protobuf::Arena>(TreeArenaOptions())),
      tree_(google::protobuf::Arena::CreateMessage<pg_query::ParseResult>(arena_.get())) {}

// GCC 12 inlines the arena's destructor into the variant's and then warns that it reads
// outside the variant (-Warray-bounds): a false positive, silenced here only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
absl::StatusOr<ParseOutcome> ParseSql(const std::string& sql) {
  Owned<PgQueryProtobufParseResult, pg_query_free_protobuf_parse_result> result(
      pg_query_parse_protobuf(sql.c_str()));
  if (result->error != nullptr) return ParseOutcome(ToSyntaxError(*result->error));
  absl::Status size_ok = CheckSize(result->parse_tree.len, "parse");
  if (!size_ok.ok()) return size_ok;
  ParseOutcome outcome(std::in_place_type<ParseTree>);
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(result->parse_tree.data),
      static_cast<int>(result->parse_tree.len));
  in.SetRecursionLimit(kMaxDecodeRecursion);
  if (!std::get<ParseTree>(outcome).mutable_tree()->ParseFromCodedStream(&in) ||
      !in.ConsumedEntireMessage()) {
    return absl::InternalError(absl::StrCat("sql: parse: cannot decode the ",
                                            result->parse_tree.len,
                                            "-byte parse tree from libpg_query"));
  }
  return outcome;
}
#pragma GCC diagnostic pop

absl::StatusOr<FingerprintOutcome> FingerprintSql(const std::string& sql) {
  Owned<PgQueryFingerprintResult, pg_query_free_fingerprint_result> result(
      pg_query_fingerprint(sql.c_str()));
  if (result->error != nullptr) return FingerprintOutcome(ToSyntaxError(*result->error));
  if (result->fingerprint_str == nullptr) {
    return absl::InternalError("sql: fingerprint: libpg_query returned no fingerprint");
  }
  return FingerprintOutcome(std::string(result->fingerprint_str));
}

namespace {

template <typename Token, typename Pick>
absl::StatusOr<std::variant<std::vector<Token>, SyntaxError>> Scan(const std::string& sql, Pick pick) {
  Owned<PgQueryScanResult, pg_query_free_scan_result> result(pg_query_scan(sql.c_str()));
  if (result->error != nullptr) return ToSyntaxError(*result->error);
  absl::Status size_ok = CheckSize(result->pbuf.len, "scan");
  if (!size_ok.ok()) return size_ok;
  std::vector<Token> tokens;
  if (!DecodeScanTokens(result->pbuf, [&](const TokenSpan& t) { tokens.push_back(pick(t)); })) {
    return absl::InternalError(absl::StrCat("sql: scan: cannot decode the ", result->pbuf.len,
                                            "-byte token list from libpg_query"));
  }
  return tokens;
}

}  // namespace

absl::StatusOr<ScanOutcome> ScanSql(const std::string& sql) {
  return Scan<pg_query::Token>(sql, [](const TokenSpan& t) { return t.token; });
}

absl::StatusOr<SpanOutcome> ScanSqlSpans(const std::string& sql) {
  return Scan<TokenSpan>(sql, [](const TokenSpan& t) { return t; });
}

}  // namespace interlock::sql
