//! The rotation artifact (`docs/security/rotations/<id>.md`, DESIGN §10): its machine-readable
//! part, which `plan`, `apply`, `rollback` and `drift` read back.
//!
//! The artifact carries one HTML comment, invisible when rendered, holding JSON:
//! `<!-- rotor:artifact {…} -->`.

use serde::{Deserialize, Serialize};

/// The marker opening the machine-readable part.
pub const DATA_MARKER: &str = "<!-- rotor:artifact ";

/// What an artifact records about its rotation, as far as reading it back needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// The rotation id.
    pub rotation_id: String,
    /// The pull request that carried the request.
    #[serde(default)]
    pub pull_request: Option<u64>,
    /// The final result: `success`, `rolled_back` or `failed`.
    #[serde(default)]
    pub result: Option<String>,
}

/// Reads the machine-readable part of an artifact; `None` when there is none or it is garbled.
pub fn read_meta(text: &str) -> Option<ArtifactMeta> {
    let start = text.find(DATA_MARKER)? + DATA_MARKER.len();
    let end = text[start..].find("-->")? + start;
    serde_json::from_str(text[start..end].trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_data_comment() {
        let text = "# Rotation r-1\n- Date: x\n\n<!-- rotor:artifact {\"rotation_id\":\"r-1\",\"pull_request\":7,\"result\":\"success\"} -->\n";
        let meta = read_meta(text).expect("meta");
        assert_eq!(
            (
                meta.rotation_id.as_str(),
                meta.pull_request,
                meta.result.as_deref()
            ),
            ("r-1", Some(7), Some("success"))
        );
        assert_eq!(read_meta("# Rotation r-1\n"), None);
        assert_eq!(read_meta("<!-- rotor:artifact {not json} -->"), None);
    }
}
