//! A webhook receiver for tests, written from the Standard Webhooks specification alone:
//! it answers each request with the next scripted status (200 once the script runs out)
//! and verifies signatures as the specification says a receiver must.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
    /// The status this request was answered with.
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<u16>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        let state = shared.clone();
                        std::thread::spawn(move || serve(stream, &state));
                    }
                    // A connection reset before it was accepted (a sender killed
                    // mid-connect) or a moment out of descriptors: the next one is
                    // still welcome; stopping here would refuse every later sender.
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { url, state }
    }

    /// The next requests are answered with these statuses, in order, replacing what
    /// was scripted before.
    pub fn script(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script = statuses.iter().copied().collect();
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until `n` requests were accepted (or panics after `bound`).
    pub async fn wait_for_accepted(&self, n: usize, bound: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            assert!(
                started.elapsed() < bound,
                "{} of {n} deliveries accepted within {bound:?}: {:?}",
                accepted.len(),
                self.received().iter().map(|r| &r.body).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` requests arrived, however they were answered.
    pub async fn wait_for_received(&self, n: usize, bound: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                started.elapsed() < bound,
                "{} of {n} requests arrived",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut headers = HashMap::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answered = {
            let mut state = state.lock().unwrap();
            let answered = state.script.pop_front().unwrap_or(200);
            state.received.push(Received {
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                answered,
            });
            answered
        };
        let reply = format!("HTTP/1.1 {answered} X\r\ncontent-length: 0\r\n\r\n");
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// The specification's verification: the signed content is
/// `{webhook-id}.{webhook-timestamp}.{body}`, the key the base64 after `whsec_`, the
/// signature HMAC-SHA256 in base64 after `v1,`; any one of the space-separated
/// signatures may match; the timestamp must be within five minutes of `now`.
pub fn verify(secret: &str, received: &Received, now: i64) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .unwrap();
    let id = &received.headers["webhook-id"];
    let timestamp = &received.headers["webhook-timestamp"];
    let Ok(seconds) = timestamp.parse::<i64>() else {
        return false;
    };
    if (now - seconds).abs() > 300 {
        return false;
    }
    let content = format!("{id}.{timestamp}.{}", received.body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let expected = STANDARD.encode(ring::hmac::sign(&key, content.as_bytes()).as_ref());
    received.headers["webhook-signature"]
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| sig == expected)
}
