//! Execution: variables coerced, `compute_session_list` resolved against the emulator's
//! state, each session as the query asks for it.

use super::*;

pub(super) fn val_to_json(value: &Val, vars: &HashMap<String, Value>) -> Value {
    match value {
        Val::Var(name, _) => vars.get(name).cloned().unwrap_or(Value::Null),
        Val::Int(i) => Value::from(*i),
        Val::Float(f) => Value::from(*f),
        Val::Str(s) | Val::Enum(s) => Value::String(s.clone()),
        Val::Bool(b) => Value::Bool(*b),
        Val::Null => Value::Null,
        Val::List(items) => Value::Array(items.iter().map(|v| val_to_json(v, vars)).collect()),
        Val::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), val_to_json(v, vars)))
                .collect(),
        ),
    }
}

/// Coerces the request's variables to the operation's definitions.
pub(super) fn coerce_variables(
    defs: &[VarDef],
    given: &serde_json::Map<String, Value>,
) -> Result<HashMap<String, Value>, Vec<GqlError>> {
    let mut out = HashMap::new();
    let mut errors = Vec::new();
    for def in defs {
        let shown_type = format!("{}{}", def.type_name, if def.non_null { "!" } else { "" });
        let value = match given.get(&def.name) {
            Some(v) => v.clone(),
            None => match &def.default {
                Some(d) => val_to_json(d, &HashMap::new()),
                None if def.non_null => {
                    errors.push(GqlError::at(
                        format!(
                            "Variable '${}' of required type '{shown_type}' was not provided.",
                            def.name
                        ),
                        def.pos,
                    ));
                    continue;
                }
                None => Value::Null,
            },
        };
        if value.is_null() && def.non_null {
            errors.push(GqlError::at(
                format!(
                    "Variable '${}' of non-null type '{shown_type}' must not be null.",
                    def.name
                ),
                def.pos,
            ));
            continue;
        }
        let ok = match (def.type_name.as_str(), &value) {
            (_, Value::Null) => true,
            ("Int", v) => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            ("String" | "UUID" | "ID", v) => v.is_string(),
            ("Boolean", v) => v.is_boolean(),
            ("Float", v) => v.is_number(),
            _ => true,
        };
        if !ok {
            errors.push(GqlError::at(
                format!(
                    "Variable '${}' got invalid value {}; {} cannot represent value: {}",
                    def.name, value, def.type_name, value
                ),
                def.pos,
            ));
            continue;
        }
        out.insert(def.name.clone(), value);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Python's `repr()` of a string, as in the `KeyError` message for an unknown status.
pub(super) fn python_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Runs a GraphQL request for `access_key`.
pub(crate) fn execute(
    shared: &Shared,
    access_key: &str,
    query: &str,
    variables: &serde_json::Map<String, Value>,
    operation_name: Option<&str>,
) -> GqlResponse {
    let operations = match parse(query) {
        Ok(ops) => ops,
        Err(e) => return GqlResponse::failed(vec![e]),
    };
    let operation = match operation_name {
        Some(name) => operations
            .iter()
            .find(|op| op.name.as_deref() == Some(name))
            .ok_or_else(|| GqlError::plain(format!("Unknown operation named '{name}'."))),
        None => match operations.as_slice() {
            [only] => Ok(only),
            _ => Err(GqlError::plain(
                "Must provide operation name if query contains multiple operations.",
            )),
        },
    };
    let operation = match operation {
        Ok(op) => op,
        Err(e) => return GqlResponse::failed(vec![e]),
    };
    if operation.kind != "query" {
        let root = if operation.kind == "mutation" {
            "Mutations"
        } else {
            "Subscriptions"
        };
        let errors = operation
            .selections
            .iter()
            .map(|f| {
                GqlError::at(
                    format!(
                        "Cannot query field '{}' on type '{root}'. The emulator serves queries only.",
                        f.name
                    ),
                    f.pos,
                )
            })
            .collect();
        return GqlResponse::failed(errors);
    }
    let mut errors = Vec::new();
    validate(
        "Queries",
        &operation.selections,
        &operation.var_defs,
        &mut errors,
    );
    if !errors.is_empty() {
        return GqlResponse::failed(errors);
    }
    let vars = match coerce_variables(&operation.var_defs, variables) {
        Ok(vars) => vars,
        Err(errors) => return GqlResponse::failed(errors),
    };

    let mut data = J::obj();
    let mut errors = Vec::new();
    for field in &operation.selections {
        let key = field.response_key().to_owned();
        if field.name == "__typename" {
            data.push(&key, "Queries");
            continue;
        }
        shared.session_listings.send_modify(|n| *n += 1);
        match compute_session_list(shared, access_key, field, &vars) {
            Ok(value) => data.push(&key, value),
            Err(mut e) => {
                e.path = vec![key.clone()];
                errors.push(e);
                data.push(&key, J::Null);
            }
        }
    }
    GqlResponse {
        data: Some(data),
        errors,
    }
}

pub(super) fn arg_value(field: &Field, name: &str, vars: &HashMap<String, Value>) -> Value {
    field
        .args
        .iter()
        .find(|(n, _, _)| n == name)
        .map_or(Value::Null, |(_, v, _)| val_to_json(v, vars))
}

pub(super) fn compute_session_list(
    shared: &Shared,
    access_key: &str,
    field: &Field,
    vars: &HashMap<String, Value>,
) -> Result<J, GqlError> {
    let int_arg = |name: &str| -> Result<i64, GqlError> {
        let value = arg_value(field, name, vars);
        value.as_i64().ok_or_else(|| {
            GqlError::at(
                format!("Int cannot represent non-integer value: {value}"),
                field.pos,
            )
        })
    };
    let str_arg = |name: &str| -> Result<Option<String>, GqlError> {
        match arg_value(field, name, vars) {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(GqlError::at(
                format!("String cannot represent a non string value: {other}"),
                field.pos,
            )),
        }
    };
    let limit = int_arg("limit")?;
    let offset = int_arg("offset")?;
    let status = str_arg("status")?;
    let filter_key = str_arg("access_key")?;
    let group_id = str_arg("group_id")?;
    let domain_name = str_arg("domain_name")?;
    let scaling_group = str_arg("scaling_group")?;

    let statuses: Option<Vec<String>> = match status {
        None => None,
        Some(text) => {
            let mut list = Vec::new();
            for s in text.split(',') {
                if !SESSION_STATUSES.contains(&s) {
                    return Err(GqlError::at(python_repr(s), field.pos));
                }
                list.push(s.to_owned());
            }
            Some(list)
        }
    };
    let is_admin = shared.role_of(access_key) != Role::User;
    let mut sessions: Vec<_> = shared
        .sessions
        .iter()
        .filter(|s| {
            if is_admin {
                filter_key.as_deref().is_none_or(|k| s.owner == k)
            } else {
                s.owner == access_key
            }
        })
        .filter(|s| {
            group_id
                .as_deref()
                .is_none_or(|g| s.group_id.to_string() == g)
        })
        .filter(|_| domain_name.as_deref().is_none_or(|d| d == "default"))
        .filter(|s| {
            scaling_group
                .as_deref()
                .is_none_or(|g| s.scaling_group == g)
        })
        .filter(|s| {
            statuses
                .as_ref()
                .is_none_or(|list| list.iter().any(|st| *st == s.status()))
        })
        .collect();
    sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    let total = sessions.len();
    let offset = usize::try_from(offset.max(0)).unwrap_or(0);
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    let page: Vec<_> = sessions.into_iter().skip(offset).take(limit).collect();

    let mut out = J::obj();
    for sub in &field.selections {
        let key = sub.response_key();
        match sub.name.as_str() {
            "__typename" => out.push(key, "ComputeSessionList"),
            "total_count" => out.push(key, total),
            "items" => out.push(
                key,
                J::Arr(
                    page.iter()
                        .map(|s| session_item(shared, s, &sub.selections))
                        .collect(),
                ),
            ),
            _ => out.push(key, J::Null),
        }
    }
    Ok(out)
}

pub(super) fn session_item(shared: &Shared, s: &crate::state::SessionRt, fields: &[Field]) -> J {
    let mut item = J::obj();
    for f in fields {
        let value: J = match f.name.as_str() {
            "__typename" => "ComputeSession".into(),
            "id" | "session_id" => s.id.to_string().into(),
            "name" | "session_name" | "sess_id" => s.name.as_str().into(),
            "type" | "session_type" => s.session_type.as_str().into(),
            "status" => s.status().into(),
            "status_info" => s.status_info().into(),
            "image" => s.image.as_str().into(),
            "architecture" => "x86_64".into(),
            "scaling_group" => s.scaling_group.as_str().into(),
            "group_id" => s.group_id.to_string().into(),
            "group_name" => "default".into(),
            "domain_name" => "default".into(),
            "user_id" | "user_uuid" => shared.user_ids.get(&s.owner).map(|u| u.to_string()).into(),
            "user_email" => shared.email_of(&s.owner).into(),
            "access_key" => s.owner.as_str().into(),
            "created_at" => python_isoformat(s.created_at).into(),
            "terminated_at" => s.terminated_at().map(python_isoformat).into(),
            "starts_at" | "tag" => J::Null,
            "cluster_mode" => "single-node".into(),
            "cluster_size" => J::Int(1),
            "occupied_slots" => {
                if s.has_ports() {
                    J::from(r#"{"cpu": "1", "mem": "1073741824"}"#)
                } else {
                    J::from("{}")
                }
            }
            "mounts" => J::Arr(Vec::new()),
            "result" => "UNDEFINED".into(),
            "service_ports" => s
                .service_ports(shared.api_version)
                .map(|ports| J::Str(ports.dumps()))
                .unwrap_or(J::Null),
            _ => J::Null,
        };
        item.push(f.response_key(), value);
    }
    item
}
