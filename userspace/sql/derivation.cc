#include "userspace/sql/derivation.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/sql/tree.h"

namespace interlock::sql {
namespace {

using google::protobuf::Message;
using Shape = v1::OutputColumn::Shape;
using NodeList = google::protobuf::RepeatedPtrField<pg_query::Node>;

// A source as a comparable key, for deduplication.
using SourceKey = std::tuple<std::string, std::string, std::string>;

class Sources {
 public:
  void Add(std::string schema, std::string table, std::string column) {
    if (anything_) return;
    keys_.emplace(std::move(schema), std::move(table), std::move(column));
    if (keys_.size() > kMaxSourcesPerColumn) SetAnything();
  }
  void Merge(const Sources& other) {
    if (other.anything_) SetAnything();
    for (const SourceKey& k : other.keys_) Add(std::get<0>(k), std::get<1>(k), std::get<2>(k));
  }
  void SetAnything() {
    anything_ = true;
    keys_.clear();
    keys_.emplace("", "*", "*");
  }
  bool empty() const { return keys_.empty(); }
  void To(v1::OutputColumn* out) const {
    for (const auto& [schema, table, column] : keys_) {
      v1::SourceColumn* s = out->add_sources();
      s->set_schema(schema);
      s->set_table(table);
      s->set_column(column);
    }
  }

 private:
  bool anything_ = false;
  std::set<SourceKey> keys_;
};

struct Col {
  std::string name;
  Shape shape = v1::OutputColumn::SHAPE_DERIVED;
  Sources sources;
};

// A FROM item, by the name the statement refers to it with.
struct Entry {
  std::string alias;
  bool is_table = false;
  std::string schema, table;  // is_table
  bool renamed = false;       // is_table with column aliases: names no longer say which column
  bool columns_known = false;
  std::vector<Col> columns;   // !is_table && columns_known
  Sources any;                // !is_table && !columns_known: what every column may come from
  bool in_star = true;        // a join's alias repeats its sides: not expanded again by `*`
};

struct Cte {
  std::string name;
  std::vector<Col> columns;
};

// One query level: its FROM entries and WITH names, and the level around it (correlated
// references and CTEs of enclosing queries).
struct Scope {
  const Scope* outer = nullptr;
  std::vector<Entry> entries;
  std::vector<Cte> ctes;

  const Cte* FindCte(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->outer) {
      for (auto it = s->ctes.rbegin(); it != s->ctes.rend(); ++it) {
        if (it->name == name) return &*it;
      }
    }
    return nullptr;
  }
};

std::string StringOf(const pg_query::Node& n) { return n.has_string() ? n.string().sval() : std::string(); }

bool IsComparisonOperator(const NodeList& name) {
  if (name.empty()) return false;
  static const absl::flat_hash_set<std::string> kOps = {"=", "<>", "!=", "<", ">", "<=", ">=", "~~", "!~~",
                                                        "~~*", "!~~*", "~", "!~", "~*", "!~*"};
  return kOps.contains(StringOf(name[name.size() - 1]));
}

// Functions whose result reveals no value of their arguments (besides what any filter
// does): counts and sizes. Documented in SECURITY.md with the one-bit oracle residual.
bool IsNonRevealingFunction(const pg_query::FuncCall& f) {
  if (f.funcname().empty()) return false;
  static const absl::flat_hash_set<std::string> kNames = {
      "count", "length", "char_length", "character_length", "octet_length", "bit_length", "pg_column_size"};
  return kNames.contains(StringOf(f.funcname(f.funcname_size() - 1)));
}

class Deriver {
 public:
  std::vector<Col> Statement(const pg_query::Node& stmt, const Scope* outer) {
    switch (stmt.node_case()) {
      case pg_query::Node::kSelectStmt:
        return Select(stmt.select_stmt(), outer);
      case pg_query::Node::kInsertStmt: {
        const auto& s = stmt.insert_stmt();
        return Returning(s.relation(), nullptr, s.returning_list(), s.has_with_clause() ? &s.with_clause() : nullptr,
                         outer);
      }
      case pg_query::Node::kUpdateStmt: {
        const auto& s = stmt.update_stmt();
        return Returning(s.relation(), &s.from_clause(), s.returning_list(),
                         s.has_with_clause() ? &s.with_clause() : nullptr, outer);
      }
      case pg_query::Node::kDeleteStmt: {
        const auto& s = stmt.delete_stmt();
        return Returning(s.relation(), &s.using_clause(), s.returning_list(),
                         s.has_with_clause() ? &s.with_clause() : nullptr, outer);
      }
      case pg_query::Node::kExplainStmt:
        return {};  // EXPLAIN returns the plan, not the rows (EXPLAIN ANALYZE runs them unseen)
      case pg_query::Node::kPrepareStmt:
        return Statement(stmt.prepare_stmt().query(), outer);
      case pg_query::Node::kDeclareCursorStmt:
        return Statement(stmt.declare_cursor_stmt().query(), outer);
      case pg_query::Node::kCreateTableAsStmt:
        return Statement(stmt.create_table_as_stmt().query(), outer);
      case pg_query::Node::kCopyStmt: {
        const auto& c = stmt.copy_stmt();
        if (c.is_from()) return {};
        if (c.has_query()) return Statement(c.query(), outer);
        if (!c.has_relation()) return {};
        Col col;
        col.name = "*";
        col.shape = v1::OutputColumn::SHAPE_STAR;
        col.sources.Add(c.relation().schemaname(), c.relation().relname(), "*");
        return {std::move(col)};
      }
      default:
        return {};
    }
  }

 private:
  std::vector<Col> Select(const pg_query::SelectStmt& s, const Scope* outer) {
    Scope scope;
    scope.outer = outer;
    if (s.has_with_clause()) With(s.with_clause(), &scope);
    if (s.op() != pg_query::SETOP_NONE && s.op() != pg_query::SET_OPERATION_UNDEFINED) {
      return MergeArms(Select(s.larg(), &scope), Select(s.rarg(), &scope));
    }
    if (!s.values_lists().empty()) {
      std::vector<Col> cols;
      for (const pg_query::Node& row : s.values_lists()) {
        if (!row.has_list()) continue;
        std::vector<Col> arm;
        for (const pg_query::Node& item : row.list().items()) {
          arm.push_back(Expression(item, scope, absl::StrCat("column", arm.size() + 1)));
        }
        cols = cols.empty() ? std::move(arm) : MergeArms(std::move(cols), std::move(arm));
      }
      return cols;
    }
    for (const pg_query::Node& item : s.from_clause()) FromItem(item, &scope);
    return TargetList(s.target_list(), scope);
  }

  std::vector<Col> Returning(const pg_query::RangeVar& target, const NodeList* from, const NodeList& returning,
                             const pg_query::WithClause* with, const Scope* outer) {
    if (returning.empty()) return {};
    Scope scope;
    scope.outer = outer;
    if (with != nullptr) With(*with, &scope);
    scope.entries.push_back(TableEntry(target));
    if (from != nullptr) {
      for (const pg_query::Node& item : *from) FromItem(item, &scope);
    }
    return TargetList(returning, scope);
  }

  void With(const pg_query::WithClause& with, Scope* scope) {
    for (const pg_query::Node& n : with.ctes()) {
      if (!n.has_common_table_expr()) continue;
      const pg_query::CommonTableExpr& cte = n.common_table_expr();
      std::vector<Col> cols;
      const pg_query::Node& q = cte.ctequery();
      if (with.recursive() && q.has_select_stmt() && q.select_stmt().op() != pg_query::SETOP_NONE &&
          q.select_stmt().op() != pg_query::SET_OPERATION_UNDEFINED) {
        // The non-recursive arm defines the columns the recursive arm refers to by name.
        std::vector<Col> first = Select(q.select_stmt().larg(), scope);
        Rename(cte.aliascolnames(), &first);
        scope->ctes.push_back({cte.ctename(), std::move(first)});
        cols = Statement(q, scope);
        scope->ctes.pop_back();
      } else {
        cols = Statement(q, scope);  // also INSERT/UPDATE/DELETE ... RETURNING
      }
      Rename(cte.aliascolnames(), &cols);
      scope->ctes.push_back({cte.ctename(), std::move(cols)});
    }
  }

  static void Rename(const NodeList& names, std::vector<Col>* cols) {
    for (int i = 0; i < names.size() && static_cast<size_t>(i) < cols->size(); ++i) {
      (*cols)[i].name = StringOf(names[i]);
    }
  }

  static std::vector<Col> MergeArms(std::vector<Col> l, std::vector<Col> r) {
    bool star = false;
    for (const auto* side : {&l, &r}) {
      for (const Col& c : *side) star |= c.shape == v1::OutputColumn::SHAPE_STAR;
    }
    if (star || l.size() != r.size()) {
      // Positions cannot be paired without the catalog: one star-like column that stands
      // for all of them.
      Col all;
      all.name = "*";
      all.shape = v1::OutputColumn::SHAPE_STAR;
      for (const auto* side : {&l, &r}) {
        for (const Col& c : *side) all.sources.Merge(c.sources);
      }
      return {std::move(all)};
    }
    for (size_t i = 0; i < l.size(); ++i) {
      l[i].sources.Merge(r[i].sources);
      if (l[i].shape != r[i].shape) {
        bool both_quiet = l[i].shape == v1::OutputColumn::SHAPE_NON_REVEALING &&
                          r[i].shape == v1::OutputColumn::SHAPE_NON_REVEALING;
        l[i].shape = both_quiet ? v1::OutputColumn::SHAPE_NON_REVEALING : v1::OutputColumn::SHAPE_DERIVED;
      }
    }
    return l;
  }

  static Entry TableEntry(const pg_query::RangeVar& rv) {
    Entry e;
    e.is_table = true;
    e.schema = rv.schemaname();
    e.table = rv.relname();
    e.alias = rv.has_alias() && !rv.alias().aliasname().empty() ? rv.alias().aliasname() : rv.relname();
    e.renamed = rv.has_alias() && !rv.alias().colnames().empty();
    return e;
  }

  void FromItem(const pg_query::Node& item, Scope* scope) {
    switch (item.node_case()) {
      case pg_query::Node::kRangeVar: {
        const pg_query::RangeVar& rv = item.range_var();
        const Cte* cte = rv.schemaname().empty() ? scope->FindCte(rv.relname()) : nullptr;
        if (cte == nullptr) {
          scope->entries.push_back(TableEntry(rv));
          return;
        }
        Entry e;
        e.alias = rv.has_alias() && !rv.alias().aliasname().empty() ? rv.alias().aliasname() : rv.relname();
        e.columns_known = true;
        e.columns = cte->columns;
        if (rv.has_alias()) Rename(rv.alias().colnames(), &e.columns);
        scope->entries.push_back(std::move(e));
        return;
      }
      case pg_query::Node::kRangeSubselect: {
        const pg_query::RangeSubselect& sub = item.range_subselect();
        Entry e;
        e.alias = sub.has_alias() ? sub.alias().aliasname() : std::string();
        e.columns_known = true;
        e.columns = Statement(sub.subquery(), scope);
        if (sub.has_alias()) Rename(sub.alias().colnames(), &e.columns);
        for (const Col& c : e.columns) {
          if (c.shape != v1::OutputColumn::SHAPE_STAR) continue;
          e.columns_known = false;  // a star over a table inside: names no longer say which
          e.any = WholeRow(e);
        }
        scope->entries.push_back(std::move(e));
        return;
      }
      case pg_query::Node::kJoinExpr: {
        const pg_query::JoinExpr& j = item.join_expr();
        size_t first = scope->entries.size();
        FromItem(j.larg(), scope);
        FromItem(j.rarg(), scope);
        if (j.has_alias() && !j.alias().aliasname().empty()) {
          Entry e;
          e.alias = j.alias().aliasname();
          e.in_star = false;
          for (size_t i = first; i < scope->entries.size(); ++i) e.any.Merge(WholeRow(scope->entries[i]));
          scope->entries.push_back(std::move(e));
        }
        return;
      }
      case pg_query::Node::kRangeTableSample:
        FromItem(item.range_table_sample().relation(), scope);
        return;
      default: {
        // Functions in FROM (unnest(ARRAY[ssn]), json_to_record(...)), XMLTABLE and
        // anything newer: columns unknown, each may come from any input.
        Entry e;
        const Message* alias = nullptr;
        if (item.has_range_function() && item.range_function().has_alias()) alias = &item.range_function().alias();
        if (item.has_range_table_func() && item.range_table_func().has_alias()) {
          alias = &item.range_table_func().alias();
        }
        if (alias != nullptr) e.alias = static_cast<const pg_query::Alias*>(alias)->aliasname();
        if (e.alias.empty() && item.has_range_function() && !item.range_function().functions().empty()) {
          e.alias = FunctionNameIn(item.range_function().functions(0));
        }
        CollectSources(item, *scope, &e.any);
        scope->entries.push_back(std::move(e));
        return;
      }
    }
  }

  // ROWS FROM's item is a List(FuncCall, coldeflist).
  static std::string FunctionNameIn(const pg_query::Node& n) {
    const pg_query::Node* f = &n;
    if (n.has_list() && !n.list().items().empty()) f = &n.list().items(0);
    if (!f->has_func_call() || f->func_call().funcname().empty()) return "";
    const auto& name = f->func_call().funcname();
    return StringOf(name[name.size() - 1]);
  }

  static Sources WholeRow(const Entry& e) {
    Sources s;
    if (e.is_table) {
      s.Add(e.schema, e.table, "*");
      return s;
    }
    for (const Col& c : e.columns) s.Merge(c.sources);
    s.Merge(e.any);
    return s;
  }

  // Appends `e`'s columns for a star over it.
  static void ExpandStar(const Entry& e, std::vector<Col>* out) {
    if (e.is_table) {
      Col c;
      c.name = "*";
      c.shape = v1::OutputColumn::SHAPE_STAR;
      c.sources.Add(e.schema, e.table, "*");
      out->push_back(std::move(c));
      return;
    }
    if (e.columns_known) {
      for (const Col& c : e.columns) out->push_back(c);
      return;
    }
    Col c;
    c.name = "*";
    c.shape = v1::OutputColumn::SHAPE_STAR;
    c.sources.Merge(e.any);
    out->push_back(std::move(c));
  }

  std::vector<Col> TargetList(const NodeList& targets, const Scope& scope) {
    std::vector<Col> out;
    for (const pg_query::Node& t : targets) {
      if (!t.has_res_target()) continue;
      const pg_query::ResTarget& rt = t.res_target();
      const pg_query::Node& val = rt.val();
      if (val.has_column_ref() && !val.column_ref().fields().empty() &&
          val.column_ref().fields(val.column_ref().fields_size() - 1).has_a_star()) {
        Star(val.column_ref(), scope, &out);
        continue;
      }
      Col c = Expression(val, scope, "?column?");
      if (!rt.name().empty()) c.name = rt.name();
      out.push_back(std::move(c));
    }
    return out;
  }

  void Star(const pg_query::ColumnRef& ref, const Scope& scope, std::vector<Col>* out) {
    std::vector<std::string> qualifier;
    for (const pg_query::Node& f : ref.fields()) {
      if (f.has_string()) qualifier.push_back(f.string().sval());
    }
    if (qualifier.empty()) {
      for (const Entry& e : scope.entries) {
        if (e.in_star) ExpandStar(e, out);
      }
      return;
    }
    if (const Entry* e = FindEntry(qualifier, scope); e != nullptr) {
      ExpandStar(*e, out);
      return;
    }
    Col c;  // a qualifier the text does not define: the server's to resolve, ours to mask
    c.name = "*";
    c.shape = v1::OutputColumn::SHAPE_STAR;
    c.sources.Add(qualifier.size() > 1 ? qualifier[qualifier.size() - 2] : "", qualifier.back(), "*");
    out->push_back(std::move(c));
  }

  // The entry `qualifier` names (alias; or schema.table for an unaliased table), innermost
  // scope first.
  static const Entry* FindEntry(const std::vector<std::string>& qualifier, const Scope& scope) {
    for (const Scope* s = &scope; s != nullptr; s = s->outer) {
      for (const Entry& e : s->entries) {
        if (qualifier.size() == 1 && e.alias == qualifier[0]) return &e;
        if (qualifier.size() >= 2 && e.is_table && e.alias == e.table &&
            e.table == qualifier[qualifier.size() - 1] && e.schema == qualifier[qualifier.size() - 2]) {
          return &e;
        }
      }
    }
    return nullptr;
  }

  Col Expression(const pg_query::Node& val, const Scope& scope, std::string default_name) {
    Col c;
    c.name = std::move(default_name);
    CollectSources(val, scope, &c.sources);
    if (val.has_column_ref()) {
      c.shape = v1::OutputColumn::SHAPE_COLUMN;
      const auto& fields = val.column_ref().fields();
      c.name = StringOf(fields[fields.size() - 1]);
      // A column of a subquery keeps that column's shape (`SELECT x FROM (SELECT
      // reverse(ssn) x ...)` is derived).
      std::optional<Shape> inner = ShapeOfReference(val.column_ref(), scope);
      if (inner.has_value()) c.shape = *inner;
    } else if (val.has_func_call()) {
      const auto& name = val.func_call().funcname();
      if (!name.empty()) c.name = StringOf(name[name.size() - 1]);
      if (IsNonRevealingFunction(val.func_call())) c.shape = v1::OutputColumn::SHAPE_NON_REVEALING;
    } else if ((val.has_a_expr() &&
                (val.a_expr().kind() == pg_query::AEXPR_OP ? IsComparisonOperator(val.a_expr().name())
                                                           : val.a_expr().kind() != pg_query::AEXPR_NULLIF)) ||
               val.has_bool_expr() || val.has_null_test() || val.has_boolean_test() ||
               (val.has_sub_link() && val.sub_link().sub_link_type() == pg_query::EXISTS_SUBLINK)) {
      c.shape = v1::OutputColumn::SHAPE_NON_REVEALING;
    }
    return c;
  }

  // The shape of the column a plain reference resolves to, when it is a subquery's or CTE's
  // column; nullopt for a table column or an unresolved name.
  std::optional<Shape> ShapeOfReference(const pg_query::ColumnRef& ref, const Scope& scope) {
    std::vector<std::string> names;
    for (const pg_query::Node& f : ref.fields()) names.push_back(StringOf(f));
    std::optional<Shape> found;
    auto consider = [&](const Entry& e, const std::string& column) {
      if (e.is_table) return;
      bool hit = false;
      for (const Col& c : e.columns) {
        if (c.name != column) continue;
        hit = true;
        if (!found.has_value() || c.shape == v1::OutputColumn::SHAPE_DERIVED) found = c.shape;
      }
      if (!hit && !e.columns_known) found = v1::OutputColumn::SHAPE_DERIVED;
    };
    if (names.size() == 1) {
      for (const Scope* s = &scope; s != nullptr && !found.has_value(); s = s->outer) {
        for (const Entry& e : s->entries) consider(e, names[0]);
      }
    } else if (names.size() == 2) {
      if (const Entry* e = FindEntry({names[0]}, scope); e != nullptr) consider(*e, names[1]);
    }
    return found;
  }

  // Every source any column reference under `m` may read, resolving subqueries in their own
  // scope (with `scope` around them).
  void CollectSources(const Message& m, const Scope& scope, Sources* out) {
    if (m.GetDescriptor() == pg_query::ColumnRef::descriptor()) {
      Resolve(static_cast<const pg_query::ColumnRef&>(m), scope, out);
      return;
    }
    if (m.GetDescriptor() == pg_query::SubLink::descriptor()) {
      const auto& sub = static_cast<const pg_query::SubLink&>(m);
      if (sub.has_testexpr()) CollectSources(sub.testexpr(), scope, out);
      for (const Col& c : Statement(sub.subselect(), &scope)) out->Merge(c.sources);
      return;
    }
    if (m.GetDescriptor() == pg_query::SelectStmt::descriptor()) {
      for (const Col& c : Select(static_cast<const pg_query::SelectStmt&>(m), &scope)) out->Merge(c.sources);
      return;
    }
    ForEachChild(m, [&](const Message& child) { CollectSources(child, scope, out); });
  }

  void Resolve(const pg_query::ColumnRef& ref, const Scope& scope, Sources* out) {
    std::vector<std::string> names;
    bool star = false;
    for (const pg_query::Node& f : ref.fields()) {
      if (f.has_a_star()) {
        star = true;
      } else {
        names.push_back(StringOf(f));
      }
    }
    if (star) {  // `c.*` inside an expression: the whole row
      if (names.empty()) {
        for (const Entry& e : scope.entries) out->Merge(WholeRow(e));
      } else if (const Entry* e = FindEntry(names, scope); e != nullptr) {
        out->Merge(WholeRow(*e));
      } else {
        out->Add(names.size() > 1 ? names[names.size() - 2] : "", names.back(), "*");
      }
      return;
    }
    if (names.empty()) return;
    if (names.size() == 1) {
      ResolveName(names[0], scope, out);
      return;
    }
    // q.c, s.t.c, db.s.t.c: the relation named by the qualifier; or a field of a composite
    // column q (`(c).f` arrives without its parentheses): both, to be safe.
    std::vector<std::string> qualifier(names.begin(), names.end() - 1);
    const std::string& column = names.back();
    if (const Entry* e = FindEntry(qualifier, scope); e != nullptr) {
      ColumnOf(*e, column, out);
      return;
    }
    out->Add(qualifier.size() >= 2 ? qualifier[qualifier.size() - 2] : "", qualifier.back(), column);
    ResolveName(qualifier[0], scope, out);
  }

  // An unqualified name. The server takes the innermost query level that has a column of
  // that name; without the catalog a table may or may not have one, so tables at every level
  // are candidates, and the search stops only at a level whose subquery or CTE defines the
  // name.
  void ResolveName(const std::string& name, const Scope& scope, Sources* out) {
    bool any = false;
    for (const Scope* s = &scope; s != nullptr; s = s->outer) {
      bool definitive = false;
      for (const Entry& e : s->entries) {
        if (e.alias == name) {  // a whole-row reference (`row_to_json(c)`)
          out->Merge(WholeRow(e));
          any = true;
        }
        if (!e.in_star) continue;  // a join's alias: its sides are entries of their own
        if (e.is_table || !e.columns_known) {
          ColumnOf(e, name, out);
          any = true;
        } else if (HasColumn(e, name)) {
          ColumnOf(e, name, out);
          any = definitive = true;
        }
      }
      if (definitive) return;
    }
    if (!any) out->Add("", "*", name);  // defined nowhere in the text: any table's column of that name
  }

  static bool HasColumn(const Entry& e, const std::string& name) {
    for (const Col& c : e.columns) {
      if (c.name == name) return true;
    }
    return false;
  }

  static void ColumnOf(const Entry& e, const std::string& column, Sources* out) {
    if (e.is_table) {
      out->Add(e.schema, e.table, e.renamed ? "*" : column);
      return;
    }
    if (!e.columns_known) {
      out->Merge(e.any);
      return;
    }
    bool hit = false;
    for (const Col& c : e.columns) {
      if (c.name == column) {
        out->Merge(c.sources);
        hit = true;
      }
    }
    if (!hit) out->Merge(WholeRow(e));  // a name the server will resolve some other way
  }
};

}  // namespace

std::vector<v1::OutputColumn> DeriveOutputColumns(const pg_query::Node& stmt) {
  std::vector<v1::OutputColumn> out;
  for (const Col& c : Deriver().Statement(stmt, nullptr)) {
    v1::OutputColumn& o = out.emplace_back();
    o.set_shape(c.shape);
    o.set_name(c.name);
    c.sources.To(&o);
  }
  return out;
}

bool ExecutesSqlText(const std::string& function_name) {
  static const absl::flat_hash_set<std::string> kExact = {
      "query_to_xml",   "query_to_xmlschema",   "query_to_xml_and_xmlschema", "cursor_to_xml",
      "cursor_to_xmlschema", "table_to_xml",    "table_to_xmlschema",         "table_to_xml_and_xmlschema",
      "schema_to_xml",  "schema_to_xmlschema",  "schema_to_xml_and_xmlschema", "database_to_xml",
      "database_to_xmlschema", "database_to_xml_and_xmlschema", "ts_stat"};
  return kExact.contains(function_name) || absl::StartsWith(function_name, "dblink");
}

}  // namespace interlock::sql
