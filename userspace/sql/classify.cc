#include "userspace/sql/classify.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "userspace/common/status_macros.h"
#include "userspace/sql/nesting.h"
#include "userspace/sql/normalize.h"
#include "userspace/sql/parser.h"
#include "userspace/sql/tree.h"
#include "userspace/sql/derivation.h"

namespace interlock::sql {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// ---- Names -------------------------------------------------------------------------------

// A part needs no quotes when the grammar would read it back unchanged: lower-case letters,
// digits, '_' and '$', not starting with a digit or '$'. Keywords are left unquoted; they
// cannot be confused with another object's name.
bool IsPlainIdentifier(absl::string_view s) {
  if (s.empty() || !(absl::ascii_islower(s[0]) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '$')) {
      return false;
    }
  }
  return true;
}

std::string QuoteIdentifier(absl::string_view s) {
  if (IsPlainIdentifier(s)) return std::string(s);
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\"", "\"\""}}), "\"");
}

// Text form of a dotted name whose parts are String nodes (A_Star prints as "*").
std::string NameFromNodes(const google::protobuf::RepeatedPtrField<pg_query::Node>& parts) {
  std::vector<std::string> out;
  out.reserve(parts.size());
  for (const pg_query::Node& part : parts) {
    if (part.has_string()) {
      out.push_back(QuoteIdentifier(part.string().sval()));
    } else if (part.has_a_star()) {
      out.push_back("*");
    }
  }
  return absl::StrJoin(out, ".");
}

v1::TableRef MakeTableRef(absl::string_view catalog, absl::string_view schema,
                          absl::string_view name) {
  v1::TableRef ref;
  ref.set_catalog(std::string(catalog));
  ref.set_schema(std::string(schema));
  ref.set_name(std::string(name));
  std::vector<std::string> parts;
  if (!catalog.empty()) parts.push_back(QuoteIdentifier(catalog));
  if (!schema.empty()) parts.push_back(QuoteIdentifier(schema));
  parts.push_back(QuoteIdentifier(name));
  ref.set_qualified_name(absl::StrJoin(parts, "."));
  return ref;
}

v1::TableRef TableRefOf(const pg_query::RangeVar& rv) {
  return MakeTableRef(rv.catalogname(), rv.schemaname(), rv.relname());
}

// DROP TABLE a.b: each object is a List of 1-3 String nodes.
std::optional<v1::TableRef> TableRefOfNameList(const pg_query::Node& node) {
  if (!node.has_list()) return std::nullopt;
  std::vector<std::string> parts;
  for (const pg_query::Node& part : node.list().items()) {
    if (!part.has_string()) return std::nullopt;
    parts.push_back(part.string().sval());
  }
  switch (parts.size()) {
    case 1:
      return MakeTableRef("", "", parts[0]);
    case 2:
      return MakeTableRef("", parts[0], parts[1]);
    case 3:
      return MakeTableRef(parts[0], parts[1], parts[2]);
    default:
      return std::nullopt;
  }
}

bool IsRelationObject(pg_query::ObjectType type) {
  switch (type) {
    case pg_query::OBJECT_TABLE:
    case pg_query::OBJECT_VIEW:
    case pg_query::OBJECT_MATVIEW:
    case pg_query::OBJECT_INDEX:
    case pg_query::OBJECT_SEQUENCE:
    case pg_query::OBJECT_FOREIGN_TABLE:
      return true;
    default:
      return false;
  }
}

// "OBJECT_FOREIGN_TABLE" -> "FOREIGN TABLE", with the spellings SQL uses where they differ.
std::string ObjectTypeName(pg_query::ObjectType type) {
  switch (type) {
    case pg_query::OBJECT_MATVIEW:
      return "MATERIALIZED VIEW";
    case pg_query::OBJECT_FDW:
      return "FOREIGN DATA WRAPPER";
    case pg_query::OBJECT_FOREIGN_SERVER:
      return "SERVER";
    case pg_query::OBJECT_LARGEOBJECT:
      return "LARGE OBJECT";
    case pg_query::OBJECT_STATISTIC_EXT:
      return "STATISTICS";
    case pg_query::OBJECT_TABCONSTRAINT:
      return "TABLE CONSTRAINT";
    case pg_query::OBJECT_DOMCONSTRAINT:
      return "DOMAIN CONSTRAINT";
    case pg_query::OBJECT_TSCONFIGURATION:
      return "TEXT SEARCH CONFIGURATION";
    case pg_query::OBJECT_TSDICTIONARY:
      return "TEXT SEARCH DICTIONARY";
    case pg_query::OBJECT_TSPARSER:
      return "TEXT SEARCH PARSER";
    case pg_query::OBJECT_TSTEMPLATE:
      return "TEXT SEARCH TEMPLATE";
    default:
      break;
  }
  std::string name = pg_query::ObjectType_Name(type);
  if (absl::StartsWith(name, "OBJECT_")) name = name.substr(7);
  return absl::StrReplaceAll(name, {{"_", " "}});
}

// "CreateExtensionStmt" -> "CREATE EXTENSION": the command tag for DDL without a better one.
std::string TagFromTypeName(absl::string_view type_name) {
  absl::ConsumeSuffix(&type_name, "Stmt");
  std::string tag;
  for (size_t i = 0; i < type_name.size(); ++i) {
    char c = type_name[i];
    if (i > 0 && absl::ascii_isupper(c) && absl::ascii_islower(type_name[i - 1])) tag += ' ';
    tag += absl::ascii_toupper(c);
  }
  return tag;
}

// ---- The walk ------------------------------------------------------------------------------

// Collects tables, functions and flags from every node under a statement. Statement-specific
// rules run as hooks keyed by node type; everything else, including node types added in a
// later libpg_query, is still walked, so its table references count as reads and its function
// calls are listed.
class StatementWalker {
 public:
  explicit StatementWalker(v1::SqlStatement* out) : out_(out) {}

  void Walk(const Message& m) {
    const Descriptor* d = m.GetDescriptor();
    if (d == pg_query::Node::descriptor()) {
      ForEachChild(m, [this](const Message& child) { Walk(child); });
      return;
    }
    auto hook = Hooks().find(d);
    if (hook != Hooks().end()) {
      (this->*(hook->second))(m);
      return;
    }
    WalkChildren(m);
  }

 private:
  using Hook = void (StatementWalker::*)(const Message&);

  static const absl::flat_hash_map<const Descriptor*, Hook>& Hooks() {
    static const auto* hooks = new absl::flat_hash_map<const Descriptor*, Hook>{
        {pg_query::RangeVar::descriptor(), &StatementWalker::OnRangeVar},
        {pg_query::FuncCall::descriptor(), &StatementWalker::OnFuncCall},
        {pg_query::RangeTableSample::descriptor(), &StatementWalker::OnTableSample},
        {pg_query::LockingClause::descriptor(), &StatementWalker::OnLockingClause},
        {pg_query::SelectStmt::descriptor(), &StatementWalker::OnSelect},
        {pg_query::InsertStmt::descriptor(), &StatementWalker::OnInsert},
        {pg_query::UpdateStmt::descriptor(), &StatementWalker::OnUpdate},
        {pg_query::DeleteStmt::descriptor(), &StatementWalker::OnDelete},
        {pg_query::MergeStmt::descriptor(), &StatementWalker::OnMerge},
        {pg_query::IntoClause::descriptor(), &StatementWalker::OnInto},
        {pg_query::CreateTableAsStmt::descriptor(), &StatementWalker::OnCreateTableAs},
        {pg_query::CopyStmt::descriptor(), &StatementWalker::OnCopy},
        {pg_query::DropStmt::descriptor(), &StatementWalker::OnDrop},
        {pg_query::CommentStmt::descriptor(), &StatementWalker::OnComment},
        {pg_query::SecLabelStmt::descriptor(), &StatementWalker::OnSecurityLabel},
        {pg_query::GrantStmt::descriptor(), &StatementWalker::OnGrant},
        {pg_query::TruncateStmt::descriptor(), &StatementWalker::OnTruncate},
        // DDL and maintenance whose RangeVar field is the object changed.
        {pg_query::CreateStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::ViewStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::IndexStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::AlterTableStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::RenameStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::AlterObjectSchemaStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::AlterOwnerStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::CreateTrigStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::RuleStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::CreatePolicyStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::AlterPolicyStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::CreateSeqStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::AlterSeqStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::VacuumRelation::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::ClusterStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::ReindexStmt::descriptor(), &StatementWalker::OnRelationTarget},
        {pg_query::RefreshMatViewStmt::descriptor(), &StatementWalker::OnRelationTarget},
    };
    return *hooks;
  }

  void WalkChildren(const Message& m, const FieldDescriptor* skip = nullptr) {
    ForEachChild(
        m, [this](const Message& child) { Walk(child); }, skip);
  }

  // ---- recording ----

  void AddRead(const v1::TableRef& ref) {
    if (read_.insert(ref.qualified_name()).second) *out_->add_tables_read() = ref;
  }
  void AddWritten(const v1::TableRef& ref) {
    if (written_.insert(ref.qualified_name()).second) *out_->add_tables_written() = ref;
  }
  void AddFunction(std::string name) {
    if (!name.empty() && functions_.insert(name).second) out_->add_functions(std::move(name));
  }
  // `rv` is changed by the statement; `also_read` when its rows are returned too. Recorded
  // when the walk reaches it, so that it is not taken for a read.
  void MarkTarget(const pg_query::RangeVar& rv, bool also_read) { targets_[&rv] = also_read; }

  bool IsCteReference(const pg_query::RangeVar& rv) const {
    return rv.schemaname().empty() && rv.catalogname().empty() &&
           cte_visible_.contains(rv.relname());
  }
  void PushCte(const std::string& name) {
    cte_names_.push_back(name);
    ++cte_visible_[name];
  }
  void PopCtes(size_t mark) {
    for (; cte_names_.size() > mark; cte_names_.pop_back()) {
      auto it = cte_visible_.find(cte_names_.back());
      if (--it->second == 0) cte_visible_.erase(it);
    }
  }

  // ---- hooks ----

  void OnRangeVar(const Message& m) {
    const auto& rv = static_cast<const pg_query::RangeVar&>(m);
    auto target = targets_.find(&rv);
    if (target != targets_.end()) {
      AddWritten(TableRefOf(rv));
      if (target->second) AddRead(TableRefOf(rv));
      return;
    }
    // An unqualified name matching a WITH query in scope is that query, not a table (the
    // grammar's scoping; a wrong "table" answer here is safe, a wrong "CTE" answer would hide
    // a read, so only names visible per SQL's rules are matched).
    if (IsCteReference(rv)) return;
    AddRead(TableRefOf(rv));
  }

  void OnFuncCall(const Message& m) {
    AddFunction(NameFromNodes(static_cast<const pg_query::FuncCall&>(m).funcname()));
    WalkChildren(m);
  }

  // TABLESAMPLE method(args) calls the method's handler function.
  void OnTableSample(const Message& m) {
    AddFunction(NameFromNodes(static_cast<const pg_query::RangeTableSample&>(m).method()));
    WalkChildren(m);
  }

  // FOR UPDATE OF a, b names FROM items (often aliases), which the FROM clause already
  // reported: do not take them for tables.
  void OnLockingClause(const Message&) { out_->set_row_locking(true); }

  // WITH queries are visible to later ones (all of them under RECURSIVE) and to the body.
  void WalkWithScope(const Message& stmt, const pg_query::WithClause* with) {
    const size_t scope_mark = cte_names_.size();
    const FieldDescriptor* with_field = stmt.GetDescriptor()->FindFieldByName("with_clause");
    if (with != nullptr) {
      if (with->recursive()) {
        for (const pg_query::Node& cte : with->ctes()) {
          if (cte.has_common_table_expr()) {
            PushCte(cte.common_table_expr().ctename());
          }
        }
      }
      for (const pg_query::Node& cte : with->ctes()) {
        Walk(cte);
        if (!with->recursive() && cte.has_common_table_expr()) {
          PushCte(cte.common_table_expr().ctename());
        }
      }
    }
    WalkChildren(stmt, with_field);
    PopCtes(scope_mark);
  }

  void OnSelect(const Message& m) {
    const auto& s = static_cast<const pg_query::SelectStmt&>(m);
    WalkWithScope(m, s.has_with_clause() ? &s.with_clause() : nullptr);
  }

  void OnInsert(const Message& m) {
    const auto& s = static_cast<const pg_query::InsertStmt&>(m);
    if (s.has_relation()) MarkTarget(s.relation(), !s.returning_list().empty());
    WalkWithScope(m, s.has_with_clause() ? &s.with_clause() : nullptr);
  }

  void OnUpdate(const Message& m) {
    const auto& s = static_cast<const pg_query::UpdateStmt&>(m);
    if (s.has_relation()) MarkTarget(s.relation(), !s.returning_list().empty());
    WalkWithScope(m, s.has_with_clause() ? &s.with_clause() : nullptr);
  }

  void OnDelete(const Message& m) {
    const auto& s = static_cast<const pg_query::DeleteStmt&>(m);
    if (s.has_relation()) MarkTarget(s.relation(), !s.returning_list().empty());
    WalkWithScope(m, s.has_with_clause() ? &s.with_clause() : nullptr);
  }

  void OnMerge(const Message& m) {
    const auto& s = static_cast<const pg_query::MergeStmt&>(m);
    if (s.has_relation()) MarkTarget(s.relation(), false);
    WalkWithScope(m, s.has_with_clause() ? &s.with_clause() : nullptr);
  }

  // SELECT ... INTO t and CREATE TABLE t AS: t is created and filled.
  void OnInto(const Message& m) {
    const auto& into = static_cast<const pg_query::IntoClause&>(m);
    out_->set_select_into(true);
    if (into.has_rel()) MarkTarget(into.rel(), false);
    WalkChildren(m);
  }

  void OnCreateTableAs(const Message& m) {
    out_->set_select_into(true);
    WalkChildren(m);
  }

  void OnCopy(const Message& m) {
    const auto& s = static_cast<const pg_query::CopyStmt&>(m);
    if (s.has_relation() && s.is_from()) MarkTarget(s.relation(), false);
    WalkChildren(m);
  }

  // DROP, COMMENT ON and SECURITY LABEL ON name their objects as name lists, not RangeVars.
  void OnDrop(const Message& m) {
    const auto& s = static_cast<const pg_query::DropStmt&>(m);
    for (const pg_query::Node& object : s.objects()) AddWrittenObject(s.remove_type(), object);
    WalkChildren(m);
  }
  void OnComment(const Message& m) {
    const auto& s = static_cast<const pg_query::CommentStmt&>(m);
    AddWrittenObject(s.objtype(), s.object());
    WalkChildren(m);
  }
  void OnSecurityLabel(const Message& m) {
    const auto& s = static_cast<const pg_query::SecLabelStmt&>(m);
    AddWrittenObject(s.objtype(), s.object());
    WalkChildren(m);
  }

  // A relation named by `object`: the whole name for relation types; the table part for
  // objects that live on a table (DROP TRIGGER trg ON t is the list [t, trg]).
  void AddWrittenObject(pg_query::ObjectType type, const pg_query::Node& object) {
    if (IsRelationObject(type)) {
      if (std::optional<v1::TableRef> ref = TableRefOfNameList(object)) AddWritten(*ref);
      return;
    }
    if ((type == pg_query::OBJECT_TRIGGER || type == pg_query::OBJECT_RULE ||
         type == pg_query::OBJECT_POLICY || type == pg_query::OBJECT_TABCONSTRAINT ||
         type == pg_query::OBJECT_COLUMN) &&
        object.has_list() && object.list().items_size() >= 2) {
      pg_query::Node table;
      table.mutable_list()->mutable_items()->CopyFrom(object.list().items());
      table.mutable_list()->mutable_items()->RemoveLast();
      if (std::optional<v1::TableRef> ref = TableRefOfNameList(table)) AddWritten(*ref);
    }
  }

  // GRANT / REVOKE ... ON TABLE t changes t's privileges.
  void OnGrant(const Message& m) {
    const auto& s = static_cast<const pg_query::GrantStmt&>(m);
    if (s.targtype() == pg_query::ACL_TARGET_OBJECT && IsRelationObject(s.objtype())) {
      for (const pg_query::Node& object : s.objects()) {
        if (object.has_range_var()) MarkTarget(object.range_var(), false);
      }
    }
    WalkChildren(m);
  }

  void OnTruncate(const Message& m) {
    for (const pg_query::Node& rel : static_cast<const pg_query::TruncateStmt&>(m).relations()) {
      if (rel.has_range_var()) MarkTarget(rel.range_var(), false);
    }
    WalkChildren(m);
  }

  // The first RangeVar-typed field of these statements is the object they change.
  void OnRelationTarget(const Message& m) {
    const Descriptor* d = m.GetDescriptor();
    const Reflection* r = m.GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (!f->is_repeated() && f->message_type() == pg_query::RangeVar::descriptor()) {
        if (r->HasField(m, f)) {
          MarkTarget(static_cast<const pg_query::RangeVar&>(r->GetMessage(m, f)), false);
        }
        break;
      }
    }
    WalkChildren(m);
  }

  v1::SqlStatement* out_;
  std::vector<std::string> cte_names_;                 // WITH queries in scope, innermost last
  absl::flat_hash_map<std::string, int> cte_visible_;  // the same, counted by name
  absl::flat_hash_map<const pg_query::RangeVar*, bool> targets_;
  absl::flat_hash_set<std::string> read_;
  absl::flat_hash_set<std::string> written_;
  absl::flat_hash_set<std::string> functions_;
};

// ---- Output columns ------------------------------------------------------------------------

class ColumnCollector {
 public:
  explicit ColumnCollector(v1::SqlStatement* out) : out_(out) {}

  // The output of a statement: select lists of every set-operation arm, RETURNING lists,
  // COPY's column list, and the wrapped statement of EXPLAIN / PREPARE / DECLARE.
  void FromStatement(const pg_query::Node& stmt) {
    switch (stmt.node_case()) {
      case pg_query::Node::kSelectStmt:
        FromSelect(stmt.select_stmt());
        break;
      case pg_query::Node::kInsertStmt:
        FromList(stmt.insert_stmt().returning_list());
        break;
      case pg_query::Node::kUpdateStmt:
        FromList(stmt.update_stmt().returning_list());
        break;
      case pg_query::Node::kDeleteStmt:
        FromList(stmt.delete_stmt().returning_list());
        break;
      case pg_query::Node::kExplainStmt:
        FromStatement(stmt.explain_stmt().query());
        break;
      case pg_query::Node::kPrepareStmt:
        FromStatement(stmt.prepare_stmt().query());
        break;
      case pg_query::Node::kDeclareCursorStmt:
        FromStatement(stmt.declare_cursor_stmt().query());
        break;
      case pg_query::Node::kCopyStmt: {
        const pg_query::CopyStmt& copy = stmt.copy_stmt();
        if (copy.has_query()) {
          FromStatement(copy.query());
        } else if (copy.attlist().empty()) {
          Add("*");
          out_->set_selects_star(true);
        } else {
          for (const pg_query::Node& col : copy.attlist()) {
            if (col.has_string()) Add(QuoteIdentifier(col.string().sval()));
          }
        }
        break;
      }
      default:
        break;
    }
  }

 private:
  void FromSelect(const pg_query::SelectStmt& s) {
    if (s.op() != pg_query::SETOP_NONE && s.op() != pg_query::SET_OPERATION_UNDEFINED) {
      FromSelect(s.larg());
      FromSelect(s.rarg());
      return;
    }
    FromList(s.target_list());
  }

  void FromList(const google::protobuf::RepeatedPtrField<pg_query::Node>& list) {
    for (const pg_query::Node& item : list) Collect(item);
  }

  void Collect(const Message& m) {
    if (m.GetDescriptor() == pg_query::ColumnRef::descriptor()) {
      const auto& ref = static_cast<const pg_query::ColumnRef&>(m);
      for (const pg_query::Node& field : ref.fields()) {
        if (field.has_a_star()) out_->set_selects_star(true);
      }
      Add(NameFromNodes(ref.fields()));
      return;
    }
    // A subquery contributes its own output (and the left side of IN / ANY / ALL), not the
    // columns its WHERE or FROM mention.
    if (m.GetDescriptor() == pg_query::SubLink::descriptor()) {
      const auto& sublink = static_cast<const pg_query::SubLink&>(m);
      if (sublink.has_testexpr()) Collect(sublink.testexpr());
      if (sublink.subselect().has_select_stmt()) FromSelect(sublink.subselect().select_stmt());
      return;
    }
    ForEachChild(m, [this](const Message& child) { Collect(child); });
  }

  void Add(std::string column) {
    if (!column.empty() && seen_.insert(column).second) out_->add_columns(std::move(column));
  }

  v1::SqlStatement* out_;
  absl::flat_hash_set<std::string> seen_;
};

// ---- Statement kind and top-level facts ----------------------------------------------------

bool IsNullConst(const pg_query::Node& n) { return n.has_a_const() && n.a_const().isnull(); }

// LIMIT n / FETCH FIRST n ROWS of the outermost query block. LIMIT ALL and LIMIT NULL parse as
// a null constant and do not limit.
void SetLimit(const pg_query::SelectStmt& s, v1::SqlStatement* out) {
  if (!s.has_limit_count() || IsNullConst(s.limit_count())) return;
  out->set_has_limit(true);
  out->set_limit_count(-1);
  const pg_query::Node& count = s.limit_count();
  if (!count.has_a_const()) return;
  const pg_query::A_Const& c = count.a_const();
  int64_t value;
  if (c.has_ival()) {
    out->set_limit_count(c.ival().ival());
  } else if (c.has_fval() && absl::SimpleAtoi(c.fval().fval(), &value)) {
    out->set_limit_count(value);  // integers beyond int32 arrive as Float
  }
}

bool SelectHasWhere(const pg_query::SelectStmt& s) {
  if (s.op() != pg_query::SETOP_NONE && s.op() != pg_query::SET_OPERATION_UNDEFINED) {
    return SelectHasWhere(s.larg()) && SelectHasWhere(s.rarg());
  }
  return s.has_where_clause();
}

// PostgreSQL's defGetBoolean: no argument, true/on/1 enable. Anything but an explicit false
// counts as enabled (an invalid value makes the server reject the statement anyway).
bool DefElemEnabled(const pg_query::DefElem& def) {
  if (!def.has_arg()) return true;
  const pg_query::Node& arg = def.arg();
  if (arg.has_string()) {
    return !(absl::EqualsIgnoreCase(arg.string().sval(), "false") ||
             absl::EqualsIgnoreCase(arg.string().sval(), "off"));
  }
  if (arg.has_integer()) return arg.integer().ival() != 0;
  if (arg.has_boolean()) return arg.boolean().boolval();
  return true;
}

std::string DefElemString(const google::protobuf::RepeatedPtrField<pg_query::Node>& options,
                          absl::string_view name) {
  for (const pg_query::Node& opt : options) {
    if (opt.has_def_elem() && opt.def_elem().defname() == name && opt.def_elem().has_arg() &&
        opt.def_elem().arg().has_string()) {
      return opt.def_elem().arg().string().sval();
    }
  }
  return "";
}

std::string TransactionTag(const pg_query::TransactionStmt& s) {
  switch (s.kind()) {
    case pg_query::TRANS_STMT_BEGIN:
      return "BEGIN";
    case pg_query::TRANS_STMT_START:
      return "START TRANSACTION";
    case pg_query::TRANS_STMT_COMMIT:
      return "COMMIT";
    case pg_query::TRANS_STMT_ROLLBACK:
      return "ROLLBACK";
    case pg_query::TRANS_STMT_SAVEPOINT:
      return "SAVEPOINT";
    case pg_query::TRANS_STMT_RELEASE:
      return "RELEASE";
    case pg_query::TRANS_STMT_ROLLBACK_TO:
      return "ROLLBACK TO";
    case pg_query::TRANS_STMT_PREPARE:
      return "PREPARE TRANSACTION";
    case pg_query::TRANS_STMT_COMMIT_PREPARED:
      return "COMMIT PREPARED";
    case pg_query::TRANS_STMT_ROLLBACK_PREPARED:
      return "ROLLBACK PREPARED";
    default:
      return "TRANSACTION";
  }
}

// SET / RESET. Parameter names are case-insensitive in PostgreSQL (SET "Role" = x is SET ROLE),
// so role changes are recognised regardless of case.
void SetVariableKind(const pg_query::VariableSetStmt& s, v1::SqlStatement* out) {
  const bool role = absl::EqualsIgnoreCase(s.name(), "role");
  const bool session_auth = absl::EqualsIgnoreCase(s.name(), "session_authorization");
  const bool reset = s.kind() == pg_query::VAR_RESET || s.kind() == pg_query::VAR_RESET_ALL;
  if (role || session_auth) {
    out->set_kind(v1::STATEMENT_KIND_ROLE);
    out->set_kind_detail(
        absl::StrCat(reset ? "RESET " : "SET ", role ? "ROLE" : "SESSION AUTHORIZATION"));
    return;
  }
  if (s.kind() == pg_query::VAR_RESET_ALL) {
    out->set_kind(v1::STATEMENT_KIND_RESET);
    out->set_kind_detail("ALL");
    return;
  }
  out->set_kind(reset ? v1::STATEMENT_KIND_RESET : v1::STATEMENT_KIND_SET);
  out->set_kind_detail(s.name());
}

void SetCopy(const pg_query::CopyStmt& s, v1::SqlStatement* out) {
  v1::CopyInfo* copy = out->mutable_copy();
  copy->set_direction(s.is_from() ? v1::CopyInfo::DIRECTION_FROM : v1::CopyInfo::DIRECTION_TO);
  copy->set_program(s.is_program());
  copy->set_path(s.filename());
  if (s.is_program()) {
    copy->set_target(v1::CopyInfo::TARGET_PROGRAM);
  } else if (!s.filename().empty()) {
    copy->set_target(v1::CopyInfo::TARGET_FILE);
  } else {
    copy->set_target(s.is_from() ? v1::CopyInfo::TARGET_STDIN : v1::CopyInfo::TARGET_STDOUT);
  }
}

void SetKind(const pg_query::Node& stmt, v1::SqlStatement* out);

// EXPLAIN / PREPARE / DECLARE / CREATE TABLE AS: the wrapped statement's kind and filters.
void SetInner(const pg_query::Node& inner, v1::SqlStatement* out) {
  v1::SqlStatement facts;
  SetKind(inner, &facts);
  out->set_inner_kind(facts.kind());
  out->set_has_where(facts.has_where());
  out->set_has_limit(facts.has_limit());
  out->set_limit_count(facts.limit_count());
}

void SetDdl(std::string tag, v1::SqlStatement* out) {
  out->set_kind(v1::STATEMENT_KIND_DDL);
  out->set_kind_detail(std::move(tag));
}

void SetKind(const pg_query::Node& stmt, v1::SqlStatement* out) {
  using N = pg_query::Node;
  auto set = [out](v1::StatementKind kind, std::string detail) {
    out->set_kind(kind);
    out->set_kind_detail(std::move(detail));
  };
  switch (stmt.node_case()) {
    case N::kSelectStmt: {
      const pg_query::SelectStmt& s = stmt.select_stmt();
      set(v1::STATEMENT_KIND_SELECT, s.values_lists().empty() ? "SELECT" : "VALUES");
      out->set_has_where(SelectHasWhere(s));
      SetLimit(s, out);
      break;
    }
    case N::kInsertStmt:
      set(v1::STATEMENT_KIND_INSERT, "INSERT");
      break;
    case N::kUpdateStmt:
      set(v1::STATEMENT_KIND_UPDATE, "UPDATE");
      out->set_has_where(stmt.update_stmt().has_where_clause());
      break;
    case N::kDeleteStmt:
      set(v1::STATEMENT_KIND_DELETE, "DELETE");
      out->set_has_where(stmt.delete_stmt().has_where_clause());
      break;
    case N::kMergeStmt:
      set(v1::STATEMENT_KIND_MERGE, "MERGE");
      break;
    case N::kCopyStmt:
      set(v1::STATEMENT_KIND_COPY, stmt.copy_stmt().is_from() ? "COPY FROM" : "COPY TO");
      SetCopy(stmt.copy_stmt(), out);
      break;
    case N::kExplainStmt: {
      bool analyze = false;
      for (const pg_query::Node& opt : stmt.explain_stmt().options()) {
        if (opt.has_def_elem() && opt.def_elem().defname() == "analyze" &&
            DefElemEnabled(opt.def_elem())) {
          analyze = true;
        }
      }
      set(v1::STATEMENT_KIND_EXPLAIN, analyze ? "EXPLAIN ANALYZE" : "EXPLAIN");
      out->set_explain(true);
      out->set_explain_analyze(analyze);
      SetInner(stmt.explain_stmt().query(), out);
      break;
    }
    case N::kPrepareStmt:
      set(v1::STATEMENT_KIND_PREPARE, stmt.prepare_stmt().name());
      SetInner(stmt.prepare_stmt().query(), out);
      break;
    case N::kExecuteStmt:
      set(v1::STATEMENT_KIND_EXECUTE, stmt.execute_stmt().name());
      break;
    case N::kDeallocateStmt:
      set(v1::STATEMENT_KIND_DEALLOCATE,
          stmt.deallocate_stmt().name().empty() ? "ALL" : stmt.deallocate_stmt().name());
      break;
    case N::kDeclareCursorStmt:
      set(v1::STATEMENT_KIND_DECLARE, stmt.declare_cursor_stmt().portalname());
      SetInner(stmt.declare_cursor_stmt().query(), out);
      break;
    case N::kFetchStmt:
      set(v1::STATEMENT_KIND_FETCH, stmt.fetch_stmt().portalname());
      break;
    case N::kClosePortalStmt:
      set(v1::STATEMENT_KIND_CLOSE_CURSOR, stmt.close_portal_stmt().portalname().empty()
                                               ? "ALL"
                                               : stmt.close_portal_stmt().portalname());
      break;
    case N::kTransactionStmt:
      set(v1::STATEMENT_KIND_TRANSACTION, TransactionTag(stmt.transaction_stmt()));
      break;
    case N::kVariableSetStmt:
      SetVariableKind(stmt.variable_set_stmt(), out);
      break;
    case N::kVariableShowStmt:
      set(v1::STATEMENT_KIND_SHOW, stmt.variable_show_stmt().name());
      break;
    case N::kDiscardStmt:
      set(v1::STATEMENT_KIND_RESET,
          absl::StrCat("DISCARD ",
                       absl::StripPrefix(pg_query::DiscardMode_Name(stmt.discard_stmt().target()),
                                         "DISCARD_")));
      break;
    case N::kConstraintsSetStmt:
      set(v1::STATEMENT_KIND_SET, "CONSTRAINTS");
      break;
    case N::kDoStmt: {
      std::string language = DefElemString(stmt.do_stmt().args(), "language");
      set(v1::STATEMENT_KIND_DO,
          absl::StrCat("language ", language.empty() ? "plpgsql" : language));
      break;
    }
    case N::kCallStmt:
      set(v1::STATEMENT_KIND_CALL, NameFromNodes(stmt.call_stmt().funccall().funcname()));
      break;
    case N::kNotifyStmt:
      set(v1::STATEMENT_KIND_NOTIFY,
          absl::StrCat("NOTIFY ", QuoteIdentifier(stmt.notify_stmt().conditionname())));
      break;
    case N::kListenStmt:
      set(v1::STATEMENT_KIND_NOTIFY,
          absl::StrCat("LISTEN ", QuoteIdentifier(stmt.listen_stmt().conditionname())));
      break;
    case N::kUnlistenStmt:
      set(v1::STATEMENT_KIND_NOTIFY,
          stmt.unlisten_stmt().conditionname().empty()
              ? "UNLISTEN *"
              : absl::StrCat("UNLISTEN ", QuoteIdentifier(stmt.unlisten_stmt().conditionname())));
      break;
    case N::kVacuumStmt:
      set(v1::STATEMENT_KIND_VACUUM_ANALYZE,
          stmt.vacuum_stmt().is_vacuumcmd() ? "VACUUM" : "ANALYZE");
      break;
    case N::kClusterStmt:
      set(v1::STATEMENT_KIND_VACUUM_ANALYZE, "CLUSTER");
      break;
    case N::kReindexStmt:
      set(v1::STATEMENT_KIND_VACUUM_ANALYZE, "REINDEX");
      break;
    case N::kCheckPointStmt:
      set(v1::STATEMENT_KIND_VACUUM_ANALYZE, "CHECKPOINT");
      break;
    case N::kRefreshMatViewStmt:
      set(v1::STATEMENT_KIND_VACUUM_ANALYZE, "REFRESH MATERIALIZED VIEW");
      break;
    case N::kLockStmt:
      set(v1::STATEMENT_KIND_LOCK, "LOCK TABLE");
      break;
    case N::kTruncateStmt:
      set(v1::STATEMENT_KIND_TRUNCATE, "TRUNCATE TABLE");
      break;
    case N::kGrantStmt:
      set(v1::STATEMENT_KIND_GRANT, stmt.grant_stmt().is_grant() ? "GRANT" : "REVOKE");
      break;
    case N::kGrantRoleStmt:
      set(v1::STATEMENT_KIND_GRANT,
          stmt.grant_role_stmt().is_grant() ? "GRANT ROLE" : "REVOKE ROLE");
      break;
    case N::kAlterDefaultPrivilegesStmt:
      set(v1::STATEMENT_KIND_GRANT, "ALTER DEFAULT PRIVILEGES");
      break;
    case N::kCreateRoleStmt: {
      const char* what = "ROLE";
      if (stmt.create_role_stmt().stmt_type() == pg_query::ROLESTMT_USER) what = "USER";
      if (stmt.create_role_stmt().stmt_type() == pg_query::ROLESTMT_GROUP) what = "GROUP";
      set(v1::STATEMENT_KIND_ROLE, absl::StrCat("CREATE ", what));
      break;
    }
    case N::kAlterRoleStmt:
    case N::kAlterRoleSetStmt:
      set(v1::STATEMENT_KIND_ROLE, "ALTER ROLE");
      break;
    case N::kDropRoleStmt:
      set(v1::STATEMENT_KIND_ROLE, "DROP ROLE");
      break;
    case N::kReassignOwnedStmt:
      set(v1::STATEMENT_KIND_ROLE, "REASSIGN OWNED");
      break;
    case N::kDropOwnedStmt:
      set(v1::STATEMENT_KIND_ROLE, "DROP OWNED");
      break;
    case N::kCreateTableAsStmt: {
      const pg_query::CreateTableAsStmt& s = stmt.create_table_as_stmt();
      SetDdl(s.is_select_into()
                 ? "SELECT INTO"
                 : (s.objtype() == pg_query::OBJECT_MATVIEW ? "CREATE MATERIALIZED VIEW"
                                                            : "CREATE TABLE AS"),
             out);
      SetInner(s.query(), out);
      break;
    }
    case N::kAlterSystemStmt:
      SetDdl("ALTER SYSTEM", out);
      break;
    case N::kCreateStmt:
      SetDdl("CREATE TABLE", out);
      break;
    case N::kCreateForeignTableStmt:
      SetDdl("CREATE FOREIGN TABLE", out);
      break;
    case N::kViewStmt:
      SetDdl("CREATE VIEW", out);
      break;
    case N::kIndexStmt:
      SetDdl("CREATE INDEX", out);
      break;
    case N::kRuleStmt:
      SetDdl("CREATE RULE", out);
      break;
    case N::kCreateFunctionStmt:
      SetDdl(stmt.create_function_stmt().is_procedure() ? "CREATE PROCEDURE" : "CREATE FUNCTION",
             out);
      break;
    case N::kDefineStmt:
      SetDdl(absl::StrCat("CREATE ", ObjectTypeName(stmt.define_stmt().kind())), out);
      break;
    case N::kCompositeTypeStmt:
    case N::kCreateEnumStmt:
    case N::kCreateRangeStmt:
      SetDdl("CREATE TYPE", out);
      break;
    case N::kCreatedbStmt:
      SetDdl("CREATE DATABASE", out);
      break;
    case N::kDropdbStmt:
      SetDdl("DROP DATABASE", out);
      break;
    case N::kCreateTrigStmt:
      SetDdl("CREATE TRIGGER", out);
      break;
    case N::kCreateEventTrigStmt:
      SetDdl("CREATE EVENT TRIGGER", out);
      break;
    case N::kCreatePlangStmt:
      SetDdl("CREATE LANGUAGE", out);
      break;
    case N::kCreateFdwStmt:
      SetDdl("CREATE FOREIGN DATA WRAPPER", out);
      break;
    case N::kCreateForeignServerStmt:
      SetDdl("CREATE SERVER", out);
      break;
    case N::kCreateTableSpaceStmt:
      SetDdl("CREATE TABLESPACE", out);
      break;
    case N::kDropTableSpaceStmt:
      SetDdl("DROP TABLESPACE", out);
      break;
    case N::kCreateAmStmt:
      SetDdl("CREATE ACCESS METHOD", out);
      break;
    case N::kCreateStatsStmt:
      SetDdl("CREATE STATISTICS", out);
      break;
    case N::kAlterStatsStmt:
      SetDdl("ALTER STATISTICS", out);
      break;
    case N::kDropStmt:
      SetDdl(absl::StrCat("DROP ", ObjectTypeName(stmt.drop_stmt().remove_type())), out);
      break;
    case N::kAlterTableStmt:
      SetDdl(absl::StrCat("ALTER ", ObjectTypeName(stmt.alter_table_stmt().objtype())), out);
      break;
    case N::kRenameStmt:
      SetDdl(absl::StrCat("ALTER ", ObjectTypeName(stmt.rename_stmt().rename_type())), out);
      break;
    case N::kAlterObjectSchemaStmt:
      SetDdl(absl::StrCat("ALTER ", ObjectTypeName(stmt.alter_object_schema_stmt().object_type())),
             out);
      break;
    case N::kAlterOwnerStmt:
      SetDdl(absl::StrCat("ALTER ", ObjectTypeName(stmt.alter_owner_stmt().object_type())), out);
      break;
    case N::kCommentStmt:
      SetDdl("COMMENT", out);
      break;
    case N::kSecLabelStmt:
      SetDdl("SECURITY LABEL", out);
      break;
    case N::kAlterDomainStmt:
    case N::kAlterFunctionStmt:
    case N::kCreateDomainStmt:
    case N::kCreateSeqStmt:
    case N::kAlterSeqStmt:
    case N::kCreateSchemaStmt:
    case N::kAlterDatabaseStmt:
    case N::kAlterDatabaseRefreshCollStmt:
    case N::kAlterDatabaseSetStmt:
    case N::kCreateConversionStmt:
    case N::kCreateCastStmt:
    case N::kCreateOpClassStmt:
    case N::kCreateOpFamilyStmt:
    case N::kAlterOpFamilyStmt:
    case N::kAlterObjectDependsStmt:
    case N::kAlterOperatorStmt:
    case N::kAlterTypeStmt:
    case N::kAlterEnumStmt:
    case N::kAlterTsdictionaryStmt:
    case N::kAlterTsconfigurationStmt:
    case N::kAlterFdwStmt:
    case N::kAlterForeignServerStmt:
    case N::kCreateUserMappingStmt:
    case N::kAlterUserMappingStmt:
    case N::kDropUserMappingStmt:
    case N::kAlterTableSpaceOptionsStmt:
    case N::kAlterTableMoveAllStmt:
    case N::kImportForeignSchemaStmt:
    case N::kCreateExtensionStmt:
    case N::kAlterExtensionStmt:
    case N::kAlterExtensionContentsStmt:
    case N::kAlterEventTrigStmt:
    case N::kCreatePolicyStmt:
    case N::kAlterPolicyStmt:
    case N::kCreateTransformStmt:
    case N::kCreatePublicationStmt:
    case N::kAlterPublicationStmt:
    case N::kCreateSubscriptionStmt:
    case N::kAlterSubscriptionStmt:
    case N::kDropSubscriptionStmt:
    case N::kAlterCollationStmt:
    case N::kReplicaIdentityStmt: {
      const Message& inner = stmt.GetReflection()->GetMessage(
          stmt, stmt.GetDescriptor()->FindFieldByNumber(stmt.node_case()));
      SetDdl(TagFromTypeName(inner.GetDescriptor()->name()), out);
      break;
    }
    case N::kLoadStmt:
      set(v1::STATEMENT_KIND_OTHER, "LOAD");
      break;
    case N::NODE_NOT_SET:
      set(v1::STATEMENT_KIND_OTHER, "");
      break;
    default: {
      const Message& inner = stmt.GetReflection()->GetMessage(
          stmt, stmt.GetDescriptor()->FindFieldByNumber(stmt.node_case()));
      set(v1::STATEMENT_KIND_OTHER, inner.GetDescriptor()->name());
      break;
    }
  }
  // SELECT ... INTO creates a table: DDL, like CREATE TABLE AS.
  if (out->kind() == v1::STATEMENT_KIND_SELECT && out->select_into()) {
    out->set_inner_kind(v1::STATEMENT_KIND_SELECT);
    out->set_kind(v1::STATEMENT_KIND_DDL);
    out->set_kind_detail("SELECT INTO");
  }
}

v1::SqlStatement ClassifyStatement(const pg_query::RawStmt& raw, size_t sql_size) {
  v1::SqlStatement out;
  const size_t location = raw.stmt_location() > 0 ? static_cast<size_t>(raw.stmt_location()) : 0;
  out.set_location(static_cast<uint32_t>(location));
  // stmt_len 0 means "the rest of the string".
  out.set_length(raw.stmt_len() > 0
                     ? static_cast<uint32_t>(raw.stmt_len())
                     : static_cast<uint32_t>(sql_size - std::min(location, sql_size)));
  StatementWalker(&out).Walk(raw.stmt());
  SetKind(raw.stmt(), &out);
  ColumnCollector(&out).FromStatement(raw.stmt());
  for (v1::OutputColumn& c : DeriveOutputColumns(raw.stmt())) *out.add_output_columns() = std::move(c);
  for (const std::string& f : out.functions()) {
    if (ExecutesSqlText(std::string(absl::StripPrefix(f, "pg_catalog.")))) out.set_executes_sql_text(true);
  }
  return out;
}

v1::SqlClassification ParseFailure(std::string error) {
  v1::SqlClassification out;
  out.set_parse_error(true);
  out.set_error(std::move(error));
  return out;
}

std::string Describe(const SyntaxError& e) {
  if (e.position <= 0) return e.message;
  return absl::StrCat(e.message, " (character ", e.position, ")");
}

// Statements with at most this many tokens are parsed on the caller's thread.
constexpr size_t kInlineTokens = 256;

// Where the tree's plain constants (A_Const) begin.
void CollectConstLocations(const google::protobuf::Message& m, absl::flat_hash_set<int32_t>* out) {
  if (m.GetDescriptor() == pg_query::A_Const::descriptor()) {
    out->insert(static_cast<const pg_query::A_Const&>(m).location());
    return;
  }
  ForEachChild(m, [&](const google::protobuf::Message& child) { CollectConstLocations(child, out); });
}

// ClassifyShaped's test, for a string that parsed into `tree` and classified as `c`.
bool HoldsForShape(const std::string& text, const std::vector<TokenSpan>& tokens, const pg_query::ParseResult& tree,
                   const v1::SqlClassification& c) {
  if (c.parse_error() || c.statements_size() != 1) return false;
  const v1::SqlStatement& s = c.statements(0);
  // SetLimit reads LIMIT's count: the only constant value the classifier reads.
  if (s.location() != 0 || s.has_limit()) return false;
  std::optional<std::vector<LiteralSpan>> literals = LiteralSpans(text, tokens);
  if (!literals.has_value()) return false;
  absl::flat_hash_set<int32_t> consts;
  CollectConstLocations(tree, &consts);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!IsLiteral(tokens[i].token)) continue;
    // U&'...' may carry a UESCAPE clause the parser folds into it: not worth the doubt.
    if (tokens[i].token == pg_query::USCONST) return false;
    // A plain constant, or one the grammar folded a unary minus into (doNegate: the
    // constant then starts at the minus).
    if (consts.contains(tokens[i].start)) continue;
    if (i > 0 && tokens[i - 1].token == pg_query::ASCII_45 && consts.contains(tokens[i - 1].start)) continue;
    return false;  // a literal the tree keeps as something else: a name, a file, an option
  }
  // Every literal inside the statement, so only its length changes with them.
  return literals->empty() || literals->back().end <= s.length();
}

// Parser, fingerprint and classification of a string that passed the nesting guard; with
// `holds_for_shape`, also ClassifyShaped's answer.
absl::StatusOr<v1::SqlClassification> ParseAndWalk(const std::string& text, const std::vector<TokenSpan>& tokens,
                                                   bool* holds_for_shape) {
  INTERLOCK_ASSIGN_OR_RETURN(ParseOutcome parsed, ParseSql(text));
  if (const auto* error = std::get_if<SyntaxError>(&parsed)) {
    return ParseFailure(Describe(*error));
  }
  INTERLOCK_ASSIGN_OR_RETURN(FingerprintOutcome fingerprint, FingerprintSql(text));
  if (const auto* error = std::get_if<SyntaxError>(&fingerprint)) {
    return ParseFailure(Describe(*error));
  }
  v1::SqlClassification out;
  out.set_fingerprint(std::move(std::get<std::string>(fingerprint)));
  const pg_query::ParseResult& tree = std::get<ParseTree>(parsed).tree();
  for (const pg_query::RawStmt& raw : tree.stmts()) {
    *out.add_statements() = ClassifyStatement(raw, text.size());
  }
  out.set_multi_statement(out.statements_size() > 1);
  if (holds_for_shape != nullptr) *holds_for_shape = HoldsForShape(text, tokens, tree, out);
  return out;
}

}  // namespace

// PostgreSQL's client-only encodings (PG_ENCODING_IS_CLIENT_ONLY) under every name the server
// accepts for them; names compare like pg_char_to_encoding: case-insensitive, punctuation
// ignored.
bool IsClientOnlyEncoding(absl::string_view name) {
  std::string key;
  for (char c : name) {
    if (absl::ascii_isalnum(c)) key += absl::ascii_tolower(c);
  }
  static const auto* const kClientOnly = new absl::flat_hash_set<std::string>{
      "sjis", "shiftjis", "mskanji",    "win932",  "windows932", "shiftjis2004",
      "big5", "win950",   "windows950", "gbk",     "win936",     "windows936",
      "uhc",  "win949",   "windows949", "gb18030", "johab"};
  return kClientOnly->contains(key);
}

absl::StatusOr<v1::SqlClassification> Classify(absl::string_view sql) {
  return Classify(sql, SessionSettings());
}

absl::StatusOr<v1::SqlClassification> Classify(absl::string_view sql,
                                               const SessionSettings& session) {
  INTERLOCK_ASSIGN_OR_RETURN(ShapedClassification shaped, ClassifyShaped(sql, session));
  return std::move(shaped.classification);
}

absl::StatusOr<ShapedClassification> ClassifyShaped(absl::string_view sql, const SessionSettings& session) {
  if (IsClientOnlyEncoding(session.client_encoding)) {
    return ShapedClassification{ParseFailure(absl::StrCat("client_encoding ", session.client_encoding,
                                                          " cannot be analysed safely; use UTF8"))};
  }
  if (sql.size() > kMaxSqlBytes) {
    return ShapedClassification{ParseFailure(
        absl::StrCat("query of ", sql.size(), " bytes exceeds the ", kMaxSqlBytes, "-byte limit for analysis"))};
  }
  if (size_t nul = sql.find('\0'); nul != absl::string_view::npos) {
    return ShapedClassification{ParseFailure(absl::StrCat("query contains a NUL byte at offset ", nul))};
  }
  const std::string text(sql);
  ScopedStandardConformingStrings lexer_mode(session.standard_conforming_strings);

  // The lexer first: it cannot overflow the stack, and its tokens bound the tree depth the
  // parser's unguarded recursion would reach (nesting.h).
  INTERLOCK_ASSIGN_OR_RETURN(SpanOutcome scanned, ScanSqlSpans(text));
  if (const auto* error = std::get_if<SyntaxError>(&scanned)) {
    return ShapedClassification{ParseFailure(Describe(*error))};
  }
  const auto& spans = std::get<std::vector<TokenSpan>>(scanned);
  std::vector<pg_query::Token> tokens;
  tokens.reserve(spans.size());
  for (const TokenSpan& t : spans) tokens.push_back(t.token);
  const int depth = EstimateNestingDepth(tokens);
  if (depth > kMaxNestingDepth) {
    return ShapedClassification{ParseFailure(absl::StrCat("statement too deeply nested to analyse (depth estimate ",
                                                          depth, " > ", kMaxNestingDepth, ")"))};
  }
  // Short strings parse on the caller's stack: a parse tree has at most a few levels per token,
  // so this needs well under 1 MiB whatever the estimate missed. Longer ones get a thread with
  // a stack no statement the grammar accepts can exhaust.
  ShapedClassification out;
  absl::StatusOr<v1::SqlClassification> result = absl::InternalError("sql: parser did not run");
  if (tokens.size() <= kInlineTokens) {
    result = ParseAndWalk(text, spans, &out.holds_for_shape);
  } else {
    INTERLOCK_RETURN_IF_ERROR(RunOnParserStack([&] {
      ScopedStandardConformingStrings thread_lexer_mode(session.standard_conforming_strings);
      result = ParseAndWalk(text, spans, &out.holds_for_shape);
    }));
  }
  if (!result.ok()) return result.status();
  out.classification = std::move(*result);
  return out;
}

}  // namespace interlock::sql
