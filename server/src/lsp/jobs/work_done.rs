//! A job's `tasks::progress` events as LSP work-done progress (`$/progress`) on its token.

use tasks::progress::ProgressEvent;
use tower_lsp_server::lsp_types::{
    notification::Progress as ProgressNotification, ProgressParams, ProgressParamsValue,
    ProgressToken, WorkDoneProgress, WorkDoneProgressBegin, WorkDoneProgressEnd,
    WorkDoneProgressReport,
};
use tower_lsp_server::Client;

pub(super) async fn forward_progress(
    client: Client,
    token: ProgressToken,
    title: String,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<ProgressEvent>,
) {
    let send = |value| {
        client.send_notification::<ProgressNotification>(ProgressParams {
            token: token.clone(),
            value: ProgressParamsValue::WorkDone(value),
        })
    };
    send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
        title,
        cancellable: Some(true),
        message: None,
        percentage: None,
    }))
    .await;
    let mut last_pct = 0u32;
    while let Some(ev) = rx.recv().await {
        let (message, percentage) = match ev {
            ProgressEvent::Begin { title } => (title, None),
            ProgressEvent::Report {
                message,
                percentage,
            } => (message, percentage),
            ProgressEvent::End { message } => (message, None),
            ProgressEvent::Warning { message } => (format!("warning: {message}"), None),
        };
        // LSP percentages must not go down within one progress.
        let percentage = percentage.map(|p| p.min(100).max(last_pct));
        if let Some(p) = percentage {
            last_pct = p;
        }
        send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: Some(true),
            message: Some(message),
            percentage,
        }))
        .await;
    }
}

pub(super) async fn end_progress(client: &Client, token: ProgressToken, message: String) {
    client
        .send_notification::<ProgressNotification>(ProgressParams {
            token,
            value: ProgressParamsValue::WorkDone(WorkDoneProgress::End(WorkDoneProgressEnd {
                message: Some(message),
            })),
        })
        .await;
}
