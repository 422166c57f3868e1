//! A server that records every connection it accepts, before anything else, and what each
//! carried: "denied" means a recorder saw nothing at all. And the client side of an attacker:
//! raw HTTP/1.1 bytes, a TLS ClientHello with any server name (split as the attacker likes),
//! and the PROXY header that stands for traffic capture on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One accepted connection: the first bytes it carried, and the server name when they were
/// a TLS ClientHello.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub bytes: Vec<u8>,
    pub sni: Option<String>,
}

/// Records every connection. HTTP requests get `200 recorder NAME`; a TLS ClientHello is
/// recorded and the connection closed; other bytes are echoed.
pub struct Recorder {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Connection>>>,
}

impl Recorder {
    pub fn start(name: &str, addr: SocketAddr) -> Self {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("recorder {name} on {addr}: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, body) = (seen.clone(), format!("recorder {name}"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let index = {
                    let mut seen = log.lock().unwrap();
                    seen.push(Connection::default());
                    seen.len() - 1
                };
                let (log, body) = (log.clone(), body.clone());
                std::thread::spawn(move || serve(stream, &body, &log, index));
            }
        });
        Self { addr, seen }
    }

    /// Every connection accepted so far.
    pub fn seen(&self) -> Vec<Connection> {
        self.seen.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Waits up to a second for connections still being read, then returns them all.
    pub fn settled(&self) -> Vec<Connection> {
        std::thread::sleep(Duration::from_millis(300));
        self.seen()
    }
}

fn serve(mut stream: TcpStream, body: &str, log: &Mutex<Vec<Connection>>, index: usize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        bytes.extend_from_slice(&buf[..n]);
        let tls = bytes.first() == Some(&0x16);
        let sni = if tls { client_hello_sni(&bytes) } else { None };
        {
            let mut seen = log.lock().unwrap();
            seen[index].bytes = bytes.clone();
            seen[index].sni = sni.clone();
        }
        if tls && sni.is_some() {
            return;
        }
        if bytes.windows(4).any(|w| w == b"\r\n\r\n") {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        if !tls && !looks_like_http(&bytes) {
            let _ = stream.write_all(&buf[..n]);
        }
    }
}

/// Whether `bytes` begin an HTTP request, or could once more arrive.
fn looks_like_http(bytes: &[u8]) -> bool {
    const STARTS: [&[u8]; 5] = [b"GET ", b"POST ", b"PUT ", b"HEAD ", b"PRI * HTTP/2"];
    !bytes.is_empty()
        && STARTS
            .iter()
            .any(|m| m.starts_with(bytes) || bytes.starts_with(m))
}

/// The server name in a TLS ClientHello that may span several records; `None` until the
/// whole handshake message is there.
pub fn client_hello_sni(bytes: &[u8]) -> Option<String> {
    // Join the handshake records' payloads.
    let mut handshake = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 5 && rest[0] == 0x16 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let record = rest.get(5..5 + len)?;
        handshake.extend_from_slice(record);
        rest = &rest[5 + len..];
    }
    let (&[_, a, b, c], _) = handshake.split_first_chunk::<4>()?;
    let body_len = usize::from_be_bytes([0, 0, 0, 0, 0, a, b, c]);
    let hello = handshake.get(4..4 + body_len)?;
    // version(2) random(32) session id, cipher suites, compression methods, extensions.
    let mut at = 34;
    at += 1 + usize::from(*hello.get(at)?);
    at += 2 + usize::from(u16::from_be_bytes([*hello.get(at)?, *hello.get(at + 1)?]));
    at += 1 + usize::from(*hello.get(at)?);
    let end = at + 2 + usize::from(u16::from_be_bytes([*hello.get(at)?, *hello.get(at + 1)?]));
    at += 2;
    while at + 4 <= end {
        let head = hello.get(at..at + 4)?;
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let data = hello.get(at + 4..at + 4 + len)?;
        if kind == 0 {
            // server_name_list(2) name_type(1) length(2) name
            let name_len = usize::from(u16::from_be_bytes([*data.get(3)?, *data.get(4)?]));
            return Some(String::from_utf8_lossy(data.get(5..5 + name_len)?).into_owned());
        }
        at += 4 + len;
    }
    Some(String::new())
}

/// A TLS 1.2 ClientHello carrying `sni` verbatim (any bytes: uppercase, a trailing dot, an IP
/// literal, a port), as one handshake message.
pub fn client_hello(sni: &[u8]) -> Vec<u8> {
    let u16b = |n: usize| u16::try_from(n).unwrap().to_be_bytes();
    let mut server_name = Vec::new();
    server_name.extend_from_slice(&u16b(sni.len() + 3));
    server_name.push(0);
    server_name.extend_from_slice(&u16b(sni.len()));
    server_name.extend_from_slice(sni);
    let mut extensions = vec![0, 0];
    extensions.extend_from_slice(&u16b(server_name.len()));
    extensions.extend_from_slice(&server_name);
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[7; 32]);
    hello.push(0); // no session id
    hello.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0x00, 0x9c]);
    hello.extend_from_slice(&[1, 0]); // null compression
    hello.extend_from_slice(&u16b(extensions.len()));
    hello.extend_from_slice(&extensions);
    let mut message = vec![1, 0];
    message.extend_from_slice(&u16b(hello.len()));
    message.extend_from_slice(&hello);
    message
}

/// Wraps handshake bytes into TLS records of at most `chunk` bytes each.
pub fn records(message: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in message.chunks(chunk) {
        out.extend_from_slice(&[0x16, 3, 1]);
        out.extend_from_slice(&u16::try_from(part.len()).unwrap().to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// The PROXY protocol v1 header that tells a capturing listener where the client was going.
pub fn proxy_header(destination: SocketAddr) -> Vec<u8> {
    format!(
        "PROXY TCP4 127.0.0.1 {} 40000 {}\r\n",
        destination.ip(),
        destination.port()
    )
    .into_bytes()
}

/// Connects to `listener`, writes each piece (pausing between them, so they travel as
/// separate segments), and returns what came back before the connection closed or went quiet.
pub fn send_pieces(listener: SocketAddr, pieces: &[&[u8]]) -> Vec<u8> {
    let mut stream =
        TcpStream::connect(listener).unwrap_or_else(|e| panic!("connect {listener}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    for piece in pieces {
        if stream.write_all(piece).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// Sends raw HTTP/1.1 request bytes to `proxy` and returns the status code (0: no answer).
pub fn raw_http(proxy: SocketAddr, prefix: &[u8], request: &[u8]) -> (u16, String) {
    let reply = send_pieces(proxy, &[prefix, request]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// An HTTP/1.1 request head for `host` that asks the server to close the connection.
pub fn http_request(host: &str, method: &str) -> Vec<u8> {
    format!("{method} / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .into_bytes()
}
