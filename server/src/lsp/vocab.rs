//! The daemon's words for the task vocabulary: the camelCase param name of each [`Input`]
//! (`data.field` of an invalid-params error). `tasks` holds only the typed names; the CLI's
//! flags are in `crate::cli::vocab`.

use tasks::build::sketch::SettingKind;
use tasks::error::Input;

/// The editor setting that holds a DPS setting of the sketch (the extension's `devkitDps`
/// section; `devkit.writeSetting` accepts exactly these).
pub const fn setting_id(kind: SettingKind) -> &'static str {
    match kind {
        SettingKind::RegistrationId => "devkitDps.registrationId",
        SettingKind::IdScope => "devkitDps.dps.idScope",
        SettingKind::Endpoint => "devkitDps.dps.globalEndpoint",
    }
}

/// The param that carries `input` (an exhaustive match: a new input cannot miss its name).
pub const fn field(input: Input) -> &'static str {
    match input {
        Input::Port => "port",
        Input::Bin => "bin",
        Input::Map => "map",
        Input::BuildDir => "buildDir",
        Input::ProjectDir => "projectDir",
        Input::Sketch => "sketch",
        Input::ArduinoCli => "arduinoCli",
        Input::Builder => "builder",
        Input::ArduinoBuilder => "arduinoBuilder",
        Input::ArduinoData => "arduinoData",
        Input::GlobalEndpoint => "globalEndpoint",
        Input::IdScope => "idScope",
        Input::RegistrationId => "registrationId",
        Input::Mac => "mac",
        Input::FirmwareVersion => "firmwareVersion",
        Input::Uds => "uds",
        Input::ConnectionString => "connectionString",
        Input::HubConnectionString => "hubConnectionString",
        Input::CaFile => "caFile",
        Input::TrustedCa => "trustedCa",
        Input::Cert => "cert",
        Input::Group => "group",
        Input::CaCert => "caCert",
        Input::AliasKey => "aliasKey",
        Input::DeviceId => "deviceId",
        Input::IotHub => "iotHub",
        Input::DpsName => "dpsName",
        Input::Backend => "backend",
        Input::Probe => "probe",
        Input::Openocd => "openocd",
        Input::SimDir => "simDir",
        Input::Address => "address",
        Input::WifiSsid => "wifiSsid",
        Input::WifiPassword => "wifiPassword",
        Input::Link => "link",
        Input::Hub => "hub",
        Input::Manifest => "manifest",
        Input::OutDir => "outDir",
        Input::CertDir => "certDir",
        Input::Command => "text",
        Input::Enrollment => "enrollment",
        Input::HostName => "hostName",
        Input::Transport => "transport",
        Input::SaveUdsTo => "saveUdsTo",
    }
}

/// `input.field()` (with `use crate::lsp::vocab::Field;`).
pub trait Field {
    fn field(self) -> &'static str;
}

impl Field for Input {
    fn field(self) -> &'static str {
        field(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_has_one_camel_case_field() {
        for &i in Input::ALL {
            let f = i.field();
            assert!(
                f.chars().all(|c| c.is_ascii_alphanumeric())
                    && f.starts_with(|c: char| c.is_ascii_lowercase()),
                "{i:?}: {f}"
            );
        }
        let fields: std::collections::HashSet<_> = Input::ALL.iter().map(|i| i.field()).collect();
        assert_eq!(fields.len(), Input::ALL.len(), "one param name per input");
    }

    /// A report names an input as tasks serializes it (a batch row's error): the same name as
    /// the param, but for the console line, which `devkit/monitor/send` calls `text`.
    #[test]
    fn reports_name_inputs_as_the_daemon_does() {
        for &i in Input::ALL {
            let name = serde_json::to_value(i).unwrap();
            let expected = if i == Input::Command {
                "command"
            } else {
                i.field()
            };
            assert_eq!(name, expected, "{i:?}");
        }
    }
}
