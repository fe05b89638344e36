//! The Azure CLI backend: `az iot dps enrollment create|update ...` with the documented flags
//! (dps-api.md §4), for users who prefer their `az login` session to a connection string.

use super::connection_string::ConnectionString;
use super::enrollment::{IndividualEnrollment, ProvisioningStatus};
use super::DpsError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Which DPS `az` should talk to.
#[derive(Clone)]
pub enum AzTarget {
    /// `--dps-name N [-g RG]`, authenticated by the `az login` session.
    Named {
        dps_name: String,
        resource_group: Option<String>,
    },
    /// `--dps-name <from HostName> --login @<private file holding the connection string>`.
    Login(ConnectionString),
}

/// What to enroll through `az`.
#[derive(Clone)]
pub struct AzEnrollment {
    pub target: AzTarget,
    pub registration_id: String,
    pub certificate_path: PathBuf,
    pub device_id: Option<String>,
    /// `None`: leave the status as it is (`az` creates enrollments enabled).
    pub status: Option<ProvisioningStatus>,
    pub iot_hubs: Vec<String>,
}

/// One argument, possibly secret (rendered as `<redacted>`).
#[derive(Clone)]
pub enum AzArg {
    Plain(String),
    Secret(zeroize::Zeroizing<String>),
}

impl std::fmt::Debug for AzArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AzArg::Plain(s) => write!(f, "{s:?}"),
            AzArg::Secret(_) => f.write_str("<redacted>"),
        }
    }
}

impl AzEnrollment {
    /// The arguments after `az` for `create` (`update = false`) or `update`.
    pub fn args(&self, update: bool) -> Vec<AzArg> {
        let p = |s: &str| AzArg::Plain(s.to_string());
        let mut a = vec![
            p("iot"),
            p("dps"),
            p("enrollment"),
            p(if update { "update" } else { "create" }),
        ];
        match &self.target {
            AzTarget::Named {
                dps_name,
                resource_group,
            } => {
                if let Some(rg) = resource_group {
                    a.extend([p("-g"), p(rg)]);
                }
                a.extend([p("--dps-name"), p(dps_name)]);
            }
            AzTarget::Login(cs) => {
                let name = cs.host_name().split('.').next().unwrap_or_default();
                a.extend([
                    p("--dps-name"),
                    p(name),
                    p("--login"),
                    AzArg::Secret(cs.to_secret_string()),
                ]);
            }
        }
        a.extend([p("--enrollment-id"), p(&self.registration_id)]);
        if !update {
            a.extend([p("--attestation-type"), p("x509")]);
        }
        a.extend([
            p("--certificate-path"),
            AzArg::Plain(self.certificate_path.to_string_lossy().into_owned()),
        ]);
        if let Some(d) = &self.device_id {
            a.extend([p("--device-id"), p(d)]);
        }
        if let Some(status) = self.status {
            a.extend([
                p("--provisioning-status"),
                p(match status {
                    ProvisioningStatus::Enabled => "enabled",
                    ProvisioningStatus::Disabled => "disabled",
                }),
            ]);
        }
        if !self.iot_hubs.is_empty() {
            a.extend([
                p("--allocation-policy"),
                p("static"),
                p("--iot-hubs"),
                AzArg::Plain(self.iot_hubs.join(" ")),
            ]);
        }
        a
    }
}

/// `az` on PATH; missing, the one typed error both adapters render.
pub fn find_az() -> Result<PathBuf, DpsError> {
    which::which("az").map_err(|_| DpsError::AzNotFound)
}

/// A secret argument's value in a private temporary file (0600 on Unix), deleted on drop.
fn secret_file(secret: &str) -> Result<tempfile::NamedTempFile, DpsError> {
    use std::io::Write;
    let cannot = |e: std::io::Error| {
        DpsError::Az(format!("cannot write a private temporary file for az: {e}"))
    };
    let mut f = tempfile::Builder::new()
        .prefix(".devkit-tmp-az-")
        .tempfile()
        .map_err(cannot)?;
    f.write_all(secret.as_bytes())
        .and_then(|_| f.flush())
        .map_err(cannot)?;
    Ok(f)
}

async fn run(az: &Path, args: &[AzArg]) -> Result<(bool, Vec<u8>, String), DpsError> {
    // Secrets never go on az's command line (visible to every user in the process list): az
    // reads an argument written `@FILE` from that file, so each secret goes to a private file.
    let mut files = Vec::new();
    let mut os: Vec<OsString> = Vec::with_capacity(args.len());
    for a in args {
        match a {
            AzArg::Plain(s) => os.push(OsString::from(s)),
            AzArg::Secret(s) => {
                let f = secret_file(s)?;
                let mut arg = OsString::from("@");
                arg.push(f.path());
                os.push(arg);
                files.push(f);
            }
        }
    }
    let out = tokio::process::Command::new(az)
        .args(&os)
        .arg("--output")
        .arg("json")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| DpsError::Az(format!("cannot run {}: {e}", az.display())))?;
    drop(files);
    // az may echo its arguments in errors: drop any line that holds a secret argument.
    let secrets: Vec<&str> = args
        .iter()
        .filter_map(|a| {
            if let AzArg::Secret(s) = a {
                Some(s.as_str())
            } else {
                None
            }
        })
        .collect();
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| {
            !secrets.iter().any(|s| {
                l.contains(s) || s.split(';').any(|part| part.len() > 20 && l.contains(part))
            })
        })
        .collect::<Vec<_>>()
        .join("\n");
    // ... and a token or key of its own, or one a reply echoed.
    Ok((
        out.status.success(),
        out.stdout,
        super::reply::redact(&stderr),
    ))
}

/// Create the enrollment with `az` (update it when it already exists); returns what `az` printed.
pub async fn enroll(az: &Path, e: &AzEnrollment) -> Result<IndividualEnrollment, DpsError> {
    let (ok, stdout, stderr) = run(az, &e.args(false)).await?;
    let (ok, stdout, stderr) =
        if !ok && (stderr.contains("already exists") || stderr.contains("Conflict")) {
            run(az, &e.args(true)).await?
        } else {
            (ok, stdout, stderr)
        };
    if !ok {
        return Err(DpsError::Az(stderr.trim().to_string()));
    }
    serde_json::from_slice(&stdout)
        .map_err(|err| DpsError::Az(super::reply::redact(&format!("unexpected output ({err})"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(args: &[AzArg]) -> Vec<String> {
        args.iter()
            .map(|a| match a {
                AzArg::Plain(s) => s.clone(),
                AzArg::Secret(_) => "<secret>".into(),
            })
            .collect()
    }

    #[test]
    fn builds_the_documented_create_command() {
        let e = AzEnrollment {
            target: AzTarget::Named {
                dps_name: "mydps".into(),
                resource_group: Some("rg1".into()),
            },
            registration_id: "az-c0bdd1a2b3c4v1v6v2".into(),
            certificate_path: PathBuf::from("/p/az-c0bdd1a2b3c4v1v6v2.pem"),
            device_id: Some("dev1".into()),
            status: Some(ProvisioningStatus::Disabled),
            iot_hubs: vec!["h1.azure-devices.net".into(), "h2.azure-devices.net".into()],
        };
        assert_eq!(
            plain(&e.args(false)).join(" "),
            "iot dps enrollment create -g rg1 --dps-name mydps --enrollment-id az-c0bdd1a2b3c4v1v6v2 --attestation-type x509 \
             --certificate-path /p/az-c0bdd1a2b3c4v1v6v2.pem --device-id dev1 --provisioning-status disabled \
             --allocation-policy static --iot-hubs h1.azure-devices.net h2.azure-devices.net"
        );
        // --iot-hubs is one argument holding the space-separated list.
        assert_eq!(
            plain(&e.args(false)).last().unwrap(),
            "h1.azure-devices.net h2.azure-devices.net"
        );
        assert!(!plain(&e.args(true)).contains(&"--attestation-type".to_string()));
    }

    /// An enrollment through `--login` with a canary key.
    fn login_enrollment() -> AzEnrollment {
        let cs = ConnectionString::parse("HostName=mydps.azure-devices-provisioning.net;SharedAccessKeyName=p;SharedAccessKey=Y2FuYXJ5LWtleQ==").unwrap();
        AzEnrollment {
            target: AzTarget::Login(cs),
            registration_id: "dev-1".into(),
            certificate_path: PathBuf::from("a.pem"),
            device_id: None,
            status: None,
            iot_hubs: vec![],
        }
    }

    #[test]
    fn login_target_keeps_the_connection_string_out_of_debug() {
        let e = login_enrollment();
        let args = e.args(false);
        assert_eq!(
            plain(&args)[4..8],
            ["--dps-name", "mydps", "--login", "<secret>"]
        );
        let dbg = format!("{args:?}");
        assert!(
            !dbg.contains("Y2FuYXJ5") && dbg.contains("<redacted>"),
            "{dbg}"
        );
    }

    /// The connection string reaches az through `--login @FILE` (a private file), never argv.
    #[cfg(unix)]
    #[tokio::test]
    async fn secrets_reach_az_through_a_private_file_not_argv() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("az");
        let seen = dir.path().join("seen");
        // A stand-in az that records its argv, the mode and content of each @FILE argument.
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\nfor a in \"$@\"; do echo \"arg $a\" >> {seen}; case \"$a\" in @*) f=${{a#@}}; echo \"mode $(stat -c %a \"$f\")\" >> {seen}; echo \"content $(cat \"$f\")\" >> {seen};; esac; done\necho '{{\"registrationId\":\"dev-1\",\"attestation\":{{\"type\":\"x509\"}}}}'\n",
                seen = seen.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = login_enrollment();
        let enrolled = enroll(&fake, &e).await.unwrap();
        assert_eq!(enrolled.registration_id, "dev-1");
        let seen = std::fs::read_to_string(&seen).unwrap();
        let argv: Vec<&str> = seen.lines().filter(|l| l.starts_with("arg ")).collect();
        assert!(argv.iter().all(|a| !a.contains("Y2FuYXJ5")));
        assert!(argv.iter().any(|a| a.starts_with("arg @")));
        assert!(seen.contains("mode 600"));
        assert!(seen.contains("content HostName=mydps.azure-devices-provisioning.net;SharedAccessKeyName=p;SharedAccessKey=Y2FuYXJ5LWtleQ=="));
        // The file is gone once az has run.
        let file = argv.iter().find_map(|a| a.strip_prefix("arg @")).unwrap();
        assert!(!std::path::Path::new(file).exists());
    }

    /// An az failure relaying a reply that echoes the token az made from the key: the error
    /// holds neither the token's signature nor the line dropped, and still says what failed.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_sas_token_az_relays_from_a_reply_is_redacted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("az");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'ERROR: (Unauthorized) bad token. Authorization: SharedAccessSignature sr=mydps&sig=wGYPvlsXKw%2FVO34BVbSfo%3D&se=1646989322&skn=p' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = enroll(&fake, &login_enrollment()).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("wGYPvlsXKw"), "{shown}");
        assert!(shown.contains("(Unauthorized) bad token"), "{shown}");
    }
}
