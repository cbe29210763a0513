//! The schema: which fields exist on which type, and the checks of a parsed query against
//! it (unknown fields and arguments, undefined variables).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldType {
    Scalar(&'static str),
    List(&'static str),
    Object(&'static str),
}

pub(super) fn field_type(parent: &str, field: &str) -> Option<FieldType> {
    if field == "__typename" {
        return Some(FieldType::Scalar("String"));
    }
    match (parent, field) {
        ("Queries", "compute_session_list") => Some(FieldType::Object("ComputeSessionList")),
        ("ComputeSessionList", "items") => Some(FieldType::List("ComputeSession")),
        ("ComputeSessionList", "total_count") => Some(FieldType::Scalar("Int")),
        ("ComputeSession", f) => session_field_type(f).map(FieldType::Scalar),
        _ => None,
    }
}

pub(super) fn session_field_type(field: &str) -> Option<&'static str> {
    Some(match field {
        "id" | "session_id" | "group_id" | "user_id" | "user_uuid" => "UUID",
        "created_at" | "terminated_at" | "starts_at" => "DateTime",
        "cluster_size" => "Int",
        "service_ports" | "occupied_slots" => "JSONString",
        "mounts" => "[String]",
        "name" | "session_name" | "sess_id" | "type" | "session_type" | "status"
        | "status_info" | "image" | "architecture" | "scaling_group" | "group_name"
        | "domain_name" | "user_email" | "access_key" | "tag" | "cluster_mode" | "result" => {
            "String"
        }
        _ => return None,
    })
}

/// `(name, type, required)` of `compute_session_list`'s arguments.
pub(super) const LIST_ARGS: &[(&str, &str, bool)] = &[
    ("limit", "Int", true),
    ("offset", "Int", true),
    ("status", "String", false),
    ("access_key", "String", false),
    ("group_id", "String", false),
    ("domain_name", "String", false),
    ("scaling_group", "String", false),
    ("order", "String", false),
    ("filter", "String", false),
];

/// Checks the selections against the schema (graphql-core's validation phase).
pub(super) fn validate(
    parent: &str,
    fields: &[Field],
    vars: &[VarDef],
    errors: &mut Vec<GqlError>,
) {
    for field in fields {
        let Some(ty) = field_type(parent, &field.name) else {
            errors.push(GqlError::at(
                format!("Cannot query field '{}' on type '{parent}'.", field.name),
                field.pos,
            ));
            continue;
        };
        let args_spec: &[(&str, &str, bool)] =
            if parent == "Queries" && field.name == "compute_session_list" {
                LIST_ARGS
            } else {
                &[]
            };
        for (arg, value, pos) in &field.args {
            if !args_spec.iter().any(|(n, _, _)| n == arg) {
                errors.push(GqlError::at(
                    format!(
                        "Unknown argument '{arg}' on field '{parent}.{}'.",
                        field.name
                    ),
                    *pos,
                ));
            }
            check_vars_defined(value, vars, errors);
        }
        for (name, ty_name, required) in args_spec {
            if *required && !field.args.iter().any(|(a, _, _)| a == name) {
                errors.push(GqlError::at(
                    format!(
                        "Field '{}' argument '{name}' of type '{ty_name}!' is required, but it was not provided.",
                        field.name
                    ),
                    field.pos,
                ));
            }
        }
        match ty {
            FieldType::Scalar(scalar) if field.has_selection => errors.push(GqlError::at(
                format!(
                    "Field '{}' must not have a selection since type '{scalar}' has no subfields.",
                    field.name
                ),
                field.pos,
            )),
            FieldType::Object(obj) | FieldType::List(obj) if !field.has_selection => {
                let shown = if matches!(ty, FieldType::List(_)) {
                    format!("[{obj}]")
                } else {
                    obj.to_owned()
                };
                errors.push(GqlError::at(
                    format!(
                        "Field '{}' of type '{shown}' must have a selection of subfields. Did you mean '{} {{ ... }}'?",
                        field.name, field.name
                    ),
                    field.pos,
                ));
            }
            FieldType::Object(obj) | FieldType::List(obj) => {
                validate(obj, &field.selections, vars, errors)
            }
            FieldType::Scalar(_) => {}
        }
    }
}

pub(super) fn check_vars_defined(value: &Val, vars: &[VarDef], errors: &mut Vec<GqlError>) {
    match value {
        Val::Var(name, pos) if !vars.iter().any(|d| &d.name == name) => {
            errors.push(GqlError::at(
                format!("Variable '${name}' is not defined."),
                *pos,
            ));
        }
        Val::List(items) => items
            .iter()
            .for_each(|v| check_vars_defined(v, vars, errors)),
        Val::Object(fields) => fields
            .iter()
            .for_each(|(_, v)| check_vars_defined(v, vars, errors)),
        _ => {}
    }
}
