#include "userspace/sql/set_config.h"

#include <variant>

#include "absl/strings/ascii.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "userspace/common/status_macros.h"
#include "userspace/sql/parser.h"

namespace interlock::sql {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

bool IsSetConfig(const pg_query::FuncCall& f) {
  if (f.funcname().empty()) return false;
  const pg_query::Node& last = f.funcname(f.funcname_size() - 1);
  return last.has_string() && last.string().sval() == "set_config";
}

std::string FirstArgumentName(const pg_query::FuncCall& f) {
  if (f.args().empty()) return "";
  const pg_query::Node& a = f.args(0);
  if (!a.has_a_const() || !a.a_const().has_sval()) return "";
  return absl::AsciiStrToLower(a.a_const().sval().sval());
}

// Every message under `m`, depth first (the parse tree's depth was bounded by Classify).
void Walk(const Message& m, int statement, std::vector<SetConfigCall>* out) {
  if (m.GetDescriptor() == pg_query::FuncCall::descriptor()) {
    const auto& f = static_cast<const pg_query::FuncCall&>(m);
    if (IsSetConfig(f)) out->push_back(SetConfigCall{statement, FirstArgumentName(f)});
  }
  const google::protobuf::Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, field); ++i) Walk(r->GetRepeatedMessage(m, field, i), statement, out);
    } else {
      Walk(r->GetMessage(m, field), statement, out);
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<SetConfigCall>> FindSetConfigCalls(absl::string_view sql,
                                                              const SessionSettings& session) {
  const std::string text(sql);
  absl::StatusOr<std::vector<SetConfigCall>> result = std::vector<SetConfigCall>();
  INTERLOCK_RETURN_IF_ERROR(RunOnParserStack([&] {
    ScopedStandardConformingStrings lexer_mode(session.standard_conforming_strings);
    absl::StatusOr<ParseOutcome> parsed = ParseSql(text);
    if (!parsed.ok()) {
      result = parsed.status();
      return;
    }
    const auto* parse_tree = std::get_if<ParseTree>(&*parsed);
    if (parse_tree == nullptr) return;
    const pg_query::ParseResult* tree = &parse_tree->tree();
    for (int i = 0; i < tree->stmts_size(); ++i) Walk(tree->stmts(i), i, &*result);
  }));
  return result;
}

}  // namespace interlock::sql
