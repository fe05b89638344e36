//! The stdio transport of `devkit lsp`: our own framing and dispatch in front of
//! tower-lsp-server's service (which keeps routing, lifecycle and the `Client`).
//!
//! Why not tower-lsp-server's `Server`: it stops serving at the first message it cannot
//! decode, buffers whatever `Content-Length` declares, polls every request on one task with a
//! fixed concurrency (long jobs then starve `$/cancelRequest` and every other request), and at
//! end of input waits for every running request. Here:
//! - frames are read with bounds (header lines, bodies up to [`MAX_BODY`]); a bad frame is
//!   answered with a JSON-RPC error with `id: null` and reading resynchronises on the next
//!   `Content-Length` header (a too large body is skipped, never buffered);
//! - a body must be UTF-8 JSON (serde_json's nesting limit applies); lone UTF-16 surrogate
//!   escapes (`"\ud800"`, which Node's `JSON.stringify` emits for broken text) become U+FFFD;
//! - notifications run in arrival order, each to its end before the next message is read
//!   (document sync stays ordered); requests run each on its own task, at most
//!   [`MAX_IN_FLIGHT`] at once (more are refused with `busy`, never queued behind long jobs);
//! - `$/cancelRequest` is handled here, at once: a request running a job (see
//!   [`current_request`]) gets its cancellation and answers when the job has really stopped
//!   (so nothing happens after the client was told "cancelled"); any other request is dropped
//!   and answered `cancelled`;
//! - every outgoing frame goes through one writer task, so frames never interleave;
//! - at end of input serving stops at once; the caller then cancels jobs and closes ports.

use super::error::TaskError;
use super::ext::codes;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::{Error, Id, Request, Response};
use tower_lsp_server::ClientSocket;
use tower_service::Service;

/// The largest message body accepted (params are paths, settings and sketch texts).
pub const MAX_BODY: u64 = 16 * 1024 * 1024;
/// The longest header line accepted.
const MAX_HEADER_LINE: usize = 4096;
/// How many requests may run at once (each holds little while it waits for its job).
pub const MAX_IN_FLIGHT: usize = 256;
/// JSON-RPC's parse error and invalid request codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// One frame read from the input.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Body(Vec<u8>),
    /// A frame that could not be read: answered with this error, then skipped.
    Bad {
        code: i64,
        message: String,
    },
    Eof,
}

/// Reads `Content-Length` framed messages with bounds; never fails on bad input, only on I/O.
pub struct FrameReader<R> {
    r: BufReader<R>,
    /// Skip lines until one holding a `Content-Length` header.
    resync: bool,
    /// Bytes of a refused body still to skip.
    skip: u64,
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    Eof,
}

/// One line (up to `\n`), or `TooLong` (consumed, not kept) past `max` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (n, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            if line.len() + n > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&buf[..n]);
            }
        }
        r.consume(n);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
    }
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn bad(code: i64, message: impl Into<String>) -> Frame {
    Frame::Bad {
        code,
        message: message.into(),
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(r: R) -> Self {
        FrameReader {
            r: BufReader::new(r),
            resync: false,
            skip: 0,
        }
    }

    /// The next frame.
    pub async fn next(&mut self) -> std::io::Result<Frame> {
        if self.skip > 0 {
            let n = std::mem::take(&mut self.skip);
            let skipped =
                tokio::io::copy(&mut (&mut self.r).take(n), &mut tokio::io::sink()).await?;
            if skipped < n {
                return Ok(Frame::Eof);
            }
        }
        let mut length: Option<Option<u64>> = None;
        let mut seen_header = false;
        loop {
            let line = match read_line(&mut self.r, MAX_HEADER_LINE).await? {
                Line::Eof => return Ok(Frame::Eof),
                Line::TooLong if self.resync => continue,
                Line::TooLong => {
                    self.resync = true;
                    return Ok(bad(
                        PARSE_ERROR,
                        format!(
                            "parse error: a header line is longer than {MAX_HEADER_LINE} bytes"
                        ),
                    ));
                }
                Line::Text(l) => l,
            };
            let mut text = line.strip_suffix(b"\n").unwrap_or(&line);
            text = text.strip_suffix(b"\r").unwrap_or(text);
            // A header glued to the end of a body shorter than declared, or garbage: the
            // next message starts at its `Content-Length`.
            match find_ci(text, b"content-length") {
                Some(i) => {
                    text = &text[i..];
                    self.resync = false;
                }
                None if self.resync => continue,
                None => {}
            }
            if text.is_empty() {
                if !seen_header {
                    continue; // blank lines between messages
                }
                break;
            }
            seen_header = true;
            let Some(colon) = text.iter().position(|&b| b == b':') else {
                self.resync = true;
                return Ok(bad(
                    PARSE_ERROR,
                    "parse error: a header line is not `Name: value`",
                ));
            };
            if text[..colon].eq_ignore_ascii_case(b"content-length") {
                let value = std::str::from_utf8(&text[colon + 1..]).ok().map(str::trim);
                length = Some(value.and_then(|v| v.parse::<u64>().ok()));
            }
            // Content-Type (utf-8 is the only charset) and unknown headers are ignored.
        }
        let n = match length {
            Some(Some(n)) => n,
            Some(None) => {
                self.resync = true;
                return Ok(bad(
                    PARSE_ERROR,
                    "parse error: `Content-Length` is not a number of bytes",
                ));
            }
            None => {
                self.resync = true;
                return Ok(bad(
                    PARSE_ERROR,
                    "parse error: the message has no `Content-Length` header",
                ));
            }
        };
        if n > MAX_BODY {
            self.skip = n;
            return Ok(bad(
                INVALID_REQUEST,
                format!("invalid request: the message is {n} bytes; at most {MAX_BODY} are accepted (it was skipped)"),
            ));
        }
        let mut body = vec![0; n as usize];
        match self.r.read_exact(&mut body).await {
            Ok(_) => Ok(Frame::Body(body)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Frame::Eof),
            Err(e) => Err(e),
        }
    }
}

/// `\uXXXX` at `b[i..]` as a number.
fn hex4(b: &[u8], i: usize) -> Option<u16> {
    let s = std::str::from_utf8(b.get(i..i + 4)?).ok()?;
    u16::from_str_radix(s, 16).ok()
}

/// Replace lone UTF-16 surrogate escapes (a high one not followed by a low one, or a low one
/// alone) with `\ufffd`: JavaScript strings may hold them, serde_json refuses them.
pub fn replace_lone_surrogates(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let (mut copied, mut i) = (0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let unit = match (b.get(i + 1), hex4(b, i + 2)) {
            (Some(b'u'), Some(u)) => u,
            _ => {
                i += 2; // another escape (`\\`, `\"`, ...)
                continue;
            }
        };
        let lone = match unit {
            0xD800..=0xDBFF => {
                let low = b.get(i + 6..i + 8) == Some(b"\\u")
                    && hex4(b, i + 8).is_some_and(|l| (0xDC00..=0xDFFF).contains(&l));
                if low {
                    i += 12;
                    continue;
                }
                true
            }
            0xDC00..=0xDFFF => true,
            _ => false,
        };
        if lone {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..i]);
            o.push_str("\\ufffd");
            copied = i + 6;
        }
        i += 6;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// A decoded incoming message.
#[derive(Debug)]
pub enum Incoming {
    Request(Request),
    Response(Response),
}

/// An incoming message that cannot be served: answered with this error.
#[derive(Debug, PartialEq)]
pub struct Refused {
    pub id: Id,
    pub code: i64,
    pub message: String,
}

/// Decode one body. Error messages describe the problem, never the content.
pub fn parse_message(body: &[u8]) -> Result<Incoming, Refused> {
    let refused = |id, code, message: String| Refused { id, code, message };
    let text = std::str::from_utf8(body).map_err(|e| {
        refused(
            Id::Null,
            PARSE_ERROR,
            format!(
                "parse error: the message is not UTF-8 (at byte {})",
                e.valid_up_to()
            ),
        )
    })?;
    let text = replace_lone_surrogates(text);
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        refused(
            Id::Null,
            PARSE_ERROR,
            format!("parse error: the message is not JSON: {e}"),
        )
    })?;
    let Value::Object(map) = &value else {
        return Err(refused(
            Id::Null,
            INVALID_REQUEST,
            "invalid request: expected one JSON-RPC message object (batches are not supported)"
                .into(),
        ));
    };
    let id = map
        .get("id")
        .and_then(|v| serde_json::from_value::<Id>(v.clone()).ok())
        .unwrap_or(Id::Null);
    let invalid = |id| {
        refused(
            id,
            INVALID_REQUEST,
            "invalid request: not a JSON-RPC 2.0 request, notification or response".into(),
        )
    };
    if map.contains_key("method") {
        serde_json::from_value(value)
            .map(Incoming::Request)
            .map_err(|_| invalid(id))
    } else if map.contains_key("result") || map.contains_key("error") {
        serde_json::from_value(value)
            .map(Incoming::Response)
            .map_err(|_| invalid(id))
    } else {
        Err(invalid(id))
    }
}

/// The request a task is serving, for jobs to follow its `$/cancelRequest`.
#[derive(Clone, Default)]
pub struct RequestCtx {
    /// Cancelled on `$/cancelRequest`.
    pub token: CancellationToken,
    /// Set by a request that handles the cancellation itself (a job): it is then not dropped
    /// but left to finish, answering `cancelled` once its work has really stopped.
    handles_cancel: Arc<AtomicBool>,
}

impl RequestCtx {
    pub fn handle_cancellation(&self) {
        self.handles_cancel.store(true, Ordering::SeqCst);
    }
}

tokio::task_local! {
    static CURRENT: RequestCtx;
}

/// The request being served by the current task (`None` outside a request).
pub fn current_request() -> Option<RequestCtx> {
    CURRENT.try_with(Clone::clone).ok()
}

fn error_body(id: Id, e: Error) -> Vec<u8> {
    serde_json::to_vec(&Response::from_error(id, e)).unwrap_or_default()
}

fn refused_error(r: Refused) -> Vec<u8> {
    let name = if r.code == PARSE_ERROR {
        "parseError"
    } else {
        "invalidRequest"
    };
    let e = Error {
        code: r.code.into(),
        message: r.message.into(),
        data: Some(json!({ "code": name })),
    };
    error_body(r.id, e)
}

async fn write_frames<O: AsyncWrite + Unpin>(mut out: O, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(body) = rx.recv().await {
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        if out.write_all(&frame).await.is_err() || out.flush().await.is_err() {
            break;
        }
    }
}

/// Wait until the service takes a message; `false` once it has exited.
async fn ready<S: Service<Request>>(service: &mut S) -> bool {
    loop {
        // tower-lsp-server is not ready while `initialize` runs and registers no waker then.
        match futures::future::poll_fn(|cx| Poll::Ready(service.poll_ready(cx))).await {
            Poll::Ready(r) => return r.is_ok(),
            Poll::Pending => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Serve `service` on `input`/`output` until `exit` or the end of input (see the module docs).
pub async fn serve<I, O, S>(input: I, output: O, mut service: S, socket: ClientSocket)
where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin + Send + 'static,
    S: Service<Request, Response = Option<Response>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    let (out, out_rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(write_frames(output, out_rx));
    let (mut server_requests, mut client_responses) = socket.split();
    let server_out = out.clone();
    let outgoing = tokio::spawn(async move {
        while let Some(req) = server_requests.next().await {
            let Ok(body) = serde_json::to_vec(&req) else {
                continue;
            };
            if server_out.send(body).await.is_err() {
                break;
            }
        }
    });
    let in_flight: Arc<Mutex<HashMap<Id, RequestCtx>>> = Arc::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut frames = FrameReader::new(input);
    loop {
        let body = match frames.next().await {
            Ok(Frame::Body(body)) => body,
            Ok(Frame::Bad { code, message }) => {
                tracing::warn!("unreadable message: {message}");
                let _ = out
                    .send(refused_error(Refused {
                        id: Id::Null,
                        code,
                        message,
                    }))
                    .await;
                continue;
            }
            Ok(Frame::Eof) => {
                tracing::info!("end of input");
                break;
            }
            Err(e) => {
                tracing::warn!("reading the input failed: {e}");
                break;
            }
        };
        let req = match parse_message(&body) {
            Ok(Incoming::Request(req)) => req,
            Ok(Incoming::Response(res)) => {
                let _ = client_responses.send(res).await;
                continue;
            }
            Err(r) => {
                tracing::warn!("unreadable message: {}", r.message);
                let _ = out.send(refused_error(r)).await;
                continue;
            }
        };
        if req.method() == "$/cancelRequest" {
            let id = req
                .params()
                .and_then(|p| p.get("id"))
                .and_then(|v| serde_json::from_value::<Id>(v.clone()).ok());
            let ctx = id.and_then(|id| in_flight.lock().ok().and_then(|m| m.get(&id).cloned()));
            if let Some(ctx) = ctx {
                ctx.token.cancel();
            }
            continue;
        }
        if !ready(&mut service).await {
            break;
        }
        let Some(id) = req.id().cloned() else {
            // Notifications in order, each to its end.
            let exit = req.method() == "exit";
            let _ = service.call(req).await;
            if exit {
                break;
            }
            continue;
        };
        if req.method() == "initialize" {
            // Nothing else is served before the server is initialized.
            if let Ok(Some(res)) = service.call(req).await {
                let _ = out.send(serde_json::to_vec(&res).unwrap_or_default()).await;
            }
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let e = TaskError::new(
                codes::BUSY,
                format!("too many requests are running (at most {MAX_IN_FLIGHT}); try again later"),
            )
            .with("resource", "requests");
            let _ = out.send(error_body(id, e.into())).await;
            continue;
        };
        let ctx = RequestCtx::default();
        let duplicate = match in_flight.lock() {
            Ok(mut m) if !m.contains_key(&id) => {
                m.insert(id.clone(), ctx.clone());
                false
            }
            _ => true,
        };
        if duplicate {
            let e = Error {
                code: INVALID_REQUEST.into(),
                message: "invalid request: a request with this id is already running".into(),
                data: None,
            };
            let _ = out.send(error_body(id, e)).await;
            continue;
        }
        let fut = CURRENT.scope(ctx.clone(), service.call(req));
        let (out, in_flight) = (out.clone(), in_flight.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let mut fut = Box::pin(fut);
            let r = tokio::select! {
                r = &mut fut => Some(r),
                _ = ctx.token.cancelled() => None,
            };
            let body = match r {
                Some(r) => r
                    .ok()
                    .flatten()
                    .map(|res| serde_json::to_vec(&res).unwrap_or_default()),
                None if ctx.handles_cancel.load(Ordering::SeqCst) => fut
                    .await
                    .ok()
                    .flatten()
                    .map(|res| serde_json::to_vec(&res).unwrap_or_default()),
                None => {
                    drop(fut); // the request's work stops here
                    Some(error_body(id.clone(), TaskError::cancelled().into()))
                }
            };
            if let Ok(mut m) = in_flight.lock() {
                m.remove(&id);
            }
            if let Some(body) = body {
                let _ = out.send(body).await;
            }
        });
    }
    outgoing.abort();
    drop(out);
    // Running requests hold the writer open: give queued frames a moment, no more.
    let _ = tokio::time::timeout(Duration::from_millis(300), writer).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8]) -> Vec<Frame> {
        let mut r = FrameReader::new(input);
        let mut out = Vec::new();
        loop {
            match r.next().await.unwrap() {
                Frame::Eof => return out,
                f => out.push(f),
            }
        }
    }

    fn framed(body: &str) -> Vec<u8> {
        format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    }

    #[tokio::test]
    async fn bad_headers_are_reported_and_the_next_message_is_read() {
        let mut input = b"Content-Length: abc\r\n\r\n{\"x\":1}".to_vec();
        input.extend(framed("{}"));
        input.extend(b"garbage without headers\r\n\r\n");
        input.extend(framed("[1]"));
        input.extend(b"X-Other: 1\r\n\r\n{}\r\n");
        input.extend(framed("{\"a\":2}"));
        let f = frames(&input).await;
        assert!(
            matches!(&f[0], Frame::Bad { code: -32700, message } if message.contains("Content-Length")),
            "{f:?}"
        );
        assert_eq!(f[1], Frame::Body(b"{}".to_vec()));
        assert!(matches!(&f[2], Frame::Bad { code: -32700, .. }), "{f:?}");
        assert_eq!(f[3], Frame::Body(b"[1]".to_vec()));
        assert!(
            matches!(&f[4], Frame::Bad { code: -32700, message } if message.contains("no `Content-Length`")),
            "{f:?}"
        );
        assert_eq!(f[5], Frame::Body(b"{\"a\":2}".to_vec()));
        assert_eq!(f.len(), 6);
    }

    #[tokio::test]
    async fn a_short_body_does_not_swallow_the_next_header() {
        let mut input = b"Content-Length: 3\r\n\r\n{\"a\":1}".to_vec();
        input.extend(framed("{}"));
        let f = frames(&input).await;
        assert_eq!(
            f,
            vec![Frame::Body(b"{\"a".to_vec()), Frame::Body(b"{}".to_vec())]
        );
    }

    #[tokio::test]
    async fn a_huge_declared_length_is_refused_and_skipped_without_buffering() {
        let declared = MAX_BODY + 10;
        let mut input = format!("Content-Length: {declared}\r\n\r\n").into_bytes();
        input.extend(std::iter::repeat_n(b'x', declared as usize));
        input.extend(framed("{}"));
        let f = frames(&input).await;
        assert!(
            matches!(&f[0], Frame::Bad { code: -32600, message } if message.contains("at most")),
            "{:?}",
            f.first()
        );
        assert_eq!(f[1], Frame::Body(b"{}".to_vec()));
    }

    #[tokio::test]
    async fn endless_header_lines_are_bounded() {
        let mut input = vec![b'A'; 100_000];
        input.extend(b"\r\n");
        input.extend(framed("{}"));
        let f = frames(&input).await;
        assert!(matches!(&f[0], Frame::Bad { code: -32700, .. }));
        assert_eq!(f[1], Frame::Body(b"{}".to_vec()));
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        assert_eq!(
            replace_lone_surrogates(r#"{"a":"x\ud800y"}"#),
            r#"{"a":"x\ufffdy"}"#
        );
        assert_eq!(
            replace_lone_surrogates(r#""\udc00\ud83d""#),
            r#""\ufffd\ufffd""#
        );
        // A pair, an escaped backslash before `u`, and plain escapes are kept.
        for s in [r#""\ud83d\ude00""#, r#""\\ud800""#, r#""\n\u00e9""#] {
            assert!(
                matches!(replace_lone_surrogates(s), Cow::Borrowed(_)),
                "{s}"
            );
        }
        let v: Value =
            match parse_message(br#"{"jsonrpc":"2.0","method":"m","params":{"t":"a\ud800"}}"#)
                .unwrap()
            {
                Incoming::Request(r) => r.params().cloned().unwrap(),
                other => panic!("{other:?}"),
            };
        assert_eq!(v["t"], "a\u{fffd}");
    }

    #[test]
    fn unparsable_bodies_are_refused_without_echoing_them() {
        let canary = "c0ffeec0ffee";
        let deep = "[".repeat(10_000);
        let cases: Vec<(Vec<u8>, i64)> = vec![
            (vec![b'{', 0xff, 0xfe, b'}'], PARSE_ERROR),
            (format!("{{\"uds\": {canary}").into_bytes(), PARSE_ERROR),
            (deep.into_bytes(), PARSE_ERROR),
            (
                format!("[{{\"jsonrpc\":\"2.0\",\"method\":\"{canary}\"}}]").into_bytes(),
                INVALID_REQUEST,
            ),
            (
                format!("{{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"{canary}\"}}").into_bytes(),
                INVALID_REQUEST,
            ),
        ];
        for (body, code) in cases {
            let r = parse_message(&body).unwrap_err();
            assert_eq!(r.code, code, "{}", String::from_utf8_lossy(&body));
            assert!(!r.message.contains(canary), "{}", r.message);
        }
        assert_eq!(
            parse_message(br#"{"jsonrpc":"1.0","id":7,"method":"m"}"#)
                .unwrap_err()
                .id,
            Id::Number(7)
        );
    }
}
