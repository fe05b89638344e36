//! A small LSP client for tests: runs the real `devkit lsp`, frames JSON-RPC over its stdio,
//! answers the server's own requests (`window/workDoneProgress/create`) and keeps every
//! notification and everything written to stderr for assertions. Every wait is bounded.
#![allow(dead_code)]

#[path = "../json_casing/mod.rs"]
mod json_casing;

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Lsp {
    child: Child,
    /// `None` once closed ([`Lsp::close_stdin`]).
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: i64,
    /// Notifications and server requests not consumed yet, in arrival order.
    pub inbox: VecDeque<Value>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The answer to every item of the server's `workspace/configuration` requests (null:
    /// nothing configured).
    pub configuration: Value,
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse::<usize>().ok();
        }
    }
    let mut buf = vec![0; len?];
    r.read_exact(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

pub fn frame(msg: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(msg).unwrap();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend(body);
    out
}

impl Lsp {
    /// Start `devkit lsp` with extra environment variables.
    pub fn start(env: &[(&str, &str)]) -> Lsp {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_devkit"));
        cmd.arg("lsp")
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn devkit lsp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr2 = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                stderr2.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(m) = read_message(&mut r) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        Lsp {
            child,
            stdin: Some(stdin),
            rx,
            next_id: 0,
            inbox: VecDeque::new(),
            stderr,
            configuration: Value::Null,
        }
    }

    pub fn send(&mut self, msg: &Value) {
        self.send_raw(&frame(msg));
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Close the server's input (the editor went away without `exit`).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next error response with `id: null` (an unreadable message), skipping others.
    pub fn null_id_error(&mut self) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        if let Some(i) = self.inbox.iter().position(|m| {
            m["id"].is_null() && m.get("error").is_some() && m.get("method").is_none()
        }) {
            return self.inbox.remove(i).unwrap();
        }
        loop {
            let m = self
                .recv(deadline)
                .unwrap_or_else(|| panic!("no error response; stderr:\n{}", self.stderr()));
            if m["id"].is_null() && m.get("error").is_some() && m.get("method").is_none() {
                return m;
            }
            self.inbox.push_back(m);
        }
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request, return its id.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Next message from the server; answers server requests on the way (still recorded).
    fn recv(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(m) => {
                // Every result, error and notification the daemon sends: one casing.
                json_casing::assert_camel_case(&m, "the daemon");
                if m.get("method").is_some() && m.get("id").is_some() && self.stdin.is_some() {
                    let result = if m["method"] == "workspace/configuration" {
                        let items = m["params"]["items"].as_array().map_or(0, Vec::len);
                        Value::Array(vec![self.configuration.clone(); items])
                    } else {
                        Value::Null
                    };
                    let reply = json!({"jsonrpc": "2.0", "id": m["id"], "result": result});
                    self.send(&reply);
                }
                Some(m)
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// The response to request `id` (notifications meanwhile go to the inbox).
    pub fn response(&mut self, id: i64) -> Value {
        // It may have arrived while another response was awaited.
        if let Some(i) = self
            .inbox
            .iter()
            .position(|m| m.get("method").is_none() && m["id"] == json!(id))
        {
            return self.inbox.remove(i).unwrap();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = self.recv(deadline).unwrap_or_else(|| {
                panic!("no response to request {id}; stderr:\n{}", self.stderr())
            });
            if m.get("method").is_none() && m["id"] == json!(id) {
                return m;
            }
            self.inbox.push_back(m);
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.response(id)
    }

    /// The first message (notification or server request) with `method` matching `pred`,
    /// from the inbox or still to come; `None` after `timeout`.
    pub fn wait_for(
        &mut self,
        method: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(i) = self
            .inbox
            .iter()
            .position(|m| m["method"] == method && pred(m))
        {
            return self.inbox.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.recv(deadline)?;
            if m["method"] == method && pred(&m) {
                return Some(m);
            }
            self.inbox.push_back(m);
        }
    }

    pub fn initialize(&mut self, work_done_progress: bool) -> Value {
        let r = self.request(
            "initialize",
            json!({"processId": null, "rootUri": null, "capabilities": {"window": {"workDoneProgress": work_done_progress}}}),
        );
        self.notify("initialized", json!({}));
        r
    }

    /// `shutdown` then `exit`; the process exit status.
    pub fn shutdown_and_exit(mut self) -> (ExitStatus, String) {
        let r = self.request("shutdown", Value::Null);
        assert!(r.get("error").is_none(), "shutdown failed: {r}");
        self.notify("exit", Value::Null);
        let status = self.wait_exit();
        (status, self.stderr())
    }

    /// Wait (bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the stderr thread drain.
                std::thread::sleep(Duration::from_millis(20));
                return status;
            }
            assert!(Instant::now() < deadline, "devkit lsp did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn send_request_without_params(&mut self, method: &str) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method}));
        id
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
}

impl Drop for Lsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `error.code` of a response (panics with the response when it is not an error).
pub fn error_code(r: &Value) -> i64 {
    r["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {r}"))
}

/// A fixture path under `tasks/tests/fixtures`.
pub fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tasks/tests/fixtures")
        .join(rel)
}
