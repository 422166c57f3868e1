//! Real servers for Envoy to reach: an HTTP server that records what it saw, and a TCP echo
//! server that counts connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub host: String,
    pub headers: Vec<(String, String)>,
}

/// An HTTP server answering `200 upstream <name>` and recording every request.
pub struct HttpUpstream {
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpUpstream {
    pub fn start(name: &str, addr: SocketAddr) -> Self {
        let server = Arc::new(
            tiny_http::Server::http(addr)
                .unwrap_or_else(|e| panic!("upstream {name} on {addr}: {e}")),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (srv, log, body) = (server.clone(), seen.clone(), format!("upstream {name}"));
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let headers: Vec<(String, String)> = request
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.to_string().to_ascii_lowercase(),
                            h.value.to_string(),
                        )
                    })
                    .collect();
                let host = headers
                    .iter()
                    .find(|(n, _)| n == "host")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                log.lock().unwrap().push(Seen { host, headers });
                let _ = request.respond(tiny_http::Response::from_string(body.clone()));
            }
        });
        Self {
            addr,
            server,
            seen,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP server that echoes what it reads, prefixed with `echo:`.
pub struct EchoServer {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    pub fn start(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("echo on {addr}: {e}"));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (connections.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&[b"echo:", &buf[..n]].concat()).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
