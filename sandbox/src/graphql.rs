//! GitHub's GraphQL endpoint, as far as rotor calls it: `viewer` (who the token is) and the
//! mutation `createCommitOnBranch` (the commit GitHub makes and signs, see [`crate::commits`]).
//!
//! Every request is validated against GitHub's published schema
//! (`tests/fixtures/github/graphql/schema.graphql`, parsed with `graphql-parser`): the document
//! must parse, every selected field and argument must exist on its type, a composite field
//! needs a selection and a leaf may have none, and every variable's value must match its
//! declared input type (no unknown input field, no required one missing, scalars of the right
//! kind). A request that fails is answered as GitHub answers one: `200` with `errors` and no
//! `data`. Every answer is projected from the stand-in's whole object onto the selection and
//! checked against the field types (nullability, scalars, enums) before it is sent; a value that
//! would not fit is a `500` naming it, so the stand-in cannot drift from the schema unnoticed.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use graphql_parser::query as q;
use graphql_parser::schema as s;
use serde_json::{Map, Value, json};

use crate::commits::FieldError;
use crate::github::{Shared, identity, user_id};

/// GitHub's schema, as published.
const SCHEMA: &str = include_str!("../../tests/fixtures/github/graphql/schema.graphql");

/// A type reference.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ty {
    Named(String),
    List(Box<Self>),
    NonNull(Box<Self>),
}

impl Ty {
    fn of<'a, T: q::Text<'a>>(t: &q::Type<'a, T>) -> Self {
        match t {
            q::Type::NamedType(n) => Self::Named(n.as_ref().to_owned()),
            q::Type::ListType(inner) => Self::List(Box::new(Self::of(inner))),
            q::Type::NonNullType(inner) => Self::NonNull(Box::new(Self::of(inner))),
        }
    }

    fn name(&self) -> &str {
        match self {
            Self::Named(n) => n,
            Self::List(t) | Self::NonNull(t) => t.name(),
        }
    }
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(n) => write!(f, "{n}"),
            Self::List(t) => write!(f, "[{t}]"),
            Self::NonNull(t) => write!(f, "{t}!"),
        }
    }
}

/// A field of an object or interface type.
#[derive(Debug)]
struct FieldDef {
    ty: Ty,
    args: Vec<(String, Ty, bool)>,
}

/// What a named type is.
#[derive(Debug)]
enum TypeDef {
    Scalar,
    Enum(Vec<String>),
    Composite(HashMap<String, FieldDef>),
    Union,
    Input(Vec<(String, Ty, bool)>),
}

/// The schema's types by name.
struct Schema(HashMap<String, TypeDef>);

fn schema() -> &'static Result<Schema, String> {
    static SCHEMA_TYPES: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA_TYPES.get_or_init(|| {
        let doc = s::parse_schema::<String>(SCHEMA).map_err(|e| e.to_string())?;
        let mut types = HashMap::new();
        let fields = |fs: &[s::Field<'_, String>]| {
            fs.iter()
                .map(|f| {
                    let args = f
                        .arguments
                        .iter()
                        .map(|a| {
                            (
                                a.name.clone(),
                                Ty::of(&a.value_type),
                                a.default_value.is_some(),
                            )
                        })
                        .collect();
                    (
                        f.name.clone(),
                        FieldDef {
                            ty: Ty::of(&f.field_type),
                            args,
                        },
                    )
                })
                .collect::<HashMap<_, _>>()
        };
        for def in &doc.definitions {
            let s::Definition::TypeDefinition(t) = def else {
                continue;
            };
            let (name, d) = match t {
                s::TypeDefinition::Scalar(t) => (&t.name, TypeDef::Scalar),
                s::TypeDefinition::Enum(t) => (
                    &t.name,
                    TypeDef::Enum(t.values.iter().map(|v| v.name.clone()).collect()),
                ),
                s::TypeDefinition::Object(t) => (&t.name, TypeDef::Composite(fields(&t.fields))),
                s::TypeDefinition::Interface(t) => (&t.name, TypeDef::Composite(fields(&t.fields))),
                s::TypeDefinition::Union(t) => (&t.name, TypeDef::Union),
                s::TypeDefinition::InputObject(t) => (
                    &t.name,
                    TypeDef::Input(
                        t.fields
                            .iter()
                            .map(|f| {
                                (
                                    f.name.clone(),
                                    Ty::of(&f.value_type),
                                    f.default_value.is_some(),
                                )
                            })
                            .collect(),
                    ),
                ),
            };
            types.insert(name.clone(), d);
        }
        for builtin in ["String", "Int", "Float", "Boolean", "ID"] {
            types.insert(builtin.to_owned(), TypeDef::Scalar);
        }
        Ok(Schema(types))
    })
}

/// One selected field, its arguments resolved to JSON.
#[derive(Debug, Clone)]
pub(crate) struct Sel {
    /// The field's name.
    pub(crate) name: String,
    /// Its key in the answer (the alias, or the name).
    pub(crate) key: String,
    /// Its arguments.
    pub(crate) args: Map<String, Value>,
    /// Its selection.
    sub: Vec<Self>,
    /// Where it is in the document.
    line: usize,
    column: usize,
}

/// A GraphQL error as GitHub writes it.
fn error(message: impl Into<String>, line: usize, column: usize) -> Value {
    json!({"message": message.into(), "locations": [{"line": line, "column": column}]})
}

impl Schema {
    fn get(&self, name: &str) -> Option<&TypeDef> {
        self.0.get(name)
    }

    /// Whether `v` is a valid value of input type `ty`; `Err` says where it is not.
    fn input(&self, ty: &Ty, v: &Value, at: &str) -> Result<(), String> {
        match (ty, v) {
            (Ty::NonNull(_), Value::Null) => Err(format!("{at}: expected a value of type {ty}")),
            (Ty::NonNull(inner), v) => self.input(inner, v, at),
            (_, Value::Null) => Ok(()),
            (Ty::List(inner), Value::Array(items)) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| self.input(inner, item, &format!("{at}[{i}]"))),
            (Ty::List(inner), v) => self.input(inner, v, at),
            (Ty::Named(name), v) => match self.get(name) {
                Some(TypeDef::Input(fields)) => {
                    let Value::Object(map) = v else {
                        return Err(format!("{at}: expected an input object {name}"));
                    };
                    for key in map.keys() {
                        if !fields.iter().any(|(f, ..)| f == key) {
                            return Err(format!("{at}.{key}: {name} has no field {key}"));
                        }
                    }
                    for (field, fty, defaulted) in fields {
                        match map.get(field) {
                            Some(value) => self.input(fty, value, &format!("{at}.{field}"))?,
                            None if matches!(fty, Ty::NonNull(_)) && !defaulted => {
                                return Err(format!(
                                    "{at}.{field}: the required field {field} ({fty}) is missing"
                                ));
                            }
                            None => {}
                        }
                    }
                    Ok(())
                }
                Some(TypeDef::Enum(values)) => match v.as_str() {
                    Some(s) if values.iter().any(|x| x == s) => Ok(()),
                    _ => Err(format!("{at}: not a value of the enum {name}")),
                },
                Some(TypeDef::Scalar) => scalar(name, v)
                    .then_some(())
                    .ok_or_else(|| format!("{at}: not a valid {name}")),
                _ => Err(format!("{at}: {name} is not an input type")),
            },
        }
    }

    /// The selection of `set` on the type `on`, checked.
    fn select(
        &self,
        set: &q::SelectionSet<'_, String>,
        on: &str,
        vars: &HashMap<String, (Ty, Value)>,
    ) -> Result<Vec<Sel>, Value> {
        let Some(TypeDef::Composite(fields)) = self.get(on) else {
            return Err(error(format!("{on} has no fields to select"), 1, 1));
        };
        let mut out = Vec::new();
        for item in &set.items {
            let q::Selection::Field(f) = item else {
                return Err(error(
                    "the stand-in serves no fragments",
                    set.span.0.line,
                    set.span.0.column,
                ));
            };
            let (line, column) = (f.position.line, f.position.column);
            if f.name == "__typename" {
                out.push(Sel {
                    name: f.name.clone(),
                    key: f.alias.clone().unwrap_or_else(|| f.name.clone()),
                    args: Map::new(),
                    sub: Vec::new(),
                    line,
                    column,
                });
                continue;
            }
            let Some(def) = fields.get(&f.name) else {
                return Err(json!({
                    "path": [f.name], "extensions": {"code": "undefinedField", "typeName": on, "fieldName": f.name},
                    "locations": [{"line": line, "column": column}],
                    "message": format!("Field '{}' doesn't exist on type '{on}'", f.name)
                }));
            };
            let mut args = Map::new();
            for (name, value) in &f.arguments {
                let Some((_, aty, _)) = def.args.iter().find(|(a, ..)| a == name) else {
                    return Err(error(
                        format!("Field '{}' doesn't accept argument '{name}'", f.name),
                        line,
                        column,
                    ));
                };
                let v = match value {
                    q::Value::Variable(var) => {
                        let Some((vty, v)) = vars.get(var) else {
                            return Err(error(
                                format!("Variable ${var} is used by {} but not declared", f.name),
                                line,
                                column,
                            ));
                        };
                        // A variable fits an argument of its own type, or of that type
                        // without the non-null mark.
                        if vty != aty && !matches!(vty, Ty::NonNull(inner) if **inner == *aty) {
                            return Err(error(
                                format!(
                                    "Type mismatch on variable ${var} and argument {name} ({vty} / {aty})"
                                ),
                                line,
                                column,
                            ));
                        }
                        v.clone()
                    }
                    literal => {
                        let v = literal_json(literal);
                        self.input(aty, &v, name)
                            .map_err(|e| error(e, line, column))?;
                        v
                    }
                };
                args.insert(name.clone(), v);
            }
            for (name, aty, defaulted) in &def.args {
                if matches!(aty, Ty::NonNull(_)) && !defaulted && !args.contains_key(name) {
                    return Err(error(
                        format!("Field '{}' is missing required arguments: {name}", f.name),
                        line,
                        column,
                    ));
                }
            }
            let leaf = matches!(
                self.get(def.ty.name()),
                Some(TypeDef::Scalar | TypeDef::Enum(_))
            );
            let sub = if leaf {
                if !f.selection_set.items.is_empty() {
                    return Err(error(
                        format!("Selections can't be made on scalars (field '{}')", f.name),
                        line,
                        column,
                    ));
                }
                Vec::new()
            } else {
                if f.selection_set.items.is_empty() {
                    return Err(error(
                        format!(
                            "Field must have selections (field '{}' returns {} but has no selections)",
                            f.name, def.ty
                        ),
                        line,
                        column,
                    ));
                }
                self.select(&f.selection_set, def.ty.name(), vars)?
            };
            out.push(Sel {
                name: f.name.clone(),
                key: f.alias.clone().unwrap_or_else(|| f.name.clone()),
                args,
                sub,
                line,
                column,
            });
        }
        Ok(out)
    }

    /// `full` projected onto `sel` (a field of type `ty`), checked against the type.
    fn project(&self, ty: &Ty, sel: &Sel, full: &Value, at: &str) -> Result<Value, String> {
        match (ty, full) {
            (Ty::NonNull(_), Value::Null) => Err(format!("{at} is null but its type is {ty}")),
            (Ty::NonNull(inner), v) => self.project(inner, sel, v, at),
            (_, Value::Null) => Ok(Value::Null),
            (Ty::List(inner), Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.project(inner, sel, v, &format!("{at}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            (Ty::List(_), _) => Err(format!("{at} is not a list but its type is {ty}")),
            (Ty::Named(name), v) => match self.get(name) {
                Some(TypeDef::Scalar) if scalar(name, v) => Ok(v.clone()),
                Some(TypeDef::Enum(values))
                    if v.as_str().is_some_and(|s| values.iter().any(|x| x == s)) =>
                {
                    Ok(v.clone())
                }
                Some(TypeDef::Composite(fields)) => {
                    let mut out = Map::new();
                    for child in &sel.sub {
                        let key_at = format!("{at}.{}", child.key);
                        if child.name == "__typename" {
                            out.insert(child.key.clone(), json!(name));
                            continue;
                        }
                        let def = fields
                            .get(&child.name)
                            .ok_or_else(|| format!("{key_at}: no such field on {name}"))?;
                        let value = v.get(&child.name).ok_or_else(|| {
                            format!(
                                "{key_at}: the stand-in does not serve {name}.{}",
                                child.name
                            )
                        })?;
                        out.insert(
                            child.key.clone(),
                            self.project(&def.ty, child, value, &key_at)?,
                        );
                    }
                    Ok(Value::Object(out))
                }
                _ => Err(format!("{at} = {v} does not fit its type {name}")),
            },
        }
    }
}

/// Whether `v` is a value of the scalar `name` as GitHub serialises it.
fn scalar(name: &str, v: &Value) -> bool {
    match name {
        "Int" => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "Float" => v.is_number(),
        "Boolean" => v.is_boolean(),
        "GitObjectID" => v
            .as_str()
            .is_some_and(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())),
        _ => v.is_string(),
    }
}

/// A literal of the document as JSON.
fn literal_json(v: &q::Value<'_, String>) -> Value {
    match v {
        q::Value::Int(n) => n.as_i64().map_or(Value::Null, |n| json!(n)),
        q::Value::Float(f) => json!(f),
        q::Value::String(s) | q::Value::Enum(s) => json!(s),
        q::Value::Boolean(b) => json!(b),
        q::Value::List(items) => Value::Array(items.iter().map(literal_json).collect()),
        q::Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), literal_json(v)))
                .collect(),
        ),
        q::Value::Null | q::Value::Variable(_) => Value::Null,
    }
}

/// A request, validated: whether it is a mutation, and its top-level selections.
#[derive(Debug)]
pub(crate) struct Operation {
    /// `mutation` rather than `query`.
    pub(crate) mutation: bool,
    /// The root selections.
    pub(crate) fields: Vec<Sel>,
}

/// Validates `query` with `variables` against the schema.
pub(crate) fn validate(query: &str, variables: &Value) -> Result<Operation, Vec<Value>> {
    let schema = schema()
        .as_ref()
        .map_err(|e| vec![error(e.clone(), 1, 1)])?;
    let doc = q::parse_query::<String>(query)
        .map_err(|e| vec![json!({"message": format!("Parse error: {e}")})])?;
    let mut ops = doc.definitions.iter().filter_map(|d| match d {
        q::Definition::Operation(op) => Some(op),
        q::Definition::Fragment(_) => None,
    });
    let (Some(op), None) = (ops.next(), ops.next()) else {
        return Err(vec![
            json!({"message": "the stand-in serves exactly one operation per request"}),
        ]);
    };
    let (mutation, defs, set) = match op {
        q::OperationDefinition::SelectionSet(set) => (false, &[][..], set),
        q::OperationDefinition::Query(x) => (false, &x.variable_definitions[..], &x.selection_set),
        q::OperationDefinition::Mutation(x) => {
            (true, &x.variable_definitions[..], &x.selection_set)
        }
        q::OperationDefinition::Subscription(_) => {
            return Err(vec![json!({"message": "subscriptions are not served"})]);
        }
    };
    let mut vars = HashMap::new();
    for d in defs {
        let ty = Ty::of(&d.var_type);
        let value = variables.get(&d.name).cloned().unwrap_or(Value::Null);
        schema.input(&ty, &value, &format!("${}", d.name)).map_err(|problem| {
            vec![json!({
                "extensions": {"value": value, "problems": [{"path": [], "explanation": problem}]},
                "locations": [{"line": d.position.line, "column": d.position.column}],
                "message": format!("Variable ${} of type {ty} was provided invalid value", d.name)
            })]
        })?;
        vars.insert(d.name.clone(), (ty, value));
    }
    let root = if mutation { "Mutation" } else { "Query" };
    let fields = schema.select(set, root, &vars).map_err(|e| vec![e])?;
    Ok(Operation { mutation, fields })
}

/// The GraphQL endpoint's route, on the GitHub stand-in's state.
pub(crate) fn routes() -> axum::Router<Shared> {
    axum::Router::new().route("/graphql", axum::routing::post(handle))
}

/// `POST /graphql`.
pub(crate) async fn handle(
    State(gh): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let token = gh.record("POST", "/graphql".to_owned(), &headers);
    if token.is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "This endpoint requires you to be authenticated.", "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql", "status": "401"})),
        )
            .into_response();
    }
    let query = body.get("query").and_then(Value::as_str).unwrap_or("");
    let variables = body.get("variables").cloned().unwrap_or(json!({}));
    let op = match validate(query, &variables) {
        Ok(op) => op,
        Err(errors) => {
            return crate::github::with_rate_limit(
                (StatusCode::OK, Json(json!({"errors": errors}))).into_response(),
            );
        }
    };
    let Ok(schema) = schema().as_ref() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "schema").into_response();
    };
    let root = if op.mutation { "Mutation" } else { "Query" };
    let mut data = Map::new();
    let mut errors = Vec::new();
    for sel in &op.fields {
        let full = match sel.name.as_str() {
            "viewer" => viewer(&gh, token.as_deref()),
            "createCommitOnBranch" => {
                crate::commits::create_commit_on_branch(&gh, token.as_deref(), &sel.args).await
            }
            other => Err(FieldError {
                kind: "NOT_FOUND",
                message: format!("the stand-in does not serve {other}"),
            }),
        };
        match full {
            Ok(full) => {
                let Some(TypeDef::Composite(fields)) = schema.get(root) else {
                    return (StatusCode::INTERNAL_SERVER_ERROR, "schema").into_response();
                };
                let Some(def) = fields.get(&sel.name) else {
                    return (StatusCode::INTERNAL_SERVER_ERROR, "schema").into_response();
                };
                match schema.project(&def.ty, sel, &full, &sel.key) {
                    Ok(v) => {
                        data.insert(sel.key.clone(), v);
                    }
                    Err(violation) => {
                        return (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("the stand-in's answer violates GitHub's schema: {violation}"),
                        )
                            .into_response();
                    }
                }
            }
            Err(e) => {
                data.insert(sel.key.clone(), Value::Null);
                errors.push(json!({
                    "type": e.kind, "path": [sel.key],
                    "locations": [{"line": sel.line, "column": sel.column}],
                    "message": e.message
                }));
            }
        }
    }
    let mut answer = BTreeMap::new();
    // A `viewer` refused for every field leaves no data at all, as GitHub answers.
    let all_failed = data.values().all(Value::is_null);
    answer.insert(
        "data",
        if all_failed && !errors.is_empty() && !op.mutation {
            Value::Null
        } else {
            Value::Object(data)
        },
    );
    if !errors.is_empty() {
        answer.insert("errors", Value::Array(errors));
    }
    crate::github::with_rate_limit((StatusCode::OK, Json(json!(answer))).into_response())
}

/// The `viewer` object for `token`: a GitHub App's installation token (and the workflow's
/// `GITHUB_TOKEN`) is its bot account, whose login ends in `[bot]`, as GraphQL gives it.
fn viewer(gh: &Shared, token: Option<&str>) -> Result<Value, FieldError> {
    let s = gh.scenario().clone();
    if s.viewer_refused {
        return Err(FieldError {
            kind: "FORBIDDEN",
            message: "Resource not accessible by integration".to_owned(),
        });
    }
    let login = identity(&s, token);
    let id = user_id(&login);
    Ok(json!({
        "login": login,
        "databaseId": id,
        "id": format!("U_{id}"),
        "name": Value::Null,
        "url": format!("https://github.com/{}", login.trim_end_matches("[bot]")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Value {
        json!({"input": {
            "branch": {"repositoryNameWithOwner": "my-org/tenants", "branchName": "main"},
            "expectedHeadOid": "a".repeat(40),
            "message": {"headline": "rotor: rotation r success"},
            "fileChanges": {"additions": [{"path": "docs/x.md", "contents": "aGk="}]}
        }})
    }

    const MUTATION: &str = "mutation($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid } } }";

    #[test]
    fn the_mutation_rotor_sends_is_valid() {
        let op = validate(MUTATION, &input()).expect("valid");
        assert!(op.mutation);
        assert_eq!(op.fields[0].name, "createCommitOnBranch");
        assert_eq!(
            op.fields[0].args["input"]["expectedHeadOid"],
            "a".repeat(40)
        );
    }

    #[test]
    fn an_unknown_or_missing_input_field_is_refused() {
        let mut v = input();
        v["input"]["branch"]["nope"] = json!(1);
        let e = validate(MUTATION, &v).expect_err("unknown field");
        assert!(
            e[0]["message"]
                .as_str()
                .expect("m")
                .contains("invalid value")
        );
        let mut v = input();
        v["input"]["message"] = json!({});
        assert!(validate(MUTATION, &v).is_err(), "headline is required");
        let mut v = input();
        v["input"]["expectedHeadOid"] = json!("xyz");
        assert!(validate(MUTATION, &v).is_err(), "not a GitObjectID");
    }

    #[test]
    fn a_field_the_type_lacks_is_refused() {
        let e = validate("query { viewer { login nope } }", &json!({})).expect_err("nope");
        assert!(
            e[0]["message"]
                .as_str()
                .expect("m")
                .contains("doesn't exist")
        );
        assert!(
            validate("query { viewer }", &json!({})).is_err(),
            "needs a selection"
        );
        assert!(validate("query { viewer { login databaseId } }", &json!({})).is_ok());
    }
}
