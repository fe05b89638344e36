//! Serial bytes -> `devkit/serialData` notifications, batched.
//!
//! A DevKit at 115200 baud can send ~11 KB/s in many small reads; one notification per read
//! would flood the editor. We send at most one notification per port every [`INTERVAL`],
//! holding whatever arrived in between. The first chunk after a quiet period goes out at
//! once, so interactive echo stays snappy. Text is UTF-8 decoded across chunk boundaries
//! (a multi-byte character split between two reads is not mangled).

use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Minimum time between two notifications for one port.
pub const INTERVAL: Duration = Duration::from_millis(20);

/// Decode UTF-8 incrementally: complete characters out, an incomplete tail kept for later.
#[derive(Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8], out: &mut String) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return;
                }
                Err(e) => {
                    let valid = start + e.valid_up_to();
                    // Safe: from_utf8 said these bytes are valid.
                    out.push_str(&String::from_utf8_lossy(&self.pending[start..valid]));
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            start = valid + n;
                        }
                        None => {
                            // Incomplete character at the end: keep it for the next chunk.
                            self.pending.drain(..valid);
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Read chunks from `rx` and call `emit` with batched text, at most once per `interval`.
/// Returns when `rx` closes (after flushing).
pub async fn batch<F, Fut>(mut rx: mpsc::Receiver<Vec<u8>>, interval: Duration, mut emit: F)
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut decoder = Utf8Stream::default();
    let mut last_emit: Option<Instant> = None;
    let mut text = String::new();
    loop {
        let Some(first) = rx.recv().await else { break };
        decoder.push(&first, &mut text);
        let deadline = last_emit.map(|t| t + interval).unwrap_or_else(Instant::now);
        let mut closed = false;
        // Collect everything that arrives until we may send again.
        loop {
            tokio::select! {
                biased;
                more = rx.recv() => match more {
                    Some(chunk) => decoder.push(&chunk, &mut text),
                    None => { closed = true; break; }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        if !text.is_empty() {
            emit(std::mem::take(&mut text)).await;
            last_emit = Some(Instant::now());
        }
        if closed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn split_multibyte_characters_survive() {
        let mut d = Utf8Stream::default();
        let mut out = String::new();
        let bytes = "µs é".as_bytes();
        d.push(&bytes[..1], &mut out);
        assert_eq!(out, "");
        d.push(&bytes[1..5], &mut out);
        d.push(&bytes[5..], &mut out);
        assert_eq!(out, "µs é");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut d = Utf8Stream::default();
        let mut out = String::new();
        d.push(b"a\xffb", &mut out);
        assert_eq!(out, "a\u{FFFD}b");
    }

    #[tokio::test]
    async fn bursts_are_batched_and_spaced() {
        let (tx, rx) = mpsc::channel(128);
        let sent: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let sent2 = sent.clone();
        // current-thread runtime: the batcher only runs when this test awaits, so the first
        // burst is entirely queued before it starts.
        let task = tokio::spawn(batch(rx, INTERVAL, move |t| {
            sent2.lock().unwrap().push((Instant::now(), t));
            async {}
        }));
        for i in 0..50 {
            tx.send(format!("{i},").into_bytes()).await.unwrap();
        }
        while sent.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // A second burst right after the first notification must wait for the interval.
        for i in 50..60 {
            tx.send(format!("{i},").into_bytes()).await.unwrap();
        }
        while sent.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(tx); // (closing flushes at once, so only after the second notification)
        task.await.unwrap();
        let sent = sent.lock().unwrap();
        let all: String = sent.iter().map(|(_, t)| t.as_str()).collect();
        let expected: String = (0..60).map(|i| format!("{i},")).collect();
        assert_eq!(all, expected, "nothing lost or reordered");
        assert_eq!(sent.len(), 2, "one notification per burst");
        assert!(
            sent[1].0 - sent[0].0 >= INTERVAL,
            "spaced by at least 20 ms"
        );
    }
}
