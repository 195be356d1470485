//! `rotor schema`: prints the JSON Schema of the request format.

use std::io::Write as _;

use crate::context::Context;
use crate::error::Error;
use crate::request::schema::request_schema_text;

/// Prints the schema on stdout (in both formats: the schema is itself JSON).
pub fn run(_cx: &Context) -> Result<(), Error> {
    std::io::stdout()
        .lock()
        .write_all(request_schema_text().as_bytes())?;
    Ok(())
}
