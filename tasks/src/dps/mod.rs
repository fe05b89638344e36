//! Azure IoT Hub Device Provisioning Service.
//!
//! - [`service`]: the DPS service API client (enrollments; SAS auth, ETags, query, bulk,
//!   retries), [`az`]: the same through the Azure CLI, [`hub`]: the IoT Hub registry check.
//! - [`device`]: registration exactly as the DevKit does it (TLS client certificate).
//! - [`emulator`]: a local DPS (and hub registry) speaking the documented wire protocol.
//! - [`connection_string`], [`sas`], [`enrollment`], [`enrollment_group`], [`error`], [`cert`], [`tls`], [`retry`]:
//!   what those share.

pub mod az;
pub mod cert;
pub mod connection_string;
pub mod device;
pub mod emulator;
pub mod enroll;
pub mod enrollment;
pub mod enrollment_group;
pub mod error;
pub mod hub;
pub mod mismatch;
pub mod retry;
pub mod sas;
pub mod service;
pub mod tls;

pub use connection_string::{ConnectionString, ConnectionStringError};
pub use enroll::{resolve_certificate, EnrollCertificate, EnrollError, EnrollmentSettings};
pub use enrollment::{BulkMode, BulkResult, IndividualEnrollment, ProvisioningStatus};
pub use error::{hint_for_error_code, DpsError, ServiceError};
pub use service::{ClientOptions, IfMatch, ServiceClient};
