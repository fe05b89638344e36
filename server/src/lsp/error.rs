//! Errors as the client sees them: a stable numeric code, `data.code` (its name) and a human
//! message, built only from text we wrote or from task errors (which never hold secrets).
//!
//! Invalid params get -32602 with a message naming the field. serde's own messages can echo
//! the offending value (a UDS pasted into the wrong field, say), so they are never passed on:
//! [`decode`] keeps only the field path and what was expected.

use super::ext::codes;
use super::vocab::Field;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tasks::error::{DomainError, ErrorKind};
use tower_lsp_server::jsonrpc::{Error, ErrorCode};

/// A failed request, ready to become a JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    pub code: i64,
    pub name: &'static str,
    pub message: String,
    /// Extra `data` members next to `code` (e.g. `field`, `resource`, `heldBy`).
    pub data: serde_json::Map<String, Value>,
}

impl TaskError {
    pub fn new((code, name): (i64, &'static str), message: impl Into<String>) -> Self {
        TaskError {
            code,
            name,
            message: message.into(),
            data: serde_json::Map::new(),
        }
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }
    /// -32602 for `field`. The message names the field and why, nothing more: the code already
    /// says "invalid params", and clients show the message to a person (issue 19).
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        TaskError::new(codes::INVALID_PARAMS, format!("`{field}`: {message}")).with("field", field)
    }
    pub fn not_available(method: &str, what: &str) -> Self {
        TaskError::new(
            codes::NOT_AVAILABLE,
            format!("{method} is not available in this build of devkit ({what} is not included)"),
        )
        .with("method", method)
    }
    pub fn cancelled() -> Self {
        TaskError::new(codes::CANCELLED, "cancelled")
    }
    pub fn failed(message: impl Into<String>) -> Self {
        TaskError::new(codes::TASK_FAILED, message)
    }
    /// From an error chain (`anyhow` style `{:#}`): task errors name inputs, never secrets.
    pub fn from_error(code: (i64, &'static str), e: &dyn std::error::Error) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let s_text = s.to_string();
            if !message.contains(&s_text) {
                message.push_str(": ");
                message.push_str(&s_text);
            }
            source = s.source();
        }
        TaskError::new(code, message)
    }
}

impl TaskError {
    /// The one conversion from a task error: the code from its kind, `data.field` from its
    /// typed input, `data.hint` from its hint, `data.nextActions` from its next actions.
    pub fn from_domain<E: DomainError + ?Sized>(e: &E) -> Self {
        let kind = e.kind();
        let mut t = match (kind, e.invalid_input()) {
            (ErrorKind::InvalidInput, Some(i)) => TaskError::new(
                codes::INVALID_PARAMS,
                format!("`{}`: {}", i.input.field(), i.reason),
            ),
            (ErrorKind::Cancelled, _) => TaskError::cancelled(),
            _ => TaskError::from_error(codes::for_kind(kind), e.as_error()),
        };
        if let Some(input) = e.input() {
            t = t.with("field", input.field());
        }
        if let Some(hint) = e.hint() {
            t = t.with("hint", hint);
        }
        let next = e.next_actions();
        if !next.is_empty() {
            t = t.with(
                "nextActions",
                serde_json::to_value(next).unwrap_or_default(),
            );
        }
        t
    }
    /// Name the field as this method's params do (e.g. `ssid` for `devkit/setWifi`).
    pub fn rename_field(mut self, from: &str, to: &str) -> Self {
        if self.data.get("field").and_then(Value::as_str) == Some(from) {
            self.data.insert("field".into(), to.into());
            self.message = self
                .message
                .replace(&format!("`{from}`"), &format!("`{to}`"));
        }
        self
    }
}

/// `&dyn Error` of any task error, sized or not.
trait AsError {
    fn as_error(&self) -> &dyn std::error::Error;
}

impl<E: std::error::Error> AsError for E {
    fn as_error(&self) -> &dyn std::error::Error {
        self
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.name)
    }
}

impl From<TaskError> for Error {
    fn from(e: TaskError) -> Error {
        let mut data = e.data;
        data.insert("code".into(), json!(e.name));
        Error {
            code: ErrorCode::from(e.code),
            message: e.message.into(),
            data: Some(Value::Object(data)),
        }
    }
}

macro_rules! from_domain {
    ($($t:ty),*) => {$(
        impl From<$t> for TaskError {
            fn from(e: $t) -> Self {
                TaskError::from_domain(&e)
            }
        }
    )*};
}

tasks::for_each_domain_error!(from_domain);

/// Decode request params into `T`. Errors name the field and what was expected, never the
/// value that was sent.
pub fn decode<T: DeserializeOwned>(params: Value) -> Result<T, TaskError> {
    if !params.is_object() {
        return Err(TaskError::new(
            codes::INVALID_PARAMS,
            "the request's params must be an object with named fields",
        )
        .with("field", ""));
    }
    serde_path_to_error::deserialize(&params).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let (mut field, what) = describe(&path, &message);
        if field.is_empty() {
            // Errors inside `#[serde(flatten)]` structs lose their path: find the field whose
            // removal changes the outcome.
            field = culprit::<T>(&params, &message).unwrap_or_default();
        }
        TaskError::invalid(&field, what)
    })
}

/// The key an error inside a `#[serde(flatten)]` struct is about (such errors lose their
/// path): the key whose removal changes the outcome. Linear in the params: only keys whose
/// value the message describes are tried (scalars it names first, then containers), at most
/// [`MAX_CULPRIT_TRIES`] of them, each with one deserialization.
fn culprit<T: DeserializeOwned>(params: &Value, message: &str) -> Option<String> {
    let obj = params.as_object()?;
    let named =
        |k: &String| k.len() <= 40 && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let scalars = obj
        .iter()
        .filter(|(k, v)| named(k) && !(v.is_object() || v.is_array()) && described(v, message));
    let containers = obj
        .iter()
        .filter(|(k, v)| named(k) && (v.is_object() || v.is_array()));
    scalars
        .chain(containers)
        .take(MAX_CULPRIT_TRIES)
        .find(|(k, _)| {
            let mut without = obj.clone();
            without.remove(*k);
            match T::deserialize(&Value::Object(without)) {
                Ok(_) => true,
                Err(e) => e.to_string() != message,
            }
        })
        .map(|(k, _)| k.clone())
}

/// How many keys [`culprit`] tries at most.
const MAX_CULPRIT_TRIES: usize = 8;

/// Whether serde's `message` may be about the scalar `v` (as serde's `Unexpected` or an
/// unknown variant shows it).
fn described(v: &Value, message: &str) -> bool {
    match v {
        Value::Null => message.contains("unit value") || message.contains("null"),
        Value::Bool(b) => message.contains(&format!("`{b}`")),
        Value::Number(n) => {
            message.contains(&format!("`{n}`"))
                || (n.is_f64() && message.contains("floating point"))
        }
        Value::String(s) => {
            message.contains(&format!("{s:?}")) || message.contains(&format!("`{s}`"))
        }
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// (field path, safe description) from a serde_json message. Only parts that come from the
/// type (field names we declared, the `expected ...` text) are kept.
fn describe(path: &str, message: &str) -> (String, String) {
    let base = if path == "." {
        String::new()
    } else {
        path.to_string()
    };
    let join = |name: &str| {
        if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}.{name}")
        }
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        return (join(name), "is required".into());
    }
    if message.starts_with("unknown field") || message.starts_with("unknown variant") {
        return (base, "is not an allowed value".into());
    }
    match message.rfind(", expected ") {
        Some(i) => {
            let expected = &message[i + 2..];
            // Strip serde_json's " at line L column C" suffix.
            let expected = expected.split(" at line ").next().unwrap_or(expected);
            (base, expected.to_string())
        }
        None => (base, "has an invalid value".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::ext::GenerateCertParams;

    const CANARY: &str = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffee1234";

    #[test]
    fn invalid_params_speak_to_a_person_without_the_protocol_prefix() {
        let err = TaskError::invalid("idScope", "is required");
        assert_eq!(err.code, -32602);
        assert_eq!(err.message, "`idScope`: is required");
        assert_eq!(err.data["field"], "idScope");
        let err = decode::<GenerateCertParams>(json!([1])).err().unwrap();
        assert!(!err.message.contains("invalid params"), "{}", err.message);
    }

    #[test]
    fn wrong_type_names_the_field_not_the_value() {
        // The UDS pasted into a numeric-ish position: out_dir given a string is fine, so put the
        // canary where a bool is expected.
        let err = decode::<GenerateCertParams>(
            json!({"uds": "x", "outDir": "/tmp", "deviceCert": CANARY}),
        )
        .err()
        .unwrap();
        assert_eq!(err.code, -32602);
        assert!(err.message.contains("`deviceCert`"), "{}", err.message);
        assert!(
            err.message.contains("expected a boolean"),
            "{}",
            err.message
        );
        assert!(!err.message.contains(CANARY));
        assert_eq!(err.data["field"], "deviceCert");
    }

    #[test]
    fn missing_field_is_named() {
        let err = decode::<GenerateCertParams>(json!({"outDir": "/tmp"}))
            .err()
            .unwrap();
        assert_eq!(err.data["field"], "uds");
        assert!(
            err.message.contains("`uds`: is required"),
            "{}",
            err.message
        );
    }

    #[test]
    fn secret_of_wrong_type_is_not_echoed() {
        let err = decode::<GenerateCertParams>(json!({"uds": 12345678901234u64, "outDir": "/tmp"}))
            .err()
            .unwrap();
        assert_eq!(err.data["field"], "uds");
        assert!(!err.message.contains("12345678901234"), "{}", err.message);
    }

    #[test]
    fn flattened_fields_are_named_too() {
        use crate::lsp::ext::DeviceUploadParams;
        let err =
            decode::<DeviceUploadParams>(json!({"projectDir": "/p", "backend": 5, "uds": CANARY}))
                .err()
                .unwrap();
        assert_eq!(err.data["field"], "backend", "{}", err.message);
        let err = decode::<DeviceUploadParams>(json!({"backend": "sim"}))
            .err()
            .unwrap();
        assert_eq!(err.data["field"], "projectDir", "{}", err.message);
        assert!(!err.message.contains(CANARY));
    }

    #[test]
    fn the_culprit_search_stays_linear_with_thousands_of_keys() {
        use crate::lsp::ext::DeviceUploadParams;
        let mut params = serde_json::Map::new();
        for i in 0..20_000 {
            params.insert(format!("k{i}"), json!(format!("v{i}")));
        }
        params.insert("projectDir".into(), json!("/p"));
        params.insert("backend".into(), json!(5));
        let err = decode::<DeviceUploadParams>(Value::Object(params.clone()))
            .err()
            .unwrap();
        assert_eq!(err.data["field"], "backend", "{}", err.message);
        // Thousands of keys holding the same value: bounded tries, still a clean -32602.
        for i in 0..20_000 {
            params.insert(format!("k{i}"), json!(5));
        }
        let err = decode::<DeviceUploadParams>(Value::Object(params))
            .err()
            .unwrap();
        assert_eq!(err.code, -32602);
    }

    /// `rebuild` is the name; `force`, the old one, still decodes.
    #[test]
    fn build_takes_rebuild_and_the_old_force() {
        use crate::lsp::ext::BuildParams;
        for key in ["rebuild", "force"] {
            let p = decode::<BuildParams>(json!({"projectDir": "/p", key: true})).unwrap();
            assert!(p.rebuild, "{key}");
        }
        let p = decode::<BuildParams>(json!({"projectDir": "/p"})).unwrap();
        assert!(!p.rebuild);
    }

    #[test]
    fn non_object_params_are_refused() {
        let err = decode::<GenerateCertParams>(json!([CANARY])).err().unwrap();
        assert_eq!(err.code, -32602);
        assert!(!err.message.contains(CANARY));
    }

    #[test]
    fn task_errors_carry_typed_field_and_next_actions() {
        use tasks::build::BuildError;
        use tasks::error::{Input, InvalidInput};
        let t = TaskError::from(BuildError::from(InvalidInput::new(
            Input::IdScope,
            "is required",
        )));
        assert_eq!((t.code, t.name), codes::INVALID_PARAMS);
        assert_eq!(t.data["field"], "idScope");
        assert_eq!(t.data["nextActions"], json!([{"action": "configureDps"}]));
        assert!(
            t.message.contains("`idScope`: is required") && !t.message.contains("--"),
            "{}",
            t.message
        );
        let t = TaskError::from(BuildError::ToolNotFound {
            tool: tasks::build::BuildTool::ArduinoCli,
            configured: None,
        });
        assert_eq!((t.code, t.name), codes::NOT_FOUND);
        assert_eq!(
            t.data["nextActions"][1],
            json!({"action": "setArduinoCliPath"})
        );
        // arduino-cli's own commands are quoted; devkit's flags are not.
        for flag in ["--arduino-cli", "--arduino-data", "--builder"] {
            assert!(!t.message.contains(flag), "{}", t.message);
        }
        let t = TaskError::from(BuildError::ToolNotFound {
            tool: tasks::build::BuildTool::ArduinoBuilder,
            configured: Some("/nope/arduino-builder".into()),
        });
        assert_eq!(t.data["field"], "arduinoBuilder");
        assert_eq!(
            t.data["nextActions"],
            json!([{"action": "installToolchain", "detail": "arduino-builder"}])
        );
        assert!(
            t.message.starts_with("arduino-builder not found")
                && t.message.contains("apt-get install arduino-builder")
                && !t.message.contains("--"),
            "{}",
            t.message
        );
    }

    #[test]
    fn a_task_errors_hint_is_data_hint() {
        use tasks::dps::{DpsError, ServiceError};
        let e = DpsError::from_service(ServiceError {
            status: 401,
            error_code: Some(401002),
            message: "Unauthorized".into(),
            tracking_id: None,
        });
        let t = TaskError::from(e);
        assert!(
            t.data["hint"]
                .as_str()
                .is_some_and(|h| h.contains("SharedAccessKey")),
            "{:?}",
            t.data
        );
        assert!(!t.message.contains("SharedAccessKey"), "{}", t.message);
        assert!(TaskError::from(DpsError::Cancelled)
            .data
            .get("hint")
            .is_none());
    }

    #[test]
    fn into_jsonrpc_error_carries_data_code() {
        let e: Error = TaskError::new(codes::BUSY, "port held")
            .with("resource", "port:/dev/x")
            .into();
        assert_eq!(e.code.code(), 1001);
        let data = e.data.unwrap();
        assert_eq!(data["code"], "busy");
        assert_eq!(data["resource"], "port:/dev/x");
    }
}
