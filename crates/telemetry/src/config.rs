//! [`TelemetryConfig`]: the telemetry section of a binary's configuration.

use std::fmt;

use serde::Deserialize;

/// The `service.name` used when the configuration names none.
pub const DEFAULT_SERVICE_NAME: &str = "skywire";

/// The log filter used when neither `RUST_LOG` nor the configuration sets one.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// How a process logs and exports traces.
///
/// Loaded from config files, so every field has a default: an empty section
/// gives service `"skywire"`, no OTLP export, and the `info` log level.
///
/// `Debug` never prints the endpoint's credentials, path or query: only its
/// scheme, host and port (see [`redact_endpoint`]).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// The OpenTelemetry `service.name` resource attribute, e.g. `"gateway"`.
    pub service_name: String,
    /// The OTLP/gRPC collector, e.g. `"http://127.0.0.1:4317"`. `None` turns
    /// span export off (logs and propagation still work).
    pub otlp_endpoint: Option<String>,
    /// An `EnvFilter` directive such as `"info,skywire_wire=debug"`. The
    /// `RUST_LOG` environment variable, when set, takes precedence; with
    /// neither, [`DEFAULT_LOG_FILTER`] applies.
    pub log_filter: Option<String>,
}

impl TelemetryConfig {
    /// A configuration for `service_name` with no OTLP export and the default
    /// log filter.
    pub fn new(service_name: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            ..Self::default()
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            otlp_endpoint: None,
            log_filter: None,
        }
    }
}

impl fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryConfig")
            .field("service_name", &self.service_name)
            .field(
                "otlp_endpoint",
                &self.otlp_endpoint.as_deref().map(redact_endpoint),
            )
            .field("log_filter", &self.log_filter)
            .finish()
    }
}

/// `endpoint` reduced to `scheme://host[:port]`: user information, path,
/// query and fragment (where tokens hide) are dropped. Safe to log.
pub fn redact_endpoint(endpoint: &str) -> String {
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, endpoint),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_userinfo, host)| host);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_takes_defaults() {
        let config: TelemetryConfig = serde_json::from_str("{}").expect("parses");
        assert_eq!(config, TelemetryConfig::default());
        assert_eq!(config.service_name, DEFAULT_SERVICE_NAME);
        assert_eq!(config.otlp_endpoint, None);
        assert_eq!(config.log_filter, None);
    }

    #[test]
    fn fields_load() {
        let config: TelemetryConfig = serde_json::from_str(
            r#"{"service_name":"gateway","otlp_endpoint":"http://otel:4317","log_filter":"debug"}"#,
        )
        .expect("parses");
        assert_eq!(config.service_name, "gateway");
        assert_eq!(config.otlp_endpoint.as_deref(), Some("http://otel:4317"));
        assert_eq!(config.log_filter.as_deref(), Some("debug"));
    }

    #[test]
    fn debug_hides_endpoint_secrets() {
        let config = TelemetryConfig {
            otlp_endpoint: Some("https://user:hunter2@otel.example:4317/v1?token=s3cret".into()),
            ..TelemetryConfig::new("gateway")
        };
        let debug = format!("{config:?}");
        assert!(debug.contains("https://otel.example:4317"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn redaction_keeps_host_and_port() {
        assert_eq!(
            redact_endpoint("http://127.0.0.1:4317"),
            "http://127.0.0.1:4317"
        );
        assert_eq!(redact_endpoint("otel:4317/x?y"), "otel:4317");
        assert_eq!(redact_endpoint("grpc://a@b@host"), "grpc://host");
    }
}
