#include "userspace/audit/json_writer.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/json_text.h"

namespace interlock::audit {
namespace internal {

// JSON string body: escapes per RFC 8259; bytes that are not valid UTF-8 become U+FFFD
// (a proto3 string should always be UTF-8, but an exe path or comm from the kernel need
// not be).
}  // namespace internal

namespace {


// ---------------------------------------------------------------------------------------
// Reflection: any message.

void AppendMessageByReflection(std::string* out, const google::protobuf::Message& m);

void AppendValueByReflection(std::string* out, const google::protobuf::Message& m,
                             const google::protobuf::FieldDescriptor* f, int index) {
  using FD = google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT32:
      absl::StrAppend(out, rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FD::CPPTYPE_UINT32:
      absl::StrAppend(out, rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case FD::CPPTYPE_INT64:  // proto3 JSON: 64-bit integers are strings
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f), "\"");
      break;
    case FD::CPPTYPE_UINT64:
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f), "\"");
      break;
    case FD::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      break;
    case FD::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* e =
          rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f);
      AppendJsonQuoted(e->name(), out);
      break;
    }
    case FD::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& v = rep ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                 : r->GetStringReference(m, f, &scratch);
      if (f->type() == FD::TYPE_BYTES) {
        AppendJsonQuoted(absl::Base64Escape(v), out);
      } else {
        AppendJsonQuoted(v, out);
      }
      break;
    }
    case FD::CPPTYPE_MESSAGE:
      AppendMessageByReflection(out, rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
      break;
    default:  // float/double: no audit field uses them
      out->append("null");
  }
}

// The proto3 JSON mapping with original field names, written straight from reflection.
// protobuf's util::MessageToJsonString goes through a type resolver and a binary round
// trip; this is several times faster.
void AppendMessageByReflection(std::string* out, const google::protobuf::Message& m) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);  // set fields, in field-number order
  out->push_back('{');
  bool first = true;
  for (const auto* f : fields) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonQuoted(f->name(), out);
    out->push_back(':');
    if (f->is_map()) {
      // proto3 JSON: a map is an object keyed by the key's text.
      out->push_back('{');
      int n = m.GetReflection()->FieldSize(m, f);
      for (int i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        const google::protobuf::Message& entry = m.GetReflection()->GetRepeatedMessage(m, f, i);
        const google::protobuf::FieldDescriptor* key = entry.GetDescriptor()->map_key();
        const google::protobuf::FieldDescriptor* value = entry.GetDescriptor()->map_value();
        std::string k;
        AppendValueByReflection(&k, entry, key, 0);
        if (k.empty() || k[0] != '"') k = absl::StrCat("\"", k, "\"");  // numeric and bool keys are quoted
        out->append(k);
        out->push_back(':');
        AppendValueByReflection(out, entry, value, 0);
      }
      out->push_back('}');
    } else if (f->is_repeated()) {
      out->push_back('[');
      int n = m.GetReflection()->FieldSize(m, f);
      for (int i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        AppendValueByReflection(out, m, f, i);
      }
      out->push_back(']');
    } else {
      AppendValueByReflection(out, m, f, 0);
    }
  }
  out->push_back('}');
}

// ---------------------------------------------------------------------------------------
// Typed: the statement path's messages through generated accessors. Same rules as the
// reflection writer: proto3 fields at their default are left out, field-number order.

// Writes `"name":` after a comma when the object already has a member.
class Object {
 public:
  explicit Object(std::string* out) : out_(out) { out_->push_back('{'); }
  ~Object() { out_->push_back('}'); }
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;

  std::string* Key(absl::string_view quoted_key_colon) {
    if (!first_) out_->push_back(',');
    first_ = false;
    out_->append(quoted_key_colon.data(), quoted_key_colon.size());
    return out_;
  }
  void String(absl::string_view key, const std::string& v) {
    if (!v.empty()) AppendJsonQuoted(v, Key(key));
  }
  void Bool(absl::string_view key, bool v) {
    if (v) Key(key)->append("true");
  }
  void U32(absl::string_view key, uint32_t v) {
    if (v != 0) absl::StrAppend(Key(key), v);
  }
  void U64(absl::string_view key, uint64_t v) {  // proto3 JSON: 64-bit integers are strings
    if (v == 0) return;
    std::string* out = Key(key);
    out->push_back('"');
    absl::StrAppend(out, v);
    out->push_back('"');
  }
  template <typename Repeated>
  void Strings(absl::string_view key, const Repeated& v) {
    if (v.empty()) return;
    std::string* out = Key(key);
    out->push_back('[');
    for (int i = 0; i < v.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendJsonQuoted(v.Get(i), out);
    }
    out->push_back(']');
  }

 private:
  std::string* out_;
  bool first_ = true;
};

void AppendIdentity(std::string* out, const v1::WorkloadIdentity& m) {
  Object o(out);
  o.String(R"("workload":)", m.workload());
  o.U64(R"("cgroup_id":)", m.cgroup_id());
  o.String(R"("cgroup_path":)", m.cgroup_path());
  o.U32(R"("pid":)", m.pid());
  o.U32(R"("tid":)", m.tid());
  o.U32(R"("uid":)", m.uid());
  o.U32(R"("gid":)", m.gid());
  o.String(R"("user":)", m.user());
  o.U32(R"("login_uid":)", m.login_uid());
  o.String(R"("comm":)", m.comm());
  o.String(R"("exe":)", m.exe());
  o.String(R"("token_issuer":)", m.token_issuer());
  o.String(R"("token_subject":)", m.token_subject());
  o.Strings(R"("token_groups":)", m.token_groups());
}

void AppendEndpoint(std::string* out, const v1::Endpoint& m) {
  Object o(out);
  o.String(R"("address":)", m.address());
  o.U32(R"("port":)", m.port());
}

void AppendDecision(std::string* out, const v1::PolicyDecision& m) {
  Object o(out);
  o.String(R"("action":)", m.action());
  o.String(R"("rule_id":)", m.rule_id());
  o.String(R"("reason":)", m.reason());
  o.String(R"("source":)", m.source());
  o.String(R"("mask_profile":)", m.mask_profile());
  o.Strings(R"("statements":)", m.statements());
  o.String(R"("fingerprint":)", m.fingerprint());
  o.Bool(R"("parse_error":)", m.parse_error());
  o.String(R"("parse_error_message":)", m.parse_error_message());
  o.String(R"("approval_id":)", m.approval_id());
  if (m.has_classification()) AppendMessageByReflection(o.Key(R"("classification":)"), m.classification());
}

void AppendStatement(std::string* out, const v1::StatementInfo& m) {
  Object o(out);
  o.String(R"("protocol":)", m.protocol());
  o.String(R"("database":)", m.database());
  o.String(R"("user":)", m.user());
  o.String(R"("text":)", m.text());
  o.Bool(R"("text_truncated":)", m.text_truncated());
  o.String(R"("text_sha256":)", m.text_sha256());
  o.String(R"("statement_name":)", m.statement_name());
  o.String(R"("portal":)", m.portal());
  o.U32(R"("parameter_count":)", m.parameter_count());
  o.Strings(R"("parameters":)", m.parameters());
  o.String(R"("parameters_sha256":)", m.parameters_sha256());
  o.Strings(R"("command_tags":)", m.command_tags());
  o.U64(R"("rows":)", m.rows());
  o.U64(R"("duration_us":)", m.duration_us());
  o.String(R"("sqlstate":)", m.sqlstate());
  o.String(R"("error":)", m.error());
  o.String(R"("status":)", m.status());
  if (m.has_decision()) AppendDecision(o.Key(R"("decision":)"), m.decision());
}

void AppendHttp(std::string* out, const v1::HttpExchange& m) {
  Object o(out);
  o.String(R"("method":)", m.method());
  o.String(R"("target":)", m.target());
  o.String(R"("host":)", m.host());
  o.String(R"("path":)", m.path());
  o.String(R"("scheme":)", m.scheme());
  o.U32(R"("status":)", m.status());
  o.U64(R"("request_body_bytes":)", m.request_body_bytes());
  o.U64(R"("response_body_bytes":)", m.response_body_bytes());
  o.U64(R"("duration_us":)", m.duration_us());
  o.String(R"("answered_by":)", m.answered_by());
  o.String(R"("credential_injected":)", m.credential_injected());
  o.Strings(R"("agent_credentials_removed":)", m.agent_credentials_removed());
  o.String(R"("request_content_type":)", m.request_content_type());
  o.String(R"("response_content_type":)", m.response_content_type());
  o.Bool(R"("forwarded":)", m.forwarded());
  o.String(R"("body_masking":)", m.body_masking());
  if (m.has_masking()) AppendMessageByReflection(o.Key(R"("masking":)"), m.masking());
  o.U64(R"("upstream_response_body_bytes":)", m.upstream_response_body_bytes());
  o.Strings(R"("response_fields_masked":)", m.response_fields_masked());
}

void AppendEvent(std::string* out, const v1::AuditEvent& m, const ChainLink* link) {
  Object o(out);
  o.String(R"("id":)", m.id());
  if (m.kind() != 0) {
    const google::protobuf::EnumValueDescriptor* e = v1::AuditKind_descriptor()->FindValueByNumber(m.kind());
    if (e == nullptr) {  // a number this build does not know: named the way reflection names it
      e = m.GetReflection()->GetEnum(m, v1::AuditEvent::descriptor()->FindFieldByNumber(v1::AuditEvent::kKindFieldNumber));
    }
    AppendJsonQuoted(e->name(), o.Key(R"("kind":)"));
  }
  o.String(R"("time":)", m.time());
  o.String(R"("session_id":)", m.session_id());
  if (m.has_identity()) AppendIdentity(o.Key(R"("identity":)"), m.identity());
  o.String(R"("resource":)", m.resource());
  if (m.has_original_destination()) AppendEndpoint(o.Key(R"("original_destination":)"), m.original_destination());
  if (m.has_upstream()) AppendEndpoint(o.Key(R"("upstream":)"), m.upstream());
  o.String(R"("protocol":)", m.protocol());
  o.U64(R"("bytes_to_upstream":)", m.bytes_to_upstream());
  o.U64(R"("bytes_to_agent":)", m.bytes_to_agent());
  o.U64(R"("duration_ms":)", m.duration_ms());
  o.String(R"("outcome":)", m.outcome());
  o.String(R"("reason":)", m.reason());
  o.String(R"("detail":)", m.detail());
  o.String(R"("host":)", m.host());
  if (m.has_statement()) AppendStatement(o.Key(R"("statement":)"), m.statement());
  if (m.has_decision()) AppendDecision(o.Key(R"("decision":)"), m.decision());
  if (m.has_approval()) AppendMessageByReflection(o.Key(R"("approval":)"), m.approval());
  if (m.has_grant()) AppendMessageByReflection(o.Key(R"("grant":)"), m.grant());
  if (m.has_masking()) AppendMessageByReflection(o.Key(R"("masking":)"), m.masking());
  if (m.has_http()) AppendHttp(o.Key(R"("http":)"), m.http());
  if (link != nullptr) {
    o.U64(R"("seq":)", link->seq);
    o.String(R"("prev_sha256":)", link->prev_sha256);
  } else {
    o.U64(R"("seq":)", m.seq());
    o.String(R"("prev_sha256":)", m.prev_sha256());
  }
  if (m.has_checkpoint()) AppendMessageByReflection(o.Key(R"("checkpoint":)"), m.checkpoint());
  if (m.has_recording()) AppendMessageByReflection(o.Key(R"("recording":)"), m.recording());
  if (m.has_ssh()) AppendMessageByReflection(o.Key(R"("ssh":)"), m.ssh());
}

}  // namespace

void AppendEventJsonLine(std::string* out, const v1::AuditEvent& event) {
  AppendEvent(out, event, nullptr);
  out->push_back('\n');
}

void AppendEventJsonLine(std::string* out, const v1::AuditEvent& event, const ChainLink& link) {
  AppendEvent(out, event, &link);
  out->push_back('\n');
}

std::string EventToJsonLine(const v1::AuditEvent& event) {
  std::string out;
  out.reserve(1024);
  AppendEventJsonLine(&out, event);
  return out;
}

namespace internal {
std::string EventToJsonLineByReflection(const v1::AuditEvent& event) {
  std::string out;
  out.reserve(1024);
  AppendMessageByReflection(&out, event);
  out.push_back('\n');
  return out;
}
}  // namespace internal

}  // namespace interlock::audit
