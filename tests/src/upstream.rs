//! Real servers for Envoy to reach: an HTTP server that records what it saw, and a TCP echo
//! server that counts connections. Dropping either closes its listening socket, so a stopped
//! server looks to Envoy exactly like an outage.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub host: String,
    pub headers: Vec<(String, String)>,
}

/// An HTTP/1.1 server answering `200 upstream <name>` to every request and recording it, one
/// request per connection (`Connection: close`).
pub struct HttpUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _accepting: Accepting,
}

impl HttpUpstream {
    pub fn start(name: &str, addr: SocketAddr) -> Self {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("upstream {name} on {addr}: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, body) = (seen.clone(), format!("upstream {name}"));
        let accepting = Accepting::spawn(listener, move |stream| serve(stream, &body, &log));
        Self {
            addr,
            seen,
            _accepting: accepting,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request head, records it with `log`, answers it, closes the connection. The
/// request is recorded before the answer leaves, so a client that has its response can count
/// on it being seen.
fn serve(stream: TcpStream, body: &str, log: &Mutex<Vec<Seen>>) {
    if stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .is_ok()
    {
        answer(stream, body, |seen| log.lock().unwrap().push(seen));
    }
}

/// Reads one request head from `stream`, hands it to `record`, and answers `200 body`.
pub(crate) fn answer(mut stream: impl Read + Write, body: &str, record: impl FnOnce(Seen)) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let headers: Vec<(String, String)> = text
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let host = headers
        .iter()
        .find(|(n, _)| n == "host")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    record(Seen { host, headers });
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// A TCP server that echoes what it reads, prefixed with `echo:`.
pub struct EchoServer {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    _accepting: Accepting,
}

impl EchoServer {
    pub fn start(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("echo on {addr}: {e}"));
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let accepting = Accepting::spawn(listener, move |mut stream| {
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&[b"echo:", &buf[..n]].concat()).is_err() {
                        break;
                    }
                }
            });
        });
        Self {
            addr,
            connections,
            _accepting: accepting,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// An accept loop on its own thread. Dropping it stops the loop and closes the listening
/// socket, so the address refuses connections as a stopped server's would.
pub(crate) struct Accepting {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Accepting {
    pub(crate) fn spawn(
        listener: TcpListener,
        mut handle: impl FnMut(TcpStream) + Send + 'static,
    ) -> Self {
        let addr = listener.local_addr().expect("listener address");
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    handle(stream);
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Accepting {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept: the loop sees the flag, ends, and closes the socket.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
