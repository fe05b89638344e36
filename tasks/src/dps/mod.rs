//! Azure IoT Hub Device Provisioning Service: service client (enrollments), device client
//! (registration as the DevKit does it), and the local DPS emulator. (Skeleton; filled in by
//! the DPS issue.)

pub mod device;
