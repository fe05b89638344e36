//! DPS service API client: individual enrollments (and enrollment groups) over REST
//! (dps-api.md §1).

use super::connection_string::ConnectionString;
use super::enrollment::{BulkMode, BulkResult, IndividualEnrollment};
use super::enrollment_group::EnrollmentGroup;
use super::error::{DpsError, ServiceError};
use super::retry::{parse_retry_after, sleep_cancellable, RetryPolicy};
use super::sas::url_encode;
use reqwest::header::HeaderMap;
use reqwest::Method;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The service API version we speak.
pub const SERVICE_API_VERSION: &str = "2021-10-01";
/// `User-Agent` of the service and IoT Hub REST clients.
pub const USER_AGENT: &str = concat!("devkit-dps/", env!("CARGO_PKG_VERSION"));
/// DPS accepts at most this many enrollments per bulk call.
pub const BULK_CHUNK: usize = 10;

/// Options shared by the REST clients.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// PEM of the CA to trust (the emulator's); `None` = public roots.
    pub ca_pem: Option<String>,
    pub retry: RetryPolicy,
    pub cancel: CancellationToken,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ca_pem: None,
            retry: RetryPolicy::default(),
            cancel: CancellationToken::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// `If-Match` for create-or-update and delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: create or replace unconditionally.
    None,
    /// `*`: only if it exists.
    Any,
    /// Only if the stored ETag is this one (412 otherwise).
    Etag(String),
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    pub items: Vec<IndividualEnrollment>,
    pub continuation: Option<String>,
}

/// A raw answer: status, headers, body.
pub(crate) struct Answer {
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

/// A SAS-authenticated REST client with retries; shared by the DPS and IoT Hub clients.
pub(crate) struct RestClient {
    http: reqwest::Client,
    cs: ConnectionString,
    /// `https://host[:port][/prefix]`
    base_url: String,
    api_version: &'static str,
    options: ClientOptions,
}

impl RestClient {
    pub fn new(
        cs: ConnectionString,
        base_url: String,
        api_version: &'static str,
        options: ClientOptions,
    ) -> Result<Self, DpsError> {
        let http = super::tls::http_client(
            super::tls::client_config(options.ca_pem.as_deref())?,
            options.timeout,
        )?;
        Ok(RestClient {
            http,
            cs,
            base_url,
            api_version,
            options,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.base_url
    }

    /// Send with retries on 429 / 5xx / transport errors; any final non-2xx is a typed error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, DpsError> {
        let url = format!("{}{}?api-version={}", self.base_url, path, self.api_version);
        let policy = &self.options.retry;
        let cancel = &self.options.cancel;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if cancel.is_cancelled() {
                return Err(DpsError::Cancelled);
            }
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(
                    "Authorization",
                    self.cs.sas_token(Duration::from_secs(3600)).as_str(),
                )
                .header("User-Agent", USER_AGENT)
                .header("Accept", "application/json");
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(b) = &body {
                req = req
                    .header("Content-Type", "application/json; charset=utf-8")
                    .body(b.clone());
            }
            let result = tokio::select! {
                r = req.send() => r,
                _ = cancel.cancelled() => return Err(DpsError::Cancelled),
            };
            let (retry_after, error) = match result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let body = tokio::select! {
                        b = resp.bytes() => b.map_err(|e| self.transport(e))?,
                        _ = cancel.cancelled() => return Err(DpsError::Cancelled),
                    };
                    if (200..300).contains(&status) {
                        return Ok(Answer { headers, body });
                    }
                    let header_code = headers.get("x-ms-error-code").and_then(|v| v.to_str().ok());
                    let err = DpsError::from_service(ServiceError::from_response(
                        status,
                        header_code,
                        &body,
                    ));
                    if !RetryPolicy::is_retryable_status(status) {
                        return Err(err);
                    }
                    (
                        parse_retry_after(headers.get("retry-after").and_then(|v| v.to_str().ok())),
                        err,
                    )
                }
                // A certificate the client does not trust will not become trusted by retrying.
                Err(e) if super::tls::is_certificate_error(&e) => return Err(self.transport(e)),
                Err(e) => (None, self.transport(e)),
            };
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            tracing::debug!(attempt, error = %error, "retrying");
            if !sleep_cancellable(policy.delay(attempt, retry_after), cancel).await {
                return Err(DpsError::Cancelled);
            }
        }
    }

    fn transport(&self, e: reqwest::Error) -> DpsError {
        let reason = super::tls::describe(e);
        DpsError::Transport {
            endpoint: self.base_url.clone(),
            reason,
        }
    }

    pub fn parse_json<T: serde::de::DeserializeOwned>(&self, body: &[u8]) -> Result<T, DpsError> {
        // serde quotes mismatched strings, and the reply may echo the request's token.
        serde_json::from_slice(body).map_err(|e| DpsError::Protocol {
            endpoint: self.base_url.clone(),
            reason: super::reply::redact(&e.to_string()),
        })
    }
}

/// The DPS service client.
pub struct ServiceClient {
    rest: RestClient,
}

impl ServiceClient {
    /// A client for the DPS named by the connection string's `HostName`.
    pub fn new(cs: ConnectionString, options: ClientOptions) -> Result<ServiceClient, DpsError> {
        let base = format!("https://{}", cs.host_name());
        Ok(ServiceClient {
            rest: RestClient::new(cs, base, SERVICE_API_VERSION, options)?,
        })
    }

    pub fn endpoint(&self) -> &str {
        self.rest.endpoint()
    }

    fn path(registration_id: &str) -> String {
        format!("/enrollments/{}", url_encode(registration_id))
    }

    fn if_match_header(if_match: &IfMatch) -> Vec<(&'static str, String)> {
        match if_match {
            IfMatch::None => vec![],
            IfMatch::Any => vec![("If-Match", "*".to_string())],
            IfMatch::Etag(e) => vec![("If-Match", e.clone())],
        }
    }

    /// `PUT /enrollments/{id}`: create or replace.
    pub async fn create_or_update(
        &self,
        enrollment: &IndividualEnrollment,
        if_match: IfMatch,
    ) -> Result<IndividualEnrollment, DpsError> {
        let body = serde_json::to_vec(enrollment)
            .map_err(|e| DpsError::invalid(crate::error::Input::Enrollment, e.to_string()))?;
        let a = self
            .rest
            .send(
                Method::PUT,
                &Self::path(&enrollment.registration_id),
                &Self::if_match_header(&if_match),
                Some(body),
            )
            .await?;
        self.rest.parse_json(&a.body)
    }

    /// Create, or update the existing enrollment under its current ETag (so a concurrent change
    /// is reported as [`DpsError::EtagMismatch`] instead of being overwritten).
    pub async fn upsert(
        &self,
        enrollment: &IndividualEnrollment,
    ) -> Result<IndividualEnrollment, DpsError> {
        let if_match = match self.get_optional(&enrollment.registration_id).await? {
            Some(existing) => existing.etag.map(IfMatch::Etag).unwrap_or(IfMatch::Any),
            None => IfMatch::None,
        };
        self.create_or_update(enrollment, if_match).await
    }

    /// `GET /enrollments/{id}`.
    pub async fn get(&self, registration_id: &str) -> Result<IndividualEnrollment, DpsError> {
        let a = self
            .rest
            .send(Method::GET, &Self::path(registration_id), &[], None)
            .await?;
        self.rest.parse_json(&a.body)
    }

    /// `GET /enrollments/{id}`, `None` when it does not exist.
    pub async fn get_optional(
        &self,
        registration_id: &str,
    ) -> Result<Option<IndividualEnrollment>, DpsError> {
        match self.get(registration_id).await {
            Ok(e) => Ok(Some(e)),
            Err(DpsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /enrollments/{id}`.
    pub async fn delete(&self, registration_id: &str, if_match: IfMatch) -> Result<(), DpsError> {
        self.rest
            .send(
                Method::DELETE,
                &Self::path(registration_id),
                &Self::if_match_header(&if_match),
                None,
            )
            .await?;
        Ok(())
    }

    fn group_path(enrollment_group_id: &str) -> String {
        format!("/enrollmentGroups/{}", url_encode(enrollment_group_id))
    }

    /// `PUT /enrollmentGroups/{id}`: create or replace an enrollment group.
    pub async fn create_or_update_group(
        &self,
        group: &EnrollmentGroup,
        if_match: IfMatch,
    ) -> Result<EnrollmentGroup, DpsError> {
        let body = serde_json::to_vec(group)
            .map_err(|e| DpsError::invalid(crate::error::Input::Enrollment, e.to_string()))?;
        let path = Self::group_path(&group.enrollment_group_id);
        let a = self
            .rest
            .send(
                Method::PUT,
                &path,
                &Self::if_match_header(&if_match),
                Some(body),
            )
            .await?;
        self.rest.parse_json(&a.body)
    }

    /// `GET /enrollmentGroups/{id}`.
    pub async fn get_group(&self, enrollment_group_id: &str) -> Result<EnrollmentGroup, DpsError> {
        let path = Self::group_path(enrollment_group_id);
        let a = self.rest.send(Method::GET, &path, &[], None).await?;
        self.rest.parse_json(&a.body)
    }

    /// `DELETE /enrollmentGroups/{id}`.
    pub async fn delete_group(
        &self,
        enrollment_group_id: &str,
        if_match: IfMatch,
    ) -> Result<(), DpsError> {
        let path = Self::group_path(enrollment_group_id);
        self.rest
            .send(
                Method::DELETE,
                &path,
                &Self::if_match_header(&if_match),
                None,
            )
            .await?;
        Ok(())
    }

    /// One page of `SELECT * FROM enrollments`.
    pub async fn query_page(
        &self,
        page_size: Option<u32>,
        continuation: Option<&str>,
    ) -> Result<QueryPage, DpsError> {
        let mut headers = Vec::new();
        if let Some(n) = page_size {
            headers.push(("x-ms-max-item-count", n.to_string()));
        }
        if let Some(c) = continuation {
            headers.push(("x-ms-continuation", c.to_string()));
        }
        let body = br#"{"query":"SELECT * FROM enrollments"}"#.to_vec();
        let a = self
            .rest
            .send(Method::POST, "/enrollments/query", &headers, Some(body))
            .await?;
        let items = self.rest.parse_json(&a.body)?;
        let continuation = a
            .headers
            .get("x-ms-continuation")
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(QueryPage {
            items,
            continuation,
        })
    }

    /// Every enrollment, following continuations.
    pub async fn query_all(
        &self,
        page_size: Option<u32>,
    ) -> Result<Vec<IndividualEnrollment>, DpsError> {
        let mut all = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let page = self.query_page(page_size, continuation.as_deref()).await?;
            all.extend(page.items);
            match page.continuation {
                Some(c) if Some(&c) != continuation.as_ref() => continuation = Some(c),
                _ => return Ok(all),
            }
        }
    }

    /// `POST /enrollments` in chunks of [`BULK_CHUNK`]; the results are merged.
    pub async fn bulk(
        &self,
        mode: BulkMode,
        enrollments: &[IndividualEnrollment],
    ) -> Result<BulkResult, DpsError> {
        let mut merged = BulkResult {
            is_successful: true,
            errors: vec![],
        };
        for chunk in enrollments.chunks(BULK_CHUNK) {
            let body = serde_json::to_vec(&serde_json::json!({"enrollments": chunk, "mode": mode}))
                .map_err(|e| {
                    DpsError::Invalid(
                        crate::error::InvalidInput::new(
                            crate::error::Input::Enrollment,
                            e.to_string(),
                        )
                        .named("enrollments"),
                    )
                })?;
            let a = self
                .rest
                .send(Method::POST, "/enrollments", &[], Some(body))
                .await?;
            let r: BulkResult = self.rest.parse_json(&a.body)?;
            merged.is_successful &= r.is_successful;
            merged.errors.extend(r.errors);
        }
        Ok(merged)
    }
}
