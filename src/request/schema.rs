//! The JSON Schema (draft 2020-12) of the request format, printed by `rotor schema`.
//!
//! Editors use it through `# yaml-language-server: $schema=…`. It is built here from the same
//! limits the parser enforces, and a test keeps it identical to the committed
//! `schema/rotation-request.schema.json`. A schema cannot say everything: the id must equal the
//! file stem, refs must be distinct and the environment must exist in the config; the
//! descriptions say so, and `rotor validate` checks them.

use serde_json::{Value, json};

use super::{MAX_REFS, MAX_TEXT};

/// The `Ref` pattern of `app-api.yaml`, which the ref parser implements exactly.
pub const REF_PATTERN: &str =
    r"^tenant\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.[a-z][a-z0-9-]{0,31}\.[a-z][a-z0-9_]{0,63}$";

/// The rotation id pattern: lowercase letters, digits and hyphens.
pub const ID_PATTERN: &str = "^[a-z0-9][a-z0-9-]{2,62}$";

/// The version id pattern: a Vault version number or an AWS version id.
pub const VERSION_PATTERN: &str = "^[A-Za-z0-9-]{1,64}$";

/// The site id pattern.
pub const SITE_PATTERN: &str = "^[A-Za-z0-9._-]{1,128}$";

/// The schema's `$id`.
pub const SCHEMA_ID: &str = "https://rotor.dev/schema/rotation-request.schema.json";

/// Builds the schema.
pub fn request_schema() -> Value {
    let text = |description: &str| json!({"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": "\\S", "description": description});
    let timestamp = |description: &str| json!({"type": "string", "format": "date-time", "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "rotor rotation request",
        "description": "A request to rotate tenant secrets (rotations/<id>.yaml). Also checked by `rotor validate`: the id equals the file stem, refs are distinct, the environment is defined in .github/rotor.yml, and environments that require maintenance carry a window or rollout note.",
        "type": "object",
        "additionalProperties": false,
        "required": ["version", "id", "environment", "reason", "refs"],
        "properties": {
            "version": {"const": 1, "description": "Format version; always 1."},
            "id": {"type": "string", "pattern": ID_PATTERN, "description": "Rotation id; equal to the file name without .yaml. Never reused."},
            "environment": {"type": "string", "minLength": 1, "pattern": "\\S", "description": "A key of `environments` in .github/rotor.yml."},
            // Lines and tabs are allowed; every other control and the bidirectional controls
            // are not (the rule `rotor validate` applies).
            "reason": {"allOf": [
                text("Why the secrets are rotated; may span lines (a ticket line)."),
                {"pattern": "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]*$"}
            ]},
            "refs": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_REFS,
                "description": "The refs to rotate; each ref at most once.",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["ref"],
                    "properties": {
                        "ref": {"type": "string", "pattern": REF_PATTERN, "description": "tenant.<slug>.<provider>.<key>, lowercase ASCII."},
                        "to": {
                            "description": "Target version id; default: the pending version.",
                            "oneOf": [
                                {"type": "string", "pattern": VERSION_PATTERN},
                                {"type": "integer", "minimum": 0}
                            ]
                        },
                        "sites": {
                            "type": "array",
                            "minItems": 1,
                            "uniqueItems": true,
                            "items": {"type": "string", "pattern": SITE_PATTERN},
                            "description": "Impacted sites (not `.` or `..`); must equal the application's siteIds for the ref."
                        }
                    }
                }
            },
            "maintenance": {
                "type": "object",
                "additionalProperties": false,
                "minProperties": 1,
                "description": "Required for environments with requires_maintenance (runbook precondition 4).",
                "properties": {
                    "window": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["start", "end"],
                        "description": "apply runs only inside it; end is after start.",
                        "properties": {
                            "start": timestamp("RFC 3339 start of the window."),
                            "end": timestamp("RFC 3339 end of the window.")
                        }
                    },
                    "rollout_note": text("A link to, or the text of, the rollout note.")
                }
            },
            "rollback": {"enum": ["auto", "manual"], "default": "auto", "description": "auto: roll back in the same run when verification fails."}
        }
    })
}

/// The schema as printed and committed: pretty JSON with a final newline.
pub fn request_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&request_schema()).unwrap_or_default();
    text.push('\n');
    text
}
