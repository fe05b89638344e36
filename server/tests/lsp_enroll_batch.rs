//! `devkit/enrollBatch` (a request to `devkit lsp`) against a local DPS emulator: the batch
//! report as the CLI's `--json` prints it, `$/progress` per chunk, a re-run that sends nothing.

mod lsp_client;

use lsp_client::Lsp;
use serde_json::json;
use std::time::Duration;
use tasks::dps::emulator::{Emulator, EmulatorConfig};
use tasks::dps::enroll::BatchEnrollReport;
use tasks::identity::{self, RegistrationId};

#[test]
fn a_batch_reports_progress_and_a_rerun_skips_every_row() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmulatorConfig::new(([127, 0, 0, 1], 0).into(), dir.path().join("emulator"));
    config.retry_after_secs = 0;
    let emulator = rt.block_on(Emulator::start(config)).unwrap();
    let cs = emulator.connection_string().to_secret_string().to_string();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let image = tasks::provision::sample::image().unwrap();
    let mut manifest = String::new();
    for i in 0..15u8 {
        let id = format!("lsp-batch-{i:02}");
        let uds = identity::Uds::parse(&format!("{:02x}", i + 1).repeat(32)).unwrap();
        let d = identity::derive(&uds, &image, &RegistrationId::parse(&id).unwrap()).unwrap();
        std::fs::write(certs.join(format!("{id}.pem")), d.alias_cert_pem()).unwrap();
        manifest.push_str(&format!("{id}.uds,{id}\n"));
    }
    let manifest_path = dir.path().join("line.csv");
    std::fs::write(&manifest_path, manifest).unwrap();
    emulator.inject_429(1);

    let mut lsp = Lsp::start(&[]);
    lsp.initialize(true);
    let params = json!({"connectionString": cs, "manifest": manifest_path, "certDir": certs,
        "caFile": emulator.ca_certificate_path(), "requestsPerMinute": 0, "workDoneToken": "batch-1"});
    let r = lsp.request("devkit/enrollBatch", params.clone());
    assert!(!r.to_string().contains("SharedAccessKey="), "secret echoed");
    let report: BatchEnrollReport = serde_json::from_value(r["result"].clone())
        .unwrap_or_else(|e| panic!("not an EnrollBatchResult ({e}): {r}"));
    assert_eq!((report.created, report.failed, report.requests), (15, 0, 2));
    let progress = lsp.wait_for("$/progress", Duration::from_secs(5), |m| {
        m["params"]["token"] == "batch-1" && m["params"]["value"]["percentage"] == 100
    });
    assert!(progress.is_some(), "no progress reached 100%");

    let mut again = params;
    again["workDoneToken"] = json!("batch-2");
    let r = lsp.request("devkit/enrollBatch", again);
    assert_eq!(r["result"]["skipped"], 15, "{r}");
    assert_eq!(r["result"]["requests"], 0, "{r}");
    // No connection string: refused by field, nothing sent.
    let r = lsp.request(
        "devkit/enrollBatch",
        json!({"manifest": manifest_path, "certDir": certs}),
    );
    assert_eq!(r["error"]["data"]["field"], "connectionString", "{r}");
    drop(emulator);
}
