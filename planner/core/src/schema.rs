//! JSON Schemas (draft 2020-12, derived with `schemars`) of fleetfit's file formats, for editors
//! (`# yaml-language-server: $schema=…`) and for tools that read plans.
//!
//! The committed copies live in `schemas/<name>.schema.json`; `fleetfit schema --check` and a
//! test keep them current.

use crate::catalog::Model;
use crate::plan::Plan;
use crate::policy::PolicyFile;
use crate::policy_test::PolicyTestFile;
use crate::profile::DeviceProfile;
use schemars::{JsonSchema, schema_for};

/// The schema of one type as a JSON value (keys sorted, so the committed text is stable).
fn one<T: JsonSchema>() -> serde_json::Value {
    schema_for!(T).to_value()
}

/// Every schema, by file stem (`schemas/<name>.schema.json`), in a stable order.
#[must_use]
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("device-profile", one::<DeviceProfile>()),
        ("catalog-model", one::<Model>()),
        ("policy", one::<PolicyFile>()),
        ("plan", one::<Plan>()),
        ("policy-test", one::<PolicyTestFile>()),
        ("readiness", one::<crate::readiness::ReadinessReport>()),
        ("api-enroll-request", one::<crate::api::EnrollRequest>()),
        ("api-heartbeat", one::<crate::api::Heartbeat>()),
        ("api-fleet-status", one::<crate::api::FleetStatus>()),
        ("api-fleet-device", one::<crate::api::FleetDevice>()),
    ]
}

/// The committed text of a schema: pretty JSON and a trailing newline.
///
/// # Errors
/// Never in practice: serializing a `serde_json::Value` cannot fail.
pub fn render(value: &serde_json::Value) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schemas_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        for (name, value) in schemas() {
            let path = dir.join(format!("{name}.schema.json"));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            let current = render(&value).expect("render");
            assert!(
                committed == current,
                "{} is stale: run `fleetfit schema --out schemas`",
                path.display()
            );
        }
    }

    #[test]
    fn schemas_describe_objects_and_reject_unknown_fields() {
        for (name, value) in schemas() {
            assert_eq!(value["type"], "object", "{name}");
        }
        let policy = &schemas()[2].1;
        assert_eq!(policy["additionalProperties"], false);
    }
}
