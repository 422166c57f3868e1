//! Writing results to standard output. A reader that stops early (`| head`) is a normal end,
//! not an error.

use std::io::{ErrorKind, Write};

pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() != ErrorKind::BrokenPipe => Err(err.into()),
        _ => Ok(()),
    }
}
